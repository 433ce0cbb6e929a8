"""The audit topic `_medulla_audit` (issue 6): readable by the super user (the `audit`
fixture reads it as User:admin for every test), not by a principal without an ACL on it;
the user changes made through `medulla user add` are in it. (Each other test checks the
events of what it did.)"""

from confluent_kafka import Consumer, KafkaError, TopicPartition

from secure import AUDIT_TOPIC, Deadline, ErrorLog, loopback_client, unique


def test_a_principal_without_an_acl_cannot_read_the_audit_topic(clients, users, connectivity_acls, audit):
    # nurse may do anything under `interop.` (topics and groups), nothing on the audit topic.
    conf = clients.scram("nurse", users["nurse"])
    errors = ErrorLog()
    c = Consumer(
        dict(
            conf,
            **{
                "group.id": unique("interop.audit-snoop."),
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "error_cb": errors,
            },
        )
    )
    fetched = []
    try:
        topics = c.list_topics(timeout=15).topics
        assert AUDIT_TOPIC not in topics, sorted(topics)
        c.subscribe([AUDIT_TOPIC])
        deadline = Deadline(20, "nurse's subscription to the audit topic to be refused")
        while True:
            m = c.poll(0.2)
            if m is not None:
                if m.error() is not None:
                    err = m.error()
                    break
                fetched.append(m.value())
            if deadline.expired():
                deadline.fail(f"fetched {len(fetched)} records; errors {errors}")
    finally:
        c.close()
    assert err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert fetched == []
    audit.wait_for(
        "nurse denied the audit topic",
        category="authorization",
        outcome="failure",
        principal="User:nurse",
        resource=f"Topic:{AUDIT_TOPIC}",
        operation=lambda op: op in ("Describe", "Read"),
    )
    # The admin reads it (the fixture's consumer is User:admin's): it has events.
    assert len(audit.events()) > 0


def test_user_changes_are_audited(users, audit):
    for name in users:
        evs = audit.wait_for(
            f"the SCRAM credential of {name} set by the admin",
            category="change",
            outcome="success",
            principal="User:admin",
            action="AlterUserScramCredentials",
            resource=f"User:{name}",
            source="kafka:SASL_SSL",
            client=loopback_client,
        )
        assert any("SCRAM-SHA-512" in e["detail"] for e in evs), evs
    evs = audit.wait_for(
        "nurse's SCRAM-SHA-256 credential", category="change", resource="User:nurse", detail=lambda d: "SCRAM-SHA-256" in d
    )
    assert evs
