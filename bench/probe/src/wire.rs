//! The Kafka wire for `conns`: size-prefixed frames of kafka-protocol messages over a
//! tokio TCP stream, one request in flight per connection, and the walk over the record
//! batch headers of a fetched byte range (the only bytes read by hand: the batch header
//! fields at fixed positions, never a message codec).

use anyhow::{Context, anyhow, bail, ensure};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::limits::{CONNECT_TIMEOUT, RESPONSE_BYTES_MAX};

/// The client id every request carries.
const CLIENT_ID: &str = "medulla-bench";

/// One connection to a broker: requests go out one at a time, each answered before the
/// next is sent.
pub struct Connection {
    stream: TcpStream,
    correlation_id: i32,
}

impl Connection {
    /// Connects to `addr` (`HOST:PORT`), within [`CONNECT_TIMEOUT`].
    pub async fn connect(addr: &str) -> anyhow::Result<Connection> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("timed out connecting to {addr}"))?
            .with_context(|| format!("cannot connect to {addr}"))?;
        // Requests are small and each is answered before the next: Nagle would only
        // delay them.
        stream.set_nodelay(true).context("set TCP_NODELAY")?;
        Ok(Connection {
            stream,
            correlation_id: 0,
        })
    }

    /// Sends `request` at `version` and reads its response. The response frame is read
    /// into one buffer of its size (at most [`RESPONSE_BYTES_MAX`]), which the decoded
    /// response borrows from; it is freed when the response is dropped.
    pub async fn call<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> anyhow::Result<R::Response> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let frame = encode_request(request, version, self.correlation_id)?;
        self.stream
            .write_all(&frame)
            .await
            .context("cannot send the request")?;

        let size = self
            .stream
            .read_i32()
            .await
            .context("the broker closed the connection")?;
        let size = frame_size(size)?;
        let mut body = vec![0u8; size];
        self.stream
            .read_exact(&mut body)
            .await
            .context("the broker closed the connection mid-response")?;
        decode_response::<R>(Bytes::from(body), version, self.correlation_id)
    }
}

/// One request frame: size prefix, header, body.
pub fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
) -> anyhow::Result<BytesMut> {
    ensure!(
        R::VERSIONS.min <= version && version <= R::VERSIONS.max,
        "API key {} has no version {version} in kafka-protocol",
        R::KEY
    );
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)))
        .encode(&mut buf, R::header_version(version))
        .context("encode the request header")?;
    request
        .encode(&mut buf, version)
        .with_context(|| format!("encode API key {} v{version}", R::KEY))?;
    let size = i32::try_from(buf.len() - 4).context("request too large")?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}

/// Checks a response frame's size prefix.
fn frame_size(size: i32) -> anyhow::Result<usize> {
    let size = usize::try_from(size).map_err(|_| anyhow!("negative response size {size}"))?;
    if size > RESPONSE_BYTES_MAX {
        bail!("response frame of {size} bytes exceeds the limit of {RESPONSE_BYTES_MAX}");
    }
    Ok(size)
}

/// Decodes one response frame (without its size prefix) to the request sent with
/// `correlation_id` at `version`. Bytes after the response are ignored, as Kafka's own
/// clients ignore them.
pub fn decode_response<R: Request>(
    mut body: Bytes,
    version: i16,
    correlation_id: i32,
) -> anyhow::Result<R::Response> {
    let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .context("decode the response header")?;
    if header.correlation_id != correlation_id {
        bail!(
            "correlation id mismatch: sent {correlation_id}, got {}",
            header.correlation_id
        );
    }
    R::Response::decode(&mut body, version)
        .with_context(|| format!("decode the response to API key {} v{version}", R::KEY))
}

/// What the complete record batches at the start of a fetched byte range hold.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batches {
    /// Records in the complete batches (each batch's record count field).
    pub records: u64,
    /// Bytes of the complete batches, headers included.
    pub bytes: u64,
    /// The offset after the last complete batch; `None` if there was none.
    pub next_offset: Option<i64>,
}

/// Size of a RecordBatch v2 header, through the record count.
const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before a batch's `batchLength` field counts from: base offset and the length.
const BATCH_LENGTH_PREFIX_BYTES: usize = 12;

/// Walks the RecordBatch v2 headers of a fetched partition's records. A truncated batch
/// at the end (a broker may cut the last one at the size limit) is not counted and
/// stops the walk; anything else that is not a well-formed v2 batch header is an error.
///
/// Header layout: base offset i64 at 0, batch length i32 at 8 (bytes after this field),
/// magic i8 at 16, last offset delta i32 at 23, record count i32 at 57.
pub fn walk_batches(records: &[u8]) -> anyhow::Result<Batches> {
    let mut out = Batches::default();
    let mut rest = records;
    while rest.len() >= BATCH_HEADER_BYTES {
        let base_offset = i64::from_be_bytes(field(rest, 0));
        let length = i32::from_be_bytes(field(rest, 8));
        let size = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(BATCH_LENGTH_PREFIX_BYTES))
            .filter(|&s| s >= BATCH_HEADER_BYTES)
            .ok_or_else(|| anyhow!("batch at offset {base_offset} has length {length}"))?;
        if size > rest.len() {
            break;
        }
        let magic = rest[16];
        ensure!(
            magic == 2,
            "batch at offset {base_offset} has magic {magic}, not 2"
        );
        let last_offset_delta = i32::from_be_bytes(field(rest, 23));
        let count = i32::from_be_bytes(field(rest, 57));
        ensure!(
            last_offset_delta >= 0 && count >= 0,
            "batch at offset {base_offset}: last offset delta {last_offset_delta}, {count} records"
        );
        out.records += count as u64;
        out.bytes += size as u64;
        out.next_offset = Some(base_offset + i64::from(last_offset_delta) + 1);
        rest = &rest[size..];
    }
    Ok(out)
}

/// `N` bytes at `at` of a slice known to hold a whole batch header.
fn field<const N: usize>(header: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&header[at..at + N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// Record batches as a producer writes them, encoded by kafka-protocol: one batch
    /// per entry of `batches`, each of that many records.
    fn batches(base_offset: i64, batches: &[usize]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let mut offset = base_offset;
        for &n in batches {
            let records: Vec<Record> = (0..n)
                .map(|i| Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: 0,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: offset + i as i64,
                    // kafka-protocol starts a new batch where offset − sequence changes.
                    sequence: i as i32,
                    timestamp: 0,
                    key: None,
                    value: Some(Bytes::from_static(b"value")),
                    headers: Default::default(),
                })
                .collect();
            RecordBatchEncoder::encode(
                &mut out,
                &records,
                &RecordEncodeOptions {
                    version: 2,
                    compression: Compression::None,
                },
            )
            .unwrap();
            offset += n as i64;
        }
        out.to_vec()
    }

    #[test]
    fn empty_range_has_no_batch() {
        assert_eq!(walk_batches(&[]).unwrap(), Batches::default());
    }

    #[test]
    fn complete_batches_are_counted() {
        assert_eq!(walk_batches(&batches(0, &[3])).unwrap().records, 3);
        let bytes = batches(100, &[3, 1, 5]);
        let walked = walk_batches(&bytes).unwrap();
        assert_eq!(
            walked,
            Batches {
                records: 9,
                bytes: bytes.len() as u64,
                next_offset: Some(109),
            }
        );
    }

    #[test]
    fn a_truncated_last_batch_stops_the_walk() {
        let one = batches(0, &[2]);
        let two = batches(0, &[2, 4]);
        for cut in [one.len() + 1, one.len() + 20, two.len() - 1] {
            let walked = walk_batches(&two[..cut]).unwrap();
            assert_eq!(
                walked,
                Batches {
                    records: 2,
                    bytes: one.len() as u64,
                    next_offset: Some(2),
                },
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn malformed_headers_are_errors() {
        let mut bad_length = batches(0, &[1]);
        bad_length[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(walk_batches(&bad_length).is_err());
        let mut short_length = batches(0, &[1]);
        short_length[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(walk_batches(&short_length).is_err());
        let mut old_magic = batches(0, &[1]);
        old_magic[16] = 1;
        assert!(walk_batches(&old_magic).is_err());
    }

    #[test]
    fn frames_over_the_limit_are_refused() {
        assert!(frame_size(-1).is_err());
        assert!(frame_size(RESPONSE_BYTES_MAX as i32 + 1).is_err());
        assert_eq!(frame_size(10).unwrap(), 10);
    }

    #[test]
    fn request_frames_round_trip_through_kafka_protocol() {
        let frame = encode_request(&MetadataRequest::default(), 4, 7).unwrap();
        let size = i32::from_be_bytes(frame[..4].try_into().unwrap());
        assert_eq!(size as usize, frame.len() - 4);
        let mut body = frame.freeze().slice(4..);
        let header = RequestHeader::decode(&mut body, 1).unwrap();
        assert_eq!((header.request_api_key, header.correlation_id), (3, 7));

        let mut response = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(7)
            .encode(&mut response, 0)
            .unwrap();
        MetadataResponse::default()
            .encode(&mut response, 4)
            .unwrap();
        let response = response.freeze();
        assert!(decode_response::<MetadataRequest>(response.clone(), 4, 7).is_ok());
        assert!(decode_response::<MetadataRequest>(response, 4, 8).is_err());
    }

    #[test]
    fn versions_kafka_protocol_lacks_are_refused() {
        assert!(encode_request(&MetadataRequest::default(), 99, 1).is_err());
    }
}
