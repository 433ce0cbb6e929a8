//! Client side of `bench/compaction.sh`: fills a compacted topic with keyed updates,
//! then, for a fixed time, produces at a steady rate while a tailing consumer and a
//! consumer scanning from the beginning run, and prints one `RESULT` line:
//! produce latency (send → acks=all acknowledgement), end-to-end fetch latency (send →
//! the tailing consumer has it), and scan throughput.
//!
//! ```text
//! compaction_bench --bootstrap HOST:PORT [--fill N] [--keys K] [--value-bytes B]
//!                  [--seconds S] [--rate R]
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

struct Args {
    bootstrap: String,
    fill: usize,
    keys: usize,
    value_bytes: usize,
    seconds: u64,
    rate: u64,
}

fn args() -> Args {
    let mut a = Args {
        bootstrap: String::new(),
        fill: 300_000,
        keys: 10_000,
        value_bytes: 100,
        seconds: 30,
        rate: 2_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let number = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{flag} {value}"))
        };
        match flag.as_str() {
            "--bootstrap" => a.bootstrap = value.clone(),
            "--fill" => a.fill = number() as usize,
            "--keys" => a.keys = number() as usize,
            "--value-bytes" => a.value_bytes = number() as usize,
            "--seconds" => a.seconds = number(),
            "--rate" => a.rate = number(),
            _ => panic!("unknown argument {flag}"),
        }
    }
    assert!(!a.bootstrap.is_empty(), "--bootstrap HOST:PORT is required");
    a
}

#[path = "../tests/common/kafka.rs"]
mod kafka;
use kafka::client_config as client;

/// Microseconds since `epoch`, written in the first 8 bytes of every value.
fn stamp(epoch: Instant, value_bytes: usize, i: usize) -> Vec<u8> {
    let mut value = (epoch.elapsed().as_micros() as u64).to_be_bytes().to_vec();
    value.resize(value_bytes.max(8), b'a' + (i % 26) as u8);
    value
}

fn percentile(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_us.len() - 1) as f64 * p).round() as usize;
    sorted_us[i] as f64 / 1000.0
}

/// Reads the topic from the beginning to its high watermark, again and again until
/// `stop`; returns (records, bytes, seconds) summed over the scans.
fn scan(bootstrap: &str, topic: &str, stop: &AtomicBool) -> (u64, u64, f64) {
    let (mut records, mut bytes, mut seconds) = (0u64, 0u64, 0f64);
    while !stop.load(Ordering::SeqCst) {
        let (consumer, high) = kafka::consumer_from_beginning(bootstrap, topic, 0);
        let start = Instant::now();
        let (mut n, mut b) = (0u64, 0u64);
        while !stop.load(Ordering::SeqCst) {
            let Some(m) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let m = m.expect("fetch");
            n += 1;
            b += (m.key_len() + m.payload_len()) as u64;
            if m.offset() + 1 >= high {
                records += n;
                bytes += b;
                seconds += start.elapsed().as_secs_f64();
                break;
            }
        }
    }
    (records, bytes, seconds)
}

/// Consumes from the end until `stop`; returns each record's send → receive latency.
fn tail(bootstrap: &str, topic: &str, epoch: Instant, stop: &AtomicBool) -> Vec<u64> {
    let consumer: BaseConsumer = client(bootstrap)
        .set("group.id", "compaction-bench-tail")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::End).unwrap();
    consumer.assign(&tpl).expect("assign");
    let mut latencies = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        if let Some(value) = m.payload().filter(|v| v.len() >= 8) {
            let sent = u64::from_be_bytes(value[..8].try_into().unwrap());
            latencies.push((epoch.elapsed().as_micros() as u64).saturating_sub(sent));
        }
    }
    latencies
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let topic = format!("compaction-bench-{}", std::process::id());
    let admin: AdminClient<DefaultClientContext> = client(&a.bootstrap).create().expect("admin");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))
                .set("cleanup.policy", "compact")
                .set("segment.bytes", "1048576")
                .set("min.cleanable.dirty.ratio", "0.01")
                .set("delete.retention.ms", "1000")],
            &AdminOptions::new(),
        )
        .await
        .expect("create_topics");
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    let producer: FutureProducer = client(&a.bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.size", "262144")
        .create()
        .expect("producer");
    let epoch = Instant::now();
    let fill_start = Instant::now();
    let mut pending = Vec::with_capacity(a.fill);
    for i in 0..a.fill {
        let key = format!("key-{}", i % a.keys);
        let value = stamp(epoch, a.value_bytes, i);
        pending.push(
            producer
                .send_result(FutureRecord::to(&topic).key(&key).payload(&value))
                .expect("enqueue"),
        );
    }
    for delivery in pending {
        delivery.await.expect("delivery").expect("acknowledged");
    }
    let fill_seconds = fill_start.elapsed().as_secs_f64();

    // Measured phase.
    let stop = Arc::new(AtomicBool::new(false));
    let tail_thread = {
        let (bootstrap, topic, stop) = (a.bootstrap.clone(), topic.clone(), Arc::clone(&stop));
        std::thread::spawn(move || tail(&bootstrap, &topic, epoch, &stop))
    };
    let scan_thread = {
        let (bootstrap, topic, stop) = (a.bootstrap.clone(), topic.clone(), Arc::clone(&stop));
        std::thread::spawn(move || scan(&bootstrap, &topic, &stop))
    };
    // Give the tailing consumer time to reach the end before the clock starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let produce_latencies = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    let ticks_per_second = 100;
    let per_tick = (a.rate / ticks_per_second).max(1) as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / ticks_per_second));
    let end = Instant::now() + Duration::from_secs(a.seconds);
    let mut i = 0usize;
    while Instant::now() < end {
        tick.tick().await;
        for _ in 0..per_tick {
            let key = format!("key-{}", i % a.keys);
            let value = stamp(epoch, a.value_bytes, i);
            i += 1;
            let sent = Instant::now();
            let delivery = producer
                .send_result(FutureRecord::to(&topic).key(&key).payload(&value))
                .expect("enqueue");
            let latencies = Arc::clone(&produce_latencies);
            tasks.push(tokio::spawn(async move {
                delivery.await.expect("delivery").expect("acknowledged");
                let us = sent.elapsed().as_micros() as u64;
                latencies.lock().unwrap().push(us);
            }));
        }
    }
    for t in tasks {
        t.await.expect("task");
    }
    // Let the tail consumer catch up with the last records.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut fetch = tail_thread.join().expect("tail");
    let (scan_records, scan_bytes, scan_seconds) = scan_thread.join().expect("scan");
    let mut produce = produce_latencies.lock().unwrap().clone();
    produce.sort_unstable();
    fetch.sort_unstable();
    println!(
        "RESULT fill_records={} fill_s={fill_seconds:.2} produced={} produce_p50_ms={:.2} produce_p99_ms={:.2} fetch_records={} fetch_p50_ms={:.2} fetch_p99_ms={:.2} scan_records={scan_records} scan_mb_per_s={:.2} scan_records_per_s={:.0}",
        a.fill,
        produce.len(),
        percentile(&produce, 0.50),
        percentile(&produce, 0.99),
        fetch.len(),
        percentile(&fetch, 0.50),
        percentile(&fetch, 0.99),
        scan_bytes as f64 / 1e6 / scan_seconds.max(1e-9),
        scan_records as f64 / scan_seconds.max(1e-9),
    );
}
