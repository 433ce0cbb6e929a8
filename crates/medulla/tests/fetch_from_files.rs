//! Fetch responses of several MB over several partitions, checked byte for byte against
//! what was produced: from the real binary, whose plaintext connections send records
//! from the segment files with sendfile(2), and from an in-process broker whose
//! connections copy them instead (the path TLS connections will take).

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};
use medulla::admin::Client;
use medulla_broker::BrokerConfig;

use common::Medulla;

const PARTITIONS: i32 = 4;
/// Batches per partition, and records per batch, of `VALUE_BYTES` each: about 3 MB a
/// partition, more than a socket buffer holds.
const BATCHES: usize = 12;
const RECORDS: usize = 64;
const VALUE_BYTES: usize = 4000;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// Record values no two of which are alike (a byte slipped or repeated shows).
fn value(partition: i32, batch: usize, record: usize) -> Bytes {
    let mut x = (partition as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (batch * 1_000 + record) as u64;
    (0..VALUE_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn batch(partition: i32, batch: usize, now_ms: i64) -> Bytes {
    let records: Vec<Record> = (0..RECORDS)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // One batch: the encoder splits wherever offset - sequence changes.
            sequence: i as i32 - 1,
            timestamp: now_ms + i as i64,
            key: Some(Bytes::from(format!("{partition}-{batch}-{i}"))),
            value: Some(value(partition, batch, i)),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    common::encode_batch(&records)
}

/// Creates `topic`, produces to each partition, and returns per partition the bytes the
/// log must hold: the batches as sent with their assigned base offsets.
async fn produce(c: &mut Client, topic: &str) -> (uuid::Uuid, Vec<Vec<u8>>) {
    let created = c
        .send(
            CreateTopicsRequest::default()
                .with_topics(vec![
                    CreatableTopic::default()
                        .with_name(name(topic))
                        .with_num_partitions(PARTITIONS)
                        .with_replication_factor(1),
                ])
                .with_timeout_ms(5000),
        )
        .await
        .unwrap();
    assert_eq!(created.topics[0].error_code, 0);
    let topic_id = created.topics[0].topic_id;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut stored = vec![Vec::new(); PARTITIONS as usize];
    for b in 0..BATCHES {
        let batches: Vec<Bytes> = (0..PARTITIONS).map(|p| batch(p, b, now_ms)).collect();
        let r = c
            .send_at(
                ProduceRequest::default()
                    .with_acks(-1)
                    .with_timeout_ms(5000)
                    .with_topic_data(vec![
                        TopicProduceData::default()
                            .with_name(name(topic))
                            .with_partition_data(
                                (0..PARTITIONS)
                                    .map(|p| {
                                        PartitionProduceData::default()
                                            .with_index(p)
                                            .with_records(Some(batches[p as usize].clone()))
                                    })
                                    .collect(),
                            ),
                    ]),
                9,
            )
            .await
            .unwrap();
        for p in &r.responses[0].partition_responses {
            assert_eq!(p.error_code, 0);
            let mut bytes = batches[p.index as usize].to_vec();
            bytes[..8].copy_from_slice(&p.base_offset.to_be_bytes());
            stored[p.index as usize].extend_from_slice(&bytes);
        }
    }
    (topic_id, stored)
}

/// Reads every partition back with Fetch at `version` and checks each byte against
/// `stored`. The first response must carry several MB from every partition at once.
async fn fetch_back(
    c: &mut Client,
    topic: &str,
    topic_id: uuid::Uuid,
    stored: &[Vec<u8>],
    version: i16,
) {
    let mut fetched: Vec<Vec<u8>> = vec![Vec::new(); stored.len()];
    let mut next = vec![0i64; stored.len()];
    for round in 0.. {
        assert!(round < 20, "v{version}: the data never all arrived");
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(64 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(if version < 13 { name(topic) } else { name("") })
                    .with_topic_id(if version < 13 {
                        uuid::Uuid::nil()
                    } else {
                        topic_id
                    })
                    .with_partitions(
                        (0..PARTITIONS)
                            .map(|p| {
                                FetchPartition::default()
                                    .with_partition(p)
                                    .with_fetch_offset(next[p as usize])
                                    .with_partition_max_bytes(2 << 20)
                            })
                            .collect(),
                    ),
            ]);
        let r = c.send_at(request, version).await.unwrap();
        assert_eq!(r.error_code, 0);
        let mut total = 0;
        for p in &r.responses[0].partitions {
            assert_eq!(
                p.error_code, 0,
                "v{version} partition {}",
                p.partition_index
            );
            let records = p.records.clone().unwrap_or_default();
            total += records.len();
            let i = p.partition_index as usize;
            fetched[i].extend_from_slice(&records);
            // The offset after the last batch: its base offset plus its last offset delta.
            let mut at = 0;
            while at < records.len() {
                let base = i64::from_be_bytes(records[at..at + 8].try_into().unwrap());
                let len = i32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap());
                let delta = i32::from_be_bytes(records[at + 23..at + 27].try_into().unwrap());
                next[i] = base + i64::from(delta) + 1;
                at += 12 + len as usize;
            }
            assert_eq!(at, records.len(), "whole batches only");
        }
        if round == 0 {
            assert!(
                total > 6 << 20
                    && r.responses[0]
                        .partitions
                        .iter()
                        .all(|p| p.records.as_ref().is_some_and(|r| r.len() > 1 << 20)),
                "v{version}: the first response carries MBs from every partition ({total} bytes)"
            );
        }
        if fetched.iter().zip(stored).all(|(f, s)| f.len() >= s.len()) {
            break;
        }
    }
    for (p, (got, want)) in fetched.iter().zip(stored).enumerate() {
        assert_eq!(got.len(), want.len(), "v{version} partition {p}");
        assert!(got == want, "v{version} partition {p}: bytes differ");
    }
}

async fn check_round_trip(addr: &str) {
    let mut c = Client::connect(addr).await.unwrap();
    let topic = common::topic_name("files");
    let (topic_id, stored) = produce(&mut c, &topic).await;
    assert!(stored.iter().all(|s| s.len() > 3_000_000));
    for version in [4, 11, 12, 18] {
        fetch_back(&mut c, &topic, topic_id, &stored, version).await;
    }
}

#[tokio::test]
async fn multi_mb_fetches_arrive_byte_for_byte_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    check_round_trip(&broker.addr).await;
}

#[tokio::test]
async fn multi_mb_fetches_arrive_byte_for_byte_when_copied() {
    let dir = tempfile::tempdir().unwrap();
    let props = BTreeMap::from([
        ("log.dirs".to_owned(), dir.path().display().to_string()),
        ("listeners".to_owned(), "PLAINTEXT://127.0.0.1:0".to_owned()),
    ]);
    let (mut config, _) = BrokerConfig::from_properties(&props).unwrap();
    config.zero_copy = false;
    let broker = medulla_broker::start(config).await.unwrap();
    check_round_trip(&broker.local_addr.to_string()).await;
    broker.shutdown().await.unwrap();
}
