//! Log compaction end to end: a real `medulla serve`, rdkafka producing 100,000 updates
//! over 1,000 keys and then tombstones, the background cleaner, and a consumer from the
//! beginning that must see exactly the latest value of every live key at the offset it
//! was acknowledged at. (Keyless records refused on a compacted topic with INVALID_RECORD
//! are covered by `bad_input.rs`.)

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{DEADLINE, Medulla, client_config, consumer_from_beginning, topic_name};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

const KEYS: usize = 1_000;
const UPDATES: usize = 100_000;
const TOMBSTONES: usize = 100;
/// Small segments (Kafka's test-only `internal.segment.bytes`), so there are many.
const SEGMENT_BYTES: usize = 64 * 1024;

/// offset → (key, value; `None` is a tombstone).
type Records = BTreeMap<i64, (String, Option<Vec<u8>>)>;

fn key(k: usize) -> String {
    format!("patient-{k:04}")
}

/// Bytes of the partition's segment files.
fn log_bytes(data_dir: &Path, topic: &str) -> u64 {
    std::fs::read_dir(data_dir.join("topics").join(topic).join("0"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Everything in partition 0 from the beginning up to the high watermark.
fn read_all(addr: &str, topic: &str) -> Records {
    let (consumer, high) = consumer_from_beginning(addr, topic, 0);
    let mut got = Records::new();
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < DEADLINE, "read {} records", got.len());
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.expect("fetch error");
        if let Some((last, _)) = got.last_key_value() {
            assert!(m.offset() > *last, "offsets increase");
        }
        got.insert(
            m.offset(),
            (
                String::from_utf8(m.key().expect("every record has a key").to_vec()).unwrap(),
                m.payload().map(<[u8]>::to_vec),
            ),
        );
        if m.offset() + 1 >= high {
            return got;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleaner_keeps_the_latest_value_of_every_live_key() {
    let dir = tempfile::tempdir().unwrap();
    let topic = topic_name("compacted");

    // Phase 1, cleaner off: write the history, so its size on disk can be measured.
    let broker = Medulla::start(dir.path(), &["--override", "log.cleaner.enable=false"]);
    let admin: AdminClient<DefaultClientContext> =
        client_config(&broker.addr).create().expect("admin");
    let segment_bytes = SEGMENT_BYTES.to_string();
    let new_topic = NewTopic::new(&topic, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("internal.segment.bytes", &segment_bytes)
        .set("min.cleanable.dirty.ratio", "0.01")
        .set("delete.retention.ms", "1000");
    let created = admin
        .create_topics(&[new_topic], &AdminOptions::new())
        .await
        .expect("create_topics");
    assert_eq!(created, vec![Ok(topic.clone())]);

    let producer: FutureProducer = client_config(&broker.addr)
        .set("acks", "all")
        .set("compression.codec", "lz4")
        .set("linger.ms", "5")
        // Batches must fit in a segment.
        .set("batch.size", "16384")
        .create()
        .expect("producer");
    // The expected end state: the latest record of each key, at its acknowledged offset.
    let mut latest: BTreeMap<String, (i64, Option<Vec<u8>>)> = BTreeMap::new();
    let mut pending = Vec::with_capacity(UPDATES);
    for i in 0..UPDATES {
        let k = key(i % KEYS);
        let value =
            format!("{{\"admission\":{i},\"ward\":\"{}\"}}", "w".repeat(i % 40)).into_bytes();
        let record = FutureRecord::to(&topic).key(&k).payload(&value);
        pending.push((
            producer.send_result(record).expect("enqueue"),
            k,
            Some(value),
        ));
    }
    for k in 0..TOMBSTONES {
        let k = key(k);
        let record: FutureRecord<'_, String, [u8]> = FutureRecord::to(&topic).key(&k);
        pending.push((producer.send_result(record).expect("enqueue"), k, None));
    }
    for (delivery, k, value) in pending {
        let delivery = delivery.await.expect("delivery").expect("acknowledged");
        assert_eq!(delivery.partition, 0);
        latest.insert(k, (delivery.offset, value));
    }
    // A last record larger than what the active segment has room for: it rolls the
    // segment, so the tombstones are sealed (the active segment is never cleaned) and the
    // sentinel is the only record left in the active segment. Incompressible bytes, so
    // lz4 cannot shrink it below the roll threshold.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let sentinel: Vec<u8> = (0..SEGMENT_BYTES - 256)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let sentinel_offset = producer
        .send(
            FutureRecord::to(&topic).key("sentinel").payload(&sentinel),
            Duration::from_secs(30),
        )
        .await
        .expect("sentinel acknowledged")
        .offset;
    latest.insert("sentinel".into(), (sentinel_offset, Some(sentinel)));
    drop(producer);
    let before = read_all(&broker.addr, &topic);
    assert_eq!(
        before.len(),
        UPDATES + TOMBSTONES + 1,
        "nothing cleaned yet"
    );
    let bytes_before = log_bytes(dir.path(), &topic);
    assert_eq!(broker.terminate().code(), Some(0));

    // Phase 2, cleaner on (woken every 100 ms).
    let broker = Medulla::start(dir.path(), &["--override", "log.cleaner.backoff.ms=100"]);
    let expected: Records = latest
        .into_iter()
        .filter(|(_, (_, value))| value.is_some())
        .map(|(k, (offset, value))| (offset, (k, value)))
        .collect();
    assert_eq!(expected.len(), KEYS - TOMBSTONES + 1);
    let start = Instant::now();
    let mut last = Records::new();
    while last != expected {
        assert!(
            start.elapsed() < DEADLINE,
            "after {DEADLINE:?} a consumer sees {} records ({} tombstones), expected {}",
            last.len(),
            last.values().filter(|(_, v)| v.is_none()).count(),
            expected.len()
        );
        // Not a wait for a fixed time: the poll interval of a condition with a deadline.
        std::thread::sleep(Duration::from_millis(200));
        last = read_all(&broker.addr, &topic);
    }
    let bytes_after = log_bytes(dir.path(), &topic);
    eprintln!("segment bytes on disk: {bytes_before} before cleaning, {bytes_after} after");
    assert!(
        bytes_after * 10 < bytes_before,
        "{bytes_before} bytes on disk before cleaning, {bytes_after} after"
    );
    assert_eq!(broker.terminate().code(), Some(0));
}
