//! The consumer side of transactions against a started broker: `read_committed` Fetch
//! stops at the last stable offset while a transaction is open and lists the aborted
//! ones, `read_uncommitted` sees everything, ListOffsets `read_committed` ends at the
//! last stable offset, DescribeProducers shows the producer, and transactional offset
//! commits stay pending (UNSTABLE_OFFSET_COMMIT for `require_stable`) until their
//! transaction ends, across a restart.
//!
//! The broker runs in-process so the test can write what no client API writes yet:
//! transaction markers (the transaction coordinator's WriteTxnMarkers) go straight to
//! the partition log, and transactional offsets are ended through the group
//! coordinator's `complete_transaction`, as the transaction coordinator will. Every
//! read goes over the Kafka protocol.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use medulla::admin::Client;
use medulla_broker::{BrokerConfig, Running};
use medulla_log::{AppendOrigin, PartitionLog, TxnMarker};

const READ_UNCOMMITTED: i8 = 0;
const READ_COMMITTED: i8 = 1;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// Every wait in this file ends by then.
const DEADLINE: Duration = Duration::from_secs(30);

async fn start(dir: &Path) -> Running {
    let props = BTreeMap::from([
        ("log.dirs".to_owned(), dir.display().to_string()),
        ("listeners".to_owned(), "PLAINTEXT://127.0.0.1:0".to_owned()),
        ("offsets.topic.num.partitions".to_owned(), "3".to_owned()),
        // These tests drive the read side with made-up producers, writing markers through
        // the log and ending offsets with `complete_transaction`: no transaction
        // coordinator state backs them, so its verification is off (Kafka's key).
        // crates/medulla/tests/txn_protocol.rs covers the verified path.
        (
            "transaction.partition.verification.enable".to_owned(),
            "false".to_owned(),
        ),
    ]);
    let (config, _) = BrokerConfig::from_properties(&props).expect("config");
    medulla_broker::start(config).await.expect("start")
}

async fn client(broker: &Running) -> Client {
    Client::connect(&broker.local_addr.to_string())
        .await
        .expect("connect")
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// One batch of `values` (timestamps `ts`, `ts + 1`, …) from producer (id, epoch) with
/// base sequence `seq`, transactional or not; (-1, -1) is a plain producer.
fn batch(producer: (i64, i16), seq: i32, transactional: bool, ts: i64, values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional,
            control: false,
            partition_leader_epoch: 0,
            producer_id: producer.0,
            producer_epoch: producer.1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // One batch: the encoder splits wherever offset - sequence changes.
            sequence: if producer.0 < 0 {
                i as i32 - 1
            } else {
                seq + i as i32
            },
            timestamp: ts + i as i64,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Appends as a producer's Produce would.
fn produce(log: &PartitionLog, batch: Bytes) -> i64 {
    log.append_from(&batch, AppendOrigin::Client)
        .expect("append")
        .base_offset
}

/// Writes a transaction marker as the transaction coordinator's WriteTxnMarkers does.
fn marker(log: &PartitionLog, producer: (i64, i16), commit: bool) -> i64 {
    let info = log
        .append_marker(&TxnMarker {
            producer_id: producer.0,
            producer_epoch: producer.1,
            commit,
            coordinator_epoch: 0,
        })
        .expect("marker");
    info.base_offset
}

fn fetch_request(topic: &str, partition: i32, offset: i64, isolation: i8) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

/// Fetch v12 (named topics; every isolation field is there).
async fn fetch(c: &mut Client, request: FetchRequest) -> PartitionData {
    let mut r = c.send_at(request, 12).await.expect("fetch");
    assert_eq!(r.error_code, 0);
    let p = r.responses.remove(0).partitions.remove(0);
    assert_eq!(p.error_code, 0, "fetch error");
    p
}

/// (offset, is a control record) of every record in a fetch answer.
fn records(p: &PartitionData) -> Vec<(i64, bool)> {
    let mut bytes = p.records.clone().unwrap_or_default();
    if bytes.is_empty() {
        return Vec::new();
    }
    RecordBatchDecoder::decode_all(&mut bytes)
        .expect("decodable records")
        .iter()
        .flat_map(|set| set.records.iter().map(|r| (r.offset, r.control)))
        .collect()
}

fn aborted(p: &PartitionData) -> Option<Vec<(i64, i64)>> {
    p.aborted_transactions.as_ref().map(|list| {
        list.iter()
            .map(|a| (a.producer_id.0, a.first_offset))
            .collect()
    })
}

/// ListOffsets v10 for one partition: (offset, timestamp).
async fn list_offset(c: &mut Client, topic: &str, timestamp: i64, isolation: i8) -> (i64, i64) {
    let r = c
        .send_at(
            ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(isolation)
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(name(topic))
                        .with_partitions(vec![
                            ListOffsetsPartition::default().with_timestamp(timestamp),
                        ]),
                ]),
            10,
        )
        .await
        .expect("list offsets");
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    (p.offset, p.timestamp)
}

async fn producers(
    c: &mut Client,
    topic: &str,
    partitions: Vec<i32>,
) -> Vec<describe_producers_response::PartitionResponse> {
    let r = c
        .send_at(
            DescribeProducersRequest::default().with_topics(vec![
                TopicRequest::default()
                    .with_name(name(topic))
                    .with_partition_indexes(partitions),
            ]),
            0,
        )
        .await
        .expect("describe producers");
    r.topics.into_iter().next().unwrap().partitions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_fetch_stops_at_the_lso_and_lists_aborted_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    broker
        .log()
        .create_topic("t", 2, &BTreeMap::new(), false)
        .unwrap();
    let log = broker.log().partition("t", 0).unwrap();
    let mut c = client(&broker).await;
    let txn = (7000, 0);
    // Current timestamps: old ones would roll a segment per batch (segment.ms), and a
    // fetch reads within one segment.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ts = |delta: i64| now_ms + delta;

    // Offsets 0-1 plain; 2-3 in producer 7000's transaction; 4 plain again.
    assert_eq!(
        produce(&log, batch((-1, -1), -1, false, ts(0), &["a0", "a1"])),
        0
    );
    assert_eq!(
        produce(&log, batch(txn, 0, true, ts(1000), &["t0", "t1"])),
        2
    );
    assert_eq!(
        produce(&log, batch((-1, -1), -1, false, ts(2000), &["a2"])),
        4
    );

    // read_committed: nothing at or past the open transaction's first offset.
    let p = fetch(&mut c, fetch_request("t", 0, 0, READ_COMMITTED)).await;
    assert_eq!(records(&p), vec![(0, false), (1, false)]);
    assert_eq!((p.high_watermark, p.last_stable_offset), (5, 2));
    assert_eq!(aborted(&p), Some(vec![]));
    let p = fetch(&mut c, fetch_request("t", 0, 2, READ_COMMITTED)).await;
    assert_eq!(records(&p), vec![]);
    assert_eq!(p.last_stable_offset, 2);
    // read_uncommitted: everything, with the same last stable offset and no list.
    let p = fetch(&mut c, fetch_request("t", 0, 0, READ_UNCOMMITTED)).await;
    assert_eq!(records(&p).len(), 5);
    assert_eq!((p.high_watermark, p.last_stable_offset), (5, 2));
    assert_eq!(aborted(&p), None);

    // ListOffsets: latest is the LSO for read_committed; a timestamp found at or past it
    // is not found.
    assert_eq!(list_offset(&mut c, "t", -1, READ_COMMITTED).await, (2, -1));
    assert_eq!(
        list_offset(&mut c, "t", -1, READ_UNCOMMITTED).await,
        (5, -1)
    );
    assert_eq!(
        list_offset(&mut c, "t", ts(500), READ_COMMITTED).await,
        (-1, -1)
    );
    assert_eq!(
        list_offset(&mut c, "t", ts(500), READ_UNCOMMITTED).await,
        (2, ts(1000))
    );
    assert_eq!(
        list_offset(&mut c, "t", ts(1), READ_COMMITTED).await,
        (1, ts(1))
    );
    assert_eq!(list_offset(&mut c, "t", -3, READ_COMMITTED).await, (-1, -1));
    assert_eq!(
        list_offset(&mut c, "t", -3, READ_UNCOMMITTED).await,
        (4, ts(2000))
    );
    assert_eq!(list_offset(&mut c, "t", -2, READ_COMMITTED).await, (0, -1));

    // DescribeProducers: the producer and where its transaction starts.
    let parts = producers(&mut c, "t", vec![0, 1, 9]).await;
    assert_eq!(parts[0].error_code, 0);
    let found: Vec<(i64, i32, i32, i64)> = parts[0]
        .active_producers
        .iter()
        .map(|p| {
            (
                p.producer_id.0,
                p.producer_epoch,
                p.last_sequence,
                p.current_txn_start_offset,
            )
        })
        .collect();
    assert_eq!(found, vec![(7000, 0, 1, 2)]);
    assert_eq!(parts[0].active_producers[0].last_timestamp, ts(1001));
    assert!(parts[1].active_producers.is_empty());
    assert_eq!(parts[2].error_code, UNKNOWN_TOPIC_OR_PARTITION);

    // A read_committed long poll at the LSO waits although records lie past it
    // (min_bytes counts only what it may see) and wakes when the abort marker lands.
    let addr = broker.local_addr.to_string();
    let poll = tokio::spawn(async move {
        let mut c = Client::connect(&addr).await.unwrap();
        let started = Instant::now();
        let request = fetch_request("t", 0, 2, READ_COMMITTED)
            .with_max_wait_ms(20_000)
            .with_min_bytes(1);
        (fetch(&mut c, request).await, started.elapsed())
    });
    let mut poll = std::pin::pin!(poll);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut poll)
            .await
            .is_err(),
        "a read_committed fetch answered with nothing visible to it"
    );
    assert_eq!(marker(&log, txn, false), 5);
    let (p, waited) = tokio::time::timeout(DEADLINE, poll)
        .await
        .expect("the long poll answered")
        .unwrap();
    assert!(
        waited < Duration::from_secs(15),
        "woken, not timed out: {waited:?}"
    );
    assert_eq!(
        records(&p),
        vec![(2, false), (3, false), (4, false), (5, true)]
    );
    assert_eq!((p.high_watermark, p.last_stable_offset), (6, 6));
    assert_eq!(aborted(&p), Some(vec![(7000, 2)]));

    // From the start: all of it, with the aborted transaction listed.
    let p = fetch(&mut c, fetch_request("t", 0, 0, READ_COMMITTED)).await;
    assert_eq!(records(&p).len(), 6);
    assert_eq!(aborted(&p), Some(vec![(7000, 2)]));
    // Data that ends before the aborted transaction lists nothing (the list covers the
    // data returned, not the log).
    let small = fetch_request("t", 0, 0, READ_COMMITTED).with_max_bytes(1);
    let p = fetch(&mut c, small).await;
    assert_eq!(records(&p), vec![(0, false), (1, false)]);
    assert_eq!(aborted(&p), Some(vec![]));
    assert_eq!(list_offset(&mut c, "t", -1, READ_COMMITTED).await, (6, -1));
    let parts = producers(&mut c, "t", vec![0]).await;
    assert_eq!(parts[0].active_producers[0].current_txn_start_offset, -1);

    // A committed transaction on partition 1: visible to read_committed once the marker
    // is written, with nothing listed as aborted.
    let log1 = broker.log().partition("t", 1).unwrap();
    let txn1 = (7001, 3);
    produce(&log1, batch(txn1, 0, true, ts(0), &["c0", "c1", "c2"]));
    let p = fetch(&mut c, fetch_request("t", 1, 0, READ_COMMITTED)).await;
    assert_eq!((records(&p).len(), p.last_stable_offset), (0, 0));
    assert_eq!(marker(&log1, txn1, true), 3);
    let p = fetch(&mut c, fetch_request("t", 1, 0, READ_COMMITTED)).await;
    assert_eq!(records(&p).len(), 4);
    assert_eq!((p.high_watermark, p.last_stable_offset), (4, 4));
    assert_eq!(aborted(&p), Some(vec![]));

    broker.shutdown().await.unwrap();
}

fn txn_offset_commit(group: &str, producer: (i64, i16), offset: i64) -> TxnOffsetCommitRequest {
    TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_topics(vec![
            TxnOffsetCommitRequestTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![
                    TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_metadata(Some(StrBytes::from_static_str("md"))),
                ]),
        ])
}

/// OffsetFetch of t-0 at `version` (v7 single group, v8+ groups): (code, offset).
async fn offset_fetch(
    c: &mut Client,
    group: &str,
    version: i16,
    require_stable: bool,
) -> (i16, i64) {
    let group_id = GroupId(StrBytes::from_string(group.to_owned()));
    let request = OffsetFetchRequest::default().with_require_stable(require_stable);
    if version >= 8 {
        let request = request.with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(group_id)
                .with_topics(Some(vec![
                    OffsetFetchRequestTopics::default()
                        .with_name(name("t"))
                        .with_partition_indexes(vec![0]),
                ])),
        ]);
        let r = c.send_at(request, version).await.expect("offset fetch");
        assert_eq!(r.groups[0].error_code, 0);
        let p = &r.groups[0].topics[0].partitions[0];
        return (p.error_code, p.committed_offset);
    }
    let request = request.with_group_id(group_id).with_topics(Some(vec![
        OffsetFetchRequestTopic::default()
            .with_name(name("t"))
            .with_partition_indexes(vec![0]),
    ]));
    let r = c.send_at(request, version).await.expect("offset fetch");
    assert_eq!(r.error_code, 0);
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_offsets_are_pending_until_their_transaction_ends() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path()).await;
    broker
        .log()
        .create_topic("t", 1, &BTreeMap::new(), false)
        .unwrap();
    let mut c = client(&broker).await;
    let (txn, open_txn) = ((8000, 1), (8001, 0));

    let r = c.send(txn_offset_commit("g", txn, 42)).await.unwrap();
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    for v in [7, 9] {
        assert_eq!(
            offset_fetch(&mut c, "g", v, true).await,
            (UNSTABLE_OFFSET_COMMIT, -1),
            "require_stable at v{v}"
        );
        assert_eq!(offset_fetch(&mut c, "g", v, false).await, (0, -1));
    }

    // The commit is a transactional batch on the group's __consumer_offsets partition:
    // it is open there, and a read_committed reader of that partition stops before it.
    let partition = broker.groups().store().partition_for("g");
    let offsets_log = broker
        .log()
        .partition("__consumer_offsets", partition)
        .unwrap();
    let parts = producers(&mut c, "__consumer_offsets", vec![partition]).await;
    let p = &parts[0].active_producers[0];
    assert_eq!((p.producer_id.0, p.producer_epoch), (8000, 1));
    assert_eq!(p.current_txn_start_offset, 0);
    let p = fetch(
        &mut c,
        fetch_request("__consumer_offsets", partition, 0, READ_COMMITTED),
    )
    .await;
    assert_eq!((records(&p).len(), p.last_stable_offset), (0, 0));

    // The transaction coordinator commits it: the offset becomes the group's.
    assert_eq!(
        broker
            .groups()
            .complete_transaction(txn.0, txn.1, &["g".to_owned()], true)
            .await,
        0
    );
    assert_eq!(offset_fetch(&mut c, "g", 9, true).await, (0, 42));
    assert_eq!(
        offsets_log.last_stable_offset(),
        offsets_log.log_end_offset()
    );

    // Another transaction stays open across a restart.
    let r = c.send(txn_offset_commit("g", open_txn, 50)).await.unwrap();
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(offset_fetch(&mut c, "g", 9, false).await, (0, 42));
    drop(c);
    broker.shutdown().await.unwrap();

    let broker = start(dir.path()).await;
    let mut c = client(&broker).await;
    assert_eq!(
        offset_fetch(&mut c, "g", 9, true).await,
        (UNSTABLE_OFFSET_COMMIT, -1)
    );
    assert_eq!(offset_fetch(&mut c, "g", 7, false).await, (0, 42));
    // Aborting it (after the restart, as recovery would) leaves the committed offset.
    assert_eq!(
        broker
            .groups()
            .complete_transaction(open_txn.0, open_txn.1, &["g".to_owned()], false)
            .await,
        0
    );
    assert_eq!(offset_fetch(&mut c, "g", 9, true).await, (0, 42));
    // A commit with an epoch older than the one the partition has seen for the producer
    // (a fenced zombie) is refused and changes nothing.
    let r = c.send(txn_offset_commit("g", (8000, 0), 60)).await.unwrap();
    assert_eq!(
        r.topics[0].partitions[0].error_code, 47,
        "INVALID_PRODUCER_EPOCH"
    );
    assert_eq!(offset_fetch(&mut c, "g", 9, true).await, (0, 42));
    broker.shutdown().await.unwrap();
}
