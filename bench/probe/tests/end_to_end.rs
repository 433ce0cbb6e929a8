//! Both subcommands end to end against a real `medulla serve`: a short `latency` run
//! must get back every measured record, and `conns` must count every record produced
//! while it runs, once per connection reading that record's partition.
//!
//! The broker binary is `MEDULLA_BIN`, or `medulla` beside `medulla-bench` in the same
//! target directory (build it with the same profile: `cargo build [--release] -p medulla`;
//! `cargo test --workspace` builds it anyway).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

/// How long any wait in this test may take before it fails.
const DEADLINE: Duration = Duration::from_secs(60);
const PARTITIONS: u64 = 8;
const CONNECTIONS: u64 = 200;
const PRODUCED: u64 = 2_000;

fn bench_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_medulla-bench"))
}

fn medulla_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("MEDULLA_BIN") {
        return bin.into();
    }
    let sibling = bench_bin().with_file_name("medulla");
    assert!(
        sibling.exists(),
        "no broker at {}: build it with the same profile as this test (cargo build [--release] -p medulla) or set MEDULLA_BIN",
        sibling.display()
    );
    sibling
}

/// A `medulla serve` on an ephemeral loopback port, killed on drop.
struct Broker {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Broker {
    fn start(data_dir: &Path) -> Broker {
        let mut child = Command::new(medulla_bin())
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--kafka-listen", "127.0.0.1:0", "--registry-listen", "off"])
            .args(["--override", &format!("num.partitions={PARTITIONS}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn medulla serve");
        let log = Arc::new(Mutex::new(Vec::new()));
        keep_lines(child.stderr.take().expect("stderr"), Arc::clone(&log));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("medulla: kafka listener on ") {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let addr = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("medulla did not start: {}", log.lock().unwrap().join("\n"))
        });
        Broker { child, addr, log }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- medulla log ---\n{}",
                self.log.lock().unwrap().join("\n")
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects a child's output lines on a thread.
fn keep_lines(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            into.lock().unwrap().push(line);
        }
    });
}

/// Polls `f` until it returns `Some`, failing after [`DEADLINE`].
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn create_topic(broker: &Broker, name: &str) {
    let out = Command::new(medulla_bin())
        .args(["topic", "--bootstrap", &broker.addr, "create", name])
        .args(["--partitions", &PARTITIONS.to_string()])
        .output()
        .expect("run medulla topic create");
    assert!(
        out.status.success(),
        "topic create {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", path.display()))
}

/// Counts delivery reports.
#[derive(Default)]
struct Delivered {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Delivered {}

impl ProducerContext for Delivered {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = if result.is_ok() {
            &self.ok
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Produces `n` 1 KiB records with null keys (so to every partition) and waits for
/// their acknowledgements.
fn produce(broker: &Broker, topic: &str, n: u64) {
    let producer: BaseProducer<Delivered> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("acks", "all")
        .create_with_context(Delivered::default())
        .expect("producer");
    let value = vec![b'v'; 1024];
    for _ in 0..n {
        let mut record = BaseRecord::to(topic).payload(&value[..]);
        loop {
            match producer.send::<(), [u8]>(record) {
                Ok(()) => break,
                Err((e, back)) => {
                    assert!(is_queue_full(&e), "send to {topic} failed: {e}");
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(DEADLINE).expect("flush");
    let d = producer.context();
    assert_eq!(
        (
            d.ok.load(Ordering::Relaxed),
            d.failed.load(Ordering::Relaxed)
        ),
        (n, 0)
    );
}

fn is_queue_full(e: &rdkafka::error::KafkaError) -> bool {
    e.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
}

#[test]
fn latency_and_conns_against_a_real_broker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let broker = Broker::start(&data_dir);
    create_topic(&broker, "latency");
    create_topic(&broker, "conns");

    // latency: 2 s at 500 kB/s of 1 KiB records, after a 1 s warm-up.
    let latency_json = dir.path().join("latency.json");
    let out = Command::new(bench_bin())
        .args(["latency", "--bootstrap", &broker.addr, "--topic", "latency"])
        .args(["--rate-bytes", "500000", "--record-bytes", "1024"])
        .args(["--seconds", "2", "--warmup-seconds", "1"])
        .arg("--out")
        .arg(&latency_json)
        .output()
        .expect("run medulla-bench latency");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "latency failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("latency: "), "{stdout}");
    let report = read_json(&latency_json);
    // The pacing contract: seconds × rate / record bytes records in the measured phase.
    assert_eq!(report["records_sent"], 2 * 500_000 / 1024, "{report}");
    assert_eq!(
        report["records_received"], report["records_sent"],
        "{report}"
    );
    assert_eq!(report["delivery_errors"], 0, "{report}");
    assert_eq!(report["record_bytes"], 1024);
    assert_eq!(report["linger_ms"], 1);
    assert_eq!(report["acks"], "all");
    for summary in ["e2e_us", "ack_us"] {
        let s = &report[summary];
        let value = |k: &str| {
            s[k].as_u64()
                .unwrap_or_else(|| panic!("{summary}.{k}: {s}"))
        };
        assert!(value("p50") > 0, "{summary}: {s}");
        assert!(
            value("p50") <= value("p90") && value("p90") <= value("p99"),
            "{s}"
        );
        assert!(
            value("p99") <= value("p999") && value("p999") <= value("max"),
            "{s}"
        );
        assert!(s["mean"].as_f64().is_some(), "{s}");
    }

    // conns: every connection live, then records produced while it runs.
    let ready = dir.path().join("ready");
    let conns_json = dir.path().join("conns.json");
    let mut conns = Command::new(bench_bin())
        .args(["conns", "--bootstrap", &broker.addr, "--topic", "conns"])
        .args([
            "--connections",
            &CONNECTIONS.to_string(),
            "--max-wait-ms",
            "100",
        ])
        .args(["--progress-ms", "50"])
        .arg("--ready-file")
        .arg(&ready)
        .arg("--out")
        .arg(&conns_json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn medulla-bench conns");
    let conns_stderr = Arc::new(Mutex::new(Vec::new()));
    keep_lines(
        conns.stderr.take().expect("stderr"),
        Arc::clone(&conns_stderr),
    );
    let conns_stdout = Arc::new(Mutex::new(Vec::new()));
    keep_lines(
        conns.stdout.take().expect("stdout"),
        Arc::clone(&conns_stdout),
    );
    let live = wait_for("the ready file", || std::fs::read_to_string(&ready).ok());
    assert_eq!(live, CONNECTIONS.to_string());

    produce(&broker, "conns", PRODUCED);
    // Each record is read by the connections of its partition: CONNECTIONS / PARTITIONS.
    let expected = PRODUCED * (CONNECTIONS / PARTITIONS);
    wait_for("conns to fetch every record", || {
        let lines = conns_stderr.lock().unwrap();
        let records = lines
            .iter()
            .rev()
            .find_map(|l| l.split(" records=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())?;
        (records >= expected).then_some(())
    });
    let status = Command::new("kill")
        .args(["-TERM", &conns.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = wait_for("conns to exit", || conns.try_wait().expect("try_wait"));
    assert!(
        status.success(),
        "conns failed: {}",
        conns_stderr.lock().unwrap().join("\n")
    );
    let report = read_json(&conns_json);
    assert_eq!(report["connections"], CONNECTIONS, "{report}");
    assert_eq!(report["connected"], CONNECTIONS, "{report}");
    assert_eq!(report["partitions"], PARTITIONS, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["records"], expected, "{report}");
    assert!(
        report["bytes"].as_u64().unwrap() > expected * 1024,
        "{report}"
    );
    assert!(
        report["fetches"].as_u64().unwrap() >= CONNECTIONS,
        "{report}"
    );
    assert!(report["seconds"].as_f64().unwrap() > 0.0, "{report}");
    assert!(
        report["peak_fetch_latency_ms"].as_u64().is_some(),
        "{report}"
    );
    let summary = wait_for("the conns summary line", || {
        conns_stdout.lock().unwrap().first().cloned()
    });
    assert!(summary.starts_with("conns: "), "{summary}");
}
