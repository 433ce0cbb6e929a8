//! Tests of `read_slice`: it finds exactly the batches the copying read found before it
//! existed (the oracle below is that read, over the segment files), however the walk
//! goes (header by header, or skipping through the offset index).

use std::os::unix::fs::FileExt;

use super::tests::{Fixture, START_MS};
use super::*;
use crate::batch::parse_header;
use crate::test_support::sized_batch;

/// One segment file as the oracle sees it: its bytes and `(position, header)` per batch.
struct SegmentFile {
    bytes: Vec<u8>,
    batches: Vec<(usize, BatchHeader)>,
}

fn segment_files(f: &Fixture) -> Vec<SegmentFile> {
    f.log_files()
        .iter()
        .map(|name| {
            let bytes = std::fs::read(f.path().join(name)).unwrap();
            let mut batches = Vec::new();
            let mut at = 0;
            while at < bytes.len() {
                let h = parse_header(&bytes[at..]).unwrap();
                batches.push((at, h));
                at += h.size_bytes();
            }
            SegmentFile { bytes, batches }
        })
        .collect()
}

/// What the copying read returned (`PartitionLog::read` before slices, then cut at
/// `upper` as `read_committed` did): the bytes and the offset after them, or `None`.
fn oracle(
    segments: &[SegmentFile],
    offset: i64,
    max_bytes: usize,
    min_one_batch: bool,
    upper: Option<i64>,
) -> Option<(Vec<u8>, i64)> {
    // The first batch holding `offset` or, in a gap, the next one.
    let (segment, first) = segments.iter().find_map(|s| {
        let i = s
            .batches
            .iter()
            .position(|(_, h)| h.last_offset() >= offset)?;
        Some((s, i))
    })?;
    let (position, header) = segment.batches[first];
    let first_bytes = header.size_bytes();
    let max_bytes = max_bytes.min(READ_BYTES_MAX);
    if first_bytes > max_bytes && !min_one_batch {
        return None;
    }
    let want = max_bytes
        .max(first_bytes)
        .min(segment.bytes.len() - position);
    let mut end = position;
    let mut next = None;
    for (at, h) in &segment.batches[first..] {
        if at + h.size_bytes() > position + want || upper.is_some_and(|u| h.base_offset >= u) {
            break;
        }
        end = at + h.size_bytes();
        next = Some(h.last_offset() + 1);
    }
    next.map(|next| (segment.bytes[position..end].to_vec(), next))
}

/// Every offset of the log, many sizes, both `min_one_batch`, several bounds: the slice
/// holds what the oracle returns, and `read` / `read_committed` return its bytes.
pub(super) fn check_slices_agree(f: &Fixture, log: &PartitionLog) {
    let segments = segment_files(f);
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let sizes: Vec<usize> = segments
        .iter()
        .flat_map(|s| s.batches.iter().map(|(_, h)| h.size_bytes()))
        .collect();
    let small = sizes.iter().copied().min().unwrap_or(100);
    let large = sizes.iter().copied().max().unwrap_or(100);
    let max_sizes = [
        0,
        1,
        small,
        small * 5 / 2,
        large - 1,
        large + small,
        4096,
        20_000,
        1 << 20,
    ];
    let mut checked = 0;
    for offset in start..=end {
        let uppers = [
            None,
            Some(offset),
            Some(offset + 1),
            Some(offset + 7),
            Some(end + 1),
        ];
        for max_bytes in max_sizes {
            for min_one_batch in [false, true] {
                for upper in uppers {
                    let expected = oracle(&segments, offset, max_bytes, min_one_batch, upper);
                    let slice = log
                        .read_slice(offset, max_bytes, min_one_batch, upper)
                        .unwrap();
                    let got = slice
                        .as_ref()
                        .map(|s| (s.read_to_bytes().unwrap().to_vec(), s.next_offset()));
                    assert_eq!(
                        got.as_ref().map(|(b, n)| (b.len(), *n)),
                        expected.as_ref().map(|(b, n)| (b.len(), *n)),
                        "offset {offset}, max_bytes {max_bytes}, min_one_batch {min_one_batch}, upper {upper:?}"
                    );
                    assert_eq!(got, expected);
                    checked += 1;
                }
                let copied = log.read(offset, max_bytes, min_one_batch).unwrap();
                let expected = oracle(&segments, offset, max_bytes, min_one_batch, None);
                assert_eq!(copied, expected.map(|(b, _)| b).unwrap_or_default());
            }
        }
    }
    assert!(checked > 0);
}

#[test]
fn slices_agree_with_the_copying_read() {
    // Dense index entries, small segments: walks skip through the index, stop at
    // segment ends, and start in every kind of batch.
    let f = Fixture::new(&[
        ("index.interval.bytes", "150"),
        ("internal.segment.bytes", "8192"),
    ]);
    let log = f.open();
    for i in 0..120i64 {
        let batch = match i % 10 {
            3 => sized_batch(5, 40, START_MS + i),
            7 => sized_batch(1, 700, START_MS + i),
            _ => sized_batch(1, 10, START_MS + i),
        };
        log.append(&batch).unwrap();
    }
    assert!(f.log_files().len() > 2);
    check_slices_agree(&f, &log);
}

#[test]
fn slices_agree_with_the_default_index_interval() {
    // Many small batches in one segment: long walks, where the index skips most.
    let f = Fixture::new(&[]);
    let log = f.open();
    for i in 0..400i64 {
        log.append(&sized_batch(1 + (i % 3) as usize, 30, START_MS + i))
            .unwrap();
    }
    check_slices_agree(&f, &log);
}

#[test]
fn slices_stop_before_the_last_stable_offset() {
    let f = Fixture::new(&[("index.interval.bytes", "100")]);
    let log = f.open();
    for i in 0..40 {
        log.append(&sized_batch(1, 20, START_MS + i)).unwrap();
    }
    // An open transaction from offset 40 on.
    let txn = |seq: i32| {
        let mut b = sized_batch(1, 20, START_MS);
        b[43..51].copy_from_slice(&7i64.to_be_bytes());
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        b[22] |= 0x10; // transactional
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    };
    log.append(&txn(0)).unwrap();
    for i in 0..20 {
        log.append(&sized_batch(1, 20, START_MS + i)).unwrap();
    }
    log.append(&txn(1)).unwrap();
    assert_eq!(log.last_stable_offset(), 40);
    let stable = Some(log.last_stable_offset());
    let whole = log.read_slice(0, 1 << 20, true, stable).unwrap().unwrap();
    assert_eq!(whole.next_offset(), 40);
    assert_eq!(
        log.read_committed(0, 1 << 20, true).unwrap(),
        whole.read_to_bytes().unwrap()
    );
    assert!(log.read_slice(40, 1 << 20, true, stable).unwrap().is_none());
    assert!(log.read_committed(45, 1 << 20, true).unwrap().is_empty());
    // Every bound, every start: as the oracle.
    check_slices_agree(&f, &log);
}

#[test]
fn slices_keep_the_read_errors() {
    let f = Fixture::new(&[]);
    let log = f.open();
    log.append(&sized_batch(3, 10, START_MS)).unwrap();
    assert!(matches!(
        log.read_slice(4, 100, true, None),
        Err(LogError::OffsetOutOfRange {
            requested: 4,
            log_start_offset: 0,
            log_end_offset: 3
        })
    ));
    assert!(log.read_slice(3, 100, true, None).unwrap().is_none());
    let slice = log.read_slice(1, 0, true, None).unwrap().unwrap();
    assert_eq!((slice.position(), slice.next_offset()), (0, 3));
    assert_eq!(slice.len_bytes(), sized_batch(3, 10, START_MS).len());
}

#[test]
fn a_slice_that_no_longer_holds_whole_batches_is_refused() {
    let f = Fixture::new(&[]);
    let log = f.open();
    log.append(&sized_batch(3, 10, START_MS)).unwrap();
    log.append(&sized_batch(3, 10, START_MS)).unwrap();
    let slice = log.read_slice(0, 1 << 20, true, None).unwrap().unwrap();
    // Cut the file under the slice, as nothing in the log ever does.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(f.path().join(format!("{:020}.log", 0)))
        .unwrap();
    file.set_len(slice.len_bytes() as u64 - 1).unwrap();
    assert!(slice.read_to_bytes().is_err());
    file.set_len(0).unwrap();
    file.write_all_at(&[0xff; 200], 0).unwrap();
    assert!(slice.read_to_bytes().is_err());
}
