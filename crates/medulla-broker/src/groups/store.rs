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
//!
//! Transactional offsets (TxnOffsetCommit) are the same offset records in one
//! transactional batch carrying the producer's id and epoch. They stay pending (invisible
//! to OffsetFetch) until the transaction coordinator ends the transaction: then a commit
//! or abort marker is written to the partition and they are applied or dropped, as
//! Kafka's `OffsetMetadataManager` does (the rules are in `offsets.rs`). Loading replays
//! the same way: a transactional record waits for its producer's next marker on that
//! partition, and with none it stays pending for the transaction coordinator to end.
//!
//! Compaction and transactions: the cleaner must not count aborted transactional
//! records as the latest of their key, must not clean at or past the last stable offset
//! (an open transaction's records), and must keep a marker while any record of its
//! transaction remains (a loaded transactional record with no marker after it stays
//! pending). Memory and a compacted log then agree, because a committed transaction's
//! offset replaces the current one only if its record is later (`offsets.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;
use medulla_log::{AppendInfo, AppendOrigin, LogError, LogManager, TxnMarker};

use super::offsets::{Offsets, Stored};

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

/// Why a transactional offset commit was refused.
#[derive(Debug, thiserror::Error)]
pub enum TxnCommitError {
    /// Writing it failed (or the log refused it, e.g. a fenced producer epoch).
    #[error(transparent)]
    Log(#[from] LogError),
    /// It would hold more pending offsets than a limit allows
    /// ([`crate::limits::TXN_PENDING_OFFSETS_PER_GROUP_MAX`],
    /// [`crate::limits::TXN_PENDING_OFFSETS_MAX`]).
    #[error("too many pending transactional offsets: {pending} with this commit, at most {limit}")]
    TooManyPending {
        /// How many there would be.
        pending: usize,
        /// The limit.
        limit: usize,
    },
}

/// A key and a value (`None`: tombstone) for `__consumer_offsets`.
type KeyValue = (Bytes, Option<Bytes>);

/// The group log. Cheap to share behind an `Arc`.
pub struct GroupStore {
    log: Arc<LogManager>,
    partitions: u32,
    /// `offsets.topic.segment.bytes`: small enough that the cleaner gets sealed segments
    /// to compact (Kafka's reason for a topic-specific value).
    segment_bytes: u64,
    /// Committed and pending transactional offsets.
    offsets: Mutex<Offsets>,
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

/// Commit (`true`) or abort of a transaction marker's key `(version: i16, type: i16)`.
fn marker_commit(key: &[u8]) -> Option<bool> {
    match key {
        [_, _, 0, 0, ..] => Some(false),
        [_, _, 0, 1, ..] => Some(true),
        _ => None,
    }
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
            offsets: Mutex::new(Offsets::default()),
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
            // Every batch of the read, not just the first (a read holds whole batches).
            let sets = RecordBatchDecoder::decode_all(&mut bytes).map_err(|e| {
                LogError::CorruptMessage(format!("{OFFSETS_TOPIC}-{partition} at {offset}: {e}"))
            })?;
            let mut next = offset;
            for record in sets.into_iter().flat_map(|set| set.records) {
                next = next.max(record.offset + 1);
                if record.offset < offset {
                    continue;
                }
                if record.control {
                    // A transaction marker: the producer's pending offsets here are
                    // applied or dropped. (Other control records have no meaning here.)
                    if let Some(commit) = record.key.as_deref().and_then(marker_commit) {
                        offsets.end_transaction(partition, record.producer_id, commit);
                    }
                    continue;
                }
                match record.key.and_then(decode_key) {
                    Some(Key::Offset(group, topic, p)) => {
                        match record.value.and_then(decode_offset_value) {
                            Some(committed) => {
                                let stored = Stored {
                                    committed,
                                    record_offset: record.offset,
                                };
                                if record.transactional && record.producer_id >= 0 {
                                    let txn = (partition, record.producer_id);
                                    offsets.put_pending(txn, &group, &topic, p, stored);
                                } else {
                                    offsets.put(&group, &topic, p, stored);
                                }
                            }
                            // Kafka: a tombstone deletes, transactional or not.
                            None => offsets.delete(&group, &topic, p),
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
        self.append(group, &[kv], now_ms, None).map(drop)
    }

    fn offsets(&self) -> std::sync::MutexGuard<'_, Offsets> {
        self.offsets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every group that has committed offsets or offsets in an open transaction.
    pub fn groups_with_offsets(&self) -> Vec<String> {
        self.offsets().groups()
    }

    /// The `__consumer_offsets` partition a group's records go to.
    pub fn partition_for(&self, group: &str) -> i32 {
        (java_hash(group) & 0x7fff_ffff) % self.partitions.max(1) as i32
    }

    fn ensure_topic(&self) -> Result<(), LogError> {
        crate::internal_topics::ensure_compacted(
            &self.log,
            OFFSETS_TOPIC,
            self.partitions,
            self.segment_bytes,
        )
    }

    /// The `__consumer_offsets` partition of `group`, created with the topic if needed.
    fn partition_log(&self, group: &str) -> Result<Arc<medulla_log::PartitionLog>, LogError> {
        self.partition_log_at(self.partition_for(group))
    }

    /// `__consumer_offsets` partition `partition`, created with the topic if needed.
    fn partition_log_at(&self, partition: i32) -> Result<Arc<medulla_log::PartitionLog>, LogError> {
        self.ensure_topic()?;
        self.log
            .partition(OFFSETS_TOPIC, partition)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: OFFSETS_TOPIC.to_owned(),
                partition,
            })
    }

    /// Appends `records` for `group` as one batch and fsyncs it; `txn` makes it a
    /// transactional batch of that producer (id, epoch). Blocking. `None` when there was
    /// nothing to write.
    fn append(
        &self,
        group: &str,
        records: &[KeyValue],
        timestamp_ms: i64,
        txn: Option<(i64, i16)>,
    ) -> Result<Option<AppendInfo>, LogError> {
        if records.is_empty() {
            return Ok(None);
        }
        let log = self.partition_log(group)?;
        let batch = crate::internal_topics::encode_batch(records, timestamp_ms, txn)?;
        // The coordinator's own writes: no sequence checks, but a transactional batch
        // opens (or extends) the producer's transaction on this partition, and an epoch
        // older than the partition's refuses it (a fenced producer).
        let info = log.append_from(&batch, AppendOrigin::Coordinator)?;
        log.sync_to(info.last_offset + 1)?;
        Ok(Some(info))
    }

    /// Durably records `commits` for `group` (append, fsync), then makes them visible.
    /// Blocking: call it off the async workers.
    pub fn commit(
        &self,
        group: &str,
        commits: Vec<(String, i32, Committed)>,
    ) -> Result<(), LogError> {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let Some((info, commits)) = self.append_commits(group, commits, None)? else {
            return Ok(());
        };
        let mut offsets = self.offsets();
        for (i, (topic, p, committed)) in commits.into_iter().enumerate() {
            let record_offset = info.base_offset + i as i64;
            offsets.put(
                group,
                &topic,
                p,
                Stored {
                    committed,
                    record_offset,
                },
            );
        }
        Ok(())
    }

    /// Writes offset records for `commits` (transactional for `txn`); with the write lock
    /// held. Hands the commits back with where they were written.
    #[allow(clippy::type_complexity)]
    fn append_commits(
        &self,
        group: &str,
        commits: Vec<(String, i32, Committed)>,
        txn: Option<(i64, i16)>,
    ) -> Result<Option<(AppendInfo, Vec<(String, i32, Committed)>)>, LogError> {
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
        Ok(self
            .append(group, &records, now_ms, txn)?
            .map(|info| (info, commits)))
    }

    /// Durably records `commits` for `group` inside producer `producer_id`'s transaction
    /// (one transactional batch with its id and epoch, fsynced). They stay pending —
    /// invisible to [`GroupStore::get`] — until [`GroupStore::end_transaction`]. Refused
    /// without writing anything beyond the pending-offset limits. Blocking.
    pub fn commit_transactional(
        &self,
        group: &str,
        (producer_id, producer_epoch): (i64, i16),
        commits: Vec<(String, i32, Committed)>,
    ) -> Result<(), TxnCommitError> {
        if commits.is_empty() {
            return Ok(());
        }
        if producer_id < 0 {
            return Err(TxnCommitError::Log(LogError::InvalidRecord(
                "a transactional offset commit needs a producer id".into(),
            )));
        }
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let txn = (self.partition_for(group), producer_id);
        {
            let offsets = self.offsets();
            let asked = commits.iter().map(|(t, p, _)| (t.as_str(), *p));
            let (new, held) = offsets.pending_growth(txn, group, asked);
            let per_group = held + new;
            if per_group > crate::limits::TXN_PENDING_OFFSETS_PER_GROUP_MAX {
                return Err(TxnCommitError::TooManyPending {
                    pending: per_group,
                    limit: crate::limits::TXN_PENDING_OFFSETS_PER_GROUP_MAX,
                });
            }
            let total = offsets.pending_count() + new;
            if total > crate::limits::TXN_PENDING_OFFSETS_MAX {
                return Err(TxnCommitError::TooManyPending {
                    pending: total,
                    limit: crate::limits::TXN_PENDING_OFFSETS_MAX,
                });
            }
        }
        let written = self.append_commits(group, commits, Some((producer_id, producer_epoch)))?;
        let Some((info, commits)) = written else {
            return Ok(());
        };
        let mut offsets = self.offsets();
        for (i, (topic, p, committed)) in commits.into_iter().enumerate() {
            let record_offset = info.base_offset + i as i64;
            offsets.put_pending(
                txn,
                group,
                &topic,
                p,
                Stored {
                    committed,
                    record_offset,
                },
            );
        }
        Ok(())
    }

    /// Ends producer `producer_id`'s transaction on `__consumer_offsets` partition
    /// `partition` (see [`GroupStore::partition_for`]): writes the marker (fsynced), then
    /// applies (`commit`) or drops the offsets the transaction holds there, whichever
    /// groups they belong to. A marker
    /// is written even when nothing is pending, as Kafka's transaction coordinator writes
    /// one to every partition of the transaction: it closes the producer's transaction on
    /// the partition and records its epoch there (fencing older ones). Calling it again
    /// writes another marker, which changes nothing. Returns how many offsets were
    /// pending. Blocking.
    pub fn end_transaction(
        &self,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<usize, LogError> {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let log = self.partition_log_at(partition)?;
        let info = log.append_marker(&TxnMarker {
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch: 0,
        })?;
        log.sync_to(info.last_offset + 1)?;
        Ok(self
            .offsets()
            .end_transaction(partition, producer_id, commit))
    }

    /// Whether an open transaction holds an offset of this partition for `group`
    /// (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT then).
    pub fn has_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.offsets().has_pending(group, topic, partition)
    }

    /// Whether any open transaction holds offsets of `group`.
    pub fn has_open_transactions(&self, group: &str) -> bool {
        self.offsets().has_open_transactions(group)
    }

    /// Durably records a group's metadata. Blocking.
    pub fn store_group(&self, group: &str, record: &GroupRecord) -> Result<(), LogError> {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let kv = (encode_group_key(group), Some(encode_group_value(record)));
        self.append(group, &[kv], record.state_timestamp_ms, None)
            .map(drop)
    }

    /// Durably deletes offsets of `group` (`None`: all of them, those of open
    /// transactions too, and the group's metadata). A tombstone also drops the pending
    /// transactional offsets of its partition, as in Kafka. Blocking.
    pub fn delete(
        &self,
        group: &str,
        partitions: Option<&[(String, i32)]>,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let _write = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let doomed: Vec<(String, i32)> = match partitions {
            Some(p) => p.to_vec(),
            None => {
                let offsets = self.offsets();
                let mut all = offsets.pending_partitions(group);
                all.extend(
                    offsets
                        .group(group)
                        .into_iter()
                        .flat_map(|g| g.keys().cloned()),
                );
                all.into_iter().collect()
            }
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
            self.append(group, &records, now_ms, None)?;
        }
        let mut offsets = self.offsets();
        for (topic, p) in &doomed {
            offsets.delete(group, topic, *p);
        }
        Ok(())
    }

    /// The committed offset of one partition.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<Committed> {
        self.offsets()
            .get(group, topic, partition)
            .map(|s| s.committed.clone())
    }

    /// Every committed offset of a group, by topic and partition.
    pub fn all(&self, group: &str) -> Vec<(String, i32, Committed)> {
        self.offsets()
            .group(group)
            .map(|g| {
                g.iter()
                    .map(|((t, p), s)| (t.clone(), *p, s.committed.clone()))
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
                recovery_threads: medulla_log::DEFAULT_RECOVERY_THREADS,
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

    use crate::internal_topics::open_test_log as open_log;

    fn at(offset: i64) -> Vec<(String, i32, Committed)> {
        let c = Committed {
            offset,
            leader_epoch: 2,
            metadata: format!("m{offset}"),
            commit_timestamp_ms: 1,
        };
        vec![("t".to_owned(), 0, c)]
    }

    /// Everything OffsetFetch can see of groups `g` and `h` on partition 0 of `t`:
    /// committed offset and whether it is pending.
    fn visible(store: &GroupStore) -> Vec<(Option<i64>, bool)> {
        ["g", "h"]
            .iter()
            .map(|g| {
                (
                    store.get(g, "t", 0).map(|c| c.offset),
                    store.has_pending(g, "t", 0),
                )
            })
            .collect()
    }

    #[test]
    fn transactional_offsets_replay_as_they_were_decided() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path());
        // One __consumer_offsets partition: every group and producer shares it.
        let store = GroupStore::open(log.clone(), 1, 1 << 20).unwrap();
        store.commit("g", at(1)).unwrap();
        // Producer 1 commits g=10, then a plain commit g=2 lands after its record: the
        // plain one is later in the log and stays when the transaction commits.
        store.commit_transactional("g", (1, 0), at(10)).unwrap();
        store.commit("g", at(2)).unwrap();
        // Producer 2 commits h=20 and h=21 (same partition twice: the last one counts).
        store.commit_transactional("h", (2, 0), at(20)).unwrap();
        store.commit_transactional("h", (2, 0), at(21)).unwrap();
        // Producer 3 commits g=30 and aborts; producer 4 commits h=40 and never ends.
        store.commit_transactional("g", (3, 0), at(30)).unwrap();
        store.commit_transactional("h", (4, 0), at(40)).unwrap();
        assert_eq!(visible(&store), vec![(Some(2), true), (None, true)]);
        assert_eq!(store.end_transaction(0, 1, 0, true).unwrap(), 1);
        assert_eq!(store.end_transaction(0, 2, 0, true).unwrap(), 1);
        assert_eq!(store.end_transaction(0, 3, 0, false).unwrap(), 1);
        // A repeated end: another marker, nothing pending, nothing changes.
        assert_eq!(store.end_transaction(0, 2, 0, true).unwrap(), 0);
        let before = visible(&store);
        assert_eq!(before, vec![(Some(2), false), (Some(21), true)]);
        drop(store);
        log.close().unwrap();
        drop(log);

        let log = open_log(dir.path());
        let store = GroupStore::open(log.clone(), 1, 1 << 20).unwrap();
        assert_eq!(
            visible(&store),
            before,
            "the log replays to the same offsets"
        );
        assert_eq!(store.all("g")[0].2.metadata, "m2");
        assert_eq!(
            store.groups_with_offsets(),
            vec!["g".to_owned(), "h".to_owned()]
        );
        // Producer 4's transaction is still open after the restart; ending it works.
        assert_eq!(store.end_transaction(0, 4, 0, true).unwrap(), 1);
        assert_eq!(visible(&store), vec![(Some(2), false), (Some(40), false)]);
        let p = log.partition(OFFSETS_TOPIC, 0).unwrap();
        assert_eq!(p.last_stable_offset(), p.log_end_offset(), "nothing open");
    }

    #[test]
    fn compaction_keeps_what_transactions_decided() {
        use medulla_log::CleanerConfig;
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path());
        // One partition with the smallest segments a topic may have (1 MiB).
        let store = GroupStore::open(log.clone(), 1, 1 << 20).unwrap();
        // g: a plain commit, then a transaction that aborts with the same key: the
        // aborted record is the latest of its key in the log, yet must not displace the
        // plain one. h: a committed transaction. u: a transaction still open.
        store.commit("g", at(1)).unwrap();
        store.commit_transactional("g", (1, 0), at(99)).unwrap();
        store.end_transaction(0, 1, 0, false).unwrap();
        store.commit_transactional("h", (2, 0), at(7)).unwrap();
        store.end_transaction(0, 2, 0, true).unwrap();
        let filler = |store: &GroupStore, round: i64| {
            let c = Committed {
                offset: round,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 1,
            };
            let all = (0..100).map(|p| ("f".to_owned(), p, c.clone())).collect();
            store.commit("filler", all).unwrap();
        };
        for round in 0..250 {
            filler(&store, round);
        }
        store.commit_transactional("u", (3, 0), at(5)).unwrap();
        for round in 250..500 {
            filler(&store, round);
        }
        let p = log.partition(OFFSETS_TOPIC, 0).unwrap();
        assert!(p.last_stable_offset() < p.log_end_offset(), "u is open");
        let before = p.size_bytes();
        assert!(log.clean_now(&CleanerConfig::default()).unwrap() > 0);
        assert!(p.size_bytes() < before, "the group log was compacted");
        let mut first = p.read(p.log_start_offset(), 1 << 20, true).unwrap();
        let first: Vec<kafka_protocol::records::Record> =
            RecordBatchDecoder::decode_all(&mut first)
                .unwrap()
                .into_iter()
                .flat_map(|set| set.records)
                .collect();
        assert!(
            first.iter().all(|r| r.control || r.producer_id != 1),
            "the aborted record was cleaned away"
        );
        assert!(
            first.iter().any(|r| r.control && r.producer_id == 2),
            "markers stay"
        );
        drop(store);
        log.close().unwrap();
        drop(log);

        let store = GroupStore::open(open_log(dir.path()), 1, 1 << 20).unwrap();
        assert_eq!(store.get("g", "t", 0).map(|c| c.offset), Some(1));
        assert!(!store.has_pending("g", "t", 0));
        assert_eq!(store.get("h", "t", 0).map(|c| c.offset), Some(7));
        assert!(store.has_pending("u", "t", 0) && store.get("u", "t", 0).is_none());
        assert_eq!(store.get("filler", "f", 99).map(|c| c.offset), Some(499));
        // The open transaction still ends after compaction and a restart.
        store.end_transaction(0, 3, 0, true).unwrap();
        assert_eq!(store.get("u", "t", 0).map(|c| c.offset), Some(5));
    }

    #[test]
    fn deleting_a_group_drops_its_pending_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path());
        let store = GroupStore::open(log.clone(), 1, 1 << 20).unwrap();
        store.commit_transactional("g", (1, 0), at(10)).unwrap();
        store.delete("g", None, 1).unwrap();
        assert!(!store.has_pending("g", "t", 0));
        store.end_transaction(0, 1, 0, true).unwrap();
        assert_eq!(store.get("g", "t", 0), None);
        drop(store);
        log.close().unwrap();
        drop(log);
        let store = GroupStore::open(open_log(dir.path()), 1, 1 << 20).unwrap();
        assert_eq!(
            store.get("g", "t", 0),
            None,
            "the tombstone came after the record"
        );
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
