//! Idempotent produce over connections that break: an rdkafka producer with
//! `enable.idempotence=true` talks to the broker through a loopback proxy that cuts every
//! connection at a random point (after a random number of bytes in either direction, or
//! after a random short lifetime), so requests are lost half-sent and responses are lost
//! after the broker appended the batch. The producer retries with the same producer id
//! and sequence numbers; read back over a direct connection, every record must be in the
//! log exactly once and in order per partition.
//!
//! The broker advertises the proxy's address (`--advertise`), so Metadata sends the
//! client back through the proxy rather than around it.
//!
//! The same holds across broker crashes: SIGKILLed with requests in flight and restarted,
//! the broker rebuilds its producer state from the log and de-duplicates the retries.

mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Medulla, client_config};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, RecordBatchDecoder};
use rdkafka::ClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PARTITIONS: i32 = 4;
/// Records produced at least; production goes on (up to RECORDS_MAX) until the proxy has
/// cut CUTS_MIN connections, so a run where the cuts happened to come late still tests
/// something.
const RECORDS: usize = 20_000;
const RECORDS_MAX: usize = 200_000;
const CUTS_MIN: u64 = 20;
const WINDOW: usize = 2_000;

/// xorshift64*: the proxy's randomness. The seed is printed, so a failing run's cut
/// pattern can be told apart from another's (timing still varies between runs).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Log-uniform in [lo, hi): small values as likely per octave as large ones.
    fn log_range(&mut self, lo: u64, hi: u64) -> u64 {
        let f = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((lo as f64) * ((hi as f64) / (lo as f64)).powf(f)) as u64
    }
}

/// What the proxy did, for the assertions and the failure message.
#[derive(Default)]
struct ProxyStats {
    connections: AtomicU64,
    /// Connections the proxy cut (byte budget or lifetime), not those a side closed.
    cuts: AtomicU64,
    cuts_by_bytes: AtomicU64,
}

/// Accepts clients on `listener` and relays each to `upstream`, cutting the pair of
/// connections after a random byte budget (both directions together; the last chunk is
/// written only up to the budget, so a frame can be cut in the middle) or a random
/// lifetime, whichever comes first.
async fn proxy(listener: TcpListener, upstream: String, seed: u64, stats: Arc<ProxyStats>) {
    let mut rng = Rng::new(seed);
    while let Ok((client, _)) = listener.accept().await {
        stats.connections.fetch_add(1, Ordering::Relaxed);
        let budget_bytes = rng.log_range(2_000, 64_000) as i64;
        let lifetime = Duration::from_millis(rng.log_range(50, 1_500));
        let upstream = upstream.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let left = Arc::new(AtomicI64::new(budget_bytes));
            let cut = tokio::select! {
                c = pump(cr, sw, left.clone()) => c,
                c = pump(sr, cw, left.clone()) => c,
                _ = tokio::time::sleep(lifetime) => true,
            };
            if cut {
                stats.cuts.fetch_add(1, Ordering::Relaxed);
                if left.load(Ordering::Relaxed) <= 0 {
                    stats.cuts_by_bytes.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Dropping the halves closes both sockets.
        });
    }
}

/// Copies `from` to `to` while the shared budget lasts. Returns true if the budget ran
/// out (a cut), false if a side closed or failed.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    left: Arc<AtomicI64>,
) -> bool {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let before = left.fetch_sub(n as i64, Ordering::Relaxed);
        if before < n as i64 {
            let allowed = before.max(0) as usize;
            let _ = to.write_all(&buf[..allowed]).await;
            return true;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return false;
        }
    }
}

/// Delivery reports and client errors of the producer.
#[derive(Default)]
struct Reports {
    delivered: AtomicU64,
    failed: Mutex<Vec<String>>,
}

struct Ctx(Arc<Reports>);

// Connection errors are the point of the test: the default error callback only logs them.
impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.0.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => self.0.failed.lock().unwrap().push(e.to_string()),
        }
    }
}

/// Every record of `topic`'s `partition` from offset 0 to the high watermark, read with
/// Fetch v12 over a direct connection to `addr`. Control records are dropped.
async fn fetch_all(addr: &str, topic: &str, partition: i32) -> (Vec<Record>, i64) {
    let mut c = medulla::admin::Client::connect(addr).await.unwrap();
    let mut out: Vec<Record> = Vec::new();
    let mut offset = 0i64;
    let start = Instant::now();
    loop {
        let fetch = FetchRequest::default()
            .with_max_wait_ms(100)
            .with_max_bytes(4 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(4 << 20),
                    ]),
            ]);
        let r = c.send_at(fetch, 12).await.unwrap();
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch {topic}[{partition}] at {offset}");
        let hwm = p.high_watermark;
        if let Some(mut bytes) = p.records.clone() {
            for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
                for rec in set.records {
                    if rec.offset >= offset {
                        offset = rec.offset + 1;
                        if !rec.control {
                            out.push(rec);
                        }
                    }
                }
            }
        }
        if offset >= hwm {
            return (out, hwm);
        }
        assert!(
            start.elapsed() < common::DEADLINE,
            "reading {topic}[{partition}]: at offset {offset} of {hwm} after {:?}",
            common::DEADLINE
        );
    }
}

/// An idempotent producer (acks=all, retries) with quick reconnects, reporting to `reports`.
fn idempotent_producer(bootstrap: &str, reports: &Arc<Reports>) -> BaseProducer<Ctx> {
    client_config(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.num.messages", "200")
        .set("message.timeout.ms", "120000")
        .set("reconnect.backoff.ms", "10")
        .set("reconnect.backoff.max.ms", "200")
        .set("retry.backoff.ms", "20")
        .set("retry.backoff.max.ms", "200")
        .create_with_context(Ctx(reports.clone()))
        .expect("producer")
}

/// Record `i` of a run: key `key-i`, to partition i mod PARTITIONS, whose value is its
/// sequence number within that partition (i div PARTITIONS).
fn send_record(producer: &BaseProducer<Ctx>, topic: &str, i: usize) {
    let p = (i % PARTITIONS as usize) as i32;
    let key = format!("key-{i}");
    let value = (i / PARTITIONS as usize).to_string();
    let mut rec = BaseRecord::to(topic).partition(p).key(&key).payload(&value);
    loop {
        match producer.send(rec) {
            Ok(()) => break,
            Err((e, back)) => {
                assert!(
                    matches!(
                        e,
                        rdkafka::error::KafkaError::MessageProduction(
                            rdkafka::types::RDKafkaErrorCode::QueueFull
                        )
                    ),
                    "send failed: {e}"
                );
                rec = back;
                producer.poll(Duration::from_millis(10));
            }
        }
    }
    producer.poll(Duration::ZERO);
}

/// Keeps at most WINDOW of the `sent` records waiting for delivery, so production keeps
/// pace with the connections that carry it.
fn wait_for_window(producer: &BaseProducer<Ctx>, reports: &Reports, sent: usize) {
    while sent - reports.delivered.load(Ordering::Relaxed) as usize > WINDOW {
        producer.poll(Duration::from_millis(5));
    }
}

/// Flushes, then fails the test on a fatal producer error, a failed delivery or a
/// record never reported.
fn flush_and_check(
    producer: &BaseProducer<Ctx>,
    reports: &Reports,
    sent: usize,
    summary: &dyn Fn() -> String,
) {
    let flushed = producer.flush(Duration::from_secs(150));
    let fatal = producer.client().fatal_error();
    let failed = reports.failed.lock().unwrap().clone();
    eprintln!("{}", summary());
    assert!(
        fatal.is_none(),
        "fatal producer error: {fatal:?}; {}",
        summary()
    );
    assert!(
        flushed.is_ok(),
        "flush did not finish: {flushed:?}; {}",
        summary()
    );
    assert!(
        failed.is_empty(),
        "delivery failed: {:?}; {}",
        &failed[..failed.len().min(5)],
        summary()
    );
    assert_eq!(
        reports.delivered.load(Ordering::Relaxed),
        sent as u64,
        "{}",
        summary()
    );
}

/// Reads `topic` back over a direct connection to `addr`: records 0..sent (see
/// [`send_record`]) are each in the log exactly once, in order per partition, in batches
/// that carry a producer id.
fn check_exactly_once(
    rt: &tokio::runtime::Runtime,
    addr: &str,
    topic: &str,
    sent: usize,
    summary: &str,
) {
    for p in 0..PARTITIONS {
        let (records, hwm) = rt.block_on(fetch_all(addr, topic, p));
        let want = (sent + (PARTITIONS - 1 - p) as usize) / PARTITIONS as usize;
        let values: Vec<u64> = records
            .iter()
            .map(|r| {
                std::str::from_utf8(r.value.as_deref().unwrap_or_default())
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        let expected: Vec<u64> = (0..want as u64).collect();
        if values != expected {
            let mut seen = std::collections::HashSet::new();
            let dups: Vec<u64> = values
                .iter()
                .copied()
                .filter(|v| !seen.insert(*v))
                .collect();
            let missing: Vec<u64> = expected
                .iter()
                .copied()
                .filter(|v| !seen.contains(v))
                .collect();
            panic!(
                "partition {p}: {} records up to offset {hwm}, want {want} in order; {} duplicated (first {:?}), {} missing (first {:?}); {summary}",
                values.len(),
                dups.len(),
                &dups[..dups.len().min(5)],
                missing.len(),
                &missing[..missing.len().min(5)],
            );
        }
        for (seq, r) in records.iter().enumerate() {
            let key = format!("key-{}", seq * PARTITIONS as usize + p as usize);
            assert_eq!(
                r.key.as_deref(),
                Some(key.as_bytes()),
                "partition {p} record {seq}"
            );
            assert!(
                r.producer_id >= 0,
                "partition {p} record {seq}: producer id {}",
                r.producer_id
            );
        }
    }
}

fn create_topic(broker: &Medulla, prefix: &str) -> String {
    let topic = common::topic_name(prefix);
    let (ok, _, err) = common::cli(&[
        "topic",
        "create",
        &topic,
        "--partitions",
        &PARTITIONS.to_string(),
        "--bootstrap",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    topic
}

#[test]
fn idempotent_producer_through_a_connection_cutting_proxy_writes_each_record_once_in_order() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_addr = std_listener.local_addr().unwrap().to_string();
    std_listener.set_nonblocking(true).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &["--advertise", &proxy_addr]);
    let topic = create_topic(&broker, "idempotence");
    let stats = Arc::new(ProxyStats::default());
    {
        let _guard = rt.enter();
        let listener = TcpListener::from_std(std_listener).unwrap();
        rt.spawn(proxy(listener, broker.addr.clone(), seed, stats.clone()));
    }

    let reports = Arc::new(Reports::default());
    let producer = idempotent_producer(&proxy_addr, &reports);
    let started = Instant::now();
    let mut sent = 0;
    while sent < RECORDS_MAX {
        if sent >= RECORDS && sent % 1000 == 0 && stats.cuts.load(Ordering::Relaxed) >= CUTS_MIN {
            break;
        }
        wait_for_window(&producer, &reports, sent);
        send_record(&producer, &topic, sent);
        sent += 1;
    }
    let summary = || {
        format!(
            "seed {seed}: {} connections through the proxy, {} cut ({} by byte budget); {sent} sent, {} delivered, {} failed, {:?} to produce and flush",
            stats.connections.load(Ordering::Relaxed),
            stats.cuts.load(Ordering::Relaxed),
            stats.cuts_by_bytes.load(Ordering::Relaxed),
            reports.delivered.load(Ordering::Relaxed),
            reports.failed.lock().unwrap().len(),
            started.elapsed(),
        )
    };
    flush_and_check(&producer, &reports, sent, &summary);
    let cuts = stats.cuts.load(Ordering::Relaxed);
    assert!(
        cuts >= CUTS_MIN,
        "the proxy cut only {cuts} connections (want ≥ {CUTS_MIN}): the test proved nothing; {}",
        summary()
    );
    drop(producer);
    // Read back directly from the broker, not through the proxy.
    check_exactly_once(&rt, &broker.addr, &topic, sent, &summary());
}

/// The broker is SIGKILLed twice while the producer has requests in flight, and restarted
/// on the same port and data dir: batches appended before a kill whose acknowledgement was
/// lost are retried with the same producer id and sequence numbers, and the restarted
/// broker, its producer state rebuilt from the log, must recognise them as duplicates.
#[test]
fn idempotent_producer_writes_each_record_once_across_broker_sigkills() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Medulla::start(dir.path(), &[]);
    let addr = broker.addr.clone();
    let topic = create_topic(&broker, "idempotence-kill");
    let reports = Arc::new(Reports::default());
    let producer = idempotent_producer(&addr, &reports);
    let kill_at = [RECORDS / 3, 2 * RECORDS / 3];
    let mut in_flight_at_kill = Vec::new();
    let mut sent = 0;
    while sent < RECORDS {
        if kill_at.contains(&sent) {
            // Kill with a full window of records waiting for their acknowledgement.
            let delivered = reports.delivered.load(Ordering::Relaxed) as usize;
            in_flight_at_kill.push(sent - delivered);
            broker.kill9();
            broker = Medulla::start_on(dir.path(), &addr, &[]);
        }
        wait_for_window(&producer, &reports, sent);
        send_record(&producer, &topic, sent);
        sent += 1;
    }
    let summary = || {
        format!(
            "{sent} sent, {} delivered, {} failed; records awaiting acknowledgement at the kills: {in_flight_at_kill:?}",
            reports.delivered.load(Ordering::Relaxed),
            reports.failed.lock().unwrap().len(),
        )
    };
    flush_and_check(&producer, &reports, sent, &summary);
    drop(producer);
    check_exactly_once(&rt, &addr, &topic, sent, &summary());
}
