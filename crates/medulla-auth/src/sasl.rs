//! SASL: each mechanism is a pure state machine behind [`SaslServer`]; the broker feeds
//! it the bytes of SaslAuthenticate requests (or, for SaslHandshake v0, raw frames) and
//! sends back what it answers. [`Sasl`] is the set of enabled mechanisms and what they
//! check credentials against.

use std::time::SystemTime;

use crate::Principal;

/// What one step of an exchange produced.
#[derive(Debug)]
pub enum Step {
    /// Send these bytes to the client and wait for its next message.
    Challenge(Vec<u8>),
    /// The client is authenticated; send `response` (possibly empty) as the last answer.
    Done(Authenticated),
}

/// A successful authentication.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// Who the client is.
    pub principal: Principal,
    /// The mechanism's final message to the client (SCRAM's server-final; empty else).
    pub response: Vec<u8>,
    /// When the credential stops being valid (an OAUTHBEARER token's `exp`); the
    /// session lifetime (KIP-368) is the earlier of this and
    /// `connections.max.reauth.ms`.
    pub expires_at: Option<SystemTime>,
}

/// Why an exchange failed. Every variant ends the exchange.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SaslError {
    /// Wrong credentials, an invalid token: SASL_AUTHENTICATION_FAILED, with this text as
    /// the error message (it never says which part was wrong).
    #[error("{0}")]
    Failed(String),
    /// A message that does not parse, or arrives out of order: the connection is closed
    /// (ILLEGAL_SASL_STATE where an answer is possible).
    #[error("invalid SASL message: {0}")]
    Malformed(String),
}

/// One client's exchange with one mechanism.
pub trait SaslServer: Send {
    /// Feeds the client's next message.
    fn step(&mut self, input: &[u8]) -> Result<Step, SaslError>;
}
