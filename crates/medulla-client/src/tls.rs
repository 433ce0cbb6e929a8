//! TLS for [`crate::wire`]: a rustls client configuration (ring provider only) built from
//! librdkafka's `ssl.*` properties, so one set of settings serves librdkafka and this
//! crate's own connections alike.
//!
//! | property | meaning |
//! |---|---|
//! | `ssl.ca.location` / `ssl.ca.pem` | trusted CA certificates (PEM file, directory of PEM files, or inline); default the system bundle |
//! | `ssl.certificate.location` / `ssl.certificate.pem` | the client's certificate chain (mTLS) |
//! | `ssl.key.location` / `ssl.key.pem` | the client's private key (unencrypted PKCS#8, PKCS#1 or SEC1) |
//! | `enable.ssl.certificate.verification` | `false`: trust any server certificate (tests only) |
//! | `ssl.endpoint.identification.algorithm` | `https` (default): the certificate must name the host; `none`: it need not |

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::limits::PEM_BYTES_MAX;
use crate::{ClientConfig, ClientError};

/// Where system CA bundles live (librdkafka's `probe` list, the common part).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn config_error(detail: impl Into<String>) -> ClientError {
    ClientError::Config(detail.into())
}

/// The ring provider: the one crypto provider of the workspace. rustls 0.23.48
/// deprecates it for lacking post-quantum key exchange, which only aws-lc offers; we keep
/// ring (no C build, DEPENDENCIES.md) and accept classical key exchange.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM file, refusing one larger than [`PEM_BYTES_MAX`].
fn read_pem(key: &str, path: &Path) -> Result<Vec<u8>, ClientError> {
    read_config_file(path, PEM_BYTES_MAX)
        .map_err(|e| config_error(format!("{key}={}: {e}", path.display())))
}

/// Reads a configuration file of at most `bytes_max` bytes.
pub(crate) fn read_config_file(path: &Path, bytes_max: usize) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(bytes_max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() > bytes_max {
        return Err(format!("larger than {bytes_max} bytes"));
    }
    Ok(bytes)
}

/// The PEM text of `pem_key` (inline) or of the file `location_key` names.
fn pem_source(
    cfg: &ClientConfig,
    location_key: &str,
    pem_key: &str,
) -> Result<Option<(String, Vec<u8>)>, ClientError> {
    if let Some(pem) = cfg.property(pem_key) {
        return Ok(Some((pem_key.to_owned(), pem.as_bytes().to_vec())));
    }
    match cfg.property(location_key) {
        Some(path) => Ok(Some((
            format!("{location_key}={path}"),
            read_pem(location_key, Path::new(path))?,
        ))),
        None => Ok(None),
    }
}

fn certificates(what: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_error(format!("{what}: not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(config_error(format!("{what}: no CERTIFICATE in it")));
    }
    Ok(certs)
}

/// The trusted roots: `ssl.ca.pem`, `ssl.ca.location` (a file or a directory of PEM
/// files), or the system bundle.
fn roots(cfg: &ClientConfig) -> Result<RootCertStore, ClientError> {
    let mut pems: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(pem) = cfg.property("ssl.ca.pem") {
        pems.push(("ssl.ca.pem".to_owned(), pem.as_bytes().to_vec()));
    } else if let Some(location) = cfg.property("ssl.ca.location") {
        let path = Path::new(location);
        if path.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| config_error(format!("ssl.ca.location={location}: {e}")))?;
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_file() {
                    pems.push((p.display().to_string(), read_pem("ssl.ca.location", &p)?));
                }
            }
        } else {
            pems.push((
                format!("ssl.ca.location={location}"),
                read_pem("ssl.ca.location", path)?,
            ));
        }
    } else {
        let bundle = SYSTEM_CA_BUNDLES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                config_error("no CA certificates: set ssl.ca.location (no system bundle found)")
            })?;
        pems.push((
            bundle.display().to_string(),
            read_pem("ssl.ca.location", bundle)?,
        ));
    }
    let mut store = RootCertStore::empty();
    for (what, pem) in &pems {
        for cert in certificates(what, pem)? {
            store
                .add(cert)
                .map_err(|e| config_error(format!("{what}: unusable CA certificate: {e}")))?;
        }
    }
    Ok(store)
}

/// The client certificate chain and key, if configured (both or neither).
#[allow(clippy::type_complexity)]
fn client_identity(
    cfg: &ClientConfig,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, ClientError> {
    if cfg.property("ssl.key.password").is_some() {
        return Err(config_error(
            "ssl.key.password: encrypted private keys are not supported; decrypt the key \
             (openssl pkcs8 -nocrypt) and protect the file instead",
        ));
    }
    let chain = pem_source(cfg, "ssl.certificate.location", "ssl.certificate.pem")?;
    let key = pem_source(cfg, "ssl.key.location", "ssl.key.pem")?;
    match (chain, key) {
        (None, None) => Ok(None),
        (Some((what, pem)), Some((key_what, key_pem))) => {
            let chain = certificates(&what, &pem)?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| config_error(format!("{key_what}: no usable private key: {e}")))?;
            Ok(Some((chain, key)))
        }
        (Some(_), None) => Err(config_error(
            "ssl.certificate.location is set but ssl.key.location is not",
        )),
        (None, Some(_)) => Err(config_error(
            "ssl.key.location is set but ssl.certificate.location is not",
        )),
    }
}

fn flag(cfg: &ClientConfig, key: &str, default: bool) -> Result<bool, ClientError> {
    match cfg.property(key).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(config_error(format!("{key}={v}: expected true or false"))),
    }
}

/// The rustls client configuration `cfg`'s `ssl.*` properties describe.
pub fn client_config(cfg: &ClientConfig) -> Result<rustls::ClientConfig, ClientError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("TLS: {e}")))?;
    let verify = flag(cfg, "enable.ssl.certificate.verification", true)?;
    let check_host = match cfg
        .property("ssl.endpoint.identification.algorithm")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("https") => true,
        Some("none") | Some("") => false,
        Some(other) => {
            return Err(config_error(format!(
                "ssl.endpoint.identification.algorithm={other}: expected https or none"
            )));
        }
    };
    let builder = if !verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let roots = Arc::new(roots(cfg)?);
        if check_host {
            builder.with_root_certificates(roots)
        } else {
            let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| config_error(format!("TLS: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoHostnameCheck(inner)))
        }
    };
    match client_identity(cfg)? {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| config_error(format!("the client certificate and key: {e}"))),
    }
}

/// The name the server's certificate must carry: the host part of `host:port`.
pub fn server_name(addr: &str) -> Result<ServerName<'static>, ClientError> {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).map_err(|e| {
        config_error(format!(
            "{addr}: {host:?} is not a valid TLS server name: {e}"
        ))
    })
}

fn is_name_error(e: &CertificateError) -> bool {
    matches!(
        e,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
    )
}

/// Verifies the chain against the trusted roots but not the host name
/// (`ssl.endpoint.identification.algorithm=none`).
#[derive(Debug)]
struct NoHostnameCheck(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for NoHostnameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name: a name error means the chain is good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(e)) if is_name_error(&e) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Trusts any server certificate (`enable.ssl.certificate.verification=false`), but
/// still checks the handshake signatures, so the session is bound to that certificate.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
