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
//! [`PartitionLog::read_slice`] names the range a read covers ([`FileSlice`]) without
//! reading the records, so a caller can send them from the file without copying.
//!
//! Durability: with [`FsyncPolicy::Always`] a producer waiting for `acks=all` calls
//! [`PartitionLog::wait_durable`]; one fsync serves every waiter queued at that moment
//! (group commit). On open, every partition recovers: indexes that fail their sanity
//! checks are rebuilt from the log, and after an unclean shutdown (no clean-shutdown
//! marker) the segments written since the last recorded sync are scanned batch by batch
//! and cut at the first torn or corrupt one.
//!
//! Compaction: [`LogManager::start_cleaner`] runs Kafka's log cleaner on background
//! threads for `cleanup.policy=compact` topics. It keeps the latest record of every key
//! (offsets never change; a read inside a removed range gets the next batch), removes
//! tombstones `delete.retention.ms` after it first rewrote them (KIP-534), works
//! without the partition's lock and swaps cleaned segments in crash-safely.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use medulla_log::{FsyncPolicy, LogManager, LogManagerOptions, SystemClock};
//!
//! # fn main() -> medulla_log::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let log = LogManager::open(LogManagerOptions {
//!     data_dir: dir.path().to_path_buf(),
//!     fsync: FsyncPolicy::Always,
//!     broker_defaults: BTreeMap::new(),
//!     clock: Arc::new(SystemClock),
//!     recovery_threads: medulla_log::DEFAULT_RECOVERY_THREADS,
//! })?;
//! log.create_topic("admissions", 1, &BTreeMap::new(), false)?;
//! let partition = log.partition("admissions", 0).expect("just created");
//!
//! // One record (no key, value "hi") in a RecordBatch v2, as a producer sends it.
//! let record = [0x10, 0, 0, 0, 0x01, 0x04, b'h', b'i', 0];
//! let mut batch = Vec::new();
//! batch.extend_from_slice(&0i64.to_be_bytes()); // base offset (the log assigns it)
//! batch.extend_from_slice(&((49 + record.len()) as i32).to_be_bytes()); // batch length
//! batch.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
//! batch.push(2); // magic
//! batch.extend_from_slice(&[0; 4]); // CRC, filled in below
//! batch.extend_from_slice(&0i16.to_be_bytes()); // attributes: no compression
//! batch.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
//! batch.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // base timestamp
//! batch.extend_from_slice(&1_700_000_000_000i64.to_be_bytes()); // max timestamp
//! batch.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
//! batch.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
//! batch.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
//! batch.extend_from_slice(&1i32.to_be_bytes()); // records count
//! batch.extend_from_slice(&record);
//! let crc = crc32c::crc32c(&batch[21..]);
//! batch[17..21].copy_from_slice(&crc.to_be_bytes());
//!
//! let appended = partition.append(&batch)?;
//! partition.wait_durable(appended.last_offset + 1)?; // now it survives a power cut
//! let fetched = partition.read(appended.base_offset, 1 << 20, true)?;
//! assert_eq!(fetched.len(), batch.len());
//! log.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! Invariant: this crate knows nothing about the network, Kafka requests or API
//! versions. It speaks in topics, partitions, offsets, timestamps and byte ranges.
#![deny(missing_docs)]

pub mod batch;
mod cleaner;
mod clock;
pub mod config;
mod error;
/// Crash-safe small-file helpers (atomic replace, bounded reads), also used by the
/// security state files of `medulla-auth`.
pub mod fsutil;
mod index;
pub mod limits;
mod manager;
mod parallel;
mod partition;
mod producers;
mod segment;
mod slice;
#[cfg(test)]
mod test_support;

pub use cleaner::CleanerConfig;
pub use clock::{Clock, SystemClock};
pub use config::{ConfigEntry, ConfigSource, SchemaValidation, SubjectNameStrategy, TopicConfig};
pub use error::{LogError, Result};
pub use manager::{
    AlterOp, DEFAULT_RECOVERY_THREADS, FsyncPolicy, LogManager, LogManagerOptions, TopicMeta,
};
pub use partition::{AppendInfo, CleanStats, PartitionLog, TimestampLookup};
pub use producers::{AbortedTxn, AppendOrigin, ProducerInfo, TxnMarker};
pub use slice::FileSlice;

#[cfg(test)]
mod tidy {
    /// Every source file says what it is for in its first line (rust-analyzer's tidy rule).
    #[test]
    fn every_source_file_opens_with_a_doc_line() {
        let mut pending = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        let mut checked = 0;
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert!(
                        text.starts_with("//! "),
                        "{} must open with a `//!` line",
                        path.display()
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 10);
    }
}
