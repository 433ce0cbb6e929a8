//! InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeTransactions and
//! ListTransactions: requests mapped onto the transaction coordinator (`txn/`), with the
//! checks Kafka's `KafkaApis` makes before it (unknown partitions) and the error codes
//! older request versions get instead of newer ones (PRODUCER_FENCED became
//! INVALID_PRODUCER_EPOCH for clients that predate it).

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState as DescribedState,
};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::txn::state::{Code, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TopicPartition, TxnState};

fn code(e: ResponseError) -> Code {
    e.code()
}

/// PRODUCER_FENCED as a client of `version` understands it: versions before
/// `fenced_since` get INVALID_PRODUCER_EPOCH (Kafka's KafkaApis does the same).
fn for_version(c: Code, version: i16, fenced_since: i16) -> Code {
    if c == code(ResponseError::ProducerFenced) && version < fenced_since {
        code(ResponseError::InvalidProducerEpoch)
    } else {
        c
    }
}

/// Answers InitProducerId.
pub async fn init_producer_id(
    broker: &Broker,
    r: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let refuse = |c: Code| {
        InitProducerIdResponse::default()
            .with_error_code(for_version(c, version, 4))
            .with_producer_id(ProducerId(NO_PRODUCER_ID))
            .with_producer_epoch(NO_PRODUCER_EPOCH)
    };
    // KIP-360: a producer id and epoch come together or not at all.
    let expected = match (r.producer_id.0, r.producer_epoch) {
        (NO_PRODUCER_ID, NO_PRODUCER_EPOCH) => None,
        (NO_PRODUCER_ID, _) | (_, NO_PRODUCER_EPOCH) => {
            return refuse(code(ResponseError::InvalidRequest));
        }
        (pid, epoch) => Some((pid, epoch)),
    };
    let id = r.transactional_id.as_ref().map(|t| t.0.as_str());
    match broker
        .txn()
        .init_producer_id(id, r.transaction_timeout_ms, expected)
        .await
    {
        Ok((pid, epoch)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch),
        Err(c) => refuse(c),
    }
}

/// The partitions of a request, in request order, without repeats.
fn flatten(topics: &[AddPartitionsToTxnTopic]) -> Vec<TopicPartition> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for t in topics {
        for p in &t.partitions {
            let tp = (t.name.0.to_string(), *p);
            if seen.insert(tp.clone()) {
                out.push(tp);
            }
        }
    }
    out
}

/// Per-partition results, grouped by topic in request order.
fn topic_results(results: Vec<(TopicPartition, Code)>) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut order: Vec<String> = Vec::new();
    let mut by_topic: BTreeMap<String, Vec<AddPartitionsToTxnPartitionResult>> = BTreeMap::new();
    for ((topic, p), c) in results {
        if !by_topic.contains_key(&topic) {
            order.push(topic.clone());
        }
        by_topic.entry(topic).or_default().push(
            AddPartitionsToTxnPartitionResult::default()
                .with_partition_index(p)
                .with_partition_error_code(c),
        );
    }
    order
        .into_iter()
        .map(|topic| {
            let parts = by_topic.remove(&topic).unwrap_or_default();
            AddPartitionsToTxnTopicResult::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_results_by_partition(parts)
        })
        .collect()
}

/// One transaction of AddPartitionsToTxn: every partition must exist (else
/// UNKNOWN_TOPIC_OR_PARTITION for those and OPERATION_NOT_ATTEMPTED for the rest, as
/// Kafka answers); then the coordinator adds (or, `verify_only`, checks) them.
async fn add_one(
    broker: &Broker,
    id: &str,
    producer_id: i64,
    producer_epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let partitions = flatten(topics);
    let unknown: Vec<bool> = partitions
        .iter()
        .map(|(t, p)| broker.log().partition(t, *p).is_none())
        .collect();
    let codes: Vec<Code> = if unknown.iter().any(|u| *u) {
        unknown
            .iter()
            .map(|u| {
                if *u {
                    code(ResponseError::UnknownTopicOrPartition)
                } else {
                    code(ResponseError::OperationNotAttempted)
                }
            })
            .collect()
    } else if verify_only {
        match broker
            .txn()
            .verify_partitions(id, producer_id, producer_epoch, &partitions)
            .await
        {
            Ok(codes) => codes,
            Err(c) => vec![c; partitions.len()],
        }
    } else {
        let c = broker
            .txn()
            .add_partitions(id, producer_id, producer_epoch, &partitions)
            .await;
        vec![for_version(c, version, 2); partitions.len()]
    };
    topic_results(partitions.into_iter().zip(codes).collect())
}

/// Answers AddPartitionsToTxn: one transaction from a producer (v0–v3), or a batch of
/// them (v4, Kafka's broker-to-coordinator form, `verify_only` or not).
pub async fn add_partitions_to_txn(
    broker: &Broker,
    r: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    if version < 4 {
        let results = add_one(
            broker,
            &r.v3_and_below_transactional_id.0,
            r.v3_and_below_producer_id.0,
            r.v3_and_below_producer_epoch,
            &r.v3_and_below_topics,
            false,
            version,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    let mut out = Vec::with_capacity(r.transactions.len());
    for t in &r.transactions {
        let results = add_one(
            broker,
            &t.transactional_id.0,
            t.producer_id.0,
            t.producer_epoch,
            &t.topics,
            t.verify_only,
            version,
        )
        .await;
        out.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(results),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(out)
}

/// Answers AddOffsetsToTxn.
pub async fn add_offsets_to_txn(
    broker: &Broker,
    r: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let c = broker
        .txn()
        .add_offsets(
            &r.transactional_id.0,
            r.producer_id.0,
            r.producer_epoch,
            &r.group_id.0,
        )
        .await;
    AddOffsetsToTxnResponse::default().with_error_code(for_version(c, version, 2))
}

/// Answers EndTxn.
pub async fn end_txn(broker: &Broker, r: EndTxnRequest, version: i16) -> EndTxnResponse {
    let c = broker
        .txn()
        .end_txn(
            &r.transactional_id.0,
            r.producer_id.0,
            r.producer_epoch,
            r.committed,
        )
        .await;
    EndTxnResponse::default().with_error_code(for_version(c, version, 2))
}

/// Answers DescribeTransactions.
pub async fn describe_transactions(
    broker: &Broker,
    r: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut states = Vec::with_capacity(r.transactional_ids.len());
    for id in r.transactional_ids {
        let described = DescribedState::default().with_transactional_id(id.clone());
        let state = match broker.txn().describe(&id.0).await {
            Err(c) => described.with_error_code(c),
            Ok(m) => {
                let mut topics: Vec<TopicData> = Vec::new();
                for (topic, p) in &m.partitions {
                    match topics.last_mut() {
                        Some(t) if t.topic.0.as_str() == topic => t.partitions.push(*p),
                        _ => topics.push(
                            TopicData::default()
                                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                                .with_partitions(vec![*p]),
                        ),
                    }
                }
                described
                    .with_transaction_state(StrBytes::from_static_str(m.state.name()))
                    .with_transaction_timeout_ms(m.timeout_ms)
                    .with_transaction_start_time_ms(m.start_ms)
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_producer_epoch(m.producer_epoch)
                    .with_topics(topics)
            }
        };
        states.push(state);
    }
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

/// Answers ListTransactions: filters by state names (unknown names are echoed back),
/// producer ids and (v1) how long the transaction has been running.
pub async fn list_transactions(
    broker: &Broker,
    r: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let mut states = HashSet::new();
    let mut unknown = Vec::new();
    for name in &r.state_filters {
        match TxnState::from_name(name) {
            Some(s) => {
                states.insert(s);
            }
            None => unknown.push(name.clone()),
        }
    }
    let producer_ids: HashSet<i64> = r.producer_id_filters.iter().map(|p| p.0).collect();
    let duration_ms = if version >= 1 { r.duration_filter } else { -1 };
    let now_ms = broker.txn().now_ms();
    let listed = broker
        .txn()
        .list()
        .await
        .into_iter()
        .filter(|d| {
            let m = &d.metadata;
            (producer_ids.is_empty() || producer_ids.contains(&m.producer_id))
                && (states.is_empty() || states.contains(&m.state))
                // Kafka: only transactions running for longer than the filter.
                && (duration_ms < 0 || now_ms.saturating_sub(m.start_ms) > duration_ms)
        })
        .map(|d| {
            ListedState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(d.transactional_id)))
                .with_producer_id(ProducerId(d.metadata.producer_id))
                .with_transaction_state(StrBytes::from_static_str(d.metadata.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(listed)
}
