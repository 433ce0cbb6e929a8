//! One partition's log: its segments, its offsets, group commit and reads.

use bytes::Bytes;

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record.
    pub base_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The broker time stamped on the batches for `LogAppendTime` topics, else -1.
    pub log_append_time_ms: i64,
    /// The partition's log start offset after the append.
    pub log_start_offset: i64,
}

/// Result of a lookup by timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampLookup {
    /// Offset of the record found.
    pub offset: i64,
    /// Its timestamp.
    pub timestamp: i64,
}

/// One partition. All methods take `&self`; the log serialises appends internally.
pub struct PartitionLog {
    _private: (),
}

impl PartitionLog {
    /// Topic name.
    pub fn topic(&self) -> &str {
        todo!()
    }

    /// Partition index.
    pub fn partition(&self) -> i32 {
        todo!()
    }

    /// Validates `records` (one or more RecordBatch v2 as produced) completely, then
    /// assigns offsets and appends them; all or nothing. Does not wait for fsync.
    pub fn append(&self, records: &[u8]) -> crate::Result<AppendInfo> {
        let _ = records;
        todo!()
    }

    /// Blocks until every offset below `end_offset` is on disk when the policy is
    /// `Always` (one fsync serves every waiter: group commit); returns at once otherwise.
    pub fn wait_durable(&self, end_offset: i64) -> crate::Result<()> {
        let _ = end_offset;
        todo!()
    }

    /// Whole batches starting with the one that contains `offset`, up to `max_bytes`
    /// (but at least one whole batch when `min_one_batch`), never past the high
    /// watermark. Errors with `OffsetOutOfRange` outside `[log_start, log_end]`;
    /// `offset == log_end` gives empty bytes.
    pub fn read(&self, offset: i64, max_bytes: usize, min_one_batch: bool) -> crate::Result<Bytes> {
        let _ = (offset, max_bytes, min_one_batch);
        todo!()
    }

    /// The next offset to be written (equals the high watermark on this single-replica log).
    pub fn log_end_offset(&self) -> i64 {
        todo!()
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        todo!()
    }

    /// First record with a timestamp `>= timestamp`, or `None` if there is none.
    pub fn lookup_timestamp(&self, timestamp: i64) -> crate::Result<Option<TimestampLookup>> {
        let _ = timestamp;
        todo!()
    }

    /// The record with the largest timestamp (the earliest such offset), or `None` if empty.
    pub fn max_timestamp(&self) -> crate::Result<Option<TimestampLookup>> {
        todo!()
    }

    /// Advances the log start offset to `offset` (DeleteRecords); `-1` means the high
    /// watermark. Segments wholly below it are deleted. Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> crate::Result<i64> {
        let _ = offset;
        todo!()
    }

    /// A receiver that changes whenever the log end offset moves (for long-poll fetches).
    pub fn watch_end(&self) -> tokio::sync::watch::Receiver<i64> {
        todo!()
    }

    /// Bytes on disk in this partition.
    pub fn size_bytes(&self) -> u64 {
        todo!()
    }
}
