//! rustls server settings from Kafka's `ssl.*` keys, reloaded from disk without a
//! restart. One type for every TLS listener: the broker's and the HTTP ones.
//!
//! [`TlsConfig`] is the keys, read through a lookup the caller supplies (the broker
//! applies its `listener.name.<name>.` prefix there); [`TlsSettings`] is the live
//! handle: [`TlsSettings::current`] returns the `ServerConfig` for a new connection and,
//! at most once per check interval (a second), looks at the files' modification time,
//! length and inode. When any changed it rebuilds; a rebuild that fails (a certificate
//! half-written, a key that does not match) keeps the config in force and logs an error
//! once per change, so a botched rotation never takes the listener down.
//!
//! Only PEM is read, as Kafka's `ssl.keystore.type=PEM`: a file holding the certificate
//! chain and the private key (`ssl.keystore.location`) or both inline
//! (`ssl.keystore.certificate.chain` + `ssl.keystore.key`). Encrypted keys
//! (`ssl.key.password`) are refused with a message saying how to decrypt them. The
//! crypto provider is ring, as everywhere in Medulla.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// How often [`TlsSettings::current`] looks at the files.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The largest keystore or truststore file read (PEM bundles are kilobytes; a bigger
/// file is a mistake, not a certificate).
pub const PEM_FILE_BYTES_MAX: u64 = 4 << 20;

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// A client certificate signed by the truststore is required.
    Required,
    /// A client certificate is asked for; without one the client is `User:ANONYMOUS`.
    Requested,
    /// None is asked for (Kafka's default).
    None,
}

/// A TLS protocol version of `ssl.enabled.protocols`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// `TLSv1.2`.
    Tls12,
    /// `TLSv1.3`.
    Tls13,
}

/// Where PEM text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A file, re-read when it changes.
    File(PathBuf),
    /// Inline text from the configuration.
    Inline(String),
}

/// The keystore: the server's certificate chain and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keystore {
    /// `ssl.keystore.location`: one PEM file with the chain and the key.
    File(PathBuf),
    /// `ssl.keystore.certificate.chain` and `ssl.keystore.key`.
    Inline {
        /// The chain, leaf first.
        chain: String,
        /// The private key.
        key: String,
    },
}

/// The `ssl.*` keys of one listener, validated (files are read by [`TlsSettings`]).
#[derive(Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The certificate and key.
    pub keystore: Keystore,
    /// `ssl.key.password`, when set (encrypted keys are refused).
    pub key_password: Option<String>,
    /// `ssl.truststore.location` or `ssl.truststore.certificates`: the CAs client
    /// certificates must chain to.
    pub truststore: Option<PemSource>,
    /// `ssl.client.auth`.
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols`.
    pub protocols: Vec<TlsVersion>,
    /// `ssl.cipher.suites` (IANA names); empty = the provider's defaults.
    pub cipher_suites: Vec<String>,
}

impl std::fmt::Debug for TlsConfig {
    // Inline keys are secrets: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keystore = match &self.keystore {
            Keystore::File(p) => format!("File({})", p.display()),
            Keystore::Inline { .. } => "Inline(..)".to_owned(),
        };
        f.debug_struct("TlsConfig")
            .field("keystore", &keystore)
            .field("key_password", &self.key_password.as_ref().map(|_| ".."))
            .field("truststore", &self.truststore)
            .field("client_auth", &self.client_auth)
            .field("protocols", &self.protocols)
            .field("cipher_suites", &self.cipher_suites)
            .finish()
    }
}

/// Why TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A key has a value Medulla cannot use.
    #[error("invalid value for {key}: {reason}")]
    Config {
        /// The key (as the caller named it, prefix included).
        key: String,
        /// Why.
        reason: String,
    },
    /// A keystore or truststore file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// PEM content that does not hold what it should.
    #[error("{what}: {reason}")]
    Pem {
        /// Which store.
        what: String,
        /// Why.
        reason: String,
    },
    /// rustls refused the combination (a key that does not match its certificate…).
    #[error("TLS configuration refused: {0}")]
    Rustls(String),
}

fn config_error(key: &str, reason: impl Into<String>) -> TlsError {
    TlsError::Config {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

impl TlsConfig {
    /// Reads Kafka's `ssl.*` keys through `get` (which returns the effective value of a
    /// key by its unprefixed name, or `None` when unset; `name` is how to name a key in
    /// errors). Defaults are Kafka's: keystore and truststore type `JKS` (so PEM must be
    /// asked for), `ssl.client.auth=none`, `ssl.enabled.protocols=TLSv1.2,TLSv1.3`.
    pub fn from_keys(
        get: &dyn Fn(&str) -> Option<String>,
        name: &dyn Fn(&str) -> String,
    ) -> Result<TlsConfig, TlsError> {
        let set = |key: &str| get(key).filter(|v| !v.trim().is_empty());
        let store_type = |key: &str| -> Result<(), TlsError> {
            let t = set(key).unwrap_or_else(|| "JKS".to_owned());
            if t.trim().eq_ignore_ascii_case("PEM") {
                Ok(())
            } else {
                Err(config_error(
                    &name(key),
                    format!(
                        "{t} stores are not supported; Medulla reads PEM (set {}=PEM and give PEM files)",
                        name(key)
                    ),
                ))
            }
        };
        let keystore = match (
            set("ssl.keystore.location"),
            set("ssl.keystore.certificate.chain"),
            set("ssl.keystore.key"),
        ) {
            (Some(path), None, None) => Keystore::File(PathBuf::from(path.trim())),
            (None, Some(chain), Some(key)) => Keystore::Inline { chain, key },
            (None, None, None) => {
                return Err(config_error(
                    &name("ssl.keystore.location"),
                    "a TLS listener needs a keystore: ssl.keystore.location, or ssl.keystore.certificate.chain with ssl.keystore.key",
                ));
            }
            (Some(_), _, _) => {
                return Err(config_error(
                    &name("ssl.keystore.location"),
                    "give either ssl.keystore.location or ssl.keystore.certificate.chain with ssl.keystore.key, not both",
                ));
            }
            (None, _, _) => {
                return Err(config_error(
                    &name("ssl.keystore.key"),
                    "ssl.keystore.certificate.chain and ssl.keystore.key go together",
                ));
            }
        };
        store_type("ssl.keystore.type")?;
        let truststore = match (
            set("ssl.truststore.location"),
            set("ssl.truststore.certificates"),
        ) {
            (Some(path), None) => Some(PemSource::File(PathBuf::from(path.trim()))),
            (None, Some(text)) => Some(PemSource::Inline(text)),
            (None, None) => None,
            (Some(_), Some(_)) => {
                return Err(config_error(
                    &name("ssl.truststore.location"),
                    "give either ssl.truststore.location or ssl.truststore.certificates, not both",
                ));
            }
        };
        if truststore.is_some() {
            store_type("ssl.truststore.type")?;
        }
        let client_auth = match set("ssl.client.auth")
            .unwrap_or_else(|| "none".to_owned())
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "required" => ClientAuth::Required,
            "requested" => ClientAuth::Requested,
            "none" => ClientAuth::None,
            other => {
                return Err(config_error(
                    &name("ssl.client.auth"),
                    format!("{other:?}: expected required, requested or none"),
                ));
            }
        };
        if client_auth != ClientAuth::None && truststore.is_none() {
            return Err(config_error(
                &name("ssl.client.auth"),
                "client authentication needs a truststore (ssl.truststore.location or ssl.truststore.certificates)",
            ));
        }
        let mut protocols = Vec::new();
        let given = set("ssl.enabled.protocols").unwrap_or_else(|| "TLSv1.2,TLSv1.3".into());
        for p in given.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let v = match p {
                "TLSv1.2" => TlsVersion::Tls12,
                "TLSv1.3" => TlsVersion::Tls13,
                "TLSv1" | "TLSv1.1" | "SSLv3" | "SSLv2Hello" => {
                    return Err(config_error(
                        &name("ssl.enabled.protocols"),
                        format!(
                            "{p} is not supported: TLSv1.2 is the oldest protocol Medulla speaks"
                        ),
                    ));
                }
                _ => {
                    return Err(config_error(
                        &name("ssl.enabled.protocols"),
                        format!("unknown protocol {p:?} (TLSv1.2, TLSv1.3)"),
                    ));
                }
            };
            if !protocols.contains(&v) {
                protocols.push(v);
            }
        }
        if protocols.is_empty() {
            return Err(config_error(
                &name("ssl.enabled.protocols"),
                "at least one of TLSv1.2, TLSv1.3",
            ));
        }
        let cipher_suites: Vec<String> = set("ssl.cipher.suites")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let config = TlsConfig {
            keystore,
            key_password: set("ssl.key.password"),
            truststore,
            client_auth,
            protocols,
            cipher_suites,
        };
        // The suite names are checked now, not at the first connection.
        provider(&config).map_err(|reason| config_error(&name("ssl.cipher.suites"), reason))?;
        Ok(config)
    }

    /// The files this config reads (watched for changes).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Keystore::File(p) = &self.keystore {
            files.push(p.clone());
        }
        if let Some(PemSource::File(p)) = &self.truststore {
            files.push(p.clone());
        }
        files
    }
}

/// Kafka's name of a rustls suite: IANA's (`TLS_AES_128_GCM_SHA256`).
fn iana_name(suite: rustls::SupportedCipherSuite) -> String {
    let debug = format!("{:?}", suite.suite());
    match debug.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => debug,
    }
}

/// ring's provider, its suites narrowed to `ssl.cipher.suites` when given.
fn provider(config: &TlsConfig) -> Result<CryptoProvider, String> {
    // rustls 0.23.48 deprecates ring's provider for lacking post-quantum key exchange;
    // ring is the project's one provider (aws-lc-rs is a C build), so it stays.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    if !config.cipher_suites.is_empty() {
        let mut chosen = Vec::new();
        for name in &config.cipher_suites {
            let wanted = name.to_ascii_uppercase();
            match provider
                .cipher_suites
                .iter()
                .find(|s| iana_name(**s) == wanted)
            {
                Some(s) => chosen.push(*s),
                None => {
                    let known: Vec<String> = provider
                        .cipher_suites
                        .iter()
                        .map(|s| iana_name(*s))
                        .collect();
                    return Err(format!(
                        "unsupported cipher suite {name:?}; available: {}",
                        known.join(", ")
                    ));
                }
            }
        }
        let versions: Vec<_> = config.protocols.iter().map(|v| version(*v)).collect();
        if !chosen
            .iter()
            .any(|s| versions.iter().any(|v| s.version() == *v))
        {
            return Err("no listed cipher suite works with ssl.enabled.protocols".to_owned());
        }
        provider.cipher_suites = chosen;
    }
    Ok(provider)
}

fn version(v: TlsVersion) -> &'static rustls::SupportedProtocolVersion {
    match v {
        TlsVersion::Tls12 => &rustls::version::TLS12,
        TlsVersion::Tls13 => &rustls::version::TLS13,
    }
}

fn read_pem_file(path: &Path) -> Result<String, TlsError> {
    let io = |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > PEM_FILE_BYTES_MAX {
        return Err(TlsError::Pem {
            what: path.display().to_string(),
            reason: format!("{len} bytes is larger than {PEM_FILE_BYTES_MAX}: not a PEM file"),
        });
    }
    std::fs::read_to_string(path).map_err(io)
}

/// PEM text as a configuration value may hold it: a properties file's continuation
/// lines are joined without newlines, so markers and base64 can run together. Each
/// block is rewritten with its markers on their own lines and the base64 without
/// whitespace; text outside blocks is dropped.
pub fn normalize_pem(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + "-----BEGIN ".len()..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].trim();
        let body_and_more = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let Some(body_end) = body_and_more.find(&end_marker) else {
            break;
        };
        let body: String = body_and_more[..body_end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        out.push_str(&format!("-----BEGIN {label}-----\n"));
        for line in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str(&end_marker);
        out.push('\n');
        rest = &body_and_more[body_end + end_marker.len()..];
    }
    out
}

fn certificates(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = normalize_pem(pem);
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what: what.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.to_owned(),
            reason: "no CERTIFICATE block".to_owned(),
        });
    }
    Ok(certs)
}

fn private_key(
    pem: &str,
    what: &str,
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = normalize_pem(pem);
    let refuse = |reason: &str| TlsError::Pem {
        what: what.to_owned(),
        reason: reason.to_owned(),
    };
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(refuse(
            "encrypted private keys (ssl.key.password) are not supported; decrypt the key first, e.g. `openssl pkcs8 -in key.pem -out plain-key.pem` (and keep that file readable by Medulla only)",
        ));
    }
    if password.is_some() {
        // Kafka reads a PEM key as encrypted PKCS#8 exactly when a key password is set.
        return Err(refuse(
            "ssl.key.password is set but the private key is not encrypted; remove ssl.key.password",
        ));
    }
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            refuse("no PRIVATE KEY block (PKCS#8, PKCS#1 or SEC1)")
        }
        e => refuse(&e.to_string()),
    })
}

/// Builds the `ServerConfig` `config` describes, reading its files now.
pub fn server_config(config: &TlsConfig) -> Result<ServerConfig, TlsError> {
    let (chain, key) = match &config.keystore {
        Keystore::File(path) => {
            let pem = read_pem_file(path)?;
            let what = format!("keystore {}", path.display());
            (
                certificates(&pem, &what)?,
                private_key(&pem, &what, config.key_password.as_deref())?,
            )
        }
        Keystore::Inline { chain, key } => (
            certificates(chain, "ssl.keystore.certificate.chain")?,
            private_key(key, "ssl.keystore.key", config.key_password.as_deref())?,
        ),
    };
    let provider = Arc::new(provider(config).map_err(TlsError::Rustls)?);
    let versions: Vec<_> = config.protocols.iter().map(|v| version(*v)).collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match (&config.truststore, config.client_auth) {
        (Some(store), auth) if auth != ClientAuth::None => {
            let (pem, what) = match store {
                PemSource::File(path) => (
                    read_pem_file(path)?,
                    format!("truststore {}", path.display()),
                ),
                PemSource::Inline(text) => (text.clone(), "ssl.truststore.certificates".to_owned()),
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(&pem, &what)? {
                roots.add(cert).map_err(|e| TlsError::Pem {
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Rustls(e.to_string()))?,
            )
        }
        _ => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))
}

/// What identifies a file's version without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    inode: u64,
}

fn stamps(files: &[PathBuf]) -> Vec<Option<Stamp>> {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f).ok().map(|m| Stamp {
                modified: m.modified().ok(),
                len: m.len(),
                inode: m.ino(),
            })
        })
        .collect()
}

struct State {
    current: Arc<ServerConfig>,
    /// The files' stamps when `current` was built, or when a rebuild last failed (so a
    /// bad file is reported once, and retried when it changes again).
    seen: Vec<Option<Stamp>>,
    checked_at: Instant,
}

/// A listener's live TLS settings: the config in force, rebuilt when its files change.
pub struct TlsSettings {
    config: TlsConfig,
    files: Vec<PathBuf>,
    check_interval: Duration,
    state: Mutex<State>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// Reads the files and builds the first config: an error here is a start error.
    pub fn new(config: TlsConfig) -> Result<TlsSettings, TlsError> {
        TlsSettings::with_check_interval(config, RELOAD_CHECK_INTERVAL)
    }

    /// As [`TlsSettings::new`], looking at the files at most every `check_interval`.
    pub fn with_check_interval(
        config: TlsConfig,
        check_interval: Duration,
    ) -> Result<TlsSettings, TlsError> {
        let files = config.files();
        let seen = stamps(&files);
        let current = Arc::new(server_config(&config)?);
        Ok(TlsSettings {
            config,
            files,
            check_interval,
            state: Mutex::new(State {
                current,
                seen,
                checked_at: Instant::now(),
            }),
        })
    }

    /// The settings as configured.
    pub fn config(&self) -> &TlsConfig {
        &self.config
    }

    /// The `ServerConfig` for a new connection. Every check interval this stats the
    /// files (and on a change reads a few kilobytes of PEM) under a short lock: cheap
    /// enough to do on an async worker, once a second at most.
    pub fn current(&self) -> Arc<ServerConfig> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if self.files.is_empty() || state.checked_at.elapsed() < self.check_interval {
            return state.current.clone();
        }
        state.checked_at = Instant::now();
        let now = stamps(&self.files);
        if now == state.seen {
            return state.current.clone();
        }
        state.seen = now;
        match server_config(&self.config) {
            Ok(config) => {
                tracing::info!(files = ?self.files, "TLS certificates reloaded");
                state.current = Arc::new(config);
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS certificates changed on disk but cannot be used; keeping the ones in force");
            }
        }
        state.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    struct Pki {
        ca_pem: String,
        server_pem: String,
        server_key_pem: String,
    }

    fn ca() -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert, rcgen::Issuer::new(params, key))
    }

    fn pki(cn: &str) -> Pki {
        let (ca, issuer) = ca();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        Pki {
            ca_pem: ca.pem(),
            server_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
        }
    }

    fn from(map: &[(&str, String)]) -> Result<TlsConfig, TlsError> {
        let map: BTreeMap<String, String> = map
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        TlsConfig::from_keys(&|k| map.get(k).cloned(), &|k| k.to_owned())
    }

    #[test]
    fn pem_file_keystore_and_inline_both_build() {
        let dir = tempfile::tempdir().unwrap();
        let p = pki("server");
        let keystore = dir.path().join("server.pem");
        std::fs::write(&keystore, format!("{}{}", p.server_pem, p.server_key_pem)).unwrap();
        let trust = dir.path().join("ca.pem");
        std::fs::write(&trust, &p.ca_pem).unwrap();
        let config = from(&[
            ("ssl.keystore.type", "PEM".into()),
            ("ssl.keystore.location", keystore.display().to_string()),
            ("ssl.truststore.type", "PEM".into()),
            ("ssl.truststore.location", trust.display().to_string()),
            ("ssl.client.auth", "required".into()),
        ])
        .unwrap();
        assert_eq!(config.protocols, vec![TlsVersion::Tls12, TlsVersion::Tls13]);
        server_config(&config).unwrap();
        // Inline, as a properties file's continuation lines leave it: no newlines.
        let squash = |s: &str| s.replace('\n', "");
        let inline = from(&[
            ("ssl.keystore.type", "PEM".into()),
            ("ssl.keystore.certificate.chain", squash(&p.server_pem)),
            ("ssl.keystore.key", squash(&p.server_key_pem)),
            ("ssl.truststore.type", "PEM".into()),
            ("ssl.truststore.certificates", squash(&p.ca_pem)),
            ("ssl.client.auth", "requested".into()),
            ("ssl.enabled.protocols", "TLSv1.3".into()),
            ("ssl.cipher.suites", "TLS_AES_256_GCM_SHA384".into()),
        ])
        .unwrap();
        server_config(&inline).unwrap();
    }

    #[test]
    fn unusable_settings_are_named() {
        let p = pki("server");
        let pem = |k: &str| -> (&'static str, String) {
            match k {
                "type" => ("ssl.keystore.type", "PEM".into()),
                _ => unreachable!(),
            }
        };
        for (settings, needle) in [
            (vec![pem("type")], "needs a keystore"),
            (
                vec![("ssl.keystore.location", "/x.jks".to_owned())],
                "JKS stores are not supported",
            ),
            (
                vec![
                    ("ssl.keystore.type", "PKCS12".into()),
                    ("ssl.keystore.location", "/x.p12".into()),
                ],
                "PKCS12 stores are not supported",
            ),
            (
                vec![
                    pem("type"),
                    ("ssl.keystore.location", "/k.pem".into()),
                    ("ssl.client.auth", "required".into()),
                ],
                "needs a truststore",
            ),
            (
                vec![
                    pem("type"),
                    ("ssl.keystore.location", "/k.pem".into()),
                    ("ssl.enabled.protocols", "TLSv1.1,TLSv1.2".into()),
                ],
                "TLSv1.1 is not supported",
            ),
            (
                vec![
                    pem("type"),
                    ("ssl.keystore.location", "/k.pem".into()),
                    ("ssl.cipher.suites", "TLS_RSA_WITH_RC4_128_MD5".into()),
                ],
                "unsupported cipher suite",
            ),
            (
                vec![
                    pem("type"),
                    ("ssl.keystore.location", "/k.pem".into()),
                    ("ssl.client.auth", "sometimes".into()),
                ],
                "ssl.client.auth",
            ),
        ] {
            let err = from(&settings).unwrap_err().to_string();
            assert!(err.contains(needle), "{settings:?}: {err}");
        }
        // Encrypted keys, a password on a plain key, a key of another certificate.
        let other = pki("other");
        for (key, password, needle) in [
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n"
                    .to_owned(),
                None,
                "encrypted private keys",
            ),
            (p.server_key_pem.clone(), Some("secret"), "not encrypted"),
            (other.server_key_pem.clone(), None, "refused"),
            ("nothing".to_owned(), None, "no PRIVATE KEY"),
        ] {
            let mut settings = vec![
                pem("type"),
                ("ssl.keystore.certificate.chain", p.server_pem.clone()),
                ("ssl.keystore.key", key),
            ];
            if let Some(pw) = password {
                settings.push(("ssl.key.password", pw.to_owned()));
            }
            let err = server_config(&from(&settings).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn changed_files_are_reloaded_and_bad_ones_keep_the_old_config() {
        let dir = tempfile::tempdir().unwrap();
        let keystore = dir.path().join("server.pem");
        let write = |p: &Pki| {
            let tmp = dir.path().join("tmp.pem");
            std::fs::write(&tmp, format!("{}{}", p.server_pem, p.server_key_pem)).unwrap();
            std::fs::rename(&tmp, &keystore).unwrap();
        };
        write(&pki("first"));
        let config = from(&[
            ("ssl.keystore.type", "PEM".into()),
            ("ssl.keystore.location", keystore.display().to_string()),
        ])
        .unwrap();
        let settings = TlsSettings::with_check_interval(config, Duration::ZERO).unwrap();
        let first = settings.current();
        assert!(Arc::ptr_eq(&first, &settings.current()), "unchanged files");
        write(&pki("second"));
        let second = settings.current();
        assert!(
            !Arc::ptr_eq(&first, &second),
            "a new certificate is a new config"
        );
        std::fs::write(&keystore, "garbage").unwrap();
        assert!(
            Arc::ptr_eq(&second, &settings.current()),
            "bad files keep the old"
        );
        // With the default interval nothing is looked at within the second.
        let config = settings.config().clone();
        write(&pki("third"));
        let slow = TlsSettings::new(config).unwrap();
        let a = slow.current();
        write(&pki("fourth"));
        assert!(Arc::ptr_eq(&a, &slow.current()));
    }
}
