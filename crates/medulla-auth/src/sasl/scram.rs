//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server side, as Kafka's
//! `ScramSaslServer`: client-first → server-first (our nonce appended, salt,
//! iterations) → client-final (channel binding, nonce, proof) → server-final (`v=`).
//!
//! No channel binding (`p=` is refused), no delegation tokens (`tokenauth=true` is
//! refused). An unknown user gets a server-first with a salt derived from its name and
//! a per-process secret — the same each time, so answers do not tell users apart — and
//! fails at the proof.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::{Authenticated, SaslError, SaslServer, Step, check_size};
use crate::Principal;
use crate::credentials::{
    CredentialStore, ITERATIONS_MIN, ScramCredential, ScramMechanism, base64_decode, base64_encode,
    random_bytes,
};

enum State {
    ClientFirst,
    ClientFinal {
        user: String,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        /// `None` for an unknown user (a fake salt was sent).
        credential: Option<ScramCredential>,
    },
    Done,
}

/// One SCRAM exchange.
pub struct ScramServer {
    mechanism: ScramMechanism,
    credentials: Arc<CredentialStore>,
    secret: Arc<[u8]>,
    server_nonce: Option<String>,
    state: State,
    /// The user name from the client-first message.
    claimed: Option<String>,
}

impl ScramServer {
    /// An exchange for `mechanism` against `credentials`; `secret` keys the fake salts of
    /// unknown users.
    pub fn new(
        mechanism: ScramMechanism,
        credentials: Arc<CredentialStore>,
        secret: Arc<[u8]>,
    ) -> ScramServer {
        ScramServer {
            mechanism,
            credentials,
            secret,
            server_nonce: None,
            state: State::ClientFirst,
            claimed: None,
        }
    }

    /// The same with a fixed server nonce (RFC test vectors).
    pub fn with_nonce(mut self, nonce: &str) -> ScramServer {
        self.server_nonce = Some(nonce.to_owned());
        self
    }

    fn failed(&self) -> SaslError {
        SaslError::Failed(format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
            self.mechanism.name()
        ))
    }

    fn client_first(&mut self, text: &str) -> Result<Step, SaslError> {
        let first = parse_client_first(text)?;
        self.claimed = Some(first.user.clone());
        if first.token_auth {
            return Err(SaslError::Failed(
                "Authentication failed: delegation tokens (tokenauth) are not supported".to_owned(),
            ));
        }
        if let Some(authzid) = &first.authzid
            && *authzid != first.user
        {
            return Err(SaslError::Failed(
                "Authentication failed: Client requested an authorization id that is different from username"
                    .to_owned(),
            ));
        }
        let credential = self.credentials.get(&first.user, self.mechanism);
        let (salt, iterations) = match &credential {
            Some(c) => (c.salt.clone(), c.iterations),
            None => {
                let mut salt = self
                    .mechanism
                    .hmac(&self.secret, format!("salt:{}", first.user).as_bytes());
                salt.truncate(32);
                (salt, ITERATIONS_MIN)
            }
        };
        let server_nonce = self
            .server_nonce
            .clone()
            .unwrap_or_else(|| base64_encode(&random_bytes(24)));
        let nonce = format!("{}{}", first.nonce, server_nonce);
        let server_first = format!("r={nonce},s={},i={iterations}", base64_encode(&salt));
        self.state = State::ClientFinal {
            user: first.user,
            gs2_header: first.gs2_header,
            client_first_bare: first.bare,
            server_first: server_first.clone(),
            nonce,
            credential,
        };
        Ok(Step::Challenge(server_first.into_bytes()))
    }
}

impl SaslServer for ScramServer {
    fn step(&mut self, input: &[u8]) -> Result<Step, SaslError> {
        check_size(input)?;
        let text = std::str::from_utf8(input)
            .map_err(|_| SaslError::Malformed("SCRAM message is not UTF-8".to_owned()))?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::ClientFirst => self.client_first(text),
            State::ClientFinal {
                user,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
                credential,
            } => {
                let last = parse_client_final(text)?;
                if base64_decode(&last.channel_binding).as_deref() != Some(gs2_header.as_bytes()) {
                    return Err(SaslError::Malformed(
                        "channel binding does not match the gs2 header".to_owned(),
                    ));
                }
                if last.nonce != nonce {
                    return Err(SaslError::Malformed("nonce mismatch".to_owned()));
                }
                let Some(credential) = credential else {
                    return Err(self.failed());
                };
                let proof = base64_decode(&last.proof)
                    .ok_or_else(|| SaslError::Malformed("proof is not base64".to_owned()))?;
                if proof.len() != self.mechanism.hash_bytes() {
                    return Err(self.failed());
                }
                let auth_message =
                    format!("{client_first_bare},{server_first},{}", last.without_proof);
                let signature = self
                    .mechanism
                    .hmac(&credential.stored_key, auth_message.as_bytes());
                let client_key: Vec<u8> =
                    proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
                let stored_key = self.mechanism.hash(&client_key);
                if !bool::from(stored_key.ct_eq(&credential.stored_key)) {
                    return Err(self.failed());
                }
                let server_signature = self
                    .mechanism
                    .hmac(&credential.server_key, auth_message.as_bytes());
                Ok(Step::Done(Authenticated {
                    principal: Principal::user(user),
                    response: format!("v={}", base64_encode(&server_signature)).into_bytes(),
                    expires_at: None,
                }))
            }
            State::Done => Err(SaslError::Malformed(
                "SCRAM exchange already finished".to_owned(),
            )),
        }
    }

    fn attempted_user(&self) -> Option<&str> {
        self.claimed.as_deref()
    }
}

struct ClientFirst {
    gs2_header: String,
    authzid: Option<String>,
    bare: String,
    user: String,
    nonce: String,
    token_auth: bool,
}

fn malformed(what: &str) -> SaslError {
    SaslError::Malformed(format!("invalid SCRAM client-first message: {what}"))
}

/// RFC 5802's saslname: `=2C` is `,`, `=3D` is `=`; any other `=` is an error.
fn decode_saslname(s: &str) -> Result<String, SaslError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix("2C") {
            out.push(',');
            rest = r;
        } else if let Some(r) = after.strip_prefix("3D") {
            out.push('=');
            rest = r;
        } else {
            return Err(malformed("bad escape in saslname"));
        }
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(malformed("empty user name"));
    }
    Ok(out)
}

fn valid_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

fn parse_client_first(text: &str) -> Result<ClientFirst, SaslError> {
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().unwrap_or_default();
    let authz = parts.next().ok_or_else(|| malformed("no gs2 header"))?;
    let bare = parts.next().ok_or_else(|| malformed("no gs2 header"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => {
            return Err(SaslError::Failed(
                "Authentication failed: channel binding is not supported".to_owned(),
            ));
        }
        _ => return Err(malformed("bad channel binding flag")),
    }
    let authzid = match authz {
        "" => None,
        a => Some(decode_saslname(
            a.strip_prefix("a=")
                .ok_or_else(|| malformed("bad authzid"))?,
        )?),
    };
    let gs2_header = format!("{flag},{authz},");
    let mut fields = bare.split(',');
    let mut user_field = fields.next().unwrap_or_default();
    if user_field.starts_with("m=") {
        return Err(malformed("mandatory extensions are not supported"));
    }
    user_field = user_field
        .strip_prefix("n=")
        .ok_or_else(|| malformed("expected n=user"))?;
    let user = decode_saslname(user_field)?;
    let nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .ok_or_else(|| malformed("expected r=nonce"))?;
    if !valid_nonce(nonce) {
        return Err(malformed("bad nonce"));
    }
    let mut token_auth = false;
    for ext in fields {
        let (key, value) = ext
            .split_once('=')
            .ok_or_else(|| malformed("bad extension"))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(malformed("bad extension name"));
        }
        if key == "tokenauth" && value.eq_ignore_ascii_case("true") {
            token_auth = true;
        }
    }
    Ok(ClientFirst {
        gs2_header,
        authzid,
        bare: bare.to_owned(),
        user,
        nonce: nonce.to_owned(),
        token_auth,
    })
}

struct ClientFinal {
    channel_binding: String,
    nonce: String,
    proof: String,
    without_proof: String,
}

fn parse_client_final(text: &str) -> Result<ClientFinal, SaslError> {
    let bad =
        |what: &str| SaslError::Malformed(format!("invalid SCRAM client-final message: {what}"));
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(|| bad("no proof"))?;
    let mut fields = without_proof.split(',');
    let channel_binding = fields
        .next()
        .and_then(|f| f.strip_prefix("c="))
        .ok_or_else(|| bad("expected c=channel binding"))?;
    let nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .ok_or_else(|| bad("expected r=nonce"))?;
    for ext in fields {
        if !ext.contains('=') {
            return Err(bad("bad extension"));
        }
    }
    if proof.is_empty() || proof.contains(',') {
        return Err(bad("bad proof"));
    }
    Ok(ClientFinal {
        channel_binding: channel_binding.to_owned(),
        nonce: nonce.to_owned(),
        proof: proof.to_owned(),
        without_proof: without_proof.to_owned(),
    })
}

/// A SCRAM client, for tests here and in the broker.
/// A test client (the real one is `medulla-client`'s `sasl` module).
#[cfg(test)]
pub mod client {
    use super::*;

    /// The client's side of one exchange: first message, then final from the
    /// server-first; then `verify` checks the server-final.
    pub struct ScramClient {
        mechanism: ScramMechanism,
        password: String,
        first_bare: String,
        nonce: String,
        server_signature: Vec<u8>,
    }

    impl ScramClient {
        /// Starts as `user` with `nonce`.
        pub fn new(mechanism: ScramMechanism, user: &str, password: &str, nonce: &str) -> Self {
            let name = user.replace('=', "=3D").replace(',', "=2C");
            ScramClient {
                mechanism,
                password: password.to_owned(),
                first_bare: format!("n={name},r={nonce}"),
                nonce: nonce.to_owned(),
                server_signature: Vec::new(),
            }
        }

        /// The client-first message.
        pub fn first(&self) -> String {
            format!("n,,{}", self.first_bare)
        }

        /// The client-final message for `server_first` (`None` if it does not parse).
        pub fn last(&mut self, server_first: &str) -> Option<String> {
            let mut fields = server_first.split(',');
            let nonce = fields.next()?.strip_prefix("r=")?;
            let salt = base64_decode(fields.next()?.strip_prefix("s=")?)?;
            let iterations: u32 = fields.next()?.strip_prefix("i=")?.parse().ok()?;
            if !nonce.starts_with(&self.nonce) {
                return None;
            }
            let m = self.mechanism;
            let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
            let client_key = m.hmac(&salted, b"Client Key");
            let stored_key = m.hash(&client_key);
            let without_proof = format!("c=biws,r={nonce}");
            let auth = format!("{},{server_first},{without_proof}", self.first_bare);
            let signature = m.hmac(&stored_key, auth.as_bytes());
            let proof: Vec<u8> = client_key
                .iter()
                .zip(&signature)
                .map(|(a, b)| a ^ b)
                .collect();
            let server_key = m.hmac(&salted, b"Server Key");
            self.server_signature = m.hmac(&server_key, auth.as_bytes());
            Some(format!("{without_proof},p={}", base64_encode(&proof)))
        }

        /// Whether the server-final message proves the server knew the credential.
        pub fn verify(&self, server_final: &str) -> bool {
            server_final
                .strip_prefix("v=")
                .and_then(base64_decode)
                .as_deref()
                == Some(&self.server_signature[..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client::ScramClient;
    use super::*;

    fn store_with(user: &str, password: &str, salt: &[u8]) -> Arc<CredentialStore> {
        let store = CredentialStore::in_memory();
        for m in ScramMechanism::ALL {
            let salted = m.salted_password(password.as_bytes(), salt, 4096);
            store.upsert(user, m, 4096, salt, &salted).unwrap();
        }
        Arc::new(store)
    }

    fn challenge(step: Result<Step, SaslError>) -> String {
        match step {
            Ok(Step::Challenge(b)) => String::from_utf8(b).unwrap(),
            other => panic!("expected a challenge, got {other:?}"),
        }
    }

    /// RFC 7677 section 3.
    #[test]
    fn rfc7677_sha256_vector() {
        let salt = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let store = store_with("user", "pencil", &salt);
        let mut server = ScramServer::new(ScramMechanism::Sha256, store, Arc::from(&b"k"[..]))
            .with_nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        let first = challenge(server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"));
        assert_eq!(
            first,
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let done = server
            .step(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        let Step::Done(a) = done else { panic!() };
        assert_eq!(a.principal, Principal::user("user"));
        assert_eq!(
            String::from_utf8(a.response).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    /// RFC 5802's vector is SCRAM-SHA-1, which Kafka does not offer: its message syntax
    /// (same user, nonces, salt) is checked here with SHA-512 and our own client.
    #[test]
    fn sha512_round_trip_with_rfc5802_messages() {
        let salt = base64_decode("QSXCR+Q6sek8bf92").unwrap();
        let store = store_with("user", "pencil", &salt);
        for m in ScramMechanism::ALL {
            let mut server = ScramServer::new(m, store.clone(), Arc::from(&b"k"[..]))
                .with_nonce("3rfcNHYJY1ZVvWVs7j");
            let mut client = ScramClient::new(m, "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
            let first = challenge(server.step(client.first().as_bytes()));
            assert_eq!(
                first,
                "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
            );
            let last = client.last(&first).unwrap();
            let Step::Done(a) = server.step(last.as_bytes()).unwrap() else {
                panic!()
            };
            assert!(client.verify(std::str::from_utf8(&a.response).unwrap()));
            assert!(matches!(
                server.step(b"again"),
                Err(SaslError::Malformed(_))
            ));
        }
    }

    fn run(store: &Arc<CredentialStore>, user: &str, password: &str) -> Result<Step, SaslError> {
        let m = ScramMechanism::Sha512;
        let mut server = ScramServer::new(m, store.clone(), Arc::from(&b"secret"[..]));
        let mut client = ScramClient::new(m, user, password, "abc");
        let first = challenge(server.step(client.first().as_bytes()));
        server.step(client.last(&first).unwrap().as_bytes())
    }

    #[test]
    fn wrong_password_and_unknown_user_fail_at_the_proof() {
        let store = store_with("alice", "right", b"salt");
        assert!(matches!(
            run(&store, "alice", "wrong"),
            Err(SaslError::Failed(_))
        ));
        assert!(matches!(
            run(&store, "mallory", "x"),
            Err(SaslError::Failed(_))
        ));
        assert!(run(&store, "alice", "right").is_ok());
        // The unknown user's salt is stable: asking twice does not reveal anything.
        let first = |user: &str| {
            let mut s = ScramServer::new(
                ScramMechanism::Sha512,
                store.clone(),
                Arc::from(&b"secret"[..]),
            );
            let c = challenge(s.step(format!("n,,n={user},r=abc").as_bytes()));
            c.split(',').nth(1).unwrap().to_owned()
        };
        assert_eq!(first("mallory"), first("mallory"));
        assert_ne!(first("mallory"), first("eve"));
    }

    #[test]
    fn escaped_names_and_authzid() {
        let store = store_with("a,b=c", "pw", b"salt");
        assert!(run(&store, "a,b=c", "pw").is_ok());
        let mut s = ScramServer::new(ScramMechanism::Sha256, store, Arc::from(&b"k"[..]));
        let first = challenge(s.step(b"n,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=xyz"));
        assert!(first.starts_with("r=xyz"));
    }

    #[test]
    fn malformed_and_refused_messages() {
        let store = store_with("user", "pencil", b"salt");
        let cases: &[(&[u8], &str)] = &[
            (b"", "malformed"),
            (b"garbage", "malformed"),
            (b"c=biws,r=abc,p=AAAA", "malformed"), // client-final first: out of order
            (b"x,,n=user,r=abc", "malformed"),
            (b"n,,n=user", "malformed"),
            (b"n,,r=abc,n=user", "malformed"),
            (b"n,,n=us=er,r=abc", "malformed"),
            (b"n,,n=user,r=a,b", "malformed"),
            (b"n,,m=ext,n=user,r=abc", "malformed"),
            (b"n,,n=user,r=ab\x01c", "malformed"),
            (b"n,,n=user,r=\xff", "malformed"),
            (b"p=tls-unique,,n=user,r=abc", "failed"),
            (b"n,a=other,n=user,r=abc", "failed"),
            (b"n,,n=user,r=abc,tokenauth=true", "failed"),
        ];
        for (input, expected) in cases {
            let mut s =
                ScramServer::new(ScramMechanism::Sha256, store.clone(), Arc::from(&b"k"[..]));
            let got = match s.step(input) {
                Ok(_) => "ok",
                Err(SaslError::Malformed(_)) => "malformed",
                Err(SaslError::Failed(_)) => "failed",
                Err(SaslError::TooLarge(_)) => "too large",
            };
            assert_eq!(got, *expected, "{}", String::from_utf8_lossy(input));
        }
        // Client-final messages that do not fit the exchange.
        for last in [
            &b"c=biws,r=abcWRONG,p=AAAA"[..],
            b"c=eSws,r=abcNONCE,p=AAAA",
            b"c=biws,r=abcNONCE",
            b"n,,n=user,r=abc",
        ] {
            let mut s =
                ScramServer::new(ScramMechanism::Sha256, store.clone(), Arc::from(&b"k"[..]))
                    .with_nonce("NONCE");
            challenge(s.step(b"n,,n=user,r=abc"));
            assert!(
                matches!(s.step(last), Err(SaslError::Malformed(_))),
                "{last:?}"
            );
        }
        let mut s = ScramServer::new(ScramMechanism::Sha256, store, Arc::from(&b"k"[..]));
        let big = vec![b'a'; super::super::MESSAGE_BYTES_MAX + 1];
        assert!(matches!(s.step(&big), Err(SaslError::TooLarge(_))));
    }
}
