//! Offsets committed inside transactions (TxnOffsetCommit): held per producer until the
//! transaction coordinator ends the transaction, then applied (commit) or dropped
//! (abort).

use super::coordinator::Coordinator;

impl Coordinator {
    /// Ends producer `producer_id`'s transaction for the offsets it committed to
    /// `groups`: writes the transaction marker to each group's `__consumer_offsets`
    /// partition (fsynced) and applies (`commit`) or drops the pending offsets. Called by
    /// the transaction coordinator after the transaction's outcome is persisted; safe to
    /// call again for the same outcome (recovery after a restart). Returns the Kafka
    /// error code of the first failure, or 0.
    pub async fn complete_transaction(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        groups: &[String],
        commit: bool,
    ) -> i16 {
        // Skeleton: TxnOffsetCommit does not store pending offsets yet.
        let _ = (producer_id, producer_epoch, groups, commit);
        0
    }
}
