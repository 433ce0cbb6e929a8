//! Sparse offset and time indexes of one segment.
//!
//! Both use Kafka's file formats. The offset index (`.index`) holds 8-byte entries
//! `(relative offset u32, file position u32)`, big-endian: the relative offset is that
//! of the *last* record of the batch starting at the position, as Kafka writes it. The
//! time index (`.timeindex`) holds 12-byte entries `(timestamp i64, relative offset
//! u32)`: the largest timestamp seen so far in the segment and the last offset of the
//! batch that first reached it.
//!
//! Invariants (checked on load, asserted on append): relative offsets and positions
//! strictly increase; timestamps strictly increase; every position lies inside the log
//! file. The files are append-only while a segment is active; the in-memory copy of the
//! active segment's entries serves the hot fetch path, sealed segments are searched on
//! disk with positional reads so that old segments cost no memory.

use std::fs::{File, OpenOptions};
use std::io;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::limits::INDEX_FILE_BYTES_MAX;

/// A fixed-size index entry.
pub(crate) trait Entry: Copy + std::fmt::Debug {
    /// Encoded size.
    const BYTES: usize;
    /// Big-endian encoding, appended to `out`.
    fn encode(&self, out: &mut Vec<u8>);
    /// Decodes exactly [`Entry::BYTES`] bytes.
    fn decode(bytes: &[u8]) -> Self;
}

/// One offset-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    /// Last offset of the batch minus the segment's base offset.
    pub relative_offset: u32,
    /// Where the batch starts in the log file.
    pub position: u32,
}

impl Entry for OffsetEntry {
    const BYTES: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// One time-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    /// Largest timestamp in the segment up to and including this batch.
    pub timestamp: i64,
    /// Last offset of the batch that first reached it, relative to the base offset.
    pub relative_offset: u32,
}

impl Entry for TimeEntry {
    const BYTES: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// Reads a whole index file. `Ok(None)` when it is missing, too large or not a whole
/// number of entries: the caller rebuilds it from the log.
pub(crate) fn load<E: Entry>(path: &Path) -> io::Result<Option<Vec<E>>> {
    let bytes = match std::fs::metadata(path) {
        Ok(m) if m.len() > INDEX_FILE_BYTES_MAX => return Ok(None),
        Ok(_) => std::fs::read(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.len() % E::BYTES != 0 {
        return Ok(None);
    }
    Ok(Some(bytes.chunks_exact(E::BYTES).map(E::decode).collect()))
}

/// Offset-index sanity: strictly increasing offsets and positions, positions inside the
/// log, offsets below `relative_offset_limit` (the next segment's base, if any).
pub(crate) fn check_offset_entries(
    entries: &[OffsetEntry],
    log_bytes: u64,
    relative_offset_limit: Option<u64>,
) -> Result<(), String> {
    for (i, e) in entries.iter().enumerate() {
        if e.position as u64 >= log_bytes {
            return Err(format!(
                "entry {i} points at byte {} past the log's {log_bytes}",
                e.position
            ));
        }
        if relative_offset_limit.is_some_and(|limit| e.relative_offset as u64 >= limit) {
            return Err(format!(
                "entry {i} offset {} belongs to the next segment",
                e.relative_offset
            ));
        }
        if i > 0 {
            let p = entries[i - 1];
            if e.relative_offset <= p.relative_offset || e.position <= p.position {
                return Err(format!("entry {i} does not increase"));
            }
        }
    }
    Ok(())
}

/// Time-index sanity: strictly increasing timestamps and offsets, offsets no later than
/// the segment's last relative offset.
pub(crate) fn check_time_entries(
    entries: &[TimeEntry],
    last_relative_offset: Option<u32>,
) -> Result<(), String> {
    for (i, e) in entries.iter().enumerate() {
        match last_relative_offset {
            Some(last) if e.relative_offset <= last => {}
            _ => {
                return Err(format!(
                    "entry {i} offset {} is not in the segment",
                    e.relative_offset
                ));
            }
        }
        if i > 0 {
            let p = entries[i - 1];
            if e.timestamp <= p.timestamp || e.relative_offset <= p.relative_offset {
                return Err(format!("entry {i} does not increase"));
            }
        }
    }
    Ok(())
}

/// The index file of a segment, append-only.
pub(crate) struct IndexFile<E: Entry> {
    file: Arc<File>,
    /// Entries in the file (and committed).
    len: usize,
    /// The entries, kept while the segment is active.
    memory: Option<Vec<E>>,
}

impl<E: Entry> IndexFile<E> {
    /// Creates (or empties) the file and writes `entries`, syncing when asked.
    pub fn write_new(
        path: &Path,
        entries: Vec<E>,
        keep_in_memory: bool,
        sync: bool,
    ) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let mut bytes = Vec::with_capacity(entries.len() * E::BYTES);
        for e in &entries {
            e.encode(&mut bytes);
        }
        file.write_all_at(&bytes, 0)?;
        if sync {
            file.sync_data()?;
        }
        Ok(IndexFile {
            file: Arc::new(file),
            len: entries.len(),
            memory: keep_in_memory.then_some(entries),
        })
    }

    /// Opens a file whose `entries` were loaded and checked.
    pub fn open_loaded(path: &Path, entries: Vec<E>, keep_in_memory: bool) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(IndexFile {
            file: Arc::new(file),
            len: entries.len(),
            memory: keep_in_memory.then_some(entries),
        })
    }

    /// Entries in the index.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The file, for fsync.
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// Appends entries; on failure the file is cut back and nothing changes.
    pub fn append(&mut self, entries: &[E]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(entries.len() * E::BYTES);
        for e in entries {
            e.encode(&mut bytes);
        }
        let at = (self.len * E::BYTES) as u64;
        if let Err(e) = self.file.write_all_at(&bytes, at) {
            // A shorter file is still a valid (sparser) index; a failed cut is caught by
            // the sanity check on the next open.
            let _ = self.file.set_len(at);
            return Err(e);
        }
        self.len += entries.len();
        if let Some(memory) = &mut self.memory {
            memory.extend_from_slice(entries);
        }
        Ok(())
    }

    /// Removes entries from `len` on (undoes an append whose log write was rolled back).
    pub fn truncate(&mut self, len: usize) -> io::Result<()> {
        if len >= self.len {
            return Ok(());
        }
        self.file.set_len((len * E::BYTES) as u64)?;
        self.len = len;
        if let Some(memory) = &mut self.memory {
            memory.truncate(len);
        }
        Ok(())
    }

    /// Drops the in-memory copy: the segment is no longer active.
    pub fn seal(&mut self) {
        self.memory = None;
    }

    /// The last entry whose key is `<= target`, if the entries are in memory
    /// (`None` = search [`IndexFile::disk`] instead).
    pub fn floor_in_memory<K: Ord>(&self, target: K, key: impl Fn(&E) -> K) -> Option<Option<E>> {
        let memory = self.memory.as_ref()?;
        let n = memory.partition_point(|e| key(e) <= target);
        Some(n.checked_sub(1).map(|i| memory[i]))
    }

    /// A handle to search the committed entries on disk without holding any lock.
    pub fn disk(&self) -> DiskIndex<E> {
        DiskIndex {
            file: Arc::clone(&self.file),
            len: self.len,
            entry: PhantomData,
        }
    }
}

/// The committed entries of an index file, searched with positional reads.
pub(crate) struct DiskIndex<E: Entry> {
    file: Arc<File>,
    len: usize,
    entry: PhantomData<E>,
}

impl<E: Entry> DiskIndex<E> {
    /// Entry `i` (`i < len`).
    pub fn entry(&self, i: usize) -> io::Result<E> {
        debug_assert!(i < self.len, "entry {i} of {}", self.len);
        let mut buf = [0u8; 16];
        let buf = &mut buf[..E::BYTES];
        self.file.read_exact_at(buf, (i * E::BYTES) as u64)?;
        Ok(E::decode(buf))
    }

    /// How many leading entries satisfy `below` (binary search; `below` must hold for a
    /// prefix of the entries and fail for the rest, as a key `<=` a target does).
    pub fn partition_point(&self, below: impl Fn(&E) -> bool) -> io::Result<usize> {
        let (mut lo, mut hi) = (0usize, self.len);
        // Invariant: entries before `lo` satisfy `below`, entries from `hi` on do not.
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if below(&self.entry(mid)?) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The last entry whose key is `<= target` (binary search).
    pub fn floor<K: Ord>(&self, target: K, key: impl Fn(&E) -> K) -> io::Result<Option<E>> {
        match self.partition_point(|e| key(e) <= target)? {
            0 => Ok(None),
            n => self.entry(n - 1).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn offsets(n: u32) -> Vec<OffsetEntry> {
        (0..n)
            .map(|i| OffsetEntry {
                relative_offset: i * 10 + 5,
                position: i * 100 + 50,
            })
            .collect()
    }

    #[test]
    fn entries_round_trip_in_kafkas_layout() {
        let mut out = Vec::new();
        OffsetEntry {
            relative_offset: 1,
            position: 0x0102_0304,
        }
        .encode(&mut out);
        assert_eq!(out, [0, 0, 0, 1, 1, 2, 3, 4]);
        let mut out = Vec::new();
        let t = TimeEntry {
            timestamp: -2,
            relative_offset: 7,
        };
        t.encode(&mut out);
        assert_eq!(out.len(), 12);
        assert_eq!(TimeEntry::decode(&out), t);
    }

    #[test]
    fn offset_checks() {
        let e = offsets(3);
        assert!(check_offset_entries(&e, 1000, None).is_ok());
        assert!(check_offset_entries(&e, 250, None).is_err());
        assert!(check_offset_entries(&e, 1000, Some(25)).is_err());
        let mut swapped = e.clone();
        swapped.swap(0, 1);
        assert!(check_offset_entries(&swapped, 1000, None).is_err());
    }

    #[test]
    fn time_checks() {
        let e = [
            TimeEntry {
                timestamp: 1,
                relative_offset: 0,
            },
            TimeEntry {
                timestamp: 5,
                relative_offset: 3,
            },
        ];
        assert!(check_time_entries(&e, Some(3)).is_ok());
        assert!(check_time_entries(&e, Some(2)).is_err());
        assert!(check_time_entries(&e, None).is_err());
        assert!(check_time_entries(&[], None).is_ok());
        let flat = [
            e[0],
            TimeEntry {
                timestamp: 1,
                relative_offset: 3,
            },
        ];
        assert!(check_time_entries(&flat, Some(3)).is_err());
    }

    #[test]
    fn load_rejects_partial_entries_and_reports_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        assert!(load::<OffsetEntry>(&path).unwrap().is_none());
        std::fs::write(&path, [0u8; 12]).unwrap();
        assert!(load::<OffsetEntry>(&path).unwrap().is_none());
        std::fs::write(&path, [0u8; 16]).unwrap();
        assert_eq!(load::<OffsetEntry>(&path).unwrap().unwrap().len(), 2);
    }

    #[test]
    fn append_truncate_and_search() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        let mut index = IndexFile::write_new(&path, Vec::new(), true, false).unwrap();
        index.append(&offsets(4)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 32);
        assert_eq!(
            index.floor_in_memory(26, |e| e.relative_offset),
            Some(Some(offsets(4)[2]))
        );
        assert_eq!(
            index.disk().floor(26, |e| e.relative_offset).unwrap(),
            Some(offsets(4)[2])
        );
        assert_eq!(index.disk().floor(4, |e| e.relative_offset).unwrap(), None);
        index.truncate(2).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(
            index.floor_in_memory(u32::MAX, |e| e.relative_offset),
            Some(Some(offsets(4)[1]))
        );
        index.seal();
        assert!(index.floor_in_memory(26, |e| e.relative_offset).is_none());
        assert_eq!(
            index.disk().floor(u32::MAX, |e| e.relative_offset).unwrap(),
            Some(offsets(4)[1])
        );
        index.truncate(1).unwrap();
        assert_eq!(
            index.disk().floor(u32::MAX, |e| e.relative_offset).unwrap(),
            Some(offsets(4)[0])
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8);
    }

    proptest! {
        #[test]
        fn disk_and_memory_search_agree(n in 0u32..200, target in 0u32..2100) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.index");
            let index = IndexFile::write_new(&path, offsets(n), true, false).unwrap();
            let memory = index.floor_in_memory(target, |e| e.relative_offset).unwrap();
            let disk = index.disk().floor(target, |e| e.relative_offset).unwrap();
            prop_assert_eq!(memory, disk);
            let expected = offsets(n).into_iter().rfind(|e| e.relative_offset <= target);
            prop_assert_eq!(disk, expected);
        }
    }
}
