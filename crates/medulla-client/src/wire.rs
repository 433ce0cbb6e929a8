//! A minimal Kafka connection for the group protocol: one request at a time, every
//! message encoded by `kafka-protocol`, versions negotiated with ApiVersions.
//!
//! librdkafka is used for everything else; it cannot join a group whose protocol type is
//! not `consumer`, which is why [`crate::election`] needs this.
//!
//! Security seam: [`dial`] is the one place a socket is opened. Today it speaks
//! plaintext only and refuses any other `security.protocol` by name; TLS and SASL
//! (issue 6) wrap the stream there, and nothing above it changes.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::limits::{REQUEST_TIMEOUT, RESPONSE_BYTES_MAX};
use crate::{ClientConfig, ClientError};

/// A byte stream to a broker: a TCP socket now, TLS over it later.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Transport for T {}

/// The client id sent in every request header.
const CLIENT_ID: &str = "medulla-client";

/// ApiVersions version asked: both Medulla (0–3) and Kafka 3/4 (0–3 / 0–4) serve it.
const API_VERSIONS_VERSION: i16 = 3;

/// The bootstrap list as `host:port` strings (a `PLAINTEXT://`-style prefix is dropped).
pub fn bootstrap_addrs(bootstrap: &str) -> Vec<String> {
    bootstrap
        .split(',')
        .map(str::trim)
        .map(|a| a.split_once("://").map_or(a, |(_, rest)| rest))
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Opens a stream to `addr` as `cfg` says.
pub async fn dial(cfg: &ClientConfig, addr: &str) -> Result<Box<dyn Transport>, ClientError> {
    let protocol = cfg
        .property("security.protocol")
        .unwrap_or("plaintext")
        .to_ascii_lowercase();
    if protocol != "plaintext" {
        return Err(ClientError::Config(format!(
            "security.protocol={protocol} is not supported yet by the group election client \
             (plaintext only until issue 6)"
        )));
    }
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| ClientError::Io {
            addr: addr.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connecting timed out after {REQUEST_TIMEOUT:?}"),
            ),
        })?
        .map_err(|source| ClientError::Io {
            addr: addr.to_owned(),
            source,
        })?;
    // Group requests are small and latency-bound.
    let _ = stream.set_nodelay(true);
    Ok(Box::new(stream))
}

/// One connection to a broker. After any error the connection's state is unknown
/// (a response may still be in flight): drop it and open another.
pub struct Connection {
    addr: String,
    stream: Box<dyn Transport>,
    correlation_id: i32,
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects to `addr` and learns the broker's API versions.
    pub async fn open(cfg: &ClientConfig, addr: &str) -> Result<Connection, ClientError> {
        let stream = dial(cfg, addr).await?;
        let mut conn = Connection {
            addr: addr.to_owned(),
            stream,
            correlation_id: 0,
            versions: HashMap::new(),
        };
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response: ApiVersionsResponse = conn
            .send(&request, API_VERSIONS_VERSION, REQUEST_TIMEOUT)
            .await?;
        if response.error_code != 0 {
            return Err(conn.protocol(format!(
                "ApiVersions failed with Kafka error {}",
                response.error_code
            )));
        }
        conn.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(conn)
    }

    /// The broker's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The highest version of `R` both the broker and this client (`ours`, the versions
    /// whose fields this crate sets correctly) serve.
    pub fn version<R: Request>(&self, ours: (i16, i16)) -> Result<i16, ClientError> {
        let name = api_name(R::KEY);
        let (lo, hi) = *self
            .versions
            .get(&R::KEY)
            .ok_or_else(|| self.protocol(format!("the broker does not serve {name}")))?;
        let version = hi.min(ours.1).min(R::VERSIONS.max);
        if version < lo.max(ours.0) {
            return Err(self.protocol(format!(
                "no common version of {name}: the broker serves {lo}–{hi}, this client {}–{}",
                ours.0, ours.1
            )));
        }
        Ok(version)
    }

    /// Sends `request` at `version` and reads its response, within `timeout`.
    pub async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        match tokio::time::timeout(timeout, self.round_trip(request, version)).await {
            Ok(r) => r,
            Err(_) => Err(ClientError::Io {
                addr: self.addr.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("{} timed out after {timeout:?}", api_name(R::KEY)),
                ),
            }),
        }
    }

    async fn round_trip<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        let name = api_name(R::KEY);
        let api = ApiKey::try_from(R::KEY)
            .map_err(|_| self.protocol(format!("unknown API key {}", R::KEY)))?;
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)))
            .encode(&mut buf, api.request_header_version(version))
            .map_err(|e| self.protocol(format!("cannot encode the {name} header: {e}")))?;
        // kafka-protocol refuses a field the version does not have: a bug of ours, named.
        request
            .encode(&mut buf, version)
            .map_err(|e| self.protocol(format!("cannot encode {name} v{version}: {e}")))?;
        let size = i32::try_from(buf.len() - 4)
            .map_err(|_| self.protocol(format!("{name} request too large")))?;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        let io = |addr: &str, source| ClientError::Io {
            addr: addr.to_owned(),
            source,
        };
        self.stream
            .write_all(&buf)
            .await
            .map_err(|e| io(&self.addr, e))?;
        self.stream.flush().await.map_err(|e| io(&self.addr, e))?;

        let size = self
            .stream
            .read_i32()
            .await
            .map_err(|e| io(&self.addr, e))?;
        let size = usize::try_from(size)
            .map_err(|_| self.protocol(format!("negative {name} response size {size}")))?;
        if size > RESPONSE_BYTES_MAX {
            return Err(self.protocol(format!(
                "{name} response of {size} bytes exceeds the limit of {RESPONSE_BYTES_MAX}"
            )));
        }
        let mut body = vec![0u8; size];
        self.stream
            .read_exact(&mut body)
            .await
            .map_err(|e| io(&self.addr, e))?;
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, api.response_header_version(version))
            .map_err(|e| self.protocol(format!("cannot decode the {name} header: {e}")))?;
        if header.correlation_id != self.correlation_id {
            return Err(self.protocol(format!(
                "correlation id mismatch on {name}: sent {}, got {}",
                self.correlation_id, header.correlation_id
            )));
        }
        let response = R::Response::decode(&mut body, version)
            .map_err(|e| self.protocol(format!("cannot decode {name} v{version}: {e}")))?;
        if body.has_remaining() {
            return Err(self.protocol(format!(
                "{} unexpected bytes after the {name} response",
                body.remaining()
            )));
        }
        Ok(response)
    }

    fn protocol(&self, detail: String) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.clone(),
            detail,
        }
    }
}

/// An API's name for messages (`JoinGroup`).
pub fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|_| format!("API {key}"), |k| format!("{k:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_lists_are_split_and_trimmed() {
        assert_eq!(
            bootstrap_addrs(" a:1, PLAINTEXT://b:2 ,,c:3"),
            vec!["a:1", "b:2", "c:3"]
        );
        assert!(bootstrap_addrs(" , ").is_empty());
    }
}
