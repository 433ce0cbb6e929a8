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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::frame::{self, Decoded};
use crate::handlers::{self, Reply, api_versions};

/// A reply slot in the write queue: ready bytes, or a task computing them.
enum Slot {
    Ready(bytes::Bytes),
    Pending(JoinHandle<Option<bytes::Bytes>>),
}

/// Serves `stream` until the client leaves, a frame is bad, or the broker shuts down.
pub async fn serve(broker: Broker, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Slot>(broker.config().inflight_per_connection_max);

    let write_task = tokio::spawn(async move {
        while let Some(slot) = rx.recv().await {
            let bytes = match slot {
                Slot::Ready(b) => b,
                Slot::Pending(handle) => match handle.await {
                    Ok(Some(b)) => b,
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
    });

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
                    match handlers::dispatch(&broker, &header, api, body).await {
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
                        Reply::Later(pending) => Slot::Pending(tokio::spawn(async move {
                            let response = pending.await;
                            encode_or_log(api, version, correlation_id, response, peer)
                        })),
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
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "read failed");
                    break;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
    drop(tx);
    // Let in-flight replies finish and be written before the socket closes.
    let _ = write_task.await;
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
