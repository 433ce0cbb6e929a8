//! RecordBatch v2 (magic 2) header access and validation, done on the produced bytes
//! themselves: nothing here re-encodes a batch.
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8, partitionLeaderEpoch i32
//! @12, magic i8 @16, crc u32 @17 (CRC-32C of bytes 21..end), attributes i16 @21,
//! lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35, producerId i64
//! @43, producerEpoch i16 @51, baseSequence i32 @53, recordsCount i32 @57, records @61.
//!
//! Each record (after decompression of the records section): length varint, attributes
//! i8, timestampDelta varlong, offsetDelta varint, keyLength varint (-1 = null), key,
//! valueLength varint (-1 = null), value, headerCount varint, then per header keyLength
//! varint (never null), key, valueLength varint (-1 = null), value. Varints are zig-zag.
//!
//! Every function here must return an error, never panic, on any input: the input comes
//! straight from the network (validation) or from a disk that may hold a torn write
//! (recovery). A proptest at the bottom feeds arbitrary and mutated bytes to check it.

use std::io::Read;
use std::ops::ControlFlow;

use crate::LogError;
use crate::limits::DECOMPRESSED_BATCH_BYTES_MAX;

/// Size of the fixed RecordBatch v2 header.
pub const BATCH_HEADER_BYTES: usize = 61;

/// Bytes before the batch-length field ends: `baseOffset` and `batchLength` are not
/// counted in `batchLength`.
pub(crate) const LOG_OVERHEAD_BYTES: usize = 12;

/// The only magic value this log stores (Kafka 4.x accepts nothing older).
pub(crate) const MAGIC_V2: i8 = 2;

/// The CRC covers everything from the attributes on.
pub(crate) const CRC_START: usize = 21;

/// Attribute bit: timestamps are the broker's append time.
pub(crate) const ATTR_LOG_APPEND_TIME: i16 = 0x08;

/// Attribute bit: the batch carries a delete horizon in its base timestamp (KIP-534).
/// The cleaner sets it when it first rewrites a batch holding tombstones.
pub(crate) const ATTR_DELETE_HORIZON: i16 = 0x40;
/// Attribute bit 4: the batch belongs to a transaction.
pub(crate) const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit 5: a control batch (transaction markers).
pub(crate) const ATTR_CONTROL: i16 = 0x20;

/// Attribute bits of the compression codec.
const ATTR_COMPRESSION_MASK: i16 = 0x07;

/// Kafka's "no timestamp".
pub(crate) const NO_TIMESTAMP: i64 = -1;

const OFFSET_BASE_OFFSET: usize = 0;
const OFFSET_BATCH_LENGTH: usize = 8;
const OFFSET_LEADER_EPOCH: usize = 12;
const OFFSET_MAGIC: usize = 16;
const OFFSET_CRC: usize = 17;
const OFFSET_ATTRIBUTES: usize = 21;
const OFFSET_LAST_OFFSET_DELTA: usize = 23;
const OFFSET_BASE_TIMESTAMP: usize = 27;
const OFFSET_MAX_TIMESTAMP: usize = 35;
const OFFSET_PRODUCER_ID: usize = 43;
const OFFSET_PRODUCER_EPOCH: usize = 51;
const OFFSET_BASE_SEQUENCE: usize = 53;
const OFFSET_RECORDS_COUNT: usize = 57;

/// xerial snappy framing, used by the Java client: this magic, a version i32 and a
/// compatible-version i32, then blocks of `[u32 length][raw snappy]`.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;

/// Compression codec from the low three bits of the attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy, raw or xerial-framed (the Java client's framing).
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// The attribute bits of this codec.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

/// The parsed fixed header of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// First offset of the batch.
    pub base_offset: i64,
    /// Bytes after the length field (total size is `batch_length + 12`).
    pub batch_length: i32,
    /// Partition leader epoch.
    pub partition_leader_epoch: i32,
    /// Always 2 for a valid batch.
    pub magic: i8,
    /// Stored CRC-32C.
    pub crc: u32,
    /// Attributes (compression, timestamp type, transactional, control).
    pub attributes: i16,
    /// `last_offset - base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id, -1 when not idempotent.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// Sequence of the first record.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

impl BatchHeader {
    /// Total size of the batch in bytes.
    pub fn size_bytes(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD_BYTES
    }
    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset.wrapping_add(self.last_offset_delta as i64)
    }
    /// The compression codec, or an error for the reserved values.
    pub fn compression(&self) -> crate::Result<Compression> {
        match self.attributes & ATTR_COMPRESSION_MASK {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(corrupt(format!("unknown compression codec {other}"))),
        }
    }
    /// True for a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    /// True for a transactional batch.
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    /// True when the batch's timestamps are the broker's append time (attribute bit 3):
    /// then every record's timestamp is `max_timestamp`.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }
    /// The delete horizon (KIP-534) when the cleaner has set one: tombstones of this
    /// batch may be removed from then on. It is stored in the base timestamp field.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }
}

fn corrupt(message: impl Into<String>) -> LogError {
    LogError::CorruptMessage(message.into())
}

fn be_i16(bytes: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([bytes[at], bytes[at + 1]])
}
fn be_i32(bytes: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}
fn be_i64(bytes: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    i64::from_be_bytes(b)
}

/// Reads only the base offset and length of the batch at the start of `bytes` (needs
/// [`LOG_OVERHEAD_BYTES`]). Returns `(base_offset, total size)`.
pub(crate) fn parse_length(bytes: &[u8]) -> crate::Result<(i64, usize)> {
    if bytes.len() < LOG_OVERHEAD_BYTES {
        return Err(corrupt(format!(
            "{} bytes left, a batch needs at least {LOG_OVERHEAD_BYTES} bytes for its offset and length",
            bytes.len()
        )));
    }
    let batch_length = be_i32(bytes, OFFSET_BATCH_LENGTH);
    check_batch_length(batch_length)?;
    Ok((
        be_i64(bytes, OFFSET_BASE_OFFSET),
        batch_length as usize + LOG_OVERHEAD_BYTES,
    ))
}

fn check_batch_length(batch_length: i32) -> crate::Result<()> {
    let min = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;
    if batch_length < min {
        return Err(corrupt(format!(
            "batchLength {batch_length} is smaller than a v2 header ({min})"
        )));
    }
    Ok(())
}

/// Parses the header at the start of `bytes` without checking the CRC.
/// Errors with [`crate::LogError::CorruptMessage`] if fewer than
/// [`BATCH_HEADER_BYTES`] are present or the length field is impossible.
pub fn parse_header(bytes: &[u8]) -> crate::Result<BatchHeader> {
    if bytes.len() < BATCH_HEADER_BYTES {
        return Err(corrupt(format!(
            "{} bytes left, a batch header needs {BATCH_HEADER_BYTES}",
            bytes.len()
        )));
    }
    let batch_length = be_i32(bytes, OFFSET_BATCH_LENGTH);
    check_batch_length(batch_length)?;
    Ok(BatchHeader {
        base_offset: be_i64(bytes, OFFSET_BASE_OFFSET),
        batch_length,
        partition_leader_epoch: be_i32(bytes, OFFSET_LEADER_EPOCH),
        magic: bytes[OFFSET_MAGIC] as i8,
        crc: be_i32(bytes, OFFSET_CRC) as u32,
        attributes: be_i16(bytes, OFFSET_ATTRIBUTES),
        last_offset_delta: be_i32(bytes, OFFSET_LAST_OFFSET_DELTA),
        base_timestamp: be_i64(bytes, OFFSET_BASE_TIMESTAMP),
        max_timestamp: be_i64(bytes, OFFSET_MAX_TIMESTAMP),
        producer_id: be_i64(bytes, OFFSET_PRODUCER_ID),
        producer_epoch: be_i16(bytes, OFFSET_PRODUCER_EPOCH),
        base_sequence: be_i32(bytes, OFFSET_BASE_SEQUENCE),
        records_count: be_i32(bytes, OFFSET_RECORDS_COUNT),
    })
}

/// Summary of a validated produce payload (one or more batches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedBatches {
    /// Each batch's header, in order.
    pub headers: Vec<BatchHeader>,
    /// Total records across all batches.
    pub records_count: i64,
}

/// What validation learnt about one batch beyond its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CheckedBatch {
    /// The header as produced.
    pub header: BatchHeader,
    /// Where the batch starts in the payload.
    pub position: usize,
    /// The largest record timestamp actually present (create time).
    pub max_record_timestamp: i64,
}

/// A caller's check of each produced record's key and value (`None` when null), run
/// by validation inside its own record walk, after the batch's size, CRC and framing
/// checked out, so a payload is decompressed once and nothing is allocated per record.
/// `Err(reason)` refuses the record: the payload is then
/// [`crate::LogError::RefusedRecords`], naming every refused record. The log knows
/// nothing of what is checked (the broker uses it for schema ids).
pub type RecordCheck<'c> = dyn FnMut(Option<&[u8]>, Option<&[u8]>) -> Result<(), String> + 'c;

/// Validates a produce payload (one or more concatenated batches) completely: magic 2,
/// lengths that add up exactly to `bytes.len()`, CRC-32C, each batch no larger than
/// `max_message_bytes`, record count consistent with `lastOffsetDelta`, every record
/// well-formed (decompressing if needed; snappy raw or xerial), offset deltas 0..n.
/// With `require_keys`, a keyless record is [`crate::LogError::InvalidRecord`].
pub fn validate(
    bytes: &[u8],
    max_message_bytes: usize,
    require_keys: bool,
) -> crate::Result<ValidatedBatches> {
    let checked = validate_batches(bytes, max_message_bytes, require_keys, None)?;
    let records_count = checked.iter().map(|b| b.header.records_count as i64).sum();
    Ok(ValidatedBatches {
        headers: checked.into_iter().map(|b| b.header).collect(),
        records_count,
    })
}

/// [`validate`], also returning each batch's position and real largest timestamp, and
/// running `record_check` on every record of a batch that is not a control batch.
pub(crate) fn validate_batches(
    bytes: &[u8],
    max_message_bytes: usize,
    require_keys: bool,
    mut record_check: Option<&mut RecordCheck<'_>>,
) -> crate::Result<Vec<CheckedBatch>> {
    if bytes.is_empty() {
        return Err(corrupt("empty record set"));
    }
    let mut checked = Vec::new();
    let mut position = 0usize;
    while position < bytes.len() {
        let rest = &bytes[position..];
        let (_, size) = parse_length(rest).map_err(|e| with_context(e, position))?;
        if size > rest.len() {
            return Err(corrupt(format!(
                "batch at byte {position} claims {size} bytes but only {} remain",
                rest.len()
            )));
        }
        let batch = &rest[..size];
        let header = parse_header(batch).map_err(|e| with_context(e, position))?;
        let max_record_timestamp = check_batch(
            batch,
            &header,
            max_message_bytes,
            require_keys,
            record_check.as_deref_mut(),
        )
        .map_err(|e| with_context(e, position))?;
        checked.push(CheckedBatch {
            header,
            position,
            max_record_timestamp,
        });
        position += size;
    }
    Ok(checked)
}

fn with_context(error: LogError, position: usize) -> LogError {
    match error {
        LogError::CorruptMessage(m) => corrupt(format!("batch at byte {position}: {m}")),
        LogError::InvalidRecord(m) => {
            LogError::InvalidRecord(format!("batch at byte {position}: {m}"))
        }
        other => other,
    }
}

/// Checks one whole batch (`batch.len() == header.size_bytes()`); returns the largest
/// record timestamp found.
fn check_batch(
    batch: &[u8],
    header: &BatchHeader,
    max_message_bytes: usize,
    require_keys: bool,
    mut record_check: Option<&mut RecordCheck<'_>>,
) -> crate::Result<i64> {
    if header.magic != MAGIC_V2 {
        return Err(corrupt(format!(
            "magic {} is not supported, only 2",
            header.magic
        )));
    }
    // Kafka checks the size before the CRC, so an oversized batch is MESSAGE_TOO_LARGE
    // even if it is also damaged.
    if batch.len() > max_message_bytes {
        return Err(LogError::MessageTooLarge {
            size_bytes: batch.len(),
            max_bytes: max_message_bytes,
        });
    }
    check_crc(batch, header)?;
    check_counts(header)?;
    let mut max_timestamp = i64::MIN;
    let mut keyless = Vec::new();
    let mut refused = Vec::new();
    let mut refused_count = 0usize;
    let mut first_reason = None;
    let control = header.is_control();
    for_each_raw_record(batch, header, Deltas::Contiguous, |record| {
        max_timestamp = max_timestamp.max(record.timestamp);
        if require_keys
            && !control
            && record.key.is_none()
            && keyless.len() < crate::limits::RECORD_ERRORS_MAX
        {
            keyless.push(record.offset_delta);
        }
        if let Some(check) = record_check.as_deref_mut()
            && !control
            && let Err(reason) = check(record.key, record.value)
        {
            refused_count += 1;
            if first_reason.is_none() {
                first_reason = Some(format!("record {}: {reason}", record.offset_delta));
            }
            if refused.len() < crate::limits::RECORD_ERRORS_MAX {
                refused.push(record.offset_delta);
            }
        }
        ControlFlow::Continue(())
    })?;
    if !keyless.is_empty() {
        return Err(LogError::KeylessRecords {
            record_indexes: keyless,
        });
    }
    if let Some(mut reason) = first_reason {
        if refused_count > 1 {
            reason.push_str(&format!(" (and {} more records)", refused_count - 1));
        }
        return Err(LogError::RefusedRecords {
            reason,
            record_indexes: refused,
        });
    }
    Ok(max_timestamp)
}

/// Verifies the stored CRC-32C against bytes `21..`.
pub(crate) fn check_crc(batch: &[u8], header: &BatchHeader) -> crate::Result<()> {
    let computed = crc32c::crc32c(&batch[CRC_START..]);
    if computed != header.crc {
        return Err(corrupt(format!(
            "CRC-32C mismatch: stored {:#010x}, computed {computed:#010x}",
            header.crc
        )));
    }
    Ok(())
}

/// Produced batches: offsets are contiguous, so `recordsCount == lastOffsetDelta + 1`.
pub(crate) fn check_counts(header: &BatchHeader) -> crate::Result<()> {
    if header.records_count < 1 {
        return Err(corrupt(format!(
            "recordsCount {} is not positive",
            header.records_count
        )));
    }
    if header.last_offset_delta as i64 + 1 != header.records_count as i64 {
        return Err(corrupt(format!(
            "recordsCount {} does not match lastOffsetDelta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    Ok(())
}

/// Stored batches: compaction removes records but keeps `lastOffsetDelta` (as Kafka
/// does, so the last sequence number of a producer survives), so a batch may hold fewer
/// records than its offset range.
pub(crate) fn check_stored_counts(header: &BatchHeader) -> crate::Result<()> {
    if header.last_offset_delta < 0 {
        return Err(corrupt(format!(
            "lastOffsetDelta {} is negative",
            header.last_offset_delta
        )));
    }
    if header.records_count < 0 || header.records_count as i64 > header.last_offset_delta as i64 + 1
    {
        return Err(corrupt(format!(
            "recordsCount {} does not fit lastOffsetDelta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    Ok(())
}

/// How strictly a record walk checks offset deltas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deltas {
    /// As produced: record `i` has offset delta `i`.
    Contiguous,
    /// As stored, possibly compacted: deltas strictly increase up to `lastOffsetDelta`.
    Increasing,
}

/// What a record walk reports for each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordInfo {
    /// The record's offset minus the batch's base offset (its position in the batch
    /// unless the batch was compacted).
    pub offset_delta: i32,
    /// The record's effective timestamp (the batch's max for LogAppendTime).
    pub timestamp: i64,
    /// The key is null.
    pub key_is_null: bool,
}

/// One record as stored, borrowed from the (decompressed) records section.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecord<'a> {
    /// The record's offset minus the batch's base offset.
    pub offset_delta: i32,
    /// The record's effective timestamp (the batch's max for LogAppendTime).
    pub timestamp: i64,
    /// The timestamp the record was written with: base timestamp plus its delta (for
    /// LogAppendTime batches, what the producer set before the broker stamped it).
    pub written_timestamp: i64,
    /// The key, `None` when null.
    pub key: Option<&'a [u8]>,
    /// The value, `None` when null (a tombstone).
    pub value: Option<&'a [u8]>,
    /// The record's attributes byte.
    pub attributes: u8,
    /// Everything after the offset delta: key, value and headers, as encoded.
    pub tail: &'a [u8],
    /// The whole record including its length prefix, as encoded.
    pub encoded: &'a [u8],
}

impl RawRecord<'_> {
    fn info(&self) -> RecordInfo {
        RecordInfo {
            offset_delta: self.offset_delta,
            timestamp: self.timestamp,
            key_is_null: self.key.is_none(),
        }
    }
}

/// Walks every record of one whole stored batch (compacted batches included),
/// decompressing if needed, checking every length; `visit` may stop the walk early.
/// Errors are `CorruptMessage`.
pub(crate) fn for_each_record(
    batch: &[u8],
    header: &BatchHeader,
    mut visit: impl FnMut(RecordInfo) -> ControlFlow<()>,
) -> crate::Result<()> {
    for_each_raw_record(batch, header, Deltas::Increasing, |r| visit(r.info()))
}

/// [`for_each_record`] with the record bytes, checking deltas as `deltas` says.
pub(crate) fn for_each_raw_record(
    batch: &[u8],
    header: &BatchHeader,
    deltas: Deltas,
    mut visit: impl FnMut(RawRecord<'_>) -> ControlFlow<()>,
) -> crate::Result<()> {
    let records = records_section(batch, header)?;
    walk_records(&records, header, deltas, &mut visit)
}

/// The records section of one whole batch, decompressed.
fn records_section<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
) -> crate::Result<std::borrow::Cow<'a, [u8]>> {
    if batch.len() != header.size_bytes() || batch.len() < BATCH_HEADER_BYTES {
        return Err(corrupt("batch length does not match its header"));
    }
    let section = &batch[BATCH_HEADER_BYTES..];
    Ok(match header.compression()? {
        Compression::None => std::borrow::Cow::Borrowed(section),
        codec => std::borrow::Cow::Owned(decompress(codec, section, DECOMPRESSED_BATCH_BYTES_MAX)?),
    })
}

fn walk_records<'a>(
    records: &'a [u8],
    header: &BatchHeader,
    deltas: Deltas,
    visit: &mut impl FnMut(RawRecord<'a>) -> ControlFlow<()>,
) -> crate::Result<()> {
    let mut cursor = Cursor::new(records);
    let log_append_time = header.is_log_append_time();
    let mut previous_delta = -1i32;
    for index in 0..header.records_count {
        let record_start = cursor.position;
        let length = cursor.varint()?;
        if length < 0 {
            return Err(corrupt(format!(
                "record {index} has negative length {length}"
            )));
        }
        let body = cursor.take(length as usize).map_err(|_| {
            corrupt(format!(
                "record {index} of {length} bytes runs past the batch"
            ))
        })?;
        let mut record = Cursor::new(body);
        let attributes = record.byte()?;
        let timestamp_delta = record.varlong()?;
        let offset_delta = record.varint()?;
        let in_order = match deltas {
            Deltas::Contiguous => offset_delta == index,
            Deltas::Increasing => {
                offset_delta > previous_delta && offset_delta <= header.last_offset_delta
            }
        };
        if !in_order {
            return Err(corrupt(format!(
                "record {index} has offsetDelta {offset_delta}"
            )));
        }
        previous_delta = offset_delta;
        let tail_start = record.position;
        let key = record.nullable_bytes("key")?;
        let value = record.nullable_bytes("value")?;
        let header_count = record.varint()?;
        if header_count < 0 {
            return Err(corrupt(format!(
                "record {index} has header count {header_count}"
            )));
        }
        for _ in 0..header_count {
            let key_length = record.varint()?;
            if key_length < 0 {
                return Err(corrupt(format!(
                    "record {index} has a header key of length {key_length}"
                )));
            }
            record.take(key_length as usize)?;
            record.nullable_bytes("header value")?;
        }
        if record.remaining() != 0 {
            return Err(corrupt(format!(
                "record {index} declares {length} bytes but its fields use {}",
                length as usize - record.remaining()
            )));
        }
        let written_timestamp = header.base_timestamp.wrapping_add(timestamp_delta);
        let raw = RawRecord {
            offset_delta,
            timestamp: if log_append_time {
                header.max_timestamp
            } else {
                written_timestamp
            },
            written_timestamp,
            key,
            value,
            attributes,
            tail: &body[tail_start..],
            encoded: &records[record_start..cursor.position],
        };
        if visit(raw).is_break() {
            return Ok(());
        }
    }
    if cursor.remaining() != 0 {
        return Err(corrupt(format!(
            "{} bytes follow the {} declared records",
            cursor.remaining(),
            header.records_count
        )));
    }
    Ok(())
}

/// Bounds-checked reader over record bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes, position: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn take(&mut self, n: usize) -> crate::Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(corrupt(format!(
                "field of {n} bytes runs past the end ({} left)",
                self.remaining()
            )));
        }
        let slice = &self.bytes[self.position..self.position + n];
        self.position += n;
        Ok(slice)
    }

    fn byte(&mut self) -> crate::Result<u8> {
        Ok(self.take(1)?[0])
    }

    /// Zig-zag varint of at most 5 bytes, as Kafka's `ByteUtils.readVarint`.
    fn varint(&mut self) -> crate::Result<i32> {
        let mut value: u32 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            value |= ((b & 0x7f) as u32) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 28 {
                return Err(corrupt("varint longer than 5 bytes"));
            }
        }
        Ok(((value >> 1) as i32) ^ -((value & 1) as i32))
    }

    /// Zig-zag varlong of at most 10 bytes, as Kafka's `ByteUtils.readVarlong`.
    fn varlong(&mut self) -> crate::Result<i64> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            value |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return Err(corrupt("varlong longer than 10 bytes"));
            }
        }
        Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
    }

    /// A varint length (-1 = null) followed by that many bytes.
    fn nullable_bytes(&mut self, what: &str) -> crate::Result<Option<&'a [u8]>> {
        let length = self.varint()?;
        match length {
            -1 => Ok(None),
            n if n < -1 => Err(corrupt(format!("{what} length {n}"))),
            n => Ok(Some(self.take(n as usize)?)),
        }
    }
}

/// Inflates a records section, refusing to produce more than `cap_bytes`.
pub(crate) fn decompress(
    codec: Compression,
    data: &[u8],
    cap_bytes: usize,
) -> crate::Result<Vec<u8>> {
    let too_big = || corrupt(format!("records decompress to more than {cap_bytes} bytes"));
    let read_capped = |reader: &mut dyn Read, name: &str| -> crate::Result<Vec<u8>> {
        let mut out = Vec::new();
        reader
            .take(cap_bytes as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| corrupt(format!("{name} decompression failed: {e}")))?;
        if out.len() > cap_bytes {
            return Err(too_big());
        }
        Ok(out)
    };
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => read_capped(&mut flate2::read::MultiGzDecoder::new(data), "gzip"),
        Compression::Lz4 => read_capped(&mut lz4_flex::frame::FrameDecoder::new(data), "lz4"),
        Compression::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|e| corrupt(format!("zstd decompression failed: {e}")))?;
            read_capped(&mut decoder, "zstd")
        }
        Compression::Snappy => {
            if data.len() >= XERIAL_HEADER_BYTES && data.starts_with(XERIAL_MAGIC) {
                decompress_xerial(&data[XERIAL_HEADER_BYTES..], cap_bytes)
            } else {
                let mut out = Vec::new();
                snappy_block(data, &mut out, cap_bytes)?;
                Ok(out)
            }
        }
    }
}

fn decompress_xerial(mut blocks: &[u8], cap_bytes: usize) -> crate::Result<Vec<u8>> {
    let mut out = Vec::new();
    while !blocks.is_empty() {
        if blocks.len() < 4 {
            return Err(corrupt("xerial snappy block length truncated"));
        }
        let length = u32::from_be_bytes([blocks[0], blocks[1], blocks[2], blocks[3]]) as usize;
        let rest = &blocks[4..];
        if length > rest.len() {
            return Err(corrupt(format!(
                "xerial snappy block of {length} bytes runs past the batch"
            )));
        }
        snappy_block(&rest[..length], &mut out, cap_bytes)?;
        blocks = &rest[length..];
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`, checking its declared size against the cap
/// before allocating.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, cap_bytes: usize) -> crate::Result<()> {
    let length = snap::raw::decompress_len(block)
        .map_err(|e| corrupt(format!("snappy decompression failed: {e}")))?;
    if length > cap_bytes.saturating_sub(out.len()) {
        return Err(corrupt(format!(
            "records decompress to more than {cap_bytes} bytes"
        )));
    }
    let start = out.len();
    out.resize(start + length, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt(format!("snappy decompression failed: {e}")))?;
    Ok(())
}

/// Sets the base offset and zeroes the partition leader epoch of a batch in place. Both
/// lie before the CRC-covered range, so the CRC stays valid.
pub(crate) fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[OFFSET_BASE_OFFSET..OFFSET_BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[OFFSET_LEADER_EPOCH..OFFSET_LEADER_EPOCH + 4].copy_from_slice(&0i32.to_be_bytes());
}

/// Rewrites `maxTimestamp` (and, for LogAppendTime, the timestamp-type bit) and the CRC.
/// Kafka does the same: it is the only change to the CRC-covered bytes a broker makes.
pub(crate) fn set_max_timestamp(batch: &mut [u8], max_timestamp: i64, log_append_time: bool) {
    if log_append_time {
        let attributes = be_i16(batch, OFFSET_ATTRIBUTES) | ATTR_LOG_APPEND_TIME;
        batch[OFFSET_ATTRIBUTES..OFFSET_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    }
    batch[OFFSET_MAX_TIMESTAMP..OFFSET_MAX_TIMESTAMP + 8]
        .copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Appends a zig-zag varint (Kafka's `ByteUtils.writeVarlong`; a varint is the same
/// encoding of a smaller range).
pub(crate) fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends one record (length prefix, attributes, timestamp and offset deltas, then
/// `tail`: key, value and headers as already encoded).
pub(crate) fn put_record(
    out: &mut Vec<u8>,
    attributes: u8,
    timestamp_delta: i64,
    offset_delta: i32,
    tail: &[u8],
) {
    let mut prefix = Vec::with_capacity(16);
    prefix.push(attributes);
    put_varint(&mut prefix, timestamp_delta);
    put_varint(&mut prefix, offset_delta as i64);
    put_varint(out, (prefix.len() + tail.len()) as i64);
    out.extend_from_slice(&prefix);
    out.extend_from_slice(tail);
}

/// Block size of the xerial snappy framing we write (the Java client's default).
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// Compresses a records section. Snappy is written xerial-framed, as the Java broker
/// writes it when it re-compresses; every client reads that framing.
pub(crate) fn compress(codec: Compression, raw: &[u8]) -> crate::Result<Vec<u8>> {
    use std::io::Write;
    let failed = |name: &str, e: std::io::Error| corrupt(format!("{name} compression failed: {e}"));
    match codec {
        Compression::None => Ok(raw.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(raw).map_err(|e| failed("gzip", e))?;
            e.finish().map_err(|e| failed("gzip", e))
        }
        Compression::Snappy => {
            let mut out = XERIAL_MAGIC.to_vec();
            out.extend_from_slice(&1i32.to_be_bytes()); // version
            out.extend_from_slice(&1i32.to_be_bytes()); // compatible version
            let mut encoder = snap::raw::Encoder::new();
            for chunk in raw.chunks(XERIAL_BLOCK_BYTES) {
                let block = encoder
                    .compress_vec(chunk)
                    .map_err(|e| corrupt(format!("snappy compression failed: {e}")))?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(raw).map_err(|e| failed("lz4", e))?;
            e.finish()
                .map_err(|e| corrupt(format!("lz4 compression failed: {e}")))
        }
        Compression::Zstd => zstd::encode_all(raw, 3).map_err(|e| failed("zstd", e)),
    }
}

/// Builds a whole batch: the fixed fields from `header` (its `batch_length` and `crc`
/// are ignored and recomputed), then `raw_records` (uncompressed, `records_count`
/// records) compressed with the header's codec.
pub(crate) fn build_batch(header: &BatchHeader, raw_records: &[u8]) -> crate::Result<Vec<u8>> {
    let section = compress(header.compression()?, raw_records)?;
    let batch_length = BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + section.len();
    let batch_length = i32::try_from(batch_length)
        .map_err(|_| corrupt(format!("a batch of {batch_length} bytes is too large")))?;
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + section.len());
    out.extend_from_slice(&header.base_offset.to_be_bytes());
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&header.partition_leader_epoch.to_be_bytes());
    out.push(header.magic as u8);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&header.attributes.to_be_bytes());
    out.extend_from_slice(&header.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&header.base_timestamp.to_be_bytes());
    out.extend_from_slice(&header.max_timestamp.to_be_bytes());
    out.extend_from_slice(&header.producer_id.to_be_bytes());
    out.extend_from_slice(&header.producer_epoch.to_be_bytes());
    out.extend_from_slice(&header.base_sequence.to_be_bytes());
    out.extend_from_slice(&header.records_count.to_be_bytes());
    debug_assert_eq!(out.len(), BATCH_HEADER_BYTES);
    out.extend_from_slice(&section);
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// A transaction marker read from a control batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecord {
    /// Commit (true) or abort.
    pub commit: bool,
    /// The epoch of the coordinator that wrote it.
    pub coordinator_epoch: i32,
}

/// The transaction marker of a whole control batch, `None` for a data batch or a
/// control record of another type. Control keys are `(version: i16, type: i16)` with
/// type 0 = abort, 1 = commit; values `(version: i16, coordinator epoch: i32)`.
pub fn control_record(batch: &[u8], header: &BatchHeader) -> crate::Result<Option<ControlRecord>> {
    if !header.is_control() {
        return Ok(None);
    }
    let mut found = None;
    for_each_raw_record(batch, header, Deltas::Increasing, |r| {
        if let Some(key) = r.key
            && key.len() >= 4
        {
            let kind = i16::from_be_bytes([key[2], key[3]]);
            let coordinator_epoch = match r.value {
                Some(v) if v.len() >= 6 => i32::from_be_bytes([v[2], v[3], v[4], v[5]]),
                _ => 0,
            };
            if kind == 0 || kind == 1 {
                found = Some(ControlRecord {
                    commit: kind == 1,
                    coordinator_epoch,
                });
            }
        }
        ControlFlow::Break(())
    })?;
    Ok(found)
}

/// A control batch holding one transaction marker, at offset 0 (the log assigns it).
pub(crate) fn marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now_ms: i64,
) -> crate::Result<Vec<u8>> {
    let key = crate::producers::marker_key(commit);
    let value = crate::producers::marker_value(coordinator_epoch);
    let mut tail = Vec::with_capacity(16);
    put_varint(&mut tail, key.len() as i64);
    tail.extend_from_slice(&key);
    put_varint(&mut tail, value.len() as i64);
    tail.extend_from_slice(&value);
    put_varint(&mut tail, 0); // no headers
    let mut raw = Vec::with_capacity(24);
    put_record(&mut raw, 0, 0, 0, &tail);
    let header = BatchHeader {
        base_offset: 0,
        batch_length: 0,
        partition_leader_epoch: 0,
        magic: MAGIC_V2,
        crc: 0,
        attributes: ATTR_TRANSACTIONAL | ATTR_CONTROL,
        last_offset_delta: 0,
        base_timestamp: now_ms,
        max_timestamp: now_ms,
        producer_id,
        producer_epoch,
        base_sequence: -1,
        records_count: 1,
    };
    build_batch(&header, &raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{TestRecord, encode_batch, encode_records, simple_batch};
    use proptest::prelude::*;

    fn all_codecs() -> [Compression; 5] {
        [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ]
    }

    fn expect_corrupt(result: crate::Result<ValidatedBatches>, needle: &str) {
        match result {
            Err(LogError::CorruptMessage(m)) => {
                assert!(
                    m.contains(needle),
                    "message {m:?} should mention {needle:?}"
                )
            }
            other => panic!("expected CorruptMessage containing {needle:?}, got {other:?}"),
        }
    }

    fn refresh_crc(batch: &mut [u8]) {
        let crc = crc32c::crc32c(&batch[CRC_START..]);
        batch[OFFSET_CRC..OFFSET_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn header_fields_round_trip() {
        let batch = simple_batch(3, 1_000);
        let header = parse_header(&batch).unwrap();
        assert_eq!(header.magic, 2);
        assert_eq!(header.records_count, 3);
        assert_eq!(header.last_offset_delta, 2);
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(header.max_timestamp, 1_002);
        assert_eq!(header.size_bytes(), batch.len());
        assert_eq!(header.producer_id, -1);
        assert_eq!(header.compression().unwrap(), Compression::None);
        assert!(!header.is_control() && !header.is_transactional() && !header.is_log_append_time());
    }

    #[test]
    fn header_needs_61_bytes_and_a_possible_length() {
        let batch = simple_batch(1, 0);
        assert!(parse_header(&batch[..60]).is_err());
        let mut bad = batch.clone();
        bad[8..12].copy_from_slice(&48i32.to_be_bytes());
        assert!(parse_header(&bad).is_err());
        bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(parse_header(&bad).is_err());
    }

    #[test]
    fn every_codec_validates() {
        for codec in all_codecs() {
            let records: Vec<TestRecord> = (0..50)
                .map(|i| {
                    TestRecord::new(Some(format!("k{i}").as_bytes()), Some(&[i as u8; 100]), i)
                })
                .collect();
            let batch = encode_batch(&records, codec, 5_000, 0);
            let validated =
                validate(&batch, 1 << 20, true).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            assert_eq!(validated.records_count, 50, "{codec:?}");
            assert_eq!(validated.headers[0].compression().unwrap(), codec);
        }
    }

    #[test]
    fn xerial_snappy_validates() {
        let records: Vec<TestRecord> = (0..200)
            .map(|i| TestRecord::new(None, Some(&[7u8; 500]), i))
            .collect();
        let raw = encode_records(&records);
        // The log's own compressor writes the xerial framing.
        let framed = compress(Compression::Snappy, &raw).unwrap();
        assert!(framed.starts_with(XERIAL_MAGIC));
        let batch = crate::test_support::wrap_records(&framed, &records, Compression::Snappy, 0, 0);
        let validated = validate(&batch, 1 << 20, false).unwrap();
        assert_eq!(validated.records_count, 200);
    }

    #[test]
    fn several_batches_must_add_up_exactly() {
        let mut payload = simple_batch(2, 0);
        payload.extend(simple_batch(3, 10));
        let validated = validate(&payload, 1 << 20, false).unwrap();
        assert_eq!(validated.headers.len(), 2);
        assert_eq!(validated.records_count, 5);

        let mut trailing = payload.clone();
        trailing.push(0);
        expect_corrupt(
            validate(&trailing, 1 << 20, false),
            "bytes for its offset and length",
        );
        expect_corrupt(
            validate(&payload[..payload.len() - 1], 1 << 20, false),
            "remain",
        );
        expect_corrupt(validate(&[], 1 << 20, false), "empty");
    }

    #[test]
    fn crc_magic_and_codec_are_checked() {
        let batch = simple_batch(2, 0);
        let mut flipped = batch.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        expect_corrupt(validate(&flipped, 1 << 20, false), "CRC");

        let mut magic = batch.clone();
        magic[16] = 1;
        expect_corrupt(validate(&magic, 1 << 20, false), "magic");

        let mut codec = batch.clone();
        codec[22] |= 0x07;
        refresh_crc(&mut codec);
        expect_corrupt(validate(&codec, 1 << 20, false), "compression codec 7");
    }

    #[test]
    fn too_large_is_message_too_large() {
        let batch = simple_batch(5, 0);
        match validate(&batch, batch.len() - 1, false) {
            Err(LogError::MessageTooLarge {
                size_bytes,
                max_bytes,
            }) => {
                assert_eq!(size_bytes, batch.len());
                assert_eq!(max_bytes, batch.len() - 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(validate(&batch, batch.len(), false).is_ok());
    }

    #[test]
    fn counts_must_agree() {
        let batch = simple_batch(3, 0);
        let mut count = batch.clone();
        count[57..61].copy_from_slice(&4i32.to_be_bytes());
        refresh_crc(&mut count);
        expect_corrupt(
            validate(&count, 1 << 20, false),
            "does not match lastOffsetDelta",
        );

        // Both agree with each other but not with the records present.
        count[23..27].copy_from_slice(&3i32.to_be_bytes());
        refresh_crc(&mut count);
        expect_corrupt(validate(&count, 1 << 20, false), "");

        let mut fewer = batch.clone();
        fewer[57..61].copy_from_slice(&2i32.to_be_bytes());
        fewer[23..27].copy_from_slice(&1i32.to_be_bytes());
        refresh_crc(&mut fewer);
        expect_corrupt(
            validate(&fewer, 1 << 20, false),
            "follow the 2 declared records",
        );

        let mut zero = batch;
        zero[57..61].copy_from_slice(&0i32.to_be_bytes());
        zero[23..27].copy_from_slice(&(-1i32).to_be_bytes());
        refresh_crc(&mut zero);
        expect_corrupt(validate(&zero, 1 << 20, false), "not positive");
    }

    #[test]
    fn offset_deltas_must_count_up() {
        let mut records: Vec<TestRecord> = (0..3)
            .map(|i| TestRecord::new(Some(b"k"), Some(b"v"), i))
            .collect();
        records[1].offset_delta = Some(5);
        let batch = encode_batch(&records, Compression::None, 0, 0);
        expect_corrupt(validate(&batch, 1 << 20, false), "offsetDelta 5");
    }

    #[test]
    fn record_lengths_are_bounds_checked() {
        let records = vec![TestRecord::new(Some(b"key"), Some(b"value"), 0)];
        let good = encode_batch(&records, Compression::None, 0, 0);
        // The record starts at 61 with its length varint; make it claim more bytes.
        let mut longer = good.clone();
        longer[61] += 2;
        refresh_crc(&mut longer);
        assert!(matches!(
            validate(&longer, 1 << 20, false),
            Err(LogError::CorruptMessage(_))
        ));
        let mut shorter = good.clone();
        shorter[61] -= 2;
        refresh_crc(&mut shorter);
        assert!(matches!(
            validate(&shorter, 1 << 20, false),
            Err(LogError::CorruptMessage(_))
        ));
        // Key length (after length 1 byte, attributes 1, timestampDelta 1, offsetDelta 1)
        // set to -2 (zig-zag 3).
        let mut key = good;
        key[65] = 3;
        refresh_crc(&mut key);
        expect_corrupt(validate(&key, 1 << 20, false), "key length -2");
    }

    #[test]
    fn keys_required_on_compacted_topics_except_control_batches() {
        let records = vec![
            TestRecord::new(None, Some(b"v"), 0),
            TestRecord::new(Some(b"k"), Some(b"v"), 1),
            TestRecord::new(None, Some(b"v"), 2),
        ];
        let batch = encode_batch(&records, Compression::Lz4, 0, 0);
        assert!(validate(&batch, 1 << 20, false).is_ok());
        // Every keyless record is named, for KIP-467 record errors.
        assert!(matches!(
            validate(&batch, 1 << 20, true),
            Err(LogError::KeylessRecords { record_indexes }) if record_indexes == vec![0, 2]
        ));
        let control = encode_batch(&records, Compression::None, 0, 0x20);
        assert!(validate(&control, 1 << 20, true).is_ok());
    }

    #[test]
    fn record_check_sees_every_record_once_per_codec_and_names_refusals() {
        let records = vec![
            TestRecord::new(Some(b"k0"), Some(b"good"), 0),
            TestRecord::new(Some(b"k1"), Some(b"bad"), 1),
            TestRecord::new(None, None, 2),
            TestRecord::new(Some(b"k3"), Some(b"bad"), 3),
        ];
        for codec in all_codecs() {
            let batch = encode_batch(&records, codec, 0, 0);
            let mut seen = Vec::new();
            let mut check = |key: Option<&[u8]>, value: Option<&[u8]>| {
                seen.push((key.map(<[u8]>::to_vec), value.map(<[u8]>::to_vec)));
                match value {
                    Some(b"bad") => Err("bad value".to_owned()),
                    _ => Ok(()),
                }
            };
            let result = validate_batches(&batch, 1 << 20, false, Some(&mut check));
            match result {
                Err(LogError::RefusedRecords {
                    reason,
                    record_indexes,
                }) => {
                    assert_eq!(record_indexes, vec![1, 3], "{codec:?}");
                    assert_eq!(reason, "record 1: bad value (and 1 more records)");
                }
                other => panic!("{codec:?}: {other:?}"),
            }
            assert_eq!(seen.len(), 4, "{codec:?}");
            assert_eq!(seen[2], (None, None));
            assert_eq!(seen[3].1.as_deref(), Some(&b"bad"[..]));
        }
        // Structural errors come first, as without a check; control batches are not
        // the caller's to check.
        let mut batch = encode_batch(&records, Compression::None, 0, 0);
        batch[70] ^= 1;
        let mut refuse_all = |_: Option<&[u8]>, _: Option<&[u8]>| Err("no".to_owned());
        assert!(matches!(
            validate_batches(&batch, 1 << 20, false, Some(&mut refuse_all)),
            Err(LogError::CorruptMessage(m)) if m.contains("CRC")
        ));
        let control = encode_batch(&records, Compression::None, 0, 0x20);
        assert!(validate_batches(&control, 1 << 20, false, Some(&mut refuse_all)).is_ok());
        // Keyless records on a compacted topic are reported before refused ones.
        let batch = encode_batch(&records, Compression::None, 0, 0);
        assert!(matches!(
            validate_batches(&batch, 1 << 20, true, Some(&mut refuse_all)),
            Err(LogError::KeylessRecords { record_indexes }) if record_indexes == vec![2]
        ));
    }

    #[test]
    fn compression_bomb_is_an_error() {
        let zeros = std::io::repeat(0).take(DECOMPRESSED_BATCH_BYTES_MAX as u64 + 4096);
        let compressed = zstd::encode_all(zeros, 3).unwrap();
        let records = vec![TestRecord::new(None, Some(b"v"), 0)];
        let batch =
            crate::test_support::wrap_records(&compressed, &records, Compression::Zstd, 0, 0);
        expect_corrupt(validate(&batch, 1 << 20, false), "decompress to more than");

        let mut snappy = Vec::new();
        // A raw snappy stream that only declares a huge length (varint of 1 GiB).
        snappy.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x04]);
        let batch = crate::test_support::wrap_records(&snappy, &records, Compression::Snappy, 0, 0);
        expect_corrupt(validate(&batch, 1 << 20, false), "decompress to more than");
    }

    #[test]
    fn log_append_time_patch_keeps_crc_valid() {
        let mut batch = simple_batch(2, 100);
        set_base_offset(&mut batch, 42);
        set_max_timestamp(&mut batch, 9_999, true);
        let header = parse_header(&batch).unwrap();
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.max_timestamp, 9_999);
        assert!(header.is_log_append_time());
        let checked = validate_batches(&batch, 1 << 20, false, None).unwrap();
        assert_eq!(checked[0].max_record_timestamp, 9_999);
    }

    #[test]
    fn varints_match_kafka() {
        let mut c = Cursor::new(&[0x01]);
        assert_eq!(c.varint().unwrap(), -1);
        let mut c = Cursor::new(&[0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(c.varint().unwrap(), i32::MAX);
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(c.varint().is_err());
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(c.varlong().unwrap(), i64::MIN);
        let mut c = Cursor::new(&[0x80]);
        assert!(c.varint().is_err());
    }

    fn valid_payload() -> impl Strategy<Value = Vec<u8>> {
        (0usize..5, 1usize..6).prop_map(|(codec, n)| {
            let records: Vec<TestRecord> = (0..n)
                .map(|i| TestRecord::new(Some(b"key"), Some(&[i as u8; 20]), i as i64))
                .collect();
            encode_batch(&records, all_codecs()[codec], 1_000, 0)
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_header(&bytes);
            let _ = validate(&bytes, 1 << 20, true);
        }

        #[test]
        fn mutated_batches_never_panic(
            batch in valid_payload(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            fix_crc in any::<bool>(),
            cut in any::<prop::sample::Index>(),
            do_cut in any::<bool>(),
        ) {
            let mut mutated = batch.clone();
            for (index, value) in edits {
                let i = index.index(mutated.len());
                mutated[i] = value;
            }
            if fix_crc && mutated.len() > CRC_START {
                refresh_crc(&mut mutated);
            }
            if do_cut {
                mutated.truncate(cut.index(mutated.len() + 1));
            }
            let _ = parse_header(&mutated);
            let _ = validate(&mutated, 1 << 20, true);
        }

        #[test]
        fn valid_batches_validate(batch in valid_payload()) {
            prop_assert!(validate(&batch, 1 << 20, true).is_ok());
        }
    }
}
