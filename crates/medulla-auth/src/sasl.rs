//! SASL: each mechanism is a pure state machine behind [`SaslServer`]; the broker feeds
//! it the bytes of SaslAuthenticate requests and sends back what it answers. [`Sasl`] is
//! the set of enabled mechanisms and what they check credentials against.
//!
//! - [`plain`]: PLAIN (RFC 4616) against static JAAS users, else the SCRAM store.
//! - [`scram`]: SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802 / 7677).
//! - [`oauthbearer`]: OAUTHBEARER (RFC 7628, KIP-255 / KIP-342) with a JWT checked by
//!   [`crate::jwt::JwtValidator`].
//!
//! Every message is bounded by [`MESSAGE_BYTES_MAX`]; a larger one is
//! [`SaslError::TooLarge`].

pub mod oauthbearer;
pub mod plain;
pub mod scram;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::Principal;
use crate::credentials::{CredentialStore, ScramMechanism};
use crate::jwt::JwtValidator;

/// Largest SASL message (token) accepted from a client.
pub const MESSAGE_BYTES_MAX: usize = 64 * 1024;
/// Most static PLAIN users one JAAS value may define.
pub const PLAIN_USERS_MAX: usize = 10_000;

/// PLAIN's mechanism name.
pub const PLAIN: &str = "PLAIN";
/// OAUTHBEARER's mechanism name.
pub const OAUTHBEARER: &str = "OAUTHBEARER";
/// Every mechanism Medulla implements.
pub const MECHANISMS: [&str; 4] = [PLAIN, "SCRAM-SHA-256", "SCRAM-SHA-512", OAUTHBEARER];

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
    /// A message larger than [`MESSAGE_BYTES_MAX`]: refused unread, the connection is
    /// closed.
    #[error("SASL message of {0} bytes is larger than the limit of {MESSAGE_BYTES_MAX}")]
    TooLarge(usize),
}

/// Refuses a message over [`MESSAGE_BYTES_MAX`].
pub(crate) fn check_size(input: &[u8]) -> Result<(), SaslError> {
    if input.len() > MESSAGE_BYTES_MAX {
        return Err(SaslError::TooLarge(input.len()));
    }
    Ok(())
}

/// One client's exchange with one mechanism.
pub trait SaslServer: Send {
    /// Feeds the client's next message.
    fn step(&mut self, input: &[u8]) -> Result<Step, SaslError>;

    /// The user name the client claimed so far, whether or not it proved it: what the
    /// audit trail records beside a failed attempt (never a password or token).
    fn attempted_user(&self) -> Option<&str> {
        None
    }
}

/// The enabled mechanisms of a listener and what they check credentials against.
#[derive(Clone)]
pub struct Sasl {
    mechanisms: Vec<&'static str>,
    credentials: Arc<CredentialStore>,
    plain_users: Arc<BTreeMap<String, String>>,
    jwt: Option<Arc<JwtValidator>>,
    scram_secret: Arc<[u8]>,
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanisms", &self.mechanisms)
            .field("plain_users", &self.plain_users.len())
            .field("jwt", &self.jwt.is_some())
            .finish_non_exhaustive()
    }
}

impl Sasl {
    /// The mechanisms named in `enabled` (Kafka's `sasl.enabled.mechanisms`), in that
    /// order. GSSAPI and unknown names are refused; OAUTHBEARER needs `jwt`.
    pub fn new(
        enabled: &[String],
        credentials: Arc<CredentialStore>,
        plain_users: BTreeMap<String, String>,
        jwt: Option<Arc<JwtValidator>>,
    ) -> Result<Sasl, String> {
        let mut mechanisms = Vec::new();
        for name in enabled {
            let name = name.trim();
            if name.is_empty() {
                continue;
            }
            let Some(known) = MECHANISMS.iter().find(|m| **m == name) else {
                return Err(if name == "GSSAPI" {
                    "SASL mechanism GSSAPI (Kerberos) is not supported by Medulla; enable PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER".to_owned()
                } else {
                    format!(
                        "unknown SASL mechanism {name:?} (supported: {})",
                        MECHANISMS.join(", ")
                    )
                });
            };
            if *known == OAUTHBEARER && jwt.is_none() {
                return Err(
                    "OAUTHBEARER needs sasl.oauthbearer.jwks.endpoint.url (a file:// JWKS)"
                        .to_owned(),
                );
            }
            if !mechanisms.contains(known) {
                mechanisms.push(*known);
            }
        }
        Ok(Sasl {
            mechanisms,
            credentials,
            plain_users: Arc::new(plain_users),
            jwt,
            scram_secret: crate::credentials::random_bytes(32).into(),
        })
    }

    /// The enabled mechanism names, in the configured order.
    pub fn mechanisms(&self) -> &[&str] {
        &self.mechanisms
    }

    /// The SCRAM credential store.
    pub fn credentials(&self) -> &Arc<CredentialStore> {
        &self.credentials
    }

    /// The JWT validator, when OAUTHBEARER can be configured.
    pub fn jwt(&self) -> Option<&Arc<JwtValidator>> {
        self.jwt.as_ref()
    }

    /// A new exchange with mechanism `name`, if it is enabled.
    pub fn start(&self, name: &str) -> Option<Box<dyn SaslServer>> {
        if !self.mechanisms.contains(&name) {
            return None;
        }
        if name == PLAIN {
            return Some(Box::new(plain::PlainServer::new(
                self.plain_users.clone(),
                self.credentials.clone(),
            )));
        }
        if name == OAUTHBEARER {
            return self.jwt.clone().map(|jwt| {
                Box::new(oauthbearer::OAuthBearerServer::new(jwt)) as Box<dyn SaslServer>
            });
        }
        let mechanism = ScramMechanism::parse(name)?;
        Some(Box::new(scram::ScramServer::new(
            mechanism,
            self.credentials.clone(),
            self.scram_secret.clone(),
        )))
    }
}

/// The static PLAIN users of a Kafka JAAS value
/// (`org.apache.kafka.common.security.plain.PlainLoginModule required
/// user_alice="secret";`): every `user_NAME="password"` option. Other options
/// (`username`, `password`: the broker's own client identity) are ignored.
pub fn parse_plain_jaas(jaas: &str) -> Result<BTreeMap<String, String>, String> {
    let text = jaas.trim();
    let rest = text
        .strip_prefix("org.apache.kafka.common.security.plain.PlainLoginModule")
        .ok_or("expected org.apache.kafka.common.security.plain.PlainLoginModule")?;
    let rest = rest.trim_start();
    let (flag, mut rest) = rest.split_at(rest.find(char::is_whitespace).unwrap_or(rest.len()));
    if !matches!(
        flag.trim_end_matches(';'),
        "required" | "requisite" | "sufficient" | "optional"
    ) {
        return Err(format!(
            "expected a control flag (required), found {flag:?}"
        ));
    }
    let mut users = BTreeMap::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() || rest == ";" {
            break;
        }
        let eq = rest.find('=').ok_or("expected name=\"value\" options")?;
        let name = rest[..eq].trim();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or("unterminated quoted value")?;
            value = out;
            rest = &quoted[end + 1..];
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == ';')
                .unwrap_or(rest.len());
            value = rest[..end].to_owned();
            rest = &rest[end..];
        }
        if let Some(user) = name.strip_prefix("user_") {
            if user.is_empty() {
                return Err("user_ option with an empty user name".to_owned());
            }
            if users.len() >= PLAIN_USERS_MAX {
                return Err(format!("more than {PLAIN_USERS_MAX} PLAIN users"));
            }
            users.insert(user.to_owned(), value);
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_plain_users_are_read() {
        let users = parse_plain_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="admin-secret"
               user_admin="admin-secret" user_alice="a;b \"q\"";"#,
        )
        .unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users["admin"], "admin-secret");
        assert_eq!(users["alice"], "a;b \"q\"");
        assert!(parse_plain_jaas("com.example.Other required;").is_err());
        assert!(
            parse_plain_jaas(
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"x"
            )
            .is_err()
        );
    }

    #[test]
    fn mechanisms_are_checked() {
        let store = Arc::new(CredentialStore::in_memory());
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let err = Sasl::new(&names(&["GSSAPI"]), store.clone(), BTreeMap::new(), None).unwrap_err();
        assert!(err.contains("GSSAPI"), "{err}");
        let err = Sasl::new(
            &names(&["OAUTHBEARER"]),
            store.clone(),
            BTreeMap::new(),
            None,
        )
        .unwrap_err();
        assert!(err.contains("jwks"), "{err}");
        let sasl = Sasl::new(
            &names(&["SCRAM-SHA-512", "PLAIN"]),
            store,
            BTreeMap::new(),
            None,
        )
        .unwrap();
        assert_eq!(sasl.mechanisms(), &["SCRAM-SHA-512", "PLAIN"]);
        assert!(sasl.start("SCRAM-SHA-256").is_none());
        assert!(sasl.start("PLAIN").is_some());
    }
}
