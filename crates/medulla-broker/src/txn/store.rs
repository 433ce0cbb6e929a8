//! The transaction log: every transactional id's metadata in the compacted internal
//! topic `__transaction_state`, in Apache Kafka's record format (`record.rs`), fsynced
//! before anyone is answered, and loaded on start.
//!
//! Kafka's layout: an id's records go to partition `abs(java_hash(id)) % partitions`
//! (`transaction.state.log.num.partitions`, 50; once the topic exists, its own partition
//! count). The latest record of an id is its state; a null value (tombstone) removes an
//! expired id. The topic is created on the first write, `cleanup.policy=compact` with
//! `transaction.state.log.segment.bytes` segments, so the cleaner compacts it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kafka_protocol::records::{Record, RecordBatchDecoder};
use medulla_log::{LogError, LogManager};

use super::record;
use super::state::TxnMetadata;
use crate::groups::store::java_hash;

/// The internal topic's name.
pub const TRANSACTION_TOPIC: &str = "__transaction_state";

/// Bytes read per step while loading a partition.
const LOAD_READ_BYTES: usize = 1 << 20;

/// The transaction log. Cheap to share behind an `Arc`.
pub struct TxnStore {
    log: Arc<LogManager>,
    partitions: u32,
    segment_bytes: u64,
    /// Serialises the topic's creation.
    create: Mutex<()>,
}

impl TxnStore {
    /// Opens the log and loads the latest metadata of every transactional id. A record
    /// whose key or value does not decode is skipped with a warning; a batch that does
    /// not decode fails the start (the log verified its CRC, so that is a bug or damage
    /// no guess should paper over).
    pub fn open(
        log: Arc<LogManager>,
        partitions: u32,
        segment_bytes: u64,
    ) -> Result<(TxnStore, HashMap<String, TxnMetadata>), LogError> {
        // The partition count is fixed once the topic exists: ids must keep their place.
        let existing = log.topic(TRANSACTION_TOPIC).map(|m| m.partitions);
        let store = TxnStore {
            log,
            partitions: existing.unwrap_or(partitions).max(1),
            segment_bytes,
            create: Mutex::new(()),
        };
        let mut loaded = HashMap::new();
        if existing.is_some() {
            for p in 0..store.partitions as i32 {
                store.load_partition(p, &mut loaded)?;
            }
            if !loaded.is_empty() {
                tracing::info!(
                    transactional_ids = loaded.len(),
                    "loaded the transaction log"
                );
            }
        }
        Ok((store, loaded))
    }

    fn load_partition(
        &self,
        partition: i32,
        loaded: &mut HashMap<String, TxnMetadata>,
    ) -> Result<(), LogError> {
        let Some(log) = self.log.partition(TRANSACTION_TOPIC, partition) else {
            return Ok(());
        };
        let mut offset = log.log_start_offset();
        let end = log.log_end_offset();
        while offset < end {
            let bytes = log.read(offset, LOAD_READ_BYTES, true)?;
            let mut next = offset;
            let mut pos = 0;
            // Batch by batch, advancing by each header's last offset: a batch the cleaner
            // emptied still moves the position on.
            while pos < bytes.len() {
                let Ok(header) = medulla_log::batch::parse_header(&bytes[pos..]) else {
                    break;
                };
                let size = header.size_bytes();
                if size > bytes.len() - pos {
                    break;
                }
                let mut batch = bytes.slice(pos..pos + size);
                pos += size;
                next = next.max(header.last_offset() + 1);
                let set = RecordBatchDecoder::decode(&mut batch).map_err(|e| {
                    LogError::CorruptMessage(format!(
                        "{TRANSACTION_TOPIC}-{partition} at {}: {e}",
                        header.base_offset
                    ))
                })?;
                for r in set.records {
                    if r.offset < offset || r.control {
                        continue;
                    }
                    Self::apply(partition, r, loaded);
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        Ok(())
    }

    /// One loaded record: the id's metadata, or its removal.
    fn apply(partition: i32, r: Record, loaded: &mut HashMap<String, TxnMetadata>) {
        let Some(id) = r.key.and_then(record::decode_key) else {
            tracing::warn!(
                partition,
                offset = r.offset,
                "skipping a {TRANSACTION_TOPIC} record whose key is not a transactional id"
            );
            return;
        };
        match r.value {
            None => {
                loaded.remove(&id);
            }
            Some(v) => match record::decode_value(v) {
                Some(m) => {
                    loaded.insert(id, m);
                }
                None => tracing::warn!(
                    partition,
                    offset = r.offset,
                    transactional_id = %id,
                    "skipping a {TRANSACTION_TOPIC} record whose value does not decode"
                ),
            },
        }
    }

    /// The partition of `__transaction_state` an id's records go to.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        (java_hash(transactional_id) & 0x7fff_ffff) % self.partitions as i32
    }

    fn ensure_topic(&self) -> Result<(), LogError> {
        if self.log.topic(TRANSACTION_TOPIC).is_some() {
            return Ok(());
        }
        let _create = self.create.lock().unwrap_or_else(|p| p.into_inner());
        crate::internal_topics::ensure_compacted(
            &self.log,
            TRANSACTION_TOPIC,
            self.partitions,
            self.segment_bytes,
        )
    }

    /// Durably records `metadata` for `transactional_id` (`None`: the id's tombstone):
    /// appended, then fsynced whatever the fsync policy. Blocking.
    pub fn write(
        &self,
        transactional_id: &str,
        metadata: Option<&TxnMetadata>,
        now_ms: i64,
    ) -> Result<(), LogError> {
        self.ensure_topic()?;
        let partition = self.partition_for(transactional_id);
        let log = self
            .log
            .partition(TRANSACTION_TOPIC, partition)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: TRANSACTION_TOPIC.to_owned(),
                partition,
            })?;
        let batch = crate::internal_topics::encode_batch(
            &[(
                record::encode_key(transactional_id),
                metadata.map(record::encode_value),
            )],
            now_ms,
            None,
        )?;
        let info = log.append(&batch)?;
        // Every writer's fsync waits in the partition's group commit, not behind a lock.
        log.sync_to(info.last_offset + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::state::TxnState;

    use crate::internal_topics::open_test_log as open_log;

    #[test]
    fn the_latest_record_of_each_id_is_loaded_and_tombstones_remove() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path());
        let (store, loaded) = TxnStore::open(log.clone(), 3, 1 << 20).unwrap();
        assert!(loaded.is_empty());
        assert!(
            log.topic(TRANSACTION_TOPIC).is_none(),
            "created on first write"
        );
        let mut m = TxnMetadata::new(7, 60_000, 1);
        m.producer_epoch = 0;
        store.write("a", Some(&m), 1).unwrap();
        m.state = TxnState::Ongoing;
        m.partitions.insert(("t".into(), 0));
        m.start_ms = 2;
        store.write("a", Some(&m), 2).unwrap();
        store.write("b", Some(&m), 2).unwrap();
        store.write("b", None, 3).unwrap();
        let meta = log.topic(TRANSACTION_TOPIC).unwrap();
        assert_eq!(meta.partitions, 3);
        assert!(meta.config.cleanup_compact);
        drop(store);
        log.close().unwrap();
        drop(log);

        // A different configured count does not move ids: the topic's count wins.
        let log = open_log(dir.path());
        let (store, loaded) = TxnStore::open(log, 50, 1 << 20).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded["a"], m);
        assert_eq!(store.partition_for("a"), (java_hash("a") & 0x7fff_ffff) % 3);
    }

    #[test]
    fn records_that_do_not_decode_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path());
        let (store, _) = TxnStore::open(log.clone(), 1, 1 << 20).unwrap();
        let m = TxnMetadata::new(7, 60_000, 1);
        store.write("good", Some(&m), 1).unwrap();
        // A foreign record in the same partition: a key of another version, and a value
        // of an unknown version.
        let p = log.partition(TRANSACTION_TOPIC, 0).unwrap();
        for (key, value) in [
            (&b"\x00\x09junk"[..], &b"\x00\x00"[..]),
            (&record::encode_key("bad")[..], &b"\x00\x07\x01"[..]),
        ] {
            let batch = crate::internal_topics::encode_batch(
                &[(
                    bytes::Bytes::copy_from_slice(key),
                    Some(bytes::Bytes::copy_from_slice(value)),
                )],
                1,
                None,
            )
            .unwrap();
            p.append(&batch).unwrap();
        }
        let (_, loaded) = TxnStore::open(log, 1, 1 << 20).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded["good"], m);
    }
}
