//! SASL/OAUTHBEARER (RFC 7628; Kafka's KIP-255 and KIP-342 extensions): the client's
//! initial response `n,[a=authzid],\x01auth=Bearer <jwt>\x01[key=value\x01...]\x01`, the
//! JWT checked by [`JwtValidator`]. As Kafka's `OAuthBearerSaslServer`, a refused token
//! is answered with RFC 7628's error JSON (`{"status":"invalid_token"}`); the client
//! acknowledges with a lone `\x01` and the exchange then fails.

use std::sync::Arc;

use super::{Authenticated, SaslError, SaslServer, Step, check_size};
use crate::jwt::JwtValidator;

/// RFC 7628's key/value separator.
const KVSEP: char = '\u{1}';
/// Most extensions (KIP-342) one message may carry.
const EXTENSIONS_MAX: usize = 64;

enum State {
    Initial,
    /// The error JSON was sent; waiting for the client's `\x01`.
    ErrorSent(String),
    Done,
}

/// One OAUTHBEARER exchange.
pub struct OAuthBearerServer {
    jwt: Arc<JwtValidator>,
    state: State,
}

impl OAuthBearerServer {
    /// An exchange validating tokens with `jwt`.
    pub fn new(jwt: Arc<JwtValidator>) -> OAuthBearerServer {
        OAuthBearerServer {
            jwt,
            state: State::Initial,
        }
    }
}

struct InitialResponse {
    authzid: Option<String>,
    token: String,
}

fn malformed(what: &str) -> SaslError {
    SaslError::Malformed(format!("invalid OAUTHBEARER initial response: {what}"))
}

fn parse(text: &str) -> Result<InitialResponse, SaslError> {
    let (gs2, rest) = text
        .split_once(KVSEP)
        .ok_or_else(|| malformed("no key/value separator"))?;
    let authzid = match gs2 {
        "n,," | "y,," => None,
        g => {
            let inner = g
                .strip_prefix("n,a=")
                .or_else(|| g.strip_prefix("y,a="))
                .and_then(|a| a.strip_suffix(','))
                .ok_or_else(|| malformed("bad gs2 header"))?;
            if inner.is_empty() || inner.contains(',') {
                return Err(malformed("bad authzid"));
            }
            Some(inner.to_owned())
        }
    };
    // `rest` is `key=value\x01...key=value\x01\x01` minus the leading separator.
    let pairs = rest
        .strip_suffix(KVSEP)
        .ok_or_else(|| malformed("not terminated by \\x01\\x01"))?;
    if !pairs.is_empty() && !pairs.ends_with(KVSEP) {
        return Err(malformed("not terminated by \\x01\\x01"));
    }
    let mut token = None;
    let mut count = 0usize;
    for pair in pairs.split_terminator(KVSEP) {
        count += 1;
        if count > EXTENSIONS_MAX {
            return Err(malformed("too many extensions"));
        }
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| malformed("expected key=value"))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(malformed("bad key"));
        }
        if value.is_empty()
            || !value
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) || matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            return Err(malformed("bad value"));
        }
        if key == "auth" {
            if token.is_some() {
                return Err(malformed("auth given twice"));
            }
            let (scheme, tok) = value
                .split_once(' ')
                .ok_or_else(|| malformed("expected auth=Bearer <token>"))?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(malformed("the auth scheme is not Bearer"));
            }
            let tok = tok.trim_start_matches(' ');
            if tok.is_empty() {
                return Err(malformed("empty token"));
            }
            token = Some(tok.to_owned());
        }
        // Other keys are KIP-342 extensions: accepted, not used.
    }
    let token = token.ok_or_else(|| malformed("no auth=Bearer <token>"))?;
    Ok(InitialResponse { authzid, token })
}

impl SaslServer for OAuthBearerServer {
    fn step(&mut self, input: &[u8]) -> Result<Step, SaslError> {
        check_size(input)?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::Initial => {
                let text = std::str::from_utf8(input).map_err(|_| malformed("not UTF-8"))?;
                let initial = parse(text)?;
                let checked = self
                    .jwt
                    .validate(&initial.token)
                    .and_then(|(p, exp)| match &initial.authzid {
                        Some(a) if *a != p.name => Err(format!(
                            "the authorization id {a:?} is not the token's principal {:?}",
                            p.name
                        )),
                        _ => Ok((p, exp)),
                    });
                match checked {
                    Ok((principal, expires_at)) => Ok(Step::Done(Authenticated {
                        principal,
                        response: Vec::new(),
                        expires_at: Some(expires_at),
                    })),
                    Err(reason) => {
                        self.state = State::ErrorSent(reason);
                        Ok(Step::Challenge(br#"{"status":"invalid_token"}"#.to_vec()))
                    }
                }
            }
            State::ErrorSent(reason) => {
                if input != [KVSEP as u8] {
                    return Err(SaslError::Malformed(
                        "expected the client's \\x01 after an OAUTHBEARER error".to_owned(),
                    ));
                }
                Err(SaslError::Failed(format!(
                    "Authentication failed: invalid OAUTHBEARER token: {reason}"
                )))
            }
            State::Done => Err(SaslError::Malformed(
                "OAUTHBEARER exchange already finished".to_owned(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Principal;
    use crate::jwt::testing::{Signer, now_s, write_jwks};
    use crate::jwt::{JwtConfig, JwtValidator};
    use serde_json::json;

    fn setup() -> (tempfile::TempDir, Signer, Arc<JwtValidator>) {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::new("k");
        let path = dir.path().join("jwks.json");
        write_jwks(&path, &[&signer]);
        let mut config = JwtConfig::new(format!("file://{}", path.display()));
        config.expected_audience = vec!["medulla".into()];
        (dir, signer, Arc::new(JwtValidator::new(config).unwrap()))
    }

    fn message(gs2: &str, token: &str, extra: &str) -> Vec<u8> {
        format!("{gs2}\x01auth=Bearer {token}\x01{extra}\x01").into_bytes()
    }

    #[test]
    fn a_valid_token_authenticates_with_its_expiry() {
        let (_dir, signer, jwt) = setup();
        let exp = now_s() + 600;
        let token = signer.sign(&json!({"sub": "svc-lab", "aud": "medulla", "exp": exp}));
        for (gs2, extra) in [("n,,", ""), ("n,a=svc-lab,", "traceId=abc 123\x01")] {
            let mut s = OAuthBearerServer::new(jwt.clone());
            let Step::Done(a) = s.step(&message(gs2, &token, extra)).unwrap() else {
                panic!()
            };
            assert_eq!(a.principal, Principal::user("svc-lab"));
            let expires = a.expires_at.unwrap();
            assert_eq!(
                expires
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64,
                exp
            );
        }
    }

    #[test]
    fn a_refused_token_gets_the_error_json_then_fails() {
        let (_dir, signer, jwt) = setup();
        for claims in [
            json!({"sub": "a", "aud": "medulla", "exp": now_s() - 600}),
            json!({"sub": "a", "aud": "elsewhere", "exp": now_s() + 600}),
        ] {
            let mut s = OAuthBearerServer::new(jwt.clone());
            let Step::Challenge(c) = s.step(&message("n,,", &signer.sign(&claims), "")).unwrap()
            else {
                panic!()
            };
            assert_eq!(c, br#"{"status":"invalid_token"}"#);
            assert!(matches!(s.step(b"\x01"), Err(SaslError::Failed(_))));
        }
        // An authzid that is not the token's principal.
        let token = signer.sign(&json!({"sub": "a", "aud": "medulla", "exp": now_s() + 600}));
        let mut s = OAuthBearerServer::new(jwt.clone());
        assert!(matches!(
            s.step(&message("n,a=b,", &token, "")),
            Ok(Step::Challenge(_))
        ));
        assert!(matches!(s.step(b"not kvsep"), Err(SaslError::Malformed(_))));
    }

    #[test]
    fn malformed_initial_responses() {
        let (_dir, _signer, jwt) = setup();
        for input in [
            &b""[..],
            b"n,,",
            b"n,,\x01auth=Bearer x\x01",
            b"n,,\x01auth=Basic x\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
            b"n,,\x01\x01",
            b"n,,\x01k-y=v\x01auth=Bearer x\x01\x01",
            b"p=x,,\x01auth=Bearer x\x01\x01",
            b"n,,\x01auth=Bearer \xff\x01\x01",
        ] {
            let mut s = OAuthBearerServer::new(jwt.clone());
            assert!(
                matches!(s.step(input), Err(SaslError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let mut s = OAuthBearerServer::new(jwt);
        let big = message("n,,", &"a".repeat(super::super::MESSAGE_BYTES_MAX), "");
        assert!(matches!(s.step(&big), Err(SaslError::TooLarge(_))));
    }
}
