//! Tests of the manager: layout, locking, topics, configs, restart and recovery.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;
use crate::batch::parse_header;
use crate::test_support::{FakeClock, producer_batch, simple_batch, sized_batch};

const START_MS: i64 = 1_700_000_000_000;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn options(dir: &Path, fsync: FsyncPolicy) -> LogManagerOptions {
    LogManagerOptions {
        data_dir: dir.to_path_buf(),
        fsync,
        broker_defaults: BTreeMap::new(),
        clock: FakeClock::new(START_MS),
        recovery_threads: DEFAULT_RECOVERY_THREADS,
    }
}

fn open(dir: &Path) -> Arc<LogManager> {
    LogManager::open(options(dir, FsyncPolicy::Always)).unwrap()
}

#[test]
fn the_data_dir_is_locked_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    assert!(dir.path().join(".lock").exists());
    assert!(dir.path().join("topics").is_dir());
    match LogManager::open(options(dir.path(), FsyncPolicy::Always)) {
        Err(LogError::DataDirLocked(path)) => assert_eq!(path, dir.path()),
        other => panic!("expected DataDirLocked, got {other:?}"),
    }
    drop(first);
    open(dir.path());
}

#[test]
fn topics_are_created_with_kafkas_rules() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let none = BTreeMap::new();
    assert!(matches!(
        m.create_topic("a/b", 1, &none, false),
        Err(LogError::InvalidTopic(_))
    ));
    assert!(matches!(
        m.create_topic("..", 1, &none, false),
        Err(LogError::InvalidTopic(_))
    ));
    assert!(matches!(
        m.create_topic("t", 0, &none, false),
        Err(LogError::InvalidPartitions(_))
    ));
    assert!(matches!(
        m.create_topic("t", PARTITIONS_PER_TOPIC_MAX + 1, &none, false),
        Err(LogError::InvalidPartitions(_))
    ));
    assert!(matches!(
        m.create_topic("t", 1, &map(&[("retention.ms", "x")]), false),
        Err(LogError::InvalidConfig(m)) if m.starts_with("retention.ms")
    ));
    assert!(matches!(
        m.create_topic("t", 1, &map(&[("no.such.config", "1")]), false),
        Err(LogError::InvalidConfig(m)) if m.starts_with("no.such.config")
    ));

    let checked = m.create_topic("orders.v1", 3, &none, true).unwrap();
    assert_eq!(checked.partitions, 3);
    assert!(
        m.topic("orders.v1").is_none(),
        "validate_only creates nothing"
    );
    assert!(!dir.path().join("topics/orders.v1").exists());

    let meta = m
        .create_topic("orders.v1", 3, &map(&[("retention.ms", "1000")]), false)
        .unwrap();
    assert_eq!(meta.config.retention_ms, 1000);
    assert!(matches!(
        m.create_topic("orders.v1", 1, &none, false),
        Err(LogError::TopicAlreadyExists(_))
    ));
    assert!(matches!(
        m.create_topic("orders_v1", 1, &none, false),
        Err(LogError::InvalidTopic(_))
    ));
    m.create_topic("a", 1, &none, false).unwrap();

    for p in 0..3 {
        assert!(
            dir.path()
                .join(format!("topics/orders.v1/{p}/{:020}.log", 0))
                .exists()
        );
    }
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("topics/orders.v1/topic.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["name"], "orders.v1");
    assert_eq!(json["topic_id"], meta.id.to_string());
    assert_eq!(json["partitions"], 3);
    assert_eq!(json["configs"]["retention.ms"], "1000");

    assert_eq!(m.topic_by_id(meta.id).unwrap().name, "orders.v1");
    assert_eq!(
        m.topics()
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["a", "orders.v1"]
    );
    assert!(m.partition("orders.v1", 2).is_some());
    assert!(m.partition("orders.v1", 3).is_none());
    assert!(m.partition("orders.v1", -1).is_none());
    assert!(m.partition("nope", 0).is_none());
}

#[test]
fn restart_keeps_topics_configs_ids_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let broker = map(&[("log.retention.hours", "1")]);
    let defaults = crate::config::broker_log_defaults(&broker).unwrap();
    let open_with_defaults = || {
        LogManager::open(LogManagerOptions {
            broker_defaults: defaults.clone(),
            ..options(dir.path(), FsyncPolicy::Always)
        })
        .unwrap()
    };
    let (id, bytes) = {
        let m = open_with_defaults();
        let meta = m
            .create_topic("t", 2, &map(&[("cleanup.policy", "compact,delete")]), false)
            .unwrap();
        assert_eq!(meta.config.retention_ms, 3_600_000);
        let p = m.partition("t", 1).unwrap();
        p.append(&simple_batch(3, START_MS)).unwrap();
        p.append(&simple_batch(2, START_MS)).unwrap();
        m.close().unwrap();
        (meta.id, p.read(0, 1 << 20, true).unwrap())
    };
    let m = open_with_defaults();
    let meta = m.topic("t").unwrap();
    assert_eq!((meta.id, meta.partitions), (id, 2));
    assert!(meta.config.cleanup_compact && meta.config.cleanup_delete);
    assert_eq!(meta.config.retention_ms, 3_600_000);
    assert_eq!(m.broker_defaults(), defaults);
    let p = m.partition("t", 1).unwrap();
    assert_eq!(p.log_end_offset(), 5);
    assert_eq!(p.read(0, 1 << 20, true).unwrap(), bytes);
    assert_eq!(m.partition("t", 0).unwrap().log_end_offset(), 0);
    let described = meta.config.describe(&m.broker_defaults());
    let retention = described.iter().find(|e| e.name == "retention.ms").unwrap();
    assert_eq!(retention.source, crate::ConfigSource::StaticBroker);
    let policy = described
        .iter()
        .find(|e| e.name == "cleanup.policy")
        .unwrap();
    assert_eq!(policy.source, crate::ConfigSource::DynamicTopic);
}

#[test]
fn deleting_a_topic_removes_it_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    m.create_topic("t", 2, &BTreeMap::new(), false).unwrap();
    let p = m.partition("t", 0).unwrap();
    p.append(&simple_batch(1, START_MS)).unwrap();
    assert!(matches!(
        m.delete_topic("nope"),
        Err(LogError::UnknownTopic(_))
    ));
    m.delete_topic("t").unwrap();
    assert!(m.topic("t").is_none());
    assert!(m.partition("t", 0).is_none());
    assert!(!dir.path().join("topics/t").exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join("trash")).unwrap().count(),
        0
    );
    assert!(matches!(
        p.append(&simple_batch(1, START_MS)),
        Err(LogError::UnknownTopic(_))
    ));
    // The name is free again, with fresh data and a new id.
    let meta = m.create_topic("t", 1, &BTreeMap::new(), false).unwrap();
    assert_eq!(m.partition("t", 0).unwrap().log_end_offset(), 0);
    drop(m);
    assert_eq!(open(dir.path()).topic("t").unwrap().id, meta.id);
}

#[test]
fn partitions_grow_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    m.create_topic("t", 2, &BTreeMap::new(), false).unwrap();
    assert!(matches!(
        m.create_partitions("t", 2, false),
        Err(LogError::InvalidPartitions(_))
    ));
    assert!(matches!(
        m.create_partitions("t", 1, false),
        Err(LogError::InvalidPartitions(_))
    ));
    assert!(matches!(
        m.create_partitions("t", PARTITIONS_PER_TOPIC_MAX + 1, false),
        Err(LogError::InvalidPartitions(_))
    ));
    assert!(matches!(
        m.create_partitions("x", 3, false),
        Err(LogError::UnknownTopic(_))
    ));
    m.create_partitions("t", 4, true).unwrap();
    assert_eq!(m.topic("t").unwrap().partitions, 2);
    m.create_partitions("t", 4, false).unwrap();
    assert_eq!(m.topic("t").unwrap().partitions, 4);
    m.partition("t", 3)
        .unwrap()
        .append(&simple_batch(2, START_MS))
        .unwrap();
    drop(m);
    let m = open(dir.path());
    assert_eq!(m.topic("t").unwrap().partitions, 4);
    assert_eq!(m.partition("t", 3).unwrap().log_end_offset(), 2);
}

#[test]
fn an_interrupted_create_partitions_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    drop({
        let m = open(dir.path());
        m.create_topic("t", 1, &BTreeMap::new(), false).unwrap();
        m
    });
    std::fs::create_dir(dir.path().join("topics/t/1")).unwrap();
    std::fs::create_dir_all(dir.path().join("staging/half-made")).unwrap();
    std::fs::create_dir_all(dir.path().join("trash/half-deleted/0")).unwrap();
    let m = open(dir.path());
    assert_eq!(m.topic("t").unwrap().partitions, 1);
    assert!(!dir.path().join("topics/t/1").exists());
    assert_eq!(
        std::fs::read_dir(dir.path().join("staging"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("trash")).unwrap().count(),
        0
    );
}

#[test]
fn altering_configs_applies_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    m.create_topic(
        "t",
        2,
        &map(&[("retention.ms", "1000"), ("segment.ms", "5000")]),
        false,
    )
    .unwrap();
    let p = m.partition("t", 1).unwrap();
    let batch = sized_batch(1, 500, START_MS);

    let checked = m
        .alter_topic_config(
            "t",
            AlterOp::Incremental(vec![("max.message.bytes".into(), Some("100".into()))]),
            true,
        )
        .unwrap();
    assert_eq!(checked.config.max_message_bytes, 100);
    assert_eq!(
        m.topic("t").unwrap().config.max_message_bytes,
        1_048_588,
        "validate_only changes nothing"
    );
    p.append(&batch).unwrap();

    let meta = m
        .alter_topic_config(
            "t",
            AlterOp::Incremental(vec![
                ("max.message.bytes".into(), Some("100".into())),
                ("retention.ms".into(), None),
            ]),
            false,
        )
        .unwrap();
    assert_eq!(meta.config.max_message_bytes, 100);
    assert_eq!(meta.config.retention_ms, 604_800_000);
    assert_eq!(meta.config.segment_ms, 5000);
    assert!(matches!(
        p.append(&batch),
        Err(LogError::MessageTooLarge { max_bytes: 100, .. })
    ));

    assert!(matches!(
        m.alter_topic_config(
            "t",
            AlterOp::Incremental(vec![("bogus".into(), None)]),
            false
        ),
        Err(LogError::InvalidConfig(_))
    ));
    assert!(matches!(
        m.alter_topic_config("t", AlterOp::Replace(map(&[("segment.ms", "0")])), false),
        Err(LogError::InvalidConfig(_))
    ));
    assert!(matches!(
        m.alter_topic_config("x", AlterOp::Replace(BTreeMap::new()), false),
        Err(LogError::UnknownTopic(_))
    ));

    let meta = m
        .alter_topic_config(
            "t",
            AlterOp::Replace(map(&[("retention.bytes", "10")])),
            false,
        )
        .unwrap();
    assert_eq!(meta.config.overrides, map(&[("retention.bytes", "10")]));
    drop(m);
    let m = open(dir.path());
    let config = m.topic("t").unwrap().config;
    assert_eq!(config.overrides, map(&[("retention.bytes", "10")]));
    assert_eq!(config.max_message_bytes, 1_048_588);
    assert_eq!(m.partition("t", 1).unwrap().config().retention_bytes, 10);
}

#[test]
fn close_marks_a_clean_shutdown_and_stops_writes() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    m.create_topic("t", 1, &BTreeMap::new(), false).unwrap();
    let p = m.partition("t", 0).unwrap();
    p.append(&simple_batch(2, START_MS)).unwrap();
    m.close().unwrap();
    m.close().unwrap();
    assert!(dir.path().join(".clean_shutdown").exists());
    assert!(p.append(&simple_batch(1, START_MS)).is_err());
    assert!(m.create_topic("u", 1, &BTreeMap::new(), false).is_err());
    assert_eq!(
        p.read(0, 1 << 20, true).unwrap().len(),
        simple_batch(2, START_MS).len()
    );
    drop((m, p));

    let m = open(dir.path());
    assert!(
        !dir.path().join(".clean_shutdown").exists(),
        "the marker is consumed on open"
    );
    m.partition("t", 0)
        .unwrap()
        .append(&simple_batch(1, START_MS))
        .unwrap();
    drop(m);
    // Dropped without close: the next open is an unclean one (and still recovers all).
    assert!(!dir.path().join(".clean_shutdown").exists());
    assert_eq!(
        open(dir.path()).partition("t", 0).unwrap().log_end_offset(),
        3
    );
}

#[test]
fn unclean_restart_recovers_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    m.create_topic("t", 1, &BTreeMap::new(), false).unwrap();
    let p = m.partition("t", 0).unwrap();
    for _ in 0..3 {
        let info = p.append(&simple_batch(2, START_MS)).unwrap();
        p.wait_durable(info.last_offset + 1).unwrap();
    }
    drop((m, p));
    let log = dir.path().join(format!("topics/t/0/{:020}.log", 0));
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    let m = open(dir.path());
    let p = m.partition("t", 0).unwrap();
    assert_eq!(p.log_end_offset(), 4);
    assert_eq!(p.append(&simple_batch(1, START_MS)).unwrap().base_offset, 4);
    assert_eq!(
        parse_header(&p.read(4, 1, true).unwrap())
            .unwrap()
            .base_offset,
        4
    );
}

#[test]
fn the_interval_policy_flushes_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let m = LogManager::open(options(
        dir.path(),
        FsyncPolicy::Interval { interval_ms: 10 },
    ))
    .unwrap();
    assert_eq!(m.fsync_policy(), FsyncPolicy::Interval { interval_ms: 10 });
    m.create_topic("t", 1, &BTreeMap::new(), false).unwrap();
    let p = m.partition("t", 0).unwrap();
    p.append(&simple_batch(1, START_MS)).unwrap();
    // wait_durable does not fsync under this policy; the background thread does.
    p.wait_durable(1).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.fsync_count() == 0 {
        assert!(Instant::now() < deadline, "no background flush within 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    m.close().unwrap();
    assert!(lock(&m.flusher).is_none(), "close stops the flusher");
    // Dropping the last handle after close must not hang.
    drop(m);
}

#[test]
fn flush_ms_is_honoured_under_the_never_policy() {
    let dir = tempfile::tempdir().unwrap();
    let m = LogManager::open(options(dir.path(), FsyncPolicy::Never)).unwrap();
    m.create_topic("t", 1, &map(&[("flush.ms", "0")]), false)
        .unwrap();
    let p = m.partition("t", 0).unwrap();
    p.append(&simple_batch(1, START_MS)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.fsync_count() == 0 {
        assert!(
            Instant::now() < deadline,
            "flush.ms=0 not honoured within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn retention_runs_over_every_partition() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(START_MS);
    let m = LogManager::open(LogManagerOptions {
        clock: clock.clone(),
        ..options(dir.path(), FsyncPolicy::Never)
    })
    .unwrap();
    let configs = map(&[("internal.segment.bytes", "600"), ("retention.ms", "1000")]);
    m.create_topic("a", 2, &configs, false).unwrap();
    m.create_topic(
        "b",
        1,
        &map(&[
            ("internal.segment.bytes", "600"),
            ("cleanup.policy", "compact"),
        ]),
        false,
    )
    .unwrap();
    for (topic, partition) in [("a", 0), ("a", 1), ("b", 0)] {
        let p = m.partition(topic, partition).unwrap();
        for _ in 0..6 {
            p.append(&sized_batch(2, 100, START_MS)).unwrap();
        }
    }
    assert_eq!(m.enforce_retention().unwrap(), 0);
    clock.advance(10_000);
    // Six batches, two per segment: two sealed segments per partition of "a".
    assert_eq!(m.enforce_retention().unwrap(), 4);
    assert_eq!(m.partition("a", 0).unwrap().log_start_offset(), 8);
    assert_eq!(m.partition("b", 0).unwrap().log_start_offset(), 0);
    m.flush_all().unwrap();
}

#[test]
fn invalid_broker_defaults_stop_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let result = LogManager::open(LogManagerOptions {
        broker_defaults: map(&[("segment.ms", "0")]),
        ..options(dir.path(), FsyncPolicy::Always)
    });
    assert!(matches!(result, Err(LogError::InvalidConfig(m)) if m.starts_with("segment.ms")));
}

#[test]
fn a_damaged_topic_file_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    drop({
        let m = open(dir.path());
        m.create_topic("t", 1, &BTreeMap::new(), false).unwrap();
        m
    });
    std::fs::write(dir.path().join("topics/t/topic.json"), b"{").unwrap();
    assert!(matches!(
        LogManager::open(options(dir.path(), FsyncPolicy::Always)),
        Err(LogError::Io(_))
    ));
}

#[test]
fn broker_defaults_change_at_run_time_under_topic_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path());
    manager
        .create_topic("plain", 1, &BTreeMap::new(), false)
        .unwrap();
    manager
        .create_topic("pinned", 1, &map(&[("retention.ms", "1000")]), false)
        .unwrap();
    // validate_only changes nothing; an invalid value changes nothing.
    manager
        .set_broker_defaults(map(&[("retention.ms", "5000")]), true)
        .unwrap();
    assert_eq!(
        manager.topic("plain").unwrap().config.retention_ms,
        604_800_000
    );
    assert!(matches!(
        manager.set_broker_defaults(map(&[("retention.ms", "-7")]), false),
        Err(LogError::InvalidConfig(_))
    ));
    assert_eq!(
        manager.topic("plain").unwrap().config.retention_ms,
        604_800_000
    );
    // Applied: the default moves, the override stays, new topics get the new default.
    manager
        .set_broker_defaults(map(&[("retention.ms", "5000")]), false)
        .unwrap();
    assert_eq!(manager.topic("plain").unwrap().config.retention_ms, 5000);
    assert_eq!(manager.topic("pinned").unwrap().config.retention_ms, 1000);
    manager
        .create_topic("later", 1, &BTreeMap::new(), false)
        .unwrap();
    assert_eq!(manager.topic("later").unwrap().config.retention_ms, 5000);
    assert_eq!(manager.broker_defaults(), map(&[("retention.ms", "5000")]));
}

#[test]
fn the_longest_topic_names_can_be_deleted() {
    // Regression: the trash entry was `{name}-{uuid}`, longer than a file name may be.
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path());
    let name = "a".repeat(249);
    manager
        .create_topic(&name, 1, &BTreeMap::new(), false)
        .unwrap();
    manager.delete_topic(&name).unwrap();
    assert!(manager.topic(&name).is_none());
}

#[test]
fn a_deleted_partition_never_writes_into_a_recreated_topic() {
    // Regression: a flush of a stale handle wrote its recovery point into the new topic.
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path());
    let small = map(&[("internal.segment.bytes", "200")]);
    manager.create_topic("t", 1, &small, false).unwrap();
    let old = manager.partition("t", 0).unwrap();
    for _ in 0..20 {
        old.append(&simple_batch(3, START_MS)).unwrap();
    }
    let end = old.log_end_offset();
    manager.delete_topic("t").unwrap();
    manager
        .create_topic("t", 1, &BTreeMap::new(), false)
        .unwrap();
    let _ = old.wait_durable(end);
    let checkpoint = dir.path().join("topics/t/0/recovery-point");
    let written = std::fs::read_to_string(&checkpoint).ok();
    assert!(
        written.as_deref().is_none_or(|v| v.trim() == "0"),
        "stale checkpoint {written:?}"
    );
}

#[test]
fn the_cleaner_compacts_compacted_topics_only_and_stops_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let compact = map(&[
        ("cleanup.policy", "compact"),
        ("internal.segment.bytes", "1024"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ]);
    let delete = map(&[("internal.segment.bytes", "1024")]);
    m.create_topic("compacted", 2, &compact, false).unwrap();
    m.create_topic("plain", 1, &delete, false).unwrap();
    let fill = |topic: &str, partition: i32| {
        let log = m.partition(topic, partition).unwrap();
        for i in 0..40 {
            log.append(&simple_batch(3, START_MS + i)).unwrap();
        }
        log
    };
    let (c0, c1, plain) = (fill("compacted", 0), fill("compacted", 1), fill("plain", 0));
    let plain_bytes = plain.size_bytes();
    let config = CleanerConfig::default();
    assert!(
        m.clean_now(&CleanerConfig {
            threads: 65,
            ..config.clone()
        })
        .is_err()
    );
    assert_eq!(
        m.clean_now(&config).unwrap(),
        2,
        "one pass per compacted partition"
    );
    assert_eq!(m.clean_now(&config).unwrap(), 0, "then nothing is dirty");
    for log in [&c0, &c1] {
        assert!(log.cleaner_checkpoint().is_some());
        assert!(log.size_bytes() < plain_bytes / 3);
    }
    assert_eq!(plain.size_bytes(), plain_bytes);
    assert_eq!(plain.cleaner_checkpoint(), None);

    // In the background: new dirt is cleaned without being asked.
    m.start_cleaner(CleanerConfig {
        backoff_ms: 10,
        ..config
    })
    .unwrap();
    for i in 0..40 {
        c0.append(&simple_batch(3, START_MS + i)).unwrap();
    }
    let before = c0.cleaner_checkpoint();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c0.cleaner_checkpoint() == before {
        assert!(
            Instant::now() < deadline,
            "the background cleaner did not run"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    m.close().unwrap();
    assert!(
        lock(&m.cleaner).is_none(),
        "close stops the cleaner threads"
    );
}

/// Copies a data directory (files and directories only) for opening the same state twice.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Everything a reopened partition exposes: offsets, producers, segments, bytes.
fn partition_state(m: &LogManager) -> Vec<String> {
    let mut out = Vec::new();
    for topic in m.topics() {
        for p in 0..topic.partitions as i32 {
            let log = m.partition(&topic.name, p).unwrap();
            let start = log.log_start_offset();
            let mut bytes = Vec::new();
            let mut offset = start;
            while offset < log.log_end_offset() {
                let read = log.read(offset, 1 << 20, true).unwrap();
                let mut at = 0;
                while at < read.len() {
                    let header = parse_header(&read[at..]).unwrap();
                    offset = header.last_offset() + 1;
                    at += header.size_bytes();
                }
                bytes.extend_from_slice(&read);
            }
            out.push(format!(
                "{}-{p}: start {start} end {} lso {} segments {:?} producers {:?} aborted {:?} bytes {}",
                topic.name,
                log.log_end_offset(),
                log.last_stable_offset(),
                log.segment_summary(),
                log.producers(),
                log.aborted_transactions(0, i64::MAX),
                crc32c::crc32c(&bytes),
            ));
        }
    }
    out
}

#[test]
fn parallel_recovery_opens_the_same_state_as_one_thread() {
    // Issue 7: partitions open on `recovery_threads` threads; the result must not depend
    // on how many.
    let source = tempfile::tempdir().unwrap();
    {
        let m = open(source.path());
        let small = map(&[
            ("internal.segment.bytes", "700"),
            ("index.interval.bytes", "64"),
        ]);
        m.create_topic("a", 7, &small, false).unwrap();
        m.create_topic("b", 3, &BTreeMap::new(), false).unwrap();
        for (topic, partitions) in [("a", 7), ("b", 3)] {
            for p in 0..partitions {
                let log = m.partition(topic, p).unwrap();
                for i in 0..(p as usize + 3) {
                    log.append(&sized_batch(2, 60, START_MS + i as i64))
                        .unwrap();
                }
                log.append(&producer_batch(2, 100 + p as i64, 0, 0, p % 2 == 1))
                    .unwrap();
                log.flush().unwrap();
            }
        }
        // Dropped without close: an unclean shutdown, every active segment is scanned.
    }
    let mut states = Vec::new();
    for threads in [1, 4] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(source.path(), copy.path());
        let m = LogManager::open(LogManagerOptions {
            recovery_threads: threads,
            ..options(copy.path(), FsyncPolicy::Always)
        })
        .unwrap();
        states.push(partition_state(&m));
    }
    assert_eq!(states[0].len(), 10);
    assert_eq!(states[0], states[1]);
}

#[test]
fn a_partition_that_cannot_be_opened_is_named() {
    let dir = tempfile::tempdir().unwrap();
    {
        let m = open(dir.path());
        m.create_topic("t", 5, &BTreeMap::new(), false).unwrap();
        m.close().unwrap();
    }
    // A directory where partition 3's segment should be: it cannot be opened as a file.
    let segment = dir.path().join(format!("topics/t/3/{:020}.log", 0));
    std::fs::remove_file(&segment).unwrap();
    std::fs::create_dir(&segment).unwrap();
    for threads in [1, 3] {
        let result = LogManager::open(LogManagerOptions {
            recovery_threads: threads,
            ..options(dir.path(), FsyncPolicy::Always)
        });
        match result {
            Err(e @ LogError::Partition { .. }) => {
                let LogError::Partition {
                    topic, partition, ..
                } = &e
                else {
                    unreachable!()
                };
                assert_eq!((topic.as_str(), *partition), ("t", 3));
                assert!(e.to_string().starts_with("partition t-3: "), "{e}");
            }
            other => panic!("expected a Partition error, got {other:?}"),
        }
    }
    assert!(
        dir.path().join(".clean_shutdown").exists(),
        "a failed open is not a recovery: the marker stays"
    );
}
