"""Authentication (issue 6): confluent-kafka-python, kafka-python and kafkajs produce and
consume over SASL_SSL with SCRAM and PLAIN; confluent-kafka-python over mTLS and
OAUTHBEARER; a wrong password (each client), an expired token, a token for another
audience and a client certificate of an untrusted CA are refused, the connection carrying
no data; every attempt is in the audit trail with principal, client and mechanism."""

import json
import logging
import os
import socket
import ssl
import struct
import subprocess
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTopicPartition
from kafka.errors import KafkaTimeoutError, SaslAuthenticationFailedError

from secure import HERE, Deadline, ErrorLog, loopback_client, produce_and_consume, unique, wait_until

WRONG = "not-the-password"


def audit_authentication(audit, outcome, action, source="kafka:SASL_SSL", principal=None, what="", **more):
    """Waits for the authentication event. (A failed SASL attempt is recorded as
    User:ANONYMOUS, with the user it claimed to be in the detail; the refusal tests tie
    the event to their connection by client id.)"""
    fields = {
        "category": "authentication",
        "outcome": outcome,
        "action": action,
        "source": source,
        "client": loopback_client,
    }
    if principal is not None:
        fields["principal"] = principal
    fields.update(more)
    return audit.wait_for(f"{what} authentication {outcome} ({action}, {source})", **fields)


def topic_with_records(clients, label, n=2):
    """A topic under `interop.` holding n records the admin wrote; returns (topic, ends)."""
    topic = clients.create_topic(unique(f"interop.{label}."))
    clients.produce_admin(topic, [f"existing-{i}" for i in range(n)])
    ends = clients.end_offsets(topic)
    assert ends == {0: n}
    return topic


# ---- successes ----------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_confluent_kafka_produces_and_consumes_over_sasl_ssl(clients, users, connectivity_acls, audit, mechanism):
    password = users["nurse"] if mechanism.startswith("SCRAM") else "nurse-plain-pw"
    conf = clients.sasl(mechanism, "nurse", password, **{"client.id": f"ck-{mechanism}"})
    topic = clients.create_topic(unique(f"interop.ck.{mechanism.lower()}."))
    sent, got = produce_and_consume(conf, topic, group=unique("interop.ck."), subscribe=True)
    assert got == sent
    evs = audit_authentication(audit, "success", mechanism, principal="User:nurse")
    assert any(e["request_id"].startswith(f"ck-{mechanism}/") for e in evs), evs


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_kafka_python_produces_and_consumes_over_sasl_ssl(broker, pki, users, connectivity_acls, audit, clients, mechanism):
    password = users["nurse"] if mechanism.startswith("SCRAM") else "nurse-plain-pw"
    topic = clients.create_topic(unique(f"interop.kp.{mechanism.lower()}."))
    conf = kafka_python_conf(broker, pki, mechanism, "nurse", password)
    values = [f"kp-{i}-{uuid.uuid4().hex[:6]}".encode() for i in range(3)]
    p = KafkaProducer(client_id=f"kp-{mechanism}", **conf)
    try:
        for v in values:
            p.send(topic, v).get(timeout=30)
    finally:
        p.close()
    c = KafkaConsumer(group_id=None, enable_auto_commit=False, **conf)
    try:
        c.assign([KTopicPartition(topic, 0)])
        c.seek_to_beginning()
        got = []
        deadline = Deadline(30, f"kafka-python to read back {len(values)} records")
        while len(got) < len(values):
            for records in c.poll(timeout_ms=500).values():
                got.extend(r.value for r in records)
            if deadline.expired():
                deadline.fail(f"got {got}")
    finally:
        c.close()
    assert got == values
    audit_authentication(audit, "success", mechanism, principal="User:nurse")


@pytest.mark.parametrize("mechanism", ["scram-sha-512", "plain"])
def test_kafkajs_produces_and_consumes_over_sasl_ssl(broker, pki, users, connectivity_acls, audit, clients, mechanism):
    password = users["nurse"] if mechanism.startswith("scram") else "nurse-plain-pw"
    topic = clients.create_topic(unique(f"interop.kjs.{mechanism}."))
    out = run_kafkajs(broker, pki, mechanism, "nurse", password, topic, unique("interop.kjs."))
    assert out["ok"], out
    assert sorted(out["consumed"]) == sorted(out["produced"]) and len(out["consumed"]) == 3, out
    audit_authentication(audit, "success", mechanism.upper(), principal="User:nurse")


def test_confluent_kafka_produces_and_consumes_over_mtls(clients, pki, connectivity_acls, audit):
    conf = clients.mtls(pki.alice_cert, pki.alice_key)
    topic = clients.create_topic(unique("interop.mtls."))
    sent, got = produce_and_consume(conf, topic, group=unique("interop.mtls."), subscribe=True)
    assert got == sent
    # The certificate's subject CN=alice,OU=Lab,O=Clinic mapped by the rule to User:alice.
    audit_authentication(audit, "success", "TLS", source="kafka:SSL", principal="User:alice")


def test_confluent_kafka_produces_and_consumes_over_oauthbearer(clients, issuer, connectivity_acls, audit):
    conf = clients.oauth(issuer.token("oauth-app"))
    topic = clients.create_topic(unique("interop.oauth."))
    sent, got = produce_and_consume(conf, topic, group=unique("interop.oauth."), subscribe=True)
    assert got == sent
    audit_authentication(audit, "success", "OAUTHBEARER", principal="User:oauth-app")


# ---- refusals -----------------------------------------------------------------------------

# librdkafka's codes for a refused SASL authentication and a failed TLS handshake.
SASL_REFUSED = (KafkaError._AUTHENTICATION,)
TLS_REFUSED = (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._AUTHENTICATION)


def assert_confluent_refused(clients, conf, topic, codes, what):
    """A producer and a consumer of `conf` are refused (librdkafka reports one of `codes`)
    and carry no data: nothing is produced to `topic`, nothing fetched from it. Returns the
    client.id both used."""
    client_id = unique("refused-")
    conf = dict(conf, **{"client.id": client_id})
    ends = clients.end_offsets(topic)
    errors = ErrorLog()
    p = Producer(dict(conf, error_cb=errors, **{"message.timeout.ms": 10000}))
    delivered = []
    p.produce(topic, value=b"must-not-arrive", on_delivery=lambda err, msg: delivered.append(err))
    wait_until(lambda: p.poll(0.1) is not None and errors.has(*codes), 20, f"{what}: the producer to be refused", detail=lambda: repr(errors))
    p.purge()
    p.flush(10)
    assert delivered and all(e is not None for e in delivered), f"{what}: a record was delivered: {delivered}"
    print(f"  {what}: producer refused: {errors.errors[0]}")

    c_errors = ErrorLog()
    c = Consumer(dict(conf, error_cb=c_errors, **{"group.id": unique("interop.refused."), "enable.auto.commit": False}))
    fetched = []
    try:
        c.assign([TopicPartition(topic, 0, 0)])

        def refused():
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                fetched.append(m.value())
            return c_errors.has(*codes)

        wait_until(refused, 20, f"{what}: the consumer to be refused", detail=lambda: repr(c_errors))
        # A little more polling: still nothing arrives over the refused connection.
        for _ in range(5):
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                fetched.append(m.value())
    finally:
        c.close()
    assert fetched == [], f"{what}: the refused consumer fetched {fetched}"
    assert clients.end_offsets(topic) == ends, f"{what}: the topic changed"
    return client_id


def from_client(client_id):
    return lambda request_id: isinstance(request_id, str) and request_id.startswith(client_id + "/")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_wrong_password_is_refused_confluent_kafka(clients, users, connectivity_acls, audit, mechanism):
    topic = topic_with_records(clients, "wrongpw.ck")
    conf = clients.sasl(mechanism, "nurse", WRONG)
    client_id = assert_confluent_refused(clients, conf, topic, SASL_REFUSED, f"confluent-kafka {mechanism} wrong password")
    audit_authentication(
        audit,
        "failure",
        mechanism,
        request_id=from_client(client_id),
        detail=lambda d: isinstance(d, str) and 'attempted user "nurse"' in d,
        what="confluent-kafka wrong password:",
    )


class LogRecords(logging.Handler):
    """Keeps the records of a logger (kafka-python reports a refused bootstrap connection
    only in its log)."""

    def __init__(self, name):
        super().__init__(logging.DEBUG)
        self.records = []
        self.logger = logging.getLogger(name)

    def emit(self, record):
        self.records.append(record)

    def __enter__(self):
        self.logger.addHandler(self)
        self.logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)

    def messages(self):
        return [r.getMessage() for r in self.records]


def test_wrong_password_is_refused_kafka_python(broker, pki, users, connectivity_acls, audit, clients):
    topic = topic_with_records(clients, "wrongpw.kp")
    ends = clients.end_offsets(topic)
    conf = kafka_python_conf(broker, pki, "SCRAM-SHA-512", "nurse", WRONG)
    # kafka-python 3.0.12 treats a refused bootstrap connection as one to retry and gives up
    # at bootstrap_timeout_ms. It never shows the SaslAuthenticate error itself: the broker
    # answers SASL_AUTHENTICATION_FAILED and then closes the connection (as Kafka does), and
    # kafka-python's transport drops data that arrives in the same read as the end of the
    # stream (kafka/net/transport.py, _read_from_sock aborts on the EOF before handing the
    # bytes read with it to the protocol), so it logs "socket disconnected". The refusal is
    # therefore proven from the broker's side, by its audit event for this client.
    client_id = unique("kafka-python-wrongpw-")
    with LogRecords("kafka") as log:
        with pytest.raises((SaslAuthenticationFailedError, KafkaTimeoutError)) as refused:
            p = KafkaProducer(client_id=client_id, bootstrap_timeout_ms=3000, **conf)
            try:
                p.send(topic, b"must-not-arrive").get(timeout=10)
            finally:
                p.close(timeout=5)
    sent_proof = [m for m in log.messages() if "Sending request" in m and "SaslAuthenticateRequest" in m and "c=biws" in m]
    assert sent_proof, "kafka-python never got to SCRAM's final message"
    print(f"  kafka-python refused: {refused.value!r}")
    audit_authentication(audit, "failure", "SCRAM-SHA-512", request_id=from_client(client_id), what="kafka-python wrong password:")
    assert clients.end_offsets(topic) == ends


def test_wrong_password_is_refused_kafkajs(broker, pki, users, connectivity_acls, audit, clients):
    topic = topic_with_records(clients, "wrongpw.kjs")
    ends = clients.end_offsets(topic)
    client_id = unique("kafkajs-wrongpw-")
    out = run_kafkajs(broker, pki, "scram-sha-512", "nurse", WRONG, topic, unique("interop.kjs."), client_id)
    assert not out["ok"] and out["stage"] == "produce", out
    assert out["error"] == "KafkaJSSASLAuthenticationError", out
    assert clients.end_offsets(topic) == ends
    audit_authentication(audit, "failure", "SCRAM-SHA-512", request_id=from_client(client_id), what="kafkajs wrong password:")


def test_expired_token_is_refused(clients, issuer, connectivity_acls, audit):
    topic = topic_with_records(clients, "expired")
    # Expired two minutes ago: beyond the broker's 30 s clock skew.
    conf = clients.oauth(issuer.token("oauth-app", expires_in_s=-120))
    client_id = assert_confluent_refused(clients, conf, topic, SASL_REFUSED, "an expired token")
    evs = audit_authentication(audit, "failure", "OAUTHBEARER", request_id=from_client(client_id), what="expired token:")
    assert any("exp" in e["detail"].lower() for e in evs), evs


def test_token_for_another_audience_is_refused(clients, issuer, connectivity_acls, audit):
    topic = topic_with_records(clients, "audience")
    conf = clients.oauth(issuer.token("oauth-app", audience="another-service"))
    client_id = assert_confluent_refused(clients, conf, topic, SASL_REFUSED, "a token for another audience")
    evs = audit_authentication(audit, "failure", "OAUTHBEARER", request_id=from_client(client_id), what="wrong audience:")
    assert any("aud" in e["detail"].lower() for e in evs), evs


def test_untrusted_client_certificate_is_refused(broker, clients, pki, connectivity_acls, audit):
    topic = topic_with_records(clients, "rogue")
    # The same subject (CN=alice,OU=Lab,O=Clinic), signed by a CA the broker does not trust.
    # librdkafka (OpenSSL) does not even offer it: the broker's CertificateRequest names the
    # CA it accepts, so the handshake fails for want of a certificate.
    conf = clients.mtls(pki.rogue_cert, pki.rogue_key)
    assert_confluent_refused(clients, conf, topic, TLS_REFUSED, "an untrusted client certificate")
    evs = audit_authentication(
        audit, "failure", "TLS", source="kafka:SSL", principal="User:ANONYMOUS", what="untrusted certificate:"
    )
    print(f"  broker (librdkafka's attempt): {evs[-1]['detail']}")

    # Python's ssl module presents it anyway: refused as an unknown issuer, before any
    # Kafka request is read.
    host, port = broker.ssl.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=pki.ca)
    ctx.load_cert_chain(pki.rogue_cert, pki.rogue_key)
    raw = socket.create_connection((host, int(port)), timeout=15)
    local = "127.0.0.1:%d" % raw.getsockname()[1]
    with pytest.raises((ssl.SSLError, ConnectionError)) as refused:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            # TLS 1.3: the client's handshake ends before the server checked the certificate;
            # the refusal arrives on the first read. ApiVersions v0 as a first request.
            tls.sendall(struct.pack(">ihhih", 10, 18, 0, 1, 0))
            got = tls.recv(100)
            assert got == b"", f"the broker answered a refused client: {got!r}"
            raise ConnectionError("closed without an answer")
    print(f"  python ssl with the untrusted certificate: {refused.value!r}")
    evs = audit_authentication(
        audit, "failure", "TLS", source="kafka:SSL", principal="User:ANONYMOUS", client=local, what="python ssl:"
    )
    assert "UnknownIssuer" in evs[-1]["detail"], evs[-1]
    assert clients.end_offsets(topic) == {0: 2}


# ---- helpers ------------------------------------------------------------------------------


def kafka_python_conf(broker, pki, mechanism, user, password):
    return dict(
        bootstrap_servers=broker.sasl_ssl,
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
        ssl_cafile=pki.ca,
        request_timeout_ms=15000,
    )


def run_kafkajs(broker, pki, mechanism, user, password, topic, group, client_id="security-kafkajs"):
    cmd = [
        "node",
        os.path.join(HERE, "client_kafkajs.mjs"),
        "--bootstrap",
        broker.sasl_ssl,
        "--ca",
        pki.ca,
        "--mechanism",
        mechanism,
        "--username",
        user,
        "--password",
        password,
        "--topic",
        topic,
        "--group",
        group,
        "--client-id",
        client_id,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    if p.returncode != 0 or not lines:
        pytest.fail(f"kafkajs exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr[-3000:]}")
    return json.loads(lines[-1])


# ---- the refused connection itself, on the wire -------------------------------------------


class RawConnection:
    """A TLS connection to the SASL_SSL listener speaking Kafka frames by hand (only the
    few fixed-layout requests this test needs)."""

    def __init__(self, broker, pki):
        host, port = broker.sasl_ssl.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=pki.ca)
        self.sock = ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=15), server_hostname=host)
        self.client_id = unique("raw-").encode()

    def send(self, api_key, version, correlation_id, body, flexible=False):
        header = struct.pack(">hhih", api_key, version, correlation_id, len(self.client_id)) + self.client_id
        if flexible:
            header += b"\0"  # no tagged fields
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)

    def sasl_handshake(self, correlation_id, mechanism):
        self.send(17, 1, correlation_id, struct.pack(">h", len(mechanism)) + mechanism.encode())

    def sasl_authenticate(self, correlation_id, token):
        # v2 (flexible): compact bytes, then no tagged fields.
        self.send(36, 2, correlation_id, bytes([len(token) + 1]) + token + b"\0", flexible=True)

    def metadata_all_topics(self, correlation_id):
        # Metadata v1: topics null (all).
        self.send(3, 1, correlation_id, struct.pack(">i", -1))

    def _exactly(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def responses(self):
        """Every response until the broker closes the connection: [(correlation id, body)]."""
        out = []
        while True:
            size = self._exactly(4)
            if size is None:
                return out
            frame = self._exactly(struct.unpack(">i", size)[0])
            if frame is None:
                return out
            out.append((struct.unpack(">i", frame[:4])[0], frame[4:]))

    def close(self):
        self.sock.close()


def test_a_refused_connection_carries_no_data(broker, pki, clients, connectivity_acls, audit):
    # A request before authentication: the broker closes the connection, no answer.
    raw = RawConnection(broker, pki)
    try:
        raw.metadata_all_topics(1)
        assert raw.responses() == []
    finally:
        raw.close()

    # A wrong PLAIN password with a Metadata request pipelined behind it: the failure is
    # answered (SASL_AUTHENTICATION_FAILED, 58) and the connection closed; the Metadata
    # request gets nothing.
    raw = RawConnection(broker, pki)
    try:
        raw.sasl_handshake(1, "PLAIN")
        raw.sasl_authenticate(2, b"\0nurse\0" + WRONG.encode())
        raw.metadata_all_topics(3)
        got = raw.responses()
    finally:
        raw.close()
    assert [c for c, _ in got] == [1, 2], got
    # SaslAuthenticate v2's body: tagged fields of the header (1 byte), then error_code.
    assert struct.unpack(">h", got[1][1][1:3])[0] == 58, got[1]
    audit_authentication(
        audit, "failure", "PLAIN", request_id=from_client(raw.client_id.decode()), what="a raw wrong password:"
    )
