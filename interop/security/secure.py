"""Pieces of the security suite (interop/security): the certificates and the JWT issuer the
run generates, one secured `medulla serve` (SASL_SSL + SSL listeners, the authorizer, the
registry over https), the `medulla user|acl` CLI, client configurations for the three
clients, and a reader of the audit topic.

Everything is generated under the run directory; nothing is checked in.
"""

import datetime
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import jwt
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "interop", "groups"))
from harness import Deadline, client_logger, log_panics, log_tail, wait_until  # noqa: E402  (the groups suite's helpers)

AUDIT_TOPIC = "_medulla_audit"
ADMIN_PASSWORD = "admin-secret"
# The audience and issuer the broker expects of a JWT.
AUDIENCE = "medulla"
ISSUER = "https://idp.interop.test"
KID = "interop-key"


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


# ---- certificates -----------------------------------------------------------------------


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class Pki:
    """A CA, a server certificate for 127.0.0.1 / localhost, a client certificate
    CN=alice,OU=Lab,O=Clinic signed by the CA, and one with the same subject signed by a
    second CA the broker does not trust; PEM files in `dir`."""

    def __init__(self, dir):
        self.dir = dir
        now = datetime.datetime.now(datetime.timezone.utc)
        self._not_before = now - datetime.timedelta(hours=1)
        self._not_after = now + datetime.timedelta(days=2)
        ca_key, ca_cert = self._ca("Medulla interop CA")
        self.ca = _write(os.path.join(dir, "ca.pem"), ca_cert.public_bytes(serialization.Encoding.PEM))
        rogue_key, rogue_cert = self._ca("Untrusted CA")
        _write(os.path.join(dir, "rogue-ca.pem"), rogue_cert.public_bytes(serialization.Encoding.PEM))

        # The broker's keystore: chain and key in one PEM file, as Kafka's PEM keystores.
        cert, key = self._leaf(
            ca_key,
            ca_cert,
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "medulla broker")]),
            server=True,
        )
        self.server = _write(
            os.path.join(dir, "server.pem"), cert.public_bytes(serialization.Encoding.PEM) + _key_pem(key)
        )
        # RFC 2253 prints the subject in reverse: CN=alice,OU=Lab,O=Clinic.
        alice = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Clinic"),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Lab"),
                x509.NameAttribute(NameOID.COMMON_NAME, "alice"),
            ]
        )
        cert, key = self._leaf(ca_key, ca_cert, alice, server=False)
        self.alice_cert = _write(os.path.join(dir, "alice.crt"), cert.public_bytes(serialization.Encoding.PEM))
        self.alice_key = _write(os.path.join(dir, "alice.key"), _key_pem(key))
        cert, key = self._leaf(rogue_key, rogue_cert, alice, server=False)
        self.rogue_cert = _write(os.path.join(dir, "rogue-alice.crt"), cert.public_bytes(serialization.Encoding.PEM))
        self.rogue_key = _write(os.path.join(dir, "rogue-alice.key"), _key_pem(key))

    def _ca(self, name):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before)
            .not_valid_after(self._not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def _leaf(self, ca_key, ca_cert, subject, server):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before)
            .not_valid_after(self._not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256()), key


# ---- JWTs -------------------------------------------------------------------------------


class Issuer:
    """An RSA key pair; the public key published in a JWKS file (kid KID) the broker
    reads through a file:// URL; tokens minted with PyJWT."""

    def __init__(self, dir):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": KID, "alg": "RS256", "use": "sig"})
        self.jwks = os.path.join(dir, "jwks.json")
        with open(self.jwks, "w") as f:
            json.dump({"keys": [jwk]}, f)
        self.jwks_url = "file://" + self.jwks

    def token(self, sub, audience=AUDIENCE, expires_in_s=600, issuer=ISSUER):
        now = int(time.time())
        claims = {"sub": sub, "aud": audience, "iss": issuer, "iat": now, "exp": now + expires_in_s}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})


# ---- the broker -------------------------------------------------------------------------

READY_KAFKA = re.compile(r"^medulla: kafka listener on (\S+) \(data dir .*\) name=(\S+) protocol=(\S+)$")
READY_REGISTRY = re.compile(r"^medulla: schema registry on (\S+)$")


class SecureBroker:
    """One `medulla serve` with listeners SASL_SSL (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER)
    and SSL (client certificates required, the CN as principal), the StandardAuthorizer with
    super user User:admin, and the schema registry over https; all on port 0, the
    addresses read from the ready lines."""

    def __init__(self, binary, workdir, pki, issuer, plain_users):
        self.binary = binary
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "data")
        self.log_path = os.path.join(workdir, "broker.log")
        self.config_path = os.path.join(workdir, "broker.properties")
        os.makedirs(self.data_dir, exist_ok=True)
        jaas_users = " ".join(f'user_{u}="{p}"' for u, p in plain_users.items())
        # A JAAS value ends with `;`: written to a config file (one key per line).
        config = f"""\
listeners=SASL_SSL://127.0.0.1:0,SSL://127.0.0.1:0
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required {jaas_users};
sasl.oauthbearer.jwks.endpoint.url={issuer.jwks_url}
sasl.oauthbearer.expected.audience={AUDIENCE}
sasl.oauthbearer.expected.issuer={ISSUER}
ssl.keystore.type=PEM
ssl.keystore.location={pki.server}
ssl.truststore.type=PEM
ssl.truststore.location={pki.ca}
listener.name.ssl.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+),OU=Lab,O=Clinic$/$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
group.initial.rebalance.delay.ms=0
"""
        with open(self.config_path, "w") as f:
            f.write(config)
        self.proc = None
        self.sasl_ssl = None
        self.ssl = None
        self.registry_url = None

    def start(self, timeout_s=60):
        cmd = [
            self.binary,
            "serve",
            "--config",
            self.config_path,
            "--data-dir",
            self.data_dir,
            "--registry-listen",
            "https://127.0.0.1:0",
        ]
        env = dict(os.environ, NO_COLOR="1")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        t0 = time.monotonic()
        deadline = Deadline(timeout_s, "the secured broker's ready lines (SASL_SSL, SSL, registry)")
        while True:
            listeners, registry = self._ready()
            if "SASL_SSL" in listeners and "SSL" in listeners and registry:
                break
            if self.proc.poll() is not None:
                pytest.fail(f"broker exited with status {self.proc.returncode} before it was ready:\n{self.log_tail()}")
            if deadline.expired():
                deadline.fail(self.log_tail())
            time.sleep(0.05)
        self.sasl_ssl = listeners["SASL_SSL"]
        self.ssl = listeners["SSL"]
        self.registry_url = registry
        print(
            f"  secured broker up after {time.monotonic() - t0:.2f}s: SASL_SSL {self.sasl_ssl}, "
            f"SSL {self.ssl}, registry {self.registry_url}"
        )

    def _ready(self):
        listeners, registry = {}, None
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            return listeners, registry
        for line in text.splitlines():
            m = READY_KAFKA.match(line.strip())
            if m:
                listeners[m.group(2)] = m.group(1)
            m = READY_REGISTRY.match(line.strip())
            if m:
                registry = m.group(1)
        return listeners, registry

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s=15):
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"broker did not stop within {timeout_s}s of SIGTERM (killed):\n{self.log_tail()}")
        if rc != 0:
            pytest.fail(f"broker exited with status {rc} on SIGTERM:\n{self.log_tail()}")

    def log_tail(self, lines=60):
        return log_tail(self.log_path, lines)

    def panics(self):
        return log_panics(self.log_path)


# ---- the CLI ----------------------------------------------------------------------------


class Cli:
    """`medulla user|acl …` against the SASL_SSL listener with --command-config."""

    def __init__(self, binary, broker, command_config):
        self.binary = binary
        self.broker = broker
        self.command_config = command_config

    def run(self, *args, check=True, config=None):
        cmd = [
            self.binary,
            *args,
            "--bootstrap",
            self.broker.sasl_ssl,
            "--command-config",
            config or self.command_config,
        ]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            pytest.fail(f"{' '.join(args)}: exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def add_user(self, name, password, mechanism="SCRAM-SHA-512"):
        return self.run("user", "add", name, "--mechanism", mechanism, "--password", password)

    def acl(self, action, *args, check=True):
        return self.run("acl", action, *args, check=check)


def write_properties(path, props):
    with open(path, "w") as f:
        for k, v in props.items():
            f.write(f"{k}={v}\n")
    return path


# ---- client configurations ----------------------------------------------------------------


class Clients:
    """librdkafka configurations for the broker's listeners, and the admin's clients."""

    def __init__(self, broker, pki, issuer, workdir):
        self.broker = broker
        self.pki = pki
        self.issuer = issuer
        self.workdir = workdir
        self._admin = None
        # librdkafka's own log (refused connections are noisy) goes to workdir/clients.log.
        self.logger = client_logger(workdir)

    def sasl(self, mechanism, user, password, **extra):
        conf = {
            "bootstrap.servers": self.broker.sasl_ssl,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": mechanism,
            "sasl.username": user,
            "sasl.password": password,
            "ssl.ca.location": self.pki.ca,
            "logger": self.logger,
        }
        conf.update(extra)
        return conf

    def scram(self, user, password, **extra):
        return self.sasl("SCRAM-SHA-512", user, password, **extra)

    def mtls(self, cert, key, **extra):
        conf = {
            "bootstrap.servers": self.broker.ssl,
            "security.protocol": "SSL",
            "ssl.ca.location": self.pki.ca,
            "ssl.certificate.location": cert,
            "ssl.key.location": key,
            "logger": self.logger,
        }
        conf.update(extra)
        return conf

    def oauth(self, token, **extra):
        """OAUTHBEARER with an oauth_cb handing librdkafka `token`. The lifetime given to
        librdkafka is an hour from now whatever the token says (librdkafka refuses a token
        whose lifetime it sees is over; the broker is the one that must refuse it)."""

        def oauth_cb(_config):
            return token, time.time() + 3600

        conf = {
            "bootstrap.servers": self.broker.sasl_ssl,
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "OAUTHBEARER",
            "oauth_cb": oauth_cb,
            "ssl.ca.location": self.pki.ca,
            "logger": self.logger,
        }
        conf.update(extra)
        return conf

    def admin_conf(self, **extra):
        return self.sasl("PLAIN", "admin", ADMIN_PASSWORD, **extra)

    @property
    def admin(self):
        if self._admin is None:
            self._admin = AdminClient(self.admin_conf())
        return self._admin

    def create_topic(self, name, partitions=1):
        fs = self.admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        fs[name].result(30)
        return name

    def end_offsets(self, topic):
        """{partition: high watermark} as the admin sees them."""
        c = Consumer(self.admin_conf(**{"group.id": unique("offsets-"), "enable.auto.commit": False}))
        try:
            md = c.list_topics(topic, timeout=15)
            t = md.topics[topic]
            if t.error is not None:
                raise AssertionError(f"admin cannot see {topic}: {t.error}")
            return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1] for p in t.partitions}
        finally:
            c.close()

    def produce_admin(self, topic, values):
        p = Producer(self.admin_conf())
        for v in values:
            p.produce(topic, value=v.encode())
        assert p.flush(30) == 0, "the admin's records were not delivered"


class ErrorLog:
    """An error_cb that keeps every error librdkafka reports."""

    def __init__(self):
        self.errors = []

    def __call__(self, err):
        self.errors.append(err)

    def codes(self):
        return [e.code() for e in self.errors]

    def has(self, *codes):
        return any(e.code() in codes for e in self.errors)

    def __repr__(self):
        return repr([f"{e.name()}: {e.str()}" for e in self.errors])


def produce_and_consume(conf, topic, group, n=3, label="x", subscribe=False):
    """Produces n records with a librdkafka producer of `conf`, then reads them back with a
    consumer of `conf` in group `group` (subscribed, or assigned partition 0 from offset 0).
    Returns (values sent, values read)."""
    values = [f"{label}-{i}-{uuid.uuid4().hex[:6]}" for i in range(n)]
    errors = ErrorLog()
    p = Producer(dict(conf, error_cb=errors))
    delivered = []
    for v in values:
        p.produce(topic, value=v.encode(), on_delivery=lambda err, msg: delivered.append(err))
    left = p.flush(30)
    assert left == 0 and all(e is None for e in delivered), f"delivery: {delivered}, left {left}, errors {errors}"
    c = Consumer(
        dict(
            conf,
            **{
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "error_cb": errors,
            },
        )
    )
    try:
        if subscribe:
            c.subscribe([topic])
        else:
            c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = Deadline(30, f"{n} records back from {topic}")
        while len(got) < n:
            m = c.poll(0.5)
            if m is not None:
                if m.error() is not None:
                    pytest.fail(f"consume from {topic}: {m.error()}")
                got.append(m.value().decode())
            if deadline.expired():
                deadline.fail(f"got {got}; errors {errors}")
        return values, got
    finally:
        c.close()


# ---- the audit trail --------------------------------------------------------------------


class AuditTrail:
    """Reads `_medulla_audit` as User:admin: every partition from the beginning, one
    consumer kept for the session; `events()` catches up to the high watermarks."""

    def __init__(self, clients):
        self.clients = clients
        self.consumer = Consumer(
            clients.admin_conf(**{"group.id": unique("audit-reader-"), "enable.auto.commit": False})
        )
        md = wait_until(
            lambda: self._metadata(),
            30,
            f"the audit topic {AUDIT_TOPIC} to exist",
        )
        self.partitions = sorted(md.partitions)
        self.consumer.assign([TopicPartition(AUDIT_TOPIC, p, 0) for p in self.partitions])
        self._events = []
        self._position = {p: 0 for p in self.partitions}

    def _metadata(self):
        t = self.consumer.list_topics(AUDIT_TOPIC, timeout=10).topics.get(AUDIT_TOPIC)
        if t is None or t.error is not None or not t.partitions:
            return None
        return t

    def events(self):
        """Every event so far (read until the position reaches each partition's high
        watermark as it was when the call began)."""
        ends = {
            p: self.consumer.get_watermark_offsets(TopicPartition(AUDIT_TOPIC, p), timeout=10)[1]
            for p in self.partitions
        }
        deadline = Deadline(30, "the audit topic to be read up to its high watermark")
        while any(self._position[p] < ends[p] for p in self.partitions):
            for m in self.consumer.consume(500, 0.2):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    pytest.fail(f"reading the audit topic: {m.error()}")
                self._position[m.partition()] = m.offset() + 1
                self._events.append(json.loads(m.value()))
            if deadline.expired():
                deadline.fail(f"positions {self._position}, ends {ends}")
        return list(self._events)

    def wait_for(self, what, **fields):
        """Waits until an event has every given field; a field's expected value may be a
        callable (a predicate). Returns the matching events."""

        def match(e):
            for k, want in fields.items():
                have = e.get(k)
                if callable(want):
                    if not want(have):
                        return False
                elif have != want:
                    return False
            return True

        last = {}

        def found():
            evs = self.events()
            last["n"] = len(evs)
            return [e for e in evs if match(e)]

        try:
            return wait_until(found, 15, f"an audit event: {what}", interval_s=0.2)
        except pytest.fail.Exception:
            recent = self._events[-15:]
            pytest.fail(
                f"no audit event for {what} ({fields}) among {last.get('n')} events; the last ones:\n  "
                + "\n  ".join(json.dumps(e, sort_keys=True) for e in recent)
            )

    def close(self):
        self.consumer.close()


def loopback_client(value):
    return isinstance(value, str) and value.startswith("127.0.0.1:")
