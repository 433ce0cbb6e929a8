//! The transaction coordinator through the wire protocol, with raw requests: a committed
//! and an aborted transaction end with their markers; a new producer instance fences the
//! open transaction (CONCURRENT_TRANSACTIONS, then the next epoch but one, and the old
//! epoch is PRODUCER_FENCED); timeouts are checked and enforced; transactional batches
//! outside the transaction are refused (KIP-890 part 1); state survives a SIGKILL;
//! producer ids are never reused. Real clients run the exactly-once scenarios in
//! `interop/`.

mod common;

use bytes::Bytes;
use common::{DEADLINE, Medulla};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, RecordBatchDecoder, TimestampType};
use medulla::admin::Client;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

const TOPIC: &str = "ward-events";

async fn broker(dir: &std::path::Path, extra: &[&str]) -> (Medulla, Client) {
    let broker = Medulla::start(dir, extra);
    let mut c = Client::connect(&broker.addr).await.unwrap();
    let r = c
        .send(
            CreateTopicsRequest::default()
                .with_topics(vec![
                    CreatableTopic::default()
                        .with_name(TopicName(s(TOPIC)))
                        .with_num_partitions(2)
                        .with_replication_factor(1),
                ])
                .with_timeout_ms(5000),
        )
        .await
        .unwrap();
    assert!(r.topics[0].error_code == 0 || r.topics[0].error_code == 36);
    (broker, c)
}

async fn init_at(
    c: &mut Client,
    id: Option<&str>,
    timeout_ms: i32,
    expected: Option<(i64, i16)>,
    version: i16,
) -> InitProducerIdResponse {
    let (pid, epoch) = expected.unwrap_or((-1, -1));
    c.send_at(
        InitProducerIdRequest::default()
            .with_transactional_id(id.map(|i| TransactionalId(s(i))))
            .with_transaction_timeout_ms(timeout_ms)
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch),
        version,
    )
    .await
    .unwrap()
}

/// InitProducerId until it stops answering CONCURRENT_TRANSACTIONS, as clients retry.
async fn init(c: &mut Client, id: &str, timeout_ms: i32) -> (i64, i16) {
    let mut concurrent = 0;
    loop {
        let r = init_at(c, Some(id), timeout_ms, None, 4).await;
        if r.error_code == code(ResponseError::ConcurrentTransactions) && concurrent < 100 {
            concurrent += 1;
            continue;
        }
        assert_eq!(r.error_code, 0, "InitProducerId {id}");
        return (r.producer_id.0, r.producer_epoch);
    }
}

/// AddPartitionsToTxn (v3) of `partitions` of `topic`: the code of each partition.
async fn add_partitions(
    c: &mut Client,
    id: &str,
    (pid, epoch): (i64, i16),
    topic: &str,
    partitions: &[i32],
) -> Vec<i16> {
    let r = c
        .send_at(
            AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(s(id)))
                .with_v3_and_below_producer_id(ProducerId(pid))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partitions(partitions.to_vec()),
                ]),
            3,
        )
        .await
        .unwrap();
    r.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect()
}

async fn end_at(c: &mut Client, id: &str, (pid, epoch): (i64, i16), commit: bool, v: i16) -> i16 {
    c.send_at(
        EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s(id)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit),
        v,
    )
    .await
    .unwrap()
    .error_code
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One batch of `values` from producer `(pid, epoch)` starting at `sequence`.
fn batch((pid, epoch): (i64, i16), sequence: i32, values: &[&str], transactional: bool) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional,
            control: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: sequence + i as i32,
            timestamp: now_ms(),
            key: None,
            value: Some(Bytes::copy_from_slice(v.as_bytes())),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    common::encode_batch(&records)
}

/// Produce (v9, acks=all) of one batch to `TOPIC`-`partition`: the partition's code and
/// error message.
async fn produce(
    c: &mut Client,
    id: Option<&str>,
    partition: i32,
    records: Bytes,
) -> (i16, Option<String>) {
    let r = c
        .send_at(
            ProduceRequest::default()
                .with_transactional_id(id.map(|i| TransactionalId(s(i))))
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(TopicName(s(TOPIC)))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(partition)
                                .with_records(Some(records)),
                        ]),
                ]),
            9,
        )
        .await
        .unwrap();
    let p = &r.responses[0].partition_responses[0];
    (
        p.error_code,
        p.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// What a partition holds, record by record: `Data(value)` or `Marker(commit, epoch)`.
#[derive(Debug, PartialEq, Eq)]
enum Rec {
    Data(String),
    Marker(bool, i16),
}

async fn read_partition(c: &mut Client, partition: i32) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let r = c
            .send_at(
                FetchRequest::default()
                    .with_max_wait_ms(0)
                    .with_max_bytes(1 << 20)
                    .with_isolation_level(0)
                    .with_topics(vec![
                        FetchTopic::default()
                            .with_topic(TopicName(s(TOPIC)))
                            .with_partitions(vec![
                                FetchPartition::default()
                                    .with_partition(partition)
                                    .with_fetch_offset(offset)
                                    .with_partition_max_bytes(1 << 20),
                            ]),
                    ]),
                12,
            )
            .await
            .unwrap();
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        let mut bytes = p.records.clone().unwrap_or_default();
        if bytes.is_empty() {
            return out;
        }
        for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
            for r in set.records {
                offset = r.offset + 1;
                out.push(if r.control {
                    let key = r.key.unwrap();
                    Rec::Marker(key[3] == 1, r.producer_epoch)
                } else {
                    Rec::Data(String::from_utf8(r.value.unwrap().to_vec()).unwrap())
                });
            }
        }
        if offset >= p.high_watermark {
            return out;
        }
    }
}

async fn describe(c: &mut Client, id: &str) -> describe_transactions_response::TransactionState {
    let r = c
        .send_at(
            DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(s(id))]),
            0,
        )
        .await
        .unwrap();
    r.transaction_states.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_and_aborted_transactions_end_with_their_markers() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, mut c) = broker(dir.path(), &[]).await;
    // The transaction coordinator is this node.
    let found = c
        .send_at(
            FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![s("admissions-tx")]),
            4,
        )
        .await
        .unwrap();
    assert_eq!(found.coordinators[0].error_code, 0);
    assert_eq!(found.coordinators[0].node_id.0, 1);

    let id = "admissions-tx";
    let producer = init(&mut c, id, 60_000).await;
    assert_eq!(producer.1, 0);
    assert_eq!(
        add_partitions(&mut c, id, producer, TOPIC, &[0, 1]).await,
        [0, 0]
    );
    let ongoing = describe(&mut c, id).await;
    assert_eq!(ongoing.transaction_state.as_str(), "Ongoing");
    assert_eq!(ongoing.topics[0].partitions, vec![0, 1]);
    assert!(ongoing.transaction_start_time_ms > 0);
    let b = batch(producer, 0, &["a1", "a2"], true);
    assert_eq!(produce(&mut c, Some(id), 0, b.clone()).await.0, 0);
    // A retried batch is answered as written, not written twice.
    assert_eq!(produce(&mut c, Some(id), 0, b).await.0, 0);
    assert_eq!(
        produce(&mut c, Some(id), 1, batch(producer, 0, &["b1"], true))
            .await
            .0,
        0
    );
    assert_eq!(end_at(&mut c, id, producer, true, 3).await, 0);
    // A retried EndTxn for the same outcome is NONE; the other outcome is refused.
    assert_eq!(end_at(&mut c, id, producer, true, 3).await, 0);
    assert_eq!(
        end_at(&mut c, id, producer, false, 3).await,
        code(ResponseError::InvalidTxnState)
    );
    assert_eq!(
        describe(&mut c, id).await.transaction_state.as_str(),
        "CompleteCommit"
    );

    // The next transaction, aborted, on partition 0 only.
    assert_eq!(add_partitions(&mut c, id, producer, TOPIC, &[0]).await, [0]);
    assert_eq!(
        produce(&mut c, Some(id), 0, batch(producer, 2, &["a3"], true))
            .await
            .0,
        0
    );
    assert_eq!(end_at(&mut c, id, producer, false, 4).await, 0);
    assert_eq!(
        describe(&mut c, id).await.transaction_state.as_str(),
        "CompleteAbort"
    );

    assert_eq!(
        read_partition(&mut c, 0).await,
        vec![
            Rec::Data("a1".into()),
            Rec::Data("a2".into()),
            Rec::Marker(true, 0),
            Rec::Data("a3".into()),
            Rec::Marker(false, 0),
        ]
    );
    assert_eq!(
        read_partition(&mut c, 1).await,
        vec![Rec::Data("b1".into()), Rec::Marker(true, 0)]
    );
    // Committing a transaction that never started is refused.
    let next = init(&mut c, id, 60_000).await;
    assert_eq!(
        end_at(&mut c, id, next, true, 3).await,
        code(ResponseError::InvalidTxnState)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_fences_the_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, mut c) = broker(dir.path(), &[]).await;
    let id = "lab-results-tx";
    let old = init(&mut c, id, 60_000).await;
    assert_eq!(add_partitions(&mut c, id, old, TOPIC, &[0]).await, [0]);
    assert_eq!(
        produce(&mut c, Some(id), 0, batch(old, 0, &["pending"], true))
            .await
            .0,
        0
    );
    // The new instance is told to retry while the open transaction is aborted...
    let first = init_at(&mut c, Some(id), 60_000, None, 4).await;
    assert_eq!(
        first.error_code,
        code(ResponseError::ConcurrentTransactions)
    );
    assert_eq!((first.producer_id.0, first.producer_epoch), (-1, -1));
    // ...then gets the epoch after the fencing one.
    let new = init(&mut c, id, 60_000).await;
    assert_eq!(new, (old.0, old.1 + 2));
    assert_eq!(
        read_partition(&mut c, 0).await,
        vec![Rec::Data("pending".into()), Rec::Marker(false, old.1 + 1)]
    );
    // The old instance is fenced: PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for
    // request versions that predate it.
    assert_eq!(
        end_at(&mut c, id, old, true, 2).await,
        code(ResponseError::ProducerFenced)
    );
    assert_eq!(
        end_at(&mut c, id, old, true, 1).await,
        code(ResponseError::InvalidProducerEpoch)
    );
    assert_eq!(
        add_partitions(&mut c, id, old, TOPIC, &[1]).await,
        [code(ResponseError::ProducerFenced)]
    );
    assert_eq!(
        produce(&mut c, Some(id), 0, batch(old, 1, &["late"], true))
            .await
            .0,
        code(ResponseError::InvalidProducerEpoch)
    );
    // The new instance works.
    assert_eq!(add_partitions(&mut c, id, new, TOPIC, &[0]).await, [0]);
    assert_eq!(
        produce(&mut c, Some(id), 0, batch(new, 0, &["fresh"], true))
            .await
            .0,
        0
    );
    assert_eq!(end_at(&mut c, id, new, true, 3).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip_360_a_producer_resumes_with_its_id_and_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, mut c) = broker(dir.path(), &[]).await;
    let id = "resume-tx";
    let (pid, epoch) = init(&mut c, id, 60_000).await;
    let bumped = init_at(&mut c, Some(id), 60_000, Some((pid, epoch)), 4).await;
    assert_eq!((bumped.error_code, bumped.producer_epoch), (0, epoch + 1));
    // The retry of a bump whose answer was lost gets the same epoch.
    let retried = init_at(&mut c, Some(id), 60_000, Some((pid, epoch)), 4).await;
    assert_eq!((retried.error_code, retried.producer_epoch), (0, epoch + 1));
    // Another producer id is fenced; before v4 the code is INVALID_PRODUCER_EPOCH.
    for (v, want) in [
        (4, ResponseError::ProducerFenced),
        (3, ResponseError::InvalidProducerEpoch),
    ] {
        let r = init_at(&mut c, Some(id), 60_000, Some((pid + 1, 0)), v).await;
        assert_eq!(r.error_code, code(want), "v{v}");
    }
    // An id without an epoch (or the reverse) is malformed.
    let r = c
        .send_at(
            InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s(id))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(pid)),
            4,
        )
        .await
        .unwrap();
    assert_eq!(r.error_code, code(ResponseError::InvalidRequest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_timeouts_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, mut c) = broker(
        dir.path(),
        &["--override", "transaction.max.timeout.ms=30000"],
    )
    .await;
    for timeout_ms in [0, -1, 30_001] {
        let r = init_at(&mut c, Some("t-tx"), timeout_ms, None, 1).await;
        assert_eq!(
            r.error_code,
            code(ResponseError::InvalidTransactionTimeout),
            "{timeout_ms}"
        );
    }
    assert_eq!(
        init_at(&mut c, Some("t-tx"), 30_000, None, 1)
            .await
            .error_code,
        0
    );
    // An empty transactional id is malformed; a null one is an idempotent producer.
    assert_eq!(
        init_at(&mut c, Some(""), 30_000, None, 1).await.error_code,
        code(ResponseError::InvalidRequest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, mut c) = broker(
        dir.path(),
        &[
            "--override",
            "transaction.abort.timed.out.transaction.cleanup.interval.ms=100",
        ],
    )
    .await;
    let id = "slow-tx";
    let producer = init(&mut c, id, 1000).await;
    assert_eq!(add_partitions(&mut c, id, producer, TOPIC, &[1]).await, [0]);
    assert_eq!(
        produce(&mut c, Some(id), 1, batch(producer, 0, &["stuck"], true))
            .await
            .0,
        0
    );
    let mut poll = Client::connect(&_broker.addr).await.unwrap();
    let start = std::time::Instant::now();
    let aborted = loop {
        let d = describe(&mut poll, id).await;
        if d.transaction_state.as_str() == "CompleteAbort" {
            break d;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the transaction was not aborted: still {}",
            d.transaction_state.as_str()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(aborted.producer_epoch, producer.1 + 1);
    assert_eq!(
        read_partition(&mut c, 1).await,
        vec![
            Rec::Data("stuck".into()),
            Rec::Marker(false, producer.1 + 1)
        ]
    );
    // The producer learns it was fenced on its next request.
    assert_eq!(
        end_at(&mut c, id, producer, true, 3).await,
        code(ResponseError::ProducerFenced)
    );
    assert_eq!(
        produce(&mut c, Some(id), 1, batch(producer, 1, &["more"], true))
            .await
            .0,
        code(ResponseError::InvalidProducerEpoch)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_batches_outside_the_transaction_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, mut c) = broker(dir.path(), &[]).await;
    let id = "strict-tx";
    let producer = init(&mut c, id, 60_000).await;
    // Not added yet: refused, nothing written (no hanging transaction).
    let (refused, message) = produce(&mut c, Some(id), 0, batch(producer, 0, &["x"], true)).await;
    assert_eq!(refused, code(ResponseError::InvalidTxnState));
    assert_eq!(
        message.as_deref(),
        Some("Partition was not added to the transaction")
    );
    assert_eq!(add_partitions(&mut c, id, producer, TOPIC, &[0]).await, [0]);
    assert_eq!(
        produce(&mut c, Some(id), 1, batch(producer, 0, &["x"], true))
            .await
            .0,
        code(ResponseError::InvalidTxnState)
    );
    // Another producer id under this transactional id, an unknown transactional id, a
    // transactional batch without one.
    assert_eq!(
        produce(
            &mut c,
            Some(id),
            0,
            batch((producer.0 + 50, 0), 0, &["x"], true)
        )
        .await
        .0,
        code(ResponseError::InvalidProducerIdMapping)
    );
    assert_eq!(
        produce(&mut c, Some("nobody"), 0, batch(producer, 0, &["x"], true))
            .await
            .0,
        code(ResponseError::InvalidProducerIdMapping)
    );
    assert_eq!(
        produce(&mut c, None, 0, batch(producer, 0, &["x"], true))
            .await
            .0,
        code(ResponseError::TransactionalIdAuthorizationFailed)
    );
    assert!(read_partition(&mut c, 0).await.is_empty());
    assert!(read_partition(&mut c, 1).await.is_empty());
    // Unknown partitions fail the whole AddPartitionsToTxn, naming the others as not
    // attempted.
    assert_eq!(
        add_partitions(&mut c, id, producer, TOPIC, &[1, 7]).await,
        [
            code(ResponseError::OperationNotAttempted),
            code(ResponseError::UnknownTopicOrPartition)
        ]
    );
    assert_eq!(describe(&mut c, id).await.topics[0].partitions, vec![0]);
    // AddPartitionsToTxn v4, verify_only (Kafka's broker-side check).
    let r = c
        .send_at(
            AddPartitionsToTxnRequest::default().with_transactions(vec![
                AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(TransactionalId(s(id)))
                    .with_producer_id(ProducerId(producer.0))
                    .with_producer_epoch(producer.1)
                    .with_verify_only(true)
                    .with_topics(vec![
                        AddPartitionsToTxnTopic::default()
                            .with_name(TopicName(s(TOPIC)))
                            .with_partitions(vec![0, 1]),
                    ]),
            ]),
            4,
        )
        .await
        .unwrap();
    let codes: Vec<i16> = r.results_by_transaction[0].topic_results[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect();
    assert_eq!(codes, [0, code(ResponseError::InvalidTxnState)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_join_the_transaction_and_transactions_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, mut c) = broker(dir.path(), &[]).await;
    let (a, b) = ("billing-tx", "pharmacy-tx");
    let pa = init(&mut c, a, 60_000).await;
    let pb = init(&mut c, b, 60_000).await;
    assert_ne!(pa.0, pb.0);
    let r = c
        .send_at(
            AddOffsetsToTxnRequest::default()
                .with_transactional_id(TransactionalId(s(a)))
                .with_producer_id(ProducerId(pa.0))
                .with_producer_epoch(pa.1)
                .with_group_id(GroupId(s("billing"))),
            3,
        )
        .await
        .unwrap();
    assert_eq!(r.error_code, 0);
    // TxnOffsetCommit is verified against the open transaction: the added group is
    // accepted; a group never added, or b (no open transaction), is INVALID_TXN_STATE.
    let commit = |id: &str, (pid, epoch): (i64, i16), group: &str| {
        use kafka_protocol::messages::txn_offset_commit_request::{
            TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
        };
        TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s(id)))
            .with_group_id(GroupId(s(group)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_topics(vec![
                TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(TOPIC)))
                    .with_partitions(vec![
                        TxnOffsetCommitRequestPartition::default().with_committed_offset(1),
                    ]),
            ])
    };
    for (id, producer, group, expected) in [
        (a, pa, "billing", 0),
        (a, pa, "pharmacy", code(ResponseError::InvalidTxnState)),
        (b, pb, "billing", code(ResponseError::InvalidTxnState)),
        (
            a,
            (pa.0, pa.1 + 1),
            "billing",
            code(ResponseError::ProducerFenced),
        ),
        (
            a,
            pb,
            "billing",
            code(ResponseError::InvalidProducerIdMapping),
        ),
    ] {
        let r = c.send_at(commit(id, producer, group), 3).await.unwrap();
        assert_eq!(
            r.topics[0].partitions[0].error_code, expected,
            "TxnOffsetCommit {id} {producer:?} {group}"
        );
    }
    let d = describe(&mut c, a).await;
    assert_eq!(d.transaction_state.as_str(), "Ongoing");
    assert_eq!(d.topics[0].topic.0.as_str(), "__consumer_offsets");
    let listed = |r: ListTransactionsResponse| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = r
            .transaction_states
            .iter()
            .map(|t| {
                (
                    t.transactional_id.0.to_string(),
                    t.transaction_state.to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let all = c
        .send_at(ListTransactionsRequest::default(), 0)
        .await
        .unwrap();
    assert_eq!(
        listed(all),
        vec![
            (a.to_owned(), "Ongoing".to_owned()),
            (b.to_owned(), "Empty".to_owned())
        ]
    );
    let filtered = c
        .send_at(
            ListTransactionsRequest::default()
                .with_state_filters(vec![s("Ongoing"), s("Bogus")])
                .with_producer_id_filters(vec![ProducerId(pa.0), ProducerId(pb.0)]),
            1,
        )
        .await
        .unwrap();
    assert_eq!(filtered.unknown_state_filters, vec![s("Bogus")]);
    assert_eq!(listed(filtered), vec![(a.to_owned(), "Ongoing".to_owned())]);
    // v1: only transactions running longer than the filter (an hour: none).
    let long = c
        .send_at(
            ListTransactionsRequest::default()
                .with_state_filters(vec![s("Ongoing")])
                .with_duration_filter(3_600_000),
            1,
        )
        .await
        .unwrap();
    assert!(long.transaction_states.is_empty());
    assert_eq!(end_at(&mut c, a, pa, true, 3).await, 0);
    let unknown = describe(&mut c, "never-seen").await;
    assert_eq!(
        unknown.error_code,
        code(ResponseError::TransactionalIdNotFound)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_and_producer_ids_survive_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (broker1, mut c) = broker(dir.path(), &[]).await;
    let idempotent = init_at(&mut c, None, 0, None, 4).await;
    assert_eq!((idempotent.error_code, idempotent.producer_epoch), (0, 0));
    let done = init(&mut c, "done-tx", 60_000).await;
    assert_eq!(
        add_partitions(&mut c, "done-tx", done, TOPIC, &[0]).await,
        [0]
    );
    assert_eq!(end_at(&mut c, "done-tx", done, true, 3).await, 0);
    let open = init(&mut c, "open-tx", 60_000).await;
    assert_eq!(
        add_partitions(&mut c, "open-tx", open, TOPIC, &[1]).await,
        [0]
    );
    assert_eq!(
        produce(
            &mut c,
            Some("open-tx"),
            1,
            batch(open, 0, &["in flight"], true)
        )
        .await
        .0,
        0
    );
    broker1.kill9();

    let broker2 = Medulla::start(dir.path(), &[]);
    let mut c = Client::connect(&broker2.addr).await.unwrap();
    let d = describe(&mut c, "open-tx").await;
    assert_eq!(d.transaction_state.as_str(), "Ongoing");
    assert_eq!((d.producer_id.0, d.producer_epoch), open);
    assert_eq!(d.topics[0].partitions, vec![1]);
    // The producer carries on where it was.
    assert_eq!(
        produce(&mut c, Some("open-tx"), 1, batch(open, 1, &["after"], true))
            .await
            .0,
        0
    );
    assert_eq!(end_at(&mut c, "open-tx", open, true, 3).await, 0);
    assert_eq!(
        read_partition(&mut c, 1).await,
        vec![
            Rec::Data("in flight".into()),
            Rec::Data("after".into()),
            Rec::Marker(true, open.1)
        ]
    );
    assert_eq!(
        describe(&mut c, "done-tx").await.transaction_state.as_str(),
        "CompleteCommit"
    );
    assert_eq!(init(&mut c, "done-tx", 60_000).await, (done.0, done.1 + 1));
    // No producer id is handed out twice across the crash.
    let before = [idempotent.producer_id.0, done.0, open.0];
    for _ in 0..3 {
        let fresh = init_at(&mut c, None, 0, None, 2).await;
        assert_eq!(fresh.error_code, 0);
        assert!(before.iter().all(|p| fresh.producer_id.0 > *p));
    }
}

/// librdkafka's transactional producer against the coordinator: init, commit, abort,
/// and fencing by a second instance (the full exactly-once scenarios, with consumers and
/// offsets, run in `transactions.rs` and `interop/`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_commits_aborts_and_is_fenced() {
    use rdkafka::error::KafkaError;
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let (broker, mut c) = broker(dir.path(), &[]).await;
    let producer = |id: &str| -> FutureProducer {
        common::client_config(&broker.addr)
            .set("transactional.id", id)
            .set("transaction.timeout.ms", "60000")
            .create()
            .expect("transactional producer")
    };
    let timeout = Duration::from_secs(30);
    let p = producer("rdkafka-tx");
    p.init_transactions(timeout).expect("init_transactions");
    let send = |p: &FutureProducer, partition: i32, value: &'static str| {
        let p = p.clone();
        async move {
            p.send(
                FutureRecord::<(), _>::to(TOPIC)
                    .partition(partition)
                    .payload(value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
        }
    };
    p.begin_transaction().unwrap();
    send(&p, 0, "c0").await.unwrap();
    send(&p, 1, "c1").await.unwrap();
    p.commit_transaction(timeout).expect("commit_transaction");
    p.begin_transaction().unwrap();
    send(&p, 0, "a0").await.unwrap();
    p.abort_transaction(timeout).expect("abort_transaction");
    let d = describe(&mut c, "rdkafka-tx").await;
    assert_eq!(d.transaction_state.as_str(), "CompleteAbort");
    let epoch = d.producer_epoch;
    assert_eq!(
        read_partition(&mut c, 0).await,
        vec![
            Rec::Data("c0".into()),
            Rec::Marker(true, epoch),
            Rec::Data("a0".into()),
            Rec::Marker(false, epoch),
        ]
    );

    // A second instance fences the first, whose open transaction is aborted.
    p.begin_transaction().unwrap();
    send(&p, 1, "orphan").await.unwrap();
    let second = producer("rdkafka-tx");
    second
        .init_transactions(timeout)
        .expect("second init_transactions");
    let d = describe(&mut c, "rdkafka-tx").await;
    assert_eq!(d.producer_epoch, epoch + 2);
    match p.commit_transaction(timeout) {
        Err(KafkaError::Transaction(e)) => assert!(e.is_fatal(), "{e:?}"),
        other => panic!("the fenced producer committed: {other:?}"),
    }
    assert_eq!(
        read_partition(&mut c, 1).await,
        vec![
            Rec::Data("c1".into()),
            Rec::Marker(true, epoch),
            Rec::Data("orphan".into()),
            Rec::Marker(false, epoch + 1),
        ]
    );
    second.begin_transaction().unwrap();
    send(&second, 1, "second").await.unwrap();
    second.commit_transaction(timeout).unwrap();
}
