//! A real client (rdkafka, librdkafka 2.12) against a started `medulla serve`: produce
//! and consume through every codec, topic administration, offsets by timestamp.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{DEADLINE, Medulla, client_config, topic_name};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// One record as read back: key, value, headers.
type Row = (Vec<u8>, Vec<u8>, Vec<(String, Vec<u8>)>);

fn admin(addr: &str) -> AdminClient<DefaultClientContext> {
    client_config(addr).create().expect("admin client")
}

async fn create_topic(addr: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let r = admin(addr)
        .create_topics(&[t], &AdminOptions::new())
        .await
        .expect("create_topics");
    assert_eq!(r, vec![Ok(name.to_owned())]);
}

/// Produces `count` keyed records with headers; returns what each partition must hold.
async fn produce(addr: &str, topic: &str, codec: &str, count: usize) -> BTreeMap<i32, Vec<Row>> {
    let producer: FutureProducer = client_config(addr)
        .set("compression.codec", codec)
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut expected: BTreeMap<i32, Vec<Row>> = BTreeMap::new();
    let mut pending = Vec::with_capacity(count);
    for i in 0..count {
        let key = format!("patient-{}", i % 97).into_bytes();
        let value = format!("{{\"event\":\"PatientAdmitted\",\"seq\":{i},\"codec\":\"{codec}\"}}")
            .repeat(1 + i % 3)
            .into_bytes();
        let headers = vec![
            ("trace".to_owned(), format!("t-{i}").into_bytes()),
            ("source".to_owned(), b"ehr".to_vec()),
        ];
        let mut h = OwnedHeaders::new();
        for (k, v) in &headers {
            h = h.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let record = FutureRecord::to(topic).key(&key).payload(&value).headers(h);
        pending.push((
            producer.send_result(record).expect("enqueue"),
            (key, value, headers),
        ));
    }
    for (fut, row) in pending {
        let delivery = fut.await.expect("delivery").expect("acknowledged");
        expected.entry(delivery.partition).or_default().push(row);
    }
    expected
}

/// Reads every partition from the beginning until it has `want[p]` records.
fn consume(addr: &str, topic: &str, want: &BTreeMap<i32, usize>) -> BTreeMap<i32, Vec<Row>> {
    let consumer: BaseConsumer = client_config(addr)
        .set("group.id", "medulla-test-unused")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in want.keys() {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let total: usize = want.values().sum();
    let mut got: BTreeMap<i32, Vec<Row>> = BTreeMap::new();
    let start = std::time::Instant::now();
    while got.values().map(Vec::len).sum::<usize>() < total {
        assert!(
            start.elapsed() < DEADLINE,
            "consumed {} of {total}",
            got.values().map(Vec::len).sum::<usize>()
        );
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.expect("fetch error");
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        got.entry(m.partition()).or_default().push((
            m.key().unwrap_or_default().to_vec(),
            m.payload().unwrap_or_default().to_vec(),
            headers,
        ));
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips_keys_values_and_headers_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = topic_name(&format!("codec-{codec}"));
        create_topic(&broker.addr, &topic, 3, &[]).await;
        let expected = produce(&broker.addr, &topic, codec, 2_000).await;
        let want = expected.iter().map(|(p, rows)| (*p, rows.len())).collect();
        let got = consume(&broker.addr, &topic, &want);
        assert_eq!(got, expected, "codec {codec}: records differ");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_admin_through_the_client_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let a = admin(&broker.addr);
    let topic = topic_name("admin");
    create_topic(&broker.addr, &topic, 2, &[("retention.ms", "3600000")]).await;

    // A second create is refused; an unknown config is INVALID_CONFIG; validate_only creates nothing.
    let again = a
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        again[0].as_ref().unwrap_err().1,
        rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
    );
    let other = topic_name("admin-invalid");
    let bad = a
        .create_topics(
            &[NewTopic::new(&other, 1, TopicReplication::Fixed(1)).set("no.such.config", "1")],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(
        bad[0].as_ref().unwrap_err().1,
        rdkafka::types::RDKafkaErrorCode::InvalidConfig
    );
    let dry = a
        .create_topics(
            &[NewTopic::new(&other, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new().validate_only(true),
        )
        .await
        .unwrap();
    assert_eq!(dry, vec![Ok(other.clone())]);
    let md = a
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    assert!(md.topics().iter().any(|t| t.name() == topic));
    assert!(
        !md.topics().iter().any(|t| t.name() == other),
        "validate_only created the topic"
    );

    // Describe and alter configs.
    async fn describe(
        a: &AdminClient<DefaultClientContext>,
        t: String,
    ) -> BTreeMap<String, (Option<String>, bool)> {
        let r = a
            .describe_configs(&[ResourceSpecifier::Topic(&t)], &AdminOptions::new())
            .await
            .unwrap();
        let c = r.into_iter().next().unwrap().expect("describe ok");
        c.entries
            .iter()
            .map(|e| (e.name.clone(), (e.value.clone(), e.is_default)))
            .collect()
    }
    let configs = describe(&a, topic.clone()).await;
    assert_eq!(configs["retention.ms"], (Some("3600000".to_owned()), false));
    assert_eq!(
        configs["segment.bytes"],
        (Some("1073741824".to_owned()), true)
    );
    assert_eq!(configs["cleanup.policy"], (Some("delete".to_owned()), true));
    let altered = a
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic(&topic)).set("retention.ms", "7200000")],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(altered[0].is_ok(), "{altered:?}");
    assert_eq!(
        describe(&a, topic.clone()).await["retention.ms"],
        (Some("7200000".to_owned()), false)
    );
    let broker_cfg = a
        .describe_configs(&[ResourceSpecifier::Broker(1)], &AdminOptions::new())
        .await
        .unwrap();
    let broker_cfg = broker_cfg
        .into_iter()
        .next()
        .unwrap()
        .expect("broker configs");
    assert_eq!(
        broker_cfg
            .get("num.partitions")
            .and_then(|e| e.value.clone()),
        Some("1".to_owned())
    );

    // Add partitions, then the new ones take data.
    let grown = a
        .create_partitions(&[NewPartitions::new(&topic, 4)], &AdminOptions::new())
        .await
        .unwrap();
    assert_eq!(grown, vec![Ok(topic.clone())]);
    let shrink = a
        .create_partitions(&[NewPartitions::new(&topic, 2)], &AdminOptions::new())
        .await
        .unwrap();
    assert_eq!(
        shrink[0].as_ref().unwrap_err().1,
        rdkafka::types::RDKafkaErrorCode::InvalidPartitions
    );
    let md = a
        .inner()
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 4);

    // Offsets by timestamp and DeleteRecords on partition 3.
    let producer: FutureProducer = client_config(&broker.addr).create().unwrap();
    let base_ts = 1_700_000_000_000i64;
    for i in 0..10i64 {
        producer
            .send(
                FutureRecord::to(&topic)
                    .partition(3)
                    .key("k")
                    .payload("v")
                    .timestamp(base_ts + i * 1000),
                Duration::from_secs(10),
            )
            .await
            .expect("produce");
    }
    let consumer: BaseConsumer = client_config(&broker.addr)
        .set("group.id", "unused")
        .create()
        .unwrap();
    let mut q = TopicPartitionList::new();
    q.add_partition_offset(&topic, 3, Offset::Offset(base_ts + 4_500))
        .unwrap();
    let found = consumer
        .offsets_for_times(q, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        found.find_partition(&topic, 3).unwrap().offset(),
        Offset::Offset(5)
    );
    let mut q = TopicPartitionList::new();
    q.add_partition_offset(&topic, 3, Offset::Offset(base_ts + 60_000))
        .unwrap();
    let found = consumer
        .offsets_for_times(q, Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        found.find_partition(&topic, 3).unwrap().offset(),
        Offset::End
    );

    let mut del = TopicPartitionList::new();
    del.add_partition_offset(&topic, 3, Offset::Offset(7))
        .unwrap();
    let after = a.delete_records(&del, &AdminOptions::new()).await.unwrap();
    assert_eq!(
        after.find_partition(&topic, 3).unwrap().offset(),
        Offset::Offset(7)
    );
    let (low, high) = consumer
        .fetch_watermarks(&topic, 3, Duration::from_secs(10))
        .unwrap();
    assert_eq!((low, high), (7, 10));

    // Delete the topic.
    let deleted = a
        .delete_topics(&[&topic], &AdminOptions::new())
        .await
        .unwrap();
    assert_eq!(deleted, vec![Ok(topic.clone())]);
    let md = a
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    assert!(!md.topics().iter().any(|t| t.name() == topic));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_created_topics_get_num_partitions_and_a_long_poll_wakes_on_produce() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &["--override", "num.partitions=3"]);
    let topic = topic_name("auto");
    let consumer: BaseConsumer = client_config(&broker.addr)
        .set("group.id", "unused")
        .set("fetch.wait.max.ms", "10000")
        // Consumers default to not auto-creating; this one asks for it.
        .set("allow.auto.create.topics", "true")
        .create()
        .unwrap();
    // A metadata request that forbids auto-creation gets UNKNOWN_TOPIC_OR_PART.
    let strict: BaseConsumer = client_config(&broker.addr)
        .set("group.id", "unused")
        .create()
        .unwrap();
    let md = strict
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        md.topics()[0].error(),
        Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    );
    // Metadata for an unknown topic, allowing it, creates it.
    let md = consumer
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 3);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 1, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    // Nothing there yet: the poll must come back empty, then wake once a record lands.
    assert!(consumer.poll(Duration::from_millis(300)).is_none());
    let producer: FutureProducer = client_config(&broker.addr).create().unwrap();
    producer
        .send(
            FutureRecord::to(&topic)
                .partition(1)
                .key("k")
                .payload("late"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let m = common::wait_for("the produced record", || {
        consumer
            .poll(Duration::from_millis(100))
            .map(|m| m.unwrap().detach())
    });
    assert_eq!(m.payload(), Some(&b"late"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_broker_configs_change_topic_defaults_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let topic = topic_name("dynamic");
    let broker = Medulla::start(dir.path(), &[]);
    create_topic(&broker.addr, &topic, 1, &[]).await;
    let a = admin(&broker.addr);
    let retention = |a: AdminClient<DefaultClientContext>, t: String| async move {
        let r = a
            .describe_configs(&[ResourceSpecifier::Topic(&t)], &AdminOptions::new())
            .await
            .unwrap();
        let c = r.into_iter().next().unwrap().unwrap();
        c.get("retention.ms").and_then(|e| e.value.clone())
    };
    assert_eq!(
        retention(admin(&broker.addr), topic.clone()).await,
        Some("604800000".to_owned())
    );

    // A static key is read-only: INVALID_CONFIG, nothing changes. (Checked with our own
    // protocol client: rust-rdkafka 0.39's alter_configs reports every resource as Ok and
    // drops its error code.)
    {
        use kafka_protocol::messages::IncrementalAlterConfigsRequest;
        use kafka_protocol::messages::incremental_alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };
        use kafka_protocol::protocol::StrBytes;
        let mut c = medulla::admin::Client::connect(&broker.addr).await.unwrap();
        let r = c
            .send(IncrementalAlterConfigsRequest::default().with_resources(
                vec![AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(StrBytes::from_static_str("1"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("num.partitions"))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_static_str("9")))])],
            ))
            .await
            .unwrap();
        assert_eq!(r.responses[0].error_code, 40, "INVALID_CONFIG");
        assert!(
            r.responses[0]
                .error_message
                .as_deref()
                .unwrap_or_default()
                .contains("dynamically")
        );
    }
    // A log key is dynamic: every topic without an override follows it at once.
    let r = a
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Broker(1)).set("log.retention.ms", "3600000")],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    assert_eq!(
        retention(admin(&broker.addr), topic.clone()).await,
        Some("3600000".to_owned())
    );
    let described = a
        .describe_configs(&[ResourceSpecifier::Broker(1)], &AdminOptions::new())
        .await
        .unwrap();
    let described = described.into_iter().next().unwrap().unwrap();
    let entry = described.get("log.retention.ms").unwrap();
    assert_eq!(entry.value.as_deref(), Some("3600000"));
    assert_eq!(entry.source, rdkafka::admin::ConfigSource::DynamicBroker);
    assert!(!entry.is_read_only);
    assert!(described.get("num.partitions").unwrap().is_read_only);
    drop(a);

    // It survives a restart.
    assert!(broker.terminate().success());
    let broker = Medulla::start(dir.path(), &[]);
    assert_eq!(
        retention(admin(&broker.addr), topic.clone()).await,
        Some("3600000".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_restart_with_their_metadata() {
    use rdkafka::consumer::CommitMode;
    let dir = tempfile::tempdir().unwrap();
    let topic = topic_name("commits");
    let broker = Medulla::start(dir.path(), &[]);
    create_topic(&broker.addr, &topic, 2, &[]).await;
    let producer: FutureProducer = client_config(&broker.addr).create().unwrap();
    for i in 0..10 {
        producer
            .send(
                FutureRecord::to(&topic)
                    .partition(i % 2)
                    .key("bed-3")
                    .payload(&format!("reading {i}")),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let consumer = |addr: &str| -> BaseConsumer {
        client_config(addr)
            .set("group.id", "ward-7-alerts")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap()
    };
    // A standalone consumer (assign, no subscription) commits with metadata.
    let c = consumer(&broker.addr);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(3))
        .unwrap();
    tpl.add_partition_offset(&topic, 1, Offset::Offset(4))
        .unwrap();
    tpl.find_partition(&topic, 0)
        .unwrap()
        .set_metadata("alert-service v2");
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    let mut query = TopicPartitionList::new();
    query.add_partition(&topic, 0);
    query.add_partition(&topic, 1);
    let committed = c
        .committed_offsets(query.clone(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(
        committed.find_partition(&topic, 0).unwrap().offset(),
        Offset::Offset(3)
    );
    assert_eq!(
        committed.find_partition(&topic, 0).unwrap().metadata(),
        "alert-service v2"
    );
    drop(c);
    assert!(broker.terminate().success());

    // After a restart the same group reads back exactly what it committed, and resumes there.
    let broker = Medulla::start(dir.path(), &[]);
    let c = consumer(&broker.addr);
    let committed = c.committed_offsets(query, Duration::from_secs(10)).unwrap();
    assert_eq!(
        committed.find_partition(&topic, 0).unwrap().offset(),
        Offset::Offset(3)
    );
    assert_eq!(
        committed.find_partition(&topic, 0).unwrap().metadata(),
        "alert-service v2"
    );
    assert_eq!(
        committed.find_partition(&topic, 1).unwrap().offset(),
        Offset::Offset(4)
    );
    let mut resume = TopicPartitionList::new();
    resume
        .add_partition_offset(&topic, 1, Offset::Stored)
        .unwrap();
    c.assign(&resume).unwrap();
    let first = common::wait_for("a record", || {
        c.poll(Duration::from_millis(100))
            .map(|m| m.unwrap().offset())
    });
    assert_eq!(first, 4, "resumes at the committed offset");
}
