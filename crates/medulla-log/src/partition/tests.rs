//! Tests of one partition log: offsets, reads, rolls, indexes, timestamps, retention,
//! durability and recovery.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Barrier};

use super::*;
use crate::batch::{Compression, parse_header, validate};
use crate::test_support::{FakeClock, TestRecord, encode_batch, simple_batch, sized_batch};

pub(super) const START_MS: i64 = 1_700_000_000_000;

pub(super) fn config(overrides: &[(&str, &str)]) -> Arc<TopicConfig> {
    let overrides: BTreeMap<String, String> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Arc::new(TopicConfig::resolve(&BTreeMap::new(), &overrides).unwrap())
}

pub(super) struct Fixture {
    pub dir: tempfile::TempDir,
    pub clock: Arc<FakeClock>,
    pub config: Arc<TopicConfig>,
    pub fsync: FsyncPolicy,
}

impl Fixture {
    pub fn new(overrides: &[(&str, &str)]) -> Fixture {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            clock: FakeClock::new(START_MS),
            config: config(overrides),
            fsync: FsyncPolicy::Always,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn open_with(&self, clean_shutdown: bool) -> PartitionLog {
        PartitionLog::open(OpenPartition {
            topic: "t".into(),
            partition: 0,
            dir: self.dir.path().to_path_buf(),
            config: Arc::clone(&self.config),
            clock: self.clock.clone(),
            fsync: self.fsync,
            clean_shutdown,
        })
        .unwrap()
    }

    pub fn open(&self) -> PartitionLog {
        self.open_with(true)
    }

    pub fn log_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".log"))
            .collect();
        names.sort();
        names
    }
}

/// Splits read bytes into headers.
fn batches(bytes: &[u8]) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = parse_header(&bytes[at..]).unwrap();
        at += h.size_bytes();
        out.push(h);
    }
    assert_eq!(at, bytes.len(), "reads return whole batches only");
    out
}

/// Every record's (offset, timestamp), read back through the public API.
fn all_records(log: &PartitionLog) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20, true).unwrap();
        let mut at = 0;
        while at < bytes.len() {
            let h = parse_header(&bytes[at..]).unwrap();
            let batch = &bytes[at..at + h.size_bytes()];
            batch::for_each_record(batch, &h, |r| {
                let o = h.base_offset + r.offset_delta as i64;
                if o >= log.log_start_offset() {
                    out.push((o, r.timestamp));
                }
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
            offset = h.last_offset() + 1;
            at += h.size_bytes();
        }
    }
    out
}

#[test]
fn appends_get_consecutive_offsets_and_only_offset_and_epoch_change() {
    let f = Fixture::new(&[]);
    let log = f.open();
    let first = simple_batch(3, START_MS);
    let info = log.append(&first).unwrap();
    assert_eq!(
        (
            info.base_offset,
            info.last_offset,
            info.log_append_time_ms,
            info.log_start_offset
        ),
        (0, 2, -1, 0)
    );
    let mut two = simple_batch(2, START_MS);
    two.extend(encode_batch(
        &[TestRecord::new(None, Some(b"x"), 0)],
        Compression::Gzip,
        START_MS,
        0,
    ));
    let info = log.append(&two).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (3, 5));
    assert_eq!(log.log_end_offset(), 6);

    let bytes = log.read(0, 1 << 20, true).unwrap();
    let headers = batches(&bytes);
    assert_eq!(
        headers.iter().map(|h| h.base_offset).collect::<Vec<_>>(),
        vec![0, 3, 5]
    );
    assert!(headers.iter().all(|h| h.partition_leader_epoch == 0));
    // Byte for byte as produced outside the patched ranges, and the CRC still holds.
    let stored = &bytes[..first.len()];
    assert_eq!(stored[8..12], first[8..12]);
    assert_eq!(stored[16..], first[16..]);
    assert_eq!(validate(&bytes, 1 << 20, false).unwrap().records_count, 6);
    assert_eq!(log.size_bytes(), bytes.len() as u64);
}

#[test]
fn read_ranges_and_sizes() {
    let f = Fixture::new(&[]);
    let log = f.open();
    for _ in 0..4 {
        log.append(&simple_batch(5, START_MS)).unwrap();
    }
    let one = simple_batch(5, START_MS).len();
    assert!(matches!(
        log.read(21, 100, true),
        Err(LogError::OffsetOutOfRange {
            requested: 21,
            log_start_offset: 0,
            log_end_offset: 20
        })
    ));
    assert!(matches!(
        log.read(-1, 100, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(log.read(20, 100, true).unwrap().is_empty());
    // An offset inside a batch returns the whole batch.
    assert_eq!(batches(&log.read(7, one, false).unwrap())[0].base_offset, 5);
    // Never a partial batch: 2.5 batches of room gives 2.
    assert_eq!(batches(&log.read(0, one * 5 / 2, false).unwrap()).len(), 2);
    // A first batch larger than max_bytes comes whole only with min_one_batch.
    assert_eq!(batches(&log.read(0, 10, true).unwrap()).len(), 1);
    assert!(log.read(0, 10, false).unwrap().is_empty());
    assert_eq!(batches(&log.read(0, 0, true).unwrap()).len(), 1);
}

#[test]
fn log_append_time_stamps_batches_and_rewrites_the_crc() {
    let f = Fixture::new(&[("message.timestamp.type", "LogAppendTime")]);
    let log = f.open();
    f.clock.set(START_MS + 5_000);
    let info = log
        .append(&encode_batch(
            &[TestRecord::new(None, Some(b"v"), 3)],
            Compression::Zstd,
            10,
            0,
        ))
        .unwrap();
    assert_eq!(info.log_append_time_ms, START_MS + 5_000);
    let bytes = log.read(0, 1 << 20, true).unwrap();
    let h = parse_header(&bytes).unwrap();
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, START_MS + 5_000);
    assert_eq!(
        h.base_timestamp, 10,
        "only maxTimestamp and the type bit change"
    );
    validate(&bytes, 1 << 20, false).unwrap();
    assert_eq!(
        log.lookup_timestamp(START_MS).unwrap(),
        Some(TimestampLookup {
            offset: 0,
            timestamp: START_MS + 5_000
        })
    );
    assert_eq!(
        log.max_timestamp().unwrap().unwrap().timestamp,
        START_MS + 5_000
    );
}

#[test]
fn producers_cannot_set_log_append_time() {
    let f = Fixture::new(&[]);
    let log = f.open();
    let batch = encode_batch(
        &[TestRecord::new(None, Some(b"v"), 0)],
        Compression::None,
        0,
        ATTR_LOG_APPEND_TIME,
    );
    assert!(matches!(
        log.append(&batch),
        Err(LogError::InvalidRecord(_))
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn a_wrong_max_timestamp_is_corrected() {
    let f = Fixture::new(&[]);
    let log = f.open();
    let mut batch = simple_batch(3, 1_000);
    batch::set_max_timestamp(&mut batch, 5, false);
    log.append(&batch).unwrap();
    let bytes = log.read(0, 1 << 20, true).unwrap();
    assert_eq!(parse_header(&bytes).unwrap().max_timestamp, 1_002);
    validate(&bytes, 1 << 20, false).unwrap();
}

#[test]
fn append_is_all_or_nothing() {
    let f = Fixture::new(&[]);
    let log = f.open();
    log.append(&simple_batch(2, START_MS)).unwrap();
    let size = log.size_bytes();
    let mut payload = simple_batch(2, START_MS);
    let mut bad = simple_batch(2, START_MS);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    payload.extend(bad);
    assert!(matches!(
        log.append(&payload),
        Err(LogError::CorruptMessage(_))
    ));
    assert_eq!((log.log_end_offset(), log.size_bytes()), (2, size));

    // A write that fails halfway is cut back on disk too.
    log.fail_next_write();
    assert!(matches!(
        log.append(&simple_batch(3, START_MS)),
        Err(LogError::Io(_))
    ));
    assert_eq!((log.log_end_offset(), log.size_bytes()), (2, size));
    assert_eq!(
        std::fs::metadata(f.path().join(&f.log_files()[0]))
            .unwrap()
            .len(),
        size
    );
    let info = log.append(&simple_batch(3, START_MS)).unwrap();
    assert_eq!(info.base_offset, 2);
    assert_eq!(all_records(&log).len(), 5);
    drop(log);
    assert_eq!(f.open_with(false).log_end_offset(), 5);
}

#[test]
fn message_and_segment_size_limits() {
    let f = Fixture::new(&[
        ("max.message.bytes", "200"),
        ("internal.segment.bytes", "150"),
    ]);
    let log = f.open();
    let big = sized_batch(1, 300, START_MS);
    assert!(matches!(
        log.append(&big),
        Err(LogError::MessageTooLarge { max_bytes: 200, .. })
    ));
    let medium = sized_batch(1, 100, START_MS);
    assert!(medium.len() > 150 && medium.len() <= 200);
    assert!(matches!(
        log.append(&medium),
        Err(LogError::MessageTooLarge { max_bytes: 150, .. })
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn segments_roll_on_size_and_reads_cross_them() {
    let f = Fixture::new(&[("internal.segment.bytes", "1024")]);
    let log = f.open();
    let batch = sized_batch(2, 150, START_MS);
    for _ in 0..20 {
        log.append(&batch).unwrap();
    }
    let per_segment = 1024 / batch.len();
    let files = f.log_files();
    assert_eq!(files.len(), 20usize.div_ceil(per_segment));
    assert_eq!(files[1], format!("{:020}.log", per_segment * 2));
    for name in &files {
        assert!(std::fs::metadata(f.path().join(name)).unwrap().len() <= 1024);
        let stem = name.trim_end_matches(".log");
        assert!(f.path().join(format!("{stem}.index")).exists());
        assert!(f.path().join(format!("{stem}.timeindex")).exists());
    }
    for offset in 0..40 {
        let h = parse_header(&log.read(offset, 1, true).unwrap()).unwrap();
        assert!(h.base_offset <= offset && offset <= h.last_offset());
    }
    // A read stops at the end of a segment.
    assert_eq!(
        batches(&log.read(0, 1 << 20, true).unwrap()).len(),
        per_segment
    );
    assert_eq!(all_records(&log).len(), 40);
}

#[test]
fn segments_roll_on_age_by_the_clock() {
    let f = Fixture::new(&[("segment.ms", "1000")]);
    let log = f.open();
    log.append(&simple_batch(1, START_MS)).unwrap();
    f.clock.advance(1_000);
    log.append(&simple_batch(1, START_MS + 1_000)).unwrap();
    assert_eq!(f.log_files().len(), 1, "not older than segment.ms yet");
    f.clock.advance(1);
    log.append(&simple_batch(1, START_MS + 1_001)).unwrap();
    assert_eq!(
        f.log_files(),
        vec![format!("{:020}.log", 0), format!("{:020}.log", 2)]
    );
    // The new segment's age counts from its own first batch.
    f.clock.advance(500);
    log.append(&simple_batch(1, START_MS + 1_501)).unwrap();
    assert_eq!(f.log_files().len(), 2);
}

#[test]
fn index_entries_every_interval_and_lookups_use_them() {
    let f = Fixture::new(&[("index.interval.bytes", "100")]);
    let log = f.open();
    let batch = sized_batch(1, 100, START_MS);
    for i in 0..50 {
        log.append(&sized_batch(1, 100, START_MS + i)).unwrap();
    }
    let summary = log.segment_summary();
    // Kafka's rule: an entry before a batch once more than the interval has passed since
    // the last one; every batch here is bigger than the interval, so all but the first.
    assert_eq!(summary, vec![(0, 49, 49)]);
    assert_eq!(
        std::fs::metadata(f.path().join(format!("{:020}.index", 0)))
            .unwrap()
            .len(),
        49 * 8
    );
    assert_eq!(
        std::fs::metadata(f.path().join(format!("{:020}.timeindex", 0)))
            .unwrap()
            .len(),
        49 * 12
    );
    for offset in [0, 1, 17, 49] {
        assert_eq!(
            parse_header(&log.read(offset, batch.len(), false).unwrap())
                .unwrap()
                .base_offset,
            offset
        );
    }
}

#[test]
fn the_index_file_limit_rolls_the_segment() {
    let f = Fixture::new(&[("index.interval.bytes", "0"), ("segment.index.bytes", "24")]);
    let log = f.open();
    for _ in 0..10 {
        log.append(&simple_batch(1, START_MS)).unwrap();
    }
    // 24 bytes hold three offset entries but only two time entries.
    assert!(
        log.segment_summary()
            .iter()
            .all(|(_, o, t)| *o <= 3 && *t <= 2)
    );
    assert!(log.segment_summary().len() > 1);
    assert_eq!(all_records(&log).len(), 10);
}

/// Builds a log of compressed batches with shuffled timestamps over several segments.
fn timestamp_log(f: &Fixture) -> (PartitionLog, Vec<(i64, i64)>) {
    let log = f.open();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for i in 0..40i64 {
        // Non-monotonic on purpose: CreateTime comes from clients.
        let base = START_MS + (i * 7919) % 100 * 10;
        let records: Vec<TestRecord> = (0..4)
            .map(|r| TestRecord::new(Some(b"k"), Some(&[0u8; 60]), (r * 3 + i) % 7 - 2))
            .collect();
        log.append(&encode_batch(&records, codecs[i as usize % 5], base, 0))
            .unwrap();
    }
    let records = all_records(&log);
    assert_eq!(records.len(), 160);
    (log, records)
}

fn expected_lookup(records: &[(i64, i64)], ts: i64) -> Option<TimestampLookup> {
    records
        .iter()
        .find(|(_, t)| *t >= ts)
        .map(|&(offset, timestamp)| TimestampLookup { offset, timestamp })
}

fn expected_max(records: &[(i64, i64)]) -> Option<TimestampLookup> {
    let max = records.iter().map(|r| r.1).max()?;
    expected_lookup(records, max)
}

#[test]
fn timestamp_lookups_are_record_level() {
    let f = Fixture::new(&[
        ("internal.segment.bytes", "2000"),
        ("index.interval.bytes", "150"),
    ]);
    let (log, records) = timestamp_log(&f);
    assert!(f.log_files().len() > 2);
    for ts in (START_MS - 10..START_MS + 1_020).step_by(3) {
        assert_eq!(
            log.lookup_timestamp(ts).unwrap(),
            expected_lookup(&records, ts),
            "ts {ts}"
        );
    }
    assert_eq!(
        log.lookup_timestamp(i64::MIN).unwrap(),
        expected_lookup(&records, i64::MIN)
    );
    assert_eq!(log.lookup_timestamp(START_MS + 10_000).unwrap(), None);
    assert_eq!(log.max_timestamp().unwrap(), expected_max(&records));
}

#[test]
fn timestamp_lookups_respect_the_log_start() {
    let f = Fixture::new(&[
        ("internal.segment.bytes", "2000"),
        ("index.interval.bytes", "150"),
    ]);
    let (log, records) = timestamp_log(&f);
    for start in [3, 37, 90, 159] {
        log.delete_records_before(start).unwrap();
        let rest: Vec<(i64, i64)> = records.iter().copied().filter(|r| r.0 >= start).collect();
        for ts in (START_MS - 10..START_MS + 1_020).step_by(17) {
            assert_eq!(
                log.lookup_timestamp(ts).unwrap(),
                expected_lookup(&rest, ts),
                "start {start} ts {ts}"
            );
        }
        assert_eq!(
            log.max_timestamp().unwrap(),
            expected_max(&rest),
            "start {start}"
        );
    }
    log.delete_records_before(-1).unwrap();
    assert_eq!(log.max_timestamp().unwrap(), None);
    assert_eq!(log.lookup_timestamp(0).unwrap(), None);
}

#[test]
fn empty_log_has_no_timestamps() {
    let f = Fixture::new(&[]);
    let log = f.open();
    assert_eq!(log.max_timestamp().unwrap(), None);
    assert_eq!(log.lookup_timestamp(0).unwrap(), None);
}

#[test]
fn delete_records_moves_the_start_and_survives_restart() {
    let f = Fixture::new(&[("internal.segment.bytes", "600")]);
    let log = f.open();
    for _ in 0..10 {
        log.append(&sized_batch(2, 100, START_MS)).unwrap();
    }
    let segments_before = f.log_files().len();
    assert!(matches!(
        log.delete_records_before(21),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.delete_records_before(-2),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records_before(5).unwrap(), 5);
    assert_eq!(log.delete_records_before(3).unwrap(), 5, "never moves back");
    assert_eq!(log.log_start_offset(), 5);
    assert!(matches!(
        log.read(4, 100, true),
        Err(LogError::OffsetOutOfRange {
            log_start_offset: 5,
            ..
        })
    ));
    assert_eq!(
        parse_header(&log.read(5, 1, true).unwrap())
            .unwrap()
            .base_offset,
        4
    );
    assert!(
        f.log_files().len() < segments_before,
        "segments wholly below the start are gone"
    );
    assert_eq!(
        log.append(&simple_batch(1, START_MS))
            .unwrap()
            .log_start_offset,
        5
    );
    drop(log);
    let log = f.open_with(false);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (5, 21));
    assert_eq!(log.delete_records_before(-1).unwrap(), 21);
    assert!(log.read(21, 100, true).unwrap().is_empty());
    drop(log);
    let log = f.open();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (21, 21));
    assert_eq!(
        log.append(&simple_batch(1, START_MS)).unwrap().base_offset,
        21
    );
}

#[test]
fn retention_by_time_deletes_old_sealed_segments_only() {
    let f = Fixture::new(&[("internal.segment.bytes", "600"), ("retention.ms", "10000")]);
    let log = f.open();
    for i in 0..10 {
        log.append(&sized_batch(2, 100, START_MS + i * 1_000))
            .unwrap();
    }
    let segments = f.log_files().len();
    f.clock.set(START_MS + 9_000);
    assert_eq!(log.enforce_retention().unwrap(), 0);
    // Segments whose newest record is older than 10 s go: those ending by t = 4 s.
    f.clock.set(START_MS + 14_500);
    let deleted = log.enforce_retention().unwrap();
    assert!(deleted > 0);
    assert_eq!(f.log_files().len(), segments - deleted);
    assert!(
        all_records(&log)
            .iter()
            .all(|(_, ts)| *ts > START_MS + 4_500 - 1_000)
    );
    let first_base: i64 = f.log_files()[0].trim_end_matches(".log").parse().unwrap();
    assert_eq!(log.log_start_offset(), first_base);
    // Far in the future everything but the active segment goes.
    f.clock.set(START_MS + 1_000_000);
    log.enforce_retention().unwrap();
    assert_eq!(f.log_files().len(), 1);
    assert!(log.log_end_offset() > log.log_start_offset());
    drop(log);
    assert_eq!(
        f.open().log_start_offset(),
        f.log_files()[0]
            .trim_end_matches(".log")
            .parse::<i64>()
            .unwrap()
    );
}

#[test]
fn retention_by_bytes_follows_kafkas_rule() {
    let f = Fixture::new(&[("internal.segment.bytes", "500")]);
    let batch = sized_batch(1, 150, START_MS);
    let log = f.open();
    for _ in 0..9 {
        log.append(&batch).unwrap();
    }
    assert_eq!(500 / batch.len(), 2);
    let segment_bytes = (500 / batch.len() * batch.len()) as u64;
    let total = log.size_bytes();
    let segments = f.log_files().len();
    assert!(segments >= 4);
    // Exactly one segment over: deleting it leaves exactly retention.bytes.
    let keep = |bytes: u64| {
        config(&[
            ("internal.segment.bytes", "500"),
            ("retention.bytes", &bytes.to_string()),
        ])
    };
    log.set_config(keep(total - segment_bytes));
    assert_eq!(log.enforce_retention().unwrap(), 1);
    // One byte short of allowing another deletion.
    log.set_config(keep(total - 2 * segment_bytes + 1));
    assert_eq!(log.enforce_retention().unwrap(), 0);
    assert_eq!(log.log_start_offset(), (500 / batch.len()) as i64);
    // Compacted topics are left alone; "compact,delete" is not.
    log.set_config(config(&[
        ("retention.bytes", "0"),
        ("cleanup.policy", "compact"),
    ]));
    assert_eq!(log.enforce_retention().unwrap(), 0);
    log.set_config(config(&[
        ("retention.bytes", "0"),
        ("cleanup.policy", "compact,delete"),
    ]));
    assert_eq!(log.enforce_retention().unwrap(), segments - 2);
    assert_eq!(f.log_files().len(), 1, "the active segment stays");
}

#[test]
fn group_commit_shares_fsyncs_between_waiters() {
    let f = Fixture::new(&[]);
    let log = Arc::new(f.open());
    const WAITERS: usize = 16;
    let barrier = Arc::new(Barrier::new(WAITERS));
    let threads: Vec<_> = (0..WAITERS)
        .map(|_| {
            let (log, barrier) = (Arc::clone(&log), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let info = log.append(&simple_batch(1, START_MS)).unwrap();
                // Everyone has appended before anyone waits: one fsync covers all.
                barrier.wait();
                log.wait_durable(info.last_offset + 1).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(log.fsync_count(), 1);
    assert_eq!(log.durable_offset.load(Ordering::SeqCst), WAITERS as i64);
    // Already durable: no new fsync.
    log.wait_durable(WAITERS as i64).unwrap();
    assert_eq!(log.fsync_count(), 1);
}

#[test]
fn group_commit_under_concurrent_appends() {
    let f = Fixture::new(&[]);
    let log = Arc::new(f.open());
    const THREADS: usize = 8;
    const APPENDS: usize = 25;
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for _ in 0..APPENDS {
                    let info = log.append(&simple_batch(1, START_MS)).unwrap();
                    log.wait_durable(info.last_offset + 1).unwrap();
                    assert!(log.durable_offset.load(Ordering::SeqCst) > info.last_offset);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let waits = (THREADS * APPENDS) as u64;
    assert!(
        log.fsync_count() <= waits,
        "{} fsyncs for {waits} waits",
        log.fsync_count()
    );
    assert_eq!(log.log_end_offset(), waits as i64);
}

#[test]
fn other_policies_do_not_fsync_on_wait_but_honour_flush_messages() {
    let mut f = Fixture::new(&[]);
    f.fsync = FsyncPolicy::Never;
    let log = f.open();
    let info = log.append(&simple_batch(1, START_MS)).unwrap();
    log.wait_durable(info.last_offset + 1).unwrap();
    assert_eq!(log.fsync_count(), 0);
    log.set_config(config(&[("flush.messages", "2")]));
    log.append(&simple_batch(1, START_MS)).unwrap();
    assert_eq!(
        log.fsync_count(),
        1,
        "two unflushed records reached flush.messages"
    );
    log.append(&simple_batch(1, START_MS)).unwrap();
    assert_eq!(log.fsync_count(), 1);
}

#[test]
fn rolled_segments_are_synced_with_their_indexes_and_move_the_recovery_point() {
    let f = Fixture::new(&[("internal.segment.bytes", "600")]);
    let log = f.open();
    for _ in 0..4 {
        log.append(&sized_batch(2, 100, START_MS)).unwrap();
    }
    let active: i64 = f
        .log_files()
        .last()
        .unwrap()
        .trim_end_matches(".log")
        .parse()
        .unwrap();
    assert!(active > 0);
    log.wait_durable(log.log_end_offset()).unwrap();
    // Active log + rolled log + its two index files.
    assert_eq!(log.fsync_count(), 4);
    assert_eq!(
        fsutil::read_checkpoint(&f.path().join(RECOVERY_POINT_CHECKPOINT)).unwrap(),
        Some(active)
    );
}

#[test]
fn watch_end_sees_appends() {
    let f = Fixture::new(&[]);
    let log = f.open();
    let mut rx = log.watch_end();
    assert_eq!(*rx.borrow_and_update(), 0);
    log.append(&simple_batch(3, START_MS)).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 3);
}

#[test]
fn closed_and_deleted_partitions() {
    let f = Fixture::new(&[]);
    let log = f.open();
    log.append(&simple_batch(1, START_MS)).unwrap();
    log.close();
    assert!(matches!(
        log.append(&simple_batch(1, START_MS)),
        Err(LogError::Io(_))
    ));
    assert_eq!(
        log.read(0, 100, true).unwrap().len(),
        simple_batch(1, START_MS).len()
    );
    log.mark_deleted();
    assert!(matches!(
        log.read(0, 100, true),
        Err(LogError::UnknownTopic(_))
    ));
    assert!(matches!(
        log.append(&simple_batch(1, START_MS)),
        Err(LogError::UnknownTopic(_))
    ));
}

// ---- recovery ----

fn segment_path(f: &Fixture, base: i64, ext: &str) -> std::path::PathBuf {
    f.path().join(format!("{base:020}.{ext}"))
}

#[test]
fn a_torn_tail_is_cut_and_appends_continue() {
    let f = Fixture::new(&[]);
    let log = f.open();
    for i in 0..5 {
        log.append(&simple_batch(2, START_MS + i)).unwrap();
    }
    let good = log.size_bytes() - simple_batch(2, START_MS).len() as u64;
    drop(log);
    let path = segment_path(&f, 0, "log");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(good + 30).unwrap();
    drop(file);

    let log = f.open_with(false);
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
    let info = log.append(&simple_batch(2, START_MS)).unwrap();
    assert_eq!(info.base_offset, 8);
    assert_eq!(
        all_records(&log).iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
}

#[test]
fn a_corrupt_last_batch_is_cut_after_an_unclean_shutdown() {
    let f = Fixture::new(&[("index.interval.bytes", "10")]);
    let log = f.open();
    for i in 0..5 {
        log.append(&simple_batch(2, START_MS + i)).unwrap();
    }
    let size = log.size_bytes();
    drop(log);
    let path = segment_path(&f, 0, "log");
    let mut bytes = std::fs::read(&path).unwrap();
    let flip = bytes.len() - 3;
    bytes[flip] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let log = f.open_with(false);
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(
        log.size_bytes(),
        size - simple_batch(2, START_MS).len() as u64
    );
    // The index entry that pointed at the cut batch is gone too.
    let index_len = std::fs::metadata(segment_path(&f, 0, "index"))
        .unwrap()
        .len();
    assert_eq!(index_len, 3 * 8);
    assert_eq!(
        log.append(&simple_batch(1, START_MS)).unwrap().base_offset,
        8
    );
    assert_eq!(all_records(&log).len(), 9);
}

#[test]
fn a_clean_shutdown_trusts_the_tail_crc() {
    let f = Fixture::new(&[]);
    let log = f.open();
    log.append(&simple_batch(2, START_MS)).unwrap();
    drop(log);
    let path = segment_path(&f, 0, "log");
    let mut bytes = std::fs::read(&path).unwrap();
    let flip = bytes.len() - 3;
    bytes[flip] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    // Clean: only structure is checked, so the damage is not seen (the marker promises
    // every write finished); unclean: the CRC catches it.
    assert_eq!(f.open_with(true).log_end_offset(), 2);
    assert_eq!(f.open_with(false).log_end_offset(), 0);
}

#[test]
fn missing_indexes_are_rebuilt_identically() {
    let f = Fixture::new(&[
        ("internal.segment.bytes", "2000"),
        ("index.interval.bytes", "150"),
    ]);
    let (log, records) = timestamp_log(&f);
    log.flush().unwrap();
    drop(log);
    let bases: Vec<i64> = f
        .log_files()
        .iter()
        .map(|n| n.trim_end_matches(".log").parse().unwrap())
        .collect();
    let originals: Vec<(Vec<u8>, Vec<u8>)> = bases
        .iter()
        .map(|b| {
            (
                std::fs::read(segment_path(&f, *b, "index")).unwrap(),
                std::fs::read(segment_path(&f, *b, "timeindex")).unwrap(),
            )
        })
        .collect();
    for b in &bases {
        std::fs::remove_file(segment_path(&f, *b, "index")).unwrap();
        std::fs::remove_file(segment_path(&f, *b, "timeindex")).unwrap();
    }
    let log = f.open_with(true);
    for (b, (index, time)) in bases.iter().zip(&originals) {
        assert_eq!(
            &std::fs::read(segment_path(&f, *b, "index")).unwrap(),
            index,
            "segment {b}"
        );
        assert_eq!(
            &std::fs::read(segment_path(&f, *b, "timeindex")).unwrap(),
            time,
            "segment {b}"
        );
    }
    assert_eq!(all_records(&log), records);
    for ts in (START_MS - 10..START_MS + 1_020).step_by(7) {
        assert_eq!(
            log.lookup_timestamp(ts).unwrap(),
            expected_lookup(&records, ts),
            "ts {ts}"
        );
    }
    assert_eq!(log.max_timestamp().unwrap(), expected_max(&records));
}

#[test]
fn stale_or_malformed_indexes_are_rebuilt() {
    let f = Fixture::new(&[("index.interval.bytes", "50")]);
    let log = f.open();
    for i in 0..10 {
        log.append(&simple_batch(2, START_MS + i)).unwrap();
    }
    drop(log);
    let index = segment_path(&f, 0, "index");
    let original = std::fs::read(&index).unwrap();
    assert!(original.len() >= 16);
    // Entries out of order.
    let mut swapped = original.clone();
    swapped[..8].copy_from_slice(&original[8..16]);
    swapped[8..16].copy_from_slice(&original[..8]);
    std::fs::write(&index, &swapped).unwrap();
    assert_eq!(f.open().log_end_offset(), 20);
    assert_eq!(std::fs::read(&index).unwrap(), original);
    // A partial entry.
    std::fs::write(&index, &original[..original.len() - 3]).unwrap();
    assert_eq!(f.open().log_end_offset(), 20);
    assert_eq!(std::fs::read(&index).unwrap(), original);
    // A last entry that names the wrong offset.
    let mut stale = original.clone();
    let n = stale.len();
    stale[n - 5] ^= 1;
    std::fs::write(&index, &stale).unwrap();
    assert_eq!(f.open().log_end_offset(), 20);
    assert_eq!(std::fs::read(&index).unwrap(), original);
    // A time index pointing past the log.
    std::fs::write(
        segment_path(&f, 0, "timeindex"),
        [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0],
    )
    .unwrap();
    let log = f.open();
    // Batch i holds offsets 2i and 2i+1 stamped START+i and START+i+1.
    assert_eq!(
        log.lookup_timestamp(START_MS + 9).unwrap().unwrap().offset,
        17
    );
}

#[test]
fn unclean_recovery_scans_segments_after_the_recovery_point() {
    let f = Fixture::new(&[("internal.segment.bytes", "600")]);
    let log = f.open();
    for i in 0..12 {
        log.append(&sized_batch(2, 100, START_MS + i)).unwrap();
    }
    log.flush().unwrap();
    let bases: Vec<i64> = f
        .log_files()
        .iter()
        .map(|n| n.trim_end_matches(".log").parse().unwrap())
        .collect();
    assert!(bases.len() >= 3);
    // A sealed segment after the recovery point is damaged in its middle.
    fsutil::write_checkpoint(&f.path().join(RECOVERY_POINT_CHECKPOINT), bases[1]).unwrap();
    drop(log);
    let path = segment_path(&f, bases[1], "log");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[70] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let log = f.open_with(false);
    // Its data from the damaged batch on is gone; later segments stay readable.
    let offsets: Vec<i64> = all_records(&log).iter().map(|r| r.0).collect();
    assert!(!offsets.contains(&bases[1]));
    assert!(offsets.contains(&(log.log_end_offset() - 1)));
    assert!(offsets.contains(&(bases[1] - 1)));
    // Reading the gap moves on to the next segment.
    let h = parse_header(&log.read(bases[1], 1, true).unwrap()).unwrap();
    assert_eq!(h.base_offset, bases[2]);
}

#[test]
fn restart_keeps_offsets_and_data() {
    let f = Fixture::new(&[("internal.segment.bytes", "700")]);
    let log = f.open();
    for i in 0..10 {
        log.append(&sized_batch(3, 50, START_MS + i)).unwrap();
    }
    let records = all_records(&log);
    let bytes = log.read(0, 1 << 20, true).unwrap();
    log.flush().unwrap();
    drop(log);
    for clean in [true, false] {
        let log = f.open_with(clean);
        assert_eq!(log.log_end_offset(), 30);
        assert_eq!(all_records(&log), records);
        assert_eq!(log.read(0, 1 << 20, true).unwrap(), bytes);
    }
}

#[test]
fn stray_files_are_cleaned_up() {
    let f = Fixture::new(&[]);
    drop(f.open());
    std::fs::write(f.path().join("log-start-offset.tmp"), "9").unwrap();
    std::fs::write(segment_path(&f, 500, "index"), [0u8; 8]).unwrap();
    std::fs::write(f.path().join("notes.txt"), "keep").unwrap();
    let log = f.open();
    assert!(!f.path().join("log-start-offset.tmp").exists());
    assert!(!segment_path(&f, 500, "index").exists());
    assert!(f.path().join("notes.txt").exists());
    assert_eq!(log.log_start_offset(), 0);
}

#[test]
fn reads_race_appends_rolls_and_retention() {
    let f = Fixture::new(&[
        ("internal.segment.bytes", "1500"),
        ("index.interval.bytes", "200"),
        ("retention.bytes", "6000"),
    ]);
    let log = Arc::new(f.open());
    const BATCHES: usize = 400;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (log, done) = (Arc::clone(&log), Arc::clone(&done));
        std::thread::spawn(move || {
            for i in 0..BATCHES {
                log.append(&sized_batch(1 + i % 3, 40 + i % 50, START_MS + i as i64))
                    .unwrap();
                if i % 25 == 0 {
                    log.enforce_retention().unwrap();
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (log, done) = (Arc::clone(&log), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut reads = 0;
                let mut offset = 0i64;
                while !done.load(Ordering::SeqCst) || reads < 50 {
                    let start = log.log_start_offset();
                    offset = offset.max(start);
                    match log.read(offset, 700 + r * 300, true) {
                        Ok(bytes) if bytes.is_empty() => offset = start,
                        Ok(bytes) => {
                            // Whole, intact batches, the first one holding the offset.
                            let validated = validate(&bytes, 1 << 20, false).unwrap();
                            let first = validated.headers[0];
                            assert!(first.base_offset <= offset && offset <= first.last_offset());
                            offset = validated.headers.last().unwrap().last_offset() + 1;
                        }
                        // Retention moved the start past us between the two reads.
                        Err(LogError::OffsetOutOfRange { .. }) => offset = log.log_start_offset(),
                        Err(e) => panic!("{e}"),
                    }
                    let _ = log.lookup_timestamp(START_MS + 100).unwrap();
                    reads += 1;
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        r.join().unwrap();
    }
    log.enforce_retention().unwrap();
    // Kafka's rule keeps less than retention.bytes plus one segment once it has run.
    assert!(
        log.size_bytes() < 6000 + 1500,
        "{} bytes kept",
        log.size_bytes()
    );
    let records = all_records(&log);
    assert_eq!(records.last().unwrap().0, log.log_end_offset() - 1);
}

#[test]
fn the_final_flush_syncs_the_active_indexes_and_skips_an_unchanged_snapshot() {
    use std::os::unix::fs::MetadataExt;
    let f = Fixture::new(&[("index.interval.bytes", "64")]);
    let snapshot_inode = || {
        std::fs::metadata(f.path().join(producers::SNAPSHOT_FILE))
            .unwrap()
            .ino()
    };
    let log = f.open();
    for i in 0..4 {
        log.append(&sized_batch(2, 100, START_MS + i)).unwrap();
    }
    log.wait_durable(log.log_end_offset()).unwrap();
    assert_eq!(log.fsync_count(), 1, "the active log only");
    assert!(
        log.segment_summary()[0].1 > 0,
        "the appends wrote index entries"
    );
    log.flush_final().unwrap();
    // The next open trusts these indexes without a scan, so they must be on disk.
    assert_eq!(log.fsync_count(), 3, "and now both index files");
    let written = snapshot_inode();
    log.flush_final().unwrap();
    assert_eq!(log.fsync_count(), 3, "nothing changed since");
    assert_eq!(
        snapshot_inode(),
        written,
        "the same snapshot is not written again"
    );
    drop(log);

    // Issue 7: a partition opened and closed without a write costs no fsync.
    let log = f.open();
    log.flush_final().unwrap();
    assert_eq!(log.fsync_count(), 0);
    assert_eq!(snapshot_inode(), written);
    log.append(&sized_batch(2, 100, START_MS)).unwrap();
    log.flush_final().unwrap();
    assert_ne!(snapshot_inode(), written);
}

#[test]
fn indexes_rebuilt_by_an_unclean_open_are_synced_by_the_next_flush() {
    let f = Fixture::new(&[
        ("internal.segment.bytes", "600"),
        ("index.interval.bytes", "64"),
    ]);
    let log = f.open();
    for i in 0..8 {
        log.append(&sized_batch(2, 100, START_MS + i)).unwrap();
    }
    log.flush().unwrap();
    let segments = log.segment_summary();
    assert!(segments.len() >= 3);
    drop(log);
    // Every segment lies after the recovery point: all are scanned and their indexes
    // rebuilt but not synced during the open.
    std::fs::remove_file(f.path().join(RECOVERY_POINT_CHECKPOINT)).unwrap();
    let log = f.open_with(false);
    assert_eq!(log.segment_summary(), segments, "rebuilt identically");
    assert_eq!(log.fsync_count(), 0);
    log.flush().unwrap();
    // Each sealed segment: log and both indexes; the active one: its log.
    assert_eq!(log.fsync_count(), 3 * (segments.len() as u64 - 1) + 1);
    assert_eq!(
        fsutil::read_checkpoint(&f.path().join(RECOVERY_POINT_CHECKPOINT)).unwrap(),
        Some(segments.last().unwrap().0)
    );
    log.flush_final().unwrap();
    assert_eq!(
        log.fsync_count(),
        3 * (segments.len() as u64 - 1) + 3,
        "the active segment's rebuilt indexes at the final flush"
    );
}
