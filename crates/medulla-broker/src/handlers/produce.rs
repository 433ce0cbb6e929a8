//! Produce: validate and append in request order; with `acks=all` under the `always`
//! fsync policy, answer only after the data is on disk (the wait is the second phase,
//! so pipelined requests share one fsync). A transactional batch is appended only to a
//! partition of its producer's open transaction (the transaction coordinator verifies
//! it, as Kafka 3.6+ does). On topics with Confluent's schema validation on, each
//! record's schema id is checked inside the log's validation (`schema_validation.rs`).

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use medulla_log::{AppendInfo, LogError, PartitionLog};

use crate::broker::Broker;
use crate::error::{kafka_code, kafka_message};
use crate::handlers::{Reply, blocking};
use crate::schema_validation::{self, SchemaIdCheck};

/// One partition's outcome after phase 1.
enum Outcome {
    /// Appended; durable wait may still be needed.
    Appended(Arc<PartitionLog>, AppendInfo),
    /// Refused with a Kafka error code and message.
    Failed(i16, Option<String>),
    /// Refused for some records only (KIP-467): INVALID_RECORD naming them by index, so
    /// the client fails those and retries the rest.
    RecordErrors(String, Vec<i32>),
}

/// Runs Produce.
pub async fn handle(broker: &Broker, request: ProduceRequest, version: i16) -> Reply {
    let acks = request.acks;
    if acks != 0 && acks != 1 && acks != -1 {
        return refuse_all(request, ResponseError::InvalidRequiredAcks.code(), None);
    }
    let transactional_id = request
        .transactional_id
        .as_ref()
        .map(|t| t.0.as_str().to_owned());
    if transactional_id.is_none() && has_transactional_batch(&request) {
        // Kafka: transactional records need a transactional id to authorize against.
        return refuse_all(
            request,
            ResponseError::TransactionalIdAuthorizationFailed.code(),
            Some("transactional records need a transactional id"),
        );
    }

    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = if version >= 13 {
            broker
                .log()
                .topic_by_id(topic.topic_id)
                .map(|m| TopicName(StrBytes::from_string(m.name)))
        } else {
            Some(topic.name.clone())
        };
        let mut parts = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            let outcome = match (&name, p.records) {
                (None, _) => Outcome::Failed(ResponseError::UnknownTopicId.code(), None),
                (Some(_), None) => Outcome::Failed(
                    ResponseError::CorruptMessage.code(),
                    Some("null records".to_owned()),
                ),
                (Some(name), Some(records)) => match broker.log().partition(&name.0, p.index) {
                    None => Outcome::Failed(ResponseError::UnknownTopicOrPartition.code(), None),
                    Some(log) => {
                        match client_batch_policy(broker, &name.0, &records, acks, version) {
                            Err((code, message)) => {
                                tracing::warn!(topic = %name.0.as_str(), partition = p.index, "produce refused: {message}");
                                Outcome::Failed(code, Some(message))
                            }
                            Ok(schema_rules) => {
                                // A transactional batch is appended only into its
                                // producer's open transaction, and the permit keeps the
                                // transaction from ending until the append is done.
                                let permit = match &transactional_id {
                                    Some(id) => {
                                        verify_transactional(broker, id, &name.0, p.index, &records)
                                            .await
                                    }
                                    None => Ok(None),
                                };
                                match permit {
                                    Err(refusal) => {
                                        tracing::debug!(topic = %name.0.as_str(), partition = p.index, code = refusal.code, "transactional produce refused: {}", refusal.message);
                                        Outcome::Failed(
                                            refusal.code,
                                            Some(refusal.message.to_owned()),
                                        )
                                    }
                                    Ok(permit) => {
                                        let log2 = log.clone();
                                        let appended = match schema_rules {
                                            None => blocking(move || log2.append(&records)).await,
                                            Some((rules, check)) => {
                                                let topic = name.0.clone();
                                                blocking(move || {
                                                    let mut check = schema_validation::record_check(
                                                        &*check,
                                                        topic.as_str(),
                                                        rules,
                                                    );
                                                    log2.append_checked(&records, &mut check)
                                                })
                                                .await
                                            }
                                        };
                                        drop(permit);
                                        match appended {
                                            Ok(info) => Outcome::Appended(log, info),
                                            Err(LogError::KeylessRecords { record_indexes }) => {
                                                Outcome::RecordErrors(
                                                    "a compacted topic cannot accept records without a key"
                                                        .to_owned(),
                                                    record_indexes,
                                                )
                                            }
                                            Err(LogError::RefusedRecords {
                                                reason,
                                                record_indexes,
                                            }) => {
                                                tracing::debug!(topic = %name.0.as_str(), partition = p.index, "produce refused: {reason}");
                                                Outcome::RecordErrors(reason, record_indexes)
                                            }
                                            Err(e) => {
                                                log_refusal(&name.0, p.index, &e);
                                                Outcome::Failed(kafka_code(&e), Some(kafka_message(&e)))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                },
            };
            parts.push((p.index, outcome));
        }
        topics.push((topic.name, topic.topic_id, parts));
    }

    if acks == 0 {
        let failed = topics
            .iter()
            .flat_map(|(_, _, parts)| parts)
            .any(|(_, o)| !matches!(o, Outcome::Appended(..)));
        return if failed { Reply::Close } else { Reply::None };
    }
    let must_sync = acks == -1 && broker.log().fsync_policy() == medulla_log::FsyncPolicy::Always;
    if !must_sync {
        return Reply::Now(ResponseKind::Produce(build(topics)));
    }
    Reply::Later(Box::pin(async move {
        // One wait per partition; the log's group commit merges them with every other
        // request's waits on the same file.
        let mut waits = Vec::new();
        for (ti, (_, _, parts)) in topics.iter().enumerate() {
            for (pi, (_, outcome)) in parts.iter().enumerate() {
                if let Outcome::Appended(log, info) = outcome {
                    let log = log.clone();
                    let end = info.last_offset + 1;
                    waits.push((
                        ti,
                        pi,
                        tokio::task::spawn_blocking(move || log.wait_durable(end)),
                    ));
                }
            }
        }
        for (ti, pi, wait) in waits {
            let result = match wait.await {
                Ok(r) => r,
                Err(e) => Err(LogError::Io(std::io::Error::other(e.to_string()))),
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "fsync failed; refusing the acknowledgement");
                topics[ti].2[pi].1 = Outcome::Failed(kafka_code(&e), Some(kafka_message(&e)));
            }
        }
        ResponseKind::Produce(build(topics)).into()
    }))
}

/// What Kafka refuses before appending: `acks=all` with `min.insync.replicas` above the
/// one replica there is (NOT_ENOUGH_REPLICAS); and what it refuses from clients that the
/// log accepts from the broker itself: control
/// batches (transaction markers are the coordinator's to write: INVALID_RECORD), and on
/// CreateTime topics timestamps outside `message.timestamp.before.max.ms` /
/// `message.timestamp.after.max.ms` of now (INVALID_TIMESTAMP). Kafka checks each record's
/// timestamp; a v2 batch carries its first (base) and largest (max) timestamp, which is
/// what is checked here. Malformed bytes pass through, for the log to refuse precisely.
///
/// Ok carries the topic's schema validation and the registry to ask, when it is on
/// (`None`, costing nothing more, when it is off); on with no registry configured is
/// INVALID_RECORD.
fn client_batch_policy(
    broker: &Broker,
    topic: &str,
    mut records: &[u8],
    acks: i16,
    version: i16,
) -> Result<Option<SchemaRules>, (i16, String)> {
    // The audit trail is written by the broker alone, as Kafka's internal topics are.
    if crate::audit::is_protected(topic) {
        return Err((
            ResponseError::InvalidTopicException.code(),
            format!("Cannot append to internal topic {topic}"),
        ));
    }
    // Kafka's ProduceRequest.validateRecords for v3+: exactly one batch per partition,
    // and zstd only from v7.
    if records.is_empty() {
        return Err((
            ResponseError::InvalidRecord.code(),
            format!(
                "Produce requests with version {version} must have at least one record batch per partition"
            ),
        ));
    }
    if let Ok(header) = medulla_log::batch::parse_header(records) {
        // A second whole batch header after the first: Kafka's "exactly one batch". (A
        // torn tail is not a batch: the log refuses it as CORRUPT_MESSAGE.)
        if header.size_bytes() < records.len()
            && medulla_log::batch::parse_header(&records[header.size_bytes()..]).is_ok()
        {
            return Err((
                ResponseError::InvalidRecord.code(),
                format!(
                    "Produce requests with version {version} are only allowed to contain exactly one record batch per partition"
                ),
            ));
        }
        if version < 7
            && matches!(
                header.compression(),
                Ok(medulla_log::batch::Compression::Zstd)
            )
        {
            return Err((
                ResponseError::UnsupportedCompressionType.code(),
                format!(
                    "Produce requests with version {version} cannot use zstd (it needs version 7)"
                ),
            ));
        }
    }
    let Some(meta) = broker.log().topic(topic) else {
        return Ok(None);
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let config = &meta.config;
    // One replica is the whole in-sync set: acks=all cannot be met when the topic asks for
    // more, and Kafka refuses before appending.
    if acks == -1 && config.min_insync_replicas > 1 {
        return Err((
            ResponseError::NotEnoughReplicas.code(),
            format!(
                "min.insync.replicas={} but this single-node broker has 1 in-sync replica",
                config.min_insync_replicas
            ),
        ));
    }
    let schema_rules = match (config.schema_validation, &broker.config().schema_check) {
        (rules, _) if rules.is_off() => None,
        (rules, Some(check)) => Some((rules, check.clone())),
        (_, None) => {
            return Err((
                ResponseError::InvalidRecord.code(),
                schema_validation::no_registry_message(topic),
            ));
        }
    };
    while !records.is_empty() {
        let Ok(header) = medulla_log::batch::parse_header(records) else {
            return Ok(schema_rules);
        };
        if header.is_control() {
            return Err((
                ResponseError::InvalidRecord.code(),
                "control batches may not be produced by clients".into(),
            ));
        }
        if !config.log_append_time {
            for ts in [header.base_timestamp, header.max_timestamp] {
                if ts >= 0 && now_ms.saturating_sub(ts) > config.message_timestamp_before_max_ms {
                    return Err((
                        ResponseError::InvalidTimestamp.code(),
                        format!(
                            "timestamp {ts} is more than message.timestamp.before.max.ms={} before now",
                            config.message_timestamp_before_max_ms
                        ),
                    ));
                }
                if ts.saturating_sub(now_ms) > config.message_timestamp_after_max_ms {
                    return Err((
                        ResponseError::InvalidTimestamp.code(),
                        format!(
                            "timestamp {ts} is more than message.timestamp.after.max.ms={} after now",
                            config.message_timestamp_after_max_ms
                        ),
                    ));
                }
            }
        }
        let size = header.size_bytes();
        if size > records.len() {
            return Ok(schema_rules);
        }
        records = &records[size..];
    }
    Ok(schema_rules)
}

/// A topic's schema validation and the registry that answers it.
type SchemaRules = (medulla_log::SchemaValidation, Arc<dyn SchemaIdCheck>);

/// Whether any partition of `request` carries a transactional batch.
pub(crate) fn has_transactional_batch(request: &ProduceRequest) -> bool {
    request
        .topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter())
        .filter_map(|p| p.records.as_ref())
        .any(|r| medulla_log::batch::parse_header(r).is_ok_and(|h| h.is_transactional()))
}

/// For a transactional batch of the producer `transactional_id` names: the coordinator's
/// permit to append it (KIP-890 part 1 verification), or its refusal. `None` for a
/// batch that is not transactional (an idempotent batch of a transactional producer
/// needs no permit; the log refuses it if a transaction is open) or that does not parse
/// (the log refuses it precisely).
async fn verify_transactional(
    broker: &Broker,
    transactional_id: &str,
    topic: &str,
    partition: i32,
    records: &[u8],
) -> Result<Option<crate::txn::coordinator::AppendPermit>, crate::txn::state::Refusal> {
    let Ok(header) = medulla_log::batch::parse_header(records) else {
        return Ok(None);
    };
    if !header.is_transactional() {
        return Ok(None);
    }
    broker
        .txn()
        .begin_append(
            transactional_id,
            header.producer_id,
            header.producer_epoch,
            &(topic.to_owned(), partition),
        )
        .await
        .map(Some)
}

/// Answers every partition of `request` with `code`, appending nothing.
/// Every partition of `request` refused with `code` (authorization refusals).
pub(crate) fn refused(request: ProduceRequest, code: i16) -> ProduceResponse {
    match refuse_all(request, code, None) {
        Reply::Now(ResponseKind::Produce(r)) => r,
        _ => ProduceResponse::default(),
    }
}

fn refuse_all(request: ProduceRequest, code: i16, message: Option<&str>) -> Reply {
    let topics = request
        .topic_data
        .into_iter()
        .map(|t| {
            let parts = t
                .partition_data
                .iter()
                .map(|p| (p.index, Outcome::Failed(code, message.map(str::to_owned))))
                .collect();
            (t.name, t.topic_id, parts)
        })
        .collect();
    Reply::Now(ResponseKind::Produce(build(topics)))
}

fn log_refusal(topic: &str, partition: i32, e: &LogError) {
    match e {
        LogError::Io(_) => tracing::error!(topic, partition, error = %e, "append failed"),
        _ => tracing::warn!(topic, partition, error = %e, "produce refused"),
    }
}

type TopicOutcomes = Vec<(TopicName, uuid::Uuid, Vec<(i32, Outcome)>)>;

fn build(topics: TopicOutcomes) -> ProduceResponse {
    let responses = topics
        .into_iter()
        .map(|(name, id, parts)| {
            let partition_responses = parts
                .into_iter()
                .map(|(index, outcome)| match outcome {
                    Outcome::Appended(_, info) => PartitionProduceResponse::default()
                        .with_index(index)
                        .with_base_offset(info.base_offset)
                        .with_log_append_time_ms(info.log_append_time_ms)
                        .with_log_start_offset(info.log_start_offset),
                    Outcome::RecordErrors(message, indexes) => PartitionProduceResponse::default()
                        .with_index(index)
                        .with_error_code(ResponseError::InvalidRecord.code())
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1)
                        .with_record_errors(
                            indexes
                                .into_iter()
                                .map(|i| BatchIndexAndErrorMessage::default().with_batch_index(i))
                                .collect(),
                        )
                        .with_error_message(Some(StrBytes::from_string(message))),
                    Outcome::Failed(code, message) => PartitionProduceResponse::default()
                        .with_index(index)
                        .with_error_code(code)
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1)
                        .with_error_message(message.map(StrBytes::from_string)),
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(name)
                .with_topic_id(id)
                .with_partition_responses(partition_responses)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}
