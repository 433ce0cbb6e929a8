//! Transactions through rdkafka's transactional producer and the raw protocol: zombie
//! fencing by transactional id, Kafka's refusal of a transaction timeout above
//! `transaction.max.timeout.ms`, the last stable offset (an open transaction holds
//! read_committed readers at its first offset; ListOffsets and Fetch report it; aborted
//! transactions are listed in read_committed fetches), InitProducerId's epochs, and the
//! admin view of transactions (DescribeProducers, ListTransactions, DescribeTransactions), and
//! an open transaction that survives a broker SIGKILL unchanged.
//! Crash and restart scenarios with real clients are in `interop/txn/`.

mod common;

use std::time::Duration;

use common::{Medulla, client_config, wait_for};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, RecordBatchDecoder};
use medulla::admin::Client;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);
const READ_UNCOMMITTED: i8 = 0;
const READ_COMMITTED: i8 = 1;

type TxnProducer = ThreadedProducer<DefaultProducerContext>;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn create_topic(broker: &Medulla, topic: &str, partitions: u32) {
    let (ok, _, err) = common::cli(&[
        "topic",
        "create",
        topic,
        "--partitions",
        &partitions.to_string(),
        "--bootstrap",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
}

/// A transactional producer, initialised.
fn txn_producer(addr: &str, txn_id: &str, extra: &[(&str, &str)]) -> TxnProducer {
    let mut c = client_config(addr);
    c.set("transactional.id", txn_id).set("linger.ms", "0");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    let p: TxnProducer = c.create().expect("producer");
    p.init_transactions(TIMEOUT).expect("init_transactions");
    p
}

/// Sends n records `tag-i` to one partition and waits until they are all in the log.
fn send(p: &TxnProducer, topic: &str, partition: i32, tag: &str, n: usize) {
    for i in 0..n {
        let v = format!("{tag}-{i}");
        p.send(
            BaseRecord::<(), _>::to(topic)
                .partition(partition)
                .payload(&v),
        )
        .map_err(|(e, _)| e)
        .expect("send");
    }
    p.flush(TIMEOUT).expect("flush");
}

/// The values a consumer with `isolation` reads from `topic`'s `partition`, from the
/// beginning until it reports the partition's end (for read_committed: the last stable
/// offset), and the offset of that end.
fn read_to_end(addr: &str, topic: &str, partition: i32, isolation: &str) -> (Vec<String>, i64) {
    let c: BaseConsumer = client_config(addr)
        .set("group.id", "medulla-test-unused")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "50")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut values = Vec::new();
    let mut next = 0i64;
    wait_for(
        &format!("{isolation} read of {topic}[{partition}] to its end"),
        || match c.poll(Duration::from_millis(100)) {
            None => None,
            Some(Err(KafkaError::PartitionEOF(_))) => Some(()),
            Some(Err(e)) => panic!("{isolation} read of {topic}[{partition}]: {e}"),
            Some(Ok(m)) => {
                values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                next = m.offset() + 1;
                None
            }
        },
    );
    let end = match c
        .position()
        .unwrap()
        .find_partition(topic, partition)
        .map(|e| e.offset())
    {
        Some(Offset::Offset(o)) => o,
        _ => next,
    };
    (values, end)
}

/// ListOffsets(latest) of one partition with the given isolation level.
async fn latest(c: &mut Client, topic: &str, partition: i32, isolation: i8) -> i64 {
    let r = c
        .send(
            ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(isolation)
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partitions(vec![
                            ListOffsetsPartition::default()
                                .with_partition_index(partition)
                                .with_timestamp(-1),
                        ]),
                ]),
        )
        .await
        .unwrap();
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "ListOffsets {topic}[{partition}]");
    p.offset
}

/// One Fetch v12 of one partition from `offset` with the given isolation level: the
/// partition's data and its records (control records included).
async fn fetch(
    c: &mut Client,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation: i8,
) -> (PartitionData, Vec<Record>) {
    let r = c
        .send_at(
            FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_isolation_level(isolation)
                .with_session_epoch(-1)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(TopicName(s(topic)))
                        .with_partitions(vec![
                            FetchPartition::default()
                                .with_partition(partition)
                                .with_fetch_offset(offset)
                                .with_partition_max_bytes(1 << 20),
                        ]),
                ]),
            12,
        )
        .await
        .unwrap();
    let p = r.responses[0].partitions[0].clone();
    assert_eq!(p.error_code, 0, "Fetch {topic}[{partition}] at {offset}");
    let mut records = Vec::new();
    if let Some(mut bytes) = p.records.clone() {
        for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
            records.extend(set.records);
        }
    }
    (p, records)
}

fn values(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter(|r| !r.control)
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

fn tagged(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{i}")).collect()
}

/// The error code of a failed transactional call.
fn txn_error(e: &KafkaError) -> (RDKafkaErrorCode, bool) {
    match e {
        KafkaError::Transaction(t) => (t.code(), t.is_fatal()),
        other => panic!("expected a transaction error, got {other}"),
    }
}

#[test]
fn a_new_producer_with_the_same_transactional_id_fences_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let topic = common::topic_name("fencing");
    create_topic(&broker, &topic, 1);
    let txn_id = format!("fencing-{}", std::process::id());

    let old = txn_producer(&broker.addr, &txn_id, &[]);
    old.begin_transaction().unwrap();
    send(&old, &topic, 0, "old", 5);

    // The new producer's InitProducerId bumps the epoch and aborts the old one's open
    // transaction.
    let new = txn_producer(&broker.addr, &txn_id, &[]);
    let err = old
        .commit_transaction(TIMEOUT)
        .expect_err("the fenced producer's commit must fail");
    let (code, fatal) = txn_error(&err);
    assert!(
        matches!(
            code,
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
        ) && fatal,
        "the old producer's commit failed with {code:?} (fatal {fatal}), expected a fatal fencing error"
    );
    // Records of the old epoch are refused too (the producer is in a fatal state, so
    // librdkafka refuses them itself; what matters is nothing more reaches the log).
    let _ = old.send(
        BaseRecord::<(), _>::to(&topic)
            .partition(0)
            .payload("zombie"),
    );
    let _ = old.flush(Duration::from_secs(5));
    drop(old);

    new.begin_transaction().unwrap();
    send(&new, &topic, 0, "new", 5);
    new.commit_transaction(TIMEOUT).unwrap();

    let (committed, _) = read_to_end(&broker.addr, &topic, 0, "read_committed");
    assert_eq!(
        committed,
        tagged("new", 5),
        "read_committed after the fencing"
    );
    let (all, _) = read_to_end(&broker.addr, &topic, 0, "read_uncommitted");
    assert_eq!(
        all,
        [tagged("old", 5), tagged("new", 5)].concat(),
        "read_uncommitted"
    );
}

#[test]
fn init_producer_id_bumps_the_epoch_of_a_transactional_id() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    rt().block_on(async {
        let mut c = Client::connect(&broker.addr).await.unwrap();
        let init = |txn: Option<&str>| {
            InitProducerIdRequest::default()
                .with_transactional_id(txn.map(|t| TransactionalId(s(t))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        };
        let a = c.send(init(Some("epochs"))).await.unwrap();
        let b = c.send(init(Some("epochs"))).await.unwrap();
        assert_eq!((a.error_code, b.error_code), (0, 0), "{a:?} {b:?}");
        assert!(a.producer_id.0 >= 0, "{a:?}");
        assert_eq!(
            b.producer_id, a.producer_id,
            "the same transactional id keeps its producer id"
        );
        assert_eq!(
            b.producer_epoch,
            a.producer_epoch + 1,
            "and gets the next epoch"
        );

        // Idempotent producers (no transactional id) get a new producer id each time.
        let x = c.send(init(None)).await.unwrap();
        let y = c.send(init(None)).await.unwrap();
        assert_eq!((x.error_code, y.error_code), (0, 0), "{x:?} {y:?}");
        assert!(x.producer_id.0 >= 0 && y.producer_id.0 >= 0, "{x:?} {y:?}");
        assert_ne!(x.producer_id, y.producer_id);
        assert_ne!(x.producer_id, a.producer_id);
    });
}

#[test]
fn a_transaction_timeout_above_the_broker_maximum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    // Kafka's transaction.max.timeout.ms defaults to 15 minutes.
    let c: TxnProducer = client_config(&broker.addr)
        .set("transactional.id", "too-long")
        .set("transaction.timeout.ms", "900001")
        .create()
        .expect("producer");
    let err = c
        .init_transactions(TIMEOUT)
        .expect_err("init_transactions with transaction.timeout.ms above the maximum");
    let (code, _) = txn_error(&err);
    assert_eq!(code, RDKafkaErrorCode::InvalidTransactionTimeout, "{err}");

    rt().block_on(async {
        let mut c = Client::connect(&broker.addr).await.unwrap();
        let r = c
            .send(
                InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(s("too-long-raw"))))
                    .with_transaction_timeout_ms(900_001)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            )
            .await
            .unwrap();
        assert_eq!(r.error_code, 50, "INVALID_TRANSACTION_TIMEOUT: {r:?}");
        let ok = c
            .send(
                InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(s("at-the-max-raw"))))
                    .with_transaction_timeout_ms(900_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            )
            .await
            .unwrap();
        assert_eq!(
            ok.error_code, 0,
            "a timeout equal to the maximum is accepted: {ok:?}"
        );
    });
}

#[test]
fn an_open_transaction_holds_read_committed_readers_at_its_first_offset() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let topic = common::topic_name("lso");
    create_topic(&broker, &topic, 1);
    let rt = rt();
    let mut c = rt.block_on(Client::connect(&broker.addr)).unwrap();

    // Offsets 0-4: plain (idempotent, non-transactional) records.
    let plain: TxnProducer = client_config(&broker.addr)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    send(&plain, &topic, 0, "plain", 5);
    // Offsets 5-14: an open transaction.
    let p = txn_producer(&broker.addr, "lso", &[]);
    p.begin_transaction().unwrap();
    send(&p, &topic, 0, "open", 10);

    rt.block_on(async {
        assert_eq!(
            latest(&mut c, &topic, 0, READ_UNCOMMITTED).await,
            15,
            "high watermark"
        );
        assert_eq!(
            latest(&mut c, &topic, 0, READ_COMMITTED).await,
            5,
            "ListOffsets read_committed = LSO"
        );
        let (data, recs) = fetch(&mut c, &topic, 0, 0, READ_COMMITTED).await;
        assert_eq!(
            (data.high_watermark, data.last_stable_offset),
            (15, 5),
            "read_committed Fetch"
        );
        assert!(
            recs.iter().all(|r| r.offset < 5),
            "a read_committed Fetch returned offsets at or past the LSO: {:?}",
            recs.iter().map(|r| r.offset).collect::<Vec<_>>()
        );
        assert_eq!(values(&recs), tagged("plain", 5));
        let (data, recs) = fetch(&mut c, &topic, 0, 0, READ_UNCOMMITTED).await;
        assert_eq!(data.high_watermark, 15);
        assert_eq!(
            values(&recs),
            [tagged("plain", 5), tagged("open", 10)].concat()
        );
        assert!(
            recs[5..]
                .iter()
                .all(|r| r.transactional && r.producer_id >= 0)
        );
    });
    let (v, end) = read_to_end(&broker.addr, &topic, 0, "read_committed");
    assert_eq!(
        (v, end),
        (tagged("plain", 5), 5),
        "a read_committed consumer stops at the LSO"
    );
    let (v, end) = read_to_end(&broker.addr, &topic, 0, "read_uncommitted");
    assert_eq!(
        (v.len(), end),
        (15, 15),
        "a read_uncommitted consumer reads the open transaction"
    );

    // Commit: the marker takes offset 15, and the LSO moves to the end.
    p.commit_transaction(TIMEOUT).unwrap();
    rt.block_on(async {
        assert_eq!(latest(&mut c, &topic, 0, READ_UNCOMMITTED).await, 16);
        assert_eq!(
            latest(&mut c, &topic, 0, READ_COMMITTED).await,
            16,
            "LSO after the commit"
        );
    });
    // An aborted transaction at 16-25, its marker at 26.
    p.begin_transaction().unwrap();
    send(&p, &topic, 0, "aborted", 10);
    p.abort_transaction(TIMEOUT).unwrap();
    rt.block_on(async {
        assert_eq!(latest(&mut c, &topic, 0, READ_UNCOMMITTED).await, 27);
        assert_eq!(
            latest(&mut c, &topic, 0, READ_COMMITTED).await,
            27,
            "LSO after the abort"
        );
        let (data, recs) = fetch(&mut c, &topic, 0, 0, READ_COMMITTED).await;
        assert_eq!(data.last_stable_offset, 27);
        let pid = recs.iter().find(|r| r.offset == 16).map(|r| r.producer_id);
        let aborted: Vec<(i64, i64)> = data
            .aborted_transactions
            .iter()
            .flatten()
            .map(|a| (a.producer_id.0, a.first_offset))
            .collect();
        assert_eq!(
            aborted,
            vec![(pid.expect("offset 16 fetched"), 16)],
            "a read_committed Fetch lists the aborted transaction (producer id, first offset)"
        );
        let controls: Vec<i64> = recs
            .iter()
            .filter(|r| r.control)
            .map(|r| r.offset)
            .collect();
        assert_eq!(controls, vec![15, 26], "the commit and abort markers");
    });
    let (v, end) = read_to_end(&broker.addr, &topic, 0, "read_committed");
    assert_eq!(
        v,
        [tagged("plain", 5), tagged("open", 10)].concat(),
        "read_committed after commit and abort"
    );
    assert_eq!(end, 27);
    let (v, _) = read_to_end(&broker.addr, &topic, 0, "read_uncommitted");
    assert_eq!(
        v,
        [
            tagged("plain", 5),
            tagged("open", 10),
            tagged("aborted", 10)
        ]
        .concat()
    );
}

#[test]
fn an_open_transaction_shows_in_describe_producers_list_and_describe_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let topic = common::topic_name("describe");
    create_topic(&broker, &topic, 2);
    let txn_id = format!("describe-{}", std::process::id());
    let p = txn_producer(
        &broker.addr,
        &txn_id,
        &[("transaction.timeout.ms", "45000")],
    );
    p.begin_transaction().unwrap();
    send(&p, &topic, 0, "a", 3);
    send(&p, &topic, 1, "b", 3);
    let rt = rt();
    let mut c = rt.block_on(Client::connect(&broker.addr)).unwrap();

    let describe = |c: &mut Client| {
        rt.block_on(
            c.send(
                DescribeTransactionsRequest::default()
                    .with_transactional_ids(vec![TransactionalId(s(&txn_id))]),
            ),
        )
        .unwrap()
    };
    let d = describe(&mut c);
    let t = &d.transaction_states[0];
    assert_eq!(t.error_code, 0, "{d:?}");
    assert_eq!(t.transaction_state.as_str(), "Ongoing", "{t:?}");
    assert_eq!(t.transaction_timeout_ms, 45_000);
    let pid = t.producer_id;
    let parts: Vec<(String, Vec<i32>)> = t
        .topics
        .iter()
        .map(|x| {
            let mut ps = x.partitions.clone();
            ps.sort();
            (x.topic.0.to_string(), ps)
        })
        .collect();
    assert_eq!(
        parts,
        vec![(topic.clone(), vec![0, 1])],
        "the transaction's partitions"
    );

    let list = rt
        .block_on(c.send(ListTransactionsRequest::default()))
        .unwrap();
    assert_eq!(list.error_code, 0);
    let mine: Vec<(i64, String)> = list
        .transaction_states
        .iter()
        .filter(|x| x.transactional_id.0.as_str() == txn_id)
        .map(|x| (x.producer_id.0, x.transaction_state.to_string()))
        .collect();
    assert_eq!(
        mine,
        vec![(pid.0, "Ongoing".to_owned())],
        "ListTransactions: {list:?}"
    );
    let filtered =
        rt.block_on(c.send(
            ListTransactionsRequest::default().with_state_filters(vec![s("CompleteCommit")]),
        ))
        .unwrap();
    assert!(
        filtered
            .transaction_states
            .iter()
            .all(|x| x.transactional_id.0.as_str() != txn_id),
        "a CompleteCommit filter lists the ongoing transaction: {filtered:?}"
    );

    let producers = |c: &mut Client| {
        let r = rt
            .block_on(c.send(DescribeProducersRequest::default().with_topics(vec![
                TopicRequest::default()
                    .with_name(TopicName(s(&topic)))
                    .with_partition_indexes(vec![0]),
            ])))
            .unwrap();
        let part = r.topics[0].partitions[0].clone();
        assert_eq!(part.error_code, 0, "{r:?}");
        part.active_producers
    };
    let active = producers(&mut c);
    let me = active
        .iter()
        .find(|x| x.producer_id == pid)
        .unwrap_or_else(|| panic!("DescribeProducers does not list producer {pid:?}: {active:?}"));
    assert_eq!(
        me.current_txn_start_offset, 0,
        "the open transaction starts at offset 0: {me:?}"
    );
    assert_eq!(me.last_sequence, 2, "three records, sequences 0-2: {me:?}");

    p.commit_transaction(TIMEOUT).unwrap();
    wait_for("DescribeTransactions to show CompleteCommit", || {
        let d = describe(&mut c);
        (d.transaction_states[0].transaction_state.as_str() == "CompleteCommit").then_some(())
    });
    let active = producers(&mut c);
    let me = active
        .iter()
        .find(|x| x.producer_id == pid)
        .expect("the producer is still listed");
    assert_eq!(
        me.current_txn_start_offset, -1,
        "no open transaction after the commit: {me:?}"
    );
}

#[test]
fn an_open_transaction_survives_a_broker_sigkill_and_commits_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let topic = common::topic_name("survives");
    create_topic(&broker, &topic, 2);
    let txn_id = format!("survives-{}", std::process::id());
    let p = txn_producer(&broker.addr, &txn_id, &[]);
    p.begin_transaction().unwrap();
    send(&p, &topic, 0, "a", 5);
    send(&p, &topic, 1, "b", 5);
    let rt = rt();

    // What the coordinator and the partitions say about the open transaction.
    let view = |addr: &str| {
        rt.block_on(async {
            let mut c = Client::connect(addr).await.unwrap();
            let d = c
                .send(
                    DescribeTransactionsRequest::default()
                        .with_transactional_ids(vec![TransactionalId(s(&txn_id))]),
                )
                .await
                .unwrap();
            let t = d.transaction_states[0].clone();
            assert_eq!(t.error_code, 0, "{t:?}");
            let mut parts: Vec<(String, Vec<i32>)> = t
                .topics
                .iter()
                .map(|x| {
                    let mut ps = x.partitions.clone();
                    ps.sort();
                    (x.topic.0.to_string(), ps)
                })
                .collect();
            parts.sort();
            let mut offsets = Vec::new();
            for partition in 0..2 {
                offsets.push((
                    latest(&mut c, &topic, partition, READ_UNCOMMITTED).await,
                    latest(&mut c, &topic, partition, READ_COMMITTED).await,
                ));
            }
            (
                t.transaction_state.to_string(),
                t.producer_id,
                t.producer_epoch,
                t.transaction_start_time_ms,
                parts,
                offsets,
            )
        })
    };
    let before = view(&broker.addr);
    assert_eq!(before.0, "Ongoing");
    assert_eq!(
        before.5,
        vec![(5, 0), (5, 0)],
        "(high watermark, LSO) per partition"
    );
    let addr = broker.addr.clone();
    broker.kill9();

    let broker = Medulla::start_on(dir.path(), &addr, &[]);
    let after = view(&broker.addr);
    assert_eq!(
        after, before,
        "the open transaction after a SIGKILL and restart (state, producer id, epoch, start time, partitions, offsets)"
    );

    // The same producer commits it over a new connection.
    p.commit_transaction(TIMEOUT).unwrap();
    rt.block_on(async {
        let mut c = Client::connect(&broker.addr).await.unwrap();
        for partition in 0..2 {
            assert_eq!(
                latest(&mut c, &topic, partition, READ_COMMITTED).await,
                6,
                "LSO after the commit"
            );
        }
    });
    let (v, _) = read_to_end(&broker.addr, &topic, 0, "read_committed");
    assert_eq!(v, tagged("a", 5));
    let (v, _) = read_to_end(&broker.addr, &topic, 1, "read_committed");
    assert_eq!(v, tagged("b", 5));
}
