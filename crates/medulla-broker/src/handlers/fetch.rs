//! Fetch: byte ranges of segment files, with long polling (`max_wait_ms` / `min_bytes`),
//! `max_bytes` and per-partition limits.
//!
//! Isolation (KIP-98): a `read_committed` fetch (isolation level 1) never gets data at or
//! past the partition's last stable offset (the first offset of its oldest open
//! transaction), and gets the aborted transactions overlapping the data it does get, so
//! the client can drop their records. `min_bytes` counts only that visible data; the
//! long poll wakes on every append, markers included, so a fetch waiting at the last
//! stable offset returns as soon as a marker moves it. Every fetch reports the last
//! stable offset; the high watermark stays the log end.
//!
//! Records are not read here: each partition's answer is a [`FileSlice`] of its segment
//! file, placed in the response as a placeholder ([`FileParts`]) that the connection
//! sends from the file (sendfile) or copies, as its transport allows.
//!
//! Fetch sessions (KIP-227) are answered sessionlessly: every response carries session
//! id 0, which tells the client the broker did not create a session, so it keeps sending
//! full fetch requests. An incremental fetch naming a session (which we never handed
//! out) gets FETCH_SESSION_ID_NOT_FOUND, as from a broker that evicted it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use medulla_log::{FileSlice, LogError, PartitionLog};

use crate::broker::Broker;
use crate::error::kafka_code;
use crate::frame::FileParts;
use crate::handlers::Response;
use crate::limits;

/// Kafka's `IsolationLevel.READ_COMMITTED`.
const READ_COMMITTED: i8 = 1;

/// One requested partition, resolved.
struct Wanted {
    topic_index: usize,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
    log: Result<Arc<PartitionLog>, i16>,
}

/// Runs Fetch to completion (this is a second-phase future: it has no side effects).
pub async fn handle(broker: Broker, request: FetchRequest, version: i16) -> Response {
    let (body, files) = fetch(&broker, request, version).await;
    Response {
        body: ResponseKind::Fetch(body),
        files,
    }
}

async fn fetch(broker: &Broker, request: FetchRequest, version: i16) -> (FetchResponse, FileParts) {
    if version >= 7 && request.session_id != 0 {
        let body =
            FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code());
        return (body, FileParts::default());
    }
    let log = broker.log();
    let mut topics: Vec<FetchableTopicResponse> = Vec::with_capacity(request.topics.len());
    let mut wanted = Vec::new();
    for topic in &request.topics {
        // v13+ names topics by id only.
        let (name, meta) = if version >= 13 {
            let meta = log.topic_by_id(topic.topic_id);
            (meta.as_ref().map(|m| m.name.clone()), meta)
        } else {
            (Some(topic.topic.0.to_string()), log.topic(&topic.topic.0))
        };
        let topic_index = topics.len();
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_string(
                    name.clone().unwrap_or_default(),
                )))
                .with_topic_id(topic.topic_id),
        );
        for p in &topic.partitions {
            let log = match (&meta, &name) {
                (None, _) if version >= 13 => Err(ResponseError::UnknownTopicId.code()),
                (Some(_), Some(name)) => log
                    .partition(name, p.partition)
                    .ok_or(ResponseError::UnknownTopicOrPartition.code()),
                _ => Err(ResponseError::UnknownTopicOrPartition.code()),
            };
            wanted.push(Wanted {
                topic_index,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: usize::try_from(p.partition_max_bytes.max(0)).unwrap_or(0),
                log,
            });
        }
    }

    let max_bytes = if version >= 3 {
        usize::try_from(request.max_bytes.max(0))
            .unwrap_or(0)
            .min(limits::FETCH_RESPONSE_BYTES_MAX)
    } else {
        limits::FETCH_RESPONSE_BYTES_MAX
    };
    let min_bytes = usize::try_from(request.min_bytes.max(0)).unwrap_or(0);
    let max_wait = Duration::from_millis(
        u64::try_from(request.max_wait_ms.max(0))
            .unwrap_or(0)
            .min(limits::FETCH_WAIT_MS_MAX),
    );
    let deadline = tokio::time::Instant::now() + max_wait;

    // Subscribe before the first read so no append between read and wait is missed.
    let mut watches: Vec<_> = wanted
        .iter()
        .filter_map(|w| w.log.as_ref().ok().map(|l| l.watch_end()))
        .collect();
    let wanted = Arc::new(wanted);
    let read_committed = request.isolation_level == READ_COMMITTED;
    let mut shutdown = broker.shutdown_signal();
    loop {
        // Re-arm before reading: an append that lands during the read then wakes the wait
        // below instead of being forgotten.
        for w in &mut watches {
            w.mark_unchanged();
        }
        // Segment reads are blocking file I/O: keep them off the async workers.
        let reading = Arc::clone(&wanted);
        let (parts, files, total, any_error) = match tokio::task::spawn_blocking(move || {
            read_all(&reading, max_bytes, read_committed)
        })
        .await
        {
            Ok(read) => read,
            Err(e) => {
                tracing::error!(error = %e, "fetch read task failed");
                let body = FetchResponse::default()
                    .with_error_code(ResponseError::UnknownServerError.code());
                return (body, FileParts::default());
            }
        };
        let done = total >= min_bytes.max(1) && total > 0
            || any_error
            || min_bytes == 0
            || tokio::time::Instant::now() >= deadline
            || *shutdown.borrow()
            || watches.is_empty();
        if done {
            for (w, data) in wanted.iter().zip(parts) {
                topics[w.topic_index].partitions.push(data);
            }
            return (FetchResponse::default().with_responses(topics), files);
        }
        tracing::debug!(
            partitions = wanted.len(),
            total,
            min_bytes,
            "fetch waiting for data"
        );
        let changed = futures_any(&mut watches);
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Waits until any watched log end moves.
async fn futures_any(watches: &mut [tokio::sync::watch::Receiver<i64>]) {
    let futures: Vec<_> = watches.iter_mut().map(|w| Box::pin(w.changed())).collect();
    // A closed channel (partition deleted) resolves at once with an error: fine, we re-read.
    let _ = futures_select_all(futures).await;
}

async fn futures_select_all<F: std::future::Future + Unpin>(mut futures: Vec<F>) -> F::Output {
    std::future::poll_fn(move |cx| {
        for f in futures.iter_mut() {
            if let std::task::Poll::Ready(out) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(out);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// The aborted transactions with records in `from..upper`, as a Fetch lists them.
fn aborted_transactions(log: &PartitionLog, from: i64, upper: i64) -> Vec<AbortedTransaction> {
    log.aborted_transactions(from, upper)
        .into_iter()
        .map(|a| {
            AbortedTransaction::default()
                .with_producer_id(ProducerId(a.producer_id))
                .with_first_offset(a.first_offset)
        })
        .collect()
}

/// Finds every wanted partition's records once (only below the last stable offset when
/// `read_committed`), as file ranges placed in `FileParts`. Returns the partition
/// responses, those ranges, the record bytes found, and whether any partition has an
/// error (which ends a long poll at once, as in Kafka).
fn read_all(
    wanted: &[Wanted],
    max_bytes: usize,
    read_committed: bool,
) -> (Vec<PartitionData>, FileParts, usize, bool) {
    let mut total = 0usize;
    let mut any_error = false;
    let mut files = FileParts::default();
    let mut out = Vec::with_capacity(wanted.len());
    for w in wanted {
        let data = PartitionData::default().with_partition_index(w.partition);
        let data = match &w.log {
            Err(code) => {
                any_error = true;
                data.with_error_code(*code)
                    .with_high_watermark(-1)
                    .with_last_stable_offset(-1)
                    .with_log_start_offset(-1)
                    .with_records(Some(Bytes::new()))
            }
            Ok(log) => {
                let remaining = max_bytes.saturating_sub(total);
                let limit = w.partition_max_bytes.min(remaining);
                // KIP-74: the first batch of the first non-empty partition is returned even
                // if it is larger than the limits, so a big batch never stalls a consumer.
                let min_one_batch = total == 0;
                let read = if limit == 0 && !min_one_batch {
                    Ok(None)
                } else {
                    // A read_committed reader sees nothing at or past the last stable offset.
                    let upper = read_committed.then(|| log.last_stable_offset());
                    log.read_slice(w.fetch_offset, limit, min_one_batch, upper)
                };
                // The watermarks are read after the data, so they are never below an
                // offset the response carries; the last stable offset before the high
                // watermark, so a marker landing in between cannot put it above.
                let lso = log.last_stable_offset();
                let hwm = log.log_end_offset();
                let base = data
                    .with_high_watermark(hwm)
                    .with_last_stable_offset(lso)
                    .with_log_start_offset(log.log_start_offset());
                match read.and_then(|slice| records(slice, &mut files)) {
                    Ok((records, end)) => {
                        total += records.len();
                        // Kafka: a read_committed answer always has the list (empty when
                        // nothing aborted overlaps the data); read_uncommitted has null.
                        let aborted = read_committed.then(|| match end {
                            Some(end) => aborted_transactions(log, w.fetch_offset, end),
                            None => Vec::new(),
                        });
                        base.with_records(Some(records))
                            .with_aborted_transactions(aborted)
                    }
                    Err(e) => {
                        any_error = true;
                        // Out of range and a topic deleted under the fetch are ordinary
                        // answers; anything else is worth an operator's attention.
                        if !matches!(
                            e,
                            LogError::OffsetOutOfRange { .. }
                                | LogError::UnknownTopic(_)
                                | LogError::UnknownPartition { .. }
                        ) {
                            tracing::error!(topic = log.topic(), partition = w.partition, error = %e, "read failed");
                        }
                        base.with_error_code(kafka_code(&e))
                            .with_records(Some(Bytes::new()))
                    }
                }
            }
        };
        out.push(data);
    }
    (out, files, total, any_error)
}

/// A partition's `records`: a placeholder for `slice` (or its bytes, should the
/// placeholders run out), and the offset after its last record.
fn records(
    slice: Option<FileSlice>,
    files: &mut FileParts,
) -> medulla_log::Result<(Bytes, Option<i64>)> {
    let Some(slice) = slice else {
        return Ok((Bytes::new(), None));
    };
    let end = slice.next_offset();
    // The range goes out from the file on the async workers: have the kernel start
    // reading what is not cached now, on this blocking thread, rather than there.
    let _ = rustix::fs::fadvise(
        slice.file(),
        slice.position(),
        std::num::NonZeroU64::new(slice.len_bytes() as u64),
        rustix::fs::Advice::WillNeed,
    );
    let records = match files.place(slice) {
        Ok(placeholder) => placeholder,
        Err(slice) => slice.read_to_bytes()?,
    };
    Ok((records, Some(end)))
}
