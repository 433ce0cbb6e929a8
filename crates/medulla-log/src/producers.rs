//! The producer state of one partition, as Kafka's `ProducerStateManager` keeps it:
//! per producer id its epoch and its last [`BATCHES_KEPT`] batches (sequence checks and
//! de-duplication of retried batches), the transaction it has open here (the last
//! stable offset), and the list of aborted transactions (`read_committed` fetches).
//!
//! Pure bookkeeping: the partition calls [`ProducerState::check`] under its lock before
//! writing and [`ProducerState::apply`] after the write succeeded, so a refused or
//! failed append changes nothing. The state is snapshotted to one file
//! ([`SNAPSHOT_FILE`]) when a segment rolls and on a clean close; on open the partition
//! loads the snapshot and replays the batches written after it (the active segment),
//! so de-duplication and open transactions survive a crash.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::LogError;
use crate::batch::BatchHeader;

/// Batches remembered per producer: Kafka's `NUM_BATCHES_TO_RETAIN`, which is also the
/// most in-flight requests an idempotent producer may have.
pub const BATCHES_KEPT: usize = 5;

/// The snapshot's file name in the partition directory.
pub(crate) const SNAPSHOT_FILE: &str = "producer-state.json";

/// Who appends: clients get sequence checks and de-duplication; the broker's own
/// coordinators (transactional offset commits) write without sequences, as Kafka's
/// `AppendOrigin.COORDINATOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer's Produce request.
    Client,
    /// The broker itself.
    Coordinator,
}

/// A transaction marker to write (the transaction coordinator's `WriteTxnMarkers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// The producer whose transaction ends.
    pub producer_id: i64,
    /// Its epoch (a fencing abort carries the bumped epoch).
    pub producer_epoch: i16,
    /// Commit (true) or abort.
    pub commit: bool,
    /// The coordinator's epoch (always 0 on one node).
    pub coordinator_epoch: i32,
}

/// An aborted transaction on this partition: its records lie in
/// `first_offset..=last_offset` (`last_offset` is the abort marker's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    /// Producer id.
    pub producer_id: i64,
    /// First offset of the transaction on this partition.
    pub first_offset: i64,
    /// Offset of the abort marker.
    pub last_offset: i64,
}

/// One producer as DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Producer id.
    pub producer_id: i64,
    /// Current epoch.
    pub producer_epoch: i16,
    /// Sequence of the last record written, -1 if none.
    pub last_sequence: i32,
    /// Max timestamp of its last batch or marker.
    pub last_timestamp: i64,
    /// Epoch of the coordinator that wrote its last marker.
    pub coordinator_epoch: i32,
    /// First offset of its open transaction here, -1 if none.
    pub current_txn_start_offset: i64,
}

/// One remembered batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    pub coordinator_epoch: i32,
    pub txn_first_offset: Option<i64>,
    /// Max timestamp of the last batch or marker: `producer.id.expiration.ms` counts
    /// from it, as in Kafka.
    pub last_timestamp: i64,
}

impl ProducerEntry {
    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn set_epoch(&mut self, epoch: i16) {
        if self.epoch != epoch {
            // A new epoch starts its sequences from 0 again.
            self.batches.clear();
            self.epoch = epoch;
        }
    }
}

/// What [`ProducerState::check`] decided about an append.
#[derive(Debug)]
pub(crate) enum Check {
    /// Write it; then [`ProducerState::apply`] these updates.
    Append(Updates),
    /// A retry of a batch already written: answer with its offsets, write nothing.
    Duplicate(BatchMeta),
}

/// Staged updates of one append (entries as they will be after it).
#[derive(Debug, Default)]
pub(crate) struct Updates {
    entries: HashMap<i64, ProducerEntry>,
    /// Transactions completed by markers: (producer, first offset, marker offset, commit).
    completed: Vec<(i64, i64, i64, bool)>,
}

/// The state itself.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions by first offset (the smallest bounds the last stable offset).
    ongoing: BTreeMap<i64, i64>,
    /// Aborted transactions in marker order (ascending `last_offset`).
    aborted: Vec<AbortedTxn>,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    /// Every batch below this offset is reflected.
    offset: i64,
    producers: Vec<(i64, ProducerEntry)>,
    aborted: Vec<AbortedTxn>,
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap to 0 after i32::MAX.
fn last_sequence(first_seq: i32, last_offset_delta: i32) -> i32 {
    if first_seq > i32::MAX - last_offset_delta {
        last_offset_delta - (i32::MAX - first_seq) - 1
    } else {
        first_seq + last_offset_delta
    }
}

/// Whether `offset`, written by `producer_id` in a transaction, lies in one of `aborted`
/// (ascending by `last_offset`, as [`ProducerState`] keeps them).
pub(crate) fn aborted_contains(aborted: &[AbortedTxn], producer_id: i64, offset: i64) -> bool {
    let from = aborted.partition_point(|a| a.last_offset < offset);
    aborted[from..]
        .iter()
        .any(|a| a.producer_id == producer_id && a.first_offset <= offset)
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq == last_seq.wrapping_add(1) || (next_seq == 0 && last_seq == i32::MAX)
}

/// Key and value of a control record: `(version: i16, type: i16)` and
/// `(version: i16, coordinator epoch: i32)`.
pub(crate) fn marker_key(commit: bool) -> [u8; 4] {
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&(commit as i16).to_be_bytes());
    key
}

pub(crate) fn marker_value(coordinator_epoch: i32) -> [u8; 6] {
    let mut value = [0u8; 6];
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    value
}

impl ProducerState {
    /// Checks the batches of one append, already given their offsets, against the state
    /// (and each other); nothing changes until [`ProducerState::apply`].
    pub fn check(&self, batches: &[BatchHeader], origin: AppendOrigin) -> crate::Result<Check> {
        let mut updates = Updates::default();
        for header in batches {
            if header.producer_id < 0 {
                continue;
            }
            let pid = header.producer_id;
            let current = updates
                .entries
                .get(&pid)
                .or_else(|| self.producers.get(&pid));
            if origin == AppendOrigin::Client
                && let Some(entry) = current
                && entry.epoch == header.producer_epoch
                && let Some(dup) = entry.batches.iter().find(|b| {
                    b.first_seq == header.base_sequence
                        && b.last_seq
                            == last_sequence(header.base_sequence, header.last_offset_delta)
                })
            {
                return Ok(Check::Duplicate(*dup));
            }
            let mut entry = match current {
                Some(entry) => {
                    if header.producer_epoch < entry.epoch {
                        return Err(LogError::InvalidProducerEpoch(format!(
                            "epoch {} of producer {pid} is older than its current epoch {}",
                            header.producer_epoch, entry.epoch
                        )));
                    }
                    entry.clone()
                }
                None => ProducerEntry {
                    epoch: header.producer_epoch,
                    ..ProducerEntry::default()
                },
            };
            if origin == AppendOrigin::Client && current.is_some() {
                let expected = if header.producer_epoch != entry.epoch {
                    Some(0)
                } else {
                    match entry.last_seq() {
                        Some(last) if !in_sequence(last, header.base_sequence) => {
                            Some(last.wrapping_add(1).max(0))
                        }
                        Some(_) => None,
                        None if header.base_sequence != 0 => Some(0),
                        None => None,
                    }
                };
                if let Some(expected) = expected
                    && header.base_sequence != expected
                {
                    return Err(LogError::OutOfOrderSequence(format!(
                        "producer {pid} epoch {} sent sequence {} where {expected} was expected",
                        header.producer_epoch, header.base_sequence
                    )));
                }
            }
            if header.is_transactional() {
                if entry.txn_first_offset.is_none() {
                    entry.txn_first_offset = Some(header.base_offset);
                }
            } else if let Some(first) = entry.txn_first_offset {
                return Err(LogError::InvalidTxnState(format!(
                    "producer {pid} wrote a non-transactional batch while its transaction \
                     from offset {first} is open"
                )));
            }
            entry.set_epoch(header.producer_epoch);
            if header.base_sequence >= 0 {
                entry.batches.push_back(BatchMeta {
                    first_seq: header.base_sequence,
                    last_seq: last_sequence(header.base_sequence, header.last_offset_delta),
                    first_offset: header.base_offset,
                    last_offset: header.last_offset(),
                    timestamp: header.max_timestamp,
                });
                while entry.batches.len() > BATCHES_KEPT {
                    entry.batches.pop_front();
                }
            }
            entry.last_timestamp = header.max_timestamp;
            updates.entries.insert(pid, entry);
        }
        Ok(Check::Append(updates))
    }

    /// Checks a marker to be written at `offset` at time `now_ms`.
    pub fn check_marker(
        &self,
        marker: &TxnMarker,
        offset: i64,
        now_ms: i64,
    ) -> crate::Result<Updates> {
        let pid = marker.producer_id;
        let mut entry = match self.producers.get(&pid) {
            Some(entry) => {
                if marker.producer_epoch < entry.epoch {
                    return Err(LogError::InvalidProducerEpoch(format!(
                        "marker epoch {} of producer {pid} is older than its current epoch {}",
                        marker.producer_epoch, entry.epoch
                    )));
                }
                entry.clone()
            }
            None => ProducerEntry {
                epoch: marker.producer_epoch,
                ..ProducerEntry::default()
            },
        };
        let mut updates = Updates::default();
        if let Some(first) = entry.txn_first_offset.take() {
            updates.completed.push((pid, first, offset, marker.commit));
        }
        entry.set_epoch(marker.producer_epoch);
        entry.coordinator_epoch = marker.coordinator_epoch;
        entry.last_timestamp = now_ms;
        updates.entries.insert(pid, entry);
        Ok(updates)
    }

    /// Applies what a successful append changed.
    pub fn apply(&mut self, updates: Updates) {
        for (pid, entry) in updates.entries {
            let was = self.producers.get(&pid).and_then(|e| e.txn_first_offset);
            if was != entry.txn_first_offset {
                if let Some(first) = was {
                    self.ongoing.remove(&first);
                }
                if let Some(first) = entry.txn_first_offset {
                    self.ongoing.insert(first, pid);
                }
            }
            self.producers.insert(pid, entry);
        }
        for (pid, first, last, commit) in updates.completed {
            self.ongoing.remove(&first);
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id: pid,
                    first_offset: first,
                    last_offset: last,
                });
            }
        }
    }

    /// Replays one batch read back from the log (recovery): no checks, as Kafka's
    /// loading from the log.
    pub fn replay(&mut self, header: &BatchHeader, control: Option<(bool, i32)>) {
        if header.producer_id < 0 {
            return;
        }
        if let Some((commit, coordinator_epoch)) = control {
            let marker = TxnMarker {
                producer_id: header.producer_id,
                producer_epoch: header.producer_epoch,
                commit,
                coordinator_epoch,
            };
            // Markers read back passed the epoch check when written; a later epoch in
            // the state would only mean a corrupt history, where skipping is all we can do.
            if let Ok(updates) =
                self.check_marker(&marker, header.base_offset, header.max_timestamp)
            {
                self.apply(updates);
            }
        } else if let Ok(Check::Append(updates)) =
            self.check(std::slice::from_ref(header), AppendOrigin::Coordinator)
        {
            self.apply(updates);
        }
    }

    /// The first offset of the oldest open transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Whether `offset`, written by `producer_id` in a transaction, was aborted.
    #[cfg(test)]
    pub fn is_aborted(&self, producer_id: i64, offset: i64) -> bool {
        aborted_contains(&self.aborted, producer_id, offset)
    }

    /// Aborted transactions with records in `from..upper`.
    pub fn aborted_between(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted[start..]
            .iter()
            .filter(|a| a.first_offset < upper)
            .copied()
            .collect()
    }

    /// Every producer, for DescribeProducers.
    pub fn producers(&self) -> Vec<ProducerInfo> {
        let mut out: Vec<ProducerInfo> = self
            .producers
            .iter()
            .map(|(pid, e)| ProducerInfo {
                producer_id: *pid,
                producer_epoch: e.epoch,
                last_sequence: e.last_seq().unwrap_or(-1),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// Forgets producers idle for `expiration_ms` with no open transaction
    /// (`producer.id.expiration.ms`); returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// Drops aborted transactions wholly below the log start offset.
    pub fn truncate_below(&mut self, log_start_offset: i64) {
        let below = self
            .aborted
            .partition_point(|a| a.last_offset < log_start_offset);
        self.aborted.drain(..below);
    }

    /// The snapshot file's contents, for the state of every batch below `offset`.
    pub fn to_snapshot(&self, offset: i64) -> Vec<u8> {
        let mut producers: Vec<(i64, ProducerEntry)> = self
            .producers
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        producers.sort_by_key(|(k, _)| *k);
        let snapshot = Snapshot {
            offset,
            producers,
            aborted: self.aborted.clone(),
        };
        // Serializing plain data to a Vec cannot fail.
        serde_json::to_vec(&snapshot).unwrap_or_default()
    }

    /// Loads a snapshot: the state and the offset replay starts from.
    pub fn from_snapshot(bytes: &[u8]) -> Result<(ProducerState, i64), String> {
        let snapshot: Snapshot = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let mut state = ProducerState {
            aborted: snapshot.aborted,
            ..ProducerState::default()
        };
        if state
            .aborted
            .windows(2)
            .any(|w| w[0].last_offset >= w[1].last_offset)
        {
            return Err("aborted transactions out of order".into());
        }
        for (pid, entry) in snapshot.producers {
            if let Some(first) = entry.txn_first_offset {
                state.ongoing.insert(first, pid);
            }
            state.producers.insert(pid, entry);
        }
        Ok((state, snapshot.offset))
    }
}

#[cfg(test)]
mod tests;
