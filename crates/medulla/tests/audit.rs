//! The audit trail (issue 6) on a broker with security off: administrative changes are
//! recorded all the same, the trail cannot be written to, deleted or truncated by
//! clients, and an operation whose event cannot be made durable is refused.

mod common;

use common::{Medulla, audit_events, cli, client_config, wait_for};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

#[test]
fn administrative_changes_are_recorded_and_the_trail_is_protected() {
    let dir = tempfile::tempdir().unwrap();
    let m = Medulla::start(dir.path(), &[]);
    let b = m.addr.as_str();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--bootstrap", b]);
        cli(&all)
    };
    let (ok, _, err) = run(&["topic", "create", "admissions", "--partitions", "2"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&[
        "topic",
        "alter",
        "admissions",
        "--config",
        "retention.ms=86400000",
    ]);
    assert!(ok, "{err}");
    // An offset reset (a commit outside any generation) is a change too.
    let (ok, _, err) = run(&[
        "group",
        "reset-offsets",
        "alerts",
        "--topic",
        "admissions",
        "--to",
        "earliest",
        "--execute",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["group", "delete", "alerts"]);
    assert!(ok, "{err}");

    // Nobody writes, deletes or truncates the trail.
    let (ok, _, err) = run(&["topic", "delete", "_medulla_audit"]);
    assert!(!ok && err.contains("POLICY_VIOLATION"), "{err}");
    let (tx, rx) = std::sync::mpsc::channel();
    let producer: BaseProducer<Reports> = client_config(b)
        .set("message.send.max.retries", "0")
        .create_with_context(Reports(std::sync::Mutex::new(tx)))
        .unwrap();
    producer
        .send(BaseRecord::<(), str>::to("_medulla_audit").payload("forged"))
        .unwrap();
    let refused = wait_for("the forged record's delivery report", || {
        producer.poll(std::time::Duration::from_millis(100));
        rx.try_recv().ok()
    });
    assert_eq!(
        refused,
        Some(RDKafkaErrorCode::InvalidTopic),
        "a record in the audit trail from a client"
    );
    let _ = producer.flush(common::DEADLINE);

    let events = audit_events(b);
    let changed = |action: &str, resource: &str| {
        events.iter().any(|e| {
            e["category"] == "change"
                && e["outcome"] == "success"
                && e["action"] == action
                && e["resource"] == resource
                && e["principal"] == "User:ANONYMOUS"
                && e["source"] == "kafka:PLAINTEXT"
        })
    };
    assert!(changed("CreateTopics", "Topic:admissions"), "{events:#?}");
    assert!(
        changed("IncrementalAlterConfigs", "Topic:admissions")
            || changed("AlterConfigs", "Topic:admissions"),
        "{events:#?}"
    );
    assert!(changed("OffsetCommit", "Group:alerts"), "{events:#?}");
    assert!(changed("DeleteGroups", "Group:alerts"), "{events:#?}");
    // No forged record among them.
    assert!(events.iter().all(|e| e.is_object()));
}

/// Delivery reports: the error code of each failed record, `None` for a delivered one.
struct Reports(std::sync::Mutex<std::sync::mpsc::Sender<Option<RDKafkaErrorCode>>>);

impl rdkafka::ClientContext for Reports {}

impl rdkafka::producer::ProducerContext for Reports {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        let code = result
            .as_ref()
            .err()
            .and_then(|(e, _)| e.rdkafka_error_code());
        let _ = self.0.lock().unwrap().send(code);
    }
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
    // Nothing audited, nothing done: the deletion is refused too, and the topic stays.
    let (ok, _, err) = cli(&["topic", "delete", "admissions", "--bootstrap", b]);
    assert!(!ok && err.contains("KAFKA_STORAGE_ERROR"), "{err}");
    let (ok, out, _) = cli(&["topic", "list", "--exclude-internal", "--bootstrap", b]);
    assert!(ok);
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["admissions"]);
}
