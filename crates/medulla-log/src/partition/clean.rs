//! One cleaning pass over a partition (log compaction) and the cleaner's checkpoint.
//!
//! A pass, as Kafka's `Cleaner.clean`:
//!
//! 1. Under the partition's lock, snapshot the sealed segments (read handles, sizes,
//!    timestamps). The active segment is never cleaned.
//! 2. Without the lock, build the key map over the dirty section: from the first dirty
//!    offset (the checkpoint) up to the first uncleanable offset — the active segment's
//!    base, the first segment holding a record younger than `min.compaction.lag.ms`, or
//!    the segment holding the last stable offset (an open transaction may still abort,
//!    so its records must not displace older ones). Records of aborted transactions
//!    enter no map and are dropped from the rewrite, as in Kafka: otherwise an aborted
//!    record could displace the committed value of its key. A full map stops the
//!    section where it is ("map end").
//! 3. Without the lock, rewrite the sealed segments below the map end, from the log
//!    start, in groups of consecutive segments of at most `segment.bytes` together
//!    (small cleaned segments merge): each group into `<base>.*.cleaned` files, synced.
//! 4. With the lock, swap each group in: check its segments are still the ones read
//!    (retention or DeleteRecords may have removed them: then the pass stops), rename
//!    the files to `.swap` (the commit point), unlink the replaced segments in
//!    ascending order, rename the `.swap` files to the live names, fsync the directory.
//!    A group left empty is just unlinked, in ascending order.
//! 5. Write the checkpoint (the map end) atomically.
//!
//! Readers that already hold a replaced segment's file keep reading its old inode; a
//! read of an offset the cleaning removed lands in a gap and gets the next batch.
//! Crash safety: `segment::recover_swaps` completes or discards whatever a crash left
//! (every intermediate state leaves a cleaned prefix and an original suffix of the log,
//! never a duplicate or missing offset), and the checkpoint only moves after the pass.

use std::ops::ControlFlow;

use super::*;
use crate::cleaner::PassContext;
use crate::cleaner::filter::{Filtered, Rules, filter_batch};
use crate::segment::{CLEANED_SUFFIX, CleanedWriter, SWAP_SUFFIX, SegmentView};

/// The cleaner's checkpoint: the first dirty offset (Kafka keeps one such file per log
/// directory, `cleaner-offset-checkpoint`; ours is per partition, like our others).
pub(crate) const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// What the cleaner remembers about a partition between passes.
#[derive(Debug, Default)]
pub(crate) struct CleanerState {
    /// Offsets below this were covered by an earlier pass's key map.
    pub first_dirty_offset: Option<i64>,
    /// The earliest delete horizon of a batch that still holds tombstones, as the last
    /// pass saw it. When it passes, the partition is cleaned even without new dirty
    /// records, so tombstones go on time (Kafka waits for the next dirty pass). Not
    /// persisted: after a restart the first dirty pass learns it again.
    pub delete_horizon_ms: Option<i64>,
}

/// Why a partition is worth cleaning now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Cleanable {
    /// Dirty bytes over cleanable bytes.
    pub dirty_ratio: f64,
    /// `max.compaction.lag.ms` or a delete horizon passed: clean whatever the ratio.
    pub forced: bool,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Bytes of the segments rewritten, before.
    pub bytes_before: u64,
    /// Their bytes after.
    pub bytes_after: u64,
    /// Records removed.
    pub records_dropped: u64,
    /// Segments rewritten.
    pub segments_before: usize,
    /// Segments they became.
    pub segments_after: usize,
    /// The checkpoint written: where the next pass's dirty section starts.
    pub first_dirty_offset: i64,
}

/// A sealed segment as the pass saw it.
struct Sealed {
    view: SegmentView,
    /// Base offset of the following segment: this one's offsets lie below it.
    next_base: i64,
    max_timestamp: Option<i64>,
    first_batch_timestamp: Option<i64>,
}

impl Sealed {
    fn base(&self) -> i64 {
        self.view.base_offset
    }
}

/// The cleanable range of a partition at one moment.
struct Plan {
    sealed: Vec<Sealed>,
    first_dirty: i64,
    first_uncleanable: i64,
    cleanable: Option<Cleanable>,
    /// Aborted transactions with records below the first uncleanable offset.
    aborted: Vec<AbortedTxn>,
}

impl Plan {
    /// Whether a data batch belongs to an aborted transaction.
    fn aborted(&self, header: &BatchHeader) -> bool {
        header.is_transactional()
            && !header.is_control()
            && crate::producers::aborted_contains(
                &self.aborted,
                header.producer_id,
                header.base_offset,
            )
    }
}

/// Clears the partition's "being cleaned" flag when dropped.
pub(crate) struct CleaningClaim<'a>(&'a AtomicBool);

impl Drop for CleaningClaim<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// How a group's swap went.
enum Swap {
    Done,
    /// The segments changed under the pass (retention, DeleteRecords, deletion).
    Stale,
}

impl PartitionLog {
    /// Marks the partition as being cleaned; `None` if a pass is already running.
    pub(crate) fn claim_cleaning(&self) -> Option<CleaningClaim<'_>> {
        self.cleaning
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| CleaningClaim(&self.cleaning))
    }

    /// Whether (and how urgently) the partition should be cleaned now.
    pub(crate) fn cleanable(&self) -> Option<Cleanable> {
        let config = self.config();
        if self.status() != Status::Open || !config.cleanup_compact {
            return None;
        }
        self.plan(&config, self.clock.now_ms()).cleanable
    }

    /// The cleaner checkpoint: offsets below it have been through a key map.
    pub fn cleaner_checkpoint(&self) -> Option<i64> {
        lock(&self.cleaner).first_dirty_offset
    }

    fn plan(&self, config: &TopicConfig, now_ms: i64) -> Plan {
        let (log_start, log_end, sealed, aborted, first_unstable) = {
            let state = lock(&self.state);
            let bases: Vec<i64> = state.segments.keys().copied().collect();
            let sealed: Vec<Sealed> = state
                .segments
                .values()
                .zip(bases.iter().skip(1))
                .map(|(s, &next_base)| Sealed {
                    view: s.view(),
                    next_base,
                    max_timestamp: s.max_timestamp().map(|(ts, _)| ts),
                    first_batch_timestamp: s.first_batch_timestamp(),
                })
                .collect();
            let active_base = state.active().base_offset;
            (
                state.log_start_offset,
                state.log_end_offset,
                sealed,
                state
                    .producers
                    .aborted_between(state.log_start_offset, active_base),
                state.producers.first_unstable_offset(),
            )
        };
        let (first_dirty_checkpoint, horizon) = {
            let cleaner = lock(&self.cleaner);
            (cleaner.first_dirty_offset, cleaner.delete_horizon_ms)
        };
        // A checkpoint outside the log (DeleteRecords, retention, a lost tail) restarts
        // from the log start, as Kafka does.
        let first_dirty = first_dirty_checkpoint
            .filter(|o| (log_start..=log_end).contains(o))
            .unwrap_or(log_start);
        let active_base = sealed.last().map_or(log_start, |s| s.next_base);
        let dirty = || sealed.iter().filter(move |s| s.next_base > first_dirty);
        let lag_start = now_ms.saturating_sub(config.min_compaction_lag_ms.max(0));
        let first_uncleanable = dirty()
            .find(|s| {
                config.min_compaction_lag_ms > 0 && s.max_timestamp.is_some_and(|ts| ts > lag_start)
            })
            .map_or(active_base, Sealed::base);
        // Nothing at or past the last stable offset: its segment and later stay dirty.
        let first_uncleanable = first_unstable
            .and_then(|unstable| sealed.iter().find(|s| s.next_base > unstable))
            .map_or(first_uncleanable, |s| s.base().min(first_uncleanable));
        let clean_bytes: u64 = sealed
            .iter()
            .filter(|s| s.next_base <= first_dirty)
            .map(|s| s.view.size_bytes)
            .sum();
        let dirty_bytes: u64 = dirty()
            .filter(|s| s.base() < first_uncleanable)
            .map(|s| s.view.size_bytes)
            .sum();
        let dirty_ratio = if dirty_bytes == 0 {
            0.0
        } else {
            dirty_bytes as f64 / (clean_bytes + dirty_bytes) as f64
        };
        // Kafka's max.compaction.lag.ms: the oldest dirty record (by its segment's first
        // batch) has waited too long.
        let lag_due = dirty()
            .filter_map(|s| s.first_batch_timestamp.filter(|ts| *ts > 0))
            .min()
            .is_some_and(|oldest| {
                oldest < now_ms.saturating_sub(config.max_compaction_lag_ms.max(0))
            });
        let horizon_due = horizon.is_some_and(|h| now_ms >= h) && !sealed.is_empty();
        let cleanable =
            if dirty_bytes > 0 && (lag_due || dirty_ratio > config.min_cleanable_dirty_ratio) {
                Some(Cleanable {
                    dirty_ratio,
                    forced: lag_due,
                })
            } else if horizon_due {
                Some(Cleanable {
                    dirty_ratio,
                    forced: true,
                })
            } else {
                None
            };
        Plan {
            sealed,
            first_dirty,
            first_uncleanable,
            cleanable,
            aborted,
        }
    }

    /// Runs one pass if the partition is eligible. `Ok(None)`: not eligible, or the pass
    /// was abandoned (stop requested, segments changed under it); nothing changed then
    /// except groups already swapped in, which are complete.
    pub(crate) fn clean(&self, context: &mut PassContext<'_>) -> crate::Result<Option<CleanStats>> {
        let config = self.config();
        if self.status() != Status::Open || !config.cleanup_compact {
            return Ok(None);
        }
        let now_ms = self.clock.now_ms();
        let plan = self.plan(&config, now_ms);
        if plan.cleanable.is_none() {
            return Ok(None);
        }
        let Some(map_end) = self.build_map(&plan, context)? else {
            return Ok(None);
        };
        let rules = Rules {
            now_ms,
            delete_retention_ms: config.delete_retention_ms,
            covered_end: map_end,
        };
        let mut stats = CleanStats {
            first_dirty_offset: map_end,
            ..CleanStats::default()
        };
        let mut horizon: Option<i64> = None;
        let rewrite: Vec<&Sealed> = plan.sealed.iter().filter(|s| s.base() < map_end).collect();
        for group in groups(&rewrite, config.segment_bytes) {
            let cleaned = self.clean_group(
                &plan,
                &group,
                &rules,
                &config,
                context,
                &mut stats,
                &mut horizon,
            )?;
            if !cleaned {
                return Ok(None);
            }
        }
        // Under the cleaner's own lock, not the partition's: appends go on meanwhile, and
        // `mark_deleted` waits for it, so the directory is still this partition's.
        let mut cleaner = lock(&self.cleaner);
        if self.status() != Status::Open {
            return Ok(None);
        }
        fsutil::write_checkpoint(&self.dir.join(CLEANER_CHECKPOINT), map_end)?;
        cleaner.first_dirty_offset = Some(map_end);
        cleaner.delete_horizon_ms = horizon;
        Ok(Some(stats))
    }

    /// Fills the map from the dirty section; returns the map end (exclusive), or `None`
    /// if asked to stop.
    fn build_map(&self, plan: &Plan, context: &mut PassContext<'_>) -> crate::Result<Option<i64>> {
        context.map.clear();
        let first_dirty = plan.first_dirty;
        let mut map_end = first_dirty;
        let dirty = plan
            .sealed
            .iter()
            .filter(|s| s.next_base > first_dirty && s.base() < plan.first_uncleanable);
        for segment in dirty {
            let mut full = false;
            let mut stopped = false;
            segment.view.for_each_batch(|bytes, header| {
                if context.stop.load(Ordering::Relaxed) {
                    stopped = true;
                    return Ok(ControlFlow::Break(()));
                }
                context.throttler.io(bytes.len() as u64);
                if header.last_offset() < first_dirty {
                    return Ok(ControlFlow::Continue(()));
                }
                if !header.is_control() && !plan.aborted(header) {
                    batch::for_each_raw_record(bytes, header, batch::Deltas::Increasing, |r| {
                        let offset = header.base_offset + i64::from(r.offset_delta);
                        if offset < first_dirty {
                            return ControlFlow::Continue(());
                        }
                        if let Some(key) = r.key
                            && !context.map.put(key, offset)
                        {
                            full = true;
                            return ControlFlow::Break(());
                        }
                        map_end = offset + 1;
                        ControlFlow::Continue(())
                    })?;
                }
                if full {
                    return Ok(ControlFlow::Break(()));
                }
                map_end = header.last_offset() + 1;
                Ok(ControlFlow::Continue(()))
            })?;
            if stopped {
                return Ok(None);
            }
            if full {
                tracing::info!(
                    topic = %self.topic,
                    partition = self.partition,
                    keys = context.map.len(),
                    map_end,
                    "the cleaner's key map is full (log.cleaner.dedupe.buffer.size): cleaning up to where it reaches"
                );
                break;
            }
            map_end = segment.next_base;
        }
        Ok(Some(map_end))
    }

    /// Rewrites one group of segments and swaps the result in. False when the pass
    /// must stop (asked to, or the segments changed under it).
    #[allow(clippy::too_many_arguments)]
    fn clean_group(
        &self,
        plan: &Plan,
        group: &[&Sealed],
        rules: &Rules,
        config: &TopicConfig,
        context: &mut PassContext<'_>,
        stats: &mut CleanStats,
        horizon: &mut Option<i64>,
    ) -> crate::Result<bool> {
        let base = group[0].base();
        let mut writer = CleanedWriter::create(&self.dir, base, config.index_interval_bytes)?;
        // Merging segments is a change even if every record stays.
        let mut changed = group.len() > 1;
        let mut stopped = false;
        let map = &*context.map;
        let mut dropped = 0u64;
        for segment in group {
            let walked = segment.view.for_each_batch(|bytes, header| {
                if context.stop.load(Ordering::Relaxed) {
                    stopped = true;
                    return Ok(ControlFlow::Break(()));
                }
                context.throttler.io(bytes.len() as u64);
                if plan.aborted(header) {
                    dropped += header.records_count.max(0) as u64;
                    changed = true;
                    return Ok(ControlFlow::Continue(()));
                }
                let result = filter_batch(bytes, header, rules, |key, offset| {
                    map.get(key).is_some_and(|latest| offset < latest)
                })?;
                dropped += result.dropped_records as u64;
                if let Some(h) = result.tombstone_horizon_ms {
                    *horizon = Some(horizon.map_or(h, |earliest| earliest.min(h)));
                }
                match result.filtered {
                    Filtered::Unchanged => writer.append(bytes, header)?,
                    Filtered::Rewritten { bytes, header } => {
                        changed = true;
                        context.throttler.io(bytes.len() as u64);
                        writer.append(&bytes, &header)?;
                    }
                    Filtered::Dropped => changed = true,
                }
                Ok(ControlFlow::Continue(()))
            });
            if let Err(e) = walked {
                writer.discard();
                return Err(e);
            }
            if stopped {
                writer.discard();
                return Ok(false);
            }
        }
        let bytes_before: u64 = group.iter().map(|s| s.view.size_bytes).sum();
        stats.bytes_before += bytes_before;
        stats.segments_before += group.len();
        stats.records_dropped += dropped;
        if !changed {
            writer.discard();
            stats.bytes_after += bytes_before;
            stats.segments_after += 1;
            return Ok(true);
        }
        let cleaned = match writer.finish(self.clock.now_ms()) {
            Ok(c) => c,
            Err(e) => {
                segment::remove_temporary_files(&self.dir, base);
                return Err(e.into());
            }
        };
        stats.bytes_after += cleaned.size_bytes();
        let output = if cleaned.size_bytes() == 0 {
            segment::remove_temporary_files(&self.dir, base);
            None
        } else {
            // Keep the newest replaced file's mtime (time retention's fallback).
            if let Some(modified) = group
                .iter()
                .filter_map(|s| s.view.log.metadata().and_then(|m| m.modified()).ok())
                .max()
            {
                cleaned.log_file().set_modified(modified)?;
            }
            stats.segments_after += 1;
            Some(cleaned)
        };
        #[cfg(test)]
        if let Some(point) = lock(&self.crash_at).take() {
            return self.crash_for_test(point, group, output);
        }
        match self.swap(group, output)? {
            Swap::Done => Ok(true),
            Swap::Stale => Ok(false),
        }
    }

    /// Replaces `group` by `output` (or by nothing) in the directory and the map.
    fn swap(&self, group: &[&Sealed], output: Option<Segment>) -> crate::Result<Swap> {
        let base = group[0].base();
        let mut state = lock(&self.state);
        let current = group.iter().all(|s| {
            state
                .segments
                .get(&s.base())
                .is_some_and(|live| Arc::ptr_eq(live.log_file(), &s.view.log))
        });
        if self.status() != Status::Open || !current {
            drop(state);
            segment::remove_temporary_files(&self.dir, base);
            return Ok(Swap::Stale);
        }
        // A replaced segment not yet synced makes the new one count as unsynced too, so
        // flushes keep treating unsynced segments as a suffix of the log.
        let (dirty, index_dirty) = group.iter().fold((false, false), |(d, i), s| {
            let live = &state.segments[&s.base()];
            (d || live.dirty, i || live.index_dirty)
        });
        let Some(output) = output else {
            if state.segments.keys().next() == Some(&base) {
                // The log's first segment goes: persist the log start, so that a restart
                // keeps it below the first surviving record instead of moving it up.
                fsutil::write_checkpoint(
                    &self.dir.join(LOG_START_CHECKPOINT),
                    state.log_start_offset,
                )?;
            }
            // Ascending: a crash part-way leaves an original suffix of the group.
            for s in group {
                if let Some(old) = state.segments.remove(&s.base()) {
                    old.delete_files();
                }
            }
            fsutil::sync_dir(&self.dir)?;
            return Ok(Swap::Done);
        };
        let committed = segment::rename_segment_files(&self.dir, base, CLEANED_SUFFIX, SWAP_SUFFIX)
            .and_then(|()| fsutil::sync_dir(&self.dir));
        if let Err(e) = committed {
            drop(state);
            segment::remove_temporary_files(&self.dir, base);
            return Err(e.into());
        }
        // Committed: from here on, recovery would finish the swap.
        for s in &group[1..] {
            if let Some(old) = state.segments.remove(&s.base()) {
                old.delete_files();
            }
        }
        let renamed = segment::rename_segment_files(&self.dir, base, SWAP_SUFFIX, "")
            .and_then(|()| fsutil::sync_dir(&self.dir));
        let mut segment = output;
        segment.dirty = dirty;
        segment.index_dirty = index_dirty;
        state.segments.insert(base, segment);
        drop(state);
        if let Err(e) = renamed {
            // The open handles serve reads; the directory needs recovery to settle.
            self.fail("cleaner swap", &e);
            return Err(e.into());
        }
        Ok(Swap::Done)
    }
}

/// Consecutive segments of at most `segment_bytes` together (and an offset span the
/// index format can hold), each group to become one cleaned segment.
fn groups<'a>(segments: &[&'a Sealed], segment_bytes: u64) -> Vec<Vec<&'a Sealed>> {
    let mut groups: Vec<Vec<&Sealed>> = Vec::new();
    let mut group_bytes = 0u64;
    for &segment in segments {
        let fits = groups.last().is_some_and(|g| {
            group_bytes + segment.view.size_bytes <= segment_bytes
                && segment.next_base - 1 - g[0].base() <= i32::MAX as i64
        });
        if !fits {
            groups.push(Vec::new());
            group_bytes = 0;
        }
        group_bytes += segment.view.size_bytes;
        if let Some(g) = groups.last_mut() {
            g.push(segment);
        }
    }
    groups
}

/// Where a test stops a pass as a crash would (files left as they are).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrashPoint {
    /// The `.cleaned` files are written and synced; nothing renamed.
    Cleaned,
    /// The indexes are renamed to `.swap`, the log is not (the commit did not happen).
    IndexesSwapped,
    /// Every file is `.swap` (committed); no old segment removed.
    Swapped,
    /// Committed and the other old segments removed; the `.swap` files not renamed.
    OldRemoved,
    /// The indexes are renamed to their live names, the log is still `.swap`.
    IndexesLive,
}

#[cfg(test)]
impl PartitionLog {
    /// Makes the next group's swap stop at `point`, leaving the files as a crash would.
    pub(crate) fn crash_cleaner_at(&self, point: CrashPoint) {
        *lock(&self.crash_at) = Some(point);
    }

    fn crash_for_test(
        &self,
        point: CrashPoint,
        group: &[&Sealed],
        output: Option<Segment>,
    ) -> crate::Result<bool> {
        let base = group[0].base();
        let output = output.expect("crash tests clean groups that keep records");
        let dir = &self.dir;
        let [index, time_index, log] = segment::segment_paths(dir, base, CLEANED_SUFFIX);
        let [swap_index, swap_time_index, swap_log] =
            segment::segment_paths(dir, base, SWAP_SUFFIX);
        let [live_index, live_time_index, _] = segment::segment_paths(dir, base, "");
        drop(output);
        if point == CrashPoint::Cleaned {
            return Ok(false);
        }
        std::fs::rename(&index, &swap_index)?;
        std::fs::rename(&time_index, &swap_time_index)?;
        if point == CrashPoint::IndexesSwapped {
            return Ok(false);
        }
        std::fs::rename(&log, &swap_log)?;
        if point == CrashPoint::Swapped {
            return Ok(false);
        }
        for s in &group[1..] {
            for path in segment::segment_paths(dir, s.base(), "") {
                std::fs::remove_file(path)?;
            }
        }
        if point == CrashPoint::OldRemoved {
            return Ok(false);
        }
        std::fs::rename(&swap_index, &live_index)?;
        std::fs::rename(&swap_time_index, &live_time_index)?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests;
