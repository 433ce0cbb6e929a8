//! SASL on a real `medulla serve` (issue 6): librdkafka clients over SASL_PLAINTEXT with
//! PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER; users made with AlterUserScramCredentials
//! and kept across a restart; refusals (wrong password, expired token, wrong audience);
//! KIP-368 session lifetimes; and bad SASL input that ends only its own connection.

mod common;

use common::jwt::Issuer;

use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{Medulla, read_frame, request_frame, topic_name, wait_for};
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    ApiVersionsRequest, ApiVersionsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse, MetadataRequest, MetadataResponse, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use medulla_auth::credentials::ScramMechanism;
use medulla_client::sasl::{Credentials, Mechanism, SaslClient};
use rdkafka::ClientContext;
use rdkafka::client::OAuthToken;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

const PLAIN_JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret";"#;

/// A broker whose one listener is SASL_PLAINTEXT. The settings go in a config file, as
/// an operator writes them (a JAAS value ends with `;`, the `--override` separator).
fn sasl_broker(data_dir: &std::path::Path, extra: &[&str]) -> Medulla {
    let config = data_dir.with_extension("properties");
    let mut text = format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_JAAS}\n");
    for e in extra {
        text.push_str(e);
        text.push('\n');
    }
    std::fs::write(&config, text).unwrap();
    let config = config.display().to_string();
    Medulla::start(
        data_dir,
        &[
            "--config",
            &config,
            "--override",
            "listeners=SASL_PLAINTEXT://127.0.0.1:0",
        ],
    )
}

// ---------------------------------------------------------------------------------
// A raw Kafka-protocol connection.

struct Raw {
    s: TcpStream,
    correlation: i32,
}

impl Raw {
    fn connect(addr: &str) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Raw { s, correlation: 0 }
    }

    /// Sends a request and reads its response body; `None` if the connection closed.
    fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Req,
    ) -> Option<Resp> {
        self.correlation += 1;
        self.s
            .write_all(&request_frame(api, version, self.correlation, body))
            .ok()?;
        let mut frame = read_frame(&mut self.s).ok()?;
        let header =
            ResponseHeader::decode(&mut frame, api.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, self.correlation);
        Some(Resp::decode(&mut frame, version).unwrap())
    }

    fn handshake(&mut self, mechanism: &str) -> SaslHandshakeResponse {
        self.call(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_string(mechanism.into())),
        )
        .expect("SaslHandshake answer")
    }

    fn authenticate(&mut self, bytes: &[u8], version: i16) -> SaslAuthenticateResponse {
        self.call(
            ApiKey::SaslAuthenticate,
            version,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(bytes)),
        )
        .expect("SaslAuthenticate answer")
    }

    fn plain(&mut self, user: &str, password: &str) -> SaslAuthenticateResponse {
        assert_eq!(self.handshake("PLAIN").error_code, 0);
        self.authenticate(format!("\0{user}\0{password}").as_bytes(), 2)
    }

    fn metadata(&mut self) -> Option<MetadataResponse> {
        self.call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(vec![])),
        )
    }

    /// Whether the broker has closed the connection (reads to EOF or a reset).
    fn is_closed(&mut self) -> bool {
        use std::io::Read;
        let mut byte = [0u8; 1];
        matches!(self.s.read(&mut byte), Ok(0) | Err(_))
    }
}

fn alter_scram(
    raw: &mut Raw,
    users: &[(&str, ScramMechanism, &str)],
) -> AlterUserScramCredentialsResponse {
    let upsertions = users
        .iter()
        .map(|(user, m, password)| {
            let salt = format!("salt-of-{user}").into_bytes();
            let salted = m.salted_password(password.as_bytes(), &salt, 4096);
            ScramCredentialUpsertion::default()
                .with_name(StrBytes::from_string((*user).to_owned()))
                .with_mechanism(m.type_code())
                .with_iterations(4096)
                .with_salt(salt.into())
                .with_salted_password(salted.into())
        })
        .collect();
    raw.call(
        ApiKey::AlterUserScramCredentials,
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(upsertions),
    )
    .expect("AlterUserScramCredentials answer")
}

// ---------------------------------------------------------------------------------
// librdkafka clients.

/// Collects the errors librdkafka reports, and hands out an OAUTHBEARER token.
#[derive(Clone, Default)]
struct Ctx {
    errors: Arc<Mutex<Vec<(RDKafkaErrorCode, String)>>>,
    token: Option<(String, String)>,
}

impl ClientContext for Ctx {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error
            .rdkafka_error_code()
            .unwrap_or(RDKafkaErrorCode::Unknown);
        self.errors.lock().unwrap().push((code, reason.to_owned()));
    }

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        let (token, principal) = self.token.clone().ok_or("no token in this test")?;
        Ok(OAuthToken {
            token,
            principal_name: principal,
            lifetime_ms: now_ms() + 600_000,
        })
    }
}

impl rdkafka::consumer::ConsumerContext for Ctx {}
impl rdkafka::producer::ProducerContext for Ctx {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn sasl_config(addr: &str, mechanism: &str, user: &str, password: &str) -> rdkafka::ClientConfig {
    let mut c = common::client_config(addr);
    c.set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", mechanism);
    if mechanism != "OAUTHBEARER" {
        c.set("sasl.username", user).set("sasl.password", password);
    }
    c
}

/// Produces `value` to `topic` and reads it back with a second client, both
/// authenticating with `config`.
fn produce_and_consume(config: &rdkafka::ClientConfig, ctx: Ctx, topic: &str, value: &str) {
    let producer: BaseProducer<Ctx> = config.create_with_context(ctx.clone()).expect("producer");
    producer
        .send(BaseRecord::<(), str, ()>::to(topic).payload(value))
        .map_err(|(e, _)| e)
        .expect("enqueue");
    producer
        .flush(Duration::from_secs(30))
        .expect("flush: the record was not delivered");

    let consumer: BaseConsumer<Ctx> = config
        .clone()
        .set("group.id", "medulla-sasl-test")
        .set("enable.auto.commit", "false")
        .create_with_context(ctx)
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let got = wait_for("the produced record", || {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                Some(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
            }
            _ => None,
        }
    });
    assert_eq!(got, value);
}

// ---------------------------------------------------------------------------------

#[test]
fn plain_and_scram_clients_produce_and_consume_and_users_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = sasl_broker(dir.path(), &[]);

    // An admin authenticated with a static PLAIN user creates SCRAM users.
    let mut admin = Raw::connect(&broker.addr);
    assert_eq!(admin.plain("admin", "admin-secret").error_code, 0);
    let altered = alter_scram(
        &mut admin,
        &[
            ("bob", ScramMechanism::Sha256, "bob-secret"),
            ("carol", ScramMechanism::Sha512, "carol-secret"),
        ],
    );
    for r in &altered.results {
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    }

    for (mechanism, user, password) in [
        ("PLAIN", "alice", "alice-secret"),
        ("SCRAM-SHA-256", "bob", "bob-secret"),
        ("SCRAM-SHA-512", "carol", "carol-secret"),
        // PLAIN against a SCRAM user's stored credential.
        ("PLAIN", "carol", "carol-secret"),
    ] {
        let topic = topic_name(&format!("sasl-{}", mechanism.to_lowercase()));
        produce_and_consume(
            &sasl_config(&broker.addr, mechanism, user, password),
            Ctx::default(),
            &topic,
            &format!("hello from {user} over {mechanism}"),
        );
    }

    let described: DescribeUserScramCredentialsResponse = admin
        .call(
            ApiKey::DescribeUserScramCredentials,
            0,
            &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                UserName::default().with_name(StrBytes::from_static_str("carol")),
                UserName::default().with_name(StrBytes::from_static_str("nobody")),
            ])),
        )
        .unwrap();
    assert_eq!(described.results[0].error_code, 0);
    assert_eq!(described.results[0].credential_infos[0].mechanism, 2);
    assert_eq!(described.results[0].credential_infos[0].iterations, 4096);
    assert_eq!(described.results[1].error_code, 91); // RESOURCE_NOT_FOUND

    broker.terminate();
    let broker = sasl_broker(dir.path(), &[]);
    let topic = topic_name("sasl-after-restart");
    produce_and_consume(
        &sasl_config(&broker.addr, "SCRAM-SHA-512", "carol", "carol-secret"),
        Ctx::default(),
        &topic,
        "still here",
    );
}

#[test]
fn a_wrong_password_is_refused_and_carries_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let broker = sasl_broker(dir.path(), &[]);
    let mut admin = Raw::connect(&broker.addr);
    assert_eq!(admin.plain("admin", "admin-secret").error_code, 0);
    alter_scram(&mut admin, &[("bob", ScramMechanism::Sha512, "bob-secret")]);

    for (mechanism, user) in [
        ("PLAIN", "alice"),
        ("SCRAM-SHA-512", "bob"),
        ("SCRAM-SHA-512", "nobody"),
    ] {
        let topic = topic_name("sasl-refused");
        let ctx = Ctx::default();
        let producer: BaseProducer<Ctx> = sasl_config(&broker.addr, mechanism, user, "wrong")
            .set("message.timeout.ms", "3000")
            .create_with_context(ctx.clone())
            .unwrap();
        producer
            .send(BaseRecord::<(), str, ()>::to(&topic).payload("must not arrive"))
            .map_err(|(e, _)| e)
            .unwrap();
        let reason = wait_for("an authentication error", || {
            producer.poll(Duration::from_millis(100));
            ctx.errors
                .lock()
                .unwrap()
                .iter()
                .find(|(code, _)| *code == RDKafkaErrorCode::Authentication)
                .map(|(_, r)| r.clone())
        });
        assert!(
            reason.contains("SASL authentication error"),
            "{mechanism}: {reason}"
        );
        // The record never got through: it times out in the client.
        let _ = producer.flush(Duration::from_secs(10));
        assert!(
            !dir.path().join("topics").join(&topic).exists(),
            "{mechanism}: the refused client created its topic"
        );
    }
}

#[test]
fn bad_sasl_input_ends_only_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = sasl_broker(
        dir.path(),
        &["connection.failed.authentication.delay.ms=100"],
    );
    let mut admin = Raw::connect(&broker.addr);
    assert_eq!(admin.plain("admin", "admin-secret").error_code, 0);
    alter_scram(&mut admin, &[("bob", ScramMechanism::Sha256, "bob-secret")]);

    // ApiVersions is served before authentication and lists the SASL APIs.
    let mut c = Raw::connect(&broker.addr);
    let versions: ApiVersionsResponse = c
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .unwrap();
    let handshake = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::SaslHandshake as i16)
        .unwrap();
    assert_eq!((handshake.min_version, handshake.max_version), (1, 1));
    // Anything else before authentication closes the connection.
    assert!(c.metadata().is_none());

    // SaslAuthenticate with no handshake: ILLEGAL_SASL_STATE, closed.
    let mut c = Raw::connect(&broker.addr);
    assert_eq!(c.authenticate(b"\0admin\0admin-secret", 1).error_code, 34);
    assert!(c.is_closed());

    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the list, closed.
    let mut c = Raw::connect(&broker.addr);
    let r = c.handshake("GSSAPI");
    assert_eq!(r.error_code, 33);
    let listed: Vec<String> = r.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(listed, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    assert!(c.is_closed());

    // SCRAM messages out of order: the client-final first.
    let mut c = Raw::connect(&broker.addr);
    assert_eq!(c.handshake("SCRAM-SHA-256").error_code, 0);
    assert_eq!(c.authenticate(b"c=biws,r=abc,p=AAAA", 2).error_code, 34);
    assert!(c.is_closed());

    // A malformed client-first.
    let mut c = Raw::connect(&broker.addr);
    assert_eq!(c.handshake("SCRAM-SHA-256").error_code, 0);
    assert_eq!(c.authenticate(b"n,,n=bob", 2).error_code, 34);
    assert!(c.is_closed());

    // An oversized token (70 KiB).
    let mut c = Raw::connect(&broker.addr);
    assert_eq!(c.handshake("PLAIN").error_code, 0);
    let big = format!("\0admin\0{}", "x".repeat(70 * 1024));
    let r = c.authenticate(big.as_bytes(), 2);
    assert_eq!(r.error_code, 58);
    assert!(r.error_message.unwrap().contains("limit"));
    assert!(c.is_closed());

    // A SaslAuthenticate frame whose body does not decode.
    let mut c = Raw::connect(&broker.addr);
    assert_eq!(c.handshake("PLAIN").error_code, 0);
    let mut frame = request_frame(
        ApiKey::SaslAuthenticate,
        2,
        9,
        &SaslAuthenticateRequest::default(),
    );
    frame.truncate(frame.len() - 2);
    let n = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&n.to_be_bytes());
    c.s.write_all(&frame).unwrap();
    assert!(c.is_closed());

    // Repeated failures from this address are answered later and later.
    let started = Instant::now();
    let mut c = Raw::connect(&broker.addr);
    assert_eq!(c.plain("admin", "wrong").error_code, 58);
    assert!(c.is_closed());
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );

    // The first connection was never disturbed, and a new SCRAM one works.
    assert!(admin.metadata().is_some());
    let mut c = Raw::connect(&broker.addr);
    assert_eq!(c.handshake("SCRAM-SHA-256").error_code, 0);
    // The client of medulla-client, which checks the server's signature.
    let mut client = SaslClient::new(
        Mechanism::ScramSha256,
        Credentials::Password {
            username: "bob".into(),
            password: "bob-secret".into(),
        },
    )
    .unwrap();
    let first = c.authenticate(&client.initial().unwrap(), 2);
    assert_eq!(first.error_code, 0);
    let last = client.step(&first.auth_bytes).unwrap().unwrap();
    let done = c.authenticate(&last, 2);
    assert_eq!(done.error_code, 0, "{:?}", done.error_message);
    assert_eq!(client.step(&done.auth_bytes).unwrap(), None);
    assert!(c.metadata().is_some());
}

// ---------------------------------------------------------------------------------
// OAUTHBEARER.

fn bearer(token: &str) -> Vec<u8> {
    format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
}

#[test]
fn oauthbearer_tokens_and_kip_368_session_lifetimes() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let issuer = Issuer::new(&jwks);
    let data = dir.path().join("data");
    let broker = sasl_broker(
        &data,
        &[
            &format!(
                "sasl.oauthbearer.jwks.endpoint.url=file://{}",
                jwks.display()
            ),
            "sasl.oauthbearer.expected.audience=medulla",
            "sasl.oauthbearer.expected.issuer=https://idp.test",
            "connections.max.reauth.ms=3000",
        ],
    );

    // librdkafka with the token from its refresh callback.
    let ctx = Ctx {
        token: Some((issuer.token("svc-lab", "medulla", 600), "svc-lab".into())),
        ..Ctx::default()
    };
    produce_and_consume(
        &sasl_config(&broker.addr, "OAUTHBEARER", "", ""),
        ctx,
        &topic_name("sasl-oauth"),
        "signed",
    );

    // An expired token and one for another audience: the RFC 7628 error, then 58.
    for token in [
        issuer.token("svc-lab", "medulla", -600),
        issuer.token("svc-lab", "elsewhere", 600),
    ] {
        let mut c = Raw::connect(&broker.addr);
        assert_eq!(c.handshake("OAUTHBEARER").error_code, 0);
        let r = c.authenticate(&bearer(&token), 2);
        assert_eq!(r.error_code, 0);
        assert_eq!(&r.auth_bytes[..], br#"{"status":"invalid_token"}"#);
        let r = c.authenticate(b"\x01", 2);
        assert_eq!(r.error_code, 58);
        assert!(c.is_closed());
    }

    // A valid token: the session lasts connections.max.reauth.ms (shorter than the token).
    let mut c = Raw::connect(&broker.addr);
    assert_eq!(c.handshake("OAUTHBEARER").error_code, 0);
    let r = c.authenticate(&bearer(&issuer.token("svc-lab", "medulla", 600)), 2);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert!(
        r.session_lifetime_ms > 0 && r.session_lifetime_ms <= 3000,
        "{}",
        r.session_lifetime_ms
    );
    assert!(c.metadata().is_some());
    // Re-authentication as the same principal renews the session.
    let reauthenticated_at = Instant::now();
    assert_eq!(c.handshake("OAUTHBEARER").error_code, 0);
    let r = c.authenticate(&bearer(&issuer.token("svc-lab", "medulla", 2)), 2);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    // The token now expires first (2 s, plus nothing: lifetime is min of the two).
    assert!(r.session_lifetime_ms <= 2000, "{}", r.session_lifetime_ms);
    assert!(c.metadata().is_some());
    // After the session has expired, a request that is not re-authentication closes
    // the connection. (Waiting for the clock is the condition itself.)
    let lifetime = Duration::from_millis(r.session_lifetime_ms as u64);
    while reauthenticated_at.elapsed() < lifetime + Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(c.metadata().is_none());

    // Re-authentication as somebody else fails and closes.
    let mut c = Raw::connect(&broker.addr);
    assert_eq!(c.handshake("OAUTHBEARER").error_code, 0);
    assert_eq!(
        c.authenticate(&bearer(&issuer.token("svc-lab", "medulla", 600)), 2)
            .error_code,
        0
    );
    assert_eq!(c.handshake("OAUTHBEARER").error_code, 0);
    let r = c.authenticate(&bearer(&issuer.token("svc-other", "medulla", 600)), 2);
    assert_eq!(r.error_code, 58);
    assert!(c.is_closed());

    // SaslAuthenticate v0 carries no lifetime, but the session still expires.
    let mut c = Raw::connect(&broker.addr);
    assert_eq!(c.handshake("OAUTHBEARER").error_code, 0);
    let r = c.authenticate(&bearer(&issuer.token("svc-lab", "medulla", 600)), 0);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.session_lifetime_ms, 0);
}
