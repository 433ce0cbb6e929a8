//! The command-line contract: `medulla serve` flags and config errors, the data-dir lock,
//! clean shutdown, `medulla topic …` and `medulla group …`.

mod common;

use std::process::{Command, Stdio};

use common::{Medulla, cli};

#[test]
fn topic_commands_create_list_describe_alter_delete() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let b = broker.addr.as_str();
    let (ok, out, err) = cli(&[
        "topic",
        "create",
        "admissions",
        "--partitions",
        "3",
        "--config",
        "retention.ms=86400000",
        "--bootstrap",
        b,
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("created topic admissions with 3 partitions"),
        "{out}"
    );
    let (ok, _, err) = cli(&["topic", "create", "admissions", "--bootstrap", b]);
    assert!(!ok && err.contains("TOPIC_ALREADY_EXISTS"), "{err}");
    let (ok, _, err) = cli(&[
        "topic",
        "create",
        "bad",
        "--config",
        "retention.mss=1",
        "--bootstrap",
        b,
    ]);
    assert!(!ok && err.contains("INVALID_CONFIG"), "{err}");

    let (ok, out, _) = cli(&["topic", "list", "--bootstrap", b]);
    assert!(ok);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec!["_medulla_audit", "admissions"]
    );
    let (ok, out, _) = cli(&["topic", "list", "--exclude-internal", "--bootstrap", b]);
    assert!(ok);
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["admissions"]);

    let (ok, out, err) = cli(&[
        "topic",
        "alter",
        "admissions",
        "--partitions",
        "5",
        "--config",
        "cleanup.policy=delete",
        "--bootstrap",
        b,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("now has 5 partitions"), "{out}");
    let (ok, out, err) = cli(&["topic", "describe", "admissions", "--bootstrap", b]);
    assert!(ok, "{err}");
    assert!(out.contains("partitions 5"), "{out}");
    assert!(out.contains("config retention.ms=86400000"), "{out}");
    assert!(out.contains("config cleanup.policy=delete"), "{out}");
    let (ok, _, err) = cli(&[
        "topic",
        "alter",
        "admissions",
        "--delete-config",
        "retention.ms",
        "--bootstrap",
        b,
    ]);
    assert!(ok, "{err}");
    let (_, out, _) = cli(&["topic", "describe", "admissions", "--bootstrap", b]);
    assert!(!out.contains("retention.ms"), "{out}");

    let (ok, _, err) = cli(&["topic", "delete", "admissions", "--bootstrap", b]);
    assert!(ok, "{err}");
    let (_, out, _) = cli(&["topic", "list", "--exclude-internal", "--bootstrap", b]);
    assert!(out.trim().is_empty(), "{out}");
}

#[test]
fn a_second_start_on_the_same_data_dir_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Medulla::start(dir.path(), &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_medulla"))
        .args([
            "serve",
            "--kafka-listen",
            "127.0.0.1:0",
            "--registry-listen",
            "off",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
}

#[test]
fn unknown_keys_fail_at_start_and_unused_kafka_keys_warn() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medulla"))
        .args([
            "serve",
            "--kafka-listen",
            "127.0.0.1:0",
            "--registry-listen",
            "off",
            "--override",
            "log.retention.hourz=1",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("log.retention.hourz"));

    let config = dir.path().join("server.properties");
    std::fs::write(
        &config,
        "# a Kafka operator's file\nzookeeper.connect=zk:2181\nnum.partitions=2\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let broker = Medulla::start(&data, &["--config", config.to_str().unwrap()]);
    common::wait_for("the zookeeper.connect warning", || {
        broker.stderr().contains("zookeeper.connect").then_some(())
    });
}

#[test]
fn sigterm_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let status = broker.terminate();
    assert!(status.success(), "{status:?}");
    // The data dir is free again at once.
    let again = Medulla::start(dir.path(), &[]);
    assert!(again.terminate().success());
}

#[test]
fn shutdown_answers_a_pending_long_poll_instead_of_waiting_it_out() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{
        ApiKey, FetchRequest, FetchResponse, ResponseHeader, TopicName,
    };
    use kafka_protocol::protocol::{Decodable, StrBytes};
    use std::io::Write;

    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start_with_log(
        dir.path(),
        "127.0.0.1:0",
        &[],
        "info,medulla_broker::handlers::fetch=debug",
    );
    let (ok, _, err) = cli(&[
        "topic",
        "create",
        "quiet",
        "--partitions",
        "1",
        "--bootstrap",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    // A Fetch that would wait five minutes for data that never comes.
    let mut s = std::net::TcpStream::connect(&broker.addr).unwrap();
    s.set_read_timeout(Some(common::DEADLINE)).unwrap();
    let fetch = FetchRequest::default()
        .with_max_wait_ms(300_000)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("quiet")))
                .with_partitions(vec![
                    FetchPartition::default().with_partition_max_bytes(1 << 20),
                ]),
        ]);
    s.write_all(&common::request_frame(ApiKey::Fetch, 12, 42, &fetch))
        .unwrap();
    // Once the broker says the fetch is waiting, SIGTERM must end the wait, answer it and
    // exit cleanly (terminate() fails the test after DEADLINE, far less than five minutes).
    common::wait_for("the fetch to be waiting", || {
        broker
            .stderr()
            .contains("fetch waiting for data")
            .then_some(())
    });
    let status = broker.terminate();
    assert!(status.success(), "{status:?}");
    let mut body =
        common::read_frame(&mut s).expect("the pending fetch is answered before the socket closes");
    let header =
        ResponseHeader::decode(&mut body, ApiKey::Fetch.response_header_version(12)).unwrap();
    assert_eq!(header.correlation_id, 42);
    let r = FetchResponse::decode(&mut body, 12).unwrap();
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
}

#[test]
fn group_commands_list_describe_reset_and_delete() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(
        dir.path(),
        &["--override", "group.initial.rebalance.delay.ms=0"],
    );
    let b = broker.addr.as_str();
    let (ok, _, err) = cli(&[
        "topic",
        "create",
        "admissions",
        "--partitions",
        "2",
        "--bootstrap",
        b,
    ]);
    assert!(ok, "{err}");
    let producer: BaseProducer = common::client_config(b).create().unwrap();
    for i in 0..20 {
        producer
            .send(
                BaseRecord::<(), str>::to("admissions")
                    .partition(i % 2)
                    .payload("admitted"),
            )
            .unwrap();
    }
    producer.flush(common::DEADLINE).unwrap();

    // A member of group `alerts` reads everything and commits.
    let consumer: BaseConsumer = common::client_config(b)
        .set("group.id", "alerts")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&["admissions"]).unwrap();
    let mut seen = 0;
    common::wait_for("the member to read all 20 records", || {
        if let Some(Ok(_)) = consumer.poll(std::time::Duration::from_millis(100)) {
            seen += 1;
        }
        (seen == 20).then_some(())
    });
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();

    let (ok, out, err) = cli(&["group", "describe", "alerts", "--bootstrap", b]);
    assert!(ok, "{err}");
    assert!(out.contains("state Stable"), "{out}");
    assert!(out.contains("assignor range"), "{out}");
    assert!(out.contains("assigned admissions-0,admissions-1"), "{out}");
    assert!(
        out.contains("admissions-0  committed 10  log-end 10  lag 0"),
        "{out}"
    );
    let (ok, _, err) = cli(&[
        "group",
        "reset-offsets",
        "alerts",
        "--topic",
        "admissions",
        "--to",
        "earliest",
        "--execute",
        "--bootstrap",
        b,
    ]);
    assert!(!ok);
    assert!(err.contains("active members"), "{err}");
    drop(consumer); // closes: LeaveGroup

    common::wait_for("the group to empty", || {
        let (_, out, _) = cli(&["group", "list", "--bootstrap", b]);
        out.contains("alerts  Empty  consumer").then_some(())
    });
    let reset = |to: &str, execute: bool| {
        let mut args = vec![
            "group",
            "reset-offsets",
            "alerts",
            "--topic",
            "admissions",
            "--partition",
            "0",
            "--to",
            to,
            "--bootstrap",
            b,
        ];
        if execute {
            args.push("--execute");
        }
        let (ok, out, err) = cli(&args);
        assert!(ok, "{err}");
        out
    };
    let plan = reset("earliest", false);
    assert!(plan.contains("admissions-0  committed 10  new 0"), "{plan}");
    assert!(plan.contains("dry run"), "{plan}");
    let describe = || cli(&["group", "describe", "alerts", "--bootstrap", b]).1;
    assert!(describe().contains("admissions-0  committed 10"));
    reset("earliest", true);
    assert!(describe().contains("admissions-0  committed 0  log-end 10  lag 10"));
    reset("shift:3", true);
    assert!(describe().contains("admissions-0  committed 3"));
    reset("offset:99", true);
    assert!(
        describe().contains("admissions-0  committed 10"),
        "clamped to the end"
    );
    assert!(
        describe().contains("admissions-1  committed 10"),
        "untouched"
    );

    let (ok, _, err) = cli(&[
        "group",
        "delete",
        "alerts",
        "--topic",
        "admissions",
        "--bootstrap",
        b,
    ]);
    assert!(ok, "{err}");
    assert!(!describe().contains("admissions-"), "offsets deleted");
    let (ok, _, err) = cli(&["group", "delete", "alerts", "--bootstrap", b]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["group", "describe", "alerts", "--bootstrap", b]);
    assert!(!ok);
    assert!(err.contains("GROUP_ID_NOT_FOUND"), "{err}");
}
