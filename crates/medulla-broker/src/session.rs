//! One connection's security state: which listener it came in on, who it is, and where
//! its authentication stands. Every handler gets it with the request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use medulla_auth::Principal;
use medulla_auth::sasl::SaslServer;

/// Kafka's `security.protocol` of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// TCP, no authentication: every client is `User:ANONYMOUS`.
    Plaintext,
    /// TLS; with a client certificate the principal comes from its subject.
    Ssl,
    /// SASL over TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Parses Kafka's name.
    pub fn parse(s: &str) -> Option<SecurityProtocol> {
        match s {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    /// Whether clients must authenticate with SASL before anything else.
    pub fn is_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// Whether the transport is TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// One connection's security state.
#[derive(Debug, Clone)]
pub struct Session {
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener's name (`PLAINTEXT`, `SASL_SSL`, `INTERNAL`, …).
    pub listener: Arc<str>,
    /// The listener's security protocol.
    pub protocol: SecurityProtocol,
    /// Who the client is: `User:ANONYMOUS` until authenticated (and on PLAINTEXT).
    pub principal: Principal,
    /// Where SASL authentication stands (SASL listeners only).
    pub sasl: SaslSession,
}

/// A SASL exchange in progress. Cloning shares it (a session is cloned only to be read).
#[derive(Clone)]
pub struct Exchange(pub Arc<Mutex<Box<dyn SaslServer>>>);

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exchange")
    }
}

/// One connection's SASL state (KIP-368 re-authentication included).
#[derive(Debug, Clone, Default)]
pub struct SaslSession {
    /// The mechanism chosen by the last SaslHandshake.
    pub mechanism: Option<String>,
    /// The exchange the last SaslHandshake started, until it ends.
    pub exchange: Option<Exchange>,
    /// Whether the client has authenticated (at least once) on this connection.
    pub authenticated: bool,
    /// When the authenticated session expires (KIP-368), if it does.
    pub expires_at: Option<Instant>,
    /// Set when the connection must close after the current reply, this long after it
    /// (failed authentication: `connection.failed.authentication.delay.ms`).
    pub close_after: Option<Duration>,
}

impl Session {
    /// A new connection's state, before any authentication.
    pub fn new(peer: SocketAddr, listener: Arc<str>, protocol: SecurityProtocol) -> Session {
        Session {
            peer,
            listener,
            protocol,
            principal: Principal::anonymous(),
            sasl: SaslSession::default(),
        }
    }
}
