//! `medulla-bench conns`: many client connections, each a long-polling consumer of one
//! partition, until SIGTERM or SIGINT. Connection `i` reads partition `i % P` from its
//! latest offset with a loop of Fetch requests, each held by the broker up to
//! `--max-wait-ms`; the counts and the slowest fetch are reported.
//!
//! Every message is encoded and decoded by kafka-protocol at versions every Kafka broker
//! since 2.x serves (Metadata v4, ListOffsets v1, Fetch v4). Every connection goes to
//! the bootstrap address: the tool targets single-broker deployments.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId, FetchRequest, ListOffsetsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::{Message, StrBytes};
use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::limits::{
    CONNECTS_IN_FLIGHT_MAX, ERRORS_PRINTED_MAX, FETCH_BYTES_MAX, PARTITION_FETCH_BYTES_MAX,
    REQUEST_TIMEOUT,
};
use crate::wire::{Connection, walk_batches};

const METADATA_VERSION: i16 = 4;
const LIST_OFFSETS_VERSION: i16 = 1;
const FETCH_VERSION: i16 = 4;

const _: () = assert!(
    MetadataRequest::VERSIONS.min <= METADATA_VERSION
        && METADATA_VERSION <= MetadataRequest::VERSIONS.max
);
const _: () = assert!(
    ListOffsetsRequest::VERSIONS.min <= LIST_OFFSETS_VERSION
        && LIST_OFFSETS_VERSION <= ListOffsetsRequest::VERSIONS.max
);
const _: () = assert!(
    FetchRequest::VERSIONS.min <= FETCH_VERSION && FETCH_VERSION <= FetchRequest::VERSIONS.max
);

/// ListOffsets timestamp meaning "the latest offset".
const LATEST: i64 = -1;

/// `conns` flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The broker, HOST:PORT; every connection goes to it.
    #[arg(long)]
    pub bootstrap: String,
    /// An existing topic; connection i reads partition i % (its partition count).
    #[arg(long)]
    pub topic: String,
    /// How many connections to open.
    #[arg(long)]
    pub connections: u32,
    /// Fetch max_wait_ms: how long the broker may hold a fetch that has no data.
    #[arg(long, default_value_t = 500)]
    pub max_wait_ms: i32,
    /// Written (with the number of live connections) once every connection has
    /// connected and completed its ListOffsets, or failed.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print a progress line on stderr this often (0: never).
    #[arg(long, default_value_t = 0)]
    pub progress_ms: u64,
}

/// The JSON report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Connections asked for.
    pub connections: u32,
    /// Connections that connected and completed their ListOffsets.
    pub connected: u64,
    /// The topic's partition count.
    pub partitions: usize,
    /// Fetch responses received.
    pub fetches: u64,
    /// Records in the complete batches fetched, over all connections.
    pub records: u64,
    /// Bytes of those batches.
    pub bytes: u64,
    /// Connections that failed (at any step); they were not retried.
    pub errors: u64,
    /// From the first connect to the signal.
    pub seconds: f64,
    /// The longest round trip of one Fetch (a fetch with no data is held up to
    /// `--max-wait-ms` by design).
    pub peak_fetch_latency_ms: u64,
}

impl Report {
    /// The one-line summary printed on stdout.
    pub fn summary_line(&self) -> String {
        format!(
            "conns: {} of {} connections live on {} partitions over {:.2} s: {} fetches, {} records, {} bytes, \
             {} errors, peak fetch latency {} ms",
            self.connected,
            self.connections,
            self.partitions,
            self.seconds,
            self.fetches,
            self.records,
            self.bytes,
            self.errors,
            self.peak_fetch_latency_ms,
        )
    }
}

/// Counters every connection adds to.
#[derive(Default)]
struct Totals {
    connected: AtomicU64,
    fetches: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    peak_fetch_latency_ms: AtomicU64,
}

impl Totals {
    fn failed(&self, connection: u32, e: &anyhow::Error) {
        let n = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= ERRORS_PRINTED_MAX {
            eprintln!("medulla-bench conns: connection {connection}: {e:#}");
        }
        if n == ERRORS_PRINTED_MAX {
            eprintln!("medulla-bench conns: further connection errors are only counted");
        }
    }
}

/// Runs until SIGTERM or SIGINT, then reports.
pub fn run(args: &Args) -> anyhow::Result<Report> {
    ensure!(args.connections > 0, "--connections must be positive");
    ensure!(args.max_wait_ms >= 0, "--max-wait-ms must not be negative");
    raise_open_files_limit(args.connections);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?
        .block_on(run_async(args))
}

/// Each connection is a descriptor: raise the soft limit to the hard one and say so if
/// that is still too few.
fn raise_open_files_limit(connections: u32) {
    let wanted = u64::from(connections) + 64;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < wanted => eprintln!(
            "medulla-bench conns: the open-files limit is {limit}: {connections} connections may not fit"
        ),
        Ok(_) => {}
        Err(e) => eprintln!("medulla-bench conns: cannot raise the open-files limit: {e}"),
    }
}

async fn run_async(args: &Args) -> anyhow::Result<Report> {
    // Installed first, so a signal during setup ends the run rather than the process.
    let mut terminate = signal(SignalKind::terminate()).context("install the SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("install the SIGINT handler")?;

    let topic = TopicName(StrBytes::from_string(args.topic.clone()));
    let partitions = partition_count(&args.bootstrap, &topic).await?;
    let partitions_i32 = i32::try_from(partitions).context("partition count")?;

    let totals = Arc::new(Totals::default());
    let connects = Arc::new(Semaphore::new(CONNECTS_IN_FLIGHT_MAX));
    // One permit per connection that is done with its setup, whether it succeeded.
    let settled = Arc::new(Semaphore::new(0));
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    for i in 0..args.connections {
        let consumer = Consumer {
            id: i,
            bootstrap: args.bootstrap.clone(),
            topic: topic.clone(),
            partition: (i % partitions_i32 as u32) as i32,
            max_wait_ms: args.max_wait_ms,
            totals: Arc::clone(&totals),
        };
        let (connects, settled) = (Arc::clone(&connects), Arc::clone(&settled));
        tasks.spawn(async move {
            let setup = {
                let _permit = connects.acquire().await;
                consumer.setup().await
            };
            match setup {
                Ok((connection, offset)) => {
                    consumer.totals.connected.fetch_add(1, Ordering::Relaxed);
                    settled.add_permits(1);
                    if let Err(e) = consumer.fetch_loop(connection, offset).await {
                        consumer.totals.failed(consumer.id, &e);
                    }
                }
                Err(e) => {
                    consumer.totals.failed(consumer.id, &e);
                    settled.add_permits(1);
                }
            }
        });
    }
    {
        let (settled, totals) = (Arc::clone(&settled), Arc::clone(&totals));
        let (ready_file, connections) = (args.ready_file.clone(), args.connections);
        tasks.spawn(async move {
            if settled.acquire_many(connections).await.is_err() {
                return;
            }
            let connected = totals.connected.load(Ordering::Relaxed);
            if connected < u64::from(connections) {
                eprintln!(
                    "medulla-bench conns: only {connected} of {connections} connections are live"
                );
            }
            if let Some(path) = ready_file
                && let Err(e) = write_atomically(&path, &connected.to_string()).await
            {
                eprintln!("medulla-bench conns: {e:#}");
            }
        });
    }
    if args.progress_ms > 0 {
        let totals = Arc::clone(&totals);
        let period = Duration::from_millis(args.progress_ms);
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!(
                    "medulla-bench conns: progress connected={} fetches={} records={} bytes={} errors={}",
                    totals.connected.load(Ordering::Relaxed),
                    totals.fetches.load(Ordering::Relaxed),
                    totals.records.load(Ordering::Relaxed),
                    totals.bytes.load(Ordering::Relaxed),
                    totals.errors.load(Ordering::Relaxed),
                );
            }
        });
    }

    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    let seconds = start.elapsed().as_secs_f64();
    tasks.shutdown().await;

    Ok(Report {
        connections: args.connections,
        connected: totals.connected.load(Ordering::Relaxed),
        partitions,
        fetches: totals.fetches.load(Ordering::Relaxed),
        records: totals.records.load(Ordering::Relaxed),
        bytes: totals.bytes.load(Ordering::Relaxed),
        errors: totals.errors.load(Ordering::Relaxed),
        seconds,
        peak_fetch_latency_ms: totals.peak_fetch_latency_ms.load(Ordering::Relaxed),
    })
}

/// The topic's partition count, from Metadata on a connection of its own.
async fn partition_count(bootstrap: &str, topic: &TopicName) -> anyhow::Result<usize> {
    let mut connection = Connection::connect(bootstrap).await?;
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic.clone())),
        ]))
        .with_allow_auto_topic_creation(false);
    let response =
        tokio::time::timeout(REQUEST_TIMEOUT, connection.call(&request, METADATA_VERSION))
            .await
            .map_err(|_| anyhow!("Metadata timed out"))??;
    let t = response
        .topics
        .iter()
        .find(|t| t.name.as_ref() == Some(topic))
        .ok_or_else(|| anyhow!("no metadata for topic {}", topic.as_str()))?;
    check(
        t.error_code,
        &format!("metadata of topic {}", topic.as_str()),
    )?;
    ensure!(
        !t.partitions.is_empty(),
        "topic {} has no partitions",
        topic.as_str()
    );
    Ok(t.partitions.len())
}

/// One connection's part.
struct Consumer {
    id: u32,
    bootstrap: String,
    topic: TopicName,
    partition: i32,
    max_wait_ms: i32,
    totals: Arc<Totals>,
}

impl Consumer {
    /// Connects and finds the partition's latest offset.
    async fn setup(&self) -> anyhow::Result<(Connection, i64)> {
        let mut connection = Connection::connect(&self.bootstrap).await?;
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(self.topic.clone())
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(self.partition)
                            .with_timestamp(LATEST),
                    ]),
            ]);
        let response = tokio::time::timeout(
            REQUEST_TIMEOUT,
            connection.call(&request, LIST_OFFSETS_VERSION),
        )
        .await
        .map_err(|_| anyhow!("ListOffsets timed out"))??;
        let p = response
            .topics
            .iter()
            .filter(|t| t.name == self.topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == self.partition)
            .ok_or_else(|| anyhow!("ListOffsets answered without partition {}", self.partition))?;
        check(p.error_code, "ListOffsets")?;
        ensure!(p.offset >= 0, "ListOffsets answered offset {}", p.offset);
        Ok((connection, p.offset))
    }

    /// Fetches from `offset` until an error (or the task is cancelled).
    async fn fetch_loop(&self, mut connection: Connection, mut offset: i64) -> anyhow::Result<()> {
        let max_wait = Duration::from_millis(self.max_wait_ms as u64);
        loop {
            let request = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(self.max_wait_ms)
                .with_min_bytes(1)
                .with_max_bytes(FETCH_BYTES_MAX)
                .with_isolation_level(0)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(self.topic.clone())
                        .with_partitions(vec![
                            FetchPartition::default()
                                .with_partition(self.partition)
                                .with_fetch_offset(offset)
                                .with_partition_max_bytes(PARTITION_FETCH_BYTES_MAX),
                        ]),
                ]);
            let sent = Instant::now();
            let response = tokio::time::timeout(
                max_wait + REQUEST_TIMEOUT,
                connection.call(&request, FETCH_VERSION),
            )
            .await
            .map_err(|_| anyhow!("Fetch at offset {offset} timed out"))??;
            let latency_ms = u64::try_from(sent.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.totals.fetches.fetch_add(1, Ordering::Relaxed);
            self.totals
                .peak_fetch_latency_ms
                .fetch_max(latency_ms, Ordering::Relaxed);

            check(response.error_code, "Fetch")?;
            let data = response
                .responses
                .iter()
                .filter(|t| t.topic == self.topic)
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == self.partition)
                .ok_or_else(|| anyhow!("Fetch answered without partition {}", self.partition))?;
            check(data.error_code, &format!("Fetch at offset {offset}"))?;
            let records = data.records.as_deref().unwrap_or_default();
            let batches = walk_batches(records)
                .with_context(|| format!("records fetched at offset {offset}"))?;
            match batches.next_offset {
                Some(next) if next > offset => offset = next,
                Some(next) => bail!("Fetch at offset {offset} returned batches ending at {next}"),
                None if records.is_empty() => {}
                None => bail!(
                    "Fetch at offset {offset} returned {} bytes without a complete batch",
                    records.len()
                ),
            }
            self.totals
                .records
                .fetch_add(batches.records, Ordering::Relaxed);
            self.totals
                .bytes
                .fetch_add(batches.bytes, Ordering::Relaxed);
        }
    }
}

/// A Kafka error code as an error naming it.
fn check(code: i16, what: &str) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    match kafka_protocol::ResponseError::try_from_code(code) {
        Some(e) => bail!("{what}: {e:?}"),
        None => bail!("{what}: error code {code}"),
    }
}

/// Writes `content` to a temporary file beside `path` and renames it over `path`, so a
/// reader never sees a partial file.
async fn write_atomically(path: &Path, content: &str) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    tokio::fs::write(&tmp, content)
        .await
        .with_context(|| format!("write {}", PathBuf::from(&tmp).display()))?;
    tokio::fs::rename(&tmp, path)
        .await
        .with_context(|| format!("rename to {}", path.display()))
}
