//! A minimal Kafka connection for the group protocol: one request at a time, every
//! message encoded by `kafka-protocol`, versions negotiated with ApiVersions.
//!
//! librdkafka is used for everything else; it cannot join a group whose protocol type is
//! not `consumer`, which is why [`crate::election`] needs this.
//!
//! Security: [`dial`] opens the socket and, for `security.protocol` `ssl` / `sasl_ssl`,
//! wraps it in TLS ([`crate::tls`]); [`Connection::open`] then learns the API versions
//! and, for `sasl_plaintext` / `sasl_ssl`, authenticates with SaslHandshake v1 and
//! SaslAuthenticate ([`crate::sasl`]), re-authenticating before the session lifetime
//! the broker gave ends (KIP-368). The properties are librdkafka's names, so the same
//! `ClientConfig` serves librdkafka and this client.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::error_name_and_description;
use crate::limits::{REQUEST_TIMEOUT, RESPONSE_BYTES_MAX, SASL_ROUNDS_MAX};
use crate::sasl::{Credentials, Mechanism, SaslClient};
use crate::{ClientConfig, ClientError};

/// A byte stream to a broker: a TCP socket, or TLS over one.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Transport for T {}

/// The client id sent in every request header unless `client.id` says otherwise.
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

/// `security.protocol`: whether the connection is encrypted and whether it
/// authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecurityProtocol {
    /// TLS (`ssl`, `sasl_ssl`).
    pub tls: bool,
    /// SASL (`sasl_plaintext`, `sasl_ssl`).
    pub sasl: bool,
}

impl SecurityProtocol {
    /// `cfg`'s `security.protocol` (default `plaintext`, case-insensitive).
    pub fn of(cfg: &ClientConfig) -> Result<SecurityProtocol, ClientError> {
        let protocol = cfg
            .property("security.protocol")
            .unwrap_or("plaintext")
            .trim()
            .to_ascii_lowercase();
        let (tls, sasl) = match protocol.as_str() {
            "plaintext" => (false, false),
            "ssl" => (true, false),
            "sasl_plaintext" => (false, true),
            "sasl_ssl" => (true, true),
            other => {
                return Err(ClientError::Config(format!(
                    "security.protocol={other}: expected plaintext, ssl, sasl_plaintext or \
                     sasl_ssl"
                )));
            }
        };
        Ok(SecurityProtocol { tls, sasl })
    }
}

/// The mechanism and credentials `cfg` names for SASL: `sasl.mechanism` (or librdkafka's
/// `sasl.mechanisms`), `sasl.username` + `sasl.password`, or `sasl.oauthbearer.token`.
pub fn sasl_settings(cfg: &ClientConfig) -> Result<(Mechanism, Credentials), ClientError> {
    let name = cfg
        .property("sasl.mechanism")
        .or_else(|| cfg.property("sasl.mechanisms"))
        .ok_or_else(|| {
            ClientError::Config(
                "a SASL security.protocol needs sasl.mechanism (PLAIN, SCRAM-SHA-256, \
                 SCRAM-SHA-512 or OAUTHBEARER)"
                    .to_owned(),
            )
        })?;
    let mechanism = Mechanism::from_name(name).ok_or_else(|| {
        ClientError::Config(format!(
            "sasl.mechanism={name} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or \
             OAUTHBEARER)"
        ))
    })?;
    let credentials = if mechanism == Mechanism::OAuthBearer {
        let token = cfg.property("sasl.oauthbearer.token").ok_or_else(|| {
            ClientError::Config("sasl.mechanism=OAUTHBEARER needs sasl.oauthbearer.token".into())
        })?;
        Credentials::Token(token.trim().to_owned())
    } else {
        let field = |key: &str| {
            cfg.property(key).map(str::to_owned).ok_or_else(|| {
                ClientError::Config(format!("sasl.mechanism={} needs {key}", mechanism.name()))
            })
        };
        Credentials::Password {
            username: field("sasl.username")?,
            password: field("sasl.password")?,
        }
    };
    Ok((mechanism, credentials))
}

/// Opens a stream to `addr` as `cfg` says: TCP, then TLS for `ssl` and `sasl_ssl`.
/// (SASL happens in [`Connection::open`], after ApiVersions.)
pub async fn dial(cfg: &ClientConfig, addr: &str) -> Result<Box<dyn Transport>, ClientError> {
    let security = SecurityProtocol::of(cfg)?;
    // Configuration errors before any network traffic.
    let tls = if security.tls {
        Some((
            Arc::new(crate::tls::client_config(cfg)?),
            crate::tls::server_name(addr)?,
        ))
    } else {
        None
    };
    if security.sasl {
        sasl_settings(cfg)?;
    }
    let timed_out = |what: &str| ClientError::Io {
        addr: addr.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{what} timed out after {REQUEST_TIMEOUT:?}"),
        ),
    };
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| timed_out("connecting"))?
        .map_err(|source| ClientError::Io {
            addr: addr.to_owned(),
            source,
        })?;
    // Group requests are small and latency-bound.
    let _ = stream.set_nodelay(true);
    let Some((config, server_name)) = tls else {
        return Ok(Box::new(stream));
    };
    let connector = tokio_rustls::TlsConnector::from(config);
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, connector.connect(server_name, stream))
        .await
        .map_err(|_| timed_out("the TLS handshake"))?
        .map_err(|e| ClientError::Tls {
            addr: addr.to_owned(),
            detail: e.to_string(),
        })?;
    Ok(Box::new(stream))
}

/// One connection to a broker. After any error the connection's state is unknown
/// (a response may still be in flight): drop it and open another.
pub struct Connection {
    addr: String,
    stream: Box<dyn Transport>,
    correlation_id: i32,
    client_id: String,
    versions: HashMap<i16, (i16, i16)>,
    /// SASL settings, kept to re-authenticate (KIP-368).
    sasl: Option<(Mechanism, Credentials)>,
    /// When to re-authenticate: before the broker's session lifetime ends.
    reauthenticate_at: Option<Instant>,
}

impl Connection {
    /// Connects to `addr` and learns the broker's API versions.
    pub async fn open(cfg: &ClientConfig, addr: &str) -> Result<Connection, ClientError> {
        let stream = dial(cfg, addr).await?;
        let sasl = if SecurityProtocol::of(cfg)?.sasl {
            Some(sasl_settings(cfg)?)
        } else {
            None
        };
        let mut conn = Connection {
            addr: addr.to_owned(),
            stream,
            correlation_id: 0,
            client_id: cfg.property("client.id").unwrap_or(CLIENT_ID).to_owned(),
            versions: HashMap::new(),
            sasl,
            reauthenticate_at: None,
        };
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response: ApiVersionsResponse = conn
            .round_trip_timed(&request, API_VERSIONS_VERSION, REQUEST_TIMEOUT)
            .await?;
        if response.error_code != 0 {
            let (name, _) = error_name_and_description(response.error_code);
            return Err(conn.protocol(format!("ApiVersions failed with {name}")));
        }
        conn.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if conn.sasl.is_some() {
            conn.authenticate().await?;
        }
        Ok(conn)
    }

    /// SaslHandshake v1, then SaslAuthenticate rounds until the mechanism is done.
    async fn authenticate(&mut self) -> Result<(), ClientError> {
        let Some((mechanism, credentials)) = self.sasl.clone() else {
            return Ok(());
        };
        let refused = |addr: &str, code: i16, message: Option<&StrBytes>| {
            let (name, description) = error_name_and_description(code);
            ClientError::Authentication {
                addr: addr.to_owned(),
                mechanism: mechanism.name().to_owned(),
                name,
                message: message
                    .map(|m| m.to_string())
                    .filter(|m| !m.is_empty())
                    .unwrap_or(description),
            }
        };
        // v0 handshakes are followed by raw SASL frames, which Kafka 4 no longer serves.
        let handshake_version = self.version::<SaslHandshakeRequest>((1, 1))?;
        let handshake = self
            .round_trip_timed(
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(mechanism.name())),
                handshake_version,
                REQUEST_TIMEOUT,
            )
            .await?;
        if handshake.error_code != 0 {
            let enabled: Vec<&str> = handshake.mechanisms.iter().map(|m| m.as_str()).collect();
            let message = format!(
                "the broker does not offer {} (it offers: {})",
                mechanism.name(),
                enabled.join(", ")
            );
            return Err(refused(
                &self.addr,
                handshake.error_code,
                Some(&StrBytes::from_string(message)),
            ));
        }
        let version = self.version::<SaslAuthenticateRequest>((0, 2))?;
        let sasl_error = |addr: &str, e: crate::sasl::SaslError| ClientError::Sasl {
            addr: addr.to_owned(),
            mechanism: mechanism.name().to_owned(),
            detail: e.0,
        };
        let mut client =
            SaslClient::new(mechanism, credentials).map_err(|e| sasl_error(&self.addr, e))?;
        let mut message = client.initial().map_err(|e| sasl_error(&self.addr, e))?;
        for _ in 0..SASL_ROUNDS_MAX {
            let started = Instant::now();
            let response = self
                .round_trip_timed(
                    &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message)),
                    version,
                    REQUEST_TIMEOUT,
                )
                .await?;
            if response.error_code != 0 {
                return Err(refused(
                    &self.addr,
                    response.error_code,
                    response.error_message.as_ref(),
                ));
            }
            match client
                .step(&response.auth_bytes)
                .map_err(|e| sasl_error(&self.addr, e))?
            {
                Some(next) => message = next,
                None => {
                    // KIP-368: re-authenticate at 85% of the session's lifetime, counted
                    // from when the last request was sent, as Kafka's client does.
                    self.reauthenticate_at = u64::try_from(response.session_lifetime_ms)
                        .ok()
                        .filter(|ms| *ms > 0)
                        .map(|ms| started + Duration::from_millis(ms.saturating_mul(85) / 100));
                    return Ok(());
                }
            }
        }
        Err(sasl_error(
            &self.addr,
            crate::sasl::SaslError(format!(
                "no result after {SASL_ROUNDS_MAX} SaslAuthenticate rounds"
            )),
        ))
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

    /// Sends `request` at `version` and reads its response, within `timeout`
    /// (re-authenticating first if the SASL session is about to expire).
    pub async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        if self
            .reauthenticate_at
            .is_some_and(|at| Instant::now() >= at)
        {
            self.authenticate().await?;
        }
        self.round_trip_timed(request, version, timeout).await
    }

    async fn round_trip_timed<R: Request>(
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
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())))
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

#[cfg(test)]
mod security_tests;
