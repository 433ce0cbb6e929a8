//! The schema registry with security on (issue 6): HTTP Basic against the broker's SCRAM
//! users, bearer JWTs, access decided by the broker's ACLs on the subject's topic, 401 /
//! 403 with JSON bodies, every refusal and change in the audit trail; and an operation
//! refused when its audit event cannot be written.

mod common;

use std::time::Duration;

use common::jwt::Issuer;
use common::registry::{Api, error_code};
use common::{Medulla, cli, client_config, wait_for};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        medulla_auth::credentials::base64_encode(pair.as_bytes())
    )
}

/// Every audit event so far, read as the super user `User:ANONYMOUS` over PLAINTEXT.
fn audit_events(bootstrap: &str) -> Vec<Value> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .set("group.id", format!("audit-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&["_medulla_audit"]).unwrap();
    let mut events = Vec::new();
    let mut idle = 0;
    let deadline = std::time::Instant::now() + common::DEADLINE;
    while idle < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the audit topic was not read in time"
        );
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                idle = 0;
                events.push(serde_json::from_slice(m.payload().unwrap()).unwrap());
            }
            Some(Err(e)) => panic!("{e}"),
            None if events.is_empty() => {}
            None => idle += 1,
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn the_registry_authenticates_authorizes_and_audits() {
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let issuer = Issuer::new(&jwks);
    let jwks_key = format!(
        "sasl.oauthbearer.jwks.endpoint.url=file://{}",
        jwks.display()
    );
    let m = Medulla::start(
        &dir.path().join("data"),
        &[
            "--registry-listen",
            "127.0.0.1:0",
            "--override",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "--override",
            "super.users=User:ANONYMOUS;User:admin",
            "--override",
            &jwks_key,
            "--override",
            "sasl.oauthbearer.expected.audience=medulla",
            "--override",
            "group.initial.rebalance.delay.ms=0",
        ],
    );
    let b = m.addr.as_str();
    // Users and ACLs through the CLI, as ANONYMOUS (a super user on PLAINTEXT).
    for (user, pw) in [("alice", "alice-pw"), ("bob", "bob-pw")] {
        let (ok, _, err) = cli(&[
            "user",
            "add",
            user,
            "--mechanism",
            "SCRAM-SHA-256",
            "--password",
            pw,
            "--bootstrap",
            b,
        ]);
        assert!(ok, "{err}");
    }
    let registry = Api::new(&m);
    let schema =
        json!({"type": "record", "name": "Lab", "fields": [{"name": "loinc", "type": "string"}]});
    let body = json!({"schema": schema.to_string()});

    // No credentials, a wrong password, an unknown scheme: 401 with a JSON body.
    for api in [
        Api::new(&m),
        registry.with_auth(basic("alice", "wrong")),
        registry.with_auth("Digest x"),
    ] {
        let (s, v) = api
            .post("/subjects/clinical.labs-value/versions", body.clone())
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert_eq!(error_code(&v), 40101);
    }
    let (s, v) = registry.get("/schemas/types").await;
    assert_eq!((s, error_code(&v)), (StatusCode::UNAUTHORIZED, 40101));

    // alice without an ACL: 403; with Write on the topic: registered.
    let alice = registry.with_auth(basic("alice", "alice-pw"));
    let (s, v) = alice
        .post("/subjects/clinical.labs-value/versions", body.clone())
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(error_code(&v), 40301);
    assert!(v["message"].as_str().unwrap().contains("User:alice"), "{v}");
    let (ok, _, err) = cli(&[
        "acl",
        "add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Write",
        "--topic",
        "clinical.",
        "--resource-pattern-type",
        "prefixed",
        "--bootstrap",
        b,
    ]);
    assert!(ok, "{err}");
    let id = alice.register("clinical.labs-value", schema.clone()).await;
    // Write implies Describe: alice reads her subject back; schemas by id need only
    // authentication.
    let (s, _) = alice.get("/subjects/clinical.labs-value/versions/1").await;
    assert_eq!(s, StatusCode::OK);
    let bob = registry.with_auth(basic("bob", "bob-pw"));
    let (s, _) = bob.get(&format!("/schemas/ids/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    // bob may not read the subject, nor change the global config.
    let (s, v) = bob.get("/subjects/clinical.labs-value/versions/1").await;
    assert_eq!((s, error_code(&v)), (StatusCode::FORBIDDEN, 40301));
    let (s, v) = bob.put("/config", json!({"compatibility": "NONE"})).await;
    assert_eq!((s, error_code(&v)), (StatusCode::FORBIDDEN, 40301));

    // Bearer tokens: the super user `admin` may do anything; an expired token or one
    // for another audience is 401.
    let admin = registry.with_auth(format!("Bearer {}", issuer.token("admin", "medulla", 600)));
    let (s, v) = admin.put("/config", json!({"compatibility": "FULL"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for token in [
        issuer.token("admin", "medulla", -120),
        issuer.token("admin", "elsewhere", 600),
    ] {
        let (s, v) = registry
            .with_auth(format!("Bearer {token}"))
            .get("/subjects")
            .await;
        assert_eq!((s, error_code(&v)), (StatusCode::UNAUTHORIZED, 40101));
    }

    // The audit trail: the failed authentications, the denials and the changes, each
    // from the registry, with principal, client, resource and operation.
    let events = audit_events(b);
    let registry_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["source"] == "http:registry")
        .collect();
    let has = |category: &str, outcome: &str, principal: &str, resource: &str| {
        registry_events.iter().any(|e| {
            e["category"] == category
                && e["outcome"] == outcome
                && e["principal"] == principal
                && e["resource"] == resource
                && e["client"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("127.0.0.1:"))
        })
    };
    assert!(
        has("authentication", "failure", "User:ANONYMOUS", ""),
        "{registry_events:#?}"
    );
    assert!(has(
        "authorization",
        "failure",
        "User:alice",
        "Subject:clinical.labs-value"
    ));
    assert!(has(
        "change",
        "success",
        "User:alice",
        "Subject:clinical.labs-value"
    ));
    assert!(has(
        "authorization",
        "failure",
        "User:bob",
        "Registry:global"
    ));
    assert!(has("change", "success", "User:admin", "Registry:global"));
    // …and the broker's own: the users and the ACL the CLI created.
    assert!(
        events.iter().any(|e| e["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("kafka:"))
            && e["category"] == "change"
            && e["action"] == "CreateAcls"),
        "{events:#?}"
    );
}

/// The audit trail is lost under the broker (its partition directory removed, with a
/// segment roll due on every write): an administrative change is refused with
/// KAFKA_STORAGE_ERROR and not made.
#[test]
fn an_operation_is_refused_when_its_audit_event_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let m = Medulla::start(
        &data,
        &[
            "--override",
            "authorizer.class.name=medulla",
            "--override",
            "super.users=User:ANONYMOUS",
            // Every append to a non-empty segment rolls a new one.
            "--override",
            "log.roll.ms=1",
        ],
    );
    let b = m.addr.as_str();
    let (ok, _, err) = cli(&["topic", "create", "admissions", "--bootstrap", b]);
    assert!(ok, "{err}");
    let audit_dir = data.join("topics").join("_medulla_audit");
    assert!(audit_dir.is_dir(), "{}", audit_dir.display());
    std::fs::remove_dir_all(&audit_dir).unwrap();
    let (ok, _, err) = cli(&["topic", "create", "discharges", "--bootstrap", b]);
    assert!(!ok);
    assert!(err.contains("KAFKA_STORAGE_ERROR"), "{err}");
    let (ok, out, _) = cli(&["topic", "list", "--exclude-internal", "--bootstrap", b]);
    assert!(ok);
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["admissions"]);
    // Nothing audited, nothing done: the deletion is refused too, and the topic stays.
    let (ok, _, err) = cli(&["topic", "delete", "admissions", "--bootstrap", b]);
    assert!(!ok && err.contains("KAFKA_STORAGE_ERROR"), "{err}");
    wait_for("the broker to still answer", || {
        let (ok, out, _) = cli(&["topic", "list", "--exclude-internal", "--bootstrap", b]);
        (ok && out.contains("admissions")).then_some(())
    });
}
