//! Offsets committed inside transactions (TxnOffsetCommit): validated as Kafka's
//! `validateTransactionalOffsetCommit` does, written to `__consumer_offsets` as one
//! transactional batch of the producer, held pending until the transaction coordinator
//! ends the transaction, then applied (commit) or dropped (abort).
//!
//! The transaction coordinator calls [`Coordinator::complete_transaction`] once the
//! outcome is persisted in `__transaction_state`; it may call it again for the same
//! outcome (recovery after a restart), which writes another marker and changes nothing.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;

use super::coordinator::Coordinator;
use super::store::{Committed, TxnCommitError};
use crate::error::kafka_code;

/// The code Kafka's group coordinator answers a failed coordinator write with
/// (`GroupCoordinatorService.handleOperationException`): storage trouble sends the
/// client to find the coordinator again, an oversized write is the server's fault.
fn write_error_code(e: &medulla_log::LogError) -> i16 {
    let c = kafka_code(e);
    let r = match ResponseError::try_from_code(c) {
        Some(
            ResponseError::UnknownTopicOrPartition
            | ResponseError::NotEnoughReplicas
            | ResponseError::RequestTimedOut,
        ) => ResponseError::CoordinatorNotAvailable,
        Some(ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError) => {
            ResponseError::NotCoordinator
        }
        Some(
            ResponseError::MessageTooLarge
            | ResponseError::RecordListTooLarge
            | ResponseError::InvalidFetchSize,
        ) => ResponseError::UnknownServerError,
        _ => return c,
    };
    r.code()
}

impl Coordinator {
    /// TxnOffsetCommit for the partitions that passed the handler's checks: validates
    /// the group and member, then stores `commits` durably as pending offsets of
    /// producer (id, epoch). `Err` is the code for every partition.
    pub async fn commit_transactional(
        &self,
        group_id: &str,
        producer: (i64, i16),
        member: (&str, Option<&str>, i32),
        commits: Vec<(String, i32, Committed)>,
    ) -> Result<(), i16> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId.code());
        }
        if producer.0 < 0 {
            // No marker can ever end a transaction of no producer: its offsets would stay
            // pending for good. Kafka's transaction verification refuses it so.
            return Err(ResponseError::InvalidProducerIdMapping.code());
        }
        let (member_id, instance_id, generation) = member;
        if let Some(cg) = self.active_consumer_group(group_id).await {
            // Before v3 the request has no member fields: nothing to check then.
            let anonymous = generation < 0 && member_id.is_empty() && instance_id.is_none();
            if !anonymous {
                cg.lock()
                    .await
                    .validate_commit(member_id, generation)
                    .map_err(|c| {
                        // Kafka answers a stale member epoch with ILLEGAL_GENERATION here,
                        // which transactional producers know.
                        if c == ResponseError::StaleMemberEpoch.code() {
                            ResponseError::IllegalGeneration.code()
                        } else {
                            c
                        }
                    })?;
            }
            return self.store_pending(group_id, producer, commits).await;
        }
        let shared = match self.group(group_id) {
            Some(g) => g,
            // As for OffsetCommit: without a generation, a "simple" group is created.
            None if generation < 0 => self.group_or_new(group_id),
            None => return Err(ResponseError::IllegalGeneration.code()),
        };
        let g = shared.lock().await;
        g.validate_txn_commit(member_id, instance_id, generation)?;
        self.store_pending(group_id, producer, commits).await
    }

    async fn store_pending(
        &self,
        group_id: &str,
        producer: (i64, i16),
        commits: Vec<(String, i32, Committed)>,
    ) -> Result<(), i16> {
        if commits.is_empty() {
            return Ok(());
        }
        let store = self.store().clone();
        let id = group_id.to_owned();
        let result =
            tokio::task::spawn_blocking(move || store.commit_transactional(&id, producer, commits))
                .await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(TxnCommitError::TooManyPending { pending, limit })) => {
                tracing::warn!(
                    group = group_id,
                    producer_id = producer.0,
                    pending,
                    limit,
                    "transactional offset commit refused: too many pending offsets"
                );
                Err(ResponseError::PolicyViolation.code())
            }
            Ok(Err(TxnCommitError::Log(e))) => {
                if !matches!(e, medulla_log::LogError::InvalidProducerEpoch(_)) {
                    tracing::error!(group = group_id, error = %e, "transactional offset commit failed");
                }
                Err(write_error_code(&e))
            }
            Err(e) => {
                tracing::error!(group = group_id, error = %e, "transactional offset commit task failed");
                Err(ResponseError::UnknownServerError.code())
            }
        }
    }

    /// Ends producer `producer_id`'s transaction for the offsets it committed to
    /// `groups`: writes the transaction marker to each group's `__consumer_offsets`
    /// partition (once per partition, fsynced) and applies (`commit`) or drops the
    /// pending offsets. Called by the transaction coordinator after the transaction's
    /// outcome is persisted; safe to call again for the same outcome (recovery after a
    /// restart). Returns the Kafka error code of the first failure, or 0.
    ///
    /// A marker is written to every partition named, even one where the producer has
    /// nothing pending, as Kafka's transaction coordinator writes one to every partition
    /// of the transaction: it closes whatever the producer has open there and records
    /// its epoch, fencing older ones. A repeated call therefore writes another marker,
    /// which changes nothing but the log's length. A failure on one partition does not
    /// stop the others; the caller retries the whole call.
    pub async fn complete_transaction(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        groups: &[String],
        commit: bool,
    ) -> i16 {
        let partitions: BTreeSet<i32> = groups
            .iter()
            .map(|g| self.store().partition_for(g))
            .collect();
        let mut first_error = 0;
        for partition in partitions {
            let store = self.store().clone();
            let ended = crate::handlers::blocking(move || {
                store.end_transaction(partition, producer_id, producer_epoch, commit)
            })
            .await;
            match ended {
                Ok(offsets) => tracing::debug!(
                    producer_id,
                    partition,
                    commit,
                    offsets,
                    "ended a transaction's offsets"
                ),
                Err(e) => {
                    tracing::error!(producer_id, partition, commit, error = %e, "cannot write a transaction marker");
                    if first_error == 0 {
                        first_error = write_error_code(&e);
                    }
                }
            }
        }
        first_error
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use medulla_log::{FsyncPolicy, LogManager, LogManagerOptions, SystemClock};

    use super::*;
    use crate::groups::classic::GroupConfig;
    use crate::groups::consumer::ConsumerConfig;
    use crate::groups::store::GroupStore;

    fn open(dir: &std::path::Path) -> (Arc<LogManager>, Coordinator) {
        let log = LogManager::open(LogManagerOptions {
            data_dir: dir.to_owned(),
            fsync: FsyncPolicy::Never,
            broker_defaults: Default::default(),
            clock: Arc::new(SystemClock),
            recovery_threads: medulla_log::DEFAULT_RECOVERY_THREADS,
        })
        .unwrap();
        if log.topic("t").is_none() {
            log.create_topic("t", 4, &Default::default(), false)
                .unwrap();
        }
        let store = Arc::new(GroupStore::open(log.clone(), 3, 1 << 20).unwrap());
        let c = Coordinator::open(store, GroupConfig::default(), ConsumerConfig::default());
        (log, c)
    }

    fn commits(offset: i64, partitions: std::ops::Range<i32>) -> Vec<(String, i32, Committed)> {
        partitions
            .map(|p| {
                let c = Committed {
                    offset,
                    leader_epoch: -1,
                    metadata: format!("m{offset}"),
                    commit_timestamp_ms: 1,
                };
                ("t".to_owned(), p, c)
            })
            .collect()
    }

    fn offset(c: &Coordinator, group: &str, p: i32) -> Option<i64> {
        c.store().get(group, "t", p).map(|c| c.offset)
    }

    const ANONYMOUS: (&str, Option<&str>, i32) = ("", None, -1);

    #[tokio::test]
    async fn commit_abort_and_repeated_completion() {
        let dir = tempfile::tempdir().unwrap();
        let (_log, c) = open(dir.path());
        c.commit("g", ANONYMOUS, 9, commits(1, 0..2)).await.unwrap();
        c.commit_transactional("g", (42, 0), ANONYMOUS, commits(5, 0..2))
            .await
            .unwrap();
        assert_eq!(offset(&c, "g", 0), Some(1), "pending offsets are invisible");
        assert!(c.store().has_pending("g", "t", 0));

        assert_eq!(c.complete_transaction(42, 0, &["g".into()], true).await, 0);
        assert_eq!((offset(&c, "g", 0), offset(&c, "g", 1)), (Some(5), Some(5)));
        assert!(!c.store().has_pending("g", "t", 0));
        // Recovery may complete it again: nothing changes.
        assert_eq!(c.complete_transaction(42, 0, &["g".into()], true).await, 0);
        assert_eq!(offset(&c, "g", 0), Some(5));

        c.commit_transactional("g", (42, 0), ANONYMOUS, commits(9, 0..1))
            .await
            .unwrap();
        assert_eq!(c.complete_transaction(42, 0, &["g".into()], false).await, 0);
        assert_eq!(offset(&c, "g", 0), Some(5), "aborted offsets are dropped");
        assert_eq!(c.complete_transaction(42, 0, &["g".into()], false).await, 0);
        assert_eq!(offset(&c, "g", 0), Some(5));
        // A group that never committed anything: a marker, nothing else.
        assert_eq!(c.complete_transaction(42, 0, &["h".into()], true).await, 0);
        assert_eq!(offset(&c, "h", 0), None);
    }

    #[tokio::test]
    async fn a_fenced_epoch_is_refused_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (_log, c) = open(dir.path());
        c.commit_transactional("g", (42, 3), ANONYMOUS, commits(5, 0..1))
            .await
            .unwrap();
        // The transaction coordinator fenced epoch 3 by aborting with epoch 4.
        assert_eq!(c.complete_transaction(42, 4, &["g".into()], false).await, 0);
        assert_eq!(
            c.commit_transactional("g", (42, 3), ANONYMOUS, commits(6, 0..1))
                .await,
            Err(ResponseError::InvalidProducerEpoch.code())
        );
        assert!(!c.store().has_pending("g", "t", 0));
        assert_eq!(offset(&c, "g", 0), None);
    }

    #[tokio::test]
    async fn pending_offsets_survive_a_restart_and_complete_after_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, c) = open(dir.path());
            c.commit_transactional("g", (42, 0), ANONYMOUS, commits(5, 0..2))
                .await
                .unwrap();
            drop(c);
            log.close().unwrap();
        }
        let (_log, c) = open(dir.path());
        assert!(c.store().has_pending("g", "t", 1));
        assert_eq!(offset(&c, "g", 1), None);
        // The group exists (a simple group), as Kafka creates one on replay.
        assert_eq!(c.list().await.len(), 1);
        assert_eq!(c.complete_transaction(42, 0, &["g".into()], true).await, 0);
        assert_eq!(offset(&c, "g", 1), Some(5));
    }

    #[tokio::test]
    async fn member_checks_follow_kafka() {
        let dir = tempfile::tempdir().unwrap();
        let (_log, c) = open(dir.path());
        // A generation for a group that does not exist.
        assert_eq!(
            c.commit_transactional("nobody", (1, 0), ("m", None, 3), commits(1, 0..1))
                .await,
            Err(ResponseError::IllegalGeneration.code())
        );
        assert_eq!(
            c.commit_transactional("", (1, 0), ANONYMOUS, commits(1, 0..1))
                .await,
            Err(ResponseError::InvalidGroupId.code())
        );
        assert_eq!(
            c.commit_transactional("g", (-1, -1), ANONYMOUS, commits(1, 0..1))
                .await,
            Err(ResponseError::InvalidProducerIdMapping.code())
        );
        // A member id the (simple, empty) group does not know.
        c.commit("g", ANONYMOUS, 9, commits(1, 0..1)).await.unwrap();
        assert_eq!(
            c.commit_transactional("g", (1, 0), ("m", None, 0), commits(1, 0..1))
                .await,
            Err(ResponseError::UnknownMemberId.code())
        );
    }

    #[tokio::test]
    async fn the_pending_offsets_of_one_transaction_and_group_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let (_log, c) = open(dir.path());
        let max = crate::limits::TXN_PENDING_OFFSETS_PER_GROUP_MAX as i32;
        c.commit_transactional("g", (42, 0), ANONYMOUS, commits(1, 0..max))
            .await
            .unwrap();
        // The same partitions again are no growth; one more is.
        c.commit_transactional("g", (42, 0), ANONYMOUS, commits(2, 0..max))
            .await
            .unwrap();
        assert_eq!(
            c.commit_transactional("g", (42, 0), ANONYMOUS, commits(3, max..max + 1))
                .await,
            Err(ResponseError::PolicyViolation.code())
        );
        // Another producer has its own allowance.
        c.commit_transactional("g", (43, 0), ANONYMOUS, commits(3, max..max + 1))
            .await
            .unwrap();
        assert_eq!(c.complete_transaction(42, 0, &["g".into()], true).await, 0);
        assert_eq!(offset(&c, "g", max - 1), Some(2));
    }
}
