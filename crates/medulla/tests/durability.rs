//! Durability through the real binary: SIGKILL under `acks=all` load loses nothing
//! acknowledged; a torn or corrupted segment tail is recovered to the last intact batch;
//! a restart keeps topics, configs and data.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{DEADLINE, Medulla, client_config, topic_name};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// Reads partitions `0..partitions` of `topic` from the beginning to their high
/// watermarks; returns `(partition, offset) -> (key, value)`.
fn read_all(addr: &str, topic: &str, partitions: i32) -> BTreeMap<(i32, i64), (Vec<u8>, Vec<u8>)> {
    let consumer: BaseConsumer = client_config(addr)
        .set("group.id", "unused")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
        let (_, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        ends.insert(p, high);
    }
    consumer.assign(&tpl).unwrap();
    let mut got = BTreeMap::new();
    let mut next: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
    let start = std::time::Instant::now();
    while next.iter().any(|(p, o)| *o < ends[p]) {
        assert!(
            start.elapsed() < DEADLINE,
            "reading back: at {next:?}, want {ends:?}"
        );
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.expect("fetch");
        got.insert(
            (m.partition(), m.offset()),
            (
                m.key().unwrap_or_default().to_vec(),
                m.payload().unwrap_or_default().to_vec(),
            ),
        );
        next.insert(m.partition(), m.offset() + 1);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_acks_all_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let topic = topic_name("kill9");
    let admin: AdminClient<DefaultClientContext> = client_config(&broker.addr).create().unwrap();
    admin
        .create_topics(
            &[NewTopic::new(&topic, 4, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();

    // Sustained load from several tasks; record every acknowledgement.
    let acked = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let producer: FutureProducer = client_config(&broker.addr)
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "5000")
            .create()
            .unwrap();
        let (acked, stop, topic) = (acked.clone(), stop.clone(), topic.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("w{w}-{i}");
                let value = format!("MedicationAdministered {w} {i} ").repeat(8);
                let sent = producer
                    .send(
                        FutureRecord::to(&topic).key(&key).payload(&value),
                        Duration::from_secs(1),
                    )
                    .await;
                if let Ok(d) = sent {
                    acked.lock().unwrap().insert(
                        (d.partition, d.offset),
                        (key.into_bytes(), value.into_bytes()),
                    );
                }
                i += 1;
            }
        }));
    }
    common::wait_for("2000 acknowledged records", || {
        (acked.lock().unwrap().len() >= 2000).then_some(())
    });
    broker.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 2000);

    let broker = Medulla::start(dir.path(), &[]);
    let stored = read_all(&broker.addr, &topic, 4);
    for (at, record) in &acked {
        assert_eq!(
            stored.get(at),
            Some(record),
            "acknowledged record at {at:?} lost or changed"
        );
    }
    // And the broker accepts writes again.
    let producer: FutureProducer = client_config(&broker.addr)
        .set("acks", "all")
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(&topic).key("after").payload("restart"),
            Duration::from_secs(10),
        )
        .await
        .expect("produce after restart");
}

/// The last `.log` segment file of a partition directory, found by walking the data dir.
fn active_segment(data_dir: &std::path::Path, topic: &str) -> std::path::PathBuf {
    let mut logs = Vec::new();
    let mut stack = vec![data_dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "log")
                && p.to_string_lossy().contains(topic)
            {
                logs.push(p);
            }
        }
    }
    logs.sort();
    logs.pop().expect("a segment file")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_and_corrupt_tails_recover_to_the_last_intact_batch() {
    let dir = tempfile::tempdir().unwrap();
    let topic = topic_name("torn");
    let broker = Medulla::start(dir.path(), &[]);
    let producer: FutureProducer = client_config(&broker.addr)
        .set("acks", "all")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let admin: AdminClient<DefaultClientContext> = client_config(&broker.addr).create().unwrap();
    admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    // One record per request: one batch per record.
    for i in 0..10 {
        producer
            .send(
                FutureRecord::to(&topic)
                    .key("k")
                    .payload(&format!("lab-result-{i}")),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    drop(producer);
    assert!(broker.terminate().success());

    // Tear the last batch in half: offsets 0..=8 survive.
    let seg = active_segment(dir.path(), &topic);
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 20).unwrap();
    drop(f);
    let broker = Medulla::start(dir.path(), &[]);
    let stored = read_all(&broker.addr, &topic, 1);
    assert_eq!(stored.len(), 9, "{stored:?}");
    assert_eq!(stored[&(0, 8)].1, b"lab-result-8");
    broker.kill9();

    // Flip a byte inside the (new) last batch's records: its CRC fails, offset 8 goes.
    let seg = active_segment(dir.path(), &topic);
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let stored = read_all(&broker.addr, &topic, 1);
    assert_eq!(stored.len(), 8, "{stored:?}");
    // Writes resume at the truncation point.
    let producer: FutureProducer = client_config(&broker.addr)
        .set("acks", "all")
        .create()
        .unwrap();
    let d = producer
        .send(
            FutureRecord::to(&topic).key("k").payload("again"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(d.offset, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_topics_configs_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let topic = topic_name("restart");
    let broker = Medulla::start(dir.path(), &[]);
    let admin: AdminClient<DefaultClientContext> = client_config(&broker.addr).create().unwrap();
    admin
        .create_topics(
            &[NewTopic::new(&topic, 3, TopicReplication::Fixed(1))
                .set("retention.ms", "123456789")],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    let producer: FutureProducer = client_config(&broker.addr)
        .set("acks", "all")
        .create()
        .unwrap();
    for i in 0..30 {
        producer
            .send(
                FutureRecord::to(&topic)
                    .partition(i % 3)
                    .key("k")
                    .payload(&format!("v{i}")),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    drop((producer, admin));
    let before = read_all(&broker.addr, &topic, 3);
    assert!(broker.terminate().success(), "clean shutdown exits 0");

    let broker = Medulla::start(dir.path(), &[]);
    let admin: AdminClient<DefaultClientContext> = client_config(&broker.addr).create().unwrap();
    let md = admin
        .inner()
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 3);
    let cfg = admin
        .describe_configs(&[ResourceSpecifier::Topic(&topic)], &AdminOptions::new())
        .await
        .unwrap();
    let cfg = cfg.into_iter().next().unwrap().unwrap();
    assert_eq!(
        cfg.get("retention.ms").and_then(|e| e.value.clone()),
        Some("123456789".to_owned())
    );
    assert_eq!(read_all(&broker.addr, &topic, 3), before);
}
