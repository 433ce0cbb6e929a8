//! One partition's log: its segments, its offsets, group commit and reads.
//!
//! Locking: `state` (a std `Mutex`, never held across an await — this crate has no
//! runtime) serialises appends, rolls, retention and the bookkeeping of reads; the data
//! I/O of reads happens after it is released, through `Arc<File>` handles and sizes
//! captured under it. `flush_lock` serialises fsync passes (group commit): a waiter that
//! gets it either finds its offset already durable or runs one pass that makes
//! everything appended so far durable, for itself and every waiter queued behind it.
//! Lock order: `flush_lock` before `state`; `cleaner` (the cleaner checkpoint) is never held
//! with either.
//!
//! Invariants: there is always at least one segment, the last one is active; segment
//! base offsets increase and every batch of a segment lies below the next segment's base;
//! `log_start_offset <= log_end_offset`; `durable_offset <= log_end_offset`.

use std::collections::BTreeMap;
use std::io::{self, IoSlice};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use crate::batch::{self, ATTR_LOG_APPEND_TIME, BatchHeader};
use crate::fsutil::{self, TMP_SUFFIX};
use crate::limits::{APPEND_BYTES_MAX, READ_BYTES_MAX, SEGMENT_FILE_BYTES_MAX};
use crate::producers::{
    self, AbortedTxn, AppendOrigin, Check, ProducerInfo, ProducerState, TxnMarker, Updates,
};
use crate::segment::{self, AppendError, Payload, RecoverOptions, Replay, Segment};
use crate::slice::FileSlice;
use crate::{Clock, FsyncPolicy, LogError, TopicConfig};

/// Checkpoint of the log start offset (DeleteRecords and retention move it).
const LOG_START_CHECKPOINT: &str = "log-start-offset";
/// Checkpoint of the base offset below which every segment is known to be synced: after
/// an unclean shutdown, segments from here on are scanned in full.
const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point";

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The broker time stamped on the batches for `LogAppendTime` topics, else -1.
    pub log_append_time_ms: i64,
    /// The partition's log start offset after the append.
    pub log_start_offset: i64,
    /// The batch was a producer's retry of one already written: nothing was appended and
    /// the offsets are the original's.
    pub duplicate: bool,
}

/// Result of a lookup by timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampLookup {
    /// Offset of the record found.
    pub offset: i64,
    /// Its timestamp.
    pub timestamp: i64,
}

/// Lifecycle of a partition, stored in an `AtomicU8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Status {
    Open = 0,
    /// The manager was closed: no more writes.
    Closed = 1,
    /// The topic was deleted.
    Deleted = 2,
    /// A write or fsync failed in a way that leaves the disk state unknown: refusing
    /// further writes (and durability promises) is the only safe answer, as Kafka takes
    /// a log directory offline.
    Failed = 3,
}

/// One partition. All methods take `&self`; the log serialises appends internally.
pub struct PartitionLog {
    topic: String,
    partition: i32,
    dir: PathBuf,
    config: RwLock<Arc<TopicConfig>>,
    clock: Arc<dyn Clock>,
    fsync: FsyncPolicy,
    state: Mutex<State>,
    flush_lock: Mutex<()>,
    /// Every offset below this is on disk.
    durable_offset: AtomicI64,
    /// The last recovery point written to its checkpoint.
    recovery_point: AtomicI64,
    /// Mirrors of the state's offsets, readable without waiting for an append's I/O.
    log_end: AtomicI64,
    /// First offset of the oldest open transaction, `i64::MAX` when none.
    first_unstable: AtomicI64,
    log_start: AtomicI64,
    status: AtomicU8,
    /// fsync calls made (data and index files), for tests and metrics.
    fsyncs: AtomicU64,
    end_tx: watch::Sender<i64>,
    /// The cleaner's checkpoint and what it learnt (compacted topics).
    cleaner: Mutex<clean::CleanerState>,
    /// A cleaner thread is running a pass on this partition.
    cleaning: AtomicBool,
    /// Test hook: where the next cleaner swap stops as if the process died.
    #[cfg(test)]
    crash_at: Mutex<Option<clean::CrashPoint>>,
}

struct State {
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    /// Records appended since the last flush pass (`flush.messages`).
    unflushed_records: i64,
    /// When the oldest unflushed append happened (`flush.ms`).
    first_unflushed: Option<Instant>,
    /// Idempotence and transactions (`producers.rs`).
    producers: ProducerState,
}

impl State {
    fn active(&self) -> &Segment {
        // The partition always has a segment: open creates one and nothing removes the last.
        self.segments
            .values()
            .next_back()
            .expect("a partition always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a partition always has an active segment")
    }
}

/// A poisoned lock only means another thread panicked while holding it; nothing in this
/// crate panics while holding one, and the state it guards stays consistent between
/// statements, so carrying on is safe.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How a partition is opened (by the manager).
pub(crate) struct OpenPartition {
    pub topic: String,
    pub partition: i32,
    pub dir: PathBuf,
    pub config: Arc<TopicConfig>,
    pub clock: Arc<dyn Clock>,
    pub fsync: FsyncPolicy,
    /// The previous process closed the data directory cleanly.
    pub clean_shutdown: bool,
}

/// This segment's random share of `segment.jitter.ms` (Kafka's `randomSegmentJitter`).
fn roll_jitter_ms(config: &TopicConfig) -> i64 {
    if config.segment_jitter_ms <= 0 {
        return 0;
    }
    let bound = config.segment_jitter_ms.min(config.segment_ms).max(1) as u64;
    // uuid's v4 generator is the randomness source this crate already has.
    (uuid::Uuid::new_v4().as_u128() as u64 % bound) as i64
}

fn relative_clamped(offset: i64, base_offset: i64) -> u32 {
    (offset - base_offset).clamp(0, u32::MAX as i64) as u32
}

impl PartitionLog {
    /// Opens (creating if needed) a partition directory and recovers its segments.
    pub(crate) fn open(options: OpenPartition) -> crate::Result<PartitionLog> {
        let OpenPartition {
            topic,
            partition,
            dir,
            config,
            clock,
            fsync,
            clean_shutdown,
        } = options;
        std::fs::create_dir_all(&dir)?;
        // First, settle what an interrupted cleaner pass left behind.
        if segment::recover_swaps(&dir)? {
            fsutil::sync_dir(&dir)?;
        }
        // Whether this open creates or removes a file: only then is the directory synced
        // (1,000 partitions opened after a clean shutdown change nothing).
        let mut dir_changed = false;
        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(TMP_SUFFIX) {
                // A checkpoint write that did not finish: the old checkpoint stands.
                std::fs::remove_file(entry.path())?;
                dir_changed = true;
            } else if let Some(base) = name
                .strip_suffix(".log")
                .and_then(segment::parse_base_offset)
            {
                bases.push(base);
            } else if let Some(base) = name
                .strip_suffix(".index")
                .or_else(|| name.strip_suffix(".timeindex"))
                .and_then(segment::parse_base_offset)
            {
                index_files.push((base, entry.path()));
            }
        }
        bases.sort_unstable();
        let mut indexed = vec![0u8; bases.len()];
        for (base, path) in index_files {
            match bases.binary_search(&base) {
                Ok(i) => indexed[i] += 1,
                Err(_) => {
                    std::fs::remove_file(path)?;
                    dir_changed = true;
                }
            }
        }
        // Recovery creates the index files a segment lacks.
        dir_changed |= indexed.iter().any(|n| *n < 2);

        let checkpoint = |name: &str| match fsutil::read_checkpoint(&dir.join(name)) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(topic, partition, checkpoint = name, error = %e, "ignoring damaged checkpoint");
                None
            }
        };
        let log_start_checkpoint = checkpoint(LOG_START_CHECKPOINT);
        let cleaner_checkpoint = checkpoint(clean::CLEANER_CHECKPOINT);
        // No recovery point means nothing is known to be synced: scan everything.
        let recovery_point = checkpoint(RECOVERY_POINT_CHECKPOINT).unwrap_or(0);
        if !clean_shutdown {
            tracing::info!(
                topic,
                partition,
                recovery_point,
                "recovering after an unclean shutdown"
            );
        }

        // The producer state is rebuilt in the same pass that recovers the segments: the
        // snapshot, then every batch recovery keeps from the snapshot's offset on (from
        // the log start without one). Segments that later turn out to lie wholly below
        // the log start hold nothing from there on: a snapshot is written at every roll,
        // so its offset is past every sealed segment's batches.
        let snapshot = read_producer_snapshot(&dir, &topic, partition);
        let replay_from = match &snapshot {
            Some((_, offset)) => *offset,
            None => log_start_checkpoint.map_or(i64::MIN, |c| c.max(0)),
        };
        let mut producers = snapshot.map(|(state, _)| state).unwrap_or_default();
        let mut replay_visit = |header: &BatchHeader, control: Option<segment::Marker>| {
            producers.replay(header, control)
        };
        let mut replay = Replay {
            from_offset: replay_from,
            visit: &mut replay_visit,
        };

        let now_ms = clock.now_ms();
        let mut segments = BTreeMap::new();
        for (i, &base) in bases.iter().enumerate() {
            let last = i + 1 == bases.len();
            let scanned = !clean_shutdown && (last || base >= recovery_point);
            let options = RecoverOptions {
                next_base_offset: bases.get(i + 1).copied(),
                full_scan: scanned,
                verify_crc: !clean_shutdown,
                active: last,
                index_interval_bytes: config.index_interval_bytes,
                now_ms,
                roll_jitter_ms: roll_jitter_ms(&config),
            };
            let mut segment = Segment::recover(&dir, base, &options, &mut replay)?;
            if scanned {
                // What was read back may have come from the page cache of the crashed
                // process: sync it before anything newer is declared durable.
                segment.dirty = true;
                segment.index_dirty |= !last;
            }
            segments.insert(base, segment);
        }

        // Recovery can empty a sealed segment (all of it torn); an empty segment is only
        // meaningful as the active one.
        let empty: Vec<i64> = segments
            .iter()
            .rev()
            .skip(1)
            .filter(|(_, s)| s.size_bytes() == 0)
            .map(|(b, _)| *b)
            .collect();
        for base in empty {
            if let Some(s) = segments.remove(&base) {
                s.delete_files();
                dir_changed = true;
            }
        }

        let mut log_start_dirty = false;
        if segments.is_empty() {
            dir_changed = true;
            let base = log_start_checkpoint.unwrap_or(0).max(0);
            segments.insert(
                base,
                Segment::create(&dir, base, now_ms, roll_jitter_ms(&config))?,
            );
        }
        let first_base = segments.keys().next().copied().unwrap_or(0);
        let mut log_end = segments
            .values()
            .next_back()
            .map_or(first_base, Segment::next_offset);
        // The checkpoint may lie below the first segment: compaction can empty the first
        // segments, and their offsets stay part of the log (reads skip the gap).
        let log_start = log_start_checkpoint.map_or(first_base, |c| c.max(0));
        if log_start > log_end {
            // Records up to the checkpointed start were deleted but the tail holding the
            // newest ones was lost: start an empty log there, as Kafka does.
            tracing::warn!(
                topic,
                partition,
                log_start,
                log_end,
                "log start is past the recovered end"
            );
            for (_, s) in std::mem::take(&mut segments) {
                s.delete_files();
            }
            segments.insert(
                log_start,
                Segment::create(&dir, log_start, now_ms, roll_jitter_ms(&config))?,
            );
            log_end = log_start;
            log_start_dirty = true;
            dir_changed = true;
        }
        let active_base = segments.keys().next_back().copied().unwrap_or(log_start);
        let below: Vec<i64> = segments
            .iter()
            .filter(|(b, s)| **b != active_base && s.next_offset() <= log_start)
            .map(|(b, _)| *b)
            .collect();
        for base in below {
            if let Some(s) = segments.remove(&base) {
                s.delete_files();
                dir_changed = true;
            }
        }
        if log_start_dirty {
            fsutil::write_checkpoint(&dir.join(LOG_START_CHECKPOINT), log_start)?;
        }
        if dir_changed {
            fsutil::sync_dir(&dir)?;
        }

        if log_start_dirty || replay_from > log_end {
            // The replayed state does not fit the recovered log (its start moved past a
            // lost tail, or the snapshot is from past the end): rebuild it from the log
            // as it now is, in a second pass. Only after a loss of unsynced data.
            producers =
                load_producer_state(&dir, &segments, log_start, log_end, &topic, partition)?;
        }
        let first_unstable = producers.first_unstable_offset().unwrap_or(i64::MAX);

        let (end_tx, _) = watch::channel(log_end);
        Ok(PartitionLog {
            topic,
            partition,
            dir,
            config: RwLock::new(config),
            clock,
            fsync,
            state: Mutex::new(State {
                segments,
                log_start_offset: log_start,
                log_end_offset: log_end,
                unflushed_records: 0,
                first_unflushed: None,
                producers,
            }),
            flush_lock: Mutex::new(()),
            durable_offset: AtomicI64::new(log_end),
            recovery_point: AtomicI64::new(recovery_point),
            log_end: AtomicI64::new(log_end),
            first_unstable: AtomicI64::new(first_unstable),
            log_start: AtomicI64::new(log_start),
            status: AtomicU8::new(Status::Open as u8),
            fsyncs: AtomicU64::new(0),
            end_tx,
            cleaner: Mutex::new(clean::CleanerState {
                first_dirty_offset: cleaner_checkpoint,
                delete_horizon_ms: None,
            }),
            cleaning: AtomicBool::new(false),
            #[cfg(test)]
            crash_at: Mutex::new(None),
        })
    }

    /// Topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Partition index.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Validates `records` (one or more RecordBatch v2 as produced) completely, checks
    /// producer sequences and epochs, then assigns offsets and appends them; all or
    /// nothing. A producer's retry of a batch already written is not appended again: the
    /// answer carries the original offsets and `duplicate`. Does not wait for fsync.
    pub fn append(&self, records: &[u8]) -> crate::Result<AppendInfo> {
        self.append_from(records, AppendOrigin::Client)
    }

    /// [`PartitionLog::append`] for `origin`: the broker's own writers skip the
    /// sequence checks.
    pub fn append_from(&self, records: &[u8], origin: AppendOrigin) -> crate::Result<AppendInfo> {
        self.append_inner(records, origin, None)
    }

    /// [`PartitionLog::append`] that also runs `check` on every record during
    /// validation (see [`batch::RecordCheck`]): a refused record refuses the whole
    /// payload with [`LogError::RefusedRecords`], and nothing is appended.
    pub fn append_checked(
        &self,
        records: &[u8],
        check: &mut batch::RecordCheck<'_>,
    ) -> crate::Result<AppendInfo> {
        self.append_inner(records, AppendOrigin::Client, Some(check))
    }

    fn append_inner(
        &self,
        records: &[u8],
        origin: AppendOrigin,
        check: Option<&mut batch::RecordCheck<'_>>,
    ) -> crate::Result<AppendInfo> {
        self.check_status(true)?;
        let config = self.config();
        if records.len() > APPEND_BYTES_MAX {
            return Err(LogError::MessageTooLarge {
                size_bytes: records.len(),
                max_bytes: APPEND_BYTES_MAX,
            });
        }
        // Validation is the expensive part (CRCs, decompression): done before the lock.
        let checked = batch::validate_batches(
            records,
            config.max_message_bytes as usize,
            config.cleanup_compact,
            check,
        )?;
        for b in &checked {
            if b.header.is_log_append_time() {
                // Kafka answers INVALID_TIMESTAMP: only a broker sets LogAppendTime.
                return Err(LogError::InvalidRecord(
                    "producers must not set the timestamp type to LogAppendTime".into(),
                ));
            }
            // Kafka refuses a batch larger than a segment (RECORD_LIST_TOO_LARGE).
            if b.header.size_bytes() as u64 > config.segment_bytes {
                return Err(LogError::MessageTooLarge {
                    size_bytes: b.header.size_bytes(),
                    max_bytes: config.segment_bytes as usize,
                });
            }
        }
        // The broker patches each batch's base offset and leader epoch, which precede the
        // CRC-covered bytes: those first bytes are copied and patched, the rest is written
        // from the producer's buffer as it is. Only a rewritten maxTimestamp (which
        // changes the CRC) needs a whole copy.
        let rewrite = config.log_append_time
            || checked
                .iter()
                .any(|b| b.max_record_timestamp != b.header.max_timestamp);
        let mut copy = if rewrite {
            records.to_vec()
        } else {
            Vec::new()
        };
        let mut prefixes: Vec<[u8; batch::CRC_START]> = if rewrite {
            Vec::new()
        } else {
            checked
                .iter()
                .map(|b| {
                    let mut prefix = [0u8; batch::CRC_START];
                    prefix.copy_from_slice(&records[b.position..b.position + batch::CRC_START]);
                    prefix
                })
                .collect()
        };

        let state = lock(&self.state);
        self.check_status(true)?;
        let now_ms = self.clock.now_ms();
        let base_offset = state.log_end_offset;
        let mut next_offset = base_offset;
        let mut headers: Vec<BatchHeader> = Vec::with_capacity(checked.len());
        for (i, b) in checked.iter().enumerate() {
            let mut header = b.header;
            let bytes: &mut [u8] = if rewrite {
                &mut copy[b.position..b.position + header.size_bytes()]
            } else {
                &mut prefixes[i]
            };
            batch::set_base_offset(bytes, next_offset);
            header.base_offset = next_offset;
            header.partition_leader_epoch = 0;
            if config.log_append_time {
                batch::set_max_timestamp(bytes, now_ms, true);
                header.attributes |= ATTR_LOG_APPEND_TIME;
                header.max_timestamp = now_ms;
            } else if b.max_record_timestamp != header.max_timestamp {
                // Kafka corrects a wrong maxTimestamp too; the time index relies on it.
                batch::set_max_timestamp(bytes, b.max_record_timestamp, false);
                header.max_timestamp = b.max_record_timestamp;
            }
            next_offset = header.last_offset() + 1;
            headers.push(header);
        }
        let updates = match state.producers.check(&headers, origin)? {
            Check::Append(updates) => updates,
            Check::Duplicate(original) => {
                return Ok(AppendInfo {
                    base_offset: original.first_offset,
                    last_offset: original.last_offset,
                    log_append_time_ms: if config.log_append_time {
                        original.timestamp
                    } else {
                        -1
                    },
                    log_start_offset: state.log_start_offset,
                    duplicate: true,
                });
            }
        };
        let payload = if rewrite {
            Payload::whole(&copy)
        } else {
            let mut parts = Vec::with_capacity(2 * checked.len());
            for (b, prefix) in checked.iter().zip(&prefixes) {
                parts.push(IoSlice::new(prefix));
                parts.push(IoSlice::new(
                    &records[b.position + batch::CRC_START..b.position + b.header.size_bytes()],
                ));
            }
            Payload::from_parts(parts)
        };
        self.write_locked(state, &payload, &headers, updates, now_ms, &config)
    }

    /// Writes a transaction marker (a control batch) for `marker.producer_id`, ending its
    /// open transaction here: a commit makes its records visible to `read_committed`
    /// readers, an abort lists them as aborted. Refused with
    /// [`LogError::InvalidProducerEpoch`] if the producer has a newer epoch here. Does not
    /// wait for fsync (use [`PartitionLog::sync_to`]).
    pub fn append_marker(&self, marker: &TxnMarker) -> crate::Result<AppendInfo> {
        self.check_status(true)?;
        let config = self.config();
        let now_ms = self.clock.now_ms();
        let mut payload = batch::marker_batch(
            marker.producer_id,
            marker.producer_epoch,
            marker.commit,
            marker.coordinator_epoch,
            now_ms,
        )?;
        let mut header = batch::parse_header(&payload)?;
        let state = lock(&self.state);
        self.check_status(true)?;
        let offset = state.log_end_offset;
        batch::set_base_offset(&mut payload, offset);
        header.base_offset = offset;
        let updates = state.producers.check_marker(marker, offset, now_ms)?;
        self.write_locked(
            state,
            &Payload::whole(&payload),
            &[header],
            updates,
            now_ms,
            &config,
        )
    }

    /// The common tail of appends: roll if due, write, then publish the new end and the
    /// producer state.
    fn write_locked(
        &self,
        mut state: MutexGuard<'_, State>,
        payload: &Payload<'_>,
        headers: &[BatchHeader],
        updates: Updates,
        now_ms: i64,
        config: &TopicConfig,
    ) -> crate::Result<AppendInfo> {
        let base_offset = state.log_end_offset;
        let next_offset = headers.last().map_or(base_offset, |h| h.last_offset() + 1);
        let last_offset = next_offset - 1;
        self.roll_if_needed(
            &mut state,
            payload.len() as u64,
            last_offset,
            now_ms,
            config,
        )?;
        let interval = config.index_interval_bytes;
        match state.active_mut().append(payload, headers, interval) {
            Ok(()) => {}
            Err(AppendError::Clean(e)) => return Err(e.into()),
            Err(AppendError::Dirty(e)) => {
                self.fail("append", &e);
                return Err(e.into());
            }
        }
        state.producers.apply(updates);
        self.first_unstable.store(
            state.producers.first_unstable_offset().unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
        state.log_end_offset = next_offset;
        self.log_end.store(next_offset, Ordering::SeqCst);
        state.unflushed_records += next_offset - base_offset;
        state.first_unflushed.get_or_insert_with(Instant::now);
        let flush_now = state.unflushed_records >= config.flush_messages;
        let log_start_offset = state.log_start_offset;
        drop(state);

        self.end_tx.send_replace(next_offset);
        if flush_now {
            self.flush()?;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time_ms: if config.log_append_time { now_ms } else { -1 },
            log_start_offset,
            duplicate: false,
        })
    }

    /// The last stable offset: below it every transaction is decided (committed or
    /// aborted); `read_committed` readers see nothing at or past it.
    pub fn last_stable_offset(&self) -> i64 {
        self.first_unstable
            .load(Ordering::SeqCst)
            .min(self.log_end.load(Ordering::SeqCst))
    }

    /// [`PartitionLog::read`] for a `read_committed` reader: never at or past the last
    /// stable offset.
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> crate::Result<Bytes> {
        let stable = self.last_stable_offset();
        self.read_slice(offset, max_bytes, min_one_batch, Some(stable))?
            .map_or(Ok(Bytes::new()), |slice| slice.read_to_bytes())
    }

    /// Aborted transactions with records in `from..upper`, for a `read_committed`
    /// Fetch response.
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        lock(&self.state).producers.aborted_between(from, upper)
    }

    /// The producers with state here (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerInfo> {
        lock(&self.state).producers.producers()
    }

    /// Forgets producers idle past `expiration_ms` with nothing open
    /// (`producer.id.expiration.ms`). Returns how many.
    pub(crate) fn expire_producers(&self, expiration_ms: i64) -> usize {
        let now_ms = self.clock.now_ms();
        lock(&self.state).producers.expire(now_ms, expiration_ms)
    }

    /// Writes the producer-state snapshot for everything below the log end. With
    /// `unless_unchanged`, a snapshot file that already holds exactly these bytes is left
    /// alone (a partition closed with no write since it opened costs no fsync).
    fn snapshot_producers(&self, state: &mut State, unless_unchanged: bool) -> crate::Result<()> {
        if self.status() == Status::Deleted {
            return Ok(());
        }
        let log_start = state.log_start_offset;
        state.producers.truncate_below(log_start);
        let bytes = state.producers.to_snapshot(state.log_end_offset);
        let path = self.dir.join(producers::SNAPSHOT_FILE);
        if unless_unchanged && fsutil::holds(&path, &bytes) {
            return Ok(());
        }
        fsutil::write_atomic(&path, &bytes)?;
        Ok(())
    }

    fn roll_if_needed(
        &self,
        state: &mut State,
        payload_bytes: u64,
        last_offset: i64,
        now_ms: i64,
        config: &TopicConfig,
    ) -> crate::Result<()> {
        let active = state.active();
        let size = active.size_bytes();
        if size == 0 {
            return Ok(());
        }
        let index_bytes = config.segment_index_bytes as usize;
        let full = size + payload_bytes > config.segment_bytes
            || size + payload_bytes > SEGMENT_FILE_BYTES_MAX
            || active.offset_index_entries() >= index_bytes / 8
            || active.time_index_entries() >= index_bytes / 12
            || last_offset - active.base_offset > i32::MAX as i64;
        let age_ms = now_ms.saturating_sub(active.rolling_timestamp_ms());
        // Kafka's maxSegmentMs: on a compacted topic the active segment (never cleaned)
        // also rolls once max.compaction.lag.ms has passed since its first record.
        let segment_ms = if config.cleanup_compact && config.max_compaction_lag_ms > 0 {
            config.segment_ms.min(config.max_compaction_lag_ms)
        } else {
            config.segment_ms
        };
        let aged = age_ms > segment_ms.saturating_sub(active.roll_jitter_ms);
        if full || aged {
            self.roll(state, now_ms, config)?;
        }
        Ok(())
    }

    /// Starts a new active segment at the log end offset.
    fn roll(&self, state: &mut State, now_ms: i64, config: &TopicConfig) -> crate::Result<()> {
        let base = state.log_end_offset;
        // Fallible steps first, so a failure leaves the old segment active and intact.
        // The producer state as of the new segment's base: recovery replays from there,
        // never over segments the cleaner may have rewritten.
        self.snapshot_producers(state, false)?;
        state.active_mut().finish_time_index()?;
        let segment = Segment::create(&self.dir, base, now_ms, roll_jitter_ms(config))?;
        let old = state.active_mut();
        old.seal()?;
        old.index_dirty = true;
        tracing::debug!(topic = %self.topic, partition = self.partition, base, "rolled segment");
        state.segments.insert(base, segment);
        Ok(())
    }

    /// Blocks until every offset below `end_offset` is on disk when the policy is
    /// `Always` (one fsync serves every waiter: group commit); returns at once otherwise.
    pub fn wait_durable(&self, end_offset: i64) -> crate::Result<()> {
        if self.fsync != FsyncPolicy::Always {
            return Ok(());
        }
        self.sync_to(end_offset)
    }

    /// Like [`PartitionLog::wait_durable`] but whatever the fsync policy: for the broker's
    /// own state (committed offsets) that must never be forgotten once acknowledged.
    pub fn sync_to(&self, end_offset: i64) -> crate::Result<()> {
        if self.durable_offset.load(Ordering::SeqCst) >= end_offset {
            return Ok(());
        }
        let _flushing = lock(&self.flush_lock);
        // A pass that ran while we queued may have covered us.
        if self.durable_offset.load(Ordering::SeqCst) >= end_offset {
            return Ok(());
        }
        self.flush_locked(false)
    }

    /// One fsync pass: data of the active segment and of rolled-but-unsynced segments
    /// (with their indexes), then the new durable offset and recovery point.
    pub(crate) fn flush(&self) -> crate::Result<()> {
        let _flushing = lock(&self.flush_lock);
        self.flush_locked(false)
    }

    /// The last flush before a clean shutdown: also syncs the active segment's indexes,
    /// which the next open trusts without a scan.
    pub(crate) fn flush_final(&self) -> crate::Result<()> {
        let _flushing = lock(&self.flush_lock);
        self.flush_locked(true)?;
        let mut state = lock(&self.state);
        self.snapshot_producers(&mut state, true)
    }

    fn flush_locked(&self, with_active_indexes: bool) -> crate::Result<()> {
        if self.status() == Status::Failed {
            return Err(self.failed_error());
        }
        let (target, files, recovery_point) = {
            let mut state = lock(&self.state);
            let target = state.log_end_offset;
            let active_base = state.active().base_offset;
            let mut files = Vec::new();
            let mut sealed_synced = false;
            for segment in state.segments.values_mut().rev() {
                let active = segment.base_offset == active_base;
                if !active && !segment.dirty && !segment.index_dirty {
                    // Passes sync every dirty segment, so older ones are clean too.
                    break;
                }
                if segment.dirty {
                    files.push(Arc::clone(segment.log_file()));
                    segment.dirty = false;
                }
                if (!active || with_active_indexes) && segment.index_dirty {
                    files.extend(segment.index_files().into_iter().cloned());
                    segment.index_dirty = false;
                }
                if !active {
                    sealed_synced = true;
                }
            }
            state.unflushed_records = 0;
            state.first_unflushed = None;
            (target, files, sealed_synced.then_some(active_base))
        };
        for file in files {
            if let Err(e) = file.sync_data() {
                // After a failed fsync the kernel may have dropped the dirty pages: no
                // later fsync can vouch for them, so stop here for good.
                self.fail("fsync", &e);
                return Err(e.into());
            }
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        self.durable_offset.fetch_max(target, Ordering::SeqCst);
        // A deleted partition's directory may already be a new topic's of the same name:
        // never write a checkpoint there. (`mark_deleted` waits for a flush in progress, so
        // a flush that passed this check finishes before the directory is renamed away.)
        if let Some(point) = recovery_point
            && self.status() != Status::Deleted
            && point > self.recovery_point.load(Ordering::SeqCst)
        {
            fsutil::write_checkpoint(&self.dir.join(RECOVERY_POINT_CHECKPOINT), point)?;
            self.recovery_point.store(point, Ordering::SeqCst);
        }
        Ok(())
    }

    /// True when the oldest unflushed append is older than `flush.ms`.
    pub(crate) fn flush_due(&self) -> bool {
        let flush_ms = self.config().flush_ms;
        if flush_ms == i64::MAX {
            return false;
        }
        let state = lock(&self.state);
        state
            .first_unflushed
            .is_some_and(|t| t.elapsed() >= Duration::from_millis(flush_ms.max(0) as u64))
    }

    /// Whole batches starting with the one that contains `offset`, up to `max_bytes`
    /// (but at least one whole batch when `min_one_batch`), never past the high
    /// watermark. Errors with `OffsetOutOfRange` outside `[log_start, log_end]`;
    /// `offset == log_end` gives empty bytes. [`PartitionLog::read_slice`], copied.
    pub fn read(&self, offset: i64, max_bytes: usize, min_one_batch: bool) -> crate::Result<Bytes> {
        self.read_slice(offset, max_bytes, min_one_batch, None)?
            .map_or(Ok(Bytes::new()), |slice| slice.read_to_bytes())
    }

    /// Where the batches [`PartitionLog::read`] returns lie in their segment file, without
    /// reading them: whole batches starting with the one that contains `offset`, up to
    /// `max_bytes` (at least one when `min_one_batch`), never past the high watermark,
    /// and, with `upper` (a `read_committed` reader passes the last stable offset), none
    /// whose base offset is `upper` or more. `None` when no batch qualifies. Errors with
    /// `OffsetOutOfRange` outside `[log_start, log_end]`.
    ///
    /// The batches come from one segment; the reader asks again from the slice's
    /// [`FileSlice::next_offset`] for more. Only batch headers are read here.
    pub fn read_slice(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        upper: Option<i64>,
    ) -> crate::Result<Option<FileSlice>> {
        self.check_status(false)?;
        let max_bytes = max_bytes.min(READ_BYTES_MAX);
        let mut searched: Option<i64> = None;
        loop {
            let (view, start, index, upper) = {
                let state = lock(&self.state);
                if searched.is_none() {
                    if offset < state.log_start_offset || offset > state.log_end_offset {
                        return Err(LogError::OffsetOutOfRange {
                            requested: offset,
                            log_start_offset: state.log_start_offset,
                            log_end_offset: state.log_end_offset,
                        });
                    }
                    if offset == state.log_end_offset {
                        return Ok(None);
                    }
                }
                let segment = match searched {
                    None => state
                        .segments
                        .range(..=offset)
                        .next_back()
                        .or_else(|| state.segments.iter().next()),
                    // `offset` fell in a gap after the previous segment's last batch.
                    Some(previous) => state
                        .segments
                        .range((Bound::Excluded(previous), Bound::Unbounded))
                        .next(),
                };
                let Some((_, segment)) = segment else {
                    return Ok(None);
                };
                // A bound at or past the log end bounds nothing.
                let upper = upper.filter(|u| *u < state.log_end_offset);
                (
                    segment.view(),
                    segment.start_position(offset),
                    segment.offset_index(),
                    upper,
                )
            };
            let position = match start {
                Ok(position) => position,
                Err(disk) => disk
                    .floor(relative_clamped(offset, view.base_offset), |e| {
                        e.relative_offset
                    })?
                    .map_or(0, |e| e.position as u64),
            };
            if let Some((position, header)) = view.find_batch(position, offset)? {
                let taken =
                    view.slice_batches(position, &header, max_bytes, min_one_batch, upper, &index)?;
                return Ok(taken.map(|(end, next_offset)| {
                    FileSlice::new(
                        Arc::clone(&view.log),
                        position,
                        (end - position) as usize,
                        next_offset,
                    )
                }));
            }
            searched = Some(view.base_offset);
        }
    }

    /// The next offset to be written (equals the high watermark on this single-replica log).
    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::SeqCst)
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start.load(Ordering::SeqCst)
    }

    /// First record with a timestamp `>= timestamp`, or `None` if there is none.
    pub fn lookup_timestamp(&self, timestamp: i64) -> crate::Result<Option<TimestampLookup>> {
        self.check_status(false)?;
        let (log_start, candidates) = {
            let state = lock(&self.state);
            let log_start = state.log_start_offset;
            let candidates: Vec<_> = state
                .segments
                .values()
                .filter(|s| s.next_offset() > log_start)
                .filter(|s| s.max_timestamp().is_some_and(|(ts, _)| ts >= timestamp))
                .map(|s| (s.view(), s.disk_indexes()))
                .collect();
            (log_start, candidates)
        };
        for (view, (offsets, times)) in candidates {
            // A time entry below the target says no batch up to its offset can match.
            let position = match timestamp.checked_sub(1) {
                Some(below) => match times.floor(below, |e| e.timestamp)? {
                    Some(t) => offsets
                        .floor(t.relative_offset, |e| e.relative_offset)?
                        .map_or(0, |e| e.position as u64),
                    None => 0,
                },
                None => 0,
            };
            if let Some((offset, timestamp)) =
                view.find_timestamp(position, timestamp, log_start)?
            {
                return Ok(Some(TimestampLookup { offset, timestamp }));
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp (the earliest such offset), or `None` if empty.
    pub fn max_timestamp(&self) -> crate::Result<Option<TimestampLookup>> {
        self.check_status(false)?;
        let (log_start, candidates) = {
            let state = lock(&self.state);
            let log_start = state.log_start_offset;
            let candidates: Vec<_> = state
                .segments
                .values()
                .filter(|s| s.next_offset() > log_start)
                .filter_map(|s| {
                    s.max_timestamp()
                        .map(|max| (s.view(), max, s.disk_indexes().0))
                })
                .collect();
            (log_start, candidates)
        };
        // (timestamp, offset, candidate index, offset is already the record's)
        let mut best: Option<(i64, i64, usize, bool)> = None;
        for (i, (view, (ts, offset), _)) in candidates.iter().enumerate() {
            let candidate = if view.base_offset < log_start {
                // DeleteRecords cut into this segment: its recorded maximum may be gone.
                match view.scan_max_timestamp(log_start)? {
                    Some((ts, offset)) => (ts, offset, true),
                    None => continue,
                }
            } else {
                (*ts, *offset, false)
            };
            if best.is_none_or(|(best_ts, ..)| candidate.0 > best_ts) {
                best = Some((candidate.0, candidate.1, i, candidate.2));
            }
        }
        let Some((timestamp, offset, i, exact)) = best else {
            return Ok(None);
        };
        if exact {
            return Ok(Some(TimestampLookup { offset, timestamp }));
        }
        let (view, _, offsets) = &candidates[i];
        let position = offsets
            .floor(relative_clamped(offset, view.base_offset), |e| {
                e.relative_offset
            })?
            .map_or(0, |e| e.position as u64);
        // The batch's max timestamp is its records' max (append enforces it), so a record
        // carries it; the batch's last offset is the fallback should old data disagree.
        let record = view.find_record_with_timestamp(position, offset, timestamp, log_start)?;
        Ok(Some(TimestampLookup {
            offset: record.unwrap_or(offset),
            timestamp,
        }))
    }

    /// Advances the log start offset to `offset` (DeleteRecords); `-1` means the high
    /// watermark. Segments wholly below it are deleted. Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> crate::Result<i64> {
        self.check_status(true)?;
        let (new_start, removed) = {
            let mut state = lock(&self.state);
            let target = if offset == -1 {
                state.log_end_offset
            } else {
                offset
            };
            if target < 0 || target > state.log_end_offset {
                return Err(LogError::OffsetOutOfRange {
                    requested: offset,
                    log_start_offset: state.log_start_offset,
                    log_end_offset: state.log_end_offset,
                });
            }
            if target <= state.log_start_offset {
                return Ok(state.log_start_offset);
            }
            let removed = self.advance_log_start(&mut state, target)?;
            (target, removed)
        };
        for segment in removed {
            segment.delete_files();
        }
        Ok(new_start)
    }

    /// Persists then applies a new log start offset; returns the segments now wholly
    /// below it (already out of the map) for the caller to delete after unlocking.
    fn advance_log_start(&self, state: &mut State, new_start: i64) -> crate::Result<Vec<Segment>> {
        // Checkpoint first: a crash after it can only leave files the next open deletes,
        // never bring deleted records back.
        fsutil::write_checkpoint(&self.dir.join(LOG_START_CHECKPOINT), new_start)?;
        state.log_start_offset = new_start;
        self.log_start.store(new_start, Ordering::SeqCst);
        let active_base = state.active().base_offset;
        let below: Vec<i64> = state
            .segments
            .iter()
            .filter(|(base, s)| **base != active_base && s.next_offset() <= new_start)
            .map(|(base, _)| *base)
            .collect();
        Ok(below
            .into_iter()
            .filter_map(|base| state.segments.remove(&base))
            .collect())
    }

    /// Deletes whole sealed segments past `retention.ms` / `retention.bytes` (when the
    /// cleanup policy includes delete). Returns how many.
    pub(crate) fn enforce_retention(&self) -> crate::Result<usize> {
        if self.status() != Status::Open {
            return Ok(0);
        }
        let config = self.config();
        if !config.cleanup_delete {
            return Ok(0);
        }
        let now_ms = self.clock.now_ms();
        let removed = {
            let mut state = lock(&self.state);
            let active_base = state.active().base_offset;
            let total_bytes: u64 = state.segments.values().map(Segment::size_bytes).sum();
            let sealed: Vec<(i64, u64, i64)> = state
                .segments
                .values()
                .filter(|s| s.base_offset != active_base)
                .map(|s| (s.base_offset, s.size_bytes(), s.retention_timestamp_ms()))
                .collect();
            let mut doomed = 0usize;
            if config.retention_ms >= 0 {
                doomed = sealed
                    .iter()
                    .take_while(|(_, _, ts)| now_ms.saturating_sub(*ts) > config.retention_ms)
                    .count();
            }
            if config.retention_bytes >= 0 {
                // Kafka's rule: drop the oldest segment while what is left still holds at
                // least retention.bytes.
                let kept_bytes = total_bytes - sealed[..doomed].iter().map(|s| s.1).sum::<u64>();
                let mut excess_bytes = kept_bytes as i64 - config.retention_bytes;
                for (_, size, _) in &sealed[doomed..] {
                    if excess_bytes - (*size as i64) < 0 {
                        break;
                    }
                    excess_bytes -= *size as i64;
                    doomed += 1;
                }
            }
            if doomed == 0 {
                return Ok(0);
            }
            let first_kept = sealed.get(doomed).map_or(active_base, |s| s.0);
            let new_start = first_kept.max(state.log_start_offset);
            self.advance_log_start(&mut state, new_start)?
        };
        let count = removed.len();
        for segment in removed {
            segment.delete_files();
        }
        if count > 0 {
            tracing::info!(topic = %self.topic, partition = self.partition, count, "deleted segments past retention");
        }
        Ok(count)
    }

    /// A receiver that changes whenever the log end offset moves (for long-poll fetches).
    pub fn watch_end(&self) -> tokio::sync::watch::Receiver<i64> {
        self.end_tx.subscribe()
    }

    /// Bytes on disk in this partition.
    pub fn size_bytes(&self) -> u64 {
        lock(&self.state)
            .segments
            .values()
            .map(Segment::size_bytes)
            .sum()
    }

    /// The effective config.
    pub(crate) fn config(&self) -> Arc<TopicConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the config (AlterConfigs).
    pub(crate) fn set_config(&self, config: Arc<TopicConfig>) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    /// Stops writes (manager close), then waits for an append in flight to finish.
    pub(crate) fn close(&self) {
        let _ = self.status.compare_exchange(
            Status::Open as u8,
            Status::Closed as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        drop(lock(&self.state));
    }

    /// The topic is being deleted: refuse everything from now on.
    pub(crate) fn mark_deleted(&self) {
        self.status.store(Status::Deleted as u8, Ordering::SeqCst);
        drop(lock(&self.flush_lock));
        drop(lock(&self.state));
        // A cleaner checkpoint being written finishes before the directory moves.
        drop(lock(&self.cleaner));
    }

    /// Undoes [`PartitionLog::mark_deleted`] when the deletion could not go ahead.
    pub(crate) fn reopen(&self) {
        let _ = self.status.compare_exchange(
            Status::Deleted as u8,
            Status::Open as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    fn fail(&self, what: &str, error: &io::Error) {
        tracing::error!(
            topic = %self.topic,
            partition = self.partition,
            error = %error,
            "{what} failed; the partition refuses writes until restart"
        );
        self.status.store(Status::Failed as u8, Ordering::SeqCst);
    }

    fn status(&self) -> Status {
        match self.status.load(Ordering::SeqCst) {
            0 => Status::Open,
            1 => Status::Closed,
            2 => Status::Deleted,
            _ => Status::Failed,
        }
    }

    fn failed_error(&self) -> LogError {
        LogError::Io(io::Error::other(format!(
            "partition {}-{} stopped after an I/O failure",
            self.topic, self.partition
        )))
    }

    fn check_status(&self, write: bool) -> crate::Result<()> {
        match self.status() {
            Status::Open => Ok(()),
            Status::Deleted => Err(LogError::UnknownTopic(self.topic.clone())),
            Status::Closed if write => Err(LogError::Io(io::Error::other(format!(
                "partition {}-{} is closed",
                self.topic, self.partition
            )))),
            Status::Failed if write => Err(self.failed_error()),
            Status::Closed | Status::Failed => Ok(()),
        }
    }

    /// fsync calls made so far.
    #[cfg(test)]
    pub(crate) fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Makes the next write to the active segment fail halfway.
    #[cfg(test)]
    pub(crate) fn fail_next_write(&self) {
        lock(&self.state).active_mut().fail_next_write = true;
    }

    /// `(base offset, offset-index entries, time-index entries)` of every segment.
    #[cfg(test)]
    pub(crate) fn segment_summary(&self) -> Vec<(i64, usize, usize)> {
        lock(&self.state)
            .segments
            .values()
            .map(|s| {
                (
                    s.base_offset,
                    s.offset_index_entries(),
                    s.time_index_entries(),
                )
            })
            .collect()
    }
}

/// The producer snapshot and the offset it was taken at; `None` (with a warning) when it
/// is missing, damaged or unreadable.
fn read_producer_snapshot(
    dir: &std::path::Path,
    topic: &str,
    partition: i32,
) -> Option<(ProducerState, i64)> {
    let path = dir.join(producers::SNAPSHOT_FILE);
    match fsutil::read_small(&path, crate::limits::PRODUCER_SNAPSHOT_BYTES_MAX) {
        Ok(Some(bytes)) => match ProducerState::from_snapshot(&bytes) {
            Ok(loaded) => Some(loaded),
            Err(e) => {
                tracing::warn!(topic, partition, error = %e, "ignoring damaged producer snapshot");
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(topic, partition, error = %e, "ignoring unreadable producer snapshot");
            None
        }
    }
}

/// The producer state at `log_end` in a pass of its own: the snapshot, then every batch
/// written after it. A missing or unusable snapshot (or one from past a log end lost in
/// a crash) means a replay of the whole log.
fn load_producer_state(
    dir: &std::path::Path,
    segments: &BTreeMap<i64, Segment>,
    log_start: i64,
    log_end: i64,
    topic: &str,
    partition: i32,
) -> crate::Result<ProducerState> {
    let loaded = match read_producer_snapshot(dir, topic, partition) {
        Some((_, offset)) if offset > log_end => {
            tracing::warn!(
                topic,
                partition,
                offset,
                log_end,
                "producer snapshot is past the log end; rebuilding"
            );
            None
        }
        loaded => loaded,
    };
    let (mut state, from) = loaded.unwrap_or_else(|| (ProducerState::default(), log_start));
    for segment in segments.values().filter(|s| s.next_offset() > from) {
        segment.view().for_each_batch(|bytes, header| {
            if header.last_offset() >= from && header.producer_id >= 0 {
                let control =
                    batch::control_record(bytes, header)?.map(|c| (c.commit, c.coordinator_epoch));
                state.replay(header, control);
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })?;
    }
    Ok(state)
}

mod clean;
pub use clean::CleanStats;

#[cfg(test)]
mod producer_tests;
#[cfg(test)]
mod slice_tests;
#[cfg(test)]
mod tests;
