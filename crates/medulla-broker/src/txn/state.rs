//! One transactional id's metadata and its state machine, as Apache Kafka's
//! `TransactionMetadata` and `TransactionCoordinator` rule it: pure functions from the
//! current metadata, a request and the time to the next metadata (to be persisted) or a
//! Kafka error code. No I/O, no locks, no clock of its own; `coordinator.rs` persists the
//! result and only then makes it current.
//!
//! States: `Empty` → (AddPartitionsToTxn / AddOffsetsToTxn) → `Ongoing` → (EndTxn)
//! → `PrepareCommit` / `PrepareAbort` → (markers written) → `CompleteCommit` /
//! `CompleteAbort` → (InitProducerId) → `Empty`, or → (AddPartitionsToTxn) → `Ongoing`
//! again. `Dead` is an expired id on its way out. Kafka's `PrepareEpochFence` is a
//! pending state of its own (an in-memory mark while the fencing abort is written); here
//! the coordinator holds the id's lock for the whole fencing abort, so the fence goes from
//! `Ongoing` straight to `PrepareAbort` with the bumped epoch and the state is never
//! entered. Its name and id are kept for ListTransactions filters and the record codec.

use std::collections::BTreeSet;

use kafka_protocol::ResponseError;

use crate::limits;

/// A transaction's state, with Kafka's names and record ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxnState {
    /// No transaction open (a fresh epoch).
    Empty,
    /// Partitions or groups were added; the transaction is open.
    Ongoing,
    /// Commit decided; markers being written.
    PrepareCommit,
    /// Abort decided; markers being written.
    PrepareAbort,
    /// Committed; every marker written.
    CompleteCommit,
    /// Aborted; every marker written.
    CompleteAbort,
    /// Expired, being removed.
    Dead,
    /// Kafka's pending fencing state (never entered here; see the module doc).
    PrepareEpochFence,
}

impl TxnState {
    /// Every state, in id order.
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// The id Kafka's transaction log stores (`TransactionStatus`).
    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    /// The state of a stored id.
    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Kafka's name (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state named `name`.
    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// `PrepareCommit` or `PrepareAbort`: the outcome is decided, markers are pending.
    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }

    /// States in which an idle transactional id may expire.
    pub fn expiration_allowed(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }
}

/// No producer id (Kafka's `RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;

/// No producer epoch (Kafka's `RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// Kafka's `isEpochExhausted`: the last two epochs are kept for fencing, so a producer id
/// whose epoch reached `i16::MAX - 1` is replaced by a new one.
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// One partition of a transaction.
pub type TopicPartition = (String, i32);

/// The metadata of one transactional id.
///
/// Invariants: `partitions` and `groups` are empty unless the state is `Ongoing` or a
/// prepare state; `start_ms` is -1 in `Empty`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The producer id in use.
    pub producer_id: i64,
    /// The producer id before the last InitProducerId (Kafka's `lastProducerId`): lets the
    /// retry of an InitProducerId that rotated the id through. Not persisted (Kafka's
    /// version-0 record does not carry it either).
    pub last_producer_id: i64,
    /// The current epoch (-1 before the first InitProducerId completed).
    pub producer_epoch: i16,
    /// The epoch before the last InitProducerId bump, for KIP-360 retries; -1 when a bump
    /// fenced a producer. Not persisted.
    pub last_producer_epoch: i16,
    /// The producer's `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// The state.
    pub state: TxnState,
    /// Partitions in the transaction, including the `__consumer_offsets` partitions of
    /// its groups (as Kafka keeps them).
    pub partitions: BTreeSet<TopicPartition>,
    /// Groups whose offsets the transaction commits (AddOffsetsToTxn).
    pub groups: BTreeSet<String>,
    /// When the transaction started (first partition added), -1 if none.
    pub start_ms: i64,
    /// When the metadata last changed.
    pub last_update_ms: i64,
}

/// A Kafka error code.
pub type Code = i16;

fn code(e: ResponseError) -> Code {
    e.code()
}

/// What an InitProducerId for a transactional id leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitPlan {
    /// Persist this (state `Empty`, the new epoch) and answer with its id and epoch.
    Ready(TxnMetadata),
    /// The epoch is exhausted: allocate a producer id and call [`TxnMetadata::rotate`].
    NeedsNewProducerId {
        /// Whether the new metadata keeps the old epoch as `last_producer_epoch` (the
        /// request named it, so a retry must be recognised).
        record_last_epoch: bool,
    },
    /// A transaction is open: persist this (`PrepareAbort` under the bumped epoch),
    /// complete the abort, and answer CONCURRENT_TRANSACTIONS so the producer retries.
    Fence(TxnMetadata),
}

/// What an EndTxn leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndPlan {
    /// Persist this prepare state, write the markers, then complete.
    Prepare(TxnMetadata),
    /// A retry of an outcome already complete: answer NONE, write nothing.
    AlreadyComplete,
}

/// What a produce of a transactional batch is refused with (Kafka's mapping of the
/// verification errors to Produce codes, KIP-890 part 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The Produce error code.
    pub code: Code,
    /// The message to send with it.
    pub message: &'static str,
}

impl TxnMetadata {
    /// A transactional id seen for the first time: no epoch yet.
    pub fn new(producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnMetadata {
        TxnMetadata {
            producer_id,
            last_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        }
    }

    /// The next metadata with `state` at `now_ms`, everything else as it is.
    fn next(&self, state: TxnState, now_ms: i64) -> TxnMetadata {
        TxnMetadata {
            state,
            last_update_ms: now_ms,
            ..self.clone()
        }
    }

    /// InitProducerId for this transactional id (`TransactionCoordinator.
    /// prepareInitProducerIdTransit`). `expected` is the KIP-360 producer id and epoch of
    /// a producer resuming after an error (InitProducerId v3+).
    pub fn init(
        &self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now_ms: i64,
    ) -> Result<InitPlan, Code> {
        // A producer that names an id and epoch is fenced unless the metadata is brand
        // new, the id is the current one (the epoch is checked below), or the id is the
        // one just rotated away from with an exhausted epoch (a retry of that rotation).
        let valid = |(pid, epoch): (i64, i16)| {
            self.producer_epoch == NO_PRODUCER_EPOCH
                || pid == self.producer_id
                || (pid == self.last_producer_id && epoch_exhausted(epoch))
        };
        if expected.is_some_and(|e| !valid(e)) {
            return Err(code(ResponseError::ProducerFenced));
        }
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                Err(code(ResponseError::ConcurrentTransactions))
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                if epoch_exhausted(self.producer_epoch)
                    && expected.is_none_or(|(_, epoch)| epoch == self.producer_epoch)
                {
                    return Ok(InitPlan::NeedsNewProducerId {
                        record_last_epoch: expected.is_some(),
                    });
                }
                self.bump_epoch(timeout_ms, expected.map(|(_, epoch)| epoch), now_ms)
                    .map(InitPlan::Ready)
            }
            TxnState::Ongoing => Ok(InitPlan::Fence(self.fence(now_ms))),
            // Never current for a caller holding the id's lock (Dead ids are dropped).
            TxnState::Dead | TxnState::PrepareEpochFence => {
                Err(code(ResponseError::ConcurrentTransactions))
            }
        }
    }

    /// Kafka's `prepareIncrementProducerEpoch`.
    fn bump_epoch(
        &self,
        timeout_ms: i32,
        expected_epoch: Option<i16>,
        now_ms: i64,
    ) -> Result<TxnMetadata, Code> {
        let fenced = code(ResponseError::ProducerFenced);
        let (epoch, last_epoch) = match expected_epoch {
            // No expected epoch: a new producer instance; it fences every older one.
            None if epoch_exhausted(self.producer_epoch) => return Err(fenced),
            None => (self.producer_epoch + 1, NO_PRODUCER_EPOCH),
            // The producer is the current one, resuming after an error: bump, and remember
            // the epoch it had so that a retry of this very request is recognised.
            Some(e)
                if (self.producer_epoch == NO_PRODUCER_EPOCH || e == self.producer_epoch)
                    && !epoch_exhausted(self.producer_epoch) =>
            {
                (self.producer_epoch + 1, self.producer_epoch)
            }
            // A retry of the bump that answered `producer_epoch`: the same answer again.
            Some(e) if e == self.last_producer_epoch && e != NO_PRODUCER_EPOCH => {
                (self.producer_epoch, self.last_producer_epoch)
            }
            Some(_) => return Err(fenced),
        };
        Ok(TxnMetadata {
            // Kafka records the id before every InitProducerId transition.
            last_producer_id: self.producer_id,
            producer_epoch: epoch,
            last_producer_epoch: last_epoch,
            timeout_ms,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            start_ms: -1,
            ..self.next(TxnState::Empty, now_ms)
        })
    }

    /// Kafka's `prepareProducerIdRotation`: a new producer id at epoch 0.
    pub fn rotate(
        &self,
        new_producer_id: i64,
        timeout_ms: i32,
        now_ms: i64,
        record_last_epoch: bool,
    ) -> TxnMetadata {
        TxnMetadata {
            producer_id: new_producer_id,
            last_producer_id: self.producer_id,
            producer_epoch: 0,
            last_producer_epoch: if record_last_epoch {
                self.producer_epoch
            } else {
                NO_PRODUCER_EPOCH
            },
            timeout_ms,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            start_ms: -1,
            ..self.next(TxnState::Empty, now_ms)
        }
    }

    /// The fencing abort of an open transaction (InitProducerId from a new instance, or
    /// the transaction timed out): `PrepareAbort` under the next epoch, so that markers and
    /// every later request of the old epoch are refused. The bumped epoch is never handed
    /// to a producer; the producer's retry of InitProducerId bumps once more.
    pub fn fence(&self, now_ms: i64) -> TxnMetadata {
        TxnMetadata {
            // Epochs reach at most i16::MAX - 1 through InitProducerId, so one more fits.
            producer_epoch: self.producer_epoch.saturating_add(1),
            last_producer_epoch: NO_PRODUCER_EPOCH,
            ..self.next(TxnState::PrepareAbort, now_ms)
        }
    }

    /// Checks the producer id and epoch of a client request (AddPartitionsToTxn,
    /// AddOffsetsToTxn, EndTxn).
    fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), Code> {
        if self.state == TxnState::Dead || producer_id != self.producer_id {
            return Err(code(ResponseError::InvalidProducerIdMapping));
        }
        if producer_epoch != self.producer_epoch {
            return Err(code(ResponseError::ProducerFenced));
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: `Ok(None)` when everything is in the open
    /// transaction already (nothing to persist), else the `Ongoing` metadata to persist.
    pub fn add(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        groups: &[String],
        now_ms: i64,
    ) -> Result<Option<TxnMetadata>, Code> {
        self.check_producer(producer_id, producer_epoch)?;
        if self.state.is_prepare() {
            return Err(code(ResponseError::ConcurrentTransactions));
        }
        if self.state == TxnState::Ongoing
            && partitions.iter().all(|p| self.partitions.contains(p))
            && groups.iter().all(|g| self.groups.contains(g))
        {
            return Ok(None);
        }
        let mut next = self.next(TxnState::Ongoing, now_ms);
        if self.state != TxnState::Ongoing {
            next.start_ms = now_ms;
        }
        next.partitions.extend(partitions.iter().cloned());
        next.groups.extend(groups.iter().cloned());
        if next.partitions.len() > limits::PARTITIONS_PER_TRANSACTION_MAX
            || next.groups.len() > limits::GROUPS_PER_TRANSACTION_MAX
        {
            return Err(code(ResponseError::PolicyViolation));
        }
        Ok(Some(next))
    }

    /// EndTxn from the producer.
    pub fn end(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<EndPlan, Code> {
        self.check_producer(producer_id, producer_epoch)?;
        let invalid = code(ResponseError::InvalidTxnState);
        match (self.state, commit) {
            (TxnState::Ongoing, true) => {
                Ok(EndPlan::Prepare(self.next(TxnState::PrepareCommit, now_ms)))
            }
            (TxnState::Ongoing, false) => {
                Ok(EndPlan::Prepare(self.next(TxnState::PrepareAbort, now_ms)))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                Ok(EndPlan::AlreadyComplete)
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(code(ResponseError::ConcurrentTransactions))
            }
            (TxnState::Dead | TxnState::PrepareEpochFence, _) => {
                Err(code(ResponseError::ConcurrentTransactions))
            }
            _ => Err(invalid),
        }
    }

    /// The completion of a prepared transaction (every marker written): Kafka's
    /// `prepareComplete`. `None` if the state is not a prepare state.
    pub fn complete(&self, now_ms: i64) -> Option<TxnMetadata> {
        let state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => return None,
        };
        Some(TxnMetadata {
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            ..self.next(state, now_ms)
        })
    }

    /// Whether an open transaction has outlived its timeout at `now_ms` (Kafka's
    /// `txnStartTimestamp + txnTimeoutMs < now`).
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.state == TxnState::Ongoing
            && self.start_ms.saturating_add(i64::from(self.timeout_ms)) < now_ms
    }

    /// Whether the id is idle long enough to be forgotten (`transactional.id.expiration.ms`).
    pub fn expired(&self, now_ms: i64, expiration_ms: i64) -> bool {
        self.state.expiration_allowed()
            && self.last_update_ms <= now_ms.saturating_sub(expiration_ms)
    }

    /// Whether a transactional batch of this producer may be appended to `partition`
    /// (Kafka 3.6+'s verification, KIP-890 part 1, with the Produce error codes Kafka's
    /// `ReplicaManager` turns the coordinator's answers into).
    pub fn verify_append(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partition: &TopicPartition,
    ) -> Result<(), Refusal> {
        if self.state == TxnState::Dead || producer_id != self.producer_id {
            return Err(Refusal {
                code: code(ResponseError::InvalidProducerIdMapping),
                message: "the producer id does not belong to the transactional id",
            });
        }
        if producer_epoch != self.producer_epoch {
            return Err(Refusal {
                code: code(ResponseError::InvalidProducerEpoch),
                message: "the producer epoch is not the transactional id's current one",
            });
        }
        if self.state.is_prepare() {
            // CONCURRENT_TRANSACTIONS from the coordinator; Kafka answers producers with
            // a code every client retries without refreshing metadata.
            return Err(Refusal {
                code: code(ResponseError::NotEnoughReplicas),
                message: "Unable to verify the partition has been added to the transaction. \
                          Underlying error: CONCURRENT_TRANSACTIONS",
            });
        }
        if self.state != TxnState::Ongoing || !self.partitions.contains(partition) {
            return Err(Refusal {
                code: code(ResponseError::InvalidTxnState),
                message: "Partition was not added to the transaction",
            });
        }
        Ok(())
    }

    /// AddPartitionsToTxn v4+ with `verify_only`: the coordinator's own answer per
    /// partition (Kafka's `handleVerifyPartitionsInTransaction`). `Err` covers them all.
    pub fn verify_partitions(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Code>, Code> {
        self.check_producer(producer_id, producer_epoch)?;
        if self.state.is_prepare() {
            return Err(code(ResponseError::ConcurrentTransactions));
        }
        Ok(partitions
            .iter()
            .map(|p| {
                if self.partitions.contains(p) {
                    0
                } else {
                    code(ResponseError::InvalidTxnState)
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
