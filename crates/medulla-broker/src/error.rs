//! Mapping storage-engine errors to Kafka error codes, in one place.

use kafka_protocol::ResponseError;
use medulla_log::LogError;

/// The Kafka error code a real broker returns for `e`.
pub fn kafka_code(e: &LogError) -> i16 {
    let r = match e {
        LogError::CorruptMessage(_) => ResponseError::CorruptMessage,
        LogError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::InvalidRecord(_)
        | LogError::KeylessRecords { .. }
        | LogError::RefusedRecords { .. } => ResponseError::InvalidRecord,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::UnknownTopic(_) | LogError::UnknownPartition { .. } => {
            ResponseError::UnknownTopicOrPartition
        }
        LogError::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
        LogError::InvalidTopic(_) => ResponseError::InvalidTopicException,
        LogError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        LogError::InvalidConfig(_) => ResponseError::InvalidConfig,
        LogError::OutOfOrderSequence(_) => ResponseError::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch(_) => ResponseError::InvalidProducerEpoch,
        LogError::InvalidTxnState(_) => ResponseError::InvalidTxnState,
        LogError::DataDirLocked(_)
        | LogError::Io(_)
        | LogError::CleanerLimit(_)
        | LogError::Partition { .. } => ResponseError::KafkaStorageError,
    };
    r.code()
}

/// The message to send beside the code (storage failures are logged, not echoed).
pub fn kafka_message(e: &LogError) -> String {
    match e {
        LogError::Io(_) | LogError::DataDirLocked(_) | LogError::Partition { .. } => {
            "storage error on the broker".to_owned()
        }
        other => other.to_string(),
    }
}
