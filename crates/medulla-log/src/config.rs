//! Topic-level configuration with Apache Kafka's names, meanings and defaults.
//!
//! Every topic config Kafka 4.x defines is known here, and Confluent Server's four
//! schema validation keys (`confluent.{key,value}.schema.validation`,
//! `confluent.{key,value}.subject.name.strategy`): unknown names and invalid values
//! are [`crate::LogError::InvalidConfig`]. A topic's effective value comes from, in
//! order: its own override (source `DynamicTopic`), the broker's static setting of the
//! synonym key (`log.retention.ms` for `retention.ms`, source `StaticBroker`), the
//! Kafka default (source `Default`).
//!
//! The table [`DEFS`] is the single source of names, types, defaults, validators,
//! broker synonyms and documentation; everything else here reads it. Values are kept in
//! Kafka's canonical string form (what `ConfigDef.convertToString` prints after parsing),
//! so `" 5 "` and `"+5"` both describe as `"5"`.

use std::collections::BTreeMap;

use crate::LogError;
use crate::limits::{SEGMENT_BYTES_MIN, TOPIC_NAME_BYTES_MAX};

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
    /// `segment.index.bytes`: a segment rolls when its offset or time index would grow
    /// past this size.
    pub segment_index_bytes: u32,
    /// `segment.jitter.ms`: the most a segment's time-based roll is brought forward.
    pub segment_jitter_ms: i64,
    /// `flush.messages`: fsync after this many unflushed records (whatever the policy).
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the oldest unflushed append is this old.
    pub flush_ms: i64,
    /// `min.insync.replicas` (the broker compares it with the ISR for `acks=all`).
    pub min_insync_replicas: u32,
    /// `message.timestamp.before.max.ms` (checked by the broker; `i64::MAX` = off).
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms` (checked by the broker; `i64::MAX` = off).
    pub message_timestamp_after_max_ms: i64,
    /// `delete.retention.ms`: how long the cleaner keeps a tombstone after it first
    /// rewrote its batch (the KIP-534 delete horizon).
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: dirty bytes over cleanable bytes that make a
    /// compacted partition eligible for cleaning.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this are never cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a record dirty for longer forces a cleaning pass.
    pub max_compaction_lag_ms: i64,
    /// Confluent's `confluent.{key,value}.schema.validation` with their subject name
    /// strategies (checked by the broker; the log only stores them).
    pub schema_validation: SchemaValidation,
}

/// Confluent Server's subject name strategies
/// (`io.confluent.kafka.serializers.subject.*`): how a schema registry names the subject
/// a record's schema must be registered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectNameStrategy {
    /// `TopicNameStrategy` (the default): `<topic>-key` or `<topic>-value`.
    Topic,
    /// `RecordNameStrategy`: the fully-qualified record name of the schema.
    Record,
    /// `TopicRecordNameStrategy`: `<topic>-<record name>`.
    TopicRecord,
}

impl SubjectNameStrategy {
    /// The strategy a Confluent class name (as validated by this table) names.
    fn from_class_name(name: &str) -> Option<SubjectNameStrategy> {
        match SUBJECT_NAME_STRATEGIES.iter().position(|s| *s == name)? {
            0 => Some(SubjectNameStrategy::Topic),
            1 => Some(SubjectNameStrategy::Record),
            2 => Some(SubjectNameStrategy::TopicRecord),
            _ => None,
        }
    }
}

/// Which parts of a topic's records must carry a registered schema id, and under which
/// strategy (`None`: not validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchemaValidation {
    /// `confluent.key.schema.validation` on: the key's strategy.
    pub key: Option<SubjectNameStrategy>,
    /// `confluent.value.schema.validation` on: the value's strategy.
    pub value: Option<SubjectNameStrategy>,
}

impl SchemaValidation {
    /// True when neither keys nor values are validated.
    pub fn is_off(&self) -> bool {
        self.key.is_none() && self.value.is_none()
    }
}

impl TopicConfig {
    /// Resolves overrides over broker defaults (topic-config names → values, already
    /// translated from the broker's `log.*` keys) over Kafka's defaults, validating
    /// every override name and value.
    pub fn resolve(
        broker_defaults: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> crate::Result<TopicConfig> {
        let overrides = canonical_map(overrides)?;
        let broker = canonical_map(broker_defaults)?;
        let effective = |name: &str| -> Option<String> {
            overrides
                .get(name)
                .or_else(|| broker.get(name))
                .cloned()
                .or_else(|| def(name).and_then(|d| d.default).map(str::to_owned))
        };
        // Every typed read below is of a defined name with a validated (or default) value,
        // so a parse failure here is a bug in the table, reported rather than panicked on.
        let int = |name: &str| -> crate::Result<i64> {
            effective(name)
                .and_then(|v| v.parse::<i64>().ok())
                .ok_or_else(|| LogError::InvalidConfig(format!("{name}: no numeric value")))
        };
        let boolean = |name: &str| effective(name).as_deref() == Some("true");

        let policy = effective("cleanup.policy").unwrap_or_default();
        let policies: Vec<&str> = policy.split(',').map(str::trim).collect();
        let min_lag = int("min.compaction.lag.ms")?;
        let max_lag = int("max.compaction.lag.ms")?;
        if min_lag > max_lag {
            return Err(LogError::InvalidConfig(format!(
                "min.compaction.lag.ms: {min_lag} is greater than max.compaction.lag.ms {max_lag}"
            )));
        }
        if boolean("remote.storage.enable") {
            return Err(LogError::InvalidConfig(
                "remote.storage.enable: tiered storage is not available on this broker".into(),
            ));
        }
        let strategy = |name: &str| -> crate::Result<SubjectNameStrategy> {
            effective(name)
                .and_then(|v| SubjectNameStrategy::from_class_name(&v))
                .ok_or_else(|| LogError::InvalidConfig(format!("{name}: no strategy")))
        };
        let schema_validation = SchemaValidation {
            key: if boolean("confluent.key.schema.validation") {
                Some(strategy("confluent.key.subject.name.strategy")?)
            } else {
                None
            },
            value: if boolean("confluent.value.schema.validation") {
                Some(strategy("confluent.value.subject.name.strategy")?)
            } else {
                None
            },
        };
        let segment_bytes = match effective("internal.segment.bytes") {
            Some(_) => int("internal.segment.bytes")?,
            None => int("segment.bytes")?,
        };
        let mut config = TopicConfig {
            cleanup_delete: policies.contains(&"delete"),
            cleanup_compact: policies.contains(&"compact"),
            retention_ms: int("retention.ms")?,
            retention_bytes: int("retention.bytes")?,
            segment_bytes: segment_bytes as u64,
            segment_ms: int("segment.ms")?,
            index_interval_bytes: int("index.interval.bytes")? as u32,
            max_message_bytes: int("max.message.bytes")? as u32,
            log_append_time: effective("message.timestamp.type").as_deref()
                == Some("LogAppendTime"),
            overrides: BTreeMap::new(),
            segment_index_bytes: int("segment.index.bytes")? as u32,
            segment_jitter_ms: int("segment.jitter.ms")?,
            flush_messages: int("flush.messages")?,
            flush_ms: int("flush.ms")?,
            min_insync_replicas: int("min.insync.replicas")? as u32,
            message_timestamp_before_max_ms: int("message.timestamp.before.max.ms")?,
            message_timestamp_after_max_ms: int("message.timestamp.after.max.ms")?,
            delete_retention_ms: int("delete.retention.ms")?,
            min_cleanable_dirty_ratio: effective("min.cleanable.dirty.ratio")
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| {
                    LogError::InvalidConfig("min.cleanable.dirty.ratio: no numeric value".into())
                })?,
            min_compaction_lag_ms: min_lag,
            max_compaction_lag_ms: max_lag,
            schema_validation,
        };
        config.overrides = overrides;
        Ok(config)
    }

    /// Every topic config with its effective value and source, sorted by name.
    pub fn describe(&self, broker_defaults: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
        let mut entries: Vec<ConfigEntry> = DEFS
            .iter()
            .filter(|d| !d.internal)
            .map(|d| {
                let broker_value = broker_defaults
                    .get(d.name)
                    .map(|v| canonical(d, v).unwrap_or_else(|_| v.clone()));
                let broker_name = d.broker.first().map(|(n, _)| *n).unwrap_or(d.name);
                let mut synonyms = Vec::new();
                if let Some(v) = self.overrides.get(d.name) {
                    synonyms.push((
                        d.name.to_owned(),
                        Some(v.clone()),
                        ConfigSource::DynamicTopic,
                    ));
                }
                if let Some(v) = &broker_value {
                    synonyms.push((
                        broker_name.to_owned(),
                        Some(v.clone()),
                        ConfigSource::StaticBroker,
                    ));
                }
                synonyms.push((
                    broker_name.to_owned(),
                    d.default.map(str::to_owned),
                    ConfigSource::Default,
                ));
                let (value, source) = synonyms[0]
                    .1
                    .clone()
                    .map_or((None, ConfigSource::Default), |v| (Some(v), synonyms[0].2));
                ConfigEntry {
                    name: d.name.to_owned(),
                    value,
                    source,
                    config_type: d.kind.code(),
                    synonyms,
                    documentation: d.doc,
                }
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries
    }
}

/// Translates broker keys (`log.retention.hours`, `log.retention.ms`, `log.segment.bytes`,
/// `log.roll.ms`, `message.max.bytes`, `log.cleanup.policy`, …) into topic-config defaults
/// (`retention.ms`, `segment.bytes`, …), applying Kafka's precedence between the
/// `.ms` / `.minutes` / `.hours` forms. Keys that are not log keys are ignored here.
pub fn broker_log_defaults(
    broker_props: &BTreeMap<String, String>,
) -> crate::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for d in DEFS {
        // The first synonym the broker set wins, as in Kafka's ServerTopicConfigSynonyms.
        let Some((key, unit, raw)) = d
            .broker
            .iter()
            .find_map(|(key, unit)| broker_props.get(*key).map(|v| (*key, *unit, v)))
        else {
            continue;
        };
        let invalid = |reason: String| {
            LogError::InvalidConfig(format!("{key}: invalid value {raw:?}: {reason}"))
        };
        let value = match unit {
            Unit::Same => raw.trim().to_owned(),
            Unit::Minutes | Unit::Hours => {
                let n: i32 = raw
                    .trim()
                    .parse()
                    .map_err(|_| invalid("not an INT".into()))?;
                if let Some(min) = unit_minimum(key)
                    && (n as i64) < min
                {
                    return Err(invalid(format!("must be at least {min}")));
                }
                let factor = if unit == Unit::Minutes {
                    60_000
                } else {
                    3_600_000
                };
                (n as i64 * factor).to_string()
            }
        };
        // Kafka maps any negative broker retention time to "forever".
        let value = match value.parse::<i64>() {
            Ok(v) if d.name == "retention.ms" && v < 0 => "-1".to_owned(),
            _ => value,
        };
        let value = canonical(d, &value).map_err(invalid)?;
        out.insert(d.name.to_owned(), value);
    }
    Ok(out)
}

/// Every broker key that sets a topic-config default (`log.retention.ms`,
/// `message.max.bytes`, …): the keys Kafka lets operators change at run time as dynamic
/// broker configs, since they only feed topics' effective configs.
pub fn broker_synonym_keys() -> impl Iterator<Item = &'static str> {
    DEFS.iter()
        .flat_map(|d| d.broker.iter().map(|(key, _)| *key))
}

/// Kafka's lower bounds of the hour-valued broker keys (`log.roll.hours` ≥ 1,
/// `log.roll.jitter.hours` ≥ 0; the retention forms have none).
fn unit_minimum(key: &str) -> Option<i64> {
    match key {
        "log.roll.hours" => Some(1),
        "log.roll.jitter.hours" => Some(0),
        _ => None,
    }
}

/// Checks a topic name against Kafka's rules: 1 to 249 characters of `[a-zA-Z0-9._-]`,
/// and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> crate::Result<()> {
    let invalid = |why: &str| LogError::InvalidTopic(format!("{name:?} {why}"));
    if name.is_empty() {
        return Err(invalid("is empty"));
    }
    if name == "." || name == ".." {
        return Err(invalid("is not allowed"));
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(invalid(&format!(
            "is longer than {TOPIC_NAME_BYTES_MAX} characters"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(invalid(
            "contains characters other than ASCII alphanumerics, '.', '_' and '-'",
        ));
    }
    Ok(())
}

/// Kafka's config types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Boolean,
    String,
    Int,
    Long,
    Double,
    List,
}

impl Kind {
    fn code(self) -> i8 {
        match self {
            Kind::Boolean => 1,
            Kind::String => 2,
            Kind::Int => 3,
            Kind::Long => 5,
            Kind::Double => 6,
            Kind::List => 7,
        }
    }
}

/// Kafka's validators, as used by `LogConfig`.
#[derive(Debug, Clone, Copy)]
enum Check {
    Any,
    AtLeast(i64),
    Between(i64, i64),
    /// A DOUBLE in `[0, 1]`.
    Ratio,
    /// One of (case-sensitive, as `ValidString.in`).
    OneOf(&'static [&'static str]),
    /// Every list element one of (as `ValidList.in`).
    ListOf(&'static [&'static str]),
    /// -1 (zlib's default) or 1..=9, as `CompressionType.GZIP.levelValidator()`.
    GzipLevel,
    /// `*` or `partition:broker` pairs, as `ThrottledReplicaListValidator`.
    ThrottledReplicas,
}

/// How a broker synonym's value converts to the topic config's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Same,
    Minutes,
    Hours,
}

/// One topic config.
struct Def {
    name: &'static str,
    kind: Kind,
    /// Kafka's default in canonical form; `None` is a null default.
    default: Option<&'static str>,
    check: Check,
    /// Broker keys that set this config's default, in precedence order.
    broker: &'static [(&'static str, Unit)],
    /// Accepted but never described (Kafka's `defineInternal`).
    internal: bool,
    doc: &'static str,
}

const LONG_MAX: &str = "9223372036854775807";
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Confluent's subject name strategies, by class name (their order is
/// [`SubjectNameStrategy`]'s).
const TOPIC_NAME_STRATEGY: &str = "io.confluent.kafka.serializers.subject.TopicNameStrategy";
const SUBJECT_NAME_STRATEGIES: &[&str] = &[
    TOPIC_NAME_STRATEGY,
    "io.confluent.kafka.serializers.subject.RecordNameStrategy",
    "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
];

/// Kafka 4.1's `LogConfig` and Confluent Server's schema validation keys, sorted by name.
const DEFS: &[Def] = &[
    Def {
        name: "cleanup.policy",
        kind: Kind::List,
        default: Some("delete"),
        check: Check::ListOf(&["compact", "delete"]),
        broker: &[("log.cleanup.policy", Unit::Same)],
        internal: false,
        doc: "The retention policy for old log segments: \"delete\" discards them after the retention time or size, \"compact\" keeps the latest value per key; both may be given.",
    },
    Def {
        name: "compression.gzip.level",
        kind: Kind::Int,
        default: Some("-1"),
        check: Check::GzipLevel,
        broker: &[("compression.gzip.level", Unit::Same)],
        internal: false,
        doc: "The compression level to use if compression.type is set to gzip.",
    },
    Def {
        name: "compression.lz4.level",
        kind: Kind::Int,
        default: Some("9"),
        check: Check::Between(1, 17),
        broker: &[("compression.lz4.level", Unit::Same)],
        internal: false,
        doc: "The compression level to use if compression.type is set to lz4.",
    },
    Def {
        name: "compression.type",
        kind: Kind::String,
        default: Some("producer"),
        check: Check::OneOf(COMPRESSION_TYPES),
        broker: &[("compression.type", Unit::Same)],
        internal: false,
        doc: "The final compression type for the topic: a codec, 'uncompressed', or 'producer' to keep the producer's codec.",
    },
    Def {
        name: "compression.zstd.level",
        kind: Kind::Int,
        default: Some("3"),
        check: Check::Between(-131072, 22),
        broker: &[("compression.zstd.level", Unit::Same)],
        internal: false,
        doc: "The compression level to use if compression.type is set to zstd.",
    },
    Def {
        name: "confluent.key.schema.validation",
        kind: Kind::Boolean,
        default: Some("false"),
        check: Check::Any,
        broker: &[],
        internal: false,
        doc: "Confluent Server's broker-side schema ID validation of record keys: a key must carry a schema ID registered under the subject confluent.key.subject.name.strategy derives.",
    },
    Def {
        name: "confluent.key.subject.name.strategy",
        kind: Kind::String,
        default: Some(TOPIC_NAME_STRATEGY),
        check: Check::OneOf(SUBJECT_NAME_STRATEGIES),
        broker: &[],
        internal: false,
        doc: "How the subject that validates record keys is named (a Confluent SubjectNameStrategy class).",
    },
    Def {
        name: "confluent.value.schema.validation",
        kind: Kind::Boolean,
        default: Some("false"),
        check: Check::Any,
        broker: &[],
        internal: false,
        doc: "Confluent Server's broker-side schema ID validation of record values: a value must carry a schema ID registered under the subject confluent.value.subject.name.strategy derives.",
    },
    Def {
        name: "confluent.value.subject.name.strategy",
        kind: Kind::String,
        default: Some(TOPIC_NAME_STRATEGY),
        check: Check::OneOf(SUBJECT_NAME_STRATEGIES),
        broker: &[],
        internal: false,
        doc: "How the subject that validates record values is named (a Confluent SubjectNameStrategy class).",
    },
    Def {
        name: "delete.retention.ms",
        kind: Kind::Long,
        default: Some("86400000"),
        check: Check::AtLeast(0),
        broker: &[("log.cleaner.delete.retention.ms", Unit::Same)],
        internal: false,
        doc: "How long delete tombstones are retained on compacted topics.",
    },
    Def {
        name: "file.delete.delay.ms",
        kind: Kind::Long,
        default: Some("60000"),
        check: Check::AtLeast(0),
        broker: &[("log.segment.delete.delay.ms", Unit::Same)],
        internal: false,
        doc: "The time to wait before deleting a file from the filesystem.",
    },
    Def {
        name: "flush.messages",
        kind: Kind::Long,
        default: Some(LONG_MAX),
        check: Check::AtLeast(1),
        broker: &[("log.flush.interval.messages", Unit::Same)],
        internal: false,
        doc: "The number of messages accumulated on a partition before they are forced to disk with fsync.",
    },
    Def {
        name: "flush.ms",
        kind: Kind::Long,
        default: Some(LONG_MAX),
        check: Check::AtLeast(0),
        broker: &[
            ("log.flush.interval.ms", Unit::Same),
            ("log.flush.scheduler.interval.ms", Unit::Same),
        ],
        internal: false,
        doc: "The maximum time in milliseconds data may stay unflushed before it is forced to disk with fsync.",
    },
    Def {
        name: "follower.replication.throttled.replicas",
        kind: Kind::List,
        default: Some(""),
        check: Check::ThrottledReplicas,
        broker: &[],
        internal: false,
        doc: "Replicas whose log replication is throttled on the follower side, as [PartitionId]:[BrokerId] pairs or '*'.",
    },
    Def {
        name: "index.interval.bytes",
        kind: Kind::Int,
        default: Some("4096"),
        check: Check::AtLeast(0),
        broker: &[("log.index.interval.bytes", Unit::Same)],
        internal: false,
        doc: "How many bytes of log lie between two entries of the offset index.",
    },
    Def {
        name: "internal.segment.bytes",
        kind: Kind::Int,
        default: None,
        check: Check::AtLeast(1),
        broker: &[],
        internal: true,
        doc: "The maximum size of a single log file. This should be used for testing only.",
    },
    Def {
        name: "leader.replication.throttled.replicas",
        kind: Kind::List,
        default: Some(""),
        check: Check::ThrottledReplicas,
        broker: &[],
        internal: false,
        doc: "Replicas whose log replication is throttled on the leader side, as [PartitionId]:[BrokerId] pairs or '*'.",
    },
    Def {
        name: "local.retention.bytes",
        kind: Kind::Long,
        default: Some("-2"),
        check: Check::AtLeast(-2),
        broker: &[("log.local.retention.bytes", Unit::Same)],
        internal: false,
        doc: "The maximum local size of a partition before local segments are deleted (tiered storage); -2 means retention.bytes.",
    },
    Def {
        name: "local.retention.ms",
        kind: Kind::Long,
        default: Some("-2"),
        check: Check::AtLeast(-2),
        broker: &[("log.local.retention.ms", Unit::Same)],
        internal: false,
        doc: "How long local segments are kept before deletion (tiered storage); -2 means retention.ms.",
    },
    Def {
        name: "max.compaction.lag.ms",
        kind: Kind::Long,
        default: Some(LONG_MAX),
        check: Check::AtLeast(1),
        broker: &[("log.cleaner.max.compaction.lag.ms", Unit::Same)],
        internal: false,
        doc: "The maximum time a message will remain ineligible for compaction in the log.",
    },
    Def {
        name: "max.message.bytes",
        kind: Kind::Int,
        default: Some("1048588"),
        check: Check::AtLeast(0),
        broker: &[("message.max.bytes", Unit::Same)],
        internal: false,
        doc: "The largest record batch size allowed (after compression if compression is enabled).",
    },
    Def {
        name: "message.downconversion.enable",
        kind: Kind::Boolean,
        default: Some("true"),
        check: Check::Any,
        broker: &[],
        internal: false,
        doc: "Deprecated: down-conversion is not possible in Apache Kafka 4.0 and newer, so this configuration is a no-op.",
    },
    Def {
        name: "message.timestamp.after.max.ms",
        kind: Kind::Long,
        // Kafka 4.x (ServerLogConfigs.LOG_MESSAGE_TIMESTAMP_AFTER_MAX_MS_DEFAULT): one hour.
        // Kafka 3.x had Long.MAX_VALUE.
        default: Some("3600000"),
        check: Check::AtLeast(0),
        broker: &[("log.message.timestamp.after.max.ms", Unit::Same)],
        internal: false,
        doc: "How far in the future of the broker's clock a CreateTime message timestamp may be.",
    },
    Def {
        name: "message.timestamp.before.max.ms",
        kind: Kind::Long,
        default: Some(LONG_MAX),
        check: Check::AtLeast(0),
        broker: &[("log.message.timestamp.before.max.ms", Unit::Same)],
        internal: false,
        doc: "How far in the past of the broker's clock a CreateTime message timestamp may be.",
    },
    Def {
        name: "message.timestamp.type",
        kind: Kind::String,
        default: Some("CreateTime"),
        check: Check::OneOf(&["CreateTime", "LogAppendTime"]),
        broker: &[("log.message.timestamp.type", Unit::Same)],
        internal: false,
        doc: "Whether the timestamp in the message is the producer's create time or the broker's log append time.",
    },
    Def {
        name: "min.cleanable.dirty.ratio",
        kind: Kind::Double,
        default: Some("0.5"),
        check: Check::Ratio,
        broker: &[("log.cleaner.min.cleanable.ratio", Unit::Same)],
        internal: false,
        doc: "The minimum ratio of dirty log to total log for a log to be eligible for compaction.",
    },
    Def {
        name: "min.compaction.lag.ms",
        kind: Kind::Long,
        default: Some("0"),
        check: Check::AtLeast(0),
        broker: &[("log.cleaner.min.compaction.lag.ms", Unit::Same)],
        internal: false,
        doc: "The minimum time a message will remain uncompacted in the log.",
    },
    Def {
        name: "min.insync.replicas",
        kind: Kind::Int,
        default: Some("1"),
        check: Check::AtLeast(1),
        broker: &[("min.insync.replicas", Unit::Same)],
        internal: false,
        doc: "The minimum number of in-sync replicas that must acknowledge a write with acks=all.",
    },
    Def {
        name: "preallocate",
        kind: Kind::Boolean,
        default: Some("false"),
        check: Check::Any,
        broker: &[("log.preallocate", Unit::Same)],
        internal: false,
        doc: "True if we should preallocate the file on disk when creating a new log segment.",
    },
    Def {
        name: "remote.log.copy.disable",
        kind: Kind::Boolean,
        default: Some("false"),
        check: Check::Any,
        broker: &[],
        internal: false,
        doc: "Stops copying segments to remote storage while keeping remote data readable (tiered storage).",
    },
    Def {
        name: "remote.log.delete.on.disable",
        kind: Kind::Boolean,
        default: Some("false"),
        check: Check::Any,
        broker: &[],
        internal: false,
        doc: "Whether remote data is deleted when tiered storage is disabled for the topic.",
    },
    Def {
        name: "remote.storage.enable",
        kind: Kind::Boolean,
        default: Some("false"),
        check: Check::Any,
        broker: &[],
        internal: false,
        doc: "Whether tiered storage is enabled for the topic.",
    },
    Def {
        name: "retention.bytes",
        kind: Kind::Long,
        default: Some("-1"),
        check: Check::Any,
        broker: &[("log.retention.bytes", Unit::Same)],
        internal: false,
        doc: "The maximum size a partition can grow to before old segments are discarded; -1 means no limit.",
    },
    Def {
        name: "retention.ms",
        kind: Kind::Long,
        default: Some("604800000"),
        check: Check::AtLeast(-1),
        broker: &[
            ("log.retention.ms", Unit::Same),
            ("log.retention.minutes", Unit::Minutes),
            ("log.retention.hours", Unit::Hours),
        ],
        internal: false,
        doc: "The maximum time a segment is retained before it is discarded; -1 means no time limit.",
    },
    Def {
        name: "segment.bytes",
        kind: Kind::Int,
        default: Some("1073741824"),
        check: Check::AtLeast(SEGMENT_BYTES_MIN as i64),
        broker: &[("log.segment.bytes", Unit::Same)],
        internal: false,
        doc: "The segment file size for the log.",
    },
    Def {
        name: "segment.index.bytes",
        kind: Kind::Int,
        default: Some("10485760"),
        check: Check::AtLeast(4),
        broker: &[("log.index.size.max.bytes", Unit::Same)],
        internal: false,
        doc: "The size of the index that maps offsets to file positions.",
    },
    Def {
        name: "segment.jitter.ms",
        kind: Kind::Long,
        default: Some("0"),
        check: Check::AtLeast(0),
        broker: &[
            ("log.roll.jitter.ms", Unit::Same),
            ("log.roll.jitter.hours", Unit::Hours),
        ],
        internal: false,
        doc: "The maximum random jitter subtracted from the scheduled segment roll time.",
    },
    Def {
        name: "segment.ms",
        kind: Kind::Long,
        default: Some("604800000"),
        check: Check::AtLeast(1),
        broker: &[("log.roll.ms", Unit::Same), ("log.roll.hours", Unit::Hours)],
        internal: false,
        doc: "The period after which the log rolls to a new segment even if the segment is not full.",
    },
    Def {
        name: "unclean.leader.election.enable",
        kind: Kind::Boolean,
        default: Some("false"),
        check: Check::Any,
        broker: &[("unclean.leader.election.enable", Unit::Same)],
        internal: false,
        doc: "Whether replicas not in the ISR may be elected leader as a last resort, even though it may lose data.",
    },
];

/// True for a name Kafka defines as a topic config (internal ones included).
pub(crate) fn is_known_config(name: &str) -> bool {
    def(name).is_some()
}

fn def(name: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.name == name)
}

/// Validates every `(name, value)` of a map and returns it in canonical form.
fn canonical_map(map: &BTreeMap<String, String>) -> crate::Result<BTreeMap<String, String>> {
    map.iter()
        .map(|(name, value)| {
            let d = def(name)
                .ok_or_else(|| LogError::InvalidConfig(format!("{name}: unknown topic config")))?;
            let value = canonical(d, value).map_err(|reason| {
                LogError::InvalidConfig(format!("{name}: invalid value {value:?}: {reason}"))
            })?;
            Ok((name.clone(), value))
        })
        .collect()
}

/// Parses `raw` as `d`'s type, applies its validator, returns Kafka's canonical string.
fn canonical(d: &Def, raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let value = match d.kind {
        Kind::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            v @ ("true" | "false") => v.to_owned(),
            _ => return Err("expected true or false".into()),
        },
        Kind::Int => {
            let n: i32 = trimmed
                .parse()
                .map_err(|_| "not an INT (32-bit integer)".to_owned())?;
            check_number(d.check, n as i64)?;
            n.to_string()
        }
        Kind::Long => {
            let n: i64 = trimmed
                .parse()
                .map_err(|_| "not a LONG (64-bit integer)".to_owned())?;
            check_number(d.check, n)?;
            n.to_string()
        }
        Kind::Double => {
            let x: f64 = trimmed.parse().map_err(|_| "not a DOUBLE".to_owned())?;
            if let Check::Ratio = d.check
                && !(0.0..=1.0).contains(&x)
            {
                return Err("must be between 0 and 1".into());
            }
            // Java's Double.toString prints integral values with ".0".
            if x.fract() == 0.0 {
                format!("{x:.1}")
            } else {
                x.to_string()
            }
        }
        Kind::String => {
            if let Check::OneOf(allowed) = d.check
                && !allowed.contains(&trimmed)
            {
                return Err(format!("must be one of {allowed:?}"));
            }
            trimmed.to_owned()
        }
        Kind::List => {
            let items: Vec<&str> = if trimmed.is_empty() {
                Vec::new()
            } else {
                trimmed.split(',').map(str::trim).collect()
            };
            match d.check {
                Check::ListOf(allowed) => {
                    if let Some(bad) = items.iter().find(|i| !allowed.contains(i)) {
                        return Err(format!("{bad:?} is not one of {allowed:?}"));
                    }
                }
                Check::ThrottledReplicas => {
                    let wildcard = items.len() == 1 && items[0] == "*";
                    if !wildcard && !items.iter().all(|i| is_throttled_replica(i)) {
                        return Err("must be '*' or a list of [PartitionId]:[BrokerId]".into());
                    }
                }
                _ => {}
            }
            items.join(",")
        }
    };
    Ok(value)
}

fn check_number(check: Check, n: i64) -> Result<(), String> {
    match check {
        Check::AtLeast(min) if n < min => Err(format!("must be at least {min}")),
        Check::Between(lo, hi) if n < lo || n > hi => Err(format!("must be between {lo} and {hi}")),
        Check::GzipLevel if n != -1 && !(1..=9).contains(&n) => {
            Err("must be -1 or between 1 and 9".into())
        }
        _ => Ok(()),
    }
}

/// Kafka's `([0-9]+:[0-9]+)?` (the empty element is allowed).
fn is_throttled_replica(item: &str) -> bool {
    if item.is_empty() {
        return true;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    item.split_once(':')
        .is_some_and(|(p, b)| digits(p) && digits(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resolve(overrides: &[(&str, &str)]) -> crate::Result<TopicConfig> {
        TopicConfig::resolve(&BTreeMap::new(), &map(overrides))
    }

    fn invalid_naming(result: crate::Result<TopicConfig>, key: &str) {
        match result {
            Err(LogError::InvalidConfig(m)) => {
                assert!(m.starts_with(key), "{m:?} should name {key}")
            }
            other => panic!("expected InvalidConfig for {key}, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = resolve(&[]).unwrap();
        assert!(c.cleanup_delete && !c.cleanup_compact);
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(c.retention_bytes, -1);
        assert_eq!(c.segment_bytes, 1_073_741_824);
        assert_eq!(c.segment_ms, 604_800_000);
        assert_eq!(c.index_interval_bytes, 4096);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert!(!c.log_append_time);
        assert_eq!(c.segment_index_bytes, 10_485_760);
        assert_eq!(c.segment_jitter_ms, 0);
        assert_eq!(c.flush_messages, i64::MAX);
        assert_eq!(c.flush_ms, i64::MAX);
        assert_eq!(c.min_insync_replicas, 1);
        assert!(c.overrides.is_empty());
    }

    #[test]
    fn table_is_sorted_and_defaults_validate() {
        for pair in DEFS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for d in DEFS {
            if let Some(default) = d.default {
                assert_eq!(canonical(d, default).as_deref(), Ok(default), "{}", d.name);
            }
        }
    }

    #[test]
    fn overrides_are_typed_and_canonical() {
        let c = resolve(&[
            ("cleanup.policy", " compact , delete "),
            ("retention.ms", "+1000"),
            ("message.timestamp.type", "LogAppendTime"),
            ("preallocate", "TRUE"),
            ("min.cleanable.dirty.ratio", "1"),
            ("internal.segment.bytes", "2048"),
        ])
        .unwrap();
        assert!(c.cleanup_compact && c.cleanup_delete);
        assert_eq!(c.retention_ms, 1000);
        assert!(c.log_append_time);
        assert_eq!(c.segment_bytes, 2048);
        assert_eq!(c.overrides["cleanup.policy"], "compact,delete");
        assert_eq!(c.overrides["retention.ms"], "1000");
        assert_eq!(c.overrides["preallocate"], "true");
        assert_eq!(c.overrides["min.cleanable.dirty.ratio"], "1.0");
        assert_eq!(c.min_cleanable_dirty_ratio, 1.0);
    }

    #[test]
    fn cleaner_settings_are_typed() {
        let c = resolve(&[]).unwrap();
        assert_eq!(
            (
                c.delete_retention_ms,
                c.min_cleanable_dirty_ratio,
                c.min_compaction_lag_ms,
                c.max_compaction_lag_ms
            ),
            (86_400_000, 0.5, 0, i64::MAX)
        );
        let c = resolve(&[
            ("delete.retention.ms", "5"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("min.compaction.lag.ms", "7"),
            ("max.compaction.lag.ms", "9"),
        ])
        .unwrap();
        assert_eq!(
            (
                c.delete_retention_ms,
                c.min_cleanable_dirty_ratio,
                c.min_compaction_lag_ms,
                c.max_compaction_lag_ms
            ),
            (5, 0.01, 7, 9)
        );
    }

    #[test]
    fn cleanup_policy_forms() {
        let c = resolve(&[("cleanup.policy", "compact")]).unwrap();
        assert!(c.cleanup_compact && !c.cleanup_delete);
        // Kafka 4.1's ValidList accepts an empty list: neither deletion nor compaction.
        let c = resolve(&[("cleanup.policy", "")]).unwrap();
        assert!(!c.cleanup_compact && !c.cleanup_delete);
        invalid_naming(resolve(&[("cleanup.policy", "remove")]), "cleanup.policy");
        invalid_naming(resolve(&[("cleanup.policy", "Delete")]), "cleanup.policy");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let cases: &[(&str, &str)] = &[
            ("retention.ms", "-2"),
            ("retention.ms", "soon"),
            ("segment.bytes", "1048575"),
            ("segment.bytes", "4294967296"),
            ("segment.ms", "0"),
            ("max.message.bytes", "-1"),
            ("compression.type", "brotli"),
            ("compression.type", "GZIP"),
            ("compression.gzip.level", "0"),
            ("compression.gzip.level", "10"),
            ("compression.lz4.level", "18"),
            ("compression.zstd.level", "23"),
            ("min.cleanable.dirty.ratio", "1.5"),
            ("min.insync.replicas", "0"),
            ("message.timestamp.type", "createtime"),
            ("preallocate", "yes"),
            ("leader.replication.throttled.replicas", "1:2,x"),
            ("local.retention.ms", "-3"),
            ("segment.index.bytes", "3"),
            ("flush.messages", "0"),
            ("remote.storage.enable", "true"),
        ];
        for (key, value) in cases {
            invalid_naming(resolve(&[(key, value)]), key);
        }
        invalid_naming(resolve(&[("retention.hours", "1")]), "retention.hours");
        invalid_naming(
            resolve(&[
                ("min.compaction.lag.ms", "10"),
                ("max.compaction.lag.ms", "5"),
            ]),
            "min.compaction.lag.ms",
        );
    }

    #[test]
    fn valid_edge_values() {
        let ok: &[(&str, &str)] = &[
            ("retention.ms", "-1"),
            ("retention.bytes", "-5"),
            ("segment.bytes", "1048576"),
            ("compression.gzip.level", "-1"),
            ("compression.zstd.level", "-131072"),
            ("leader.replication.throttled.replicas", "*"),
            ("follower.replication.throttled.replicas", "0:1, 1:2"),
            ("message.downconversion.enable", "false"),
            ("local.retention.bytes", "-2"),
            ("unclean.leader.election.enable", "true"),
        ];
        for (key, value) in ok {
            resolve(&[(key, value)]).unwrap_or_else(|e| panic!("{key}={value}: {e}"));
        }
    }

    #[test]
    fn broker_precedence_is_kafkas() {
        let d = broker_log_defaults(&map(&[
            ("log.retention.hours", "1"),
            ("log.retention.minutes", "2"),
            ("log.roll.hours", "3"),
            ("message.max.bytes", "2000000"),
            ("log.segment.bytes", "2097152"),
            ("log.cleanup.policy", "compact"),
            ("log.flush.scheduler.interval.ms", "500"),
            ("num.partitions", "4"),
        ]))
        .unwrap();
        assert_eq!(d["retention.ms"], "120000");
        assert_eq!(d["segment.ms"], "10800000");
        assert_eq!(d["max.message.bytes"], "2000000");
        assert_eq!(d["segment.bytes"], "2097152");
        assert_eq!(d["cleanup.policy"], "compact");
        assert_eq!(d["flush.ms"], "500");
        assert!(!d.contains_key("num.partitions"));

        let d = broker_log_defaults(&map(&[
            ("log.retention.ms", "5"),
            ("log.retention.minutes", "2"),
            ("log.roll.ms", "7"),
            ("log.roll.hours", "3"),
        ]))
        .unwrap();
        assert_eq!(d["retention.ms"], "5");
        assert_eq!(d["segment.ms"], "7");

        let d = broker_log_defaults(&map(&[("log.retention.hours", "-1")])).unwrap();
        assert_eq!(d["retention.ms"], "-1");

        match broker_log_defaults(&map(&[("log.roll.hours", "0")])) {
            Err(LogError::InvalidConfig(m)) => assert!(m.starts_with("log.roll.hours")),
            other => panic!("{other:?}"),
        }
        match broker_log_defaults(&map(&[("log.segment.bytes", "10")])) {
            Err(LogError::InvalidConfig(m)) => assert!(m.starts_with("log.segment.bytes")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn broker_defaults_apply_below_overrides() {
        let broker = map(&[("retention.ms", "1000"), ("segment.ms", "2000")]);
        let c = TopicConfig::resolve(&broker, &map(&[("retention.ms", "5")])).unwrap();
        assert_eq!(c.retention_ms, 5);
        assert_eq!(c.segment_ms, 2000);
    }

    #[test]
    fn describe_reports_sources_and_synonyms() {
        let broker = map(&[("retention.ms", "1000"), ("segment.ms", "2000")]);
        let c = TopicConfig::resolve(&broker, &map(&[("retention.ms", "5")])).unwrap();
        let entries = c.describe(&broker);
        assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
        assert!(entries.iter().all(|e| e.name != "internal.segment.bytes"));
        assert_eq!(entries.len(), DEFS.iter().filter(|d| !d.internal).count());
        let get = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();

        let retention = get("retention.ms");
        assert_eq!(retention.value.as_deref(), Some("5"));
        assert_eq!(retention.source, ConfigSource::DynamicTopic);
        assert_eq!(retention.config_type, 5);
        assert_eq!(
            retention.synonyms,
            vec![
                (
                    "retention.ms".into(),
                    Some("5".into()),
                    ConfigSource::DynamicTopic
                ),
                (
                    "log.retention.ms".into(),
                    Some("1000".into()),
                    ConfigSource::StaticBroker
                ),
                (
                    "log.retention.ms".into(),
                    Some("604800000".into()),
                    ConfigSource::Default
                ),
            ]
        );
        let segment_ms = get("segment.ms");
        assert_eq!(segment_ms.value.as_deref(), Some("2000"));
        assert_eq!(segment_ms.source, ConfigSource::StaticBroker);
        assert_eq!(segment_ms.synonyms[0].0, "log.roll.ms");

        let policy = get("cleanup.policy");
        assert_eq!(policy.value.as_deref(), Some("delete"));
        assert_eq!(policy.source, ConfigSource::Default);
        assert_eq!(policy.config_type, 7);
        assert!(!policy.documentation.is_empty());
        assert_eq!(get("preallocate").config_type, 1);
        assert_eq!(get("compression.type").config_type, 2);
        assert_eq!(get("segment.bytes").config_type, 3);
        assert_eq!(get("min.cleanable.dirty.ratio").config_type, 6);
        let throttled = get("leader.replication.throttled.replicas");
        assert_eq!(throttled.value.as_deref(), Some(""));
        assert_eq!(throttled.synonyms.len(), 1);
    }

    #[test]
    fn schema_validation_keys_are_confluents() {
        let c = resolve(&[]).unwrap();
        assert!(c.schema_validation.is_off());
        let c = resolve(&[
            ("confluent.value.schema.validation", "TRUE"),
            (
                "confluent.key.subject.name.strategy",
                "io.confluent.kafka.serializers.subject.RecordNameStrategy",
            ),
        ])
        .unwrap();
        assert_eq!(
            c.schema_validation,
            SchemaValidation {
                key: None,
                value: Some(SubjectNameStrategy::Topic)
            }
        );
        assert_eq!(c.overrides["confluent.value.schema.validation"], "true");
        let c = resolve(&[
            ("confluent.key.schema.validation", "true"),
            (
                "confluent.key.subject.name.strategy",
                " io.confluent.kafka.serializers.subject.TopicRecordNameStrategy ",
            ),
            ("confluent.value.schema.validation", "false"),
        ])
        .unwrap();
        assert_eq!(
            c.schema_validation,
            SchemaValidation {
                key: Some(SubjectNameStrategy::TopicRecord),
                value: None
            }
        );
        for (key, value) in [
            ("confluent.value.schema.validation", "yes"),
            ("confluent.key.schema.validation", "1"),
            ("confluent.value.subject.name.strategy", "TopicNameStrategy"),
            (
                "confluent.key.subject.name.strategy",
                "io.confluent.kafka.serializers.subject.topicnamestrategy",
            ),
        ] {
            invalid_naming(resolve(&[(key, value)]), key);
        }
        let entries = resolve(&[]).unwrap().describe(&BTreeMap::new());
        let get = |n: &str| entries.iter().find(|e| e.name == n).unwrap().clone();
        let validation = get("confluent.value.schema.validation");
        assert_eq!(
            (validation.value.as_deref(), validation.config_type),
            (Some("false"), 1)
        );
        let strategy = get("confluent.key.subject.name.strategy");
        assert_eq!(
            (strategy.value.as_deref(), strategy.config_type),
            (
                Some("io.confluent.kafka.serializers.subject.TopicNameStrategy"),
                2
            )
        );
    }

    #[test]
    fn topic_names_follow_kafka() {
        for ok in [
            "a",
            "orders.v1",
            "__consumer_offsets",
            "A-b_c.9",
            &"x".repeat(249),
        ] {
            validate_topic_name(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(250)] {
            assert!(
                matches!(validate_topic_name(bad), Err(LogError::InvalidTopic(_))),
                "{bad:?}"
            );
        }
    }
}
