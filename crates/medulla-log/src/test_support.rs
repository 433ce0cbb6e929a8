//! Test-only helpers: a small RecordBatch v2 encoder (every codec), a fake clock and a
//! temporary data directory. Production code never encodes batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::Clock;
use crate::batch::{BATCH_HEADER_BYTES, Compression, put_varint};

/// One record to encode.
#[derive(Debug, Clone)]
pub(crate) struct TestRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub timestamp_delta: i64,
    /// Overrides the offset delta (to build invalid batches).
    pub offset_delta: Option<i32>,
}

impl TestRecord {
    pub fn new(key: Option<&[u8]>, value: Option<&[u8]>, timestamp_delta: i64) -> Self {
        TestRecord {
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: vec![(b"h".to_vec(), Some(b"hv".to_vec()))],
            timestamp_delta,
            offset_delta: None,
        }
    }
}

fn put_nullable(out: &mut Vec<u8>, bytes: &Option<Vec<u8>>) {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// The uncompressed records section.
pub(crate) fn encode_records(records: &[TestRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let mut body = vec![0u8];
        put_varint(&mut body, r.timestamp_delta);
        put_varint(&mut body, r.offset_delta.unwrap_or(i as i32) as i64);
        put_nullable(&mut body, &r.key);
        put_nullable(&mut body, &r.value);
        put_varint(&mut body, r.headers.len() as i64);
        for (k, v) in &r.headers {
            put_varint(&mut body, k.len() as i64);
            body.extend_from_slice(k);
            put_nullable(&mut body, v);
        }
        put_varint(&mut out, body.len() as i64);
        out.extend(body);
    }
    out
}

/// Compresses a records section the way the clients do: snappy raw, as librdkafka
/// writes it (the log's own writer frames it the Java way).
pub(crate) fn compress(codec: Compression, raw: &[u8]) -> Vec<u8> {
    match codec {
        Compression::Snappy => snap::raw::Encoder::new().compress_vec(raw).unwrap(),
        codec => crate::batch::compress(codec, raw).unwrap(),
    }
}

/// A whole batch around an already encoded (and maybe compressed) records section.
pub(crate) fn wrap_records(
    section: &[u8],
    records: &[TestRecord],
    codec: Compression,
    base_timestamp: i64,
    extra_attributes: i16,
) -> Vec<u8> {
    let count = records.len() as i32;
    let max_timestamp = records
        .iter()
        .map(|r| base_timestamp + r.timestamp_delta)
        .max()
        .unwrap_or(base_timestamp);
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + section.len());
    out.extend_from_slice(&0i64.to_be_bytes());
    out.extend_from_slice(&((BATCH_HEADER_BYTES - 12 + section.len()) as i32).to_be_bytes());
    out.extend_from_slice(&7i32.to_be_bytes()); // leader epoch, to see it zeroed
    out.push(2);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(codec.attribute_bits() | extra_attributes).to_be_bytes());
    out.extend_from_slice(&(count - 1).to_be_bytes());
    out.extend_from_slice(&base_timestamp.to_be_bytes());
    out.extend_from_slice(&max_timestamp.to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes());
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(section);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

/// A whole batch of `records`.
pub(crate) fn encode_batch(
    records: &[TestRecord],
    codec: Compression,
    base_timestamp: i64,
    extra_attributes: i16,
) -> Vec<u8> {
    let section = compress(codec, &encode_records(records));
    wrap_records(&section, records, codec, base_timestamp, extra_attributes)
}

/// `n` small keyed records with timestamps `base_timestamp + i`.
pub(crate) fn simple_batch(n: usize, base_timestamp: i64) -> Vec<u8> {
    let records: Vec<TestRecord> = (0..n)
        .map(|i| {
            TestRecord::new(
                Some(format!("key-{i}").as_bytes()),
                Some(b"value"),
                i as i64,
            )
        })
        .collect();
    encode_batch(&records, Compression::None, base_timestamp, 0)
}

/// A batch of `n` records whose values are `value_bytes` long.
pub(crate) fn sized_batch(n: usize, value_bytes: usize, base_timestamp: i64) -> Vec<u8> {
    let value = vec![b'x'; value_bytes];
    let records: Vec<TestRecord> = (0..n)
        .map(|i| TestRecord::new(Some(b"k"), Some(&value), i as i64))
        .collect();
    encode_batch(&records, Compression::None, base_timestamp, 0)
}

/// A clock the test moves by hand.
#[derive(Debug)]
pub(crate) struct FakeClock(AtomicI64);

impl FakeClock {
    pub fn new(now_ms: i64) -> Arc<FakeClock> {
        Arc::new(FakeClock(AtomicI64::new(now_ms)))
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// `n` records from producer `pid` with sequence `seq` (transactional if `txn`).
pub(crate) fn producer_batch(n: usize, pid: i64, epoch: i16, seq: i32, txn: bool) -> Vec<u8> {
    let mut b = simple_batch(n, 1_700_000_000_000);
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    if txn {
        b[22] |= 0x10;
    }
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}
