//! Committed offsets: an in-memory map backed by the compacted internal topic
//! `__consumer_offsets`, in Apache Kafka's record format, loaded on start.
//!
//! Kafka's layout: a group's records go to partition `abs(java_hash(group)) % partitions`
//! (`offsets.topic.num.partitions`, 50); the key is `OffsetCommitKey` v1 (group, topic,
//! partition), the value `OffsetCommitValue` v3 (offset, leader epoch, metadata, commit
//! timestamp); a null value (tombstone) deletes. Keys of other versions (group metadata,
//! version 2) are skipped on load: they belong to the group coordinator.
//!
//! A commit is acknowledged only after its record is appended and fsynced (whatever the
//! fsync policy): a committed offset that a crash forgets makes consumers re-read or,
//! worse, skip.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use medulla_log::{LogError, LogManager};

/// The internal topic's name.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Largest commit metadata accepted (Kafka's `offset.metadata.max.bytes`).
pub const METADATA_BYTES_MAX: usize = 4096;

/// Bytes read per step while loading a partition.
const LOAD_READ_BYTES: usize = 1 << 20;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The offset.
    pub offset: i64,
    /// The leader epoch the client saw, or -1.
    pub leader_epoch: i32,
    /// The client's metadata string, round-tripped exactly.
    pub metadata: String,
    /// When it was committed.
    pub commit_timestamp_ms: i64,
}

type GroupOffsets = BTreeMap<(String, i32), Committed>;

/// The committed offsets of every group. Cheap to share behind an `Arc`.
pub struct OffsetStore {
    log: Arc<LogManager>,
    partitions: u32,
    groups: Mutex<HashMap<String, GroupOffsets>>,
    /// Serialises topic creation and appends (one commit's records stay contiguous).
    write: Mutex<()>,
}

/// Java's `String.hashCode` over UTF-16 code units, as Kafka uses to place a group.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

fn put_str(buf: &mut BytesMut, s: &str) {
    // Kafka strings are at most i16::MAX bytes; callers check lengths first.
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn get_str(buf: &mut Bytes) -> Option<String> {
    if buf.remaining() < 2 {
        return None;
    }
    let n = buf.get_i16();
    if n < 0 || buf.remaining() < n as usize {
        return None;
    }
    String::from_utf8(buf.split_to(n as usize).to_vec()).ok()
}

fn encode_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::with_capacity(10 + group.len() + topic.len());
    b.put_i16(1);
    put_str(&mut b, group);
    put_str(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

fn encode_value(c: &Committed) -> Bytes {
    let mut b = BytesMut::with_capacity(26 + c.metadata.len());
    b.put_i16(3);
    b.put_i64(c.offset);
    b.put_i32(c.leader_epoch);
    put_str(&mut b, &c.metadata);
    b.put_i64(c.commit_timestamp_ms);
    b.freeze()
}

/// `(group, topic, partition)` from an offset-commit key; `None` for other key versions.
fn decode_key(mut key: Bytes) -> Option<(String, String, i32)> {
    if key.remaining() < 2 {
        return None;
    }
    let version = key.get_i16();
    if version != 0 && version != 1 {
        return None;
    }
    let group = get_str(&mut key)?;
    let topic = get_str(&mut key)?;
    (key.remaining() >= 4).then(|| (group, topic, key.get_i32()))
}

/// An offset-commit value of version 1 to 4.
fn decode_value(mut value: Bytes) -> Option<Committed> {
    if value.remaining() < 2 {
        return None;
    }
    let version = value.get_i16();
    if !(1..=4).contains(&version) || value.remaining() < 8 {
        return None;
    }
    let offset = value.get_i64();
    let leader_epoch = if version >= 3 && value.remaining() >= 4 {
        value.get_i32()
    } else {
        -1
    };
    let metadata = get_str(&mut value)?;
    let commit_timestamp_ms = if value.remaining() >= 8 {
        value.get_i64()
    } else {
        -1
    };
    Some(Committed {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

impl OffsetStore {
    /// Loads every commit from `__consumer_offsets` if it exists (it is created on the
    /// first commit, as Kafka creates it on first use).
    pub fn open(log: Arc<LogManager>, partitions: u32) -> Result<OffsetStore, LogError> {
        let store = OffsetStore {
            log,
            partitions,
            groups: Mutex::new(HashMap::new()),
            write: Mutex::new(()),
        };
        if let Some(meta) = store.log.topic(OFFSETS_TOPIC) {
            let mut loaded = 0usize;
            for p in 0..meta.partitions as i32 {
                loaded += store.load_partition(p)?;
            }
            if loaded > 0 {
                tracing::info!(records = loaded, "loaded committed offsets");
            }
        }
        Ok(store)
    }

    fn load_partition(&self, partition: i32) -> Result<usize, LogError> {
        let Some(log) = self.log.partition(OFFSETS_TOPIC, partition) else {
            return Ok(0);
        };
        let mut offset = log.log_start_offset();
        let end = log.log_end_offset();
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        let mut loaded = 0;
        while offset < end {
            let mut bytes = log.read(offset, LOAD_READ_BYTES, true)?;
            if bytes.is_empty() {
                break;
            }
            let set = RecordBatchDecoder::decode(&mut bytes).map_err(|e| {
                LogError::CorruptMessage(format!("{OFFSETS_TOPIC}-{partition} at {offset}: {e}"))
            })?;
            let mut next = offset;
            for record in set.records {
                next = next.max(record.offset + 1);
                if record.offset < offset || record.control {
                    continue;
                }
                let Some((group, topic, p)) = record.key.and_then(decode_key) else {
                    continue;
                };
                match record.value.and_then(decode_value) {
                    Some(c) => {
                        groups.entry(group).or_default().insert((topic, p), c);
                    }
                    None => {
                        if let Some(g) = groups.get_mut(&group) {
                            g.remove(&(topic, p));
                        }
                    }
                }
                loaded += 1;
            }
            if next == offset {
                break;
            }
            offset = next;
        }
        Ok(loaded)
    }

    /// The `__consumer_offsets` partition a group's records go to.
    pub fn partition_for(&self, group: &str) -> i32 {
        (java_hash(group) & 0x7fff_ffff) % self.partitions.max(1) as i32
    }

    fn ensure_topic(&self) -> Result<(), LogError> {
        if self.log.topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        // The same guard as any topic creation: never run out of descriptors half-way.
        crate::fds::check_room(u64::from(self.partitions))
            .map_err(|m| LogError::Io(std::io::Error::other(m)))?;
        let configs = BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]);
        match self
            .log
            .create_topic(OFFSETS_TOPIC, self.partitions, &configs, false)
        {
            Ok(_) | Err(LogError::TopicAlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Durably records `commits` for `group` (append, fsync), then makes them visible.
    /// Blocking: call it off the async workers.
    pub fn commit(
        &self,
        group: &str,
        commits: Vec<(String, i32, Committed)>,
    ) -> Result<(), LogError> {
        if commits.is_empty() {
            return Ok(());
        }
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        self.ensure_topic()?;
        let partition = self.partition_for(group);
        let log = self
            .log
            .partition(OFFSETS_TOPIC, partition)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: OFFSETS_TOPIC.to_owned(),
                partition,
            })?;
        let now_ms = commits.first().map_or(0, |(_, _, c)| c.commit_timestamp_ms);
        let records: Vec<Record> = commits
            .iter()
            .enumerate()
            .map(|(i, (topic, p, c))| Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // One batch: the encoder splits whenever offset - sequence changes.
                sequence: i as i32 - 1,
                timestamp: now_ms,
                key: Some(encode_key(group, topic, *p)),
                value: Some(encode_value(c)),
                headers: Default::default(),
                delete_horizon: false,
            })
            .collect();
        let mut batch = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut batch,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| {
            LogError::Io(std::io::Error::other(format!(
                "encoding commit records: {e}"
            )))
        })?;
        let info = log.append(&batch)?;
        log.sync_to(info.last_offset + 1)?;
        let mut groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        let offsets = groups.entry(group.to_owned()).or_default();
        for (topic, p, c) in commits {
            offsets.insert((topic, p), c);
        }
        Ok(())
    }

    /// The committed offset of one partition.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        let groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups
            .get(group)?
            .get(&(topic.to_owned(), partition))
            .cloned()
    }

    /// Every committed offset of a group, by topic and partition.
    pub fn all(&self, group: &str) -> Vec<(String, i32, Committed)> {
        let groups = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        groups
            .get(group)
            .map(|g| {
                g.iter()
                    .map(|((t, p), c)| (t.clone(), *p, c.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_land_on_kafkas_partitions() {
        // Java's documented values: "hello".hashCode() == 99162322, and
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE, which Kafka's Utils.abs
        // (n & 0x7fffffff) maps to 0.
        assert_eq!(java_hash("hello"), 99_162_322);
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(java_hash(""), 0);
        assert_eq!((java_hash("polygenelubricants") & 0x7fff_ffff) % 50, 0);
        assert_eq!((java_hash("hello") & 0x7fff_ffff) % 50, 99_162_322 % 50);
    }

    #[test]
    fn keys_and_values_round_trip_and_other_versions_are_skipped() {
        let c = Committed {
            offset: 42,
            leader_epoch: 3,
            metadata: "ward-7".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        assert_eq!(
            decode_key(encode_key("g", "t", 5)),
            Some(("g".into(), "t".into(), 5))
        );
        assert_eq!(decode_value(encode_value(&c)), Some(c));
        let mut group_metadata_key = BytesMut::new();
        group_metadata_key.put_i16(2);
        put_str(&mut group_metadata_key, "g");
        assert_eq!(decode_key(group_metadata_key.freeze()), None);
        assert_eq!(decode_value(Bytes::from_static(b"\x00")), None);
    }
}
