//! JWT validation for OAUTHBEARER and HTTP bearer tokens, configured with Kafka's
//! `sasl.oauthbearer.*` keys: keys from a JWKS file (`sasl.oauthbearer.jwks.endpoint.url`
//! as a `file://` URL, re-read when its modification time changes, checked at most once
//! a second), the signature checked with the key the token's `kid` names, `exp`
//! required, `nbf`, `iss` and `aud` checked with `sasl.oauthbearer.clock.skew.seconds` of
//! leeway, and the principal taken from `sasl.oauthbearer.sub.claim.name`.
//!
//! Only asymmetric algorithms are accepted (RS*, PS*, ES256, ES384, EdDSA): a JWKS is
//! public, so an HMAC key in it would let anyone sign.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::Principal;

/// Largest token accepted (bytes), as every SASL message.
pub const TOKEN_BYTES_MAX: usize = 64 * 1024;
/// Largest JWKS file read.
pub const JWKS_FILE_BYTES_MAX: u64 = 1 << 20;
/// Most keys kept from a JWKS file.
pub const JWKS_KEYS_MAX: usize = 1000;
/// Largest `sasl.oauthbearer.clock.skew.seconds` accepted.
pub const CLOCK_SKEW_SECONDS_MAX: u64 = 3600;
/// How often the JWKS file's modification time is checked, at most.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// The `sasl.oauthbearer.*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtConfig {
    /// `sasl.oauthbearer.jwks.endpoint.url`: `file:///path/to/jwks.json`.
    pub jwks_endpoint_url: String,
    /// `sasl.oauthbearer.expected.audience`: the token's `aud` must hold one of these
    /// (unchecked when empty).
    pub expected_audience: Vec<String>,
    /// `sasl.oauthbearer.expected.issuer`: the token's `iss` must be this (unchecked
    /// when `None`).
    pub expected_issuer: Option<String>,
    /// `sasl.oauthbearer.sub.claim.name` (Kafka's default `sub`).
    pub sub_claim_name: String,
    /// `sasl.oauthbearer.clock.skew.seconds` (Kafka's default 30).
    pub clock_skew_seconds: u64,
}

impl JwtConfig {
    /// Kafka's defaults around a JWKS URL.
    pub fn new(jwks_endpoint_url: impl Into<String>) -> JwtConfig {
        JwtConfig {
            jwks_endpoint_url: jwks_endpoint_url.into(),
            expected_audience: Vec::new(),
            expected_issuer: None,
            sub_claim_name: "sub".to_owned(),
            clock_skew_seconds: 30,
        }
    }
}

struct Key {
    kid: Option<String>,
    /// The JWK's `alg`, when it names one.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

struct Keys {
    keys: Vec<Key>,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// Validates JWTs against the keys of a JWKS file. Shared by every connection.
pub struct JwtValidator {
    config: JwtConfig,
    path: PathBuf,
    keys: Mutex<Keys>,
}

impl std::fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtValidator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn supported(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::EdDSA
    )
}

impl JwtValidator {
    /// Checks the settings and reads the JWKS file now: a missing or unreadable file
    /// stops the broker at start rather than failing every client later.
    pub fn new(config: JwtConfig) -> Result<JwtValidator, String> {
        let url = config.jwks_endpoint_url.trim();
        let path = if let Some(rest) = url.strip_prefix("file://") {
            PathBuf::from(rest)
        } else if url.starts_with("http://") || url.starts_with("https://") {
            return Err(format!(
                "sasl.oauthbearer.jwks.endpoint.url {url:?}: http(s) JWKS endpoints are not supported yet; use a file:// URL"
            ));
        } else {
            return Err(format!(
                "sasl.oauthbearer.jwks.endpoint.url {url:?}: expected a file:// URL"
            ));
        };
        if config.clock_skew_seconds > CLOCK_SKEW_SECONDS_MAX {
            return Err(format!(
                "sasl.oauthbearer.clock.skew.seconds {} is above {CLOCK_SKEW_SECONDS_MAX}",
                config.clock_skew_seconds
            ));
        }
        if config.sub_claim_name.is_empty() {
            return Err("sasl.oauthbearer.sub.claim.name must not be empty".to_owned());
        }
        let (keys, modified) = load(&path)?;
        Ok(JwtValidator {
            config,
            path,
            keys: Mutex::new(Keys {
                keys,
                modified,
                checked: Instant::now(),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// Re-reads the JWKS file if its modification time changed (checked at most once a
    /// second). A file that cannot be read keeps the keys in force.
    fn refresh(&self, keys: &mut Keys) {
        if keys.checked.elapsed() < RELOAD_CHECK {
            return;
        }
        keys.checked = Instant::now();
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified.is_none() || modified == keys.modified {
            return;
        }
        match load(&self.path) {
            Ok((k, m)) => {
                tracing::info!(path = %self.path.display(), keys = k.len(), "JWKS reloaded");
                keys.keys = k;
                keys.modified = m;
            }
            Err(e) => tracing::warn!(error = %e, "JWKS not reloaded; keeping the keys in force"),
        }
    }

    /// Validates `token`: its principal and when it expires, or why it is refused.
    pub fn validate(&self, token: &str) -> Result<(Principal, SystemTime), String> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(format!(
                "token of {} bytes is larger than the limit of {TOKEN_BYTES_MAX}",
                token.len()
            ));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
        if !supported(header.alg) {
            return Err(format!("token algorithm {:?} is not accepted", header.alg));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.config.clock_skew_seconds;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if self.config.expected_audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.config.expected_audience);
            required.push("aud");
        }
        if let Some(issuer) = &self.config.expected_issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);

        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        self.refresh(&mut keys);
        let candidates: Vec<&Key> = match &header.kid {
            Some(kid) => keys
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                .collect(),
            None => keys.keys.iter().collect(),
        };
        if candidates.is_empty() {
            return Err(match &header.kid {
                Some(kid) => format!("no key with kid {kid:?} in the JWKS"),
                None => "the JWKS holds no keys".to_owned(),
            });
        }
        let mut last_error = String::from("no key matches the token's algorithm");
        for key in candidates {
            if key.alg.is_some_and(|a| a != header.alg) {
                continue;
            }
            match jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                token,
                &key.key,
                &validation,
            ) {
                Ok(data) => return self.principal(&data.claims),
                Err(e) => last_error = describe(&e),
            }
        }
        Err(last_error)
    }

    fn principal(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(Principal, SystemTime), String> {
        let name = self.config.sub_claim_name.as_str();
        let subject = match claims.get(name) {
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            _ => return Err(format!("the token has no {name:?} claim")),
        };
        let exp = claims
            .get("exp")
            .and_then(serde_json::Value::as_u64)
            .ok_or("the token has no valid exp claim")?;
        let expires_at = UNIX_EPOCH
            .checked_add(Duration::from_secs(exp))
            .ok_or("the token's exp is out of range")?;
        Ok((Principal::user(subject), expires_at))
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidAudience => "the token is not for this audience".to_owned(),
        ErrorKind::InvalidIssuer => "the token is from an unexpected issuer".to_owned(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
        ErrorKind::MissingRequiredClaim(c) => format!("the token has no {c} claim"),
        other => format!("invalid token: {other:?}"),
    }
}

/// Reads the JWKS file: its usable keys and modification time. Keys of a kind this
/// validator does not accept (HMAC, unknown curves) are skipped with a log line.
fn load(path: &std::path::Path) -> Result<(Vec<Key>, Option<SystemTime>), String> {
    let shown = path.display();
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let bytes = medulla_log::fsutil::read_small(path, JWKS_FILE_BYTES_MAX)
        .map_err(|e| format!("cannot read JWKS file {shown}: {e}"))?
        .ok_or_else(|| format!("JWKS file {shown} does not exist"))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("JWKS file {shown} is not JSON: {e}"))?;
    let entries = value
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| format!("JWKS file {shown} has no \"keys\" array"))?;
    let mut keys = Vec::new();
    for entry in entries.iter().take(JWKS_KEYS_MAX) {
        let jwk: Jwk = match serde_json::from_value(entry.clone()) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(path = %shown, error = %e, "skipping a JWKS entry");
                continue;
            }
        };
        if matches!(
            jwk.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
        ) {
            tracing::warn!(path = %shown, "skipping a symmetric (oct) JWKS key");
            continue;
        }
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok());
        if alg.is_some_and(|a| !supported(a)) {
            continue;
        }
        match DecodingKey::from_jwk(&jwk) {
            Ok(key) => keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            }),
            Err(e) => tracing::warn!(path = %shown, error = %e, "skipping a JWKS key"),
        }
    }
    Ok((keys, modified))
}

/// Test helpers: signing keys and JWKS files (also used by the broker's tests).
#[cfg(test)]
pub(crate) mod testing {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    /// An ES256 signing key and its JWK (with `kid`).
    pub struct Signer {
        pub key: EncodingKey,
        pub kid: String,
        pub jwk: Jwk,
    }

    impl Signer {
        pub fn new(kid: &str) -> Signer {
            let pair = rcgen::KeyPair::generate().unwrap();
            let key = EncodingKey::from_ec_der(&pair.serialize_der());
            let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap();
            jwk.common.key_id = Some(kid.to_owned());
            Signer {
                key,
                kid: kid.to_owned(),
                jwk,
            }
        }

        pub fn sign(&self, claims: &serde_json::Value) -> String {
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &self.key).unwrap()
        }
    }

    pub fn write_jwks(path: &std::path::Path, signers: &[&Signer]) {
        let set = JwkSet {
            keys: signers.iter().map(|s| s.jwk.clone()).collect(),
        };
        std::fs::write(path, serde_json::to_vec(&set).unwrap()).unwrap();
    }

    pub fn now_s() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::json;

    fn validator(dir: &std::path::Path, signers: &[&Signer]) -> JwtValidator {
        let path = dir.join("jwks.json");
        write_jwks(&path, signers);
        let mut config = JwtConfig::new(format!("file://{}", path.display()));
        config.expected_audience = vec!["medulla".into(), "other".into()];
        config.expected_issuer = Some("https://idp.example".into());
        JwtValidator::new(config).unwrap()
    }

    fn claims(exp_in_s: i64) -> serde_json::Value {
        json!({"sub": "alice", "aud": "medulla", "iss": "https://idp.example", "exp": now_s() + exp_in_s})
    }

    #[test]
    fn tokens_are_checked_claim_by_claim() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::new("k1");
        let v = validator(dir.path(), &[&signer]);

        let (principal, expires) = v.validate(&signer.sign(&claims(600))).unwrap();
        assert_eq!(principal, Principal::user("alice"));
        assert!(expires > SystemTime::now());

        let cases = [
            ("expired", claims(-120), "expired"),
            (
                "nbf in the future",
                {
                    let mut c = claims(600);
                    c["nbf"] = json!(now_s() + 300);
                    c
                },
                "not valid yet",
            ),
            (
                "wrong audience",
                {
                    let mut c = claims(600);
                    c["aud"] = json!("someone-else");
                    c
                },
                "audience",
            ),
            (
                "wrong issuer",
                {
                    let mut c = claims(600);
                    c["iss"] = json!("https://evil.example");
                    c
                },
                "issuer",
            ),
            (
                "no exp",
                json!({"sub": "alice", "aud": "medulla", "iss": "https://idp.example"}),
                "exp",
            ),
            (
                "no sub",
                json!({"aud": "medulla", "iss": "https://idp.example", "exp": now_s() + 600}),
                "\"sub\"",
            ),
        ];
        for (name, c, expected) in cases {
            let err = v.validate(&signer.sign(&c)).unwrap_err();
            assert!(err.contains(expected), "{name}: {err}");
        }
        // Expired, but within the 30 s clock skew: accepted.
        v.validate(&signer.sign(&claims(-10))).unwrap();
    }

    #[test]
    fn signature_and_kid_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let trusted = Signer::new("k1");
        let v = validator(dir.path(), &[&trusted]);
        // Another key claiming the trusted kid: the signature does not verify.
        let impostor = Signer::new("k1");
        let err = v.validate(&impostor.sign(&claims(600))).unwrap_err();
        assert!(err.contains("signature"), "{err}");
        let unknown = Signer::new("k2");
        let err = v.validate(&unknown.sign(&claims(600))).unwrap_err();
        assert!(err.contains("no key with kid"), "{err}");
        // Tampered payload.
        let token = trusted.sign(&claims(600));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = base64_url(
            &serde_json::to_vec(&{
                let mut c = claims(600);
                c["sub"] = json!("admin");
                c
            })
            .unwrap(),
        );
        parts[1] = &forged;
        assert!(v.validate(&parts.join(".")).is_err());
        // HS256 with any secret: refused before any key is tried.
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims(600),
            &jsonwebtoken::EncodingKey::from_secret(b"x"),
        )
        .unwrap();
        assert!(v.validate(&hs).unwrap_err().contains("not accepted"));
        assert!(v.validate("not.a.jwt").is_err());
        assert!(v.validate("").is_err());
        let huge = "a".repeat(TOKEN_BYTES_MAX + 1);
        assert!(v.validate(&huge).unwrap_err().contains("limit"));
    }

    fn base64_url(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn the_jwks_file_is_reloaded_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let old = Signer::new("old");
        let new = Signer::new("new");
        let v = validator(dir.path(), &[&old]);
        assert!(v.validate(&new.sign(&claims(600))).is_err());
        write_jwks(&dir.path().join("jwks.json"), &[&new]);
        // Make sure the modification time differs even on coarse clocks.
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("jwks.json"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if v.validate(&new.sign(&claims(600))).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "JWKS never reloaded");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(v.validate(&old.sign(&claims(600))).is_err());
    }

    #[test]
    fn urls_other_than_file_are_named() {
        let err = JwtValidator::new(JwtConfig::new("https://idp/jwks")).unwrap_err();
        assert!(err.contains("not supported yet"), "{err}");
        let err = JwtValidator::new(JwtConfig::new("file:///no/such/jwks.json")).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }
}
