"""Authorization (issue 6) with confluent-kafka-python, the ACLs made and removed with
`medulla acl add|remove`: Write without Read, a prefixed ACL, deny over allow, group and
transactional-id ACLs, Metadata hiding what may not be described, a removal taking effect
on the next request; each denial and ACL change in the audit trail."""

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from secure import Deadline, ErrorLog, loopback_client, produce_and_consume, unique, wait_until

LAB_RESULTS = "clinical.lab.results"


@pytest.fixture(scope="module")
def lab_results(clients, broker):
    """The topic `clinical.lab.results` (the admin makes it), holding one record."""
    clients.create_topic(LAB_RESULTS)
    clients.produce_admin(LAB_RESULTS, ["hb-a1c 6.1%"])
    return LAB_RESULTS


def produce_one(conf, topic, value=b"v"):
    """Produces one record with a fresh producer; returns the delivery error or None."""
    p = Producer(dict(conf, **{"message.timeout.ms": 15000}))
    return produce_with(p, topic, value)


def produce_with(p, topic, value=b"v"):
    result = []
    p.produce(topic, value=value, on_delivery=lambda err, msg: result.append(err))
    left = p.flush(30)
    assert left == 0 and len(result) == 1, f"no delivery report for {topic} (left {left})"
    return result[0]


def code(err):
    return None if err is None else err.code()


def first_consumer_error(conf, group, topic, subscribe, seconds=20):
    """Polls a consumer until a message carries an error; returns (error, records fetched)."""
    c = Consumer(dict(conf, **{"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    fetched = []
    try:
        if subscribe:
            c.subscribe([topic])
        else:
            c.assign([TopicPartition(topic, 0, 0)])
        deadline = Deadline(seconds, f"a consumer error from {topic} (group {group})")
        while True:
            m = c.poll(0.2)
            if m is not None:
                if m.error() is not None:
                    return m.error(), fetched
                fetched.append(m.value())
            if deadline.expired():
                deadline.fail(f"fetched {fetched} without an error")
    finally:
        c.close()


def audit_denial(audit, principal, resource, operations, what):
    """Waits for the denial event; `operations` is the operation checked, or a tuple of
    those that may be the one refused first (Kafka checks Describe on Metadata and
    FindCoordinator before a client gets to Write or Read)."""
    operations = operations if isinstance(operations, tuple) else (operations,)
    return audit.wait_for(
        f"{what}: {principal} denied {'/'.join(operations)} on {resource}",
        category="authorization",
        outcome="failure",
        principal=principal,
        resource=resource,
        operation=lambda op: op in operations,
        source="kafka:SASL_SSL",
        client=loopback_client,
    )


def audit_acl_change(audit, action, resource):
    return audit.wait_for(
        f"{action} on {resource} by the admin",
        category="change",
        outcome="success",
        principal="User:admin",
        action=action,
        resource=resource,
        client=loopback_client,
    )


def test_write_without_read_produces_but_cannot_consume(cli, clients, users, lab_results, audit):
    cli.acl("add", "--allow-principal", "User:labwriter", "--operation", "Write", "--topic", lab_results)
    cli.acl("add", "--allow-principal", "User:labwriter", "--operation", "Read", "--group", "labwriter.g")
    conf = clients.scram("labwriter", users["labwriter"])
    before = clients.end_offsets(lab_results)[0]
    assert code(produce_one(conf, lab_results, b"potassium 4.1")) is None
    assert clients.end_offsets(lab_results)[0] == before + 1

    err, fetched = first_consumer_error(conf, "labwriter.g", lab_results, subscribe=False)
    assert err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert fetched == []
    audit_denial(audit, "User:labwriter", f"Topic:{lab_results}", "Read", "Fetch without Read")
    audit_acl_change(audit, "CreateAcls", f"Topic:{lab_results}")


def test_prefixed_acl_grants_a_new_topic_under_it(cli, clients, users, audit):
    cli.acl(
        "add",
        "--allow-principal",
        "User:clinician",
        "--operation",
        "Write",
        "--operation",
        "Read",
        "--topic",
        "clinical.",
        "--resource-pattern-type",
        "prefixed",
    )
    # Write is not an operation of groups (kafka-acls.sh refuses it too): Read on its own.
    cli.acl(
        "add", "--allow-principal", "User:clinician", "--operation", "Read", "--group", "clinician.", "--resource-pattern-type", "prefixed"
    )
    # Made after the ACL: the prefix grants it.
    topic = clients.create_topic(unique("clinical.imaging."))
    conf = clients.scram("clinician", users["clinician"])
    sent, got = produce_and_consume(conf, topic, group=unique("clinician."))
    assert got == sent
    # Outside the prefix: refused.
    other = clients.create_topic(unique("billing."))
    assert code(produce_one(conf, other)) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # librdkafka learns it from Metadata (no Describe) and never sends the Produce.
    audit_denial(audit, "User:clinician", f"Topic:{other}", ("Describe", "Write"), "outside the prefix")
    audit_acl_change(audit, "CreateAcls", "Topic:clinical.")


def test_deny_overrides_allow(cli, clients, users, lab_results, audit):
    cli.acl("add", "--allow-principal", "User:temp", "--operation", "All", "--topic", "clinical.", "--resource-pattern-type", "prefixed")
    cli.acl("add", "--deny-principal", "User:temp", "--operation", "Write", "--topic", lab_results)
    conf = clients.scram("temp", users["temp"])
    before = clients.end_offsets(lab_results)
    assert code(produce_one(conf, lab_results)) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert clients.end_offsets(lab_results) == before
    # The allow still holds where no deny applies.
    other = clients.create_topic(unique("clinical.notes."))
    assert code(produce_one(conf, other)) is None
    audit_denial(audit, "User:temp", f"Topic:{lab_results}", "Write", "deny over allow")


def test_group_acl_is_enforced(cli, clients, users, audit):
    topic = clients.create_topic(unique("ward.vitals."))
    clients.produce_admin(topic, ["pulse 72", "pulse 75"])
    cli.acl("add", "--allow-principal", "User:reader", "--operation", "Read", "--topic", topic)
    conf = clients.scram("reader", users["reader"])
    group = unique("ward.readers.")
    err, fetched = first_consumer_error(conf, group, topic, subscribe=True)
    assert err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, err
    assert fetched == []
    # FindCoordinator needs Describe on the group, JoinGroup Read: the first refuses.
    audit_denial(audit, "User:reader", f"Group:{group}", ("Describe", "Read"), "a group without Read")

    # With Read on the group the same consumer reads.
    cli.acl("add", "--allow-principal", "User:reader", "--operation", "Read", "--group", group)
    c = Consumer(dict(conf, **{"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"}))
    try:
        c.subscribe([topic])
        got = []

        def read_both():
            m = c.poll(0.2)
            if m is not None:
                assert m.error() is None, m.error()
                got.append(m.value().decode())
            return len(got) == 2

        wait_until(read_both, 30, "the reader to consume with Read on the group", interval_s=0)
    finally:
        c.close()
    assert got == ["pulse 72", "pulse 75"]


def test_transactional_id_acl_is_enforced(cli, clients, users, audit):
    topic = clients.create_topic(unique("ward.orders."))
    cli.acl("add", "--allow-principal", "User:txuser", "--operation", "Write", "--topic", topic)
    txn_id = unique("ward-orders-tx-")
    conf = clients.scram("txuser", users["txuser"], **{"transactional.id": txn_id})
    p = Producer(conf)
    with pytest.raises(KafkaException) as refused:
        p.init_transactions(20)
    assert refused.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, refused.value
    audit.wait_for(
        f"User:txuser denied on TransactionalId:{txn_id}",
        category="authorization",
        outcome="failure",
        principal="User:txuser",
        resource=f"TransactionalId:{txn_id}",
    )

    cli.acl("add", "--allow-principal", "User:txuser", "--operation", "Write", "--transactional-id", txn_id)
    p = Producer(conf)
    p.init_transactions(20)
    p.begin_transaction()
    p.produce(topic, value=b"order 1")
    p.commit_transaction(20)
    # The commit marker follows the record.
    assert clients.end_offsets(topic) == {0: 2}


def test_metadata_lists_only_describable_topics(cli, clients, users, lab_results, audit):
    visible = clients.create_topic(unique("ward.visible."))
    hidden = clients.create_topic(unique("ward.hidden."))
    cli.acl("add", "--allow-principal", "User:viewer", "--operation", "Describe", "--topic", visible)
    admin = AdminClient(clients.scram("viewer", users["viewer"]))
    topics = admin.list_topics(timeout=15).topics
    assert visible in topics
    for t in (hidden, lab_results, "_medulla_audit", "_schemas"):
        assert t not in topics, f"{t} is listed for User:viewer: {sorted(topics)}"
    # Asked for by name, a hidden topic is TOPIC_AUTHORIZATION_FAILED.
    md = admin.list_topics(hidden, timeout=15).topics[hidden]
    assert md.error is not None and md.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, md.error
    # Everything the admin (a super user) sees.
    assert {visible, hidden, lab_results} <= set(clients.admin.list_topics(timeout=15).topics)


def test_removing_an_acl_takes_effect_on_the_next_request(cli, clients, users, audit):
    topic = clients.create_topic(unique("ward.revoke."))
    cli.acl("add", "--allow-principal", "User:revokee", "--operation", "Write", "--topic", topic)
    p = Producer(clients.scram("revokee", users["revokee"], **{"message.timeout.ms": 15000}))
    assert code(produce_with(p, topic, b"before")) is None
    out = cli.acl("remove", "--allow-principal", "User:revokee", "--operation", "Write", "--topic", topic).stdout
    assert "Removed ACL" in out, out
    listed = cli.acl("list", "--topic", topic).stdout
    assert "revokee" not in listed, listed
    # The same producer, the same connection: its next Produce is refused.
    assert code(produce_with(p, topic, b"after")) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert clients.end_offsets(topic) == {0: 1}
    audit_acl_change(audit, "CreateAcls", f"Topic:{topic}")
    audit_acl_change(audit, "DeleteAcls", f"Topic:{topic}")
    audit_denial(audit, "User:revokee", f"Topic:{topic}", "Write", "after the removal")
