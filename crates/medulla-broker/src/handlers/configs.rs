//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics and the broker.
//!
//! Topic configs are dynamic (persisted by the log). Broker configs are static in this
//! version: they are described with their sources, and altering one is refused with
//! INVALID_REQUEST naming the config file as the place to change it.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use medulla_log::{AlterOp, ConfigEntry, LogError};

use crate::broker::Broker;
use crate::error::{kafka_code, kafka_message};
use crate::handlers::blocking;

/// Kafka's ConfigResource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Topic configs whose type is LIST (APPEND / SUBTRACT apply to them).
const LIST_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "follower.replication.throttled.replicas",
    "leader.replication.throttled.replicas",
];

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Answers DescribeConfigs.
pub fn describe(
    broker: &Broker,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|r| {
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let (entries, read_only) = match r.resource_type {
                RESOURCE_TOPIC => match broker.log().topic(&r.resource_name) {
                    Some(meta) => (meta.config.describe(&broker.log().broker_defaults()), false),
                    None => {
                        return base
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(s(format!(
                                "unknown topic {}",
                                r.resource_name.as_str()
                            ))));
                    }
                },
                RESOURCE_BROKER => {
                    if r.resource_name.is_empty() {
                        // The cluster-wide dynamic defaults: there are none in this version.
                        (Vec::new(), true)
                    } else if r.resource_name.as_str() == broker.node_id().to_string() {
                        (broker.config().describe(), true)
                    } else {
                        return base
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(s(format!(
                                "unknown broker {}",
                                r.resource_name.as_str()
                            ))));
                    }
                }
                other => {
                    return base
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(s(format!(
                            "resource type {other} is not supported"
                        ))));
                }
            };
            let keys: Option<Vec<String>> = r
                .configuration_keys
                .map(|k| k.iter().map(|k| k.to_string()).collect());
            let configs = entries
                .into_iter()
                .filter(|e| keys.as_ref().is_none_or(|k| k.contains(&e.name)))
                .map(|e| {
                    entry(
                        e,
                        read_only,
                        request.include_synonyms,
                        request.include_documentation && version >= 3,
                    )
                })
                .collect();
            base.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entry(
    e: ConfigEntry,
    read_only: bool,
    synonyms: bool,
    documentation: bool,
) -> DescribeConfigsResourceResult {
    let synonyms = if synonyms {
        e.synonyms
            .into_iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(s(name))
                    .with_value(value.map(s))
                    .with_source(source.kafka_code())
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(s(e.name))
        .with_value(e.value.map(s))
        .with_read_only(read_only)
        .with_config_source(e.source.kafka_code())
        .with_is_sensitive(false)
        .with_synonyms(synonyms)
        .with_config_type(e.config_type)
        .with_documentation(documentation.then(|| s(e.documentation)))
}

/// A resource's outcome: `(error code, message)`, code 0 for success.
type Outcome = (i16, Option<String>);

async fn alter_resource(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    op: Result<AlterOp, String>,
    validate_only: bool,
) -> Outcome {
    match resource_type {
        RESOURCE_TOPIC => {
            let op = match op {
                Ok(op) => op,
                Err(message) => return (ResponseError::InvalidConfig.code(), Some(message)),
            };
            let log = broker.log().clone();
            let topic = name.to_owned();
            match blocking(move || log.alter_topic_config(&topic, op, validate_only)).await {
                Ok(_) => {
                    if !validate_only {
                        tracing::info!(topic = name, "altered topic config");
                    }
                    (0, None)
                }
                Err(e) => (kafka_code(&e), Some(kafka_message(&e))),
            }
        }
        RESOURCE_BROKER => (
            ResponseError::InvalidRequest.code(),
            Some("broker configs are static in this Medulla version: change them in the config file or with --override and restart".into()),
        ),
        other => (ResponseError::InvalidRequest.code(), Some(format!("resource type {other} is not supported"))),
    }
}

/// Answers AlterConfigs (replaces a topic's whole override set).
pub async fn alter(broker: &Broker, request: AlterConfigsRequest) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let mut responses = Vec::with_capacity(request.resources.len());
    for r in request.resources {
        let mut map = BTreeMap::new();
        let mut error = None;
        for c in &r.configs {
            match &c.value {
                Some(v) => {
                    map.insert(c.name.to_string(), v.to_string());
                }
                None => error = Some(format!("null value for config {}", c.name.as_str())),
            }
        }
        let op = match error {
            Some(e) => Err(e),
            None => Ok(AlterOp::Replace(map)),
        };
        let (code, message) = alter_resource(
            broker,
            r.resource_type,
            &r.resource_name,
            op,
            request.validate_only,
        )
        .await;
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(s))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// Answers IncrementalAlterConfigs (SET, DELETE, APPEND, SUBTRACT per key).
pub async fn incremental_alter(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    let mut responses = Vec::with_capacity(request.resources.len());
    for r in request.resources {
        let op = if r.resource_type == RESOURCE_TOPIC {
            incremental_ops(broker, &r.resource_name, &r.configs)
        } else {
            Ok(AlterOp::Incremental(Vec::new()))
        };
        let (code, message) = match op {
            Err((code, message)) if code != ResponseError::InvalidConfig.code() => {
                (code, Some(message))
            }
            Err((_, message)) => {
                alter_resource(
                    broker,
                    r.resource_type,
                    &r.resource_name,
                    Err(message),
                    request.validate_only,
                )
                .await
            }
            Ok(op) => {
                alter_resource(
                    broker,
                    r.resource_type,
                    &r.resource_name,
                    Ok(op),
                    request.validate_only,
                )
                .await
            }
        };
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message.map(s))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Resolves APPEND / SUBTRACT against the topic's current effective value.
fn incremental_ops(
    broker: &Broker,
    topic: &str,
    configs: &[kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig],
) -> Result<AlterOp, (i16, String)> {
    let Some(meta) = broker.log().topic(topic) else {
        let e = LogError::UnknownTopic(topic.to_owned());
        return Err((kafka_code(&e), kafka_message(&e)));
    };
    let invalid = |m: String| (ResponseError::InvalidConfig.code(), m);
    let mut seen = std::collections::BTreeSet::new();
    let mut ops = Vec::with_capacity(configs.len());
    let current = meta.config.describe(&broker.log().broker_defaults());
    for c in configs {
        let name = c.name.to_string();
        if !seen.insert(name.clone()) {
            return Err((
                ResponseError::InvalidRequest.code(),
                format!("config {name} appears more than once"),
            ));
        }
        match c.config_operation {
            OP_SET => match &c.value {
                Some(v) => ops.push((name, Some(v.to_string()))),
                None => return Err(invalid(format!("null value for config {name}"))),
            },
            OP_DELETE => ops.push((name, None)),
            OP_APPEND | OP_SUBTRACT => {
                if !LIST_CONFIGS.contains(&name.as_str()) {
                    return Err(invalid(format!(
                        "config {name} is not a list: APPEND and SUBTRACT do not apply"
                    )));
                }
                let now = current
                    .iter()
                    .find(|e| e.name == name)
                    .and_then(|e| e.value.clone())
                    .unwrap_or_default();
                let mut items: Vec<String> = now
                    .split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .map(str::to_owned)
                    .collect();
                let given: Vec<String> = c
                    .value
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .map(str::to_owned)
                    .collect();
                if c.config_operation == OP_APPEND {
                    for g in given {
                        if !items.contains(&g) {
                            items.push(g);
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(i));
                }
                ops.push((name, Some(items.join(","))));
            }
            other => {
                return Err((
                    ResponseError::InvalidRequest.code(),
                    format!("unknown config operation {other}"),
                ));
            }
        }
    }
    Ok(AlterOp::Incremental(ops))
}
