//! Topic-level configuration with Apache Kafka's names, meanings and defaults.
//!
//! Every topic config Kafka 4.x defines is known here: unknown names and invalid values
//! are [`crate::LogError::InvalidConfig`]. A topic's effective value comes from, in
//! order: its own override (source `DynamicTopic`), the broker's static setting of the
//! synonym key (`log.retention.ms` for `retention.ms`, source `StaticBroker`), the
//! Kafka default (source `Default`).

use std::collections::BTreeMap;

/// Where an effective config value came from (Kafka's DescribeConfigs `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// A per-topic override.
    DynamicTopic,
    /// A setting of this broker changed at run time.
    DynamicBroker,
    /// A cluster-wide broker default changed at run time.
    DynamicDefaultBroker,
    /// A broker setting from the config file or command line.
    StaticBroker,
    /// Kafka's default.
    Default,
}

impl ConfigSource {
    /// Kafka's wire value for DescribeConfigs v1+.
    pub fn kafka_code(self) -> i8 {
        match self {
            ConfigSource::DynamicTopic => 1,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// One row of DescribeConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Kafka's config name.
    pub name: String,
    /// Effective value (`None` for a null default).
    pub value: Option<String>,
    /// Where it came from.
    pub source: ConfigSource,
    /// Kafka's type name for DescribeConfigs v3+: 1 BOOLEAN, 2 STRING, 3 INT, 4 SHORT,
    /// 5 LONG, 6 DOUBLE, 7 LIST, 8 CLASS, 9 PASSWORD.
    pub config_type: i8,
    /// Synonyms in precedence order (the entry itself first), as `(name, value, source)`.
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
    /// Kafka's one-line documentation.
    pub documentation: &'static str,
}

/// The effective configuration of one topic, typed.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    /// `cleanup.policy` contains `delete`.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`.
    pub cleanup_compact: bool,
    /// `retention.ms` (-1 = forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1 = unlimited).
    pub retention_bytes: i64,
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u32,
    /// `max.message.bytes`.
    pub max_message_bytes: u32,
    /// `message.timestamp.type` is `LogAppendTime`.
    pub log_append_time: bool,
    /// The overrides this topic was created or altered with (validated, Kafka names).
    pub overrides: BTreeMap<String, String>,
}

impl TopicConfig {
    /// Resolves overrides over broker defaults (topic-config names → values, already
    /// translated from the broker's `log.*` keys) over Kafka's defaults, validating
    /// every override name and value.
    pub fn resolve(
        broker_defaults: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> crate::Result<TopicConfig> {
        let _ = (broker_defaults, overrides);
        todo!()
    }

    /// Every topic config with its effective value and source, sorted by name.
    pub fn describe(&self, broker_defaults: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
        let _ = broker_defaults;
        todo!()
    }
}

/// Translates broker keys (`log.retention.hours`, `log.retention.ms`, `log.segment.bytes`,
/// `log.roll.ms`, `message.max.bytes`, `log.cleanup.policy`, …) into topic-config defaults
/// (`retention.ms`, `segment.bytes`, …), applying Kafka's precedence between the
/// `.ms` / `.minutes` / `.hours` forms. Keys that are not log keys are ignored here.
pub fn broker_log_defaults(
    broker_props: &BTreeMap<String, String>,
) -> crate::Result<BTreeMap<String, String>> {
    let _ = broker_props;
    todo!()
}
