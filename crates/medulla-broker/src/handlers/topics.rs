//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions, DeleteRecords.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use medulla_log::LogError;

use crate::broker::Broker;
use crate::error::{kafka_code, kafka_message};
use crate::handlers::blocking;
use crate::limits;

fn too_many(count: usize) -> Option<(i16, String)> {
    (count > limits::ADMIN_TOPICS_PER_REQUEST_MAX).then(|| {
        (
            ResponseError::InvalidRequest.code(),
            format!(
                "more than {} topics in one request",
                limits::ADMIN_TOPICS_PER_REQUEST_MAX
            ),
        )
    })
}

/// Answers CreateTopics (with `validate_only`).
pub async fn create(
    broker: &Broker,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let refuse_all = too_many(request.topics.len());
    let mut results = Vec::with_capacity(
        request
            .topics
            .len()
            .min(limits::ADMIN_TOPICS_PER_REQUEST_MAX),
    );
    // Kafka refuses every occurrence of a name given twice in one request.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for t in &request.topics {
        *seen.entry(t.name.0.to_string()).or_default() += 1;
    }
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let result = CreatableTopicResult::default().with_name(topic.name.clone());
        let failed = |code: i16, message: String| {
            CreatableTopicResult::default()
                .with_name(topic.name.clone())
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message)))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
        };
        if let Some((code, message)) = &refuse_all {
            results.push(failed(*code, message.clone()));
            continue;
        }
        if seen.get(&name).copied().unwrap_or(0) > 1 {
            results.push(failed(
                ResponseError::InvalidRequest.code(),
                format!("topic {name} appears more than once"),
            ));
            continue;
        }
        if !topic.assignments.is_empty() {
            let bad = topic
                .assignments
                .iter()
                .any(|a| a.broker_ids.iter().any(|b| b.0 != broker.node_id()));
            if bad || topic.num_partitions != -1 || topic.replication_factor != -1 {
                results.push(failed(
                    ResponseError::InvalidReplicaAssignment.code(),
                    "replica assignments may only name this broker and exclude num_partitions/replication_factor".into(),
                ));
                continue;
            }
        }
        let partitions = if !topic.assignments.is_empty() {
            topic.assignments.len() as i32
        } else if topic.num_partitions == -1 {
            broker.config().num_partitions as i32
        } else {
            topic.num_partitions
        };
        if partitions <= 0 {
            results.push(failed(
                ResponseError::InvalidPartitions.code(),
                format!("number of partitions must be positive, got {partitions}"),
            ));
            continue;
        }
        if topic.replication_factor != -1 && topic.replication_factor != 1 {
            results.push(failed(
                ResponseError::InvalidReplicationFactor.code(),
                format!(
                    "replication factor {} is larger than the 1 broker available",
                    topic.replication_factor
                ),
            ));
            continue;
        }
        let mut configs = BTreeMap::new();
        let mut bad_config = None;
        for c in &topic.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.to_string(), v.to_string());
                }
                None => bad_config = Some(format!("null value for config {}", c.name.as_str())),
            }
        }
        if let Some(message) = bad_config {
            results.push(failed(ResponseError::InvalidConfig.code(), message));
            continue;
        }
        if let Err(message) = crate::fds::check_room(partitions as u64) {
            results.push(failed(ResponseError::PolicyViolation.code(), message));
            continue;
        }
        let log = broker.log().clone();
        let validate_only = request.validate_only;
        let outcome =
            blocking(move || log.create_topic(&name, partitions as u32, &configs, validate_only))
                .await;
        results.push(match outcome {
            Ok(meta) => {
                let described = if version >= 5 {
                    let defaults = broker.log().broker_defaults();
                    Some(
                        meta.config
                            .describe(&defaults)
                            .into_iter()
                            .map(|e| {
                                CreatableTopicConfigs::default()
                                    .with_name(StrBytes::from_string(e.name))
                                    .with_value(e.value.map(StrBytes::from_string))
                                    .with_config_source(e.source.kafka_code())
                            })
                            .collect(),
                    )
                } else {
                    None
                };
                result
                    .with_topic_id(if validate_only {
                        uuid::Uuid::nil()
                    } else {
                        meta.id
                    })
                    .with_num_partitions(meta.partitions as i32)
                    .with_replication_factor(1)
                    .with_configs(described)
            }
            Err(e) => failed(kafka_code(&e), kafka_message(&e)),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// Answers DeleteTopics (by name, or by id from v6).
pub async fn delete(
    broker: &Broker,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // v0-v5 list names in `topic_names`; v6 lists (name or id) in `topics`.
    let wanted: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()))
            .collect()
    };
    let refuse_all = too_many(wanted.len());
    let mut responses = Vec::with_capacity(wanted.len().min(limits::ADMIN_TOPICS_PER_REQUEST_MAX));
    for (name, id) in wanted {
        let result = DeletableTopicResult::default()
            .with_name(name.clone())
            .with_topic_id(id);
        if let Some((code, message)) = &refuse_all {
            responses.push(
                result
                    .with_error_code(*code)
                    .with_error_message(Some(StrBytes::from_string(message.clone()))),
            );
            continue;
        }
        if !broker.config().delete_topic_enable {
            responses.push(result.with_error_code(ResponseError::TopicDeletionDisabled.code()));
            continue;
        }
        let resolved = match &name {
            Some(n) => broker.log().topic(&n.0),
            None => broker.log().topic_by_id(id),
        };
        let Some(meta) = resolved else {
            let code = if name.is_some() {
                ResponseError::UnknownTopicOrPartition
            } else {
                ResponseError::UnknownTopicId
            };
            responses.push(result.with_error_code(code.code()));
            continue;
        };
        if crate::audit::is_protected(&meta.name) {
            responses.push(
                result
                    .with_error_code(ResponseError::PolicyViolation.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "{} is the audit trail and cannot be deleted",
                        meta.name
                    )))),
            );
            continue;
        }
        let log = broker.log().clone();
        let topic = meta.name.clone();
        let outcome = blocking(move || log.delete_topic(&topic)).await;
        let result = result
            .with_name(Some(TopicName(StrBytes::from_string(meta.name.clone()))))
            .with_topic_id(meta.id);
        responses.push(match outcome {
            Ok(()) => result,
            Err(e) => result
                .with_error_code(kafka_code(&e))
                .with_error_message(Some(StrBytes::from_string(kafka_message(&e)))),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Answers CreatePartitions.
pub async fn create_partitions(
    broker: &Broker,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let refuse_all = too_many(request.topics.len());
    let mut results = Vec::with_capacity(
        request
            .topics
            .len()
            .min(limits::ADMIN_TOPICS_PER_REQUEST_MAX),
    );
    for topic in request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        if let Some((code, message)) = &refuse_all {
            results.push(
                result
                    .with_error_code(*code)
                    .with_error_message(Some(StrBytes::from_string(message.clone()))),
            );
            continue;
        }
        if let Some(assignments) = &topic.assignments
            && assignments
                .iter()
                .any(|a| a.broker_ids.iter().any(|b| b.0 != broker.node_id()))
        {
            results.push(
                result
                    .with_error_code(ResponseError::InvalidReplicaAssignment.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "assignments may only name this broker",
                    ))),
            );
            continue;
        }
        if topic.count <= 0 {
            results.push(
                result
                    .with_error_code(ResponseError::InvalidPartitions.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "partition count {} is not positive",
                        topic.count
                    )))),
            );
            continue;
        }
        let current = broker
            .log()
            .topic(&topic.name.0)
            .map_or(0, |m| i64::from(m.partitions));
        if let Err(message) =
            crate::fds::check_room((i64::from(topic.count) - current).max(0) as u64)
        {
            results.push(
                result
                    .with_error_code(ResponseError::PolicyViolation.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            );
            continue;
        }
        let log = broker.log().clone();
        let name = topic.name.0.to_string();
        let count = topic.count as u32;
        let validate_only = request.validate_only;
        let outcome = blocking(move || log.create_partitions(&name, count, validate_only)).await;
        results.push(match outcome {
            Ok(()) => result,
            Err(e) => result
                .with_error_code(kafka_code(&e))
                .with_error_message(Some(StrBytes::from_string(kafka_message(&e)))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

/// Answers DeleteRecords.
pub async fn delete_records(
    broker: &Broker,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let result =
                DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            if crate::audit::is_protected(&topic.name) {
                // The audit trail shrinks only by its retention.
                partitions.push(
                    result
                        .with_low_watermark(-1)
                        .with_error_code(ResponseError::PolicyViolation.code()),
                );
                continue;
            }
            let Some(log) = broker.log().partition(&topic.name.0, p.partition_index) else {
                partitions.push(
                    result
                        .with_low_watermark(-1)
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                );
                continue;
            };
            let offset = p.offset;
            let outcome = blocking(move || log.delete_records_before(offset)).await;
            partitions.push(match outcome {
                Ok(low) => result.with_low_watermark(low),
                Err(e @ LogError::OffsetOutOfRange { .. }) => result
                    .with_low_watermark(-1)
                    .with_error_code(kafka_code(&e)),
                Err(e) => result
                    .with_low_watermark(-1)
                    .with_error_code(kafka_code(&e)),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
