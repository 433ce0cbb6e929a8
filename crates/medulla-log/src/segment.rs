//! One segment: a `.log` file of batches with its `.index` and `.timeindex`.
//!
//! Files are named after the segment's base offset, zero-padded to 20 digits as Kafka
//! names them (`00000000000000000042.log`). A segment is written only at its end, with
//! positional writes, and only by the partition holding its append lock; readers use
//! positional reads on a shared `Arc<File>` and never look past the size they were
//! handed, so they see whole committed batches only. A segment deleted by retention stays
//! readable through the `Arc<File>`s readers already hold.
//!
//! Recovery ([`Segment::recover`]) trusts an index that passes its sanity checks and only
//! replays the log from the last index entry on; otherwise it rebuilds both indexes by
//! scanning the whole log. Either way it stops at the first batch whose header, length,
//! offsets (or CRC, when asked) are wrong and cuts the file there. The batches it keeps
//! are shown to a [`Replay`] (the partition's producer state) in the same pass, so a
//! segment scanned after a crash is read once, not twice.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{self, BATCH_HEADER_BYTES, BatchHeader, MAGIC_V2, NO_TIMESTAMP};
use crate::index::{self, DiskIndex, IndexFile, OffsetEntry, TimeEntry};
use crate::limits::{SCAN_CHUNK_BYTES, SEGMENT_FILE_BYTES_MAX};

/// Bytes read per I/O when looking for a fetch position: a few index intervals.
const FIND_CHUNK_BYTES: usize = 64 * 1024;

/// Batch headers a slice walk reads one by one before it asks the offset index to skip
/// ahead: a few large batches cost less to walk than a binary search of the index, many
/// small ones far more.
const WALK_HEADERS_BEFORE_INDEX: usize = 16;

/// `<dir>/<20-digit base>.log`
pub(crate) fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.log"))
}
/// `<dir>/<20-digit base>.index`
pub(crate) fn index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.index"))
}
/// `<dir>/<20-digit base>.timeindex`
pub(crate) fn time_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.timeindex"))
}

/// Suffix of a cleaned segment's files while the cleaner writes them. Leftovers are
/// removed on open: the segments they were to replace are still there.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment's files once they are complete and synced. Renaming the
/// log file to it is the commit point of a swap; recovery completes a swap it finds.
pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// `path` with `suffix` appended to its file name.
fn suffixed(path: PathBuf, suffix: &str) -> PathBuf {
    let mut name = path.into_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// The three files of segment `base_offset`, with `suffix` ("" for the live names), in
/// the order a swap renames them: indexes first, the log (the commit point) last.
pub(crate) fn segment_paths(dir: &Path, base_offset: i64, suffix: &str) -> [PathBuf; 3] {
    [
        suffixed(index_path(dir, base_offset), suffix),
        suffixed(time_index_path(dir, base_offset), suffix),
        suffixed(log_path(dir, base_offset), suffix),
    ]
}

/// Parses a segment file name's base offset (`00000000000000000042.log` → 42).
pub(crate) fn parse_base_offset(stem: &str) -> Option<i64> {
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

fn invalid_data(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Running state that decides where index entries go, shared by appends and rebuilds so
/// both produce the same index (Kafka's `LogSegment.append` rule).
#[derive(Debug, Clone, Copy)]
struct Tracker {
    /// Log bytes since the last offset-index entry.
    unindexed_bytes: u64,
    /// `(largest timestamp, last offset of the first batch reaching it)`.
    max: Option<(i64, i64)>,
    /// Timestamp of the last time-index entry ([`NO_TIMESTAMP`] when none, as Kafka).
    last_time_entry: i64,
}

impl Tracker {
    fn new() -> Tracker {
        Tracker {
            unindexed_bytes: 0,
            max: None,
            last_time_entry: NO_TIMESTAMP,
        }
    }

    fn add(
        &mut self,
        base_offset: i64,
        position: u64,
        header: &BatchHeader,
        index_interval_bytes: u32,
        offsets: &mut Vec<OffsetEntry>,
        times: &mut Vec<TimeEntry>,
    ) {
        let last = header.last_offset();
        if self.max.is_none_or(|(ts, _)| header.max_timestamp > ts) {
            self.max = Some((header.max_timestamp, last));
        }
        if self.unindexed_bytes > index_interval_bytes as u64 {
            offsets.push(OffsetEntry {
                relative_offset: relative(base_offset, last),
                position: position as u32,
            });
            if let Some((ts, offset)) = self.max
                && ts > self.last_time_entry
            {
                times.push(TimeEntry {
                    timestamp: ts,
                    relative_offset: relative(base_offset, offset),
                });
                self.last_time_entry = ts;
            }
            self.unindexed_bytes = 0;
        }
        self.unindexed_bytes += header.size_bytes() as u64;
    }
}

/// `offset - base` as the indexes store it. Callers keep it within `0..=i32::MAX`
/// (segments roll before it would overflow; recovery refuses batches beyond it).
fn relative(base_offset: i64, offset: i64) -> u32 {
    debug_assert!((0..=i32::MAX as i64).contains(&(offset - base_offset)));
    (offset - base_offset) as u32
}

/// A read-only snapshot of a segment, usable without the partition's lock.
#[derive(Clone)]
pub(crate) struct SegmentView {
    pub base_offset: i64,
    pub log: Arc<File>,
    /// Committed bytes: never read past this.
    pub size_bytes: u64,
}

/// How to bring back a segment found on disk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecoverOptions {
    /// Base offset of the following segment: every batch here must end before it.
    pub next_base_offset: Option<i64>,
    /// Ignore the index files and rebuild them from the whole log.
    pub full_scan: bool,
    /// Check the CRC of every batch scanned (after an unclean shutdown).
    pub verify_crc: bool,
    /// The segment will be the active one (keep its index in memory).
    pub active: bool,
    /// `index.interval.bytes` for entries written now.
    pub index_interval_bytes: u32,
    /// The clock's time, as the creation time of the segment.
    pub now_ms: i64,
    /// This segment's share of `segment.jitter.ms`.
    pub roll_jitter_ms: i64,
}

/// A transaction marker's `(commit, coordinator epoch)`.
pub(crate) type Marker = (bool, i32);

/// What recovery shows the batches it keeps to: every batch of a producer
/// (`producer_id >= 0`) whose last offset is at least `from_offset`, in offset order,
/// with `(commit, coordinator epoch)` for a transaction marker. Batches recovery cuts
/// off are never shown.
pub(crate) struct Replay<'a> {
    /// Batches ending below this are not shown (the producer snapshot covers them).
    pub from_offset: i64,
    /// Called once per batch shown.
    pub visit: &'a mut dyn FnMut(&BatchHeader, Option<Marker>),
}

impl Replay<'_> {
    fn wants(&self, header: &BatchHeader) -> bool {
        header.producer_id >= 0 && header.last_offset() >= self.from_offset
    }

    /// Shows one batch; `batch` holds its bytes (needed for a marker's control record).
    fn show(&mut self, header: &BatchHeader, batch: &[u8]) -> io::Result<()> {
        let control = batch::control_record(batch, header).map_err(|e| {
            invalid_data(format!(
                "unreadable transaction marker at offset {}: {e}",
                header.base_offset
            ))
        })?;
        (self.visit)(header, control.map(|c| (c.commit, c.coordinator_epoch)));
        Ok(())
    }
}

/// One segment of a partition.
pub(crate) struct Segment {
    pub base_offset: i64,
    dir: PathBuf,
    log: Arc<File>,
    size_bytes: u64,
    /// One past the last offset stored here (`base_offset` when empty).
    next_offset: i64,
    offset_index: IndexFile<OffsetEntry>,
    time_index: IndexFile<TimeEntry>,
    tracker: Tracker,
    /// The first batch's max timestamp, when it has a real one: segment.ms counts from it.
    first_batch_timestamp: Option<i64>,
    /// Clock time when this segment was created or loaded (segment.ms fallback).
    created_ms: i64,
    /// Subtracted from segment.ms for this segment.
    pub roll_jitter_ms: i64,
    /// Data written since the last fsync of the log file.
    pub dirty: bool,
    /// The index files were never synced since the segment stopped being active.
    pub index_dirty: bool,
    /// Test hook: the next append writes half its bytes and fails.
    #[cfg(test)]
    pub fail_next_write: bool,
}

/// Bytes to append at the end of a segment: whole batches, as slices that one positional
/// vectored write puts down in order. A produced batch goes in as its patched first bytes
/// (base offset, leader epoch: before the CRC-covered part) followed by the rest of the
/// producer's buffer, so the record data is never copied in user space.
pub(crate) struct Payload<'a> {
    parts: Vec<IoSlice<'a>>,
    len: usize,
}

impl<'a> Payload<'a> {
    /// One contiguous buffer.
    pub fn whole(bytes: &'a [u8]) -> Self {
        Payload {
            len: bytes.len(),
            parts: vec![IoSlice::new(bytes)],
        }
    }

    /// Slices written back to back.
    pub fn from_parts(parts: Vec<IoSlice<'a>>) -> Self {
        let len = parts.iter().map(|p| p.len()).sum();
        Payload { parts, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    fn to_vec(&self) -> Vec<u8> {
        self.parts.iter().flat_map(|p| p.iter().copied()).collect()
    }
}

/// Why an append did not happen.
pub(crate) enum AppendError {
    /// Nothing changed on disk.
    Clean(io::Error),
    /// The failed write could not be cut back: the partition must stop taking writes.
    Dirty(io::Error),
}

impl Segment {
    /// Creates the files of a new, empty segment and makes their names durable.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
        roll_jitter_ms: i64,
    ) -> io::Result<Segment> {
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(log_path(dir, base_offset))?;
        let offset_index =
            IndexFile::write_new(&index_path(dir, base_offset), Vec::new(), true, false)?;
        let time_index =
            IndexFile::write_new(&time_index_path(dir, base_offset), Vec::new(), true, false)?;
        crate::fsutil::sync_dir(dir)?;
        Ok(Segment {
            base_offset,
            dir: dir.to_path_buf(),
            log: Arc::new(log),
            size_bytes: 0,
            next_offset: base_offset,
            offset_index,
            time_index,
            tracker: Tracker::new(),
            first_batch_timestamp: None,
            created_ms: now_ms,
            roll_jitter_ms,
            dirty: false,
            index_dirty: false,
            #[cfg(test)]
            fail_next_write: false,
        })
    }

    /// Opens a segment found on disk, checking (and if needed rebuilding) its indexes
    /// and cutting off a torn or corrupt tail; shows the batches it keeps to `replay`.
    ///
    /// Indexes rebuilt during a full scan are written but not synced (the segment comes
    /// back with `index_dirty`, for the partition's next flush): after a crash the whole
    /// scanned range is scanned again until that flush moves the recovery point, so
    /// nothing trusts them before they are on disk. Indexes rebuilt otherwise (found
    /// malformed in a segment the next open would trust) are synced before returning.
    pub fn recover(
        dir: &Path,
        base_offset: i64,
        options: &RecoverOptions,
        replay: &mut Replay<'_>,
    ) -> io::Result<Segment> {
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(log_path(dir, base_offset))?;
        let file_bytes = log.metadata()?.len();
        let scan_end = file_bytes.min(SEGMENT_FILE_BYTES_MAX);
        let name = log_path(dir, base_offset);

        let mut loaded = None;
        if !options.full_scan {
            let offsets = index::load::<OffsetEntry>(&index_path(dir, base_offset))?;
            let times = index::load::<TimeEntry>(&time_index_path(dir, base_offset))?;
            match (offsets, times) {
                (Some(offsets), Some(times)) => {
                    match replay_tail(&log, base_offset, scan_end, offsets, times, options)? {
                        Ok(l) => loaded = Some(l),
                        Err(reason) => tracing::info!(
                            segment = %name.display(),
                            "rebuilding indexes: {reason}"
                        ),
                    }
                }
                _ => {
                    tracing::info!(segment = %name.display(), "rebuilding missing or malformed indexes")
                }
            }
        }
        let rebuilt = loaded.is_none();
        let loaded = match loaded {
            Some(l) => {
                replay_kept(&log, base_offset, &l, replay)?;
                l
            }
            None => rebuild(&log, base_offset, scan_end, options, replay)?,
        };

        if loaded.valid_end < file_bytes {
            tracing::warn!(
                segment = %name.display(),
                valid_bytes = loaded.valid_end,
                file_bytes,
                reason = loaded.stop_reason.as_deref().unwrap_or("file beyond the largest segment size"),
                "truncating segment at the first torn or corrupt batch"
            );
            log.set_len(loaded.valid_end)?;
            log.sync_data()?;
        }

        let sync_rebuilt = !options.full_scan;
        let (offset_index, time_index) = if rebuilt {
            (
                IndexFile::write_new(
                    &index_path(dir, base_offset),
                    loaded.offsets,
                    options.active,
                    sync_rebuilt,
                )?,
                IndexFile::write_new(
                    &time_index_path(dir, base_offset),
                    loaded.times,
                    options.active,
                    sync_rebuilt,
                )?,
            )
        } else {
            let mut offset_index = IndexFile::open_loaded(
                &index_path(dir, base_offset),
                loaded.offsets,
                options.active,
            )?;
            let mut time_index = IndexFile::open_loaded(
                &time_index_path(dir, base_offset),
                loaded.times,
                options.active,
            )?;
            offset_index.append(&loaded.new_offsets)?;
            time_index.append(&loaded.new_times)?;
            (offset_index, time_index)
        };

        let mut segment = Segment {
            base_offset,
            dir: dir.to_path_buf(),
            log: Arc::new(log),
            size_bytes: loaded.valid_end,
            next_offset: loaded.next_offset.unwrap_or(base_offset),
            offset_index,
            time_index,
            tracker: loaded.tracker,
            first_batch_timestamp: loaded.first_batch_timestamp,
            created_ms: options.now_ms,
            roll_jitter_ms: options.roll_jitter_ms,
            dirty: false,
            index_dirty: rebuilt && !sync_rebuilt,
            #[cfg(test)]
            fail_next_write: false,
        };
        if !options.active {
            segment.seal()?;
        }
        Ok(segment)
    }

    /// Committed size of the log file.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// One past the last offset stored.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Offset-index entries.
    pub fn offset_index_entries(&self) -> usize {
        self.offset_index.len()
    }

    /// Time-index entries.
    pub fn time_index_entries(&self) -> usize {
        self.time_index.len()
    }

    /// `(largest timestamp, last offset of the batch that first reached it)`.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.tracker.max
    }

    /// The first batch's max timestamp, when it has a real one (max.compaction.lag.ms
    /// counts from it).
    pub fn first_batch_timestamp(&self) -> Option<i64> {
        self.first_batch_timestamp
    }

    /// When the segment's age for segment.ms counts from.
    pub fn rolling_timestamp_ms(&self) -> i64 {
        self.first_batch_timestamp.unwrap_or(self.created_ms)
    }

    /// The log file.
    pub fn log_file(&self) -> &Arc<File> {
        &self.log
    }

    /// The index files.
    pub fn index_files(&self) -> [&Arc<File>; 2] {
        [self.offset_index.file(), self.time_index.file()]
    }

    /// A lock-free read handle.
    pub fn view(&self) -> SegmentView {
        SegmentView {
            base_offset: self.base_offset,
            log: Arc::clone(&self.log),
            size_bytes: self.size_bytes,
        }
    }

    /// Where to start scanning for `offset`: the position of the batch named by the last
    /// offset-index entry at or before it. `Err` carries a disk index to search without
    /// the lock when the entries are not in memory.
    pub fn start_position(&self, offset: i64) -> Result<u64, DiskIndex<OffsetEntry>> {
        let relative = (offset - self.base_offset).clamp(0, u32::MAX as i64) as u32;
        match self
            .offset_index
            .floor_in_memory(relative, |e| e.relative_offset)
        {
            Some(entry) => Ok(entry.map_or(0, |e| e.position as u64)),
            None => Err(self.offset_index.disk()),
        }
    }

    /// A disk handle to the offset index (for walks that skip batches).
    pub fn offset_index(&self) -> DiskIndex<OffsetEntry> {
        self.offset_index.disk()
    }

    /// Disk handles to both indexes (for timestamp searches).
    pub fn disk_indexes(&self) -> (DiskIndex<OffsetEntry>, DiskIndex<TimeEntry>) {
        (self.offset_index.disk(), self.time_index.disk())
    }

    /// The largest timestamp for time-based retention: Kafka's rule, the largest record
    /// timestamp when positive, else the file's modification time.
    pub fn retention_timestamp_ms(&self) -> i64 {
        match self.tracker.max {
            Some((ts, _)) if ts > 0 => ts,
            _ => self
                .log
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(i64::MAX, |d| d.as_millis() as i64),
        }
    }

    /// Writes a payload whose offsets are already assigned at the end of the log, then
    /// its index entries. All or nothing: on failure the files are cut back.
    pub fn append(
        &mut self,
        payload: &Payload<'_>,
        headers: &[BatchHeader],
        index_interval_bytes: u32,
    ) -> Result<(), AppendError> {
        let start = self.size_bytes;
        let mut tracker = self.tracker;
        let (mut offsets, mut times) = (Vec::new(), Vec::new());
        let mut position = start;
        for header in headers {
            debug_assert!(
                header.base_offset >= self.next_offset,
                "offsets only increase"
            );
            tracker.add(
                self.base_offset,
                position,
                header,
                index_interval_bytes,
                &mut offsets,
                &mut times,
            );
            position += header.size_bytes() as u64;
        }
        debug_assert_eq!(position, start + payload.len() as u64);

        if let Err(e) = self.write_at(payload, start) {
            return Err(self.cut_back(start, e));
        }
        let offsets_before = self.offset_index.len();
        if let Err(e) = self.offset_index.append(&offsets) {
            return Err(self.cut_back(start, e));
        }
        if let Err(e) = self.time_index.append(&times) {
            let _ = self.offset_index.truncate(offsets_before);
            return Err(self.cut_back(start, e));
        }

        self.size_bytes = position;
        self.tracker = tracker;
        // The final flush before a clean shutdown syncs the active segment's indexes
        // (the next open trusts them) only when they changed.
        self.index_dirty |= !offsets.is_empty() || !times.is_empty();
        if let Some(last) = headers.last() {
            self.next_offset = last.last_offset() + 1;
        }
        if self.first_batch_timestamp.is_none()
            && let Some(first) = headers.first()
            && first.max_timestamp >= 0
            && start == 0
        {
            self.first_batch_timestamp = Some(first.max_timestamp);
        }
        self.dirty = true;
        Ok(())
    }

    fn write_at(&mut self, payload: &Payload<'_>, at: u64) -> io::Result<()> {
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_write) {
            let flat = payload.to_vec();
            self.log.write_all_at(&flat[..flat.len() / 2], at)?;
            return Err(io::Error::other("injected write failure"));
        }
        write_all_vectored_at(&self.log, &payload.parts, at)
    }

    fn cut_back(&self, size: u64, error: io::Error) -> AppendError {
        match self.log.set_len(size) {
            Ok(()) => AppendError::Clean(error),
            Err(_) => AppendError::Dirty(error),
        }
    }

    /// Appends the final time-index entry (so the time index's last entry is the
    /// segment's largest timestamp, as Kafka does when a segment stops being active).
    pub fn finish_time_index(&mut self) -> io::Result<()> {
        if let Some((ts, offset)) = self.tracker.max
            && ts > self.tracker.last_time_entry
        {
            self.time_index.append(&[TimeEntry {
                timestamp: ts,
                relative_offset: relative(self.base_offset, offset),
            }])?;
            self.tracker.last_time_entry = ts;
        }
        Ok(())
    }

    /// The segment is no longer active: drop the in-memory index copies.
    pub fn seal(&mut self) -> io::Result<()> {
        self.finish_time_index()?;
        self.offset_index.seal();
        self.time_index.seal();
        Ok(())
    }

    /// Unlinks the segment's files. Readers holding the `Arc<File>` keep reading.
    pub fn delete_files(&self) {
        for path in [
            log_path(&self.dir, self.base_offset),
            index_path(&self.dir, self.base_offset),
            time_index_path(&self.dir, self.base_offset),
        ] {
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                // The log start checkpoint already excludes this segment, so the next
                // open removes what is left.
                tracing::warn!(path = %path.display(), error = %e, "could not delete segment file");
            }
        }
    }
}

/// Bytes a [`CleanedWriter`] buffers between writes.
const CLEANED_WRITE_CHUNK_BYTES: usize = 1024 * 1024;

/// Writes a cleaned segment to `<base>.{log,index,timeindex}.cleaned`: batches in
/// offset order, indexed by the same rule as appends.
pub(crate) struct CleanedWriter {
    dir: PathBuf,
    base_offset: i64,
    log: File,
    buffer: Vec<u8>,
    size_bytes: u64,
    next_offset: Option<i64>,
    first_batch_timestamp: Option<i64>,
    index_interval_bytes: u32,
    tracker: Tracker,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
}

impl CleanedWriter {
    /// Creates (or empties) the `.cleaned` log file of segment `base_offset`.
    pub fn create(dir: &Path, base_offset: i64, index_interval_bytes: u32) -> io::Result<Self> {
        let [_, _, log] = segment_paths(dir, base_offset, CLEANED_SUFFIX);
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(log)?;
        Ok(CleanedWriter {
            dir: dir.to_path_buf(),
            base_offset,
            log,
            buffer: Vec::new(),
            size_bytes: 0,
            next_offset: None,
            first_batch_timestamp: None,
            index_interval_bytes,
            tracker: Tracker::new(),
            offsets: Vec::new(),
            times: Vec::new(),
        })
    }

    /// Appends one whole batch; its offsets must follow the previous batch's.
    pub fn append(&mut self, batch: &[u8], header: &BatchHeader) -> crate::Result<()> {
        let offsets_ok = self.next_offset.is_none_or(|n| header.base_offset >= n)
            && header.base_offset >= self.base_offset
            && header.last_offset() - self.base_offset <= i32::MAX as i64;
        if !offsets_ok || batch.len() != header.size_bytes() {
            return Err(invalid_data(format!(
                "cleaned segment {}: batch at offset {} is out of order or misframed",
                self.base_offset, header.base_offset
            ))
            .into());
        }
        if self.size_bytes + batch.len() as u64 > SEGMENT_FILE_BYTES_MAX {
            return Err(crate::LogError::CleanerLimit(format!(
                "cleaned segment {} would pass SEGMENT_FILE_BYTES_MAX ({SEGMENT_FILE_BYTES_MAX} bytes)",
                self.base_offset
            )));
        }
        self.tracker.add(
            self.base_offset,
            self.size_bytes,
            header,
            self.index_interval_bytes,
            &mut self.offsets,
            &mut self.times,
        );
        if self.size_bytes == 0 && header.max_timestamp >= 0 {
            self.first_batch_timestamp = Some(header.max_timestamp);
        }
        self.buffer.extend_from_slice(batch);
        self.size_bytes += batch.len() as u64;
        self.next_offset = Some(header.last_offset() + 1);
        if self.buffer.len() >= CLEANED_WRITE_CHUNK_BYTES {
            self.write_buffer()?;
        }
        Ok(())
    }

    fn write_buffer(&mut self) -> io::Result<()> {
        let at = self.size_bytes - self.buffer.len() as u64;
        self.log.write_all_at(&self.buffer, at)?;
        self.buffer.clear();
        Ok(())
    }

    /// Writes the rest of the log and both indexes (`.cleaned`) and syncs all three.
    /// The sealed segment returned still lives under the `.cleaned` names until the
    /// swap renames them (its open handles follow the renames); until then only
    /// [`remove_temporary_files`] may remove it, never [`Segment::delete_files`].
    pub fn finish(mut self, now_ms: i64) -> io::Result<Segment> {
        self.write_buffer()?;
        self.log.sync_data()?;
        if let Some((ts, offset)) = self.tracker.max
            && ts > self.tracker.last_time_entry
        {
            // The last time entry of a sealed segment is its largest timestamp.
            self.times.push(TimeEntry {
                timestamp: ts,
                relative_offset: relative(self.base_offset, offset),
            });
            self.tracker.last_time_entry = ts;
        }
        let [index, time_index, _] = segment_paths(&self.dir, self.base_offset, CLEANED_SUFFIX);
        let offset_index = IndexFile::write_new(&index, self.offsets, false, true)?;
        let time_index = IndexFile::write_new(&time_index, self.times, false, true)?;
        Ok(Segment {
            base_offset: self.base_offset,
            dir: self.dir,
            log: Arc::new(self.log),
            size_bytes: self.size_bytes,
            next_offset: self.next_offset.unwrap_or(self.base_offset),
            offset_index,
            time_index,
            tracker: self.tracker,
            first_batch_timestamp: self.first_batch_timestamp,
            created_ms: now_ms,
            roll_jitter_ms: 0,
            dirty: false,
            index_dirty: false,
            #[cfg(test)]
            fail_next_write: false,
        })
    }

    /// Abandons the segment and removes its files.
    pub fn discard(self) {
        remove_temporary_files(&self.dir, self.base_offset);
    }
}

/// Renames segment `base_offset`'s three files from names ending in `from` to names
/// ending in `to`, the log last.
pub(crate) fn rename_segment_files(
    dir: &Path,
    base_offset: i64,
    from: &str,
    to: &str,
) -> io::Result<()> {
    let sources = segment_paths(dir, base_offset, from);
    let targets = segment_paths(dir, base_offset, to);
    for (source, target) in sources.iter().zip(&targets) {
        std::fs::rename(source, target)?;
    }
    Ok(())
}

/// Removes segment `base_offset`'s cleaner files under either temporary name.
pub(crate) fn remove_temporary_files(dir: &Path, base_offset: i64) {
    remove_files(&segment_paths(dir, base_offset, CLEANED_SUFFIX));
    remove_files(&segment_paths(dir, base_offset, SWAP_SUFFIX));
}

/// Removes files, ignoring those already gone; other failures are logged (whatever
/// stays behind is a leftover the next open removes).
fn remove_files(paths: &[PathBuf]) {
    for path in paths {
        if let Err(e) = std::fs::remove_file(path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a file");
        }
    }
}

/// Brings a partition directory to a state without cleaner leftovers, before its
/// segments are opened:
///
/// - `*.cleaned`: a cleaned segment that was never committed. Removed; the segments it
///   was to replace are all still there.
/// - `<B>.log.swap`: a committed swap. Every old segment whose base lies in
///   `(B, end of the swap log)` is removed (some may be gone already; they go in
///   ascending order, so what is left is a suffix of the originals), then the swap log
///   replaces `<B>.log`. Its indexes are removed and rebuilt from the log on open,
///   whatever step the crash interrupted. Old segments past the swap's last offset held
///   only records the cleaning dropped; if they are still there they stay, which keeps
///   the log consistent (cleaned prefix, original suffix) and the cleaner checkpoint,
///   written after the pass, makes the next pass clean them again.
/// - other `*.swap` (indexes renamed before the crash reached the log): removed.
pub(crate) fn recover_swaps(dir: &Path) -> io::Result<bool> {
    let mut swap_bases = Vec::new();
    let mut log_bases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(CLEANED_SUFFIX) {
            std::fs::remove_file(entry.path())?;
        } else if let Some(base) = name
            .strip_suffix(SWAP_SUFFIX)
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(parse_base_offset)
        {
            swap_bases.push(base);
        } else if let Some(base) = name.strip_suffix(".log").and_then(parse_base_offset) {
            log_bases.push(base);
        }
    }
    swap_bases.sort_unstable();
    log_bases.sort_unstable();
    for &base in &swap_bases {
        let [index, time_index, log] = segment_paths(dir, base, SWAP_SUFFIX);
        let end = {
            let file = File::open(&log)?;
            let size = file.metadata()?.len().min(SEGMENT_FILE_BYTES_MAX);
            let mut reader = ChunkReader::new(&file, size, SCAN_CHUNK_BYTES);
            let options = RecoverOptions {
                next_base_offset: None,
                full_scan: true,
                verify_crc: false,
                active: false,
                index_interval_bytes: u32::MAX,
                now_ms: 0,
                roll_jitter_ms: 0,
            };
            scan(&mut reader, base, 0, base, &options, |_, _, _| Ok(()))?
                .next_offset
                .unwrap_or(base)
        };
        tracing::info!(
            segment = %log.display(),
            replaces_below = end,
            "completing an interrupted cleaner swap"
        );
        for &old in log_bases.iter().filter(|&&b| b > base && b < end) {
            remove_files(&segment_paths(dir, old, ""));
        }
        let [live_index, live_time_index, live_log] = segment_paths(dir, base, "");
        remove_files(&[index, time_index, live_index, live_time_index]);
        std::fs::rename(&log, &live_log)?;
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(SWAP_SUFFIX))
        {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(!swap_bases.is_empty())
}

/// What recovery learnt about a segment's log.
struct Loaded {
    valid_end: u64,
    stop_reason: Option<String>,
    next_offset: Option<i64>,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    /// Entries to append to files that were kept.
    new_offsets: Vec<OffsetEntry>,
    new_times: Vec<TimeEntry>,
    tracker: Tracker,
    first_batch_timestamp: Option<i64>,
}

/// Trusts the loaded indexes if they pass the sanity checks and replays the log from the
/// last offset-index entry on. The outer `io::Result` is an I/O failure; the inner `Err`
/// is why the indexes cannot be trusted.
fn replay_tail(
    log: &File,
    base_offset: i64,
    scan_end: u64,
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
    options: &RecoverOptions,
) -> io::Result<Result<Loaded, String>> {
    let limit = options
        .next_base_offset
        .map(|n| (n - base_offset).max(0) as u64);
    if let Err(reason) = index::check_offset_entries(&offsets, scan_end, limit) {
        return Ok(Err(format!("offset index: {reason}")));
    }
    let mut reader = ChunkReader::new(log, scan_end, SCAN_CHUNK_BYTES);
    let start = match offsets.last() {
        Some(entry) => {
            // The last entry must name the batch it claims: catches an index left over
            // from different data.
            let position = entry.position as u64;
            let header = match reader
                .get(position, BATCH_HEADER_BYTES)
                .ok()
                .map(batch::parse_header)
            {
                Some(Ok(h)) => h,
                _ => {
                    return Ok(Err(
                        "last offset-index entry does not point at a batch".into()
                    ));
                }
            };
            if header.last_offset() != base_offset + entry.relative_offset as i64 {
                return Ok(Err("last offset-index entry is stale".into()));
            }
            position
        }
        None => 0,
    };
    let first_batch_timestamp = first_timestamp(&mut reader, scan_end)?;
    let mut tracker = Tracker::new();
    if let Some(last) = times.last() {
        tracker.max = Some((last.timestamp, base_offset + last.relative_offset as i64));
        tracker.last_time_entry = last.timestamp;
    }
    let (mut new_offsets, mut new_times) = (Vec::new(), Vec::new());
    let outcome = scan(
        &mut reader,
        base_offset,
        start,
        base_offset,
        options,
        |position, header, _| {
            tracker.add(
                base_offset,
                position,
                header,
                options.index_interval_bytes,
                &mut new_offsets,
                &mut new_times,
            );
            Ok(())
        },
    )?;
    if offsets
        .last()
        .is_some_and(|e| e.position as u64 >= outcome.valid_end)
    {
        return Ok(Err(format!(
            "the batch of the last offset-index entry is damaged: {}",
            outcome.stop_reason.unwrap_or_default()
        )));
    }
    let last_relative = outcome.next_offset.map(|n| relative(base_offset, n - 1));
    if let Err(reason) = index::check_time_entries(&times, last_relative) {
        return Ok(Err(format!("time index: {reason}")));
    }
    Ok(Ok(Loaded {
        valid_end: outcome.valid_end,
        stop_reason: outcome.stop_reason,
        next_offset: outcome.next_offset,
        offsets,
        times,
        new_offsets,
        new_times,
        tracker,
        first_batch_timestamp: first_batch_timestamp.filter(|_| outcome.valid_end > 0),
    }))
}

/// Scans the whole log (checking every CRC) and rebuilds both indexes, showing each
/// batch kept to `replay` as it goes.
fn rebuild(
    log: &File,
    base_offset: i64,
    scan_end: u64,
    options: &RecoverOptions,
    replay: &mut Replay<'_>,
) -> io::Result<Loaded> {
    let mut reader = ChunkReader::new(log, scan_end, SCAN_CHUNK_BYTES);
    let first_batch_timestamp = first_timestamp(&mut reader, scan_end)?;
    let mut tracker = Tracker::new();
    let (mut offsets, mut times) = (Vec::new(), Vec::new());
    let options = RecoverOptions {
        verify_crc: true,
        ..*options
    };
    let outcome = scan(
        &mut reader,
        base_offset,
        0,
        base_offset,
        &options,
        |position, header, batch| {
            tracker.add(
                base_offset,
                position,
                header,
                options.index_interval_bytes,
                &mut offsets,
                &mut times,
            );
            if replay.wants(header) {
                // `rebuild` checks every CRC, so `scan` hands over every batch's bytes.
                replay.show(header, batch.unwrap_or_default())?;
            }
            Ok(())
        },
    )?;
    Ok(Loaded {
        valid_end: outcome.valid_end,
        stop_reason: outcome.stop_reason,
        next_offset: outcome.next_offset,
        offsets,
        times,
        new_offsets: Vec::new(),
        new_times: Vec::new(),
        tracker,
        first_batch_timestamp: first_batch_timestamp.filter(|_| outcome.valid_end > 0),
    })
}

/// Shows `replay` the kept batches of a segment whose indexes were trusted (so the scan
/// covered only its tail): a walk over batch headers, from the last index entry below
/// `replay.from_offset`, reading whole batches only for transaction markers.
fn replay_kept(
    log: &File,
    base_offset: i64,
    loaded: &Loaded,
    replay: &mut Replay<'_>,
) -> io::Result<()> {
    if loaded
        .next_offset
        .is_none_or(|next| next <= replay.from_offset)
    {
        return Ok(());
    }
    let start = loaded
        .offsets
        .iter()
        .chain(&loaded.new_offsets)
        .take_while(|e| base_offset + (e.relative_offset as i64) < replay.from_offset)
        .last()
        .map_or(0, |e| e.position as u64);
    let mut reader = ChunkReader::new(log, loaded.valid_end, FIND_CHUNK_BYTES);
    let mut position = start;
    while position < loaded.valid_end {
        // Recovery has just walked and checked these batches.
        let header = batch::parse_header(reader.get(position, BATCH_HEADER_BYTES)?)
            .map_err(|e| invalid_data(format!("segment {base_offset} at byte {position}: {e}")))?;
        let size = header.size_bytes();
        if replay.wants(&header) {
            let batch = if header.is_control() {
                reader.get(position, size)?
            } else {
                &[]
            };
            replay.show(&header, batch)?;
        }
        position += size as u64;
    }
    Ok(())
}

fn first_timestamp(reader: &mut ChunkReader<'_>, scan_end: u64) -> io::Result<Option<i64>> {
    if scan_end < BATCH_HEADER_BYTES as u64 {
        return Ok(None);
    }
    Ok(batch::parse_header(reader.get(0, BATCH_HEADER_BYTES)?)
        .ok()
        .map(|h| h.max_timestamp)
        .filter(|ts| *ts >= 0))
}

struct ScanOutcome {
    valid_end: u64,
    stop_reason: Option<String>,
    next_offset: Option<i64>,
}

/// Walks batches from `from`, checking header, length, offsets (and CRC when asked),
/// calling `visit` for each good one (with its bytes when the CRC was checked); stops at
/// the first bad one.
fn scan(
    reader: &mut ChunkReader<'_>,
    base_offset: i64,
    from: u64,
    min_offset: i64,
    options: &RecoverOptions,
    mut visit: impl FnMut(u64, &BatchHeader, Option<&[u8]>) -> io::Result<()>,
) -> io::Result<ScanOutcome> {
    let end = reader.end;
    let mut position = from;
    let mut min_offset = min_offset;
    let mut next_offset = None;
    let stop_reason = loop {
        let left = end - position;
        if left == 0 {
            break None;
        }
        if left < BATCH_HEADER_BYTES as u64 {
            break Some(format!(
                "{left} bytes at the end are less than a batch header"
            ));
        }
        let header = match batch::parse_header(reader.get(position, BATCH_HEADER_BYTES)?) {
            Ok(h) => h,
            Err(e) => break Some(e.to_string()),
        };
        if header.magic != MAGIC_V2 {
            break Some(format!("magic {}", header.magic));
        }
        let size = header.size_bytes() as u64;
        if size > left {
            break Some(format!(
                "batch of {size} bytes but only {left} left: torn write"
            ));
        }
        if let Err(e) = batch::check_stored_counts(&header) {
            break Some(e.to_string());
        }
        if header.base_offset < min_offset {
            break Some(format!(
                "offset {} goes backwards (expected >= {min_offset})",
                header.base_offset
            ));
        }
        let last = header.last_offset();
        if last - base_offset > i32::MAX as i64 {
            break Some(format!("offset {last} is too far from the segment base"));
        }
        if options.next_base_offset.is_some_and(|next| last >= next) {
            break Some(format!("offset {last} belongs to the next segment"));
        }
        let bytes = if options.verify_crc {
            let bytes = reader.get(position, size as usize)?;
            if let Err(e) = batch::check_crc(bytes, &header) {
                break Some(e.to_string());
            }
            Some(bytes)
        } else {
            None
        };
        visit(position, &header, bytes)?;
        min_offset = last + 1;
        next_offset = Some(last + 1);
        position += size;
    };
    Ok(ScanOutcome {
        valid_end: position,
        stop_reason,
        next_offset,
    })
}

/// Writes every byte of `parts` at `at` with pwritev(2), resuming after short writes and
/// interrupts; at most `IOV_MAX` (1,024) slices per call.
fn write_all_vectored_at(file: &File, parts: &[IoSlice<'_>], mut at: u64) -> io::Result<()> {
    const IOV_MAX: usize = 1024;
    let mut owned: Vec<IoSlice<'_>> = parts.to_vec();
    let mut slices: &mut [IoSlice<'_>] = &mut owned;
    while !slices.is_empty() {
        let window = slices.len().min(IOV_MAX);
        match rustix::io::pwritev(file, &slices[..window], at) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                at += n as u64;
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Positional reads through a buffer of whole chunks (one syscall per chunk, not per
/// batch header).
pub(crate) struct ChunkReader<'a> {
    file: &'a File,
    end: u64,
    chunk_bytes: usize,
    buffer: Vec<u8>,
    buffer_start: u64,
}

impl<'a> ChunkReader<'a> {
    pub fn new(file: &'a File, end: u64, chunk_bytes: usize) -> Self {
        ChunkReader {
            file,
            end,
            chunk_bytes,
            buffer: Vec::new(),
            buffer_start: 0,
        }
    }

    /// `len` bytes at `position`; the range must lie within `end`.
    pub fn get(&mut self, position: u64, len: usize) -> io::Result<&[u8]> {
        if position + len as u64 > self.end {
            return Err(invalid_data(format!(
                "read of {len} bytes at {position} past the end {}",
                self.end
            )));
        }
        let buffered_end = self.buffer_start + self.buffer.len() as u64;
        if position < self.buffer_start || position + len as u64 > buffered_end {
            let want = (len.max(self.chunk_bytes) as u64).min(self.end - position) as usize;
            self.buffer.resize(want, 0);
            self.file.read_exact_at(&mut self.buffer, position)?;
            self.buffer_start = position;
        }
        let from = (position - self.buffer_start) as usize;
        Ok(&self.buffer[from..from + len])
    }
}

impl SegmentView {
    fn header_at(&self, reader: &mut ChunkReader<'_>, position: u64) -> io::Result<BatchHeader> {
        let header =
            batch::parse_header(reader.get(position, BATCH_HEADER_BYTES)?).map_err(|e| {
                invalid_data(format!(
                    "segment {} at byte {position}: {e}",
                    self.base_offset
                ))
            })?;
        if position + header.size_bytes() as u64 > self.size_bytes {
            return Err(invalid_data(format!(
                "segment {} at byte {position}: batch runs past the segment",
                self.base_offset
            )));
        }
        Ok(header)
    }

    /// Every whole batch, in order, read in chunks; `visit` may stop early.
    pub fn for_each_batch(
        &self,
        mut visit: impl FnMut(&[u8], &BatchHeader) -> crate::Result<ControlFlow<()>>,
    ) -> crate::Result<()> {
        let mut reader = ChunkReader::new(&self.log, self.size_bytes, SCAN_CHUNK_BYTES);
        let mut position = 0u64;
        while position < self.size_bytes {
            let header = self.header_at(&mut reader, position)?;
            let size = header.size_bytes();
            if visit(reader.get(position, size)?, &header)?.is_break() {
                break;
            }
            position += size as u64;
        }
        Ok(())
    }

    /// The first batch whose last offset is `>= offset`, scanning headers from `position`.
    pub fn find_batch(&self, position: u64, offset: i64) -> io::Result<Option<(u64, BatchHeader)>> {
        // An index entry often names the very batch wanted: read its header alone first,
        // then chunks, rather than a chunk of records a reader may never look at.
        let mut reader = ChunkReader::new(&self.log, self.size_bytes, BATCH_HEADER_BYTES);
        let mut position = position;
        while position < self.size_bytes {
            let header = self.header_at(&mut reader, position)?;
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.size_bytes() as u64;
            reader.chunk_bytes = FIND_CHUNK_BYTES;
        }
        Ok(None)
    }

    /// Whole batches from `position` (where `first` starts): as many as fit in
    /// `max_bytes`, but the first one always when `min_one_batch`, stopping before the
    /// first batch whose base offset is `upper` or more. Returns where the last batch
    /// taken ends and the offset after it, or `None` when not even the first is taken.
    ///
    /// Reads batch headers only, never record data. A walk over many small batches asks
    /// the offset index (`index`, this segment's) to skip most of them: see
    /// [`SegmentView::skip_to`].
    pub fn slice_batches(
        &self,
        position: u64,
        first: &BatchHeader,
        max_bytes: usize,
        min_one_batch: bool,
        upper: Option<i64>,
        index: &DiskIndex<OffsetEntry>,
    ) -> io::Result<Option<(u64, i64)>> {
        let below_upper = |h: &BatchHeader| upper.is_none_or(|u| h.base_offset < u);
        let first_bytes = first.size_bytes();
        if !below_upper(first) || (first_bytes > max_bytes && !min_one_batch) {
            return Ok(None);
        }
        let limit = (position + max_bytes.max(first_bytes) as u64).min(self.size_bytes);
        // `end` and `next_offset` describe the batches taken so far; `at` is the next
        // header to look at (past `end` after a skip).
        let mut end = position + first_bytes as u64;
        let mut next_offset = first.last_offset() + 1;
        let mut at = end;
        let mut headers_read = 0usize;
        let mut header = [0u8; BATCH_HEADER_BYTES];
        while at + BATCH_HEADER_BYTES as u64 <= limit {
            if headers_read == WALK_HEADERS_BEFORE_INDEX
                && let Some(skip) = self.skip_to(index, limit, upper)?
                && skip > at
            {
                at = skip;
            }
            headers_read += 1;
            self.log.read_exact_at(&mut header, at)?;
            // A header that does not parse ends the walk: the batches before it stand.
            let Ok(h) = batch::parse_header(&header) else {
                break;
            };
            let size = h.size_bytes() as u64;
            if at + size > limit || !below_upper(&h) {
                if at != end {
                    // The index promised this batch would be taken: distrust it and walk
                    // the skipped batches one by one.
                    tracing::warn!(
                        segment = self.base_offset,
                        position = at,
                        "offset index disagrees with the log; walking without it"
                    );
                    at = end;
                    headers_read = WALK_HEADERS_BEFORE_INDEX + 1;
                    continue;
                }
                break;
            }
            at += size;
            end = at;
            next_offset = h.last_offset() + 1;
        }
        Ok(Some((end, next_offset)))
    }

    /// A batch start at or past which a walk from a batch below it may jump, knowing
    /// that every batch before it ends by `limit` and starts below `upper`, and that the
    /// batch there does too; `None` if the index knows no such place.
    ///
    /// Entries name batch starts (and the batch's last offset), and batches lie end to
    /// end: the batch at the second-to-last entry at or below `limit` ends by the last
    /// one's position, so it and all before it fit; the batch of the last entry whose
    /// last offset is below `upper` starts below `upper`, as do all before it.
    fn skip_to(
        &self,
        index: &DiskIndex<OffsetEntry>,
        limit: u64,
        upper: Option<i64>,
    ) -> io::Result<Option<u64>> {
        let by_size = index.partition_point(|e| u64::from(e.position) <= limit)?;
        let Some(i) = by_size.checked_sub(2) else {
            return Ok(None);
        };
        let mut skip = u64::from(index.entry(i)?.position);
        if let Some(upper) = upper {
            let Ok(below) = u32::try_from(upper.saturating_sub(1).saturating_sub(self.base_offset))
            else {
                // `upper` is at or below this segment's base, or far past its offsets.
                return Ok((upper > self.base_offset).then_some(skip));
            };
            let by_offset = index.partition_point(|e| e.relative_offset <= below)?;
            let Some(j) = by_offset.checked_sub(1) else {
                return Ok(None);
            };
            skip = skip.min(u64::from(index.entry(j)?.position));
        }
        Ok(Some(skip))
    }

    /// The first record at or after `min_offset` whose timestamp is `>= timestamp`,
    /// scanning batches from `position`. Returns `(offset, timestamp)`.
    pub fn find_timestamp(
        &self,
        position: u64,
        timestamp: i64,
        min_offset: i64,
    ) -> crate::Result<Option<(i64, i64)>> {
        let mut reader = ChunkReader::new(&self.log, self.size_bytes, FIND_CHUNK_BYTES);
        let mut position = position;
        while position < self.size_bytes {
            let header = self.header_at(&mut reader, position)?;
            let size = header.size_bytes();
            if header.max_timestamp >= timestamp && header.last_offset() >= min_offset {
                let bytes = reader.get(position, size)?.to_vec();
                if let Some(found) = first_record(&bytes, &header, |offset, ts| {
                    offset >= min_offset && ts >= timestamp
                })
                .map_err(|e| self.damaged(position, e))?
                {
                    return Ok(Some(found));
                }
            }
            position += size as u64;
        }
        Ok(None)
    }

    /// The first record at or after `min_offset` with the largest timestamp among those
    /// records in this segment, by a full walk (used when the segment's recorded maximum
    /// lies below the log start offset). Returns `(timestamp, offset)`.
    pub fn scan_max_timestamp(&self, min_offset: i64) -> crate::Result<Option<(i64, i64)>> {
        let mut reader = ChunkReader::new(&self.log, self.size_bytes, SCAN_CHUNK_BYTES);
        let mut best: Option<(i64, i64)> = None;
        let mut position = 0u64;
        while position < self.size_bytes {
            let header = self.header_at(&mut reader, position)?;
            let size = header.size_bytes();
            if header.last_offset() >= min_offset
                && best.is_none_or(|(ts, _)| header.max_timestamp > ts)
            {
                let bytes = reader.get(position, size)?.to_vec();
                let base = header.base_offset;
                batch::for_each_record(&bytes, &header, |record| {
                    let offset = base + record.offset_delta as i64;
                    if offset >= min_offset && best.is_none_or(|(ts, _)| record.timestamp > ts) {
                        best = Some((record.timestamp, offset));
                    }
                    ControlFlow::Continue(())
                })
                .map_err(|e| self.damaged(position, e))?;
            }
            position += size as u64;
        }
        Ok(best)
    }

    /// The batch containing `offset` (searching from `position`), and in it the first
    /// record at or after `min_offset` whose timestamp equals `timestamp`.
    pub fn find_record_with_timestamp(
        &self,
        position: u64,
        offset: i64,
        timestamp: i64,
        min_offset: i64,
    ) -> crate::Result<Option<i64>> {
        let Some((position, header)) = self.find_batch(position, offset)? else {
            return Ok(None);
        };
        let bytes = ChunkReader::new(&self.log, self.size_bytes, FIND_CHUNK_BYTES)
            .get(position, header.size_bytes())?
            .to_vec();
        Ok(
            first_record(&bytes, &header, |o, ts| o >= min_offset && ts == timestamp)
                .map_err(|e| self.damaged(position, e))?
                .map(|(offset, _)| offset),
        )
    }

    fn damaged(&self, position: u64, error: crate::LogError) -> crate::LogError {
        crate::LogError::Io(invalid_data(format!(
            "segment {} at byte {position}: {error}",
            self.base_offset
        )))
    }
}

/// The first record of a batch matching `accept(offset, timestamp)`.
fn first_record(
    bytes: &[u8],
    header: &BatchHeader,
    accept: impl Fn(i64, i64) -> bool,
) -> crate::Result<Option<(i64, i64)>> {
    let mut found = None;
    batch::for_each_record(bytes, header, |record| {
        let offset = header.base_offset + record.offset_delta as i64;
        if accept(offset, record.timestamp) {
            found = Some((offset, record.timestamp));
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    Ok(found)
}

#[cfg(test)]
mod vectored_tests {
    use super::*;

    #[test]
    fn vectored_writes_put_every_part_in_order_past_iov_max() {
        let dir = tempfile::tempdir().unwrap();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        // 3,000 parts of varied lengths (more than IOV_MAX per call), written at 7.
        let chunks: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| vec![(i % 251) as u8; (i % 13) as usize + 1])
            .collect();
        let payload = Payload::from_parts(chunks.iter().map(|c| IoSlice::new(c)).collect());
        let expected: Vec<u8> = chunks.concat();
        assert_eq!(payload.len(), expected.len());
        write_all_vectored_at(&file, &payload.parts, 7).unwrap();
        let mut back = vec![0u8; 7 + expected.len()];
        file.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(&back[..7], &[0u8; 7]);
        assert_eq!(&back[7..], &expected[..]);
        assert_eq!(payload.to_vec(), expected);
    }
}
