//! The audit trail's writer: every event goes to the internal topic `_medulla_audit`
//! (one partition, one JSON record per event) and is fsynced — whatever the fsync
//! policy — before the operation it records may proceed.
//!
//! Callers queue an event and wait; one writer task takes everything queued, appends it
//! as one batch and fsyncs once, so a burst of events costs one write. The queue is
//! bounded ([`limits::AUDIT_QUEUE_MAX`]); a caller that cannot queue or whose event is
//! not durable in time gets an [`AuditError`], and its operation fails.
//!
//! The topic is created at start with `cleanup.policy=delete` and a retention of six
//! years (HIPAA's retention of security documentation); an operator may change its
//! configs like any topic's, but no client may produce to it, delete it or delete its
//! records ([`is_protected`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use medulla_auth::audit::{AUDIT_TOPIC, AuditError, AuditEvent};
use medulla_log::{AppendOrigin, LogError, LogManager};
use tokio::sync::{mpsc, oneshot};

use crate::limits;

/// Default `retention.ms` of the audit topic: six years.
pub const AUDIT_RETENTION_MS: i64 = 6 * 365 * 24 * 3600 * 1000 + 2 * 24 * 3600 * 1000;

/// Whether clients must not produce to, delete, or delete records of `topic`.
pub fn is_protected(topic: &str) -> bool {
    topic == AUDIT_TOPIC
}

type Waiter = oneshot::Sender<Result<(), AuditError>>;

/// A handle to the audit writer. Clone freely.
#[derive(Clone)]
pub struct AuditLog {
    /// Encoded events and who waits for each.
    queue: mpsc::Sender<(Bytes, Waiter)>,
}

impl AuditLog {
    /// Creates the audit topic unless it exists and starts the writer task, which ends
    /// (letting go of the log) when every handle is dropped.
    pub fn open(log: Arc<LogManager>) -> Result<(AuditLog, tokio::task::JoinHandle<()>), LogError> {
        ensure_topic(&log)?;
        let (queue, rx) = mpsc::channel(limits::AUDIT_QUEUE_MAX);
        let writer = tokio::spawn(write_loop(log, rx));
        Ok((AuditLog { queue }, writer))
    }

    /// Records `event` and returns once it is durable.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        let (done, wait) = oneshot::channel();
        let queued = self
            .queue
            .send_timeout(
                (encode(event), done),
                Duration::from_millis(limits::AUDIT_ENQUEUE_WAIT_MS),
            )
            .await;
        if queued.is_err() {
            return Err(AuditError(format!(
                "the audit queue stayed full ({} events) for {} ms",
                limits::AUDIT_QUEUE_MAX,
                limits::AUDIT_ENQUEUE_WAIT_MS
            )));
        }
        match tokio::time::timeout(Duration::from_millis(limits::AUDIT_DURABLE_WAIT_MS), wait).await
        {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(AuditError("the audit writer stopped".to_owned())),
            Err(_) => Err(AuditError(format!(
                "the audit event was not durable within {} ms",
                limits::AUDIT_DURABLE_WAIT_MS
            ))),
        }
    }
}

fn ensure_topic(log: &LogManager) -> Result<(), LogError> {
    if log.topic(AUDIT_TOPIC).is_some() {
        return Ok(());
    }
    crate::fds::check_room(1).map_err(|e| LogError::Io(std::io::Error::other(e)))?;
    let configs = BTreeMap::from([
        ("cleanup.policy".to_owned(), "delete".to_owned()),
        ("retention.ms".to_owned(), AUDIT_RETENTION_MS.to_string()),
    ]);
    match log.create_topic(AUDIT_TOPIC, 1, &configs, false) {
        Ok(_) | Err(LogError::TopicAlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes everything queued (up to a batch's bytes), writes it as one fsynced batch,
/// answers every waiter; until the queue closes.
async fn write_loop(log: Arc<LogManager>, mut rx: mpsc::Receiver<(Bytes, Waiter)>) {
    let mut carry: Option<(Bytes, Waiter)> = None;
    loop {
        let first = match carry.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        let mut records = Vec::new();
        let mut waiters = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some((value, waiter)) = next.take() {
            if !records.is_empty() && bytes + value.len() > limits::AUDIT_BATCH_BYTES_MAX {
                // It starts the next batch.
                carry = Some((value, waiter));
                break;
            }
            bytes += value.len();
            records.push(value);
            waiters.push(waiter);
            next = rx.try_recv().ok();
        }
        let log = log.clone();
        let written = tokio::task::spawn_blocking(move || write(&log, records)).await;
        let result = match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot write the audit trail; audited operations fail until it can");
                Err(AuditError(e.to_string()))
            }
            Err(e) => Err(AuditError(format!("audit write task failed: {e}"))),
        };
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
    }
}

/// The event's JSON, with every text field cut to [`limits::AUDIT_FIELD_BYTES_MAX`].
fn encode(mut event: AuditEvent) -> Bytes {
    for field in [
        &mut event.principal,
        &mut event.client,
        &mut event.source,
        &mut event.action,
        &mut event.resource,
        &mut event.operation,
        &mut event.request_id,
        &mut event.detail,
    ] {
        cut(field, limits::AUDIT_FIELD_BYTES_MAX);
    }
    // Serialising a struct of strings and enums cannot fail.
    Bytes::from(serde_json::to_vec(&event).unwrap_or_default())
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
fn cut(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
}

fn write(log: &LogManager, values: Vec<Bytes>) -> Result<(), LogError> {
    let partition = log
        .partition(AUDIT_TOPIC, 0)
        .ok_or_else(|| LogError::UnknownTopic(AUDIT_TOPIC.to_owned()))?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let records = values.into_iter().map(|v| (None, Some(v)));
    let batch = crate::internal_topics::encode_records(records, now_ms, None)?;
    let info = partition.append_from(&batch, AppendOrigin::Coordinator)?;
    partition.sync_to(info.last_offset + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal_topics::open_test_log;
    use medulla_auth::audit::{Category, Outcome};

    #[tokio::test]
    async fn events_are_written_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_test_log(dir.path());
        let (audit, _writer) = AuditLog::open(log.clone()).unwrap();
        let mut waits = Vec::new();
        for i in 0..50 {
            let mut e = AuditEvent::now(Category::Change, Outcome::Success);
            e.detail = format!("event {i}");
            let audit = audit.clone();
            waits.push(tokio::spawn(async move { audit.record(e).await }));
        }
        for w in waits {
            w.await.unwrap().unwrap();
        }
        let part = log.partition(AUDIT_TOPIC, 0).unwrap();
        assert_eq!(part.log_end_offset(), 50);
        drop(part);
        // The writer task lets go of the log once every handle is gone.
        drop(audit);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&log) > 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "the writer kept the log"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        log.close().unwrap();
        drop(log);
        let log = open_test_log(dir.path());
        assert_eq!(log.partition(AUDIT_TOPIC, 0).unwrap().log_end_offset(), 50);
        let meta = log.topic(AUDIT_TOPIC).unwrap();
        assert_eq!(meta.config.retention_ms, AUDIT_RETENTION_MS);
    }

    #[tokio::test]
    async fn a_long_field_is_cut_and_the_event_still_written() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_test_log(dir.path());
        let (audit, _writer) = AuditLog::open(log.clone()).unwrap();
        let mut e = AuditEvent::now(Category::Authentication, Outcome::Failure);
        e.detail = "é".repeat(100_000);
        audit.record(e).await.unwrap();
        let bytes = log
            .partition(AUDIT_TOPIC, 0)
            .unwrap()
            .read(0, 1 << 20, true)
            .unwrap();
        assert!(bytes.len() < 2 * limits::AUDIT_FIELD_BYTES_MAX);
    }

    #[tokio::test]
    async fn a_write_that_fails_fails_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let log = open_test_log(dir.path());
        let (audit, _writer) = AuditLog::open(log.clone()).unwrap();
        audit
            .record(AuditEvent::now(Category::Change, Outcome::Success))
            .await
            .unwrap();
        // The partition goes away under the writer (as if its storage were lost).
        log.delete_topic(AUDIT_TOPIC).unwrap();
        let error = audit
            .record(AuditEvent::now(Category::Change, Outcome::Success))
            .await
            .unwrap_err();
        assert!(!error.0.is_empty());
    }

    #[test]
    fn cut_keeps_char_boundaries() {
        let mut s = "aé".repeat(10);
        cut(&mut s, 6);
        assert!(s.len() <= 6, "{s}");
        assert!(s.ends_with('…'));
    }
}
