//! TLS listeners against the real binary: rdkafka over SSL, a PLAINTEXT and an SSL
//! listener side by side with their own advertised addresses, mTLS principals from
//! `ssl.principal.mapping.rules`, an untrusted client certificate refused, garbage and
//! stalled handshakes isolated, and certificates replaced on disk picked up without a
//! restart. Certificates are made by `rcgen` into a temporary directory.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{DEADLINE, Medulla, client_config, topic_name, wait_for};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate signed by `ca`: (certificate PEM, key PEM, certificate DER).
fn leaf(ca: &Ca, sans: &[&str], subject: &[(DnType, &str)]) -> (String, String, Vec<u8>) {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    // In certificate order (rcgen's default holds a CN of its own, first).
    params.distinguished_name = rcgen::DistinguishedName::new();
    for (t, v) in subject {
        params.distinguished_name.push(t.clone(), *v);
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

struct Pki {
    dir: PathBuf,
    ca: Ca,
    /// The server's keystore (chain and key in one PEM file, as Kafka's PEM keystore).
    keystore: PathBuf,
    server_der: Vec<u8>,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let ca = ca("medulla test CA");
        let keystore = dir.join("server.pem");
        let mut pki = Pki {
            dir: dir.to_owned(),
            ca,
            keystore,
            server_der: Vec::new(),
        };
        pki.server_der = pki.write_server_cert("broker-1");
        std::fs::write(dir.join("ca.pem"), &pki.ca.pem).unwrap();
        pki
    }

    /// Replaces the server keystore (atomically, as a rotation tool would).
    fn write_server_cert(&self, cn: &str) -> Vec<u8> {
        let (cert, key, der) = leaf(
            &self.ca,
            &["localhost", "127.0.0.1"],
            &[(DnType::CommonName, cn)],
        );
        let tmp = self.dir.join("server.pem.tmp");
        std::fs::write(&tmp, format!("{cert}{key}")).unwrap();
        std::fs::rename(&tmp, &self.keystore).unwrap();
        der
    }

    /// Writes a client certificate with `subject`, signed by `ca`; returns its files.
    fn client(&self, ca: &Ca, name: &str, subject: &[(DnType, &str)]) -> (PathBuf, PathBuf) {
        let (cert, key, _) = leaf(ca, &[], subject);
        let (c, k) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}-key.pem")),
        );
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        (c, k)
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

fn alice_subject() -> Vec<(DnType, &'static str)> {
    vec![
        (DnType::CountryName, "US"),
        (DnType::OrganizationName, "Clinic"),
        (DnType::OrganizationalUnitName, "Lab"),
        (DnType::CommonName, "alice"),
    ]
}

/// Starts a broker with a PLAINTEXT and an SSL listener (mTLS required), the SSL one
/// advertised as `localhost`.
fn start(data: &Path, pki: &Pki) -> Medulla {
    let overrides = [
        "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0".to_owned(),
        "advertised.listeners=SSL://localhost:0".to_owned(),
        "ssl.keystore.type=PEM".to_owned(),
        format!(
            "listener.name.ssl.ssl.keystore.location={}",
            pki.keystore.display()
        ),
        "ssl.truststore.type=PEM".to_owned(),
        format!("ssl.truststore.location={}", pki.ca_file().display()),
        "ssl.client.auth=required".to_owned(),
        "ssl.principal.mapping.rules=RULE:^CN=([^,]+),OU=Lab,.*$/$1/L,DEFAULT".to_owned(),
    ];
    let mut args = Vec::new();
    for o in &overrides {
        args.push("--override");
        args.push(o.as_str());
    }
    Medulla::start(data, &args)
}

fn ssl_config(addr: &str, ca: &Path, cert: &Path, key: &Path) -> rdkafka::ClientConfig {
    let mut c = client_config(addr);
    c.set("security.protocol", "SSL")
        .set("ssl.ca.location", ca.display().to_string())
        .set("ssl.certificate.location", cert.display().to_string())
        .set("ssl.key.location", key.display().to_string());
    c
}

/// `localhost:PORT` of a `127.0.0.1:PORT` address (the name the server cert carries
/// and the SSL listener advertises).
fn localhost(addr: &str) -> String {
    format!("localhost:{}", addr.rsplit_once(':').unwrap().1)
}

#[tokio::test]
async fn ssl_and_plaintext_listeners_serve_side_by_side_with_mtls_principals() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let (alice_cert, alice_key) = pki.client(&pki.ca, "alice", &alice_subject());
    let medulla = start(&dir.path().join("data"), &pki);
    let plain = medulla.listeners["PLAINTEXT"].clone();
    let ssl = localhost(&medulla.listeners["SSL"]);
    assert_eq!(medulla.addr, plain, "the first listener stays `addr`");
    assert_ne!(plain, medulla.listeners["SSL"]);

    // Each listener advertises its own endpoint (Metadata answers per listener).
    let plain_client: rdkafka::consumer::BaseConsumer =
        client_config(&plain).create().expect("plaintext client");
    let md = plain_client
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("plaintext metadata");
    let b = &md.brokers()[0];
    assert_eq!(format!("{}:{}", b.host(), b.port()), plain);
    let ssl_client: rdkafka::consumer::BaseConsumer =
        ssl_config(&ssl, &pki.ca_file(), &alice_cert, &alice_key)
            .create()
            .expect("ssl client");
    let md = ssl_client
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("ssl metadata");
    let b = &md.brokers()[0];
    assert_eq!(format!("{}:{}", b.host(), b.port()), ssl);

    // The certificate's subject CN=alice,OU=Lab,O=Clinic,C=US maps to User:alice.
    wait_for("the mTLS principal in the log", || {
        medulla
            .stderr()
            .contains("authenticated principal=User:alice")
            .then_some(())
    });

    // Produce and consume over SSL.
    let topic = topic_name("tls");
    let producer: FutureProducer = ssl_config(&ssl, &pki.ca_file(), &alice_cert, &alice_key)
        .set("acks", "all")
        .create()
        .expect("producer");
    for i in 0..20 {
        let value = format!("lab-result-{i}");
        producer
            .send(
                FutureRecord::to(&topic).key("patient-1").payload(&value),
                DEADLINE,
            )
            .await
            .expect("delivered over SSL");
    }
    let consumer: rdkafka::consumer::BaseConsumer =
        ssl_config(&ssl, &pki.ca_file(), &alice_cert, &alice_key)
            .set("group.id", "tls-test")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
    consumer.subscribe(&[&topic]).unwrap();
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < 20 {
        assert!(start.elapsed() < DEADLINE, "consumed only {got:?}");
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("message");
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    let expected: Vec<String> = (0..20).map(|i| format!("lab-result-{i}")).collect();
    assert_eq!(got, expected);

    // The same records over the PLAINTEXT listener.
    let (plain_consumer, high) = common::consumer_from_beginning(&plain, &topic, 0);
    assert_eq!(high, 20);
    drop(plain_consumer);
}

/// A rustls client for the SSL listener, presenting `client` (cert, key) if given.
fn rustls_client(ca_pem: &str, client: Option<(&Path, &Path)>) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    #[allow(deprecated)] // ring: the project's one provider
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(|c| c.unwrap())
                    .collect(),
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// Connects, sends ApiVersions, and returns the served certificate and whether a
/// response came back.
async fn api_versions_over_tls(
    connector: &tokio_rustls::TlsConnector,
    addr: &str,
) -> (Option<Vec<u8>>, bool) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = match connector.connect(name, tcp).await {
        Ok(tls) => tls,
        Err(_) => return (None, false),
    };
    let served = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec());
    let request = common::request_frame(ApiKey::ApiVersions, 0, 7, &ApiVersionsRequest::default());
    if tls.write_all(&request).await.is_err() || tls.flush().await.is_err() {
        return (served, false);
    }
    let mut size = [0u8; 4];
    let answered = tokio::time::timeout(DEADLINE, tls.read_exact(&mut size))
        .await
        .expect("an answer or a close within the deadline")
        .is_ok();
    (served, answered)
}

#[tokio::test]
async fn untrusted_certificates_garbage_and_stalled_handshakes_are_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let (alice_cert, alice_key) = pki.client(&pki.ca, "alice", &alice_subject());
    let other = ca("some other CA");
    let (mallory_cert, mallory_key) = pki.client(
        &other,
        "mallory",
        &[
            (DnType::CommonName, "alice"),
            (DnType::OrganizationalUnitName, "Lab"),
        ],
    );
    let medulla = start(&dir.path().join("data"), &pki);
    let ssl_addr = medulla.listeners["SSL"].clone();

    // A client that connects and never says anything, and one that sends garbage.
    let mut stalled = std::net::TcpStream::connect(&ssl_addr).unwrap();
    let mut garbage = std::net::TcpStream::connect(&ssl_addr).unwrap();
    garbage
        .write_all(b"\x00\x00\x00\x10this is not a TLS client hello at all")
        .unwrap();

    // Trusted: answered. Untrusted certificate, or none with client auth required: the
    // TLS session fails and no Kafka byte is served.
    let good = rustls_client(&pki.ca.pem, Some((&alice_cert, &alice_key)));
    let (_, answered) = api_versions_over_tls(&good, &ssl_addr).await;
    assert!(answered, "a trusted client is served while others stall");
    let bad = rustls_client(&pki.ca.pem, Some((&mallory_cert, &mallory_key)));
    assert!(!api_versions_over_tls(&bad, &ssl_addr).await.1);
    let anonymous = rustls_client(&pki.ca.pem, None);
    assert!(!api_versions_over_tls(&anonymous, &ssl_addr).await.1);
    // rdkafka with the untrusted certificate gets no metadata.
    let rd: rdkafka::consumer::BaseConsumer = ssl_config(
        &localhost(&ssl_addr),
        &pki.ca_file(),
        &mallory_cert,
        &mallory_key,
    )
    .create()
    .unwrap();
    assert!(rd.fetch_metadata(None, Duration::from_secs(3)).is_err());

    // The garbage connection is closed by the server.
    garbage.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 512];
    let closed = match garbage.read(&mut buf) {
        Ok(n) => n < buf.len(), // a TLS alert at most, then EOF
        Err(_) => true,
    };
    assert!(closed);
    // The stalled one is still open (its deadline is 10 s) and harmed no one.
    stalled.set_nonblocking(true).unwrap();
    assert!(matches!(
        stalled.read(&mut buf),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    ));
    let (_, answered) = api_versions_over_tls(&good, &ssl_addr).await;
    assert!(answered);
    // And it is closed once the handshake deadline has passed.
    stalled.set_nonblocking(false).unwrap();
    stalled.set_read_timeout(Some(DEADLINE)).unwrap();
    assert!(matches!(stalled.read(&mut buf), Ok(0) | Err(_)));
}

#[tokio::test]
async fn replaced_certificate_files_are_served_to_new_connections_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let (alice_cert, alice_key) = pki.client(&pki.ca, "alice", &alice_subject());
    let medulla = start(&dir.path().join("data"), &pki);
    let ssl_addr = medulla.listeners["SSL"].clone();
    let client = rustls_client(&pki.ca.pem, Some((&alice_cert, &alice_key)));
    let (served, answered) = api_versions_over_tls(&client, &ssl_addr).await;
    assert!(answered);
    assert_eq!(served.as_deref(), Some(pki.server_der.as_slice()));

    let rotated = pki.write_server_cert("broker-1-rotated");
    assert_ne!(rotated, pki.server_der);
    let start = Instant::now();
    loop {
        let (served, answered) = api_versions_over_tls(&client, &ssl_addr).await;
        assert!(answered, "served throughout the rotation");
        if served.as_deref() == Some(rotated.as_slice()) {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the rotated certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(medulla.stderr().contains("TLS certificates reloaded"));

    // A broken file keeps the certificate in force.
    // (Files are looked at when a connection arrives, at most once a second.)
    std::fs::write(&pki.keystore, "not pem").unwrap();
    let start = Instant::now();
    while !medulla
        .stderr()
        .contains("cannot be used; keeping the ones in force")
    {
        let (served, answered) = api_versions_over_tls(&client, &ssl_addr).await;
        assert!(answered);
        assert_eq!(served.as_deref(), Some(rotated.as_slice()));
        assert!(start.elapsed() < DEADLINE, "the bad file was never noticed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (served, answered) = api_versions_over_tls(&client, &ssl_addr).await;
    assert!(answered);
    assert_eq!(served.as_deref(), Some(rotated.as_slice()));
}

/// The schema registry over HTTPS (`--registry-listen https://…`) with the broker's
/// `ssl.*` keystore: a TLS client gets Confluent's answer; plain HTTP to that port gets
/// no answer; and with a secured broker the same TLS connection is refused with 401
/// until it carries credentials.
#[tokio::test(flavor = "multi_thread")]
async fn the_registry_serves_https_with_the_broker_keystore() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let keystore = format!("ssl.keystore.location={}", pki.keystore.display());
    let m = Medulla::start(
        &dir.path().join("data"),
        &[
            "--registry-listen",
            "https://127.0.0.1:0",
            "--override",
            "ssl.keystore.type=PEM",
            "--override",
            &keystore,
            "--override",
            "authorizer.class.name=medulla",
            "--override",
            "super.users=User:ANONYMOUS",
            "--override",
            "group.initial.rebalance.delay.ms=0",
        ],
    );
    let url = m.registry.clone().unwrap();
    let addr = url
        .strip_prefix("https://")
        .expect("an https URL")
        .to_owned();
    let ca = std::fs::read_to_string(pki.ca_file()).unwrap();
    let connector = rustls_client(&ca, None);
    let get = |path: &'static str, auth: Option<String>| {
        let connector = connector.clone();
        let addr = addr.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
            let auth = auth
                .map(|a| format!("Authorization: {a}\r\n"))
                .unwrap_or_default();
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
            );
            tls.write_all(request.as_bytes()).await.unwrap();
            let mut response = Vec::new();
            tokio::time::timeout(DEADLINE, tls.read_to_end(&mut response))
                .await
                .expect("a response within the deadline")
                .ok();
            String::from_utf8_lossy(&response).into_owned()
        }
    };
    // A secured broker (an authorizer): the registry wants credentials.
    let response = get("/schemas/types", None).await;
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(response.contains("40101"), "{response}");
    // A SCRAM user made through the CLI over PLAINTEXT (ANONYMOUS is a super user).
    let (ok, _, err) = common::cli(&[
        "user",
        "add",
        "carol",
        "--mechanism",
        "SCRAM-SHA-512",
        "--password",
        "carol-pw",
        "--bootstrap",
        &m.addr,
    ]);
    assert!(ok, "{err}");
    let basic = format!(
        "Basic {}",
        medulla_auth::credentials::base64_encode(b"carol:carol-pw")
    );
    let response = get("/schemas/types", Some(basic)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("AVRO"), "{response}");
    // Plain HTTP on the HTTPS port: no HTTP answer.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(b"GET /schemas/types HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, tcp.read_to_end(&mut response)).await;
    assert!(
        !response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
}
