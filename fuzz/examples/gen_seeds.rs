//! Writes the seed corpora under `fuzz/seeds/`: a few valid request frames for
//! `decode_request` and a few valid record batches for `validate_batch`.
//!
//! Run from `fuzz/` with `cargo run --example gen_seeds`; the output is deterministic,
//! so running it again leaves the committed seeds unchanged. Every seed is checked to be
//! accepted by the function it seeds: a seed the decoder refuses would only teach the
//! fuzzer the first error path.

use std::fs;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FetchRequest, MetadataRequest, ProduceRequest, RequestHeader,
    TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// `validate_batch`'s control byte for the seeds: bit 1 set (recompute CRCs), so a
/// mutation of a seed still reaches the record parser.
const CONTROL_FIX_CRC: u8 = 0b10;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");

    let requests = root.join("decode_request");
    fs::create_dir_all(&requests).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        if let Err(e) = medulla_broker::frame::decode_request(Bytes::copy_from_slice(bytes)) {
            panic!("seed {name} does not decode: {e}");
        }
        fs::write(requests.join(name), bytes).unwrap();
    };
    let api_versions = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("medulla-fuzz"))
        .with_client_software_version(StrBytes::from_static_str("0.0.0"));
    write(
        "api_versions_v3",
        &frame(ApiKey::ApiVersions, 3, &api_versions),
    );
    write(
        "api_versions_v0",
        &frame(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default()),
    );
    write(
        "metadata_v9_all",
        &frame(
            ApiKey::Metadata,
            9,
            &MetadataRequest::default().with_topics(None),
        ),
    );
    let one_topic = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic("t"))),
        ]))
        .with_allow_auto_topic_creation(true);
    write("metadata_v12_one", &frame(ApiKey::Metadata, 12, &one_topic));
    write("metadata_v1_one", &frame(ApiKey::Metadata, 1, &one_topic));
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic("t"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch(Compression::None, 3))),
                ]),
        ]);
    write("produce_v9", &frame(ApiKey::Produce, 9, &produce));
    write("produce_v3", &frame(ApiKey::Produce, 3, &produce));
    let fetch = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic("t"))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    write("fetch_v11", &frame(ApiKey::Fetch, 11, &fetch));

    let batches = root.join("validate_batch");
    fs::create_dir_all(&batches).unwrap();
    let write = |name: &str, payload: &[u8]| {
        if let Err(e) = medulla_log::batch::validate(payload, usize::MAX, true) {
            panic!("seed {name} does not validate: {e}");
        }
        let mut bytes = vec![CONTROL_FIX_CRC];
        bytes.extend_from_slice(payload);
        fs::write(batches.join(name), bytes).unwrap();
    };
    write("none_3", &batch(Compression::None, 3));
    write("gzip_3", &batch(Compression::Gzip, 3));
    write("snappy_3", &batch(Compression::Snappy, 3));
    write("lz4_3", &batch(Compression::Lz4, 3));
    write("zstd_3", &batch(Compression::Zstd, 3));
    let mut two = BytesMut::from(&batch(Compression::None, 1)[..]);
    two.extend_from_slice(&batch(Compression::None, 2));
    write("two_batches", &two);
}

fn topic(name: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(name))
}

/// A request frame body (header and request, no size prefix), as `decode_request` takes it.
fn frame<R: Encodable>(api: ApiKey, version: i16, body: &R) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")))
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

/// One v2 batch of `count` records: keys, a null value, and a header, so the record
/// parser's every field is present in the seed.
fn batch(compression: Compression, count: i64) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: -1,
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: (i != 1).then(|| Bytes::from(format!("value-{i}"))),
            headers: IndexMap::from([(
                StrBytes::from_static_str("h"),
                Some(Bytes::from_static(b"v")),
            )]),
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
