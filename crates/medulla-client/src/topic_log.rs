//! [`TopicLog`]: a single-partition (compacted) topic used as a replicated state log.
//!
//! Every instance reads the topic from offset 0 on its own reader thread and hands each
//! record, in offset order, to the caller's `apply`. Writes go through an idempotent
//! `acks=all` producer and return only once this instance's reader has applied them
//! (read-your-writes), as Confluent's `KafkaStore` does for `_schemas`.
//!
//! How far the reader has got is published on a `watch` channel as the next offset it
//! will apply; `append` and `sync` wait on it with a deadline, so a broken cluster makes
//! them fail with [`ClientError::Timeout`], never hang.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::limits::{READER_POLL, RETRY_BACKOFF};
use crate::{ClientConfig, ClientError};

/// Replication factor a state-log topic is created with when the cluster has that many
/// brokers (Confluent's `kafkastore.topic.replication.factor` default); fewer brokers
/// give fewer replicas, with a warning.
const REPLICATION_FACTOR_DESIRED: usize = 3;

/// One record read back from a [`TopicLog`], in offset order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Its offset in the topic's only partition.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value; `None` is a tombstone (the key is deleted).
    pub value: Option<Vec<u8>>,
}

/// How far the reader has got.
#[derive(Clone, Debug, Default)]
struct Progress {
    /// Every record before this offset has been applied (or was absent: compacted away,
    /// or a control record).
    next_offset: i64,
    /// Set when the reader stopped on a fatal error.
    stopped: Option<String>,
}

/// A single-partition (compacted) topic used as a replicated state log, as Confluent's
/// `KafkaStore` uses `_schemas`: every instance reads it from the start and applies each
/// record in order; writes go through an idempotent `acks=all` producer and return once
/// this instance's reader has applied them (read-your-writes).
///
/// `append` and `sync` are bounded by the `timeout` given to [`TopicLog::open`].
pub struct TopicLog {
    topic: String,
    bootstrap: String,
    /// The cluster id the bootstrap answered with (Metadata v2+), if any.
    cluster_id: Option<String>,
    timeout: Duration,
    progress: watch::Receiver<Progress>,
    stop: Arc<AtomicBool>,
    /// Always `Some` until `close` or drop takes it to destroy off the async threads.
    handles: Option<Handles>,
}

/// The librdkafka handles. Destroying one can block (it waits for its threads and
/// in-flight requests), so it happens on a blocking thread, never on the runtime's.
struct Handles {
    producer: FutureProducer,
    /// Held so the consumer is destroyed here, off the async threads, after the reader.
    _consumer: Arc<BaseConsumer>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Handles {
    /// Waits for the reader to stop (the caller has set the stop flag), flushes the
    /// producer, and destroys everything. Blocking.
    fn shut_down(mut self, flush_timeout: Duration) {
        if let Some(r) = self.reader.take()
            && r.join().is_err()
        {
            tracing::error!("the state-log reader thread panicked");
        }
        if let Err(e) = self.producer.flush(Timeout::After(flush_timeout)) {
            tracing::warn!(error = %e, "flushing the state-log producer failed");
        }
    }
}

impl TopicLog {
    /// Creates the topic when it is missing (1 partition, `configs` such as
    /// `[("cleanup.policy", "compact")]`); accepts an existing topic after checking it has
    /// exactly 1 partition. Starts the reader, which calls `apply` for every record in
    /// order from offset 0, and returns once it has applied everything up to the end
    /// offset seen at open, so the caller's state is complete. `timeout` bounds the whole
    /// open, and later each `append` and `sync`.
    pub async fn open(
        cfg: &ClientConfig,
        topic: &str,
        configs: &[(&str, &str)],
        apply: Box<dyn FnMut(LogRecord) + Send>,
        timeout: Duration,
    ) -> Result<TopicLog, ClientError> {
        if topic.is_empty() {
            return Err(ClientError::Config(
                "the state-log topic name is empty".into(),
            ));
        }
        let deadline = Instant::now() + timeout;
        let timeout_ms = timeout.as_millis().clamp(1, i32::MAX as u128).to_string();
        // A metadata request for a missing topic must not create it with the broker's
        // defaults (several partitions, delete policy).
        let admin: AdminClient<DefaultClientContext> = cfg
            .rdkafka(&[("allow.auto.create.topics", "false")])
            .create()
            .map_err(|e| ClientError::kafka("cannot create the Kafka admin client", e))?;
        let admin = Arc::new(admin);
        if let Err(e) = ensure_topic(cfg, &admin, topic, configs, deadline).await {
            drop_blocking(admin);
            return Err(e);
        }

        let producer: FutureProducer = cfg
            .rdkafka(&[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("linger.ms", "0"),
                // A record not acknowledged in time fails rather than being written long
                // after its caller was told it timed out.
                ("message.timeout.ms", &timeout_ms),
            ])
            .create()
            .map_err(|e| ClientError::kafka("cannot create the Kafka producer", e))?;
        let consumer: BaseConsumer = cfg
            .rdkafka(&[
                ("allow.auto.create.topics", "false"),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                // No end-of-partition events: librdkafka reports each one as an error
                // through the client context (an ERROR log line per write). The reader
                // learns it is caught up from its position when a poll comes back empty.
                ("enable.partition.eof", "false"),
                ("auto.offset.reset", "earliest"),
                // No group: the reader is assigned partition 0 directly. librdkafka still
                // wants a group id for some consumer paths; it is never joined.
                ("group.id", "medulla-client-topic-log"),
            ])
            .create()
            .map_err(|e| ClientError::kafka("cannot create the Kafka consumer", e))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, 0, Offset::Beginning)
            .map_err(|e| ClientError::kafka(format!("cannot assign {topic}-0"), e))?;
        consumer
            .assign(&assignment)
            .map_err(|e| ClientError::kafka(format!("cannot assign {topic}-0"), e))?;
        let consumer = Arc::new(consumer);

        let (progress_tx, progress) = watch::channel(Progress::default());
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let consumer = consumer.clone();
            let topic = topic.to_owned();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("topic-log-{topic}"))
                .spawn(move || read_loop(&consumer, &topic, apply, &progress_tx, &stop))
                .map_err(|e| ClientError::Config(format!("cannot start the reader thread: {e}")))?
        };
        // The admin client's work is done; destroying it may block.
        drop_blocking(admin);
        let cluster_id = {
            let consumer = consumer.clone();
            let wait = deadline.saturating_duration_since(Instant::now());
            tokio::task::spawn_blocking(move || {
                consumer.client().fetch_cluster_id(Timeout::After(wait))
            })
            .await
            .ok()
            .flatten()
        };
        let log = TopicLog {
            topic: topic.to_owned(),
            bootstrap: cfg.bootstrap.clone(),
            cluster_id,
            timeout,
            progress,
            stop,
            handles: Some(Handles {
                producer,
                _consumer: consumer,
                reader: Some(reader),
            }),
        };
        // On error the log is dropped, which stops the reader.
        let end = log.end_offset(deadline).await?;
        log.wait_applied(end, deadline, || {
            format!("the reader to catch up with {topic} (end offset {end}) at open")
        })
        .await?;
        tracing::info!(topic, end_offset = end, "state log loaded");
        Ok(log)
    }

    /// The Kafka cluster id, when the cluster reported one.
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id.clone()
    }

    /// Produces one record (`value` `None` = tombstone) and waits until this instance's
    /// reader has applied it; returns its offset. Bounded by the open timeout.
    ///
    /// A timed-out append may still be written later within that same bound (the
    /// producer's `message.timeout.ms`), as with any Kafka producer.
    pub async fn append(&self, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<i64, ClientError> {
        self.check_reader()?;
        let deadline = Instant::now() + self.timeout;
        let mut record = FutureRecord::to(&self.topic).partition(0).key(&key);
        if let Some(v) = &value {
            record = record.payload(v);
        }
        let sent = tokio::time::timeout_at(
            deadline,
            self.handles()?
                .producer
                .send(record, Timeout::After(self.timeout)),
        )
        .await
        .map_err(|_| {
            self.timed_out(format!(
                "the broker to acknowledge a write to {}",
                self.topic
            ))
        })?;
        let delivery = sent.map_err(|(e, _)| {
            ClientError::kafka(format!("cannot write to topic {}", self.topic), e)
        })?;
        let offset = delivery.offset;
        self.wait_applied(offset.saturating_add(1), deadline, || {
            format!(
                "this instance to read back offset {offset} of {}",
                self.topic
            )
        })
        .await?;
        Ok(offset)
    }

    /// Waits until the reader has applied everything up to the topic's current end
    /// offset, so state written by other instances is seen. Bounded by the open timeout.
    pub async fn sync(&self) -> Result<(), ClientError> {
        self.check_reader()?;
        let deadline = Instant::now() + self.timeout;
        let end = self.end_offset(deadline).await?;
        self.wait_applied(end, deadline, || {
            format!(
                "the reader to catch up with {} (end offset {end})",
                self.topic
            )
        })
        .await
    }

    /// Stops the reader and flushes the producer.
    pub async fn close(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let Some(handles) = self.handles.take() else {
            return;
        };
        let timeout = self.timeout;
        if let Err(e) = tokio::task::spawn_blocking(move || handles.shut_down(timeout)).await {
            tracing::error!(error = %e, "closing the state log failed");
        }
    }

    fn handles(&self) -> Result<&Handles, ClientError> {
        self.handles
            .as_ref()
            .ok_or_else(|| ClientError::ReaderStopped {
                topic: self.topic.clone(),
                reason: "the log is closed".into(),
            })
    }

    /// The topic's end offset (high watermark of its only partition).
    async fn end_offset(&self, deadline: Instant) -> Result<i64, ClientError> {
        // Asked through the producer's connection, not the reader's: a broker answers
        // one connection's requests in order, so behind the reader's long-polling Fetch
        // this would wait out `fetch.wait.max.ms` every time.
        let producer = self.handles()?.producer.clone();
        let topic = self.topic.clone();
        let remaining = deadline.saturating_duration_since(Instant::now());
        let watermarks = tokio::task::spawn_blocking(move || {
            producer.client().fetch_watermarks(&topic, 0, remaining)
        })
        .await
        .map_err(|e| ClientError::Config(format!("watermark lookup task failed: {e}")))?;
        match watermarks {
            Ok((_, high)) => Ok(high),
            Err(KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut))
            | Err(KafkaError::MetadataFetch(RDKafkaErrorCode::RequestTimedOut)) => {
                Err(self.timed_out(format!("the end offset of {}", self.topic)))
            }
            Err(e) => Err(ClientError::kafka(
                format!("cannot read the end offset of {}", self.topic),
                e,
            )),
        }
    }

    /// Waits until every offset before `next_offset` has been applied.
    async fn wait_applied(
        &self,
        next_offset: i64,
        deadline: Instant,
        what: impl FnOnce() -> String,
    ) -> Result<(), ClientError> {
        let mut rx = self.progress.clone();
        let waited = tokio::time::timeout_at(
            deadline,
            rx.wait_for(|p| p.next_offset >= next_offset || p.stopped.is_some()),
        )
        .await;
        match waited {
            Err(_) => Err(self.timed_out(what())),
            Ok(Err(_)) => Err(self.reader_gone()),
            Ok(Ok(p)) => match &p.stopped {
                Some(reason) => Err(ClientError::ReaderStopped {
                    topic: self.topic.clone(),
                    reason: reason.clone(),
                }),
                None => Ok(()),
            },
        }
    }

    fn check_reader(&self) -> Result<(), ClientError> {
        if self.progress.has_changed().is_err() {
            return Err(self.reader_gone());
        }
        match &self.progress.borrow().stopped {
            Some(reason) => Err(ClientError::ReaderStopped {
                topic: self.topic.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn reader_gone(&self) -> ClientError {
        ClientError::ReaderStopped {
            topic: self.topic.clone(),
            reason: "the reader thread ended (did `apply` panic?)".into(),
        }
    }

    fn timed_out(&self, what: String) -> ClientError {
        ClientError::Timeout {
            what,
            after: self.timeout,
            bootstrap: self.bootstrap.clone(),
        }
    }
}

impl Drop for TopicLog {
    /// Stops the reader and destroys the handles on a thread of their own (drop cannot
    /// wait, and may run on the runtime).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handles) = self.handles.take() {
            let timeout = self.timeout;
            drop_blocking_with(move || handles.shut_down(timeout));
        }
    }
}

/// Drops `value` on a thread of its own: destroying a librdkafka handle can block.
fn drop_blocking<T: Send + 'static>(value: T) {
    drop_blocking_with(move || drop(value));
}

fn drop_blocking_with(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new()
        .name("medulla-client-drop".into())
        .spawn(f)
    {
        // The closure (and what it owns) was dropped here instead.
        tracing::warn!(error = %e, "cannot start a thread to release Kafka handles");
    }
}

/// Creates `topic` if missing, then checks it has exactly one partition.
async fn ensure_topic(
    cfg: &ClientConfig,
    admin: &Arc<AdminClient<DefaultClientContext>>,
    topic: &str,
    configs: &[(&str, &str)],
    deadline: Instant,
) -> Result<(), ClientError> {
    let timed_out = |what: &str| ClientError::Timeout {
        what: format!("{what} of topic {topic}"),
        after: deadline.saturating_duration_since(Instant::now()),
        bootstrap: cfg.bootstrap.clone(),
    };
    let mut created = false;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(timed_out("the metadata"));
        }
        let (partitions, brokers) = match describe(admin, topic, remaining).await {
            Ok(found) => found,
            Err(KafkaError::MetadataFetch(
                RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut,
            )) => return Err(timed_out("the metadata")),
            Err(e) => {
                return Err(ClientError::kafka(
                    format!("cannot read the metadata of topic {topic}"),
                    e,
                ));
            }
        };
        match partitions {
            Some(0) | None if created => {
                // Created, but metadata has not caught up yet.
                tokio::time::sleep_until((Instant::now() + RETRY_BACKOFF).min(deadline)).await;
            }
            Some(1) => {
                if !created {
                    warn_on_config_drift(admin, topic, configs).await;
                }
                return Ok(());
            }
            Some(n) if n > 1 => {
                return Err(ClientError::TopicPartitions {
                    topic: topic.to_owned(),
                    partitions: n,
                });
            }
            _ => {
                create(admin, topic, configs, brokers, deadline).await?;
                created = true;
            }
        }
    }
}

/// Logs a warning for each requested config an existing topic does not have (say a
/// state log without `cleanup.policy=compact` loses records to retention). Confluent
/// refuses to start in that case; ours only warns, as the caller asked for a log, not
/// an audit, and the lookup may be denied by ACLs.
async fn warn_on_config_drift(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    configs: &[(&str, &str)],
) {
    if configs.is_empty() {
        return;
    }
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &AdminOptions::new())
        .await;
    let resource = match described.map(|mut r| r.pop()) {
        Ok(Some(Ok(resource))) => resource,
        Ok(Some(Err(e))) => {
            tracing::debug!(topic, error = ?e, "cannot read the topic's configs");
            return;
        }
        Ok(None) => return,
        Err(e) => {
            tracing::debug!(topic, error = %e, "cannot read the topic's configs");
            return;
        }
    };
    for (key, wanted) in configs {
        let actual = resource.get(key).and_then(|e| e.value.clone());
        if actual.as_deref() != Some(*wanted) {
            tracing::warn!(
                topic,
                key,
                wanted,
                actual = actual.as_deref().unwrap_or("(unset)"),
                "the existing state-log topic has a different config than requested"
            );
        }
    }
}

/// The topic's partition count (`None` when it does not exist) and the broker count.
async fn describe(
    admin: &Arc<AdminClient<DefaultClientContext>>,
    topic: &str,
    timeout: Duration,
) -> Result<(Option<usize>, usize), KafkaError> {
    let admin = admin.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let md = admin.inner().fetch_metadata(Some(&topic), timeout)?;
        let brokers = md.brokers().len();
        let partitions = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .and_then(|t| match t.error() {
                Some(e)
                    if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition =>
                {
                    None
                }
                _ => Some(t.partitions().len()),
            });
        Ok((partitions, brokers))
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "the metadata task failed");
        Err(KafkaError::MetadataFetch(RDKafkaErrorCode::Fail))
    })
}

/// Creates `topic` with one partition; a concurrent creator winning is fine.
async fn create(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    configs: &[(&str, &str)],
    brokers: usize,
    deadline: Instant,
) -> Result<(), ClientError> {
    let replicas = brokers.clamp(1, REPLICATION_FACTOR_DESIRED);
    if replicas < REPLICATION_FACTOR_DESIRED {
        tracing::warn!(
            topic,
            replicas,
            desired = REPLICATION_FACTOR_DESIRED,
            "creating the state-log topic with fewer replicas than desired: the cluster has \
             fewer brokers"
        );
    }
    let replicas = i32::try_from(replicas).unwrap_or(1);
    let mut new_topic = NewTopic::new(topic, 1, TopicReplication::Fixed(replicas));
    for (k, v) in configs {
        new_topic = new_topic.set(k, v);
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    let options = AdminOptions::new().operation_timeout(Some(remaining));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(|e| ClientError::kafka(format!("cannot create topic {topic}"), e))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic, "created the state-log topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(ClientError::kafka(
                    format!("cannot create topic {topic}"),
                    KafkaError::AdminOp(code),
                ));
            }
        }
    }
    Ok(())
}

/// The reader: applies every record in order and publishes how far it got.
fn read_loop(
    consumer: &BaseConsumer,
    topic: &str,
    mut apply: Box<dyn FnMut(LogRecord) + Send>,
    progress: &watch::Sender<Progress>,
    stop: &AtomicBool,
) {
    let advance = |next: i64| {
        progress.send_if_modified(|p| {
            let moved = next > p.next_offset;
            if moved {
                p.next_offset = next;
            }
            moved
        });
    };
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(READER_POLL) {
            Some(Ok(m)) => {
                let offset = m.offset();
                // Offsets only increase: a record at or below one applied is a re-read
                // (after an offset reset) and already part of the state.
                if offset < progress.borrow().next_offset {
                    continue;
                }
                apply(LogRecord {
                    offset,
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                });
                advance(offset.saturating_add(1));
                continue;
            }
            None | Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) => {
                tracing::error!(topic, error = %e, "the state-log reader stopped on a fatal error");
                progress.send_modify(|p| p.stopped = Some(e.to_string()));
                return;
            }
            Some(Err(e)) => {
                // Transient (broker restart, leader change): librdkafka retries.
                tracing::warn!(topic, error = %e, "state-log reader error; retrying");
            }
        }
        // While idle, the consumer position also covers what is never delivered
        // (control records), so a log ending in one still counts as fully applied.
        if let Ok(positions) = consumer.position()
            && let Some(p) = positions.find_partition(topic, 0)
            && let Offset::Offset(next) = p.offset()
        {
            advance(next);
        }
    }
}
