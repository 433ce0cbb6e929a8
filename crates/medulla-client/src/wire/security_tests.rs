//! [`super::Connection`] against a tiny in-test broker on a real socket: TLS (rcgen
//! certificates, host-name and CA checks, client certificates) and SASL (PLAIN, SCRAM
//! with a server that computes RFC 5802 itself, OAUTHBEARER, KIP-368 re-authentication).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::sasl::ScramHash;

const USER: &str = "alice";
const PASSWORD: &str = "alice-secret";
const TOKEN: &str = "header.payload.signature";
const SALT: &[u8] = b"0123456789abcdef";
const ITERATIONS: u32 = 4096;

/// What the fake broker does.
#[derive(Clone, Default)]
struct Behaviour {
    tls: Option<Arc<rustls::ServerConfig>>,
    mechanisms: Vec<&'static str>,
    /// Send a server signature the client must refuse.
    bad_server_signature: bool,
    session_lifetime_ms: i64,
}

/// What the fake broker saw.
#[derive(Default)]
struct Seen {
    authentications: AtomicUsize,
    metadata_requests: AtomicUsize,
    client_certificates: Mutex<Vec<usize>>,
}

async fn start(behaviour: Behaviour) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (b, seen) = (behaviour.clone(), seen2.clone());
            tokio::spawn(async move {
                match &b.tls {
                    None => {
                        let _ = serve(tcp, &b, &seen).await;
                    }
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            let certs = tls.get_ref().1.peer_certificates().map_or(0, <[_]>::len);
                            seen.client_certificates.lock().unwrap().push(certs);
                            let _ = serve(tls, &b, &seen).await;
                        }
                    }
                }
            });
        }
    });
    (format!("localhost:{port}"), seen)
}

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

async fn reply<S: AsyncWrite + Unpin, R: Encodable>(
    stream: &mut S,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &R,
) -> TestResult {
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api.response_header_version(version))?;
    response.encode(&mut buf, version)?;
    stream.write_all(&(buf.len() as i32).to_be_bytes()).await?;
    stream.write_all(&buf).await?;
    Ok(())
}

/// Per-connection SCRAM server state: (client-first-bare, server-first, combined nonce).
type ScramState = Option<(String, String, String)>;

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    b: &Behaviour,
    seen: &Seen,
) -> TestResult {
    let mut mechanism = String::new();
    let mut scram: ScramState = None;
    let mut oauth_failed = false;
    loop {
        let size = stream.read_i32().await?;
        let mut body = vec![0u8; size as usize];
        stream.read_exact(&mut body).await?;
        let key = i16::from_be_bytes([body[0], body[1]]);
        let version = i16::from_be_bytes([body[2], body[3]]);
        let api = ApiKey::try_from(key).map_err(|_| "unknown api")?;
        let mut body = Bytes::from(body);
        let header = RequestHeader::decode(&mut body, api.request_header_version(version))?;
        let id = header.correlation_id;
        match api {
            ApiKey::ApiVersions => {
                let keys = [(18, 0, 3), (17, 0, 1), (36, 0, 2), (3, 0, 12)];
                let response = ApiVersionsResponse::default().with_api_keys(
                    keys.iter()
                        .map(|(k, lo, hi)| {
                            ApiVersion::default()
                                .with_api_key(*k)
                                .with_min_version(*lo)
                                .with_max_version(*hi)
                        })
                        .collect(),
                );
                reply(&mut stream, api, version, id, &response).await?;
            }
            ApiKey::SaslHandshake => {
                let request = SaslHandshakeRequest::decode(&mut body, version)?;
                mechanism = request.mechanism.to_string();
                let known = b.mechanisms.contains(&mechanism.as_str());
                let response = SaslHandshakeResponse::default()
                    .with_error_code(if known { 0 } else { 33 })
                    .with_mechanisms(
                        b.mechanisms
                            .iter()
                            .map(|m| StrBytes::from_static_str(m))
                            .collect(),
                    );
                reply(&mut stream, api, version, id, &response).await?;
            }
            ApiKey::SaslAuthenticate => {
                let request = SaslAuthenticateRequest::decode(&mut body, version)?;
                let (error, challenge) = authenticate(
                    &mechanism,
                    &request.auth_bytes,
                    b,
                    &mut scram,
                    &mut oauth_failed,
                );
                let mut response = SaslAuthenticateResponse::default()
                    .with_auth_bytes(Bytes::from(challenge.unwrap_or_default()));
                match error {
                    Some(message) => {
                        response = response
                            .with_error_code(58)
                            .with_error_message(Some(StrBytes::from_string(message)));
                    }
                    None => {
                        if response.auth_bytes.is_empty()
                            || mechanism.starts_with("SCRAM") && scram.is_none()
                        {
                            seen.authentications.fetch_add(1, Ordering::SeqCst);
                            response = response.with_session_lifetime_ms(b.session_lifetime_ms);
                        }
                    }
                }
                reply(&mut stream, api, version, id, &response).await?;
            }
            ApiKey::Metadata => {
                MetadataRequest::decode(&mut body, version)?;
                seen.metadata_requests.fetch_add(1, Ordering::SeqCst);
                reply(&mut stream, api, version, id, &MetadataResponse::default()).await?;
            }
            _ => return Err("unexpected request".into()),
        }
    }
}

fn invalid(mechanism: &str) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL \
         mechanism {mechanism}"
    )
}

/// One SaslAuthenticate step of the fake broker: (error message, challenge).
fn authenticate(
    mechanism: &str,
    bytes: &[u8],
    b: &Behaviour,
    scram: &mut ScramState,
    oauth_failed: &mut bool,
) -> (Option<String>, Option<Vec<u8>>) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    match mechanism {
        "PLAIN" => {
            if text == format!("\0{USER}\0{PASSWORD}") {
                (None, None)
            } else {
                (Some(invalid(mechanism)), None)
            }
        }
        "OAUTHBEARER" => {
            if *oauth_failed {
                (Some("invalid token".into()), None)
            } else if text == format!("n,,\x01auth=Bearer {TOKEN}\x01\x01") {
                (None, None)
            } else {
                *oauth_failed = true;
                (None, Some(br#"{"status":"invalid_token"}"#.to_vec()))
            }
        }
        _ => {
            let hash = if mechanism == "SCRAM-SHA-256" {
                ScramHash::Sha256
            } else {
                ScramHash::Sha512
            };
            match scram.take() {
                None => {
                    let bare = text.strip_prefix("n,,").unwrap_or("").to_owned();
                    let nonce = bare.split(",r=").nth(1).unwrap_or("").to_owned();
                    let combined = format!("{nonce}server-part");
                    let first = format!("r={combined},s={},i={ITERATIONS}", B64.encode(SALT));
                    *scram = Some((bare, first.clone(), combined));
                    (None, Some(first.into_bytes()))
                }
                Some((bare, first, combined)) => {
                    let (without_proof, proof) = text.rsplit_once(",p=").unwrap_or(("", ""));
                    if without_proof != format!("c=biws,r={combined}") {
                        return (Some("bad nonce".into()), None);
                    }
                    let salted = hash.salted_password(PASSWORD.as_bytes(), SALT, ITERATIONS);
                    let stored = hash.hash(&hash.hmac(&salted, b"Client Key"));
                    let auth = format!("{bare},{first},{without_proof}");
                    let signature = hash.hmac(&stored, auth.as_bytes());
                    let proof = B64.decode(proof).unwrap_or_default();
                    let client_key: Vec<u8> =
                        proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
                    if hash.hash(&client_key) != stored {
                        return (Some(invalid(mechanism)), None);
                    }
                    let mut server = hash.hmac(&hash.hmac(&salted, b"Server Key"), auth.as_bytes());
                    if b.bad_server_signature {
                        server[0] ^= 1;
                    }
                    (None, Some(format!("v={}", B64.encode(server)).into_bytes()))
                }
            }
        }
    }
}

fn sasl_config(addr: &str, mechanism: &str) -> ClientConfig {
    ClientConfig::new(addr)
        .with_property("security.protocol", "SASL_PLAINTEXT")
        .with_property("sasl.mechanism", mechanism)
        .with_property("sasl.username", USER)
        .with_property("sasl.password", PASSWORD)
        .with_property("sasl.oauthbearer.token", TOKEN)
}

async fn metadata(conn: &mut Connection) -> Result<MetadataResponse, ClientError> {
    conn.send(&MetadataRequest::default(), 12, REQUEST_TIMEOUT)
        .await
}

fn sasl_behaviour() -> Behaviour {
    Behaviour {
        mechanisms: vec!["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"],
        ..Behaviour::default()
    }
}

#[tokio::test]
async fn every_mechanism_authenticates_and_then_serves_requests() {
    let (addr, seen) = start(sasl_behaviour()).await;
    for m in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] {
        let mut conn = Connection::open(&sasl_config(&addr, m), &addr)
            .await
            .unwrap_or_else(|e| panic!("{m}: {e}"));
        metadata(&mut conn).await.unwrap();
    }
    assert_eq!(seen.authentications.load(Ordering::SeqCst), 4);
    assert_eq!(seen.metadata_requests.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn wrong_credentials_are_sasl_authentication_failed_with_the_brokers_message() {
    let (addr, seen) = start(sasl_behaviour()).await;
    for m in ["PLAIN", "SCRAM-SHA-512"] {
        let cfg = sasl_config(&addr, m).with_property("sasl.password", "wrong");
        let e = Connection::open(&cfg, &addr).await.err().unwrap();
        let text = e.to_string();
        assert!(
            matches!(&e, ClientError::Authentication { name, .. } if name == "SASL_AUTHENTICATION_FAILED"),
            "{text}"
        );
        assert!(text.contains(&invalid(m)), "{text}");
    }
    let cfg = sasl_config(&addr, "OAUTHBEARER").with_property("sasl.oauthbearer.token", "x.y.z");
    let e = Connection::open(&cfg, &addr)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("SASL_AUTHENTICATION_FAILED"), "{e}");
    assert_eq!(seen.authentications.load(Ordering::SeqCst), 0);
    assert_eq!(seen.metadata_requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_server_that_cannot_prove_the_password_is_refused() {
    let (addr, _) = start(Behaviour {
        bad_server_signature: true,
        ..sasl_behaviour()
    })
    .await;
    let e = Connection::open(&sasl_config(&addr, "SCRAM-SHA-256"), &addr)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, ClientError::Sasl { .. }), "{e}");
    assert!(e.to_string().contains("server signature is wrong"), "{e}");
}

#[tokio::test]
async fn a_mechanism_the_broker_does_not_offer_is_named() {
    let (addr, _) = start(Behaviour {
        mechanisms: vec!["SCRAM-SHA-512"],
        ..Behaviour::default()
    })
    .await;
    let e = Connection::open(&sasl_config(&addr, "PLAIN"), &addr)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("UNSUPPORTED_SASL_MECHANISM"), "{e}");
    assert!(e.contains("it offers: SCRAM-SHA-512"), "{e}");
}

#[tokio::test]
async fn the_session_is_reauthenticated_before_it_expires() {
    let (addr, seen) = start(Behaviour {
        session_lifetime_ms: 1,
        ..sasl_behaviour()
    })
    .await;
    let mut conn = Connection::open(&sasl_config(&addr, "SCRAM-SHA-512"), &addr)
        .await
        .unwrap();
    // A 1 ms lifetime is past by the time the next request goes out (≥ 1 ms later: the
    // SCRAM iterations alone take longer), so each request re-authenticates first.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.authentications.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "no re-authentication");
        metadata(&mut conn).await.unwrap();
    }
}

#[tokio::test]
async fn configuration_errors_are_named_before_connecting() {
    let cfg = ClientConfig::new("h:1").with_property("security.protocol", "sasl_ssl");
    let e = dial(&cfg, "localhost:1").await.err().unwrap().to_string();
    assert!(e.contains("needs sasl.mechanism"), "{e}");
    let cfg = ClientConfig::new("h:1").with_property("security.protocol", "kerberos");
    let e = dial(&cfg, "localhost:1").await.err().unwrap().to_string();
    assert!(e.contains("security.protocol=kerberos"), "{e}");
    let cfg = sasl_config("h:1", "GSSAPI");
    let e = dial(&cfg, "localhost:1").await.err().unwrap().to_string();
    assert!(e.contains("GSSAPI is not supported"), "{e}");
    let cfg = ClientConfig::new("h:1")
        .with_property("security.protocol", "ssl")
        .with_property("ssl.ca.location", "/nonexistent/ca.pem");
    let e = dial(&cfg, "localhost:1").await.err().unwrap().to_string();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
}

/// A CA, a server certificate for `localhost` and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: String,
}

impl Pki {
    fn new() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "medulla test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "alice");
        let client = client_params.signed_by(&client_key, &ca).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        // One file with chain and key, as a Java PEM keystore holds them.
        std::fs::write(
            dir.path().join("client.pem"),
            format!("{}{}", client.pem(), client_key.serialize_pem()),
        )
        .unwrap();
        Pki {
            dir,
            ca: ca.der().clone(),
            server_chain: vec![server.der().clone()],
            server_key: server_key.serialize_pem(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn server(&self, require_client_certificate: bool) -> Arc<rustls::ServerConfig> {
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_certificate {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca.clone()).unwrap();
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .unwrap(),
            )
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::from_pem_slice(self.server_key.as_bytes()).unwrap();
        Arc::new(
            builder
                .with_single_cert(self.server_chain.clone(), key)
                .unwrap(),
        )
    }

    fn client(&self, addr: &str) -> ClientConfig {
        ClientConfig::new(addr)
            .with_property("security.protocol", "SSL")
            .with_property("ssl.ca.location", self.path("ca.pem"))
    }
}

#[tokio::test]
async fn tls_checks_the_ca_and_the_host_name() {
    let pki = Pki::new();
    let (addr, seen) = start(Behaviour {
        tls: Some(pki.server(false)),
        ..Behaviour::default()
    })
    .await;
    let mut conn = Connection::open(&pki.client(&addr), &addr).await.unwrap();
    metadata(&mut conn).await.unwrap();

    // The certificate names localhost, not 127.0.0.1.
    let ip = addr.replace("localhost", "127.0.0.1");
    let e = Connection::open(&pki.client(&ip), &ip).await.err().unwrap();
    assert!(matches!(e, ClientError::Tls { .. }), "{e}");
    assert!(e.to_string().contains("not valid for name"), "{e}");
    let cfg = pki
        .client(&ip)
        .with_property("ssl.endpoint.identification.algorithm", "none");
    Connection::open(&cfg, &ip).await.unwrap();

    // Another CA is not trusted, unless verification is off.
    let other = Pki::new();
    let e = Connection::open(&other.client(&addr), &addr)
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("invalid peer certificate"), "{e}");
    let cfg = other
        .client(&addr)
        .with_property("enable.ssl.certificate.verification", "false");
    Connection::open(&cfg, &addr).await.unwrap();
    assert_eq!(seen.metadata_requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn tls_presents_the_client_certificate() {
    let pki = Pki::new();
    let (addr, seen) = start(Behaviour {
        tls: Some(pki.server(true)),
        ..Behaviour::default()
    })
    .await;
    // Without a certificate the broker ends the handshake (under TLS 1.3 the client
    // learns it at its first read).
    assert!(Connection::open(&pki.client(&addr), &addr).await.is_err());
    let cfg = pki
        .client(&addr)
        .with_property("ssl.certificate.location", pki.path("client.pem"))
        .with_property("ssl.key.location", pki.path("client.pem"));
    let mut conn = Connection::open(&cfg, &addr).await.unwrap();
    metadata(&mut conn).await.unwrap();
    assert_eq!(*seen.client_certificates.lock().unwrap(), vec![1]);

    let half = pki
        .client(&addr)
        .with_property("ssl.certificate.location", pki.path("client.pem"));
    let e = Connection::open(&half, &addr)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("ssl.key.location is not"), "{e}");
}

#[tokio::test]
async fn sasl_over_tls() {
    let pki = Pki::new();
    let (addr, seen) = start(Behaviour {
        tls: Some(pki.server(false)),
        ..sasl_behaviour()
    })
    .await;
    let cfg = sasl_config(&addr, "SCRAM-SHA-512")
        .with_property("security.protocol", "SASL_SSL")
        .with_property("ssl.ca.location", pki.path("ca.pem"));
    let mut conn = Connection::open(&cfg, &addr).await.unwrap();
    metadata(&mut conn).await.unwrap();
    assert_eq!(seen.authentications.load(Ordering::SeqCst), 1);
}
