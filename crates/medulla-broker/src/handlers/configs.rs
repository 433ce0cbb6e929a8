//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics and the broker.
//!
//! Topic configs are dynamic (persisted by the log). On the broker resource, the keys that
//! feed topic defaults are dynamic (per broker, or cluster default with the empty name;
//! see [`crate::dynamic`]); any other broker key is read-only and altering it is
//! INVALID_CONFIG.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_configs_request::AlterableConfig;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig as IncrementalConfig;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use medulla_log::{AlterOp, ConfigEntry, LogError};

use crate::broker::Broker;
use crate::dynamic::{Scope, is_dynamic};
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

/// Broker keys whose type is LIST (APPEND / SUBTRACT apply to them), among the dynamic ones.
const BROKER_LIST_CONFIGS: &[&str] = &["log.cleanup.policy"];

/// Topic configs whose type is LIST (APPEND / SUBTRACT apply to them).
const TOPIC_LIST_CONFIGS: &[&str] = &[
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
            let (entries, broker_resource) = match r.resource_type {
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
                        (broker.dynamic_configs().describe_cluster_default(), true)
                    } else if r.resource_name.as_str() == broker.node_id().to_string() {
                        (broker.dynamic_configs().describe(broker.config()), true)
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
                    // Broker keys are read-only unless Kafka lets them change at run time.
                    let read_only = broker_resource && !is_dynamic(&e.name);
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
    // Kafka's PASSWORD keys (sasl.jaas.config) are sensitive: never shown.
    let sensitive = e.config_type == 9;
    let synonyms = if synonyms {
        e.synonyms
            .into_iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(s(name))
                    .with_value(value.filter(|_| !sensitive).map(s))
                    .with_source(source.kafka_code())
            })
            .collect()
    } else {
        Vec::new()
    };
    DescribeConfigsResourceResult::default()
        .with_name(s(e.name))
        .with_value(e.value.filter(|_| !sensitive).map(s))
        .with_read_only(read_only)
        .with_config_source(e.source.kafka_code())
        .with_is_sensitive(sensitive)
        .with_synonyms(synonyms)
        .with_config_type(e.config_type)
        .with_documentation(documentation.then(|| s(e.documentation)))
}

/// A resource's outcome: `(error code, message)`, code 0 for success.
type Outcome = (i16, Option<String>);

/// What a request asks to change on one resource.
enum Change {
    /// AlterConfigs: the resource's whole set of non-default values.
    Replace(Vec<AlterableConfig>),
    /// IncrementalAlterConfigs: per-key operations.
    Incremental(Vec<IncrementalConfig>),
}

fn invalid_config(message: String) -> Outcome {
    (ResponseError::InvalidConfig.code(), Some(message))
}

/// Per-key operations: `Some(value)` sets, `None` reverts to the default.
type Ops = Vec<(String, Option<String>)>;

/// Turns a change into `(key, Some(value) | None)` operations: set or revert. APPEND and
/// SUBTRACT are resolved against `current` (the key's effective value) for list keys.
fn to_ops(
    change: Change,
    current: impl Fn(&str) -> Option<String>,
    list_keys: &[&str],
) -> Result<(bool, Ops), Outcome> {
    match change {
        Change::Replace(configs) => {
            let mut ops = Vec::with_capacity(configs.len());
            for c in configs {
                match c.value {
                    Some(v) => ops.push((c.name.to_string(), Some(v.to_string()))),
                    None => {
                        return Err(invalid_config(format!(
                            "null value for config {}",
                            c.name.as_str()
                        )));
                    }
                }
            }
            Ok((true, ops))
        }
        Change::Incremental(configs) => {
            let mut seen = std::collections::BTreeSet::new();
            let mut ops = Vec::with_capacity(configs.len());
            for c in configs {
                let name = c.name.to_string();
                if !seen.insert(name.clone()) {
                    return Err((
                        ResponseError::InvalidRequest.code(),
                        Some(format!("config {name} appears more than once")),
                    ));
                }
                let items = |v: Option<&str>| -> Vec<String> {
                    v.unwrap_or("")
                        .split(',')
                        .map(str::trim)
                        .filter(|i| !i.is_empty())
                        .map(str::to_owned)
                        .collect()
                };
                match c.config_operation {
                    OP_SET => match c.value {
                        Some(v) => ops.push((name, Some(v.to_string()))),
                        None => {
                            return Err(invalid_config(format!("null value for config {name}")));
                        }
                    },
                    OP_DELETE => ops.push((name, None)),
                    OP_APPEND | OP_SUBTRACT => {
                        if !list_keys.contains(&name.as_str()) {
                            return Err(invalid_config(format!(
                                "config {name} is not a list: APPEND and SUBTRACT do not apply"
                            )));
                        }
                        let mut now = items(current(&name).as_deref());
                        let given = items(c.value.as_deref());
                        if c.config_operation == OP_APPEND {
                            for g in given {
                                if !now.contains(&g) {
                                    now.push(g);
                                }
                            }
                        } else {
                            now.retain(|i| !given.contains(i));
                        }
                        ops.push((name, Some(now.join(","))));
                    }
                    other => {
                        return Err((
                            ResponseError::InvalidRequest.code(),
                            Some(format!("unknown config operation {other}")),
                        ));
                    }
                }
            }
            Ok((false, ops))
        }
    }
}

async fn alter_resource(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    change: Change,
    validate_only: bool,
) -> Outcome {
    match resource_type {
        RESOURCE_TOPIC => {
            let Some(meta) = broker.log().topic(name) else {
                let e = LogError::UnknownTopic(name.to_owned());
                return (kafka_code(&e), Some(kafka_message(&e)));
            };
            let current = meta.config.describe(&broker.log().broker_defaults());
            let lookup = |key: &str| {
                current
                    .iter()
                    .find(|e| e.name == key)
                    .and_then(|e| e.value.clone())
            };
            let op = match to_ops(change, lookup, TOPIC_LIST_CONFIGS) {
                Ok((true, ops)) => AlterOp::Replace(
                    ops.into_iter()
                        .filter_map(|(k, v)| v.map(|v| (k, v)))
                        .collect(),
                ),
                Ok((false, ops)) => AlterOp::Incremental(ops),
                Err(outcome) => return outcome,
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
        RESOURCE_BROKER => {
            let scope = if name.is_empty() {
                Scope::ClusterDefault
            } else if name == broker.node_id().to_string() {
                Scope::Broker
            } else {
                return (
                    ResponseError::InvalidRequest.code(),
                    Some(format!("unknown broker {name}")),
                );
            };
            let current = broker.dynamic_configs().describe(broker.config());
            let lookup = |key: &str| {
                current
                    .iter()
                    .find(|e| e.name == key)
                    .and_then(|e| e.value.clone())
            };
            let (replace, ops) = match to_ops(change, lookup, BROKER_LIST_CONFIGS) {
                Ok(x) => x,
                Err(outcome) => return outcome,
            };
            let b = broker.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                b.alter_dynamic(
                    scope,
                    |settings| {
                        if replace {
                            settings.clear();
                        }
                        for (k, v) in ops {
                            match v {
                                Some(v) => settings.insert(k, v),
                                None => settings.remove(&k),
                            };
                        }
                        Ok(())
                    },
                    validate_only,
                )
            })
            .await;
            match outcome {
                Ok(Ok(())) => {
                    if !validate_only {
                        tracing::info!(resource = name, "altered dynamic broker configs");
                    }
                    (0, None)
                }
                Ok(Err(message)) => invalid_config(message),
                Err(e) => (
                    ResponseError::UnknownServerError.code(),
                    Some(format!("config task failed: {e}")),
                ),
            }
        }
        other => (
            ResponseError::InvalidRequest.code(),
            Some(format!("resource type {other} is not supported")),
        ),
    }
}

/// Answers AlterConfigs (replaces the resource's whole set of non-default values).
pub async fn alter(broker: &Broker, request: AlterConfigsRequest) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let mut responses = Vec::with_capacity(request.resources.len());
    for r in request.resources {
        let (code, message) = alter_resource(
            broker,
            r.resource_type,
            &r.resource_name,
            Change::Replace(r.configs),
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
        let (code, message) = alter_resource(
            broker,
            r.resource_type,
            &r.resource_name,
            Change::Incremental(r.configs),
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
