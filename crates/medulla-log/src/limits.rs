//! Every limit of the storage engine, in one place.

/// Largest partition count one topic may have.
pub const PARTITIONS_PER_TOPIC_MAX: u32 = 10_000;
/// Longest topic name (Kafka's own limit).
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
