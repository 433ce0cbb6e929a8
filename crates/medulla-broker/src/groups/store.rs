//! The group log: committed offsets and group metadata, in memory and in the compacted
//! internal topic `__consumer_offsets`, in Apache Kafka's record format, loaded on start.
//!
//! Kafka's layout: a group's records go to partition `abs(java_hash(group)) % partitions`
//! (`offsets.topic.num.partitions`, 50). Two record kinds share the topic:
//! - offsets: key `OffsetCommitKey` v1 (group, topic, partition), value
//!   `OffsetCommitValue` v3 (offset, leader epoch, metadata, commit timestamp);
//! - group metadata: key `GroupMetadataKey` v2 (group), value `GroupMetadataValue` v3
//!   (protocol type, generation, protocol, leader, state timestamp, members with their
//!   subscription and assignment).
//!
//! - KIP-848 consumer groups: key version [`CONSUMER_GROUP_KEY_VERSION`] (group), value a
//!   version (0) and the group's snapshot as JSON — Medulla's own record: Kafka spreads a
//!   consumer group over six record kinds; one snapshot per change is simpler and as
//!   durable. Kafka does not use this key version, and skips key versions it does not
//!   know when it loads the topic.
//!
//! A null value (tombstone) deletes. Kafka-internal schemas the `kafka-protocol` crate does
//! not have; each is a few fixed fields, written and read here and nowhere else.
//!
//! Every write is acknowledged only after its records are appended and fsynced (whatever
//! the fsync policy): a committed offset that a crash forgets makes consumers re-read or,
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

/// The key version of Medulla's consumer-group snapshot records ("MD").
pub const CONSUMER_GROUP_KEY_VERSION: i16 = 0x4D44;

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

/// One member as a group metadata record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberRecord {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's protocol.
    pub subscription: Bytes,
    /// The member's assignment.
    pub assignment: Bytes,
}

/// A classic group's state as of its last completed rebalance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupRecord {
    /// Protocol type (`consumer`, `connect`, `sr`, …).
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// The chosen protocol (assignor), if any.
    pub protocol: Option<String>,
    /// The leader's member id, if any.
    pub leader: Option<String>,
    /// When the group entered its current state.
    pub state_timestamp_ms: i64,
    /// The members.
    pub members: Vec<MemberRecord>,
}

type GroupOffsets = BTreeMap<(String, i32), Committed>;

/// A key and a value (`None`: tombstone) for `__consumer_offsets`.
type KeyValue = (Bytes, Option<Bytes>);

/// The group log. Cheap to share behind an `Arc`.
pub struct GroupStore {
    log: Arc<LogManager>,
    partitions: u32,
    /// `offsets.topic.segment.bytes`: small enough that the cleaner gets sealed segments
    /// to compact (Kafka's reason for a topic-specific value).
    segment_bytes: u64,
    offsets: Mutex<HashMap<String, GroupOffsets>>,
    /// Group metadata as loaded on start (the coordinator owns it afterwards).
    loaded_groups: Mutex<HashMap<String, GroupRecord>>,
    /// KIP-848 group snapshots as loaded on start.
    loaded_consumer_groups: Mutex<HashMap<String, super::consumer::Snapshot>>,
    /// Serialises topic creation and appends (one write's records stay contiguous).
    write: Mutex<()>,
}

/// Java's `String.hashCode` over UTF-16 code units, as Kafka uses to place a group.
pub(crate) fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

fn put_str(buf: &mut BytesMut, s: &str) {
    // Kafka strings are at most i16::MAX bytes; callers check lengths first.
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_nullable_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

fn get_nullable_str(buf: &mut Bytes) -> Option<Option<String>> {
    if buf.remaining() < 2 {
        return None;
    }
    let n = buf.get_i16();
    if n == -1 {
        return Some(None);
    }
    if n < 0 || buf.remaining() < n as usize {
        return None;
    }
    String::from_utf8(buf.split_to(n as usize).to_vec())
        .ok()
        .map(Some)
}

fn get_str(buf: &mut Bytes) -> Option<String> {
    get_nullable_str(buf).flatten()
}

fn get_bytes(buf: &mut Bytes) -> Option<Bytes> {
    if buf.remaining() < 4 {
        return None;
    }
    let n = buf.get_i32();
    if n < 0 {
        return Some(Bytes::new());
    }
    (buf.remaining() >= n as usize).then(|| buf.split_to(n as usize))
}

fn encode_offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::with_capacity(10 + group.len() + topic.len());
    b.put_i16(1);
    put_str(&mut b, group);
    put_str(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

fn encode_group_key(group: &str) -> Bytes {
    encode_key_version(2, group)
}

fn encode_key_version(version: i16, group: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + group.len());
    b.put_i16(version);
    put_str(&mut b, group);
    b.freeze()
}

fn encode_consumer_group_value(snapshot: &super::consumer::Snapshot) -> Result<Bytes, LogError> {
    let json = serde_json::to_vec(snapshot)
        .map_err(|e| io_error(format!("encoding a consumer group snapshot: {e}")))?;
    let mut b = BytesMut::with_capacity(2 + json.len());
    b.put_i16(0);
    b.put_slice(&json);
    Ok(b.freeze())
}

fn decode_consumer_group_value(mut v: Bytes) -> Option<super::consumer::Snapshot> {
    if v.remaining() < 2 || v.get_i16() != 0 {
        return None;
    }
    serde_json::from_slice(&v).ok()
}

fn encode_offset_value(c: &Committed) -> Bytes {
    let mut b = BytesMut::with_capacity(26 + c.metadata.len());
    b.put_i16(3);
    b.put_i64(c.offset);
    b.put_i32(c.leader_epoch);
    put_str(&mut b, &c.metadata);
    b.put_i64(c.commit_timestamp_ms);
    b.freeze()
}

fn encode_group_value(g: &GroupRecord) -> Bytes {
    let mut b = BytesMut::with_capacity(64 + g.members.len() * 128);
    b.put_i16(3);
    put_str(&mut b, &g.protocol_type);
    b.put_i32(g.generation);
    put_nullable_str(&mut b, g.protocol.as_deref());
    put_nullable_str(&mut b, g.leader.as_deref());
    b.put_i64(g.state_timestamp_ms);
    b.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_str(&mut b, &m.member_id);
        put_nullable_str(&mut b, m.instance_id.as_deref());
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

/// What a `__consumer_offsets` key names.
#[derive(Debug, PartialEq, Eq)]
enum Key {
    Offset(String, String, i32),
    Group(String),
    ConsumerGroup(String),
}

fn decode_key(mut key: Bytes) -> Option<Key> {
    if key.remaining() < 2 {
        return None;
    }
    match key.get_i16() {
        0 | 1 => {
            let group = get_str(&mut key)?;
            let topic = get_str(&mut key)?;
            (key.remaining() >= 4).then(|| Key::Offset(group, topic, key.get_i32()))
        }
        2 => get_str(&mut key).map(Key::Group),
        CONSUMER_GROUP_KEY_VERSION => get_str(&mut key).map(Key::ConsumerGroup),
        _ => None,
    }
}

/// An offset-commit value of version 1 to 4.
fn decode_offset_value(mut value: Bytes) -> Option<Committed> {
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

/// A group-metadata value of version 0 to 3 (4 is the flexible encoding, which this
/// broker does not write).
fn decode_group_value(mut v: Bytes) -> Option<GroupRecord> {
    if v.remaining() < 2 {
        return None;
    }
    let version = v.get_i16();
    if !(0..=3).contains(&version) {
        return None;
    }
    let protocol_type = get_str(&mut v)?;
    if v.remaining() < 4 {
        return None;
    }
    let generation = v.get_i32();
    let protocol = get_nullable_str(&mut v)?;
    let leader = get_nullable_str(&mut v)?;
    let state_timestamp_ms = if version >= 2 {
        if v.remaining() < 8 {
            return None;
        }
        v.get_i64()
    } else {
        -1
    };
    if v.remaining() < 4 {
        return None;
    }
    let count = v.get_i32();
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        let member_id = get_str(&mut v)?;
        let instance_id = if version >= 3 {
            get_nullable_str(&mut v)?
        } else {
            None
        };
        let client_id = get_str(&mut v)?;
        let client_host = get_str(&mut v)?;
        let rebalance_timeout_ms = if version >= 1 {
            (v.remaining() >= 4).then(|| v.get_i32())?
        } else {
            -1
        };
        let session_timeout_ms = (v.remaining() >= 4).then(|| v.get_i32())?;
        let rebalance_timeout_ms = if rebalance_timeout_ms < 0 {
            session_timeout_ms
        } else {
            rebalance_timeout_ms
        };
        let subscription = get_bytes(&mut v)?;
        let assignment = get_bytes(&mut v)?;
        members.push(MemberRecord {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(GroupRecord {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp_ms,
        members,
    })
}

fn io_error(message: String) -> LogError {
    LogError::Io(std::io::Error::other(message))
}

impl GroupStore {
    /// Loads every record of `__consumer_offsets` if it exists (it is created on the
    /// first write, as Kafka creates it on first use).
    pub fn open(
        log: Arc<LogManager>,
        partitions: u32,
        segment_bytes: u64,
    ) -> Result<GroupStore, LogError> {
        let store = GroupStore {
            log,
            partitions,
            segment_bytes,
            offsets: Mutex::new(HashMap::new()),
            loaded_groups: Mutex::new(HashMap::new()),
            loaded_consumer_groups: Mutex::new(HashMap::new()),
            write: Mutex::new(()),
        };
        if let Some(meta) = store.log.topic(OFFSETS_TOPIC) {
            let mut loaded = 0usize;
            for p in 0..meta.partitions as i32 {
                loaded += store.load_partition(p)?;
            }
            if loaded > 0 {
                tracing::info!(records = loaded, "loaded the group log");
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
        let mut offsets = self.offsets.lock().unwrap_or_else(|p| p.into_inner());
        let mut groups = self.loaded_groups.lock().unwrap_or_else(|p| p.into_inner());
        let mut consumer_groups = self
            .loaded_consumer_groups
            .lock()
            .unwrap_or_else(|p| p.into_inner());
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
                match record.key.and_then(decode_key) {
                    Some(Key::Offset(group, topic, p)) => {
                        match record.value.and_then(decode_offset_value) {
                            Some(c) => {
                                offsets.entry(group).or_default().insert((topic, p), c);
                            }
                            None => {
                                if let Some(g) = offsets.get_mut(&group) {
                                    g.remove(&(topic, p));
                                    if g.is_empty() {
                                        offsets.remove(&group);
                                    }
                                }
                            }
                        }
                    }
                    Some(Key::Group(group)) => match record.value.and_then(decode_group_value) {
                        Some(g) => {
                            groups.insert(group, g);
                        }
                        None => {
                            groups.remove(&group);
                        }
                    },
                    Some(Key::ConsumerGroup(group)) => {
                        match record.value.and_then(decode_consumer_group_value) {
                            Some(g) => {
                                consumer_groups.insert(group, g);
                            }
                            None => {
                                consumer_groups.remove(&group);
                            }
                        }
                    }
                    None => continue,
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

    /// The group metadata loaded on start, handed over once to the coordinator.
    pub fn take_loaded_groups(&self) -> HashMap<String, GroupRecord> {
        std::mem::take(&mut *self.loaded_groups.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The KIP-848 group snapshots loaded on start, handed over once to the coordinator.
    pub fn take_loaded_consumer_groups(&self) -> HashMap<String, super::consumer::Snapshot> {
        std::mem::take(
            &mut *self
                .loaded_consumer_groups
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// Durably records a KIP-848 group's snapshot. Blocking.
    pub fn store_consumer_group(
        &self,
        group: &str,
        snapshot: &super::consumer::Snapshot,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let kv = (
            encode_key_version(CONSUMER_GROUP_KEY_VERSION, group),
            Some(encode_consumer_group_value(snapshot)?),
        );
        self.append(group, &[kv], now_ms)
    }

    /// Every group that has committed offsets.
    pub fn groups_with_offsets(&self) -> Vec<String> {
        let offsets = self.offsets.lock().unwrap_or_else(|p| p.into_inner());
        offsets.keys().cloned().collect()
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
        crate::fds::check_room(u64::from(self.partitions)).map_err(io_error)?;
        let configs = BTreeMap::from([
            ("cleanup.policy".to_owned(), "compact".to_owned()),
            ("segment.bytes".to_owned(), self.segment_bytes.to_string()),
        ]);
        match self
            .log
            .create_topic(OFFSETS_TOPIC, self.partitions, &configs, false)
        {
            Ok(_) | Err(LogError::TopicAlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Appends `records` for `group` as one batch and fsyncs it. Blocking.
    fn append(&self, group: &str, records: &[KeyValue], timestamp_ms: i64) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        self.ensure_topic()?;
        let partition = self.partition_for(group);
        let log = self
            .log
            .partition(OFFSETS_TOPIC, partition)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: OFFSETS_TOPIC.to_owned(),
                partition,
            })?;
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // One batch: the encoder splits whenever offset - sequence changes.
                sequence: i as i32 - 1,
                timestamp: timestamp_ms,
                key: Some(key.clone()),
                value: value.clone(),
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
        .map_err(|e| io_error(format!("encoding group log records: {e}")))?;
        let info = log.append(&batch)?;
        log.sync_to(info.last_offset + 1)
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
        let records: Vec<KeyValue> = commits
            .iter()
            .map(|(t, p, c)| {
                (
                    encode_offset_key(group, t, *p),
                    Some(encode_offset_value(c)),
                )
            })
            .collect();
        let now_ms = commits.first().map_or(0, |(_, _, c)| c.commit_timestamp_ms);
        self.append(group, &records, now_ms)?;
        let mut offsets = self.offsets.lock().unwrap_or_else(|p| p.into_inner());
        let group_offsets = offsets.entry(group.to_owned()).or_default();
        for (topic, p, c) in commits {
            group_offsets.insert((topic, p), c);
        }
        Ok(())
    }

    /// Durably records a group's metadata. Blocking.
    pub fn store_group(&self, group: &str, record: &GroupRecord) -> Result<(), LogError> {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let kv = (encode_group_key(group), Some(encode_group_value(record)));
        self.append(group, &[kv], record.state_timestamp_ms)
    }

    /// Durably deletes committed offsets of `group` (`None`: all of them, and the group's
    /// metadata too). Blocking.
    pub fn delete(
        &self,
        group: &str,
        partitions: Option<&[(String, i32)]>,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let doomed: Vec<(String, i32)> = match partitions {
            Some(p) => p.to_vec(),
            None => self
                .all(group)
                .into_iter()
                .map(|(t, p, _)| (t, p))
                .collect(),
        };
        let mut records: Vec<KeyValue> = doomed
            .iter()
            .map(|(t, p)| (encode_offset_key(group, t, *p), None))
            .collect();
        if partitions.is_none() {
            records.push((encode_group_key(group), None));
            records.push((encode_key_version(CONSUMER_GROUP_KEY_VERSION, group), None));
        }
        // A group that never wrote anything needs no tombstone (and no topic).
        if self.log.topic(OFFSETS_TOPIC).is_some() {
            self.append(group, &records, now_ms)?;
        }
        let mut offsets = self.offsets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = offsets.get_mut(group) {
            for key in &doomed {
                g.remove(key);
            }
            if g.is_empty() {
                offsets.remove(group);
            }
        }
        Ok(())
    }

    /// The committed offset of one partition.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        let offsets = self.offsets.lock().unwrap_or_else(|p| p.into_inner());
        offsets
            .get(group)?
            .get(&(topic.to_owned(), partition))
            .cloned()
    }

    /// Every committed offset of a group, by topic and partition.
    pub fn all(&self, group: &str) -> Vec<(String, i32, Committed)> {
        let offsets = self.offsets.lock().unwrap_or_else(|p| p.into_inner());
        offsets
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
    fn the_group_log_is_compacted_and_loads_the_same_after() {
        use medulla_log::{CleanerConfig, FsyncPolicy, LogManagerOptions, SystemClock};
        let dir = tempfile::tempdir().unwrap();
        let open_log = || {
            LogManager::open(LogManagerOptions {
                data_dir: dir.path().to_owned(),
                fsync: FsyncPolicy::Never,
                broker_defaults: Default::default(),
                clock: Arc::new(SystemClock),
            })
            .unwrap()
        };
        let log = open_log();
        log.create_topic("t", 100, &Default::default(), false)
            .unwrap();
        // One partition of __consumer_offsets with the smallest segments a topic may have
        // (1 MiB), so that commits of 100 partitions roll a few for the cleaner.
        let store = GroupStore::open(log.clone(), 1, 1 << 20).unwrap();
        let commit = |store: &GroupStore, offset: i64| {
            let c = Committed {
                offset,
                leader_epoch: -1,
                metadata: "m".into(),
                commit_timestamp_ms: 1,
            };
            let all = (0..100).map(|p| ("t".to_owned(), p, c.clone())).collect();
            store.commit("g", all).unwrap();
        };
        for n in 0..300 {
            commit(&store, n);
        }
        store
            .store_group(
                "g",
                &GroupRecord {
                    protocol_type: "consumer".into(),
                    generation: 3,
                    ..Default::default()
                },
            )
            .unwrap();
        for n in 300..=600 {
            // Roll past the segment with the group record, so it is sealed.
            commit(&store, n);
        }
        let p = log.partition(OFFSETS_TOPIC, 0).unwrap();
        let before = p.size_bytes();
        let passes = log.clean_now(&CleanerConfig::default()).unwrap();
        assert!(passes > 0, "the group log was cleaned");
        assert!(
            p.size_bytes() * 10 < before,
            "{} bytes after cleaning, {before} before",
            p.size_bytes()
        );
        drop(store);
        log.close().unwrap();
        drop(log);

        let log = open_log();
        let store = GroupStore::open(log, 1, 1 << 20).unwrap();
        for p in 0..100 {
            assert_eq!(store.get("g", "t", p).unwrap().offset, 600);
        }
        assert_eq!(store.take_loaded_groups()["g"].generation, 3);
    }

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
            decode_key(encode_offset_key("g", "t", 5)),
            Some(Key::Offset("g".into(), "t".into(), 5))
        );
        assert_eq!(decode_offset_value(encode_offset_value(&c)), Some(c));
        assert_eq!(
            decode_key(encode_group_key("g")),
            Some(Key::Group("g".into()))
        );
        let mut future_key = BytesMut::new();
        future_key.put_i16(9);
        put_str(&mut future_key, "g");
        assert_eq!(decode_key(future_key.freeze()), None);
        assert_eq!(decode_offset_value(Bytes::from_static(b"\x00")), None);
    }

    #[test]
    fn group_metadata_round_trips() {
        let g = GroupRecord {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            state_timestamp_ms: 1_700_000_000_000,
            members: vec![
                MemberRecord {
                    member_id: "m-1".into(),
                    instance_id: Some("ward-7".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"assign"),
                },
                MemberRecord {
                    member_id: "m-2".into(),
                    ..Default::default()
                },
            ],
        };
        assert_eq!(decode_group_value(encode_group_value(&g)), Some(g.clone()));
        let empty = GroupRecord {
            protocol: None,
            leader: None,
            members: vec![],
            ..g
        };
        assert_eq!(decode_group_value(encode_group_value(&empty)), Some(empty));
        // Truncated values are refused, never half-read.
        let whole = encode_group_value(&GroupRecord::default());
        for cut in 0..whole.len() {
            assert_eq!(decode_group_value(whole.slice(..cut)), None, "cut at {cut}");
        }
    }
}
