//! The client side of Kafka's SASL mechanisms: PLAIN (RFC 4616), SCRAM-SHA-256 and
//! SCRAM-SHA-512 (RFC 5802 / RFC 7677) and OAUTHBEARER (RFC 7628, with a token given
//! up front). Pure: no I/O; [`crate::wire`] carries the messages in SaslAuthenticate.
//!
//! A [`SaslClient`] produces its first message with [`SaslClient::initial`], then answers
//! each server challenge with [`SaslClient::step`] until that returns `None` (done). A
//! SCRAM client checks the server's nonce, the iteration count and, in the last step,
//! the server signature: a server that does not know the password cannot pass.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::limits::{
    SCRAM_ITERATIONS_MAX, SCRAM_ITERATIONS_MIN, SCRAM_NONCE_BYTES, SCRAM_SALT_BYTES,
};

/// A SASL mechanism this client speaks, by its Kafka name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// `PLAIN`: user name and password in the clear (use it over TLS only).
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `OAUTHBEARER` with a token obtained elsewhere.
    OAuthBearer,
}

impl Mechanism {
    /// The mechanism named `name` (case-insensitive), as in `sasl.mechanism`.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::ScramSha256),
            "SCRAM-SHA-512" => Some(Mechanism::ScramSha512),
            "OAUTHBEARER" => Some(Mechanism::OAuthBearer),
            _ => None,
        }
    }

    /// Kafka's name of the mechanism.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The SCRAM hash of the mechanism, if it is a SCRAM one.
    pub fn scram(self) -> Option<ScramHash> {
        match self {
            Mechanism::ScramSha256 => Some(ScramHash::Sha256),
            Mechanism::ScramSha512 => Some(ScramHash::Sha512),
            Mechanism::Plain | Mechanism::OAuthBearer => None,
        }
    }
}

/// The hash function of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramHash {
    /// SHA-256 (SCRAM-SHA-256).
    Sha256,
    /// SHA-512 (SCRAM-SHA-512).
    Sha512,
}

impl ScramHash {
    /// The code Kafka's DescribeUserScramCredentials / AlterUserScramCredentials use for
    /// the mechanism (`ScramMechanism.type()`).
    pub fn kafka_code(self) -> i8 {
        match self {
            ScramHash::Sha256 => 1,
            ScramHash::Sha512 => 2,
        }
    }

    /// The mechanism of a Kafka code, if known.
    pub fn from_kafka_code(code: i8) -> Option<ScramHash> {
        match code {
            1 => Some(ScramHash::Sha256),
            2 => Some(ScramHash::Sha512),
            _ => None,
        }
    }

    /// The mechanism's SASL name.
    pub fn mechanism_name(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub(crate) fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // `new_from_slice` accepts any key length for HMAC: the error arm cannot happen.
        match self {
            ScramHash::Sha256 => Hmac::<Sha256>::new_from_slice(key)
                .map(|mut m| {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                })
                .unwrap_or_default(),
            ScramHash::Sha512 => Hmac::<Sha512>::new_from_slice(key)
                .map(|mut m| {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                })
                .unwrap_or_default(),
        }
    }

    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// SaltedPassword = Hi(password, salt, iterations): PBKDF2 with this HMAC (RFC 5802
    /// §3). What AlterUserScramCredentials carries, and what a SCRAM client derives its
    /// keys from.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// What AlterUserScramCredentials sends for one user and mechanism: the client salts
/// and hashes, so the password itself never reaches the broker.
#[derive(Clone, Debug)]
pub struct ScramUpsertion {
    /// Random salt ([`SCRAM_SALT_BYTES`] bytes).
    pub salt: Vec<u8>,
    /// Hi(password, salt, iterations).
    pub salted_password: Vec<u8>,
    /// The iteration count.
    pub iterations: u32,
}

impl ScramHash {
    /// A new credential for `password`: a fresh random salt, then PBKDF2, as Kafka's
    /// `kafka-configs --alter --add-config 'SCRAM-SHA-512=[password=…]'` computes it.
    pub fn new_credential(
        self,
        password: &str,
        iterations: u32,
    ) -> Result<ScramUpsertion, SaslError> {
        if !(SCRAM_ITERATIONS_MIN..=SCRAM_ITERATIONS_MAX).contains(&iterations) {
            return Err(err(format!(
                "{} iterations must be between {SCRAM_ITERATIONS_MIN} and \
                 {SCRAM_ITERATIONS_MAX}, not {iterations}",
                self.mechanism_name()
            )));
        }
        let mut salt = vec![0u8; SCRAM_SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|e| err(format!("no randomness for a salt: {e}")))?;
        let salted_password = self.salted_password(password.as_bytes(), &salt, iterations);
        Ok(ScramUpsertion {
            salt,
            salted_password,
            iterations,
        })
    }
}

/// Why the client side of an exchange failed (the server misbehaved or was not who it
/// claimed to be).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SaslError(pub String);

fn err(detail: impl Into<String>) -> SaslError {
    SaslError(detail.into())
}

/// What a mechanism needs to authenticate.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// A user name and password (PLAIN, SCRAM).
    Password {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// A bearer token (OAUTHBEARER).
    Token(String),
}

/// One client-side SASL exchange.
pub struct SaslClient {
    mechanism: Mechanism,
    state: State,
}

enum State {
    Plain {
        username: String,
        password: String,
    },
    OAuth {
        token: String,
    },
    ScramStart {
        hash: ScramHash,
        username: String,
        password: String,
        nonce: String,
    },
    ScramSentFirst {
        hash: ScramHash,
        password: String,
        nonce: String,
        client_first_bare: String,
    },
    ScramSentFinal {
        server_signature: Vec<u8>,
    },
    /// Sent the initial response; an empty answer means success.
    AwaitingSuccess,
    /// OAUTHBEARER: the server sent an error challenge, we acknowledged it; the next
    /// answer must be a failure.
    OAuthFailed {
        detail: String,
    },
    Done,
}

impl SaslClient {
    /// A client for `mechanism` with `credentials` (a password for PLAIN and SCRAM, a
    /// token for OAUTHBEARER).
    pub fn new(mechanism: Mechanism, credentials: Credentials) -> Result<SaslClient, SaslError> {
        let nonce = random_nonce()?;
        SaslClient::with_nonce(mechanism, credentials, nonce)
    }

    /// As [`SaslClient::new`] with a given SCRAM client nonce (for tests against
    /// published vectors).
    pub fn with_nonce(
        mechanism: Mechanism,
        credentials: Credentials,
        nonce: String,
    ) -> Result<SaslClient, SaslError> {
        let state = match (mechanism, credentials) {
            (Mechanism::Plain, Credentials::Password { username, password }) => {
                State::Plain { username, password }
            }
            (Mechanism::OAuthBearer, Credentials::Token(token)) => State::OAuth { token },
            (m, Credentials::Password { username, password }) if m.scram().is_some() => {
                State::ScramStart {
                    hash: m.scram().unwrap_or(ScramHash::Sha512),
                    username,
                    password,
                    nonce,
                }
            }
            (m, Credentials::Token(_)) => {
                return Err(err(format!(
                    "{} needs sasl.username and sasl.password, not a token",
                    m.name()
                )));
            }
            (m, Credentials::Password { .. }) => {
                return Err(err(format!(
                    "{} needs a token (sasl.oauthbearer.token)",
                    m.name()
                )));
            }
        };
        Ok(SaslClient { mechanism, state })
    }

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The client's first message (SaslAuthenticate's first `auth_bytes`).
    pub fn initial(&mut self) -> Result<Vec<u8>, SaslError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Plain { username, password } => {
                self.state = State::AwaitingSuccess;
                // authzid empty: the authenticated identity is the user.
                let mut m = Vec::with_capacity(username.len() + password.len() + 2);
                m.push(0);
                m.extend_from_slice(username.as_bytes());
                m.push(0);
                m.extend_from_slice(password.as_bytes());
                Ok(m)
            }
            State::OAuth { token } => {
                self.state = State::AwaitingSuccess;
                Ok(format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes())
            }
            State::ScramStart {
                hash,
                username,
                password,
                nonce,
            } => {
                let client_first_bare = format!("n={},r={nonce}", sasl_name(&username));
                let first = format!("n,,{client_first_bare}");
                self.state = State::ScramSentFirst {
                    hash,
                    password,
                    nonce,
                    client_first_bare,
                };
                Ok(first.into_bytes())
            }
            _ => Err(err("the SASL exchange has already started")),
        }
    }

    /// Answers a server challenge: the next message, or `None` when the exchange has
    /// succeeded on the client's side.
    pub fn step(&mut self, challenge: &[u8]) -> Result<Option<Vec<u8>>, SaslError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitingSuccess if challenge.is_empty() => Ok(None),
            State::AwaitingSuccess if self.mechanism == Mechanism::OAuthBearer => {
                // RFC 7628 §3.2.2: the server's error JSON; answer with a lone %x01 so
                // the server can fail the exchange.
                self.state = State::OAuthFailed {
                    detail: String::from_utf8_lossy(challenge).into_owned(),
                };
                Ok(Some(vec![0x01]))
            }
            // PLAIN's server sends nothing back; anything it does send carries no meaning.
            State::AwaitingSuccess => Ok(None),
            State::OAuthFailed { detail } => Err(err(format!(
                "the broker refused the OAUTHBEARER token: {detail}"
            ))),
            State::ScramSentFirst {
                hash,
                password,
                nonce,
                client_first_bare,
            } => {
                let (message, server_signature) =
                    scram_client_final(hash, &password, &nonce, &client_first_bare, challenge)?;
                self.state = State::ScramSentFinal { server_signature };
                Ok(Some(message.into_bytes()))
            }
            State::ScramSentFinal { server_signature } => {
                let text = std::str::from_utf8(challenge)
                    .map_err(|_| err("the SCRAM server-final message is not UTF-8"))?;
                let mut verifier = None;
                for attr in text.split(',') {
                    if let Some(e) = attr.strip_prefix("e=") {
                        return Err(err(format!("the SCRAM server reported an error: {e}")));
                    }
                    if let Some(v) = attr.strip_prefix("v=") {
                        verifier = Some(v);
                    }
                }
                let verifier =
                    verifier.ok_or_else(|| err("the SCRAM server-final message has no v="))?;
                let got = B64
                    .decode(verifier)
                    .map_err(|_| err("the SCRAM server signature is not base64"))?;
                if got != server_signature {
                    return Err(err(
                        "the SCRAM server signature is wrong: the broker does not hold this \
                         user's credential (or is not the broker it claims to be)",
                    ));
                }
                Ok(None)
            }
            State::Done => Err(err("the SASL exchange is already complete")),
            State::Plain { .. } | State::OAuth { .. } | State::ScramStart { .. } => {
                Err(err("the SASL exchange has not started"))
            }
        }
    }
}

/// RFC 5802 §5.1 `saslname`: `=` and `,` escaped.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// A printable nonce (base64 of random bytes, no `,`).
fn random_nonce() -> Result<String, SaslError> {
    let mut bytes = [0u8; SCRAM_NONCE_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| err(format!("no randomness for a nonce: {e}")))?;
    Ok(B64.encode(bytes))
}

/// Parses server-first and builds client-final; returns it with the server signature
/// expected in server-final.
fn scram_client_final(
    hash: ScramHash,
    password: &str,
    nonce: &str,
    client_first_bare: &str,
    server_first: &[u8],
) -> Result<(String, Vec<u8>), SaslError> {
    let server_first = std::str::from_utf8(server_first)
        .map_err(|_| err("the SCRAM server-first message is not UTF-8"))?;
    let (mut r, mut s, mut i) = (None, None, None);
    for attr in server_first.split(',') {
        match attr.split_once('=') {
            Some(("r", v)) => r = Some(v),
            Some(("s", v)) => s = Some(v),
            Some(("i", v)) => i = Some(v),
            Some(("e", v)) => {
                return Err(err(format!("the SCRAM server reported an error: {v}")));
            }
            Some(("m", _)) => return Err(err("the SCRAM server requires an unknown extension")),
            _ => {}
        }
    }
    let combined = r.ok_or_else(|| err("the SCRAM server-first message has no nonce"))?;
    if !combined.starts_with(nonce) || combined.len() <= nonce.len() {
        return Err(err(
            "the SCRAM server nonce does not extend the client nonce",
        ));
    }
    let salt = B64
        .decode(s.ok_or_else(|| err("the SCRAM server-first message has no salt"))?)
        .map_err(|_| err("the SCRAM salt is not base64"))?;
    let iterations: u32 = i
        .ok_or_else(|| err("the SCRAM server-first message has no iteration count"))?
        .parse()
        .map_err(|_| err("the SCRAM iteration count is not a number"))?;
    if iterations < SCRAM_ITERATIONS_MIN {
        return Err(err(format!(
            "the SCRAM iteration count {iterations} is below the minimum {SCRAM_ITERATIONS_MIN}"
        )));
    }
    if iterations > SCRAM_ITERATIONS_MAX {
        return Err(err(format!(
            "the SCRAM iteration count {iterations} is above the maximum {SCRAM_ITERATIONS_MAX}"
        )));
    }
    let salted = hash.salted_password(password.as_bytes(), &salt, iterations);
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.hash(&client_key);
    // c=biws is base64("n,,"): no channel binding, no authzid.
    let without_proof = format!("c=biws,r={combined}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let client_signature = hash.hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&client_signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_key = hash.hmac(&salted, b"Server Key");
    let server_signature = hash.hmac(&server_key, auth_message.as_bytes());
    Ok((
        format!("{without_proof},p={}", B64.encode(proof)),
        server_signature,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(u: &str, p: &str) -> Credentials {
        Credentials::Password {
            username: u.to_owned(),
            password: p.to_owned(),
        }
    }

    // RFC 7677 §3: user "user", password "pencil".
    const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

    #[test]
    fn scram_sha_256_matches_rfc_7677() {
        let mut c = SaslClient::with_nonce(
            Mechanism::ScramSha256,
            password("user", "pencil"),
            NONCE.to_owned(),
        )
        .unwrap();
        assert_eq!(c.initial().unwrap(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let last = c.step(SERVER_FIRST.as_bytes()).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(last).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            c.step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_wrong_server_signature_is_an_error() {
        let mut c = SaslClient::with_nonce(
            Mechanism::ScramSha256,
            password("user", "pencil"),
            NONCE.to_owned(),
        )
        .unwrap();
        c.initial().unwrap();
        c.step(SERVER_FIRST.as_bytes()).unwrap();
        let e = c
            .step(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(e.0.contains("server signature is wrong"), "{e}");
    }

    #[test]
    fn scram_server_first_is_checked() {
        let check = |server_first: &str| {
            let mut c = SaslClient::with_nonce(
                Mechanism::ScramSha512,
                password("user", "pencil"),
                NONCE.to_owned(),
            )
            .unwrap();
            c.initial().unwrap();
            c.step(server_first.as_bytes()).unwrap_err().0
        };
        assert!(check("r=other,s=AAAA,i=4096").contains("does not extend"));
        assert!(check("r=rOprNGfwEbeRWgbNEkqO,s=AAAA,i=4096").contains("does not extend"));
        assert!(check("r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=1").contains("below the minimum"));
        assert!(check("r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=999999999").contains("above the maximum"));
        assert!(check("r=rOprNGfwEbeRWgbNEkqOx,s=!!,i=4096").contains("not base64"));
        assert!(check("e=unknown-user").contains("unknown-user"));
        assert!(check("r=rOprNGfwEbeRWgbNEkqOx,s=AAAA").contains("no iteration count"));
    }

    #[test]
    fn scram_server_final_error_is_reported() {
        let mut c = SaslClient::with_nonce(
            Mechanism::ScramSha256,
            password("user", "pencil"),
            NONCE.to_owned(),
        )
        .unwrap();
        c.initial().unwrap();
        c.step(SERVER_FIRST.as_bytes()).unwrap();
        assert!(
            c.step(b"e=invalid-proof")
                .unwrap_err()
                .0
                .contains("invalid-proof")
        );
    }

    #[test]
    fn scram_user_names_are_escaped() {
        let mut c = SaslClient::with_nonce(
            Mechanism::ScramSha512,
            password("a=b,c", "p"),
            "n".to_owned(),
        )
        .unwrap();
        assert_eq!(c.initial().unwrap(), b"n,,n=a=3Db=2Cc,r=n");
    }

    #[test]
    fn new_credentials_are_salted_afresh() {
        let a = ScramHash::Sha512.new_credential("pw", 4096).unwrap();
        let b = ScramHash::Sha512.new_credential("pw", 4096).unwrap();
        assert_eq!(a.salt.len(), 32);
        assert_ne!(a.salt, b.salt);
        assert_eq!(a.salted_password.len(), 64);
        assert_eq!(
            a.salted_password,
            ScramHash::Sha512.salted_password(b"pw", &a.salt, 4096)
        );
        assert!(ScramHash::Sha256.new_credential("pw", 100).is_err());
        assert!(ScramHash::Sha256.new_credential("pw", 20_000).is_err());
    }

    #[test]
    fn random_nonces_differ() {
        assert_ne!(random_nonce().unwrap(), random_nonce().unwrap());
        assert!(!random_nonce().unwrap().contains(','));
    }

    #[test]
    fn plain_sends_authzid_user_password() {
        let mut c = SaslClient::new(Mechanism::Plain, password("alice", "secret")).unwrap();
        assert_eq!(c.initial().unwrap(), b"\0alice\0secret");
        assert_eq!(c.step(b"").unwrap(), None);
    }

    #[test]
    fn oauthbearer_sends_the_token_and_acknowledges_an_error() {
        let mut c =
            SaslClient::new(Mechanism::OAuthBearer, Credentials::Token("t.k.n".into())).unwrap();
        assert_eq!(c.initial().unwrap(), b"n,,\x01auth=Bearer t.k.n\x01\x01");
        assert_eq!(c.step(b"").unwrap(), None);

        let mut c =
            SaslClient::new(Mechanism::OAuthBearer, Credentials::Token("t".into())).unwrap();
        c.initial().unwrap();
        let status = br#"{"status":"invalid_token"}"#;
        assert_eq!(c.step(status).unwrap(), Some(vec![1]));
        assert!(c.step(b"").unwrap_err().0.contains("invalid_token"));
    }

    #[test]
    fn credentials_must_fit_the_mechanism() {
        assert!(SaslClient::new(Mechanism::Plain, Credentials::Token("t".into())).is_err());
        assert!(SaslClient::new(Mechanism::OAuthBearer, password("u", "p")).is_err());
    }

    #[test]
    fn mechanism_names_round_trip() {
        for m in [
            Mechanism::Plain,
            Mechanism::ScramSha256,
            Mechanism::ScramSha512,
            Mechanism::OAuthBearer,
        ] {
            assert_eq!(Mechanism::from_name(&m.name().to_lowercase()), Some(m));
        }
        assert_eq!(Mechanism::from_name("GSSAPI"), None);
        assert_eq!(ScramHash::from_kafka_code(2), Some(ScramHash::Sha512));
        assert_eq!(ScramHash::Sha256.kafka_code(), 1);
    }
}
