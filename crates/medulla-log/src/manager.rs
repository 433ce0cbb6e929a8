//! The [`LogManager`]: one data directory, its lock, its topics and their partitions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::{Clock, PartitionLog, TopicConfig};

/// When appended data is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before an `acks=all` produce is answered (group commit). The default.
    Always,
    /// In the background every `interval_ms`.
    Interval {
        /// Time between background flushes.
        interval_ms: u64,
    },
    /// Never explicitly; the OS writes back when it likes.
    Never,
}

/// How to open a [`LogManager`].
pub struct LogManagerOptions {
    /// The data directory (Kafka's `log.dirs`, one directory).
    pub data_dir: PathBuf,
    /// The fsync policy (`medulla.log.fsync.policy`).
    pub fsync: FsyncPolicy,
    /// Topic-config defaults from the broker's settings, see [`crate::config::broker_log_defaults`].
    pub broker_defaults: BTreeMap<String, String>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
}

/// A topic as the broker sees it.
#[derive(Debug, Clone)]
pub struct TopicMeta {
    /// Name.
    pub name: String,
    /// Kafka topic id (a random UUID fixed at creation).
    pub id: uuid::Uuid,
    /// Number of partitions.
    pub partitions: u32,
    /// Effective config.
    pub config: Arc<TopicConfig>,
}

/// A config change, as AlterConfigs (replace all overrides) or IncrementalAlterConfigs
/// (per-key operations) ask for it.
#[derive(Debug, Clone)]
pub enum AlterOp {
    /// Replace the whole override set.
    Replace(BTreeMap<String, String>),
    /// Apply operations in order: `(name, Some(value))` sets, `(name, None)` deletes
    /// (reverts to the default). APPEND / SUBTRACT are resolved by the caller.
    Incremental(Vec<(String, Option<String>)>),
}

/// Owner of a data directory. Cheap to share behind an `Arc`.
pub struct LogManager {
    _private: (),
}

impl LogManager {
    /// Opens (creating if needed) and locks the data directory, loads every topic and
    /// recovers every partition. Fails with [`crate::LogError::DataDirLocked`] if
    /// another process holds it.
    pub fn open(options: LogManagerOptions) -> crate::Result<Arc<LogManager>> {
        let _ = options;
        todo!()
    }

    /// Creates a topic (or only validates, with `validate_only`). Name rules are Kafka's.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        configs: &BTreeMap<String, String>,
        validate_only: bool,
    ) -> crate::Result<TopicMeta> {
        let _ = (name, partitions, configs, validate_only);
        todo!()
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> crate::Result<()> {
        let _ = name;
        todo!()
    }

    /// Grows a topic to `total` partitions.
    pub fn create_partitions(&self, name: &str, total: u32, validate_only: bool) -> crate::Result<()> {
        let _ = (name, total, validate_only);
        todo!()
    }

    /// Changes a topic's config overrides; persisted before it returns.
    pub fn alter_topic_config(&self, name: &str, op: AlterOp, validate_only: bool) -> crate::Result<TopicMeta> {
        let _ = (name, op, validate_only);
        todo!()
    }

    /// The topic called `name`.
    pub fn topic(&self, name: &str) -> Option<TopicMeta> {
        let _ = name;
        todo!()
    }

    /// The topic with id `id`.
    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<TopicMeta> {
        let _ = id;
        todo!()
    }

    /// Every topic, sorted by name.
    pub fn topics(&self) -> Vec<TopicMeta> {
        todo!()
    }

    /// One partition's log.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        let _ = (topic, partition);
        todo!()
    }

    /// The broker-level topic-config defaults in force.
    pub fn broker_defaults(&self) -> BTreeMap<String, String> {
        todo!()
    }

    /// The fsync policy in force.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        todo!()
    }

    /// Applies `retention.ms` / `retention.bytes` to every partition, deleting whole
    /// segments (never the active one) and advancing log start offsets. Returns the
    /// number of segments deleted.
    pub fn enforce_retention(&self) -> crate::Result<usize> {
        todo!()
    }

    /// Flushes every partition's data and indexes to disk.
    pub fn flush_all(&self) -> crate::Result<()> {
        todo!()
    }

    /// Flushes everything and marks the shutdown clean, so the next open can skip the
    /// full tail scan. Appends after `close` fail.
    pub fn close(&self) -> crate::Result<()> {
        todo!()
    }
}
