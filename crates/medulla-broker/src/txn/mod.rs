//! Transactions: the transaction coordinator of every transactional id on this node, and
//! producer ids for idempotent and transactional producers.
//!
//! - `state.rs`: one transactional id's metadata and Kafka's state machine (InitProducerId
//!   with KIP-360 epochs and fencing, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
//!   timeouts, expiry, produce verification), pure and clock-injected.
//! - `record.rs`: the `__transaction_state` key and value in Kafka's format.
//! - `store.rs`: the transaction log itself, fsynced before any answer, loaded on start.
//! - `producer_ids.rs`: producer ids, reserved in durable blocks and never reused.
//! - `coordinator.rs`: the ids, their locks, persistence, markers, recovery, timers.
//!
//! Transaction protocol version 2 (KIP-890 part 2: EndTxn v5, AddPartitionsToTxn v5,
//! the implicit add of Produce v12, an epoch bump per transaction) is deliberately not
//! served, and the `transaction.version` feature is not advertised: every client Medulla
//! is tested with (librdkafka 2.12, confluent-kafka-python, kafkajs, kafka-python) speaks
//! version 0/1, which Kafka 4 still serves to them. KIP-890 part 1 (the broker verifies
//! that a transactional batch's partition is in the transaction) is served.

pub mod coordinator;
pub mod producer_ids;
pub mod record;
pub mod state;
pub mod store;

/// The transaction coordinator's settings (Kafka's `transaction.*`, `transactional.id.*`
/// and `producer.id.*` broker keys).
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`: the largest `transaction.timeout.ms` a producer may
    /// ask for.
    pub max_timeout_ms: i32,
    /// `transaction.state.log.num.partitions`.
    pub log_partitions: u32,
    /// `transaction.state.log.segment.bytes`.
    pub log_segment_bytes: u64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_interval_ms: u64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: u64,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
    /// `producer.id.expiration.ms`.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`.
    pub producer_id_expiration_check_interval_ms: u64,
    /// `transaction.partition.verification.enable`.
    pub partition_verification: bool,
}

impl Default for TxnConfig {
    fn default() -> TxnConfig {
        TxnConfig {
            max_timeout_ms: 900_000,
            log_partitions: 50,
            log_segment_bytes: 104_857_600,
            abort_timed_out_interval_ms: 10_000,
            remove_expired_interval_ms: 3_600_000,
            id_expiration_ms: 604_800_000,
            producer_id_expiration_ms: 86_400_000,
            producer_id_expiration_check_interval_ms: 600_000,
            partition_verification: true,
        }
    }
}
