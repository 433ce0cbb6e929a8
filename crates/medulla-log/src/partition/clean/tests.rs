//! Tests of log compaction on one partition: what a pass keeps, when it runs, the
//! checkpoint, crash points of the swap, and reads during and after cleaning.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use super::super::tests::{Fixture, START_MS};
use super::*;
use crate::batch::{Compression, check_crc, parse_header};
use crate::cleaner::{OffsetMap, Throttler};
use crate::test_support::{TestRecord, encode_batch};

/// One record as a consumer sees it: offset, key, value (`None` = tombstone).
type Row = (i64, String, Option<String>);

fn compacted(overrides: &[(&str, &str)]) -> Fixture {
    let mut all = vec![
        ("cleanup.policy", "compact"),
        ("internal.segment.bytes", "2048"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "1000"),
    ];
    all.extend_from_slice(overrides);
    Fixture::new(&all)
}

/// Everything appended, in offset order.
#[derive(Default)]
struct Model {
    rows: Vec<Row>,
}

impl Model {
    /// Appends one batch of `(key, value)` records with timestamps from `timestamp`.
    fn append(
        &mut self,
        log: &PartitionLog,
        records: &[(&str, Option<&str>)],
        codec: Compression,
        timestamp: i64,
    ) {
        let encoded: Vec<TestRecord> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v))| TestRecord::new(Some(k.as_bytes()), v.map(str::as_bytes), i as i64))
            .collect();
        let info = log
            .append(&encode_batch(&encoded, codec, timestamp, 0))
            .unwrap();
        for (i, (k, v)) in records.iter().enumerate() {
            self.rows.push((
                info.base_offset + i as i64,
                k.to_string(),
                v.map(str::to_owned),
            ));
        }
    }

    /// `rounds` batches of four updates over `keys` keys (values name the round).
    fn fill(&mut self, log: &PartitionLog, rounds: usize, keys: usize, codec: Compression) {
        for round in 0..rounds {
            let records: Vec<(String, String)> = (0..4)
                .map(|i| {
                    (
                        format!("k{}", (round * 3 + i * 5) % keys),
                        format!("v{round}-{i}"),
                    )
                })
                .collect();
            let refs: Vec<(&str, Option<&str>)> = records
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_str())))
                .collect();
            self.append(log, &refs, codec, START_MS);
        }
    }

    /// What a complete pass covering every offset below `map_end` keeps: the latest
    /// record of each key there (tombstones only with `keep_tombstones`), and
    /// everything from `map_end` on.
    fn compacted(&self, map_end: i64, keep_tombstones: bool) -> Vec<Row> {
        let mut latest: HashMap<&str, i64> = HashMap::new();
        for (offset, key, _) in self.rows.iter().filter(|r| r.0 < map_end) {
            latest.insert(key, *offset);
        }
        self.rows
            .iter()
            .filter(|(offset, key, value)| {
                *offset >= map_end
                    || (latest[key.as_str()] == *offset && (value.is_some() || keep_tombstones))
            })
            .cloned()
            .collect()
    }
}

/// Every record, read through `read` from the log start as a consumer reads (crossing
/// gaps), with each batch's CRC and the order of offsets checked.
fn contents(log: &PartitionLog) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20, true).unwrap();
        assert!(!bytes.is_empty(), "read at {offset} returned nothing");
        let mut at = 0;
        while at < bytes.len() {
            let header = parse_header(&bytes[at..]).unwrap();
            let batch_bytes = &bytes[at..at + header.size_bytes()];
            check_crc(batch_bytes, &header).unwrap();
            batch::check_stored_counts(&header).unwrap();
            batch::for_each_raw_record(batch_bytes, &header, batch::Deltas::Increasing, |r| {
                let o = header.base_offset + i64::from(r.offset_delta);
                if o >= offset {
                    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
                    rows.push((o, text(r.key.unwrap()), r.value.map(text)));
                }
                ControlFlow::Continue(())
            })
            .unwrap();
            offset = offset.max(header.last_offset() + 1);
            at += header.size_bytes();
        }
    }
    assert!(
        rows.windows(2).all(|w| w[0].0 < w[1].0),
        "offsets strictly increase"
    );
    rows
}

fn active_base(log: &PartitionLog) -> i64 {
    log.segment_summary().last().unwrap().0
}

/// One pass with a key map of `entries` keys.
fn clean_with(log: &PartitionLog, entries: usize) -> Option<CleanStats> {
    let mut map = OffsetMap::new(entries);
    let throttler = Throttler::new(f64::MAX);
    let stop = AtomicBool::new(false);
    let _claim = log.claim_cleaning().expect("no other pass runs");
    log.clean(&mut PassContext {
        map: &mut map,
        throttler: &throttler,
        stop: &stop,
    })
    .unwrap()
}

fn clean(log: &PartitionLog) -> Option<CleanStats> {
    clean_with(log, 1 << 16)
}

fn temporary_files(f: &Fixture) -> Vec<String> {
    std::fs::read_dir(f.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect()
}

#[test]
fn keeps_the_latest_record_per_key_at_its_offset() {
    let f = compacted(&[]);
    let log = f.open();
    let mut model = Model::default();
    model.fill(&log, 60, 7, Compression::None);
    assert_eq!(contents(&log), model.rows);
    let active = active_base(&log);
    assert!(active > 0 && log.segment_summary().len() > 3);
    let end = log.log_end_offset();

    let stats = clean(&log).expect("a fresh log is all dirty");
    let expected = model.compacted(active, true);
    assert_eq!(contents(&log), expected);
    assert_eq!(stats.first_dirty_offset, active);
    assert_eq!(
        stats.records_dropped as usize,
        model.rows.len() - expected.len()
    );
    assert!(stats.bytes_after < stats.bytes_before / 3, "{stats:?}");
    assert!(
        stats.segments_after < stats.segments_before,
        "small cleaned segments merge"
    );
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, end));
    // The active segment is untouched: every one of its records is still there.
    assert!(
        model
            .rows
            .iter()
            .filter(|r| r.0 >= active)
            .all(|r| expected.contains(r))
    );

    // Nothing new is dirty: no pass.
    assert!(log.cleanable().is_none());
    assert!(clean(&log).is_none());

    // Appends go on at the same offsets, and a restart (clean or not) reads the same.
    model.fill(&log, 1, 7, Compression::None);
    let now = contents(&log);
    drop(log);
    for clean_shutdown in [true, false] {
        let log = f.open_with(clean_shutdown);
        assert_eq!(contents(&log), now);
        assert_eq!(log.log_start_offset(), 0);
    }
}

#[test]
fn compressed_batches_are_rewritten_with_their_codec() {
    let f = compacted(&[]);
    let log = f.open();
    let mut model = Model::default();
    let codecs = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
        Compression::None,
    ];
    for (i, codec) in codecs.iter().cycle().take(50).enumerate() {
        model.fill(&log, 1, 5 + i % 3, *codec);
    }
    let codec_of = |log: &PartitionLog| -> HashMap<i64, Compression> {
        let mut out = HashMap::new();
        let mut offset = 0;
        while offset < log.log_end_offset() {
            let bytes = log.read(offset, 1 << 20, true).unwrap();
            let header = parse_header(&bytes).unwrap();
            out.insert(header.base_offset, header.compression().unwrap());
            offset = header.last_offset() + 1;
        }
        out
    };
    let before = codec_of(&log);
    clean(&log).unwrap();
    assert_eq!(contents(&log), model.compacted(active_base(&log), true));
    let after = codec_of(&log);
    assert!(after.len() < before.len());
    for (base, codec) in after {
        assert_eq!(before[&base], codec, "batch {base} keeps its codec");
    }
}

#[test]
fn tombstones_stay_for_delete_retention_then_go() {
    let f = compacted(&[]);
    let log = f.open();
    let mut model = Model::default();
    model.fill(&log, 20, 6, Compression::None);
    model.append(
        &log,
        &[("k1", None), ("k2", None)],
        Compression::Lz4,
        START_MS,
    );
    model.fill(&log, 20, 3, Compression::None); // k0..k2 again: k1, k2 come back
    model.append(&log, &[("k4", None)], Compression::None, START_MS);
    model.fill(&log, 10, 2, Compression::None); // k0, k1
    let active = active_base(&log);
    let tombstone = model
        .rows
        .iter()
        .find(|r| r.1 == "k4" && r.2.is_none())
        .unwrap()
        .0;
    assert!(tombstone < active);

    clean(&log).unwrap();
    assert_eq!(contents(&log), model.compacted(active, true));
    assert!(
        contents(&log).iter().any(|r| r.0 == tombstone),
        "kept for now"
    );

    // Before the horizon (first pass + delete.retention.ms): no pass, tombstone kept.
    f.clock.advance(999);
    assert!(log.cleanable().is_none());
    // At the horizon the partition is due although nothing new is dirty.
    f.clock.advance(1);
    assert_eq!(log.cleanable().map(|c| c.forced), Some(true));
    clean(&log).unwrap();
    assert_eq!(contents(&log), model.compacted(active, false));
    assert!(log.cleanable().is_none());
}

#[test]
fn min_compaction_lag_keeps_young_segments_dirty() {
    let f = compacted(&[("min.compaction.lag.ms", "10000")]);
    let log = f.open();
    let mut model = Model::default();
    for _ in 0..60 {
        model.append(
            &log,
            &[("a", Some("old")), ("b", Some("old"))],
            Compression::None,
            START_MS,
        );
    }
    let young_from = log.log_end_offset();
    for _ in 0..40 {
        model.append(
            &log,
            &[("a", Some("young")), ("b", Some("young"))],
            Compression::None,
            START_MS + 5_000,
        );
    }
    // The segment holding both old and young records is young (its largest timestamp).
    f.clock.set(START_MS + 10_001);
    let stats = clean(&log).unwrap();
    let first_young_segment = log
        .segment_summary()
        .iter()
        .map(|s| s.0)
        .filter(|b| *b <= young_from)
        .max()
        .unwrap();
    assert_eq!(stats.first_dirty_offset, first_young_segment);
    assert_eq!(contents(&log), model.compacted(first_young_segment, true));
    // Once the lag has passed for them, the young records are cleaned too.
    f.clock.set(START_MS + 15_001);
    clean(&log).unwrap();
    assert_eq!(contents(&log), model.compacted(active_base(&log), true));
}

#[test]
fn max_compaction_lag_forces_a_pass_below_the_ratio_and_rolls() {
    let f = compacted(&[
        ("min.cleanable.dirty.ratio", "0.9"),
        ("max.compaction.lag.ms", "60000"),
    ]);
    let log = f.open();
    let mut model = Model::default();
    model.fill(&log, 40, 40, Compression::None);
    clean(&log).unwrap();
    // A little new dirt: far below the ratio.
    model.fill(&log, 10, 40, Compression::None);
    model.append(&log, &[("roll", Some("x"))], Compression::None, START_MS);
    let cleanable = |log: &PartitionLog| log.cleanable();
    assert!(cleanable(&log).is_none());
    f.clock.set(START_MS + 70_000);
    // The active segment rolls once max.compaction.lag.ms has passed (Kafka's
    // maxSegmentMs), so its records can be cleaned in time too.
    let before_roll = active_base(&log);
    model.append(
        &log,
        &[("after", Some("roll"))],
        Compression::None,
        START_MS + 70_000,
    );
    assert!(active_base(&log) > before_roll);
    assert_eq!(cleanable(&log).map(|c| c.forced), Some(true));
    assert!(cleanable(&log).unwrap().dirty_ratio < 0.9);
    clean(&log).unwrap();
    assert_eq!(contents(&log), model.compacted(active_base(&log), true));
}

#[test]
fn compact_delete_applies_both() {
    let f = compacted(&[
        ("cleanup.policy", "compact,delete"),
        ("retention.ms", "5000"),
    ]);
    let log = f.open();
    let mut model = Model::default();
    model.fill(&log, 40, 5, Compression::None);
    f.clock.set(START_MS + 1_000);
    for round in 0..20 {
        let value = format!("late-{round}");
        model.append(
            &log,
            &[("late", Some(value.as_str()))],
            Compression::Zstd,
            START_MS + 3_000,
        );
    }
    clean(&log).unwrap();
    let active = active_base(&log);
    assert_eq!(contents(&log), model.compacted(active, true));
    // Past retention.ms for every sealed (cleaned) segment: they go, the active stays.
    f.clock.set(START_MS + 9_000);
    assert!(log.enforce_retention().unwrap() > 0);
    let start = log.log_start_offset();
    assert_eq!(start, active);
    let expected: Vec<Row> = model
        .compacted(active, true)
        .into_iter()
        .filter(|r| r.0 >= start)
        .collect();
    assert_eq!(contents(&log), expected);
    assert!(expected.iter().any(|r| r.1 == "late"));
}

#[test]
fn checkpoint_survives_reopen() {
    let f = compacted(&[]);
    let log = f.open();
    let mut model = Model::default();
    model.fill(&log, 40, 5, Compression::None);
    assert_eq!(log.cleaner_checkpoint(), None);
    let stats = clean(&log).unwrap();
    let active = active_base(&log);
    assert_eq!(log.cleaner_checkpoint(), Some(active));
    assert_eq!(stats.first_dirty_offset, active);
    drop(log);
    let log = f.open_with(false);
    assert_eq!(log.cleaner_checkpoint(), Some(active));
    assert!(
        log.cleanable().is_none(),
        "nothing is re-cleaned after a restart"
    );
    // New records past the checkpoint are what the next pass covers.
    model.fill(&log, 40, 5, Compression::None);
    let stats = clean(&log).unwrap();
    assert_eq!(stats.first_dirty_offset, active_base(&log));
    assert_eq!(contents(&log), model.compacted(active_base(&log), true));
}

#[test]
fn a_full_key_map_cleans_as_far_as_it_reaches() {
    let f = compacted(&[("internal.segment.bytes", "4096")]);
    let log = f.open();
    let mut model = Model::default();
    for round in 0..2 {
        for chunk in 0..30 {
            let records: Vec<(String, String)> = (0..10)
                .map(|i| (format!("key-{}", chunk * 10 + i), format!("r{round}")))
                .collect();
            let refs: Vec<(&str, Option<&str>)> = records
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_str())))
                .collect();
            model.append(&log, &refs, Compression::None, START_MS);
        }
    }
    model.append(&log, &[("roll", Some("x"))], Compression::None, START_MS);
    // 600 records over 300 keys; a map of 100 keys covers 100 offsets a pass.
    let first = clean_with(&log, 100).unwrap();
    assert_eq!((first.first_dirty_offset, first.records_dropped), (100, 0));
    assert_eq!(log.cleaner_checkpoint(), Some(100));
    let mut checkpoints = vec![100];
    while let Some(stats) = clean_with(&log, 100) {
        checkpoints.push(stats.first_dirty_offset);
        assert_eq!(
            contents(&log),
            model.compacted(stats.first_dirty_offset, true)
        );
    }
    let active = active_base(&log);
    assert_eq!(checkpoints.last(), Some(&active));
    assert!(
        checkpoints.windows(2).all(|w| w[0] < w[1]),
        "{checkpoints:?}"
    );
    assert_eq!(contents(&log), model.compacted(active, true));
}

#[test]
fn a_read_inside_a_gap_gets_the_next_surviving_batch() {
    let f = compacted(&[]);
    let log = f.open();
    let mut model = Model::default();
    model.fill(&log, 60, 4, Compression::Lz4);
    clean(&log).unwrap();
    let rows = contents(&log);
    assert!(log.segment_summary().len() > 1);
    assert!(rows[0].0 > 0, "the first records were superseded");
    for offset in 0..log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20, true).unwrap();
        let header = parse_header(&bytes).unwrap();
        let next = rows.iter().find(|r| r.0 >= offset).unwrap().0;
        assert!(
            header.base_offset <= next && next <= header.last_offset(),
            "read at {offset} returned batch {}..={}, the next record is {next}",
            header.base_offset,
            header.last_offset()
        );
    }
}

#[test]
fn emptied_first_segments_keep_the_log_start() {
    let f = compacted(&[]);
    let log = f.open();
    let mut model = Model::default();
    // Segments of old values only, each too large to merge with the next.
    let old = "o".repeat(300);
    for _ in 0..20 {
        model.append(
            &log,
            &[("a", Some(&old)), ("b", Some(&old))],
            Compression::None,
            START_MS,
        );
    }
    model.append(
        &log,
        &[("a", Some("new")), ("b", Some("new"))],
        Compression::None,
        START_MS,
    );
    model.append(
        &log,
        &[("c", Some(&old)), ("d", Some(&old))],
        Compression::None,
        START_MS,
    );
    model.append(
        &log,
        &[("c", Some(&old)), ("d", Some(&old))],
        Compression::None,
        START_MS,
    );
    let first_segments = log.segment_summary().len();
    clean(&log).unwrap();
    assert!(log.segment_summary().len() < first_segments);
    assert!(
        log.segment_summary()[0].0 > 0,
        "the first segments were emptied"
    );
    assert_eq!(log.log_start_offset(), 0);
    let expected = model.compacted(active_base(&log), true);
    assert_eq!(contents(&log), expected);
    drop(log);
    let log = f.open_with(false);
    assert_eq!(log.log_start_offset(), 0, "a restart keeps the log start");
    assert_eq!(contents(&log), expected);
}

/// Every crash point of a swap: the directory as a SIGKILL leaves it, opened after an
/// unclean shutdown, holds either the original group or its cleaned form (never a
/// duplicate or a missing surviving offset), no temporary file, and the next pass
/// finishes the job.
#[test]
fn a_crash_at_any_point_of_a_swap_loses_nothing() {
    for point in [
        CrashPoint::Cleaned,
        CrashPoint::IndexesSwapped,
        CrashPoint::Swapped,
        CrashPoint::OldRemoved,
        CrashPoint::IndexesLive,
    ] {
        // One batch a segment (segment.ms), so the first group merges several.
        let f = compacted(&[("segment.ms", "1000")]);
        let log = f.open();
        let mut model = Model::default();
        for _ in 0..12 {
            model.fill(&log, 1, 3, Compression::Gzip);
            f.clock.advance(1_001);
        }
        let before = contents(&log);
        let end = log.log_end_offset();
        let expected = model.compacted(active_base(&log), true);
        log.crash_cleaner_at(point);
        assert!(
            clean(&log).is_none(),
            "{point:?}: the pass stops at the crash"
        );
        drop(log);

        let log = f.open_with(false);
        assert!(
            temporary_files(&f).is_empty(),
            "{point:?}: {:?}",
            temporary_files(&f)
        );
        let recovered = contents(&log);
        assert_eq!(log.log_end_offset(), end, "{point:?}");
        assert!(
            recovered.iter().all(|r| before.contains(r)),
            "{point:?}: only original records"
        );
        assert!(
            expected.iter().all(|r| recovered.contains(r)),
            "{point:?}: every surviving record is there"
        );
        let committed = !matches!(point, CrashPoint::Cleaned | CrashPoint::IndexesSwapped);
        assert_eq!(recovered.len() < before.len(), committed, "{point:?}");
        assert_eq!(
            log.cleaner_checkpoint(),
            None,
            "{point:?}: the pass did not finish"
        );

        clean(&log).unwrap();
        assert_eq!(contents(&log), expected, "{point:?}");
        let cleaned_until = active_base(&log);
        model.fill(&log, 1, 3, Compression::None);
        drop(log);
        let log = f.open_with(false);
        assert_eq!(
            contents(&log),
            model.compacted(cleaned_until, true),
            "{point:?}"
        );
    }
}

#[test]
fn reads_during_cleaning_see_a_consistent_log() {
    let f = compacted(&[]);
    let log = Arc::new(f.open());
    let mut model = Model::default();
    model.fill(&log, 80, 9, Compression::Snappy);
    // Everything appended so far (offset = index), published before each pass.
    let written = Arc::new(Mutex::new(model.rows.clone()));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let log = Arc::clone(&log);
        let done = Arc::clone(&done);
        let written = Arc::clone(&written);
        std::thread::spawn(move || {
            let mut reads = 0;
            while !done.load(Ordering::SeqCst) || reads == 0 {
                let known = written.lock().unwrap().clone();
                for row in contents(&log) {
                    if let Some(original) = known.get(row.0 as usize) {
                        assert_eq!(&row, original);
                    }
                }
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..5 {
        model.fill(&log, 20, 9, Compression::Snappy);
        *written.lock().unwrap() = model.rows.clone();
        clean(&log).unwrap();
    }
    done.store(true, Ordering::SeqCst);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(contents(&log), model.compacted(active_base(&log), true));
}

/// A transactional batch of `(key, value)` records from producer `pid`.
fn txn_batch(pid: i64, seq: i32, records: &[(&str, &str)]) -> Vec<u8> {
    let encoded: Vec<TestRecord> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| TestRecord::new(Some(k.as_bytes()), Some(v.as_bytes()), i as i64))
        .collect();
    let mut b = encode_batch(&encoded, Compression::None, START_MS, 0x10);
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn marker(pid: i64, commit: bool) -> TxnMarker {
    TxnMarker {
        producer_id: pid,
        producer_epoch: 0,
        commit,
        coordinator_epoch: 0,
    }
}

#[test]
fn aborted_records_never_displace_committed_ones_and_open_transactions_stay_dirty() {
    let f = compacted(&[]);
    let log = f.open();
    let mut model = Model::default();
    model.append(
        &log,
        &[("a", Some("committed")), ("b", Some("committed"))],
        Compression::None,
        START_MS,
    );
    log.append(&txn_batch(9, 0, &[("a", "aborted"), ("b", "aborted")]))
        .unwrap();
    log.append_marker(&marker(9, false)).unwrap();
    log.append(&txn_batch(10, 0, &[("b", "won")])).unwrap();
    log.append_marker(&marker(10, true)).unwrap();
    model.fill(&log, 20, 7, Compression::None);
    // An open transaction in a sealed segment: it and everything after stay dirty.
    let open = log.append(&txn_batch(11, 0, &[("a", "open")])).unwrap();
    model.fill(&log, 20, 7, Compression::None);
    assert!(
        active_base(&log) > open.base_offset + 1,
        "the open transaction is sealed"
    );

    clean(&log).expect("dirty");
    let rows = contents(&log);
    let value = |key: &str| {
        rows.iter()
            .filter(|r| r.1 == key && r.0 < open.base_offset)
            .map(|r| r.2.clone().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(value("a"), vec!["committed"]);
    assert_eq!(value("b"), vec!["won"]);
    assert!(rows.iter().all(|r| r.2.as_deref() != Some("aborted")));
    // Nothing at or past the open transaction was cleaned.
    let from_open: Vec<i64> = rows
        .iter()
        .map(|r| r.0)
        .filter(|o| *o >= open.base_offset)
        .collect();
    let expected: Vec<i64> = std::iter::once(open.base_offset)
        .chain(
            model
                .rows
                .iter()
                .map(|r| r.0)
                .filter(|o| *o > open.base_offset),
        )
        .collect();
    assert_eq!(from_open, expected);
    assert_eq!(
        log.cleaner_checkpoint(),
        Some(
            log.segment_summary()
                .iter()
                .map(|s| s.0)
                .filter(|b| *b <= open.base_offset)
                .max()
                .unwrap()
        )
    );
}

#[test]
fn slices_cross_the_gaps_compaction_leaves() {
    let f = compacted(&[("index.interval.bytes", "64")]);
    let log = f.open();
    let mut model = Model::default();
    model.fill(&log, 60, 7, Compression::None);
    clean(&log).expect("a fresh log is all dirty");
    let expected = model.compacted(active_base(&log), true);
    assert!(
        expected.len() < model.rows.len() / 2,
        "compaction left gaps"
    );
    assert_eq!(contents(&log), expected);
    super::super::slice_tests::check_slices_agree(&f, &log);
}
