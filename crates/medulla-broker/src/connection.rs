//! One client connection: read frames, run each request's first phase in order, queue
//! its reply, write replies in request order.
//!
//! The reader and the writer are two halves joined by a bounded queue of pending
//! replies (`medulla.connection.inflight.max`): when it is full the reader stops
//! reading, which pushes back on the client through TCP. A malformed or oversized frame
//! ends this connection only, with a log line.
//!
//! A Fetch reply is a list of chunks ([`Chunk`]): encoded bytes, written as they are,
//! and ranges of segment files. On a zero-copy connection (plaintext TCP) a file range
//! goes from the page cache to the socket with sendfile(2), driven by the socket's
//! readiness; otherwise (a transport that must see the bytes, such as TLS) it is read
//! into memory on a blocking thread and written like the rest.

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use kafka_protocol::messages::ApiKey;
use medulla_log::FileSlice;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::frame::{self, Chunk, Decoded};
use crate::handlers::{self, Reply, Response, api_versions};
use crate::session::Session;

/// A reply slot in the write queue: ready bytes, or a task computing the reply's chunks.
/// A Fetch reply carries the connection's fetch permit until it is written.
enum Slot {
    Ready(bytes::Bytes),
    Pending(JoinHandle<Option<(Vec<Chunk>, Option<OwnedSemaphorePermit>)>>),
}

/// Why a reply could not be written. Either way the connection closes: a client whose
/// frame stopped short cannot find the next one.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// The socket failed, usually because the client went away.
    #[error("write failed: {0}")]
    Socket(io::Error),
    /// The records of a file range could not be read or sent.
    #[error("cannot send records: {0}")]
    File(String),
}

/// Where replies are written: any byte stream, and for plaintext TCP the socket itself,
/// which sendfile(2) can write file ranges to.
trait ReplySink: AsyncWrite + Unpin + Send {
    /// The TCP socket, when bytes written to it go to the client as they are.
    fn tcp(&self) -> Option<&TcpStream>;
}

impl ReplySink for OwnedWriteHalf {
    fn tcp(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

impl<S: AsyncWrite + Send> ReplySink for tokio::io::WriteHalf<S> {
    fn tcp(&self) -> Option<&TcpStream> {
        None
    }
}

/// Serves a plaintext TCP connection until the client leaves, a frame is bad, or the
/// broker shuts down. With `zero_copy`, fetched records go from their segment files to
/// the socket with sendfile(2); without, they are copied through memory.
pub async fn serve(broker: Broker, stream: TcpStream, session: Session, zero_copy: bool) {
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    serve_halves(broker, reader, writer, session, zero_copy).await;
}

/// Serves a connection over a transport that must see every byte (TLS): fetched
/// records are copied through memory.
pub async fn serve_stream<S>(broker: Broker, stream: S, session: Session)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    serve_halves(broker, reader, writer, session, false).await;
}

async fn serve_halves<R, W>(
    broker: Broker,
    reader: R,
    mut writer: W,
    session: Session,
    zero_copy: bool,
) where
    R: AsyncRead + Unpin + Send,
    W: ReplySink,
{
    let peer = session.peer;
    let (tx, mut rx) = mpsc::channel::<Slot>(broker.config().inflight_per_connection_max);
    // One Fetch at a time per connection holds its data (up to fetch.max.bytes) from the
    // read until the client has it, as Kafka serves one request per connection at a time.
    let fetch_gate = Arc::new(Semaphore::new(1));

    // The writer runs inside this connection's task (joined below, not spawned), so
    // aborting the task at shutdown stops both halves.
    let write_half = async move {
        while let Some(slot) = rx.recv().await {
            let written = match slot {
                Slot::Ready(b) => writer.write_all(&b).await.map_err(WriteError::Socket),
                Slot::Pending(handle) => match handle.await {
                    Ok(Some((chunks, permit))) => {
                        let written = write_chunks(&mut writer, &chunks, zero_copy).await;
                        drop(permit);
                        written
                    }
                    // A reply that cannot be produced would desynchronise the client's
                    // correlation ids: close instead (the cause is already logged).
                    Ok(None) => return,
                    Err(e) => {
                        tracing::error!(%peer, error = %e, "request task failed; closing connection");
                        return;
                    }
                },
            };
            match written {
                Ok(()) => {}
                Err(WriteError::Socket(e)) => {
                    tracing::debug!(%peer, error = %e, "write failed");
                    return;
                }
                Err(e @ WriteError::File(_)) => {
                    tracing::error!(%peer, error = %e, "closing connection");
                    return;
                }
            }
        }
        let _ = writer.shutdown().await;
    };
    let read_half = read_requests(broker, reader, tx, fetch_gate, session);
    tokio::join!(read_half, write_half);
}

/// Writes one reply's chunks in order.
async fn write_chunks<W: ReplySink>(
    writer: &mut W,
    chunks: &[Chunk],
    zero_copy: bool,
) -> Result<(), WriteError> {
    for chunk in chunks {
        match chunk {
            Chunk::Bytes(b) => writer.write_all(b).await.map_err(WriteError::Socket)?,
            Chunk::File(slice) if zero_copy && writer.tcp().is_some() => {
                if let Some(tcp) = writer.tcp() {
                    send_file(tcp, slice).await?
                }
            }
            Chunk::File(slice) => {
                // Segment reads are blocking file I/O: keep them off the async workers.
                let slice = slice.clone();
                let bytes = match tokio::task::spawn_blocking(move || slice.read_to_bytes()).await {
                    Ok(Ok(bytes)) => bytes,
                    Ok(Err(e)) => return Err(WriteError::File(e.to_string())),
                    Err(e) => return Err(WriteError::File(format!("read task failed: {e}"))),
                };
                writer.write_all(&bytes).await.map_err(WriteError::Socket)?;
            }
        }
    }
    Ok(())
}

/// Sends `slice` from its file to `stream` with sendfile(2), as the socket has room.
async fn send_file(stream: &TcpStream, slice: &FileSlice) -> Result<(), WriteError> {
    let mut position = slice.position();
    let end = position + slice.len_bytes() as u64;
    while position < end {
        stream.writable().await.map_err(WriteError::Socket)?;
        let count = usize::try_from(end - position).unwrap_or(usize::MAX);
        // The kernel moves `position` past what it sent.
        let sent = stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, slice.file(), Some(&mut position), count)
                .map_err(io::Error::from)
        });
        match sent {
            // The file ends before the range does: the frame can never be completed.
            Ok(0) => {
                return Err(WriteError::File(format!(
                    "segment file ended at {position}, inside a range that ends at {end}"
                )));
            }
            Ok(_) => {}
            // The socket is full (readiness is cleared; wait again), or a signal.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) if is_disconnect(&e) => return Err(WriteError::Socket(e)),
            Err(e) => return Err(WriteError::File(format!("sendfile: {e}"))),
        }
    }
    Ok(())
}

/// The peer went away (as opposed to a failure on the file side of sendfile).
fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
    )
}

/// Frames up to this size are read into the connection's ordinary buffer without
/// touching `queued.max.request.bytes`; larger ones take their size from it first.
const LARGE_FRAME_BYTES: usize = 64 * 1024;

/// Reads frames and runs each request's first phase, in order, queueing the replies.
async fn read_requests<R: AsyncRead + Unpin>(
    broker: Broker,
    mut reader: R,
    tx: mpsc::Sender<Slot>,
    fetch_gate: Arc<Semaphore>,
    mut session: Session,
) {
    let peer = session.peer;
    let idle = std::time::Duration::from_millis(broker.config().connections_idle_max_ms);

    let max_bytes = broker.config().request_bytes_max;
    let mut shutdown = broker.shutdown_signal();
    let mut buf = BytesMut::with_capacity(8 * 1024);
    // This connection's share of `queued.max.request.bytes` for the large frame it is
    // reading (held from its size prefix until its first phase has run).
    let mut frame_memory: Option<OwnedSemaphorePermit> = None;
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
                    // SASL listeners: nothing but authentication before it, or after the
                    // session expired (KIP-368); Kafka closes the connection.
                    if let Err(refusal) =
                        handlers::sasl::gate(&session, api, std::time::Instant::now())
                    {
                        tracing::info!(%peer, ?api, ?refusal, "closing connection");
                        break 'read;
                    }
                    let reply = handlers::dispatch(&broker, &mut session, &header, api, body).await;
                    // A failed authentication is answered after a delay, then the
                    // connection closes.
                    if let Some(delay) = session.sasl.close_after.take() {
                        if let Reply::Now(response) = reply
                            && let Ok(b) =
                                frame::encode_response(api, version, correlation_id, response)
                        {
                            tokio::select! {
                                _ = tokio::time::sleep(delay) => {}
                                _ = shutdown.changed() => break 'read,
                            }
                            let _ = tx.send(Slot::Ready(b)).await;
                        }
                        break 'read;
                    }
                    match reply {
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
                                    .map(|chunks| (chunks, permit))
                            }))
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    break 'read;
                }
            };
            // The frame has been handled (a Produce appended): its bytes are released.
            frame_memory = None;
            if tx.send(slot).await.is_err() {
                break 'read;
            }
        }
        // Room for the rest of a started frame at once (its size is known and within
        // `max_bytes`), so a large Produce is read into one allocation instead of being
        // copied again at every growth step; 64 KiB when no frame has started.
        let want = match buf.get(..4) {
            Some(prefix) => {
                let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
                let frame = 4 + size.max(0) as usize;
                // A frame larger than the ordinary read buffer first takes its bytes from
                // the broker-wide budget: when it is spent, this connection waits here
                // (and its client with it) until others' frames are handled.
                if frame > LARGE_FRAME_BYTES
                    && frame_memory.is_none()
                    && let Some(budget) = broker.request_memory()
                {
                    let permits = u32::try_from(frame).unwrap_or(u32::MAX);
                    tokio::select! {
                        permit = Arc::clone(budget).acquire_many_owned(permits) => match permit {
                            Ok(p) => frame_memory = Some(p),
                            Err(_) => break 'read,
                        },
                        _ = shutdown.changed() => break 'read,
                    }
                }
                frame.saturating_sub(buf.len())
            }
            None => 64 * 1024,
        };
        if buf.capacity() - buf.len() < want.max(4096) {
            buf.reserve(want.max(64 * 1024));
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
    response: Response,
    peer: SocketAddr,
) -> Option<Vec<Chunk>> {
    match frame::encode_response_chunked(
        api,
        version,
        correlation_id,
        response.body,
        response.files,
    ) {
        Ok(chunks) => Some(chunks),
        Err(e) => {
            tracing::error!(%peer, ?api, version, error = %e, "cannot encode response");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;
    use tokio::net::TcpListener;

    use super::*;
    use crate::internal_topics::{encode_batch, open_test_log};

    /// A log of about 3 MiB in one partition, and its slices: more than a socket buffer
    /// holds, so writes stop part-way and wait for the reader.
    fn slices(dir: &std::path::Path) -> (Arc<medulla_log::LogManager>, Vec<FileSlice>) {
        let log = open_test_log(dir);
        log.create_topic("t", 1, &BTreeMap::new(), false).unwrap();
        let part = log.partition("t", 0).unwrap();
        // Timestamps of now: older ones would roll a segment per batch (segment.ms).
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        for b in 0..24u8 {
            let records: Vec<_> = (0..32u8)
                .map(|i| {
                    let value = vec![b.wrapping_mul(31).wrapping_add(i); 4000];
                    (Bytes::from(vec![b, i]), Some(Bytes::from(value)))
                })
                .collect();
            part.append(&encode_batch(&records, now_ms, None).unwrap())
                .unwrap();
        }
        let first = part.read_slice(0, 2 << 20, true, None).unwrap().unwrap();
        let rest = part
            .read_slice(first.next_offset(), 8 << 20, true, None)
            .unwrap()
            .unwrap();
        assert_eq!(rest.next_offset(), part.log_end_offset());
        (log, vec![first, rest])
    }

    /// A connected pair: the server's write half and a task reading the client side to
    /// its end.
    async fn pair() -> (OwnedWriteHalf, JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        let (_, writer) = server.into_split();
        (writer, reading)
    }

    #[tokio::test]
    async fn file_ranges_arrive_whole_with_sendfile_and_copied() {
        let dir = tempfile::tempdir().unwrap();
        let (_log, files) = slices(dir.path());
        let chunks = vec![
            Chunk::Bytes(Bytes::from_static(b"head")),
            Chunk::File(files[0].clone()),
            Chunk::Bytes(Bytes::from_static(b"middle")),
            Chunk::File(files[1].clone()),
            Chunk::Bytes(Bytes::from_static(b"tail")),
        ];
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&files[0].read_to_bytes().unwrap());
        expected.extend_from_slice(b"middle");
        expected.extend_from_slice(&files[1].read_to_bytes().unwrap());
        expected.extend_from_slice(b"tail");
        assert!(expected.len() > 3_000_000);
        for zero_copy in [true, false] {
            let (mut writer, reading) = pair().await;
            write_chunks(&mut writer, &chunks, zero_copy).await.unwrap();
            drop(writer);
            let got = reading.await.unwrap();
            assert_eq!(got.len(), expected.len(), "zero_copy {zero_copy}");
            assert!(got == expected, "zero_copy {zero_copy}: bytes differ");
        }
    }

    #[tokio::test]
    async fn a_file_that_ends_inside_its_range_fails_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let (_log, files) = slices(dir.path());
        // Nothing in the log shrinks a segment under a reader; do it behind its back.
        let segment = std::fs::read_dir(dir.path().join("topics").join("t").join("0"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "log"))
            .unwrap();
        let end = files[1].position() + files[1].len_bytes() as u64;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&segment)
            .unwrap()
            .set_len(end - 1000)
            .unwrap();
        for zero_copy in [true, false] {
            let (mut writer, reading) = pair().await;
            let chunks = [Chunk::File(files[1].clone())];
            let error = write_chunks(&mut writer, &chunks, zero_copy)
                .await
                .unwrap_err();
            assert!(matches!(error, WriteError::File(_)), "{error:?}");
            drop(writer);
            let got = reading.await.unwrap();
            assert!(got.len() < files[1].len_bytes(), "zero_copy {zero_copy}");
        }
    }
}
