//! `medulla-log`: Medulla's storage engine.
//!
//! A [`LogManager`] owns one data directory. It holds topics, each topic a fixed
//! number of partitions, each partition a [`PartitionLog`]: an append-only sequence of
//! segment files holding Kafka RecordBatch v2 bytes exactly as a producer sent them
//! (only the base offset and partition leader epoch are patched in place; both lie
//! before the CRC-covered range). Each segment has a sparse offset index and a time
//! index beside it.
//!
//! Design trade-off: the on-disk format is the wire format. Appends copy bytes, fetches
//! return byte ranges of segment files, and nothing is re-encoded, which is what lets
//! a Kafka-style log run near the disk's bandwidth. The price is that every batch must
//! be validated (see [`batch`]) before it is written, because the log trusts its own
//! files afterwards (recovery re-checks CRCs only where a torn write is possible).
//!
//! Invariant: this crate knows nothing about the network, Kafka requests or API
//! versions. It speaks in topics, partitions, offsets, timestamps and byte ranges.
#![deny(missing_docs)]

pub mod batch;
mod clock;
pub mod config;
mod error;
mod index;
pub mod limits;
mod manager;
mod partition;
mod segment;

pub use clock::{Clock, SystemClock};
pub use config::{ConfigEntry, ConfigSource, TopicConfig};
pub use error::{LogError, Result};
pub use manager::{AlterOp, FsyncPolicy, LogManager, LogManagerOptions, TopicMeta};
pub use partition::{AppendInfo, PartitionLog, TimestampLookup};
