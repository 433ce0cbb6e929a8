//! Tests of chunked encoding: for every served Fetch version it puts on the wire exactly
//! what the copying encoder does, it never lets a placeholder through as zeros, and its
//! `BufMut` behaves as the `BytesMut` it wraps.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use medulla_log::{LogManager, PartitionLog};
use proptest::prelude::*;

use super::*;
use crate::frame::encode_response;
use crate::handlers::api_versions;
use crate::internal_topics::{encode_batch, open_test_log};

/// A log with topic `t` of three partitions holding batches of different sizes.
fn test_log(dir: &std::path::Path) -> (Arc<LogManager>, Vec<Arc<PartitionLog>>) {
    let log = open_test_log(dir);
    log.create_topic("t", 3, &BTreeMap::new(), false).unwrap();
    let partitions: Vec<_> = (0..3).map(|p| log.partition("t", p).unwrap()).collect();
    // Timestamps of now: older ones would roll a segment per batch (segment.ms).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (p, part) in partitions.iter().enumerate() {
        for b in 0..4 + p {
            let records: Vec<_> = (0..1 + b * 3)
                .map(|i| {
                    (
                        Bytes::from(format!("k{p}-{b}-{i}")),
                        Some(Bytes::from(vec![b'a' + (i % 26) as u8; 10 + 50 * p])),
                    )
                })
                .collect();
            part.append(&encode_batch(&records, now_ms, None).unwrap())
                .unwrap();
        }
    }
    (log, partitions)
}

/// A slice of `part` from `offset`, at most `max_bytes` (at least one batch).
fn slice(part: &PartitionLog, offset: i64, max_bytes: usize) -> FileSlice {
    part.read_slice(offset, max_bytes, true, None)
        .unwrap()
        .expect("records")
}

/// The frame the chunks make, file ranges read from their files.
fn concat(chunks: &[Chunk]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks {
        match chunk {
            Chunk::Bytes(b) => out.extend_from_slice(b),
            Chunk::File(f) => out.extend_from_slice(&f.read_to_bytes().unwrap()),
        }
    }
    out
}

/// A Fetch response over `slices` (one partition each, `records` giving each its
/// `records` field), with an empty partition, an error partition and a read_committed
/// partition (aborted transactions listed) among them, over two topics.
fn response(records: &mut dyn FnMut(usize) -> Bytes, slices: usize) -> FetchResponse {
    let name = |s: &str| TopicName(StrBytes::from_string(s.to_owned()));
    let data = |i: i32| {
        PartitionData::default()
            .with_partition_index(i)
            .with_high_watermark(100 + i64::from(i))
            .with_last_stable_offset(90)
            .with_log_start_offset(3)
    };
    let mut first = Vec::new();
    for i in 0..slices {
        if i == 1 {
            first.push(data(10).with_records(Some(Bytes::new())));
        }
        let mut p = data(i as i32).with_records(Some(records(i)));
        if i == 2 {
            p = p.with_aborted_transactions(Some(vec![
                AbortedTransaction::default()
                    .with_producer_id(ProducerId(42))
                    .with_first_offset(7),
            ]));
        }
        first.push(p);
    }
    let second = vec![
        data(0)
            .with_error_code(3)
            .with_high_watermark(-1)
            .with_records(Some(Bytes::new())),
        data(1)
            .with_aborted_transactions(Some(Vec::new()))
            .with_records(Some(Bytes::new())),
    ];
    FetchResponse::default()
        .with_throttle_time_ms(5)
        .with_responses(vec![
            FetchableTopicResponse::default()
                .with_topic(name("t"))
                .with_topic_id(uuid::Uuid::from_u128(7))
                .with_partitions(first),
            FetchableTopicResponse::default()
                .with_topic(name("u"))
                .with_topic_id(uuid::Uuid::from_u128(8))
                .with_partitions(second),
        ])
}

#[test]
fn chunks_make_the_copying_encoders_frame_at_every_fetch_version() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, parts) = test_log(dir.path());
    let slices = [
        slice(&parts[0], 0, 1 << 20),
        slice(&parts[1], 2, 200),
        slice(&parts[2], 0, 1 << 20),
        slice(&parts[2], 5, 1),
    ];
    assert!(
        slices[0].next_offset() > 20,
        "several batches: {:?}",
        slices[0]
    );
    let (lo, hi) = api_versions::supported(ApiKey::Fetch).unwrap();
    assert!(lo <= 4 && hi >= 12, "{lo}..={hi}");
    for version in lo..=hi {
        let copied = response(&mut |i| slices[i].read_to_bytes().unwrap(), slices.len());
        let expected =
            encode_response(ApiKey::Fetch, version, 99, ResponseKind::Fetch(copied)).unwrap();

        let mut files = FileParts::default();
        let placed = response(
            &mut |i| files.place(slices[i].clone()).unwrap(),
            slices.len(),
        );
        let chunks = encode_response_chunked(
            ApiKey::Fetch,
            version,
            99,
            ResponseKind::Fetch(placed),
            files,
        )
        .unwrap();
        assert_eq!(concat(&chunks), expected, "Fetch v{version}");
        let ranges: Vec<_> = chunks
            .iter()
            .filter_map(|c| match c {
                Chunk::File(f) => Some((f.position(), f.len_bytes())),
                Chunk::Bytes(_) => None,
            })
            .collect();
        let sent: Vec<_> = slices
            .iter()
            .map(|s| (s.position(), s.len_bytes()))
            .collect();
        assert_eq!(ranges, sent, "every range goes from its file, in order");
        assert_eq!(
            chunks.iter().map(Chunk::len_bytes).sum::<usize>(),
            expected.len()
        );
    }
}

#[test]
fn without_files_the_frame_is_one_chunk() {
    let body = ResponseKind::Fetch(response(&mut |_| Bytes::from_static(b"x"), 3));
    let expected = encode_response(ApiKey::Fetch, 12, 1, body.clone()).unwrap();
    let chunks = encode_response_chunked(ApiKey::Fetch, 12, 1, body, FileParts::default()).unwrap();
    assert!(matches!(&chunks[..], [Chunk::Bytes(b)] if *b == expected));
}

/// Encodes `body` with `files` at Fetch v12.
fn encode_with(body: FetchResponse, files: FileParts) -> anyhow::Result<Vec<Chunk>> {
    encode_response_chunked(ApiKey::Fetch, 12, 1, ResponseKind::Fetch(body), files)
}

#[test]
fn a_placeholder_that_is_not_encoded_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, parts) = test_log(dir.path());
    let mut files = FileParts::default();
    let a = files.place(slice(&parts[0], 0, 1 << 20)).unwrap();
    let _b = files.place(slice(&parts[1], 0, 1 << 20)).unwrap();
    let only_a = response(&mut |_| a.clone(), 1);
    let error = encode_with(only_a, files).unwrap_err().to_string();
    assert!(error.contains("never reached"), "{error}");
}

#[test]
fn a_placeholder_met_twice_or_cut_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, parts) = test_log(dir.path());
    let mut files = FileParts::default();
    let a = files.place(slice(&parts[0], 0, 1 << 20)).unwrap();
    let twice = response(&mut |_| a.clone(), 2);
    let error = encode_with(twice, files).unwrap_err().to_string();
    assert!(error.contains("twice"), "{error}");

    let mut files = FileParts::default();
    let a = files.place(slice(&parts[0], 0, 1 << 20)).unwrap();
    let cut = response(&mut |_| a.slice(..a.len() - 1), 1);
    let error = encode_with(cut, files).unwrap_err().to_string();
    assert!(error.contains("placed with"), "{error}");

    // A slice of the region no placeholder starts at.
    let mut files = FileParts::default();
    let a = files.place(slice(&parts[0], 0, 1 << 20)).unwrap();
    let inner = response(&mut |_| a.slice(1..), 1);
    let error = encode_with(inner, files).unwrap_err().to_string();
    assert!(error.contains("never placed"), "{error}");
}

#[test]
fn file_ranges_only_go_in_fetch_responses() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, parts) = test_log(dir.path());
    let mut files = FileParts::default();
    files.place(slice(&parts[0], 0, 1 << 20)).unwrap();
    let body = ResponseKind::Heartbeat(Default::default());
    assert!(encode_response_chunked(ApiKey::Heartbeat, 4, 1, body, files).is_err());
}

#[test]
fn placeholders_are_disjoint_and_run_out_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, parts) = test_log(dir.path());
    let s = slice(&parts[2], 0, 1 << 20);
    let mut files = FileParts::default();
    let mut last_end = 0usize;
    let mut placed = 0usize;
    loop {
        match files.place(s.clone()) {
            Ok(p) => {
                let at = region_offset(&p).unwrap();
                assert_eq!(at, last_end, "placeholders lie end to end");
                last_end = at + p.len();
                placed += 1;
                if placed == 3 {
                    // Jump to the end of the region rather than placing 10,000 slices.
                    files.next = ZERO_COPY_RESPONSE_BYTES_MAX - s.len_bytes() - 1;
                    last_end = files.next;
                }
            }
            Err(back) => {
                assert_eq!(back.len_bytes(), s.len_bytes());
                break;
            }
        }
    }
    assert_eq!(placed, 4);
}

/// What a test does to a buffer; applied alike to a `ChunkedBuf` and a `BytesMut`.
#[derive(Debug, Clone)]
enum Op {
    U8(u8),
    I32(i32),
    Slice(Vec<u8>),
    Repeat(u8, usize),
    /// `BufMut::put` from a `Buf` (the `chunk_mut` / `advance_mut` path).
    Put(Vec<u8>),
    /// A gap filled afterwards (kafka-protocol's `ByteBufMut` gaps).
    Gap(Vec<u8>),
    /// The placeholder of the file range with this index (each at most once).
    File(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        any::<u8>().prop_map(Op::U8),
        any::<i32>().prop_map(Op::I32),
        bytes.clone().prop_map(Op::Slice),
        (any::<u8>(), 0usize..500).prop_map(|(b, n)| Op::Repeat(b, n)),
        bytes.clone().prop_map(Op::Put),
        proptest::collection::vec(any::<u8>(), 1..9).prop_map(Op::Gap),
        (0usize..3).prop_map(Op::File),
    ]
}

fn apply<B: ByteBufMut>(buf: &mut B, op: &Op, file: &mut dyn FnMut(&mut B, usize)) {
    match op {
        Op::U8(b) => buf.put_u8(*b),
        Op::I32(n) => buf.put_i32(*n),
        Op::Slice(s) => buf.put_slice(s),
        Op::Repeat(b, n) => buf.put_bytes(*b, *n),
        Op::Put(s) => buf.put(&s[..]),
        Op::Gap(s) => {
            let gap = buf.put_gap(s.len());
            buf.put_u8(0xee);
            buf.gap_buf(gap).copy_from_slice(s);
        }
        Op::File(i) => file(buf, *i),
    }
}

proptest! {
    // Each case builds a log: fewer cases than the default keep this quick.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_chunked_buffer_writes_what_bytes_mut_writes(ops in proptest::collection::vec(op(), 0..40)) {
        let dir = tempfile::tempdir().unwrap();
        let (_log, parts) = test_log(dir.path());
        let slices: Vec<FileSlice> = parts.iter().map(|p| slice(p, 0, 1 << 20)).collect();
        // Each file range at most once, as a response holds it.
        let mut seen = [false; 3];
        let ops: Vec<Op> = ops
            .into_iter()
            .filter(|o| !matches!(o, Op::File(i) if std::mem::replace(&mut seen[*i], true)))
            .collect();

        let mut files = FileParts::default();
        let placeholders: Vec<Bytes> = slices
            .iter()
            .enumerate()
            .filter(|(i, _)| seen[*i])
            .map(|(_, s)| files.place(s.clone()).unwrap())
            .collect();
        let index_of = |i: usize| seen[..i].iter().filter(|s| **s).count();
        let mut chunked = ChunkedBuf::new(files);
        let mut plain = BytesMut::new();
        chunked.put_i32(0);
        plain.put_i32(0);
        for op in &ops {
            apply(&mut chunked, op, &mut |b, i| b.put_slice(&placeholders[index_of(i)]));
            apply(&mut plain, op, &mut |b, i| b.put_slice(&slices[i].read_to_bytes().unwrap()));
            prop_assert_eq!(chunked.offset(), plain.len());
        }
        let size = (plain.len() - 4) as i32;
        plain[..4].copy_from_slice(&size.to_be_bytes());
        let chunks = chunked.finish().unwrap();
        prop_assert_eq!(concat(&chunks), plain.to_vec());
        let files_sent = chunks.iter().filter(|c| matches!(c, Chunk::File(_))).count();
        prop_assert_eq!(files_sent, placeholders.len());
        prop_assert!(chunks.iter().all(|c| c.len_bytes() > 0));
    }
}

#[test]
fn a_gap_reaching_back_before_a_file_range_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, parts) = test_log(dir.path());
    let mut files = FileParts::default();
    let p = files.place(slice(&parts[0], 0, 1 << 20)).unwrap();
    let mut buf = ChunkedBuf::new(files);
    buf.put_i32(0);
    let gap = buf.put_gap(4);
    buf.put_slice(&p);
    buf.gap_buf(gap).copy_from_slice(&[1, 2, 3, 4]);
    buf.seek(2);
    assert!(buf.finish().is_err());
}
