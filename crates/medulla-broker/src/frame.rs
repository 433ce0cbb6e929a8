//! Request framing and decoding, and response encoding: a pure codec with no I/O.
//!
//! A Kafka frame is a 4-byte big-endian size followed by that many bytes: a request
//! header and a body whose layout depends on the API key and version. [`check_frame`]
//! says cheaply whether a buffer holds a whole frame (and refuses oversized sizes before
//! anything is allocated); [`decode_request`] turns one frame into a typed request.
//! Everything here is a plain function so tests and the fuzz target call it directly.
//! [`encode_response_chunked`] encodes a Fetch response whose records stay in their
//! segment files (see `chunked.rs`).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::handlers::api_versions;

mod chunked;
pub use chunked::{Chunk, ChunkedBuf, FileParts, encode_response_chunked};

/// Why a frame cannot be served. Each variant closes the connection, except where the
/// connection layer answers first (see [`Decoded::UnsupportedApiVersions`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The size prefix exceeds `socket.request.max.bytes`.
    #[error("frame of {size_bytes} bytes exceeds socket.request.max.bytes {max_bytes}")]
    TooLarge {
        /// Declared size.
        size_bytes: usize,
        /// Limit.
        max_bytes: usize,
    },
    /// A negative size prefix.
    #[error("negative frame size {0}")]
    NegativeSize(i32),
    /// The frame does not hold a request header.
    #[error("malformed request header: {0}")]
    BadHeader(String),
    /// An API key Kafka does not define, or one this broker does not serve.
    #[error("unsupported API key {0}")]
    UnknownApiKey(i16),
    /// A version of a served API that this broker does not implement.
    #[error("unsupported version {version} of {api:?}")]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The body does not decode at the declared version, or has bytes left over.
    #[error("malformed {api:?} v{version} request: {reason}")]
    BadBody {
        /// The API.
        api: ApiKey,
        /// Its version.
        version: i16,
        /// The decoder's complaint.
        reason: String,
    },
}

/// Returns the frame length (without the 4-byte prefix) if `buf` holds a whole frame,
/// `Ok(None)` if more bytes are needed, or an error for an impossible size.
pub fn check_frame(buf: &[u8], max_bytes: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.get(..4) else {
        return Ok(None);
    };
    let size = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    if size < 0 {
        return Err(FrameError::NegativeSize(size));
    }
    let size_bytes = size as usize;
    if size_bytes > max_bytes {
        return Err(FrameError::TooLarge {
            size_bytes,
            max_bytes,
        });
    }
    Ok((buf.len() >= 4 + size_bytes).then_some(size_bytes))
}

/// A decoded request.
// Built once and moved once per request; boxing the large variant would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Decoded {
    /// A request this broker serves.
    Request {
        /// Its header.
        header: RequestHeader,
        /// Its API.
        api: ApiKey,
        /// Its body.
        body: RequestKind,
    },
    /// ApiVersions at a version this broker does not know: KIP-511 says answer with a v0
    /// body carrying UNSUPPORTED_VERSION and the supported ranges, and keep the connection.
    UnsupportedApiVersions {
        /// The correlation id to answer with.
        correlation_id: i32,
    },
}

/// Decodes one frame body (without its size prefix).
pub fn decode_request(mut frame: Bytes) -> Result<Decoded, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::BadHeader(format!("{} bytes", frame.len())));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(key).map_err(|_| FrameError::UnknownApiKey(key))?;
    let Some(range) = api_versions::supported(api) else {
        return Err(FrameError::UnknownApiKey(key));
    };
    if api == ApiKey::ApiVersions && !(range.0..=range.1).contains(&version) {
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        return Ok(Decoded::UnsupportedApiVersions { correlation_id });
    }
    if !(range.0..=range.1).contains(&version) {
        return Err(FrameError::UnsupportedVersion { api, version });
    }
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(|e| FrameError::BadHeader(e.to_string()))?;
    let body = RequestKind::decode(api, &mut frame, version).map_err(|e| FrameError::BadBody {
        api,
        version,
        reason: e.to_string(),
    })?;
    // Apache Kafka reads the fields a version defines and ignores whatever follows, and
    // real clients depend on it: librdkafka 2.12 sends an all-topics Metadata v9+ request
    // with a 4-byte array-count placeholder where a 1-byte varint belongs, leaving three
    // bytes over. Do as Kafka does.
    if frame.has_remaining() {
        tracing::debug!(
            ?api,
            version,
            trailing_bytes = frame.remaining(),
            "ignoring trailing bytes after request body"
        );
    }
    Ok(Decoded::Request { header, api, body })
}

/// Encodes a response frame (size prefix, header, body), first resetting the fields the
/// version does not carry (see [`crate::handlers::versioning`]).
pub fn encode_response(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    mut body: ResponseKind,
) -> anyhow::Result<Bytes> {
    crate::handlers::versioning::fit(&mut body, version);
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api.response_header_version(version))?;
    body.encode(&mut buf, version)?;
    let size = i32::try_from(buf.len() - 4)?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Encodes one response body of type `R` (used for the KIP-511 fallback).
pub fn encode_plain<R: Encodable>(
    header_version: i16,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)?;
    body.encode(&mut buf, version)?;
    let size = i32::try_from(buf.len() - 4)?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
    use kafka_protocol::protocol::StrBytes;

    fn frame_of<R: Encodable>(api: ApiKey, version: i16, body: &R) -> Bytes {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("t")))
            .encode(&mut buf, api.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    #[test]
    fn check_frame_waits_for_whole_frames_and_refuses_oversize() {
        assert_eq!(check_frame(&[0, 0], 100), Ok(None));
        assert_eq!(check_frame(&[0, 0, 0, 3, 1, 2], 100), Ok(None));
        assert_eq!(check_frame(&[0, 0, 0, 2, 1, 2], 100), Ok(Some(2)));
        assert_eq!(
            check_frame(&[0, 0, 1, 0], 100),
            Err(FrameError::TooLarge {
                size_bytes: 256,
                max_bytes: 100
            })
        );
        assert_eq!(
            check_frame(&[0xff, 0xff, 0xff, 0xff], 100),
            Err(FrameError::NegativeSize(-1))
        );
    }

    #[test]
    fn decodes_a_metadata_request() {
        let f = frame_of(
            ApiKey::Metadata,
            9,
            &MetadataRequest::default().with_topics(None),
        );
        match decode_request(f).unwrap() {
            Decoded::Request { header, api, .. } => {
                assert_eq!(api, ApiKey::Metadata);
                assert_eq!(header.correlation_id, 7);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_api_versions_version_is_answered_not_dropped() {
        let mut f =
            BytesMut::from(&frame_of(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())[..]);
        f[2..4].copy_from_slice(&99i16.to_be_bytes());
        assert!(matches!(
            decode_request(f.freeze()),
            Ok(Decoded::UnsupportedApiVersions { correlation_id: 7 })
        ));
    }

    #[test]
    fn garbage_and_unknown_keys_are_errors() {
        assert!(decode_request(Bytes::from_static(b"\x00")).is_err());
        assert!(matches!(
            decode_request(Bytes::from_static(b"\x7f\x00\x00\x00\x00\x00\x00\x01")),
            Err(FrameError::UnknownApiKey(0x7f00))
        ));
        let f = frame_of(ApiKey::Produce, 1, &ApiVersionsRequest::default());
        assert!(matches!(
            decode_request(f),
            Err(FrameError::UnsupportedVersion { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode_request(Bytes::from(bytes));
        }

        #[test]
        fn decode_never_panics_on_valid_headers(key in 0i16..80, version in 0i16..20, tail in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let mut buf = BytesMut::new();
            buf.put_i16(key);
            buf.put_i16(version);
            buf.put_i32(1);
            buf.put_i16(-1);
            buf.put_slice(&tail);
            let _ = decode_request(buf.freeze());
        }
    }
}
