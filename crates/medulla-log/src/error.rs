//! The one error type at this crate's boundary; `medulla-broker` maps each variant to
//! a Kafka error code in one place.

use std::path::PathBuf;

/// Everything the log can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A batch failed validation (CRC, lengths, magic, record count): Kafka's CORRUPT_MESSAGE.
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    /// A batch is larger than `max.message.bytes`: Kafka's MESSAGE_TOO_LARGE.
    #[error("record batch of {size_bytes} bytes exceeds max.message.bytes {max_bytes}")]
    MessageTooLarge {
        /// The batch's size.
        size_bytes: usize,
        /// The topic's limit.
        max_bytes: usize,
    },
    /// A record is well-formed but not acceptable here (e.g. keyless on a compacted topic):
    /// Kafka's INVALID_RECORD.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// Records without a key sent to a compacted topic: Kafka's INVALID_RECORD, with the
    /// indexes of the offending records within their batch (KIP-467 record errors, so a
    /// client fails only those and retries the rest).
    #[error(
        "a compacted topic cannot accept records without a key (records {record_indexes:?} of the batch)"
    )]
    KeylessRecords {
        /// Index of each keyless record within its batch (at most
        /// [`crate::limits::RECORD_ERRORS_MAX`]).
        record_indexes: Vec<i32>,
    },
    /// Records a caller's [`crate::batch::RecordCheck`] refused: Kafka's INVALID_RECORD,
    /// with the indexes of the refused records within their batch (KIP-467), as
    /// [`LogError::KeylessRecords`].
    #[error("invalid record: {reason}")]
    RefusedRecords {
        /// The first refused record and why (`record <index>: <reason>`), and how many
        /// more there were.
        reason: String,
        /// Index of each refused record within its batch (at most
        /// [`crate::limits::RECORD_ERRORS_MAX`]).
        record_indexes: Vec<i32>,
    },
    /// A fetch or DeleteRecords offset outside `[log_start_offset, log_end_offset]`.
    #[error("offset {requested} out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// What was asked for.
        requested: i64,
        /// The first offset still in the log.
        log_start_offset: i64,
        /// The next offset to be written.
        log_end_offset: i64,
    },
    /// No such topic.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// The topic exists but not this partition.
    #[error("unknown partition {topic}-{partition}")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// CreateTopics on an existing name.
    #[error("topic {0} already exists")]
    TopicAlreadyExists(String),
    /// A topic name Kafka would refuse (empty, `.`/`..`, too long, bad characters).
    #[error("invalid topic name: {0}")]
    InvalidTopic(String),
    /// A partition count that is not positive, too large, or (CreatePartitions) not an increase.
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    /// An unknown topic config name or an invalid value: Kafka's INVALID_CONFIG.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// Another process holds the data directory.
    #[error("data directory {0} is already in use by another Medulla process")]
    DataDirLocked(PathBuf),
    /// The cleaner reached one of its limits (see [`crate::limits`]); it cleans no
    /// further than the limit allows and reports this instead of failing an allocation.
    #[error("log cleaner limit: {0}")]
    CleanerLimit(String),
    /// A producer's sequence number is not the next one expected: Kafka's
    /// OUT_OF_ORDER_SEQUENCE_NUMBER.
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    /// A producer epoch older than the partition has seen (a zombie): Kafka's
    /// INVALID_PRODUCER_EPOCH.
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    /// A write that contradicts the producer's transaction state: Kafka's INVALID_TXN_STATE.
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    /// A file-system failure.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Opening (recovering) or closing one partition failed: which one, and why. Only
    /// [`crate::LogManager::open`] and [`crate::LogManager::close`] return it.
    #[error("partition {topic}-{partition}: {source}")]
    Partition {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// What went wrong.
        source: Box<LogError>,
    },
}

/// Result with [`LogError`].
pub type Result<T, E = LogError> = std::result::Result<T, E>;
