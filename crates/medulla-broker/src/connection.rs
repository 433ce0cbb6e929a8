//! One client connection: read frames, run each request's first phase in order, queue
//! its reply, write replies in request order.
//!
//! The reader and the writer are two halves joined by a bounded queue of pending
//! replies (`medulla.connection.inflight.max`): when it is full the reader stops
//! reading, which pushes back on the client through TCP. A malformed or oversized frame
//! ends this connection only, with a log line.

use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::ApiKey;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::frame::{self, Decoded};
use crate::handlers::{self, Reply, api_versions};

/// A reply slot in the write queue: ready bytes, or a task computing them. A Fetch reply
/// carries the connection's fetch permit until it is written.
enum Slot {
    Ready(bytes::Bytes),
    Pending(JoinHandle<Option<(bytes::Bytes, Option<OwnedSemaphorePermit>)>>),
}

/// Serves `stream` until the client leaves, a frame is bad, or the broker shuts down.
pub async fn serve(broker: Broker, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Slot>(broker.config().inflight_per_connection_max);
    // One Fetch at a time per connection holds its data (up to fetch.max.bytes) from the
    // read until the client has it, as Kafka serves one request per connection at a time.
    let fetch_gate = Arc::new(Semaphore::new(1));

    // The writer runs inside this connection's task (joined below, not spawned), so
    // aborting the task at shutdown stops both halves.
    let write_half = async move {
        while let Some(slot) = rx.recv().await {
            let (bytes, _permit) = match slot {
                Slot::Ready(b) => (b, None),
                Slot::Pending(handle) => match handle.await {
                    Ok(Some(reply)) => reply,
                    // A reply that cannot be produced would desynchronise the client's
                    // correlation ids: close instead (the cause is already logged).
                    Ok(None) => return,
                    Err(e) => {
                        tracing::error!(%peer, error = %e, "request task failed; closing connection");
                        return;
                    }
                },
            };
            if let Err(e) = writer.write_all(&bytes).await {
                tracing::debug!(%peer, error = %e, "write failed");
                return;
            }
        }
        let _ = writer.shutdown().await;
    };
    let read_half = read_requests(broker, reader, tx, fetch_gate, peer);
    tokio::join!(read_half, write_half);
}

/// Reads frames and runs each request's first phase, in order, queueing the replies.
async fn read_requests(
    broker: Broker,
    mut reader: tokio::net::tcp::OwnedReadHalf,
    tx: mpsc::Sender<Slot>,
    fetch_gate: Arc<Semaphore>,
    peer: SocketAddr,
) {
    let idle = std::time::Duration::from_millis(broker.config().connections_idle_max_ms);

    let max_bytes = broker.config().request_bytes_max;
    let mut shutdown = broker.shutdown_signal();
    let mut buf = BytesMut::with_capacity(8 * 1024);
    'read: loop {
        // Take every whole frame already buffered.
        loop {
            let len = match frame::check_frame(&buf, max_bytes) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    break 'read;
                }
            };
            buf.advance(4);
            let body = buf.split_to(len).freeze();
            let slot = match frame::decode_request(body) {
                Ok(Decoded::UnsupportedApiVersions { correlation_id }) => {
                    match frame::encode_plain(
                        0,
                        0,
                        correlation_id,
                        &api_versions::unsupported_version(),
                    ) {
                        Ok(b) => Slot::Ready(b),
                        Err(e) => {
                            tracing::error!(%peer, error = %e, "cannot encode ApiVersions fallback");
                            break 'read;
                        }
                    }
                }
                Ok(Decoded::Request { header, api, body }) => {
                    let version = header.request_api_version;
                    let correlation_id = header.correlation_id;
                    match handlers::dispatch(&broker, &header, api, body, peer).await {
                        Reply::None => continue,
                        Reply::Close => {
                            tracing::info!(%peer, "closing connection after a failed acks=0 produce");
                            break 'read;
                        }
                        Reply::Now(response) => {
                            match frame::encode_response(api, version, correlation_id, response) {
                                Ok(b) => Slot::Ready(b),
                                Err(e) => {
                                    tracing::error!(%peer, ?api, version, error = %e, "cannot encode response; closing connection");
                                    break 'read;
                                }
                            }
                        }
                        Reply::Later(pending) => {
                            let gate = (api == ApiKey::Fetch).then(|| Arc::clone(&fetch_gate));
                            Slot::Pending(tokio::spawn(async move {
                                let permit = match gate {
                                    Some(g) => g.acquire_owned().await.ok(),
                                    None => None,
                                };
                                let response = pending.await;
                                encode_or_log(api, version, correlation_id, response, peer)
                                    .map(|b| (b, permit))
                            }))
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    break 'read;
                }
            };
            if tx.send(slot).await.is_err() {
                break 'read;
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        // Kafka's connections.max.idle.ms: a connection that sends nothing for that long
        // is closed (a long poll is at most FETCH_WAIT_MS_MAX, far shorter).
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
            },
            _ = tokio::time::sleep(idle) => {
                tracing::debug!(%peer, "closing idle connection");
                break;
            }
            _ = shutdown.changed() => break,
        }
    }
    // Dropping `tx` lets the writer finish the replies in flight, then close.
}

fn encode_or_log(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: kafka_protocol::messages::ResponseKind,
    peer: SocketAddr,
) -> Option<bytes::Bytes> {
    match frame::encode_response(api, version, correlation_id, response) {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::error!(%peer, ?api, version, error = %e, "cannot encode response");
            None
        }
    }
}
