//! `TopicLog` against Medulla's broker over a real socket, through librdkafka.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Broker, DEADLINE};
use medulla_client::{ClientConfig, ClientError, LogRecord, TopicLog};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;

const COMPACT: &[(&str, &str)] = &[("cleanup.policy", "compact")];

/// Records applied so far, shared with the reader.
#[derive(Clone, Default)]
struct Applied(Arc<Mutex<Vec<LogRecord>>>);

impl Applied {
    fn sink(&self) -> Box<dyn FnMut(LogRecord) + Send> {
        let records = self.0.clone();
        Box::new(move |r| records.lock().unwrap().push(r))
    }

    fn get(&self) -> Vec<LogRecord> {
        self.0.lock().unwrap().clone()
    }
}

fn record(offset: i64, key: &str, value: Option<&str>) -> LogRecord {
    LogRecord {
        offset,
        key: Some(key.as_bytes().to_vec()),
        value: value.map(|v| v.as_bytes().to_vec()),
    }
}

async fn open(cfg: &ClientConfig, topic: &str, applied: &Applied) -> TopicLog {
    TopicLog::open(cfg, topic, COMPACT, applied.sink(), DEADLINE)
        .await
        .expect("open")
}

fn admin(cfg: &ClientConfig) -> AdminClient<DefaultClientContext> {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &cfg.bootstrap)
        .create()
        .expect("admin client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_creates_a_compacted_single_partition_topic_and_appends_apply_in_order() {
    let broker = Broker::start().await;
    let cfg = broker.client();
    let applied = Applied::default();
    let log = open(&cfg, "_state", &applied).await;
    assert!(applied.get().is_empty());

    let mut expected = Vec::new();
    for i in 0..5i64 {
        let key = format!("k{i}");
        let value = format!("v{i}");
        let offset = log
            .append(key.clone().into_bytes(), Some(value.clone().into_bytes()))
            .await
            .expect("append");
        assert_eq!(offset, i);
        expected.push(record(i, &key, Some(&value)));
        // Read-your-writes: applied before append returned.
        assert_eq!(applied.get(), expected);
    }

    let admin = admin(&cfg);
    let md = admin
        .inner()
        .fetch_metadata(Some("_state"), DEADLINE)
        .expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 1);
    let configs = admin
        .describe_configs([&ResourceSpecifier::Topic("_state")], &AdminOptions::new())
        .await
        .expect("describe");
    let resource = configs.into_iter().next().unwrap().expect("topic config");
    let policy = resource.get("cleanup.policy").and_then(|e| e.value.clone());
    assert_eq!(policy.as_deref(), Some("compact"));
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_log_sees_everything_at_open_and_later_writes_after_sync() {
    let broker = Broker::start().await;
    let cfg = broker.client();
    let first_applied = Applied::default();
    let first = open(&cfg, "_shared", &first_applied).await;
    first
        .append(b"a".to_vec(), Some(b"1".to_vec()))
        .await
        .unwrap();
    first
        .append(b"b".to_vec(), Some(b"2".to_vec()))
        .await
        .unwrap();
    first.append(b"a".to_vec(), None).await.unwrap();

    let second_applied = Applied::default();
    let second = open(&cfg, "_shared", &second_applied).await;
    let at_open = vec![
        record(0, "a", Some("1")),
        record(1, "b", Some("2")),
        record(2, "a", None),
    ];
    assert_eq!(
        second_applied.get(),
        at_open,
        "complete at open, tombstone as None"
    );

    first
        .append(b"c".to_vec(), Some(b"3".to_vec()))
        .await
        .unwrap();
    first.append(b"b".to_vec(), None).await.unwrap();
    second.sync().await.expect("sync");
    let mut all = at_open;
    all.push(record(3, "c", Some("3")));
    all.push(record(4, "b", None));
    assert_eq!(second_applied.get(), all);
    assert_eq!(first_applied.get(), all);

    // The second instance writes too; the first sees it after sync.
    assert_eq!(
        second
            .append(b"d".to_vec(), Some(b"4".to_vec()))
            .await
            .unwrap(),
        5
    );
    first.sync().await.expect("sync");
    assert_eq!(first_applied.get().last(), Some(&record(5, "d", Some("4"))));
    first.close().await;
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_with_two_partitions_is_refused_by_name() {
    let broker = Broker::start().await;
    let cfg = broker.client();
    let created = admin(&cfg)
        .create_topics(
            [&NewTopic::new("_wide", 2, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create");
    assert!(created[0].is_ok(), "{created:?}");

    let applied = Applied::default();
    let err = TopicLog::open(&cfg, "_wide", COMPACT, applied.sink(), DEADLINE)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&err, ClientError::TopicPartitions { topic, partitions: 2 } if topic == "_wide"),
        "{err:?}"
    );
    assert!(err.to_string().contains("_wide"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_and_sync_against_a_stopped_broker_fail_within_the_timeout() {
    let mut broker = Broker::start().await;
    let cfg = broker.client();
    let applied = Applied::default();
    let timeout = Duration::from_secs(2);
    let log = TopicLog::open(&cfg, "_gone", COMPACT, applied.sink(), timeout)
        .await
        .expect("open");
    log.append(b"k".to_vec(), Some(b"v".to_vec()))
        .await
        .unwrap();
    broker.stop().await;

    // The bound is the timeout; a little slack for the runtime.
    let bound = timeout + Duration::from_secs(2);
    let started = Instant::now();
    let err = log
        .append(b"k".to_vec(), Some(b"w".to_vec()))
        .await
        .expect_err("no broker");
    assert!(
        started.elapsed() < bound,
        "append took {:?}",
        started.elapsed()
    );
    eprintln!("append: {err}");

    let started = Instant::now();
    let err = log.sync().await.expect_err("no broker");
    assert!(
        started.elapsed() < bound,
        "sync took {:?}",
        started.elapsed()
    );
    eprintln!("sync: {err}");
    assert_eq!(applied.get().len(), 1);
    log.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_keeps_working_across_a_broker_restart() {
    let mut broker = Broker::start().await;
    let mut cfg = broker.client();
    // Reconnect quickly (librdkafka's default back-off grows to 10 s); this also shows
    // that extra properties reach every client.
    cfg.properties
        .push(("reconnect.backoff.max.ms".into(), "200".into()));
    let applied = Applied::default();
    let log = open(&cfg, "_restart", &applied).await;
    log.append(b"a".to_vec(), Some(b"1".to_vec()))
        .await
        .unwrap();

    broker.stop().await;
    broker.restart().await;

    // The first append after the restart may race the reconnect; it must succeed
    // within the log's timeout, and the reader must deliver it.
    let offset = log
        .append(b"b".to_vec(), Some(b"2".to_vec()))
        .await
        .expect("append after restart");
    assert_eq!(offset, 1);
    log.sync().await.expect("sync after restart");
    assert_eq!(
        applied.get(),
        vec![record(0, "a", Some("1")), record(1, "b", Some("2"))]
    );
    log.close().await;
}
