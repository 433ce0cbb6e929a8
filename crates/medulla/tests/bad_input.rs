//! Bad input over real sockets: oversized frames, unknown API keys, garbage, corrupt and
//! oversized batches, unknown versions. Each gets the documented answer and the broker
//! keeps serving its other connections.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{Medulla, cli, read_frame, request_frame, wait_for};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ProduceRequest, ProduceResponse,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::{Record, TimestampType};

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn assert_closed(s: &mut TcpStream) {
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection to be closed, got {other:?}"),
    }
}

fn api_versions(s: &mut TcpStream, version: i16) -> ApiVersionsResponse {
    s.write_all(&request_frame(
        ApiKey::ApiVersions,
        version,
        1,
        &ApiVersionsRequest::default(),
    ))
    .unwrap();
    let mut body = read_frame(s).expect("ApiVersions answer");
    let header = ResponseHeader::decode(&mut body, 0).unwrap();
    assert_eq!(header.correlation_id, 1);
    ApiVersionsResponse::decode(&mut body, version.min(3)).unwrap()
}

fn batch(values: &[&[u8]]) -> Bytes {
    batch_with(values, 1_700_000_000_000, false)
}

fn keyed_batch(keys: &[Option<&[u8]>]) -> Bytes {
    let records: Vec<(Option<&[u8]>, &[u8])> = keys.iter().map(|k| (*k, &b"v"[..])).collect();
    encode_batch(&records, 1_700_000_000_000, false)
}

fn batch_with(values: &[&[u8]], timestamp: i64, control: bool) -> Bytes {
    let records: Vec<(Option<&[u8]>, &[u8])> =
        values.iter().map(|v| (Some(&b"k"[..]), *v)).collect();
    encode_batch(&records, timestamp, control)
}

/// One uncompressed RecordBatch v2 of `(key, value)` records.
fn encode_batch(records: &[(Option<&[u8]>, &[u8])], timestamp: i64, control: bool) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: false,
            control,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // One batch needs offset - sequence constant (kafka-protocol's encoder splits
            // otherwise); base sequence -1 as from a non-idempotent producer.
            sequence: i as i32 - 1,
            timestamp,
            key: k.map(Bytes::copy_from_slice),
            value: Some(Bytes::copy_from_slice(v)),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    common::encode_batch(&records)
}

fn produce(s: &mut TcpStream, topic: &str, records: Bytes) -> ProduceResponse {
    let request = ProduceRequest::default()
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
    s.write_all(&request_frame(ApiKey::Produce, 9, 5, &request))
        .unwrap();
    let mut body = read_frame(s).expect("Produce answer");
    let header =
        ResponseHeader::decode(&mut body, ApiKey::Produce.response_header_version(9)).unwrap();
    assert_eq!(header.correlation_id, 5);
    ProduceResponse::decode(&mut body, 9).unwrap()
}

#[test]
fn bad_frames_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(
        dir.path(),
        &["--override", "socket.request.max.bytes=65536"],
    );
    let mut healthy = connect(&broker.addr);
    assert_eq!(api_versions(&mut healthy, 3).error_code, 0);

    // Oversized frame: refused from the size prefix alone.
    let mut s = connect(&broker.addr);
    s.write_all(&(1_000_000i32).to_be_bytes()).unwrap();
    assert_closed(&mut s);
    // Negative size.
    let mut s = connect(&broker.addr);
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert_closed(&mut s);
    // Unknown API key.
    let mut s = connect(&broker.addr);
    s.write_all(&[0, 0, 0, 10, 0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
        .unwrap();
    assert_closed(&mut s);
    // Garbage body for a real API.
    let mut s = connect(&broker.addr);
    let mut f = vec![0, 0, 0, 40, 0, 3, 0, 9, 0, 0, 0, 1];
    f.extend_from_slice(&[0xee; 36]);
    s.write_all(&f).unwrap();
    assert_closed(&mut s);
    // Produce v2 (legacy message format) is not served.
    let mut s = connect(&broker.addr);
    s.write_all(&request_frame(
        ApiKey::Produce,
        2,
        9,
        &ApiVersionsRequest::default(),
    ))
    .unwrap();
    assert_closed(&mut s);

    // The healthy connection still works, and so does a new one.
    assert_eq!(api_versions(&mut healthy, 0).error_code, 0);
    assert_eq!(api_versions(&mut connect(&broker.addr), 2).error_code, 0);
    // The log is collected by a reader thread: wait for the line, do not race it.
    wait_for("the bad frames to be logged", || {
        broker.stderr().contains("closing connection").then_some(())
    });
}

#[test]
fn unknown_api_versions_version_gets_unsupported_version_and_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let mut s = connect(&broker.addr);
    s.write_all(
        &request_frame(ApiKey::ApiVersions, 3, 1, &ApiVersionsRequest::default())
            .iter()
            .enumerate()
            .map(|(i, b)| if i == 7 { 42 } else { *b })
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let mut body = read_frame(&mut s).expect("KIP-511 answer");
    let _ = ResponseHeader::decode(&mut body, 0).unwrap();
    let r = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(r.error_code, 35, "UNSUPPORTED_VERSION");
    let av = r
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .unwrap();
    assert_eq!((av.min_version, av.max_version), (0, 3));
    // The connection stays open.
    assert_eq!(api_versions(&mut s, 3).error_code, 0);
}

#[test]
fn corrupt_and_oversized_batches_are_refused_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Medulla::start(dir.path(), &[]);
    let topic = common::topic_name("corrupt");
    let (ok, _, err) = cli(&[
        "topic",
        "create",
        &topic,
        "--partitions",
        "1",
        "--config",
        "max.message.bytes=2000",
        "--bootstrap",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    let mut s = connect(&broker.addr);

    let good = batch(&[b"first"]);
    let r = produce(&mut s, &topic, good.clone());
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(r.responses[0].partition_responses[0].base_offset, 0);

    // A flipped byte in the records: CORRUPT_MESSAGE (2), nothing appended.
    let mut bad = BytesMut::from(&batch(&[b"second"])[..]);
    let n = bad.len();
    bad[n - 2] ^= 0x55;
    let r = produce(&mut s, &topic, bad.freeze());
    assert_eq!(r.responses[0].partition_responses[0].error_code, 2);
    // A good batch followed by a truncated one: the whole request is refused.
    let mut two = BytesMut::from(&good[..]);
    two.extend_from_slice(&batch(&[b"third"])[..20]);
    let r = produce(&mut s, &topic, two.freeze());
    assert_eq!(r.responses[0].partition_responses[0].error_code, 2);
    // Bigger than max.message.bytes: MESSAGE_TOO_LARGE (10).
    let big = vec![b'x'; 4000];
    let r = produce(&mut s, &topic, batch(&[&big]));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 10);

    // The next good batch lands at offset 1: nothing of the refused requests was appended.
    let r = produce(&mut s, &topic, batch(&[b"fourth"]));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(r.responses[0].partition_responses[0].base_offset, 1);
    // A timestamp two hours ahead breaks message.timestamp.after.max.ms (1 h): INVALID_TIMESTAMP (32).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let r = produce(
        &mut s,
        &topic,
        batch_with(&[b"future"], now_ms + 2 * 3_600_000, false),
    );
    assert_eq!(r.responses[0].partition_responses[0].error_code, 32);
    // Clients may not write control batches: INVALID_RECORD (87).
    let r = produce(&mut s, &topic, batch_with(&[b"marker"], now_ms, true));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 87);
    let r = produce(&mut s, &topic, batch(&[b"fifth"]));
    assert_eq!(
        r.responses[0].partition_responses[0].base_offset, 2,
        "refused batches took no offsets"
    );
    // Two whole batches in one partition's records: Kafka allows exactly one (INVALID_RECORD).
    let mut two = BytesMut::from(&batch(&[b"a"])[..]);
    two.extend_from_slice(&batch(&[b"b"])[..]);
    let r = produce(&mut s, &topic, two.freeze());
    assert_eq!(r.responses[0].partition_responses[0].error_code, 87);
    // Keyless records on a compacted topic: INVALID_RECORD naming exactly those (KIP-467).
    let compacted = common::topic_name("compacted");
    let (ok, _, err) = cli(&[
        "topic",
        "create",
        &compacted,
        "--partitions",
        "1",
        "--config",
        "cleanup.policy=compact",
        "--bootstrap",
        &broker.addr,
    ]);
    assert!(ok, "{err}");
    let mixed = keyed_batch(&[Some(&b"k"[..]), None, Some(&b"k"[..]), None]);
    let r = produce(&mut s, &compacted, mixed);
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 87, "{:?}", p.error_message);
    assert_eq!(
        p.record_errors
            .iter()
            .map(|e| e.batch_index)
            .collect::<Vec<_>>(),
        vec![1, 3]
    );
    // Unknown topic.
    let r = produce(&mut s, "no-such-topic-here", batch(&[b"x"]));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 3);
}
