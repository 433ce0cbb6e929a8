//! Shared test harness: start the real `medulla serve` binary on an ephemeral loopback
//! port, wait for it with a deadline, stop it by signal.
#![allow(dead_code)]

#[allow(dead_code)] // each test binary uses its own part of the harness
pub mod jwt;
pub mod registry;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any wait in these tests may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A running `medulla serve`.
pub struct Medulla {
    child: Option<Child>,
    /// `127.0.0.1:PORT` of the first listener (empty when only the platform services
    /// run).
    pub addr: String,
    /// Every listener's address by name (`PLAINTEXT` → `127.0.0.1:PORT`).
    pub listeners: std::collections::HashMap<String, String>,
    /// `http://127.0.0.1:PORT` of the schema registry, when it runs. Tests get no
    /// registry unless they pass `--registry-listen` themselves.
    pub registry: Option<String>,
    /// Its data directory.
    pub data_dir: PathBuf,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Medulla {
    /// Starts a broker on `data_dir` with extra `serve` arguments.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Medulla {
        Self::start_on(data_dir, "127.0.0.1:0", extra)
    }

    /// Starts a broker on a given listen address.
    pub fn start_on(data_dir: &Path, listen: &str, extra: &[&str]) -> Medulla {
        Self::start_with_log(data_dir, listen, extra, "info")
    }

    /// Starts a broker with a `RUST_LOG` filter (tests that wait on a debug line).
    pub fn start_with_log(
        data_dir: &Path,
        listen: &str,
        extra: &[&str],
        rust_log: &str,
    ) -> Medulla {
        let with_registry = extra.iter().any(|a| a.starts_with("--registry-listen"));
        let external = extra.iter().any(|a| a.starts_with("--kafka-bootstrap"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_medulla"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--kafka-listen")
            .arg(listen);
        if !with_registry {
            cmd.arg("--registry-listen").arg("off");
        }
        let mut child = cmd
            .args(extra)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn medulla");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("medulla: kafka listener on ") {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let name = rest
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("name="))
                        .unwrap_or("PLAINTEXT");
                    let _ = tx.send((false, format!("{name} {addr}")));
                } else if let Some(rest) = line.strip_prefix("medulla: schema registry on ") {
                    let _ = tx.send((true, rest.trim().to_owned()));
                }
            }
        });
        // One ready line per listener: as many as `listeners` (an override's, if any) names.
        let expected = extra
            .iter()
            .filter_map(|a| {
                a.strip_prefix("--override=")
                    .unwrap_or(a)
                    .strip_prefix("listeners=")
            })
            .next_back()
            .map_or(1, |v| v.split(',').filter(|e| !e.trim().is_empty()).count());
        let (mut addr, mut registry) = (None, None);
        let mut listeners = std::collections::HashMap::new();
        while (listeners.len() < expected && !external)
            || (registry.is_none() && (with_registry || external))
        {
            match rx.recv_timeout(DEADLINE) {
                Ok((false, a)) => {
                    let (name, a) = a.split_once(' ').unwrap_or(("PLAINTEXT", &a));
                    addr.get_or_insert_with(|| a.to_owned());
                    listeners.insert(name.to_owned(), a.to_owned());
                }
                Ok((true, r)) => registry = Some(r),
                Err(_) => {
                    let _ = child.kill();
                    let log = lines.lock().unwrap().join("\n");
                    panic!("medulla did not start within {DEADLINE:?}; stderr:\n{log}");
                }
            }
        }
        Medulla {
            child: Some(child),
            addr: addr.unwrap_or_default(),
            listeners,
            registry,
            data_dir: data_dir.to_owned(),
            stderr: lines,
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        signal(c.id(), "TERM");
        wait_with_deadline(&mut c)
    }

    /// What the broker has logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Medulla {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- medulla log ({}) ---\n{}\n--- end ---",
                self.addr,
                self.stderr()
            );
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Waits for a child to exit, failing the test after [`DEADLINE`].
pub fn wait_with_deadline(c: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = c.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "process did not exit within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` until it returns `Some`, failing after [`DEADLINE`].
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs the `medulla` CLI with `args`; returns (success, stdout, stderr).
pub fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_medulla"))
        .args(args)
        .output()
        .expect("run medulla");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

mod kafka;
#[allow(unused_imports)] // each test binary uses its own part of the harness
pub use kafka::{client_config, consumer_from_beginning};

/// A unique topic name for one test.
pub fn topic_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ rand_u64()
    )
}

fn rand_u64() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(1);
    h.finish() as u128
}

/// One request frame (size prefix, header, body) encoded by kafka-protocol.
pub fn request_frame<R: kafka_protocol::protocol::Encodable>(
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Vec<u8> {
    use bytes::BufMut;
    use kafka_protocol::protocol::Encodable;
    let mut buf = bytes::BytesMut::new();
    buf.put_i32(0);
    kafka_protocol::messages::RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(kafka_protocol::protocol::StrBytes::from_static_str(
            "medulla-test",
        )))
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let n = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&n.to_be_bytes());
    buf.to_vec()
}

/// Reads one response frame (without its size prefix).
pub fn read_frame(s: &mut std::net::TcpStream) -> std::io::Result<bytes::Bytes> {
    use std::io::Read;
    let mut size = [0u8; 4];
    s.read_exact(&mut size)?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut body)?;
    Ok(bytes::Bytes::from(body))
}

// Group requests shared by the version sweep and the group tests.

use kafka_protocol::messages::{
    GroupId, JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

/// Joins `group` as a new member at JoinGroup version `v`, through MEMBER_ID_REQUIRED
/// when the version has it.
pub async fn join_group(
    c: &mut medulla::admin::Client,
    group: &str,
    v: i16,
) -> anyhow::Result<JoinGroupResponse> {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    let request = |member_id: StrBytes| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(member_id)
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(bytes::Bytes::from_static(b"meta")),
            ])
    };
    let first = c.send_at(request(StrBytes::default()), v).await?;
    if first.error_code != 79 {
        return Ok(first);
    }
    c.send_at(request(first.member_id), v).await
}

pub fn sync_request(
    group: &str,
    j: &JoinGroupResponse,
    assignment: &'static [u8],
) -> SyncGroupRequest {
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_generation_id(j.generation_id)
        .with_member_id(j.member_id.clone())
        .with_assignments(vec![
            SyncGroupRequestAssignment::default()
                .with_member_id(j.member_id.clone())
                .with_assignment(bytes::Bytes::from_static(assignment)),
        ])
}

/// Commits offset 1 of topic `sweep`, partition 0, for `group` without a generation (a simple group).
pub async fn commit_simple(c: &mut medulla::admin::Client, group: &str) {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    let r = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("sweep")))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default().with_committed_offset(1),
                ]),
        ]);
    let r = c.send_at(r, 8).await.unwrap();
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
}

/// `records` encoded as uncompressed RecordBatch v2 (kafka-protocol's encoder starts a new
/// batch wherever offset − sequence changes).
pub fn encode_batch(records: &[kafka_protocol::records::Record]) -> bytes::Bytes {
    use kafka_protocol::records::{Compression, RecordBatchEncoder, RecordEncodeOptions};
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode a record batch");
    buf.freeze()
}
