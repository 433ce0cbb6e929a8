//! The transaction coordinator: every transactional id of this node, its lock, its
//! persistence, the markers, and the timers.
//!
//! Each id's metadata sits behind its own async read-write lock. A coordinator operation
//! (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, a timeout's abort, an
//! expiry) takes it for writing, asks the state machine (`state.rs`) for the next
//! metadata, writes it to `__transaction_state` and fsyncs it, and only then makes it
//! current — still holding the lock, so nobody sees a state that a crash could take back
//! and no two transitions of one id interleave. Ending a transaction holds the lock from
//! the prepare record through the markers to the complete record; Kafka answers EndTxn
//! once the prepare record is durable and writes markers in the background, Medulla
//! answers once the transaction is complete, so the producer's next transaction never
//! meets CONCURRENT_TRANSACTIONS. If the markers cannot be written the prepare state
//! stays, the answer is still NONE (the outcome is decided and durable, as in Kafka),
//! and the timer retries the completion.
//!
//! A transactional Produce holds the same lock for reading from its verification to the
//! end of its append: a batch either lands before the markers, inside the transaction,
//! or is refused — it can never land after the markers and leave a transaction hanging
//! open on the partition (KIP-890 part 1).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kafka_protocol::ResponseError;
use medulla_log::{Clock, LogError, LogManager, TxnMarker};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

use super::TxnConfig;
use super::producer_ids::ProducerIds;
use super::state::{Code, EndPlan, InitPlan, Refusal, TopicPartition, TxnMetadata, TxnState};
use super::store::TxnStore;
use crate::error::kafka_code;
use crate::groups::coordinator::Coordinator as GroupCoordinator;
use crate::groups::store::OFFSETS_TOPIC;
use crate::handlers::blocking;
use crate::limits;

type Shared = Arc<RwLock<TxnMetadata>>;

fn code(e: ResponseError) -> Code {
    e.code()
}

/// Kafka's translation of a failed transaction-log append into the coordinator's answer
/// (`TransactionStateManager.appendTransactionToLog`).
fn append_error(e: &LogError) -> Code {
    match e {
        LogError::UnknownTopic(_) | LogError::UnknownPartition { .. } => {
            code(ResponseError::CoordinatorNotAvailable)
        }
        LogError::Io(_) | LogError::DataDirLocked(_) => code(ResponseError::NotCoordinator),
        LogError::MessageTooLarge { .. } => code(ResponseError::UnknownServerError),
        other => match kafka_code(other) {
            0 => code(ResponseError::UnknownServerError),
            c => c,
        },
    }
}

/// Permission to append one transactional batch: while it lives, the transaction cannot
/// end (its markers wait for the append).
pub struct AppendPermit {
    _guard: Option<OwnedRwLockReadGuard<TxnMetadata>>,
}

/// One transaction as DescribeTransactions and ListTransactions show it.
#[derive(Debug, Clone)]
pub struct Described {
    /// The transactional id.
    pub transactional_id: String,
    /// Its metadata.
    pub metadata: TxnMetadata,
}

/// The coordinator of every transactional id.
pub struct TxnCoordinator {
    store: Arc<TxnStore>,
    producer_ids: Arc<ProducerIds>,
    log: Arc<LogManager>,
    groups: Arc<GroupCoordinator>,
    config: TxnConfig,
    clock: Arc<dyn Clock>,
    ids: Mutex<HashMap<String, Shared>>,
}

impl TxnCoordinator {
    /// The coordinator over what `store` loaded. Call [`TxnCoordinator::recover`] before
    /// serving.
    pub fn open(
        store: TxnStore,
        loaded: HashMap<String, TxnMetadata>,
        producer_ids: ProducerIds,
        log: Arc<LogManager>,
        groups: Arc<GroupCoordinator>,
        config: TxnConfig,
        clock: Arc<dyn Clock>,
    ) -> TxnCoordinator {
        let ids = loaded
            .into_iter()
            .map(|(id, m)| (id, Arc::new(RwLock::new(m))))
            .collect();
        TxnCoordinator {
            store: Arc::new(store),
            producer_ids: Arc::new(producer_ids),
            log,
            groups,
            config,
            clock,
            ids: Mutex::new(ids),
        }
    }

    /// The settings.
    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Shared>> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, transactional_id: &str) -> Option<Shared> {
        self.map().get(transactional_id).cloned()
    }

    fn snapshot(&self) -> Vec<(String, Shared)> {
        self.map()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A producer id for an idempotent (non-transactional) producer.
    async fn new_producer_id(&self) -> Result<i64, Code> {
        let ids = self.producer_ids.clone();
        blocking(move || ids.next().map_err(LogError::Io))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot allocate a producer id");
                code(ResponseError::UnknownServerError)
            })
    }

    /// Writes `metadata` (or the tombstone) for `id` and waits for the fsync.
    async fn persist(&self, id: &str, metadata: Option<&TxnMetadata>) -> Result<(), Code> {
        let store = self.store.clone();
        let owned_id = id.to_owned();
        let owned = metadata.cloned();
        let now_ms = self.clock.now_ms();
        blocking(move || store.write(&owned_id, owned.as_ref(), now_ms))
            .await
            .map_err(|e| {
                tracing::error!(transactional_id = id, error = %e, "cannot write the transaction log");
                append_error(&e)
            })
    }

    /// InitProducerId. `None` as the id: an idempotent producer, which always gets a new
    /// producer id at epoch 0. `Ok` is the producer id and epoch to answer with.
    pub async fn init_producer_id(
        &self,
        transactional_id: Option<&str>,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), Code> {
        let Some(id) = transactional_id else {
            return self.new_producer_id().await.map(|pid| (pid, 0));
        };
        if id.is_empty() {
            return Err(code(ResponseError::InvalidRequest));
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(code(ResponseError::InvalidTransactionTimeout));
        }
        loop {
            let shared = match self.get(id) {
                Some(s) => s,
                None => {
                    // Checked before a producer id is spent on a refused id, and again
                    // once the id is inserted for real.
                    if self.map().len() >= limits::TRANSACTIONAL_IDS_MAX {
                        tracing::warn!(
                            transactional_id = id,
                            "refusing a new transactional id: the limit of {} is reached",
                            limits::TRANSACTIONAL_IDS_MAX
                        );
                        return Err(code(ResponseError::PolicyViolation));
                    }
                    let pid = self.new_producer_id().await?;
                    let now_ms = self.clock.now_ms();
                    let mut map = self.map();
                    if !map.contains_key(id) && map.len() >= limits::TRANSACTIONAL_IDS_MAX {
                        tracing::warn!(
                            transactional_id = id,
                            "refusing a new transactional id: {} are known (limit)",
                            map.len()
                        );
                        return Err(code(ResponseError::PolicyViolation));
                    }
                    map.entry(id.to_owned())
                        .or_insert_with(|| {
                            Arc::new(RwLock::new(TxnMetadata::new(pid, timeout_ms, now_ms)))
                        })
                        .clone()
                }
            };
            let mut m = shared.write_owned().await;
            if m.state == TxnState::Dead {
                // Expired while we waited: start again with a fresh id.
                continue;
            }
            self.complete_if_prepared(id, &mut m).await;
            let now_ms = self.clock.now_ms();
            let next = match m.init(timeout_ms, expected, now_ms)? {
                InitPlan::Ready(next) => next,
                InitPlan::NeedsNewProducerId { record_last_epoch } => {
                    let pid = self.new_producer_id().await?;
                    m.rotate(pid, timeout_ms, now_ms, record_last_epoch)
                }
                InitPlan::Fence(prepared) => {
                    tracing::info!(
                        transactional_id = id,
                        producer_id = m.producer_id,
                        epoch = m.producer_epoch,
                        "a new producer instance fences the open transaction: aborting it"
                    );
                    self.persist(id, Some(&prepared)).await?;
                    *m = prepared;
                    // The abort is decided; if its markers fail now, the retry completes
                    // it first.
                    let _ = self.complete(id, &mut m).await;
                    return Err(code(ResponseError::ConcurrentTransactions));
                }
            };
            self.persist(id, Some(&next)).await?;
            *m = next;
            tracing::info!(
                transactional_id = id,
                producer_id = m.producer_id,
                epoch = m.producer_epoch,
                partition = self.store.partition_for(id),
                "initialized transactional id"
            );
            return Ok((m.producer_id, m.producer_epoch));
        }
    }

    /// AddPartitionsToTxn (`groups` empty) and AddOffsetsToTxn (one group, whose
    /// `__consumer_offsets` partition is among `partitions`).
    async fn add(
        &self,
        id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
        groups: &[String],
    ) -> Code {
        let mut m = match self.lock_for_change(id).await {
            Ok(m) => m,
            Err(c) => return c,
        };
        let now_ms = self.clock.now_ms();
        match m.add(producer_id, producer_epoch, partitions, groups, now_ms) {
            Err(c) => c,
            Ok(None) => 0,
            Ok(Some(next)) => match self.persist(id, Some(&next)).await {
                Ok(()) => {
                    *m = next;
                    0
                }
                Err(c) => c,
            },
        }
    }

    /// AddPartitionsToTxn for one transaction: one code for all the partitions.
    pub async fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Code {
        self.add(id, producer_id, producer_epoch, partitions, &[])
            .await
    }

    /// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction
    /// (as in Kafka), and the group id with it.
    pub async fn add_offsets(
        &self,
        id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group: &str,
    ) -> Code {
        let partition = self.groups.store().partition_for(group);
        let partitions = [(OFFSETS_TOPIC.to_owned(), partition)];
        self.add(
            id,
            producer_id,
            producer_epoch,
            &partitions,
            &[group.to_owned()],
        )
        .await
    }

    /// AddPartitionsToTxn v4+ `verify_only`: a code per partition, or one for all.
    pub async fn verify_partitions(
        &self,
        id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<Vec<Code>, Code> {
        if id.is_empty() {
            return Err(code(ResponseError::InvalidRequest));
        }
        let Some(shared) = self.get(id) else {
            return Err(code(ResponseError::InvalidProducerIdMapping));
        };
        let m = shared.read().await;
        m.verify_partitions(producer_id, producer_epoch, partitions)
    }

    /// EndTxn.
    pub async fn end_txn(
        &self,
        id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Code {
        let mut m = match self.lock_for_change(id).await {
            Ok(m) => m,
            Err(c) => return c,
        };
        let now_ms = self.clock.now_ms();
        match m.end(producer_id, producer_epoch, commit, now_ms) {
            Err(c) => c,
            Ok(EndPlan::AlreadyComplete) => 0,
            Ok(EndPlan::Prepare(prepared)) => {
                if let Err(c) = self.persist(id, Some(&prepared)).await {
                    return c;
                }
                *m = prepared;
                // Decided and durable: the answer is NONE even if a marker cannot be
                // written now (the timer completes it), as Kafka answers at this point.
                let _ = self.complete(id, &mut m).await;
                0
            }
        }
    }

    /// Writes the markers of a prepared transaction, completes its groups' offsets and
    /// records the complete state. On failure the prepare state stays current.
    async fn complete(
        &self,
        id: &str,
        m: &mut OwnedRwLockWriteGuard<TxnMetadata>,
    ) -> Result<(), Code> {
        let commit = match m.state {
            TxnState::PrepareCommit => true,
            TxnState::PrepareAbort => false,
            _ => return Ok(()),
        };
        if let Err(e) = self.write_markers(m, commit).await {
            tracing::error!(transactional_id = id, error = %e, "cannot write transaction markers; will retry");
            return Err(code(ResponseError::NotCoordinator));
        }
        if !m.groups.is_empty() {
            let groups: Vec<String> = m.groups.iter().cloned().collect();
            let c = self
                .groups
                .complete_transaction(m.producer_id, m.producer_epoch, &groups, commit)
                .await;
            if c != 0 {
                tracing::error!(
                    transactional_id = id,
                    code = c,
                    "cannot complete the transaction's offsets; will retry"
                );
                return Err(c);
            }
        }
        let now_ms = self.clock.now_ms();
        let Some(done) = m.complete(now_ms) else {
            return Ok(());
        };
        self.persist(id, Some(&done)).await?;
        tracing::debug!(
            transactional_id = id,
            producer_id = done.producer_id,
            epoch = done.producer_epoch,
            state = done.state.name(),
            "transaction complete"
        );
        **m = done;
        Ok(())
    }

    /// Completes a transaction left prepared by a failure or a crash, before anything
    /// else touches it. Failure leaves it prepared (the caller answers accordingly).
    /// The metadata of a known `id`, locked for a change, with a transaction left
    /// prepared by an earlier failure completed first.
    async fn lock_for_change(&self, id: &str) -> Result<OwnedRwLockWriteGuard<TxnMetadata>, Code> {
        if id.is_empty() {
            return Err(code(ResponseError::InvalidRequest));
        }
        let Some(shared) = self.get(id) else {
            return Err(code(ResponseError::InvalidProducerIdMapping));
        };
        let mut m = shared.write_owned().await;
        self.complete_if_prepared(id, &mut m).await;
        Ok(m)
    }

    async fn complete_if_prepared(&self, id: &str, m: &mut OwnedRwLockWriteGuard<TxnMetadata>) {
        if m.state.is_prepare() {
            let _ = self.complete(id, m).await;
        }
    }

    /// Appends a marker to every data partition of the transaction and fsyncs them. The
    /// groups' `__consumer_offsets` partitions are the group coordinator's to mark.
    async fn write_markers(&self, m: &TxnMetadata, commit: bool) -> Result<(), LogError> {
        let marker = TxnMarker {
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            commit,
            coordinator_epoch: 0,
        };
        let logs: Vec<_> = m
            .partitions
            .iter()
            .filter(|(topic, _)| topic != OFFSETS_TOPIC)
            .filter_map(|(topic, p)| {
                let log = self.log.partition(topic, *p);
                if log.is_none() {
                    tracing::info!(topic, partition = p, "no marker for a deleted partition");
                }
                log
            })
            .collect();
        if logs.is_empty() {
            return Ok(());
        }
        let written = blocking(move || {
            let mut written = Vec::with_capacity(logs.len());
            for log in logs {
                match log.append_marker(&marker) {
                    Ok(info) => written.push((log, info.last_offset + 1)),
                    // Deleted meanwhile: nothing left to end.
                    Err(LogError::UnknownTopic(_) | LogError::UnknownPartition { .. }) => {}
                    // The partition saw a newer epoch of this producer: its transaction
                    // here was ended by a later one. Kafka's marker writer gives up on
                    // such a partition too.
                    Err(e @ LogError::InvalidProducerEpoch(_)) => tracing::warn!(
                        topic = log.topic(),
                        partition = log.partition(),
                        error = %e,
                        "marker refused; the partition is past this epoch"
                    ),
                    Err(e) => return Err(e),
                }
            }
            Ok(written)
        })
        .await?;
        // One fsync per partition file, all at once.
        let mut syncs = tokio::task::JoinSet::new();
        for (log, end) in written {
            syncs.spawn_blocking(move || log.sync_to(end));
        }
        let mut first_error = None;
        while let Some(joined) = syncs.join_next().await {
            let result = joined.unwrap_or_else(|e| {
                Err(LogError::Io(std::io::Error::other(format!(
                    "marker fsync task failed: {e}"
                ))))
            });
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Lets a transactional batch of `producer_id` / `producer_epoch` for
    /// `transactional_id` be appended to `partition`, or refuses it with Kafka's code
    /// (`transaction.partition.verification.enable`). Hold the permit until the append
    /// is done.
    pub async fn begin_append(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partition: &TopicPartition,
    ) -> Result<AppendPermit, Refusal> {
        if !self.config.partition_verification {
            return Ok(AppendPermit { _guard: None });
        }
        let Some(shared) = self.get(transactional_id) else {
            return Err(Refusal {
                code: code(ResponseError::InvalidProducerIdMapping),
                message: "the transactional id is not known to the coordinator",
            });
        };
        let m = shared.read_owned().await;
        m.verify_append(producer_id, producer_epoch, partition)?;
        Ok(AppendPermit { _guard: Some(m) })
    }

    /// Lets TxnOffsetCommit store offsets of `producer_id` / `producer_epoch` for `group`
    /// if the group is part of the open transaction of `transactional_id` (added with
    /// AddOffsetsToTxn), or refuses with Kafka's code. Hold the permit until the offsets
    /// are written: EndTxn waits for it, so they can never land after the transaction's
    /// marker (which would leave them pending for good). Lock order: this permit before
    /// any group lock, as EndTxn takes the transaction's lock before completing groups.
    pub async fn begin_group_commit(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        group: &str,
    ) -> Result<AppendPermit, Code> {
        if !self.config.partition_verification {
            return Ok(AppendPermit { _guard: None });
        }
        let Some(shared) = self.get(transactional_id) else {
            return Err(code(ResponseError::InvalidProducerIdMapping));
        };
        let m = shared.read_owned().await;
        if m.state == TxnState::Dead || m.producer_id != producer_id {
            return Err(code(ResponseError::InvalidProducerIdMapping));
        }
        if m.producer_epoch != producer_epoch {
            return Err(code(ResponseError::ProducerFenced));
        }
        if m.state.is_prepare() {
            return Err(code(ResponseError::ConcurrentTransactions));
        }
        if m.state != TxnState::Ongoing || !m.groups.contains(group) {
            return Err(code(ResponseError::InvalidTxnState));
        }
        Ok(AppendPermit { _guard: Some(m) })
    }

    /// DescribeTransactions for one id.
    pub async fn describe(&self, transactional_id: &str) -> Result<TxnMetadata, Code> {
        if transactional_id.is_empty() {
            return Err(code(ResponseError::InvalidRequest));
        }
        let Some(shared) = self.get(transactional_id) else {
            return Err(code(ResponseError::TransactionalIdNotFound));
        };
        let m = shared.read().await;
        if m.state == TxnState::Dead {
            return Err(code(ResponseError::TransactionalIdNotFound));
        }
        Ok(m.clone())
    }

    /// Every transactional id that is not being removed, sorted by id.
    pub async fn list(&self) -> Vec<Described> {
        let mut out = Vec::new();
        for (id, shared) in self.snapshot() {
            let m = shared.read().await;
            if m.state != TxnState::Dead {
                out.push(Described {
                    transactional_id: id,
                    metadata: m.clone(),
                });
            }
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// The current time of the coordinator's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Completes every prepared transaction (after a restart, or after markers failed).
    pub async fn recover(&self) {
        for (id, shared) in self.snapshot() {
            if !shared.read().await.state.is_prepare() {
                continue;
            }
            let mut m = shared.write_owned().await;
            if m.state.is_prepare() {
                tracing::info!(
                    transactional_id = %id,
                    state = m.state.name(),
                    "completing a prepared transaction"
                );
                let _ = self.complete(&id, &mut m).await;
            }
        }
    }

    /// Aborts every open transaction older than its timeout, fencing its producer with
    /// the next epoch (Kafka's `abortTimedOutTransactions`), and retries the completion
    /// of prepared ones. An id busy with a request is left to the next round.
    pub async fn abort_timed_out(&self) {
        for (id, shared) in self.snapshot() {
            let Ok(mut m) = shared.clone().try_write_owned() else {
                continue;
            };
            if m.state.is_prepare() {
                let _ = self.complete(&id, &mut m).await;
                continue;
            }
            let now_ms = self.clock.now_ms();
            if !m.timed_out(now_ms) {
                continue;
            }
            tracing::info!(
                transactional_id = %id,
                producer_id = m.producer_id,
                epoch = m.producer_epoch,
                timeout_ms = m.timeout_ms,
                "aborting a transaction that timed out"
            );
            let prepared = m.fence(now_ms);
            if self.persist(&id, Some(&prepared)).await.is_err() {
                continue;
            }
            *m = prepared;
            let _ = self.complete(&id, &mut m).await;
        }
    }

    /// Forgets transactional ids idle for `transactional.id.expiration.ms` in `Empty` or
    /// a complete state: a tombstone in the log, then out of memory. Returns how many.
    pub async fn expire_ids(&self) -> usize {
        let expiration_ms = self.config.id_expiration_ms;
        let mut expired = 0;
        for (id, shared) in self.snapshot() {
            let Ok(mut m) = shared.clone().try_write_owned() else {
                continue;
            };
            if !m.expired(self.clock.now_ms(), expiration_ms) {
                continue;
            }
            if self.persist(&id, None).await.is_err() {
                continue;
            }
            m.state = TxnState::Dead;
            let mut map = self.map();
            if map.get(&id).is_some_and(|s| Arc::ptr_eq(s, &shared)) {
                map.remove(&id);
            }
            expired += 1;
            tracing::info!(transactional_id = %id, "transactional id expired");
        }
        expired
    }

    /// Forgets producers idle for `producer.id.expiration.ms` in every partition.
    pub async fn expire_producers(&self) {
        let log = self.log.clone();
        let expiration_ms = self.config.producer_id_expiration_ms;
        match blocking(move || Ok(log.expire_producers(expiration_ms))).await {
            Ok(0) | Err(_) => {}
            Ok(n) => tracing::info!(producers = n, "expired idle producer ids"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    use super::*;
    use crate::groups::classic::GroupConfig;
    use crate::groups::consumer::ConsumerConfig;
    use crate::groups::store::GroupStore;

    const T0: i64 = 1_700_000_000_000;

    /// A clock the test moves.
    struct FakeClock(AtomicI64);

    impl Clock for FakeClock {
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    struct Fixture {
        log: Arc<LogManager>,
        clock: Arc<FakeClock>,
        txn: TxnCoordinator,
    }

    use crate::internal_topics::open_test_log as open_log;

    fn fixture(dir: &std::path::Path, log: Arc<LogManager>, now_ms: i64) -> Fixture {
        let groups = Arc::new(GroupCoordinator::open(
            Arc::new(GroupStore::open(log.clone(), 3, 1 << 20).unwrap()),
            GroupConfig::default(),
            ConsumerConfig::default(),
        ));
        let (store, loaded) = TxnStore::open(log.clone(), 3, 1 << 20).unwrap();
        let clock = Arc::new(FakeClock(AtomicI64::new(now_ms)));
        let txn = TxnCoordinator::open(
            store,
            loaded,
            ProducerIds::open(dir).unwrap(),
            log.clone(),
            groups,
            TxnConfig {
                id_expiration_ms: 10_000,
                ..TxnConfig::default()
            },
            clock.clone(),
        );
        Fixture { log, clock, txn }
    }

    /// A transactional batch of one record, as a producer sends it.
    fn txn_batch(producer_id: i64, epoch: i16, sequence: i32) -> Vec<u8> {
        let record = Record {
            transactional: true,
            control: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence,
            timestamp: T0,
            key: None,
            value: Some(bytes::Bytes::from_static(b"admit")),
            headers: Default::default(),
            delete_horizon: false,
        };
        let mut b = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut b,
            std::slice::from_ref(&record),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        b.to_vec()
    }

    /// Every record of a partition: (control, producer epoch, key).
    fn records(log: &LogManager, topic: &str, p: i32) -> Vec<(bool, i16, Option<bytes::Bytes>)> {
        let part = log.partition(topic, p).unwrap();
        let mut out = Vec::new();
        let mut offset = 0;
        // One segment per read: the test's old timestamps roll a segment per batch.
        while offset < part.log_end_offset() {
            let mut bytes = part.read(offset, 1 << 20, true).unwrap();
            for r in RecordBatchDecoder::decode_all(&mut bytes)
                .unwrap()
                .into_iter()
                .flat_map(|s| s.records)
            {
                offset = r.offset + 1;
                out.push((r.control, r.producer_epoch, r.key));
            }
        }
        out
    }

    const COMMIT_KEY: &[u8] = b"\x00\x00\x00\x01";
    const ABORT_KEY: &[u8] = b"\x00\x00\x00\x00";

    #[tokio::test]
    async fn a_prepared_commit_found_on_start_is_completed() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path());
        log.create_topic("t", 2, &Default::default(), false)
            .unwrap();
        // The state a crash leaves between the prepare record and the markers: records
        // of producer 5 in t-0 and t-1, the outcome PrepareCommit in the log.
        for p in 0..2 {
            log.partition("t", p)
                .unwrap()
                .append(&txn_batch(5, 0, 0))
                .unwrap();
        }
        let mut m = TxnMetadata::new(5, 60_000, T0);
        m.producer_epoch = 0;
        m.state = TxnState::PrepareCommit;
        m.partitions = [("t".to_owned(), 0), ("t".to_owned(), 1)].into();
        m.start_ms = T0;
        {
            let (store, _) = TxnStore::open(log.clone(), 3, 1 << 20).unwrap();
            store.write("tx", Some(&m), T0).unwrap();
        }
        let f = fixture(dir.path(), log.clone(), T0 + 5);
        assert_eq!(
            f.txn.describe("tx").await.unwrap().state,
            TxnState::PrepareCommit
        );
        f.txn.recover().await;
        let done = f.txn.describe("tx").await.unwrap();
        assert_eq!(done.state, TxnState::CompleteCommit);
        assert!(done.partitions.is_empty());
        for p in 0..2 {
            let recs = records(&f.log, "t", p);
            assert_eq!(recs.len(), 2);
            assert_eq!(
                recs[1],
                (true, 0, Some(bytes::Bytes::from_static(COMMIT_KEY)))
            );
            let part = f.log.partition("t", p).unwrap();
            assert_eq!(part.last_stable_offset(), part.log_end_offset());
        }
        // Durable: the log itself now says CompleteCommit.
        let (_, loaded) = TxnStore::open(log, 3, 1 << 20).unwrap();
        assert_eq!(loaded["tx"].state, TxnState::CompleteCommit);
    }

    #[tokio::test]
    async fn a_timed_out_transaction_is_aborted_under_the_next_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path());
        log.create_topic("t", 1, &Default::default(), false)
            .unwrap();
        let f = fixture(dir.path(), log, T0);
        let (pid, epoch) = f
            .txn
            .init_producer_id(Some("tx"), 1000, None)
            .await
            .unwrap();
        assert_eq!(epoch, 0);
        let t0 = [("t".to_owned(), 0)];
        assert_eq!(f.txn.add_partitions("tx", pid, 0, &t0).await, 0);
        {
            let _permit = f.txn.begin_append("tx", pid, 0, &t0[0]).await.unwrap();
            f.log
                .partition("t", 0)
                .unwrap()
                .append(&txn_batch(pid, 0, 0))
                .unwrap();
        }
        // Not yet: start + timeout is not in the past.
        f.clock.0.store(T0 + 1000, Ordering::SeqCst);
        f.txn.abort_timed_out().await;
        assert_eq!(f.txn.describe("tx").await.unwrap().state, TxnState::Ongoing);
        f.clock.0.store(T0 + 1001, Ordering::SeqCst);
        f.txn.abort_timed_out().await;
        let m = f.txn.describe("tx").await.unwrap();
        assert_eq!((m.state, m.producer_epoch), (TxnState::CompleteAbort, 1));
        let recs = records(&f.log, "t", 0);
        assert_eq!(
            recs[1],
            (true, 1, Some(bytes::Bytes::from_static(ABORT_KEY)))
        );
        // The producer of epoch 0 is fenced everywhere.
        let fenced = ResponseError::ProducerFenced.code();
        assert_eq!(f.txn.end_txn("tx", pid, 0, true).await, fenced);
        assert_eq!(f.txn.add_partitions("tx", pid, 0, &t0).await, fenced);
        assert_eq!(
            f.txn
                .begin_append("tx", pid, 0, &t0[0])
                .await
                .err()
                .map(|r| r.code),
            Some(ResponseError::InvalidProducerEpoch.code())
        );
        // A new instance starts after the fencing epoch.
        assert_eq!(
            f.txn.init_producer_id(Some("tx"), 1000, None).await,
            Ok((pid, 2))
        );
    }

    #[tokio::test]
    async fn idle_ids_expire_durably_and_open_transactions_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_log(dir.path());
        log.create_topic("t", 1, &Default::default(), false)
            .unwrap();
        let f = fixture(dir.path(), log.clone(), T0);
        let (idle, _) = f
            .txn
            .init_producer_id(Some("idle"), 60_000, None)
            .await
            .unwrap();
        let (busy, _) = f
            .txn
            .init_producer_id(Some("busy"), 60_000, None)
            .await
            .unwrap();
        assert_ne!(idle, busy);
        assert_eq!(
            f.txn
                .add_partitions("busy", busy, 0, &[("t".to_owned(), 0)])
                .await,
            0
        );
        f.clock.0.store(T0 + 9_999, Ordering::SeqCst);
        assert_eq!(f.txn.expire_ids().await, 0);
        f.clock.0.store(T0 + 10_000, Ordering::SeqCst);
        assert_eq!(f.txn.expire_ids().await, 1);
        assert_eq!(
            f.txn.describe("idle").await.err(),
            Some(ResponseError::TransactionalIdNotFound.code())
        );
        assert!(f.txn.describe("busy").await.is_ok());
        let listed: Vec<String> = f
            .txn
            .list()
            .await
            .into_iter()
            .map(|d| d.transactional_id)
            .collect();
        assert_eq!(listed, vec!["busy".to_owned()]);
        // The tombstone is in the log: a restart does not bring the id back.
        drop(f);
        let f = fixture(dir.path(), log, T0 + 10_000);
        assert!(f.txn.describe("idle").await.is_err());
        assert_eq!(
            f.txn.describe("busy").await.unwrap().state,
            TxnState::Ongoing
        );
        // A returning producer gets a new producer id, never the old one.
        let (again, epoch) = f
            .txn
            .init_producer_id(Some("idle"), 60_000, None)
            .await
            .unwrap();
        assert_eq!(epoch, 0);
        assert!(again > busy);
    }

    #[tokio::test]
    async fn the_number_of_transactional_ids_is_bounded() {
        // The limit is checked on creation only: an id the coordinator knows is always
        // served. Filling it for real would take 100,000 fsyncs; the check is the map's
        // size, so a map filled in memory shows it.
        let dir = tempfile::tempdir().unwrap();
        let f = fixture(dir.path(), open_log(dir.path()), T0);
        {
            let mut map = f.txn.map();
            for i in 0..limits::TRANSACTIONAL_IDS_MAX {
                map.insert(
                    format!("id-{i}"),
                    Arc::new(RwLock::new(TxnMetadata::new(i as i64, 1000, T0))),
                );
            }
        }
        assert_eq!(
            f.txn.init_producer_id(Some("one-more"), 60_000, None).await,
            Err(ResponseError::PolicyViolation.code())
        );
        assert_eq!(
            f.txn
                .init_producer_id(Some("id-7"), 60_000, None)
                .await
                .map(|r| r.1),
            Ok(0)
        );
    }
}
