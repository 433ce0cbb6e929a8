"""Session fixtures of the security suite: one run directory with the generated
certificates, JWKS and client properties; one secured broker; the users (through
`medulla user add`) every test shares; the admin's clients and the audit trail reader.

MEDULLA_BIN names the broker binary (default target/release/medulla); run it with
`interop/run-all.sh security`.
"""

import os
import shutil
import tempfile

import pytest

from secure import (
    ADMIN_PASSWORD,
    REPO,
    AuditTrail,
    Cli,
    Clients,
    Issuer,
    Pki,
    SecureBroker,
    write_properties,
)

# PLAIN's static users (the broker's JAAS) and the SCRAM users the CLI creates.
PLAIN_USERS = {"admin": ADMIN_PASSWORD, "nurse": "nurse-plain-pw"}
SCRAM_PASSWORDS = {
    # SCRAM-SHA-512 and SCRAM-SHA-256 credentials of the connectivity tests' user.
    "nurse": "nurse-scram-pw",
    # The ACL tests' principals (SCRAM-SHA-512).
    "labwriter": "labwriter-pw",
    "clinician": "clinician-pw",
    "temp": "temp-pw",
    "reader": "reader-pw",
    "txuser": "txuser-pw",
    "viewer": "viewer-pw",
    "revokee": "revokee-pw",
}


@pytest.fixture(autouse=True)
def _own_line():
    # With -s, a test's first print would share the line pytest -v starts with the test name.
    print()


@pytest.fixture(scope="session")
def workdir():
    base = os.path.join(REPO, "target", "interop")
    os.makedirs(base, exist_ok=True)
    d = tempfile.mkdtemp(prefix="security.", dir=base)
    print(f"\n  security suite run directory: {d}")
    yield d
    if os.environ.get("MEDULLA_KEEP_DATA") != "1":
        shutil.rmtree(os.path.join(d, "data"), ignore_errors=True)


@pytest.fixture(scope="session")
def pki(workdir):
    return Pki(workdir)


@pytest.fixture(scope="session")
def issuer(workdir):
    return Issuer(workdir)


@pytest.fixture(scope="session")
def medulla_bin():
    binary = os.environ.get("MEDULLA_BIN") or os.path.join(REPO, "target", "release", "medulla")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no broker binary at {binary}: cargo build --release -p medulla (or set MEDULLA_BIN)")
    return binary


@pytest.fixture(scope="session")
def broker(medulla_bin, workdir, pki, issuer):
    b = SecureBroker(medulla_bin, workdir, pki, issuer, PLAIN_USERS)
    b.start()
    yield b
    panics = b.panics()
    b.stop()
    if panics:
        pytest.fail("the broker panicked:\n" + "\n".join(panics))


@pytest.fixture(scope="session")
def admin_properties(workdir, pki):
    """The admin's client settings in Java client keys, as for kafka-acls.sh."""
    return write_properties(
        os.path.join(workdir, "admin.properties"),
        {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "PLAIN",
            "sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="admin" password="{ADMIN_PASSWORD}";',
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": pki.ca,
        },
    )


@pytest.fixture(scope="session")
def cli(medulla_bin, broker, admin_properties):
    return Cli(medulla_bin, broker, admin_properties)


@pytest.fixture(scope="session")
def users(cli):
    """The SCRAM users, made through `medulla user add`; name -> password."""
    for name, password in SCRAM_PASSWORDS.items():
        cli.add_user(name, password, "SCRAM-SHA-512")
    cli.add_user("nurse", SCRAM_PASSWORDS["nurse"], "SCRAM-SHA-256")
    listed = cli.run("user", "list").stdout
    for name in SCRAM_PASSWORDS:
        assert name in listed, f"`medulla user list` does not show {name}:\n{listed}"
    return dict(SCRAM_PASSWORDS)


@pytest.fixture(scope="session")
def clients(broker, pki, issuer, workdir):
    return Clients(broker, pki, issuer, workdir)


@pytest.fixture(scope="session")
def connectivity_acls(cli, users):
    """The connectivity tests' principals (SCRAM / PLAIN `nurse`, the certificate's
    `alice`, the JWT's `oauth-app`) may do anything on topics and groups under `interop.`."""
    cli.acl(
        "add",
        "--allow-principal",
        "User:nurse",
        "--allow-principal",
        "User:alice",
        "--allow-principal",
        "User:oauth-app",
        "--operation",
        "All",
        "--topic",
        "interop.",
        "--group",
        "interop.",
        "--resource-pattern-type",
        "prefixed",
    )


@pytest.fixture(scope="session")
def audit(clients, broker):
    trail = AuditTrail(clients)
    yield trail
    trail.close()
