//! Broker-side schema id validation (issue 5) end to end in process: a real broker, a
//! real (in-memory, fixed) implementation of `SchemaIdCheck` that derives subjects the
//! way a registry does, and raw Produce requests encoded by kafka-protocol.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse,
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
    RequestHeader, ResponseHeader, TopicName, TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use medulla_broker::schema_validation::{SchemaIdCheck, SubjectNameStrategy};
use medulla_broker::{BrokerConfig, Running};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PRODUCE_VERSION: i16 = 9;
const INVALID_RECORD: i16 = 87;

/// A registry's knowledge, fixed: each schema id's record name, and each subject's ids.
/// The subject is derived from the strategy as Confluent's serializers do.
struct FixedRegistry {
    record_names: HashMap<i32, &'static str>,
    subjects: HashMap<String, HashSet<i32>>,
}

impl FixedRegistry {
    fn new(schemas: &[(i32, &'static str, &[&str])]) -> FixedRegistry {
        let mut registry = FixedRegistry {
            record_names: HashMap::new(),
            subjects: HashMap::new(),
        };
        for (id, record_name, subjects) in schemas {
            registry.record_names.insert(*id, record_name);
            for s in *subjects {
                registry
                    .subjects
                    .entry((*s).to_owned())
                    .or_default()
                    .insert(*id);
            }
        }
        registry
    }
}

impl SchemaIdCheck for FixedRegistry {
    fn check(
        &self,
        topic: &str,
        is_key: bool,
        strategy: SubjectNameStrategy,
        id: i32,
    ) -> Result<(), String> {
        let record_name = self
            .record_names
            .get(&id)
            .ok_or_else(|| format!("schema id {id} is unknown"))?;
        let subject = match strategy {
            SubjectNameStrategy::Topic => {
                format!("{topic}-{}", if is_key { "key" } else { "value" })
            }
            SubjectNameStrategy::Record => (*record_name).to_owned(),
            SubjectNameStrategy::TopicRecord => format!("{topic}-{record_name}"),
        };
        match self.subjects.get(&subject) {
            Some(ids) if ids.contains(&id) => Ok(()),
            _ => Err(format!("not registered under subject {subject}")),
        }
    }
}

async fn start(registry: Option<FixedRegistry>) -> (tempfile::TempDir, Running) {
    let dir = tempfile::tempdir().unwrap();
    let props = BTreeMap::from([
        ("log.dirs".to_owned(), dir.path().display().to_string()),
        ("listeners".to_owned(), "PLAINTEXT://127.0.0.1:0".to_owned()),
    ]);
    let (mut config, _) = BrokerConfig::from_properties(&props).unwrap();
    config.schema_check = registry.map(|r| Arc::new(r) as Arc<dyn SchemaIdCheck>);
    let running = medulla_broker::start(config).await.unwrap();
    (dir, running)
}

fn create_topic(broker: &Running, name: &str, configs: &[(&str, &str)]) {
    let configs = configs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    broker.log().create_topic(name, 1, &configs, false).unwrap();
}

fn end_offset(broker: &Running, topic: &str) -> i64 {
    broker.log().partition(topic, 0).unwrap().log_end_offset()
}

/// Confluent's wire format: magic 0, the id big-endian, then the payload.
fn framed(id: i32, payload: &[u8]) -> Option<Bytes> {
    let mut v = vec![0u8];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(payload);
    Some(Bytes::from(v))
}

fn raw(bytes: &'static [u8]) -> Option<Bytes> {
    Some(Bytes::from_static(bytes))
}

/// The producer fields of a batch: (producer id, epoch, base sequence).
type Producer = (i64, i16, i32);

fn batch(
    records: &[(Option<Bytes>, Option<Bytes>)],
    compression: Compression,
    producer: Producer,
) -> Bytes {
    encode(records, compression, producer, false)
}

fn encode(
    records: &[(Option<Bytes>, Option<Bytes>)],
    compression: Compression,
    producer: Producer,
    transactional: bool,
) -> Bytes {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (producer_id, producer_epoch, base_sequence) = producer;
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol starts a new batch wherever offset − sequence changes;
            // -1 for the first record is the "no sequence" of a plain producer.
            sequence: base_sequence + i as i32,
            timestamp: now_ms,
            key: key.clone(),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

struct Client {
    stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    async fn connect(broker: &Running) -> Client {
        Client {
            stream: TcpStream::connect(broker.local_addr).await.unwrap(),
            correlation_id: 0,
        }
    }

    async fn send<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        self.correlation_id += 1;
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0; 4]);
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .encode(&mut buf, api.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        self.stream.write_all(&buf).await.unwrap();
        let size = self.stream.read_i32().await.unwrap();
        let mut frame = vec![0u8; size as usize];
        self.stream.read_exact(&mut frame).await.unwrap();
        let mut frame = Bytes::from(frame);
        let header =
            ResponseHeader::decode(&mut frame, api.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, self.correlation_id);
        Resp::decode(&mut frame, version).unwrap()
    }

    /// Produces `records` to partition 0 of `topic`; returns the partition's answer as
    /// (error code, record error indexes, error message).
    async fn produce(&mut self, topic: &str, records: Bytes) -> (i16, Vec<i32>, String) {
        self.produce_as(None, topic, records).await
    }

    /// [`Client::produce`] with a transactional id.
    async fn produce_as(
        &mut self,
        transactional_id: Option<&str>,
        topic: &str,
        records: Bytes,
    ) -> (i16, Vec<i32>, String) {
        let request = ProduceRequest::default()
            .with_transactional_id(transactional_id.map(|t| TransactionalId(s(t))))
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(records)),
                    ]),
            ]);
        let response: ProduceResponse = self.send(ApiKey::Produce, PRODUCE_VERSION, &request).await;
        let p = &response.responses[0].partition_responses[0];
        (
            p.error_code,
            p.record_errors.iter().map(|e| e.batch_index).collect(),
            p.error_message
                .as_ref()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default(),
        )
    }
}

const NOT_IDEMPOTENT: Producer = (-1, -1, -1);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Ids: 1 = com.acme.Patient under `values-value`; 2 = com.acme.Patient under
/// `elsewhere-value` only; 3 = com.acme.Order under `com.acme.Order` and
/// `by-topic-record-com.acme.Order`; 4 = com.acme.Key under `keys-key`; 5 = com.acme.Order
/// under `com.acme.Order` only.
fn registry() -> FixedRegistry {
    FixedRegistry::new(&[
        (1, "com.acme.Patient", &["values-value"]),
        (2, "com.acme.Patient", &["elsewhere-value"]),
        (
            3,
            "com.acme.Order",
            &["com.acme.Order", "by-topic-record-com.acme.Order"],
        ),
        (4, "com.acme.Key", &["keys-key"]),
        (5, "com.acme.Order", &["com.acme.Order"]),
    ])
}

#[tokio::test]
async fn value_validation_accepts_registered_ids_and_refuses_whole_batches() {
    let (_dir, broker) = start(Some(registry())).await;
    create_topic(
        &broker,
        "values",
        &[("confluent.value.schema.validation", "true")],
    );
    let mut c = Client::connect(&broker).await;

    let good = batch(
        &[
            (raw(b"k"), framed(1, b"patient")),
            (None, framed(1, b"patient 2")),
            // A tombstone passes: compacted topics need them (Confluent does the same).
            (raw(b"k"), None),
            // The key is not validated on this topic.
            (raw(b"not framed"), framed(1, b"")),
        ],
        Compression::None,
        NOT_IDEMPOTENT,
    );
    assert_eq!(c.produce("values", good).await, (0, vec![], String::new()));
    assert_eq!(end_offset(&broker, "values"), 4);

    // One bad record refuses the whole (compressed) batch; every bad one is named.
    for codec in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mixed = batch(
            &[
                (None, framed(1, b"fine")),
                (None, raw(b"{\"plain\": \"json\"}")),
                (None, framed(99, b"unknown id")),
                (None, framed(2, b"other topic's subject")),
                (None, raw(b"\0\0")),
                (None, None),
            ],
            codec,
            NOT_IDEMPOTENT,
        );
        let (code, indexes, message) = c.produce("values", mixed).await;
        assert_eq!(code, INVALID_RECORD, "{codec:?}");
        assert_eq!(indexes, vec![1, 2, 3, 4], "{codec:?}");
        assert_eq!(
            message,
            "record 1: value has no schema id: magic byte 123 is not 0 (not Confluent's wire format) (and 3 more records)",
            "{codec:?}"
        );
        assert_eq!(
            end_offset(&broker, "values"),
            4,
            "{codec:?}: nothing appended"
        );
    }
    let (_, _, message) = c
        .produce(
            "values",
            batch(&[(None, framed(2, b""))], Compression::None, NOT_IDEMPOTENT),
        )
        .await;
    assert_eq!(
        message,
        "record 0: value schema id 2: not registered under subject values-value"
    );
    let (_, _, message) = c
        .produce(
            "values",
            batch(
                &[(None, framed(99, b""))],
                Compression::None,
                NOT_IDEMPOTENT,
            ),
        )
        .await;
    assert_eq!(
        message,
        "record 0: value schema id 99: schema id 99 is unknown"
    );
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn key_validation_checks_keys_and_lets_null_keys_pass() {
    let (_dir, broker) = start(Some(registry())).await;
    create_topic(
        &broker,
        "keys",
        &[("confluent.key.schema.validation", "true")],
    );
    let mut c = Client::connect(&broker).await;
    let good = batch(
        &[
            (framed(4, b"key"), raw(b"any value")),
            // Null keys pass, as on Confluent Server (its documented limitation).
            (None, raw(b"keyless")),
            (framed(4, b"key"), None),
        ],
        Compression::Lz4,
        NOT_IDEMPOTENT,
    );
    assert_eq!(c.produce("keys", good).await.0, 0);
    let bad = batch(
        &[
            (framed(4, b"key"), raw(b"v")),
            (framed(1, b"a value schema"), raw(b"v")),
            (raw(b"k"), raw(b"v")),
        ],
        Compression::Snappy,
        NOT_IDEMPOTENT,
    );
    let (code, indexes, message) = c.produce("keys", bad).await;
    assert_eq!((code, indexes), (INVALID_RECORD, vec![1, 2]));
    assert_eq!(
        message,
        "record 1: key schema id 1: not registered under subject keys-key (and 1 more records)"
    );
    assert_eq!(end_offset(&broker, "keys"), 3);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_subject_name_strategy_reaches_the_registry() {
    let (_dir, broker) = start(Some(registry())).await;
    create_topic(
        &broker,
        "by-record",
        &[
            ("confluent.value.schema.validation", "true"),
            (
                "confluent.value.subject.name.strategy",
                "io.confluent.kafka.serializers.subject.RecordNameStrategy",
            ),
        ],
    );
    create_topic(
        &broker,
        "by-topic-record",
        &[
            ("confluent.value.schema.validation", "true"),
            (
                "confluent.value.subject.name.strategy",
                "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy",
            ),
        ],
    );
    let mut c = Client::connect(&broker).await;
    let one = |id: i32| {
        batch(
            &[(None, framed(id, b"x"))],
            Compression::None,
            NOT_IDEMPOTENT,
        )
    };
    // RecordNameStrategy: the subject is the record name, whatever the topic.
    assert_eq!(c.produce("by-record", one(3)).await.0, 0);
    assert_eq!(c.produce("by-record", one(5)).await.0, 0);
    let (code, indexes, message) = c.produce("by-record", one(1)).await;
    assert_eq!((code, indexes), (INVALID_RECORD, vec![0]));
    assert!(
        message.ends_with("not registered under subject com.acme.Patient"),
        "{message}"
    );
    // TopicRecordNameStrategy: `<topic>-<record name>`.
    assert_eq!(c.produce("by-topic-record", one(3)).await.0, 0);
    let (code, _, message) = c.produce("by-topic-record", one(5)).await;
    assert_eq!(code, INVALID_RECORD);
    assert!(
        message.ends_with("not registered under subject by-topic-record-com.acme.Order"),
        "{message}"
    );
    assert_eq!(end_offset(&broker, "by-record"), 2);
    assert_eq!(end_offset(&broker, "by-topic-record"), 1);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn idempotent_batches_follow_the_same_rule_and_keep_their_sequence() {
    let (_dir, broker) = start(Some(registry())).await;
    create_topic(
        &broker,
        "values",
        &[("confluent.value.schema.validation", "true")],
    );
    let mut c = Client::connect(&broker).await;
    let init: InitProducerIdResponse = c
        .send(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id((-1).into())
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(init.error_code, 0, "{init:?}");
    let producer = (init.producer_id.0, init.producer_epoch, 0);
    let bad = batch(
        &[(None, framed(1, b"ok")), (None, raw(b"bad"))],
        Compression::None,
        producer,
    );
    let (code, indexes, _) = c.produce("values", bad).await;
    assert_eq!((code, indexes), (INVALID_RECORD, vec![1]));
    // The refused batch took no sequence numbers: the corrected one starts at 0.
    let good = batch(
        &[(None, framed(1, b"ok")), (None, framed(1, b"fixed"))],
        Compression::None,
        producer,
    );
    assert_eq!(c.produce("values", good).await.0, 0);
    assert_eq!(end_offset(&broker, "values"), 2);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn validation_without_a_registry_fails_closed_and_off_topics_are_untouched() {
    let (_dir, broker) = start(None).await;
    create_topic(
        &broker,
        "values",
        &[("confluent.value.schema.validation", "true")],
    );
    create_topic(&broker, "plain", &[]);
    let mut c = Client::connect(&broker).await;
    let records = batch(
        &[(None, framed(1, b"even a framed one"))],
        Compression::None,
        NOT_IDEMPOTENT,
    );
    let (code, indexes, message) = c.produce("values", records.clone()).await;
    assert_eq!((code, indexes), (INVALID_RECORD, vec![]));
    assert_eq!(
        message,
        "schema validation is on for topic values but no schema registry is configured"
    );
    assert_eq!(end_offset(&broker, "values"), 0);
    assert_eq!(c.produce("plain", records).await.0, 0);
    let unframed = batch(&[(None, raw(b"x"))], Compression::None, NOT_IDEMPOTENT);
    assert_eq!(c.produce("plain", unframed).await.0, 0);
    assert_eq!(end_offset(&broker, "plain"), 2);
    broker.shutdown().await.unwrap();
}

#[tokio::test]
async fn transactional_batches_follow_the_same_rule() {
    let (_dir, broker) = start(Some(registry())).await;
    create_topic(
        &broker,
        "values",
        &[("confluent.value.schema.validation", "true")],
    );
    let mut c = Client::connect(&broker).await;
    let id = "txn-validated";
    let init: InitProducerIdResponse = c
        .send(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s(id))))
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
        .await;
    assert_eq!(init.error_code, 0, "{init:?}");
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    let added: AddPartitionsToTxnResponse = c
        .send(
            ApiKey::AddPartitionsToTxn,
            3,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(s(id)))
                .with_v3_and_below_producer_id(pid)
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(s("values")))
                        .with_partitions(vec![0]),
                ]),
        )
        .await;
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    let producer = (pid.0, epoch, 0);
    let bad = encode(
        &[(None, raw(b"bad")), (None, framed(1, b"ok"))],
        Compression::Gzip,
        producer,
        true,
    );
    let (code, indexes, _) = c.produce_as(Some(id), "values", bad).await;
    assert_eq!((code, indexes), (INVALID_RECORD, vec![0]));
    assert_eq!(end_offset(&broker, "values"), 0);
    let good = encode(
        &[(None, framed(1, b"a")), (None, framed(1, b"b"))],
        Compression::Gzip,
        producer,
        true,
    );
    assert_eq!(c.produce_as(Some(id), "values", good).await.0, 0);
    let ended: EndTxnResponse = c
        .send(
            ApiKey::EndTxn,
            3,
            &EndTxnRequest::default()
                .with_transactional_id(TransactionalId(s(id)))
                .with_producer_id(pid)
                .with_producer_epoch(epoch)
                .with_committed(true),
        )
        .await;
    assert_eq!(ended.error_code, 0);
    // Two records and the commit marker.
    assert_eq!(end_offset(&broker, "values"), 3);
    broker.shutdown().await.unwrap();
}
