//! One connection's security state: which listener it came in on, who it is, and where
//! its authentication stands. Every handler gets it with the request.

use std::net::SocketAddr;
use std::sync::Arc;

use medulla_auth::Principal;

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
}

impl Session {
    /// A new connection's state, before any authentication.
    pub fn new(peer: SocketAddr, listener: Arc<str>, protocol: SecurityProtocol) -> Session {
        Session {
            peer,
            listener,
            protocol,
            principal: Principal::anonymous(),
        }
    }
}
