//! `medulla-bench latency`: end-to-end and acknowledgement latency at a fixed offered
//! rate, with rdkafka. One producer paces records into an existing topic; one consumer
//! in the same process, assigned to every partition from the end, receives them. Each
//! payload carries its send time (bytes 0..8: big-endian nanoseconds since one
//! process-wide `Instant`, so there is no clock skew) and its phase (byte 8: 0 warm-up,
//! 1 measured); the rest is filler.
//!
//! Latency is measured from the moment a record is handed to the producer, so time it
//! waits in the producer's queue — including retries while the queue is full — counts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use serde::Serialize;

use crate::limits::{
    DRAIN_DEADLINE, ERRORS_PRINTED_MAX, FIRST_WARMUP_RECORD_DEADLINE, PACING_TICK,
    PAYLOAD_HEADER_BYTES, QUEUE_FULL_DEADLINE,
};
use crate::stats::Summary;

/// `latency` flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The broker, HOST:PORT.
    #[arg(long)]
    pub bootstrap: String,
    /// An existing topic; every partition of it is produced to and consumed.
    #[arg(long)]
    pub topic: String,
    /// Offered rate, bytes of record values per second.
    #[arg(long, default_value_t = 20_000_000)]
    pub rate_bytes: u64,
    /// Bytes of each record value (at least 9: send time and phase).
    #[arg(long, default_value_t = 1024)]
    pub record_bytes: usize,
    /// Length of the measured phase, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub seconds: f64,
    /// Length of the warm-up, seconds (extended until a warm-up record came back).
    #[arg(long, default_value_t = 3.0)]
    pub warmup_seconds: f64,
    /// Producer linger.ms.
    #[arg(long, default_value_t = 1)]
    pub linger_ms: u64,
    /// Producer acks.
    #[arg(long, default_value = "all", value_parser = ["all", "-1", "0", "1"])]
    pub acks: String,
    /// Write the JSON report here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The JSON report. Counts and latencies are of measured-phase records only.
#[derive(Debug, Serialize)]
pub struct Report {
    pub records_sent: u64,
    pub records_received: u64,
    pub delivery_errors: u64,
    pub queue_full_retries: u64,
    /// Length of the measured phase.
    pub seconds: f64,
    /// Measured records × record bytes / `seconds`, in 10^6 bytes per second.
    pub offered_mb_per_s: f64,
    pub record_bytes: usize,
    pub linger_ms: u64,
    pub acks: String,
    /// Consumer receive time − send time.
    pub e2e_us: Summary,
    /// Delivery report time − send time.
    pub ack_us: Summary,
}

impl Report {
    /// Whether every measured record was delivered and received.
    pub fn complete(&self) -> bool {
        self.delivery_errors == 0 && self.records_received >= self.records_sent
    }

    /// The one-line summary printed on stdout.
    pub fn summary_line(&self) -> String {
        format!(
            "latency: {} records sent, {} received over {:.2} s at {:.2} MB/s ({} B records, linger.ms {}, acks {}); \
             e2e us p50 {} p90 {} p99 {} p99.9 {} max {}; ack us p50 {} p90 {} p99 {} p99.9 {} max {}; \
             {} delivery errors, {} queue-full retries",
            self.records_sent,
            self.records_received,
            self.seconds,
            self.offered_mb_per_s,
            self.record_bytes,
            self.linger_ms,
            self.acks,
            self.e2e_us.p50,
            self.e2e_us.p90,
            self.e2e_us.p99,
            self.e2e_us.p999,
            self.e2e_us.max,
            self.ack_us.p50,
            self.ack_us.p90,
            self.ack_us.p99,
            self.ack_us.p999,
            self.ack_us.max,
            self.delivery_errors,
            self.queue_full_retries,
        )
    }
}

const WARMUP: u8 = 0;
const MEASURED: u8 = 1;

/// Nanoseconds since the process-wide epoch.
fn now_ns(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What the producer remembers of each record until its delivery report.
struct Sent {
    ns: u64,
    phase: u8,
}

/// Delivery reports, as the producer's poll thread hands them over.
#[derive(Default)]
struct Deliveries {
    /// Acknowledgement latencies of measured records, microseconds.
    ack_us: Vec<u64>,
    /// Measured records acknowledged without error.
    measured_ok: u64,
    /// Failed deliveries, of either phase.
    errors: u64,
    first_error: Option<String>,
}

struct AckContext {
    epoch: Instant,
    deliveries: Mutex<Deliveries>,
}

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<Sent>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Box<Sent>) {
        let now = now_ns(self.epoch);
        // A poisoned lock only means another report panicked; the counts stay usable.
        let mut d = self.deliveries.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(_) if sent.phase == MEASURED => {
                d.ack_us.push(now.saturating_sub(sent.ns) / 1000);
                d.measured_ok += 1;
            }
            Ok(_) => {}
            Err((e, _)) => {
                d.errors += 1;
                if d.first_error.is_none() {
                    d.first_error = Some(e.to_string());
                }
            }
        }
    }
}

/// What the consumer thread shares with the pacing loop.
#[derive(Default)]
struct Received {
    warmup: AtomicU64,
    measured: AtomicU64,
    stop: AtomicBool,
}

/// Receives until `received.stop`; returns the end-to-end latencies of measured records.
fn consume(consumer: BaseConsumer, epoch: Instant, received: &Received) -> Vec<u64> {
    let mut e2e_us = Vec::new();
    let mut errors = 0;
    while !received.stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => {
                // Transient (a reconnect, say): a record it cost shows up as missing.
                errors += 1;
                if errors <= ERRORS_PRINTED_MAX {
                    eprintln!("medulla-bench latency: consumer: {e}");
                }
            }
            Some(Ok(m)) => {
                let now = now_ns(epoch);
                // Records of another writer on the topic are not ours: skipped.
                let Some(p) = m.payload().filter(|p| p.len() >= PAYLOAD_HEADER_BYTES) else {
                    continue;
                };
                let mut ns = [0u8; 8];
                ns.copy_from_slice(&p[..8]);
                match p[8] {
                    WARMUP => {
                        received.warmup.fetch_add(1, Ordering::Relaxed);
                    }
                    MEASURED => {
                        e2e_us.push(now.saturating_sub(u64::from_be_bytes(ns)) / 1000);
                        received.measured.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        }
    }
    e2e_us
}

/// Hands paced records to the producer.
struct Pacer<'a> {
    producer: &'a ThreadedProducer<AckContext>,
    topic: &'a str,
    epoch: Instant,
    payload: Vec<u8>,
    records_per_second: f64,
    queue_full_retries: u64,
}

impl Pacer<'_> {
    /// Records a phase should have sent `elapsed` after it started.
    fn due(&self, elapsed: Duration) -> u64 {
        (elapsed.as_secs_f64() * self.records_per_second) as u64
    }

    /// Sends records of `phase` until `sent` reaches `due`.
    fn send_until(&mut self, phase: u8, sent: &mut u64, due: u64) -> anyhow::Result<()> {
        while *sent < due {
            self.send(phase)?;
            *sent += 1;
        }
        Ok(())
    }

    fn send(&mut self, phase: u8) -> anyhow::Result<()> {
        let ns = now_ns(self.epoch);
        self.payload[..8].copy_from_slice(&ns.to_be_bytes());
        self.payload[8] = phase;
        let mut record: BaseRecord<'_, (), [u8], Box<Sent>> =
            BaseRecord::with_opaque_to(self.topic, Box::new(Sent { ns, phase }))
                .payload(&self.payload[..]);
        let mut full_since = None;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    let since = *full_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > QUEUE_FULL_DEADLINE {
                        bail!(
                            "the producer queue stayed full for {QUEUE_FULL_DEADLINE:?}: the broker does not keep up"
                        );
                    }
                    self.queue_full_retries += 1;
                    self.producer.poll(Duration::from_millis(1));
                    record = back;
                }
                Err((e, _)) => return Err(e).context("producer send"),
            }
        }
    }
}

/// Runs the benchmark; the report is complete or not (see [`Report::complete`]).
pub fn run(args: &Args) -> anyhow::Result<Report> {
    ensure!(
        args.record_bytes >= PAYLOAD_HEADER_BYTES,
        "--record-bytes must be at least {PAYLOAD_HEADER_BYTES}"
    );
    ensure!(args.rate_bytes > 0, "--rate-bytes must be positive");
    ensure!(
        args.seconds.is_finite() && args.seconds > 0.0,
        "--seconds must be positive"
    );
    ensure!(
        args.warmup_seconds.is_finite() && args.warmup_seconds >= 0.0,
        "--warmup-seconds must not be negative"
    );
    let epoch = Instant::now();

    let producer: ThreadedProducer<AckContext> = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("acks", &args.acks)
        .set("linger.ms", args.linger_ms.to_string())
        .set("enable.idempotence", "false")
        // The topic must exist: a missing one is an error, not one made with defaults.
        .set("allow.auto.create.topics", "false")
        .create_with_context(AckContext {
            epoch,
            deliveries: Mutex::new(Deliveries::default()),
        })
        .context("create the producer")?;
    let metadata = producer
        .client()
        .fetch_metadata(Some(&args.topic), Duration::from_secs(30))
        .with_context(|| format!("metadata of {}", args.topic))?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == args.topic)
        .ok_or_else(|| anyhow!("no metadata for topic {}", args.topic))?;
    if let Some(e) = topic.error() {
        bail!("topic {}: {}", args.topic, RDKafkaErrorCode::from(e));
    }
    ensure!(
        !topic.partitions().is_empty(),
        "topic {} has no partitions",
        args.topic
    );

    // No group membership: the consumer is assigned every partition, from its end.
    // librdkafka refuses `assign` without a group.id, but assigning never joins the
    // group and nothing is committed.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", "medulla-bench-latency-unused")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
        .context("create the consumer")?;
    let mut assignment = TopicPartitionList::new();
    for p in topic.partitions() {
        assignment
            .add_partition_offset(&args.topic, p.id(), Offset::End)
            .context("assignment")?;
    }
    consumer.assign(&assignment).context("assign")?;

    let received = Arc::new(Received::default());
    let consumer_thread = {
        let received = Arc::clone(&received);
        std::thread::Builder::new()
            .name("consumer".into())
            .spawn(move || consume(consumer, epoch, &received))
            .context("spawn the consumer thread")?
    };
    // The consumer thread must be stopped on every path out of here.
    let result = produce(args, &producer, epoch, &received);
    received.stop.store(true, Ordering::Relaxed);
    let mut e2e_us = consumer_thread
        .join()
        .map_err(|_| anyhow!("the consumer thread panicked"))?;
    let (measured_sent, measured_seconds, queue_full_retries) = result?;

    let mut deliveries = std::mem::take(
        &mut *producer
            .context()
            .deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    );
    if let Some(e) = &deliveries.first_error {
        eprintln!(
            "medulla-bench latency: {} deliveries failed; the first: {e}",
            deliveries.errors
        );
    }
    Ok(Report {
        records_sent: measured_sent,
        records_received: received.measured.load(Ordering::Relaxed),
        delivery_errors: deliveries.errors,
        queue_full_retries,
        seconds: measured_seconds,
        offered_mb_per_s: (measured_sent as f64 * args.record_bytes as f64)
            / measured_seconds
            / 1e6,
        record_bytes: args.record_bytes,
        linger_ms: args.linger_ms,
        acks: args.acks.clone(),
        e2e_us: Summary::of(&mut e2e_us),
        ack_us: Summary::of(&mut deliveries.ack_us),
    })
}

/// The warm-up, the measured phase and the drain. Returns the measured records sent,
/// the measured phase's length in seconds and the queue-full retries.
fn produce(
    args: &Args,
    producer: &ThreadedProducer<AckContext>,
    epoch: Instant,
    received: &Received,
) -> anyhow::Result<(u64, f64, u64)> {
    let mut filler = vec![b'm'; args.record_bytes];
    filler[..PAYLOAD_HEADER_BYTES].fill(0);
    let mut pacer = Pacer {
        producer,
        topic: &args.topic,
        epoch,
        payload: filler,
        records_per_second: args.rate_bytes as f64 / args.record_bytes as f64,
        queue_full_retries: 0,
    };

    // Warm-up: until its time is up and the consumer has had one of its records, so
    // the consumer's start offsets are resolved before anything is measured.
    let warmup = Duration::from_secs_f64(args.warmup_seconds);
    let start = Instant::now();
    let mut sent = 0;
    loop {
        let elapsed = start.elapsed();
        pacer.send_until(WARMUP, &mut sent, pacer.due(elapsed))?;
        if elapsed >= warmup && received.warmup.load(Ordering::Relaxed) > 0 {
            break;
        }
        if elapsed >= warmup + FIRST_WARMUP_RECORD_DEADLINE {
            bail!(
                "the consumer received none of {sent} warm-up records within {FIRST_WARMUP_RECORD_DEADLINE:?} after the warm-up"
            );
        }
        std::thread::sleep(PACING_TICK);
    }

    // Measured phase.
    let measured = Duration::from_secs_f64(args.seconds);
    let total = pacer.due(measured);
    let start = Instant::now();
    let mut sent = 0;
    loop {
        let elapsed = start.elapsed();
        let due = if elapsed >= measured {
            total
        } else {
            pacer.due(elapsed).min(total)
        };
        pacer.send_until(MEASURED, &mut sent, due)?;
        if elapsed >= measured {
            break;
        }
        std::thread::sleep(PACING_TICK);
    }
    let measured_seconds = start.elapsed().as_secs_f64();

    // Drain: every measured record acknowledged (or failed), then received.
    producer
        .flush(DRAIN_DEADLINE)
        .with_context(|| format!("flushing the producer within {DRAIN_DEADLINE:?}"))?;
    let acknowledged = producer
        .context()
        .deliveries
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .measured_ok;
    let deadline = Instant::now() + DRAIN_DEADLINE;
    while received.measured.load(Ordering::Relaxed) < acknowledged && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = received.measured.load(Ordering::Relaxed);
    if got < sent {
        eprintln!(
            "medulla-bench latency: the consumer received {got} of {sent} measured records ({acknowledged} acknowledged)"
        );
    }
    Ok((sent, measured_seconds, pacer.queue_full_retries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_means_all_received_and_no_error() {
        let report = |sent, received, errors| Report {
            records_sent: sent,
            records_received: received,
            delivery_errors: errors,
            queue_full_retries: 0,
            seconds: 1.0,
            offered_mb_per_s: 1.0,
            record_bytes: 1024,
            linger_ms: 1,
            acks: "all".into(),
            e2e_us: Summary::default(),
            ack_us: Summary::default(),
        };
        assert!(report(10, 10, 0).complete());
        assert!(!report(10, 9, 0).complete());
        assert!(!report(10, 10, 1).complete());
    }

    #[test]
    fn report_has_the_harness_fields() {
        let report = Report {
            records_sent: 1,
            records_received: 1,
            delivery_errors: 0,
            queue_full_retries: 0,
            seconds: 1.0,
            offered_mb_per_s: 0.001,
            record_bytes: 1024,
            linger_ms: 1,
            acks: "all".into(),
            e2e_us: Summary::default(),
            ack_us: Summary::default(),
        };
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        for key in [
            "records_sent",
            "records_received",
            "delivery_errors",
            "queue_full_retries",
            "seconds",
            "offered_mb_per_s",
            "record_bytes",
            "linger_ms",
            "acks",
            "e2e_us",
            "ack_us",
        ] {
            assert!(keys.contains(&key), "{key} missing from {json}");
        }
        for key in ["p50", "p90", "p99", "p999", "max", "mean"] {
            assert!(json["e2e_us"].get(key).is_some(), "e2e_us.{key}");
            assert!(json["ack_us"].get(key).is_some(), "ack_us.{key}");
        }
    }
}
