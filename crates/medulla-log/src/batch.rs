//! RecordBatch v2 (magic 2) header access and validation, done on the produced bytes
//! themselves: nothing here re-encodes a batch.
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8, partitionLeaderEpoch i32
//! @12, magic i8 @16, crc u32 @17 (CRC-32C of bytes 21..end), attributes i16 @21,
//! lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35, producerId i64
//! @43, producerEpoch i16 @51, baseSequence i32 @53, recordsCount i32 @57, records @61.

/// Size of the fixed RecordBatch v2 header.
pub const BATCH_HEADER_BYTES: usize = 61;

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
        self.batch_length as usize + 12
    }
    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    /// The compression codec, or an error for the reserved values.
    pub fn compression(&self) -> crate::Result<Compression> {
        todo!()
    }
    /// True for a control batch (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    /// True for a transactional batch.
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
}

/// Parses the header at the start of `bytes` without checking the CRC.
/// Errors with [`crate::LogError::CorruptMessage`] if fewer than
/// [`BATCH_HEADER_BYTES`] are present or the length field is impossible.
pub fn parse_header(bytes: &[u8]) -> crate::Result<BatchHeader> {
    let _ = bytes;
    todo!()
}

/// Summary of a validated produce payload (one or more batches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedBatches {
    /// Each batch's header, in order.
    pub headers: Vec<BatchHeader>,
    /// Total records across all batches.
    pub records_count: i64,
}

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
    let _ = (bytes, max_message_bytes, require_keys);
    todo!()
}
