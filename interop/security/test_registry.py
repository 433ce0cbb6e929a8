"""The schema registry with security on (issue 6), over https: a request without
credentials is 401 with a JSON body; HTTP Basic with a SCRAM user's password and a bearer
JWT are accepted; a principal without Write on topic `x` registering under `x-value` is
403 with a JSON body. The allowed path is confluent-kafka's SchemaRegistryClient; the
status checks are raw `requests`."""

import json

import pytest
import requests
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from secure import AUDIENCE, loopback_client, unique

SCHEMA = json.dumps(
    {"type": "record", "name": "LabResult", "namespace": "clinic", "fields": [{"name": "loinc", "type": "string"}]}
)
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


@pytest.fixture(scope="module")
def registry(broker, pki):
    """(url, verify) for raw requests."""
    return broker.registry_url, pki.ca


@pytest.fixture(scope="module")
def lab_writer_acl(cli):
    """`clinician` may write the topics under `clinical.`, so register their subjects."""
    cli.acl(
        "add",
        "--allow-principal",
        "User:clinician",
        "--operation",
        "Write",
        "--topic",
        "clinical.",
        "--resource-pattern-type",
        "prefixed",
    )


def json_body(r):
    assert r.headers.get("content-type", "").startswith(("application/json", CONTENT_TYPE)), r.headers
    return r.json()


def test_a_request_without_credentials_is_401_with_a_json_body(registry, audit):
    url, ca = registry
    for method, path, body in [
        ("GET", "/subjects", None),
        ("POST", "/subjects/clinical.lab.results-value/versions", {"schema": SCHEMA}),
    ]:
        r = requests.request(method, url + path, json=body, verify=ca, timeout=15)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        v = json_body(r)
        assert v.get("error_code") == 40101 and v.get("message"), v
    audit.wait_for(
        "the registry's refusal of a request without credentials",
        category="authentication",
        outcome="failure",
        source="http:registry",
        client=loopback_client,
    )


def test_http_basic_with_a_scram_password_registers(registry, pki, users, lab_writer_acl, audit):
    url, ca = registry
    client = SchemaRegistryClient(
        {"url": url, "basic.auth.user.info": f"clinician:{users['clinician']}", "ssl.ca.location": ca}
    )
    subject = "clinical.lab.results-value"
    schema_id = client.register_schema(subject, Schema(SCHEMA, "AVRO"))
    assert schema_id > 0
    latest = client.get_latest_version(subject)
    assert latest.schema_id == schema_id
    # A wrong password is 401 (raw), and the client reports it.
    r = requests.get(url + "/subjects", auth=("clinician", "wrong"), verify=ca, timeout=15)
    assert r.status_code == 401 and json_body(r)["error_code"] == 40101, r.text
    audit.wait_for(
        "clinician's registration",
        category="change",
        outcome="success",
        principal="User:clinician",
        source="http:registry",
        resource=f"Subject:{subject}",
    )


def test_a_bearer_jwt_is_accepted(registry, issuer, users, lab_writer_acl):
    url, ca = registry
    subject = unique("clinical.bearer.") + "-value"
    token = issuer.token("clinician")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": CONTENT_TYPE}
    r = requests.post(
        f"{url}/subjects/{subject}/versions", data=json.dumps({"schema": SCHEMA}), headers=headers, verify=ca, timeout=15
    )
    assert r.status_code == 200, r.text
    schema_id = json_body(r)["id"]
    r = requests.get(f"{url}/subjects/{subject}/versions/latest", headers=headers, verify=ca, timeout=15)
    assert r.status_code == 200 and json_body(r)["id"] == schema_id, r.text
    # Expired, or for another audience: 401.
    for bad in (issuer.token("clinician", expires_in_s=-120), issuer.token("clinician", audience="not-" + AUDIENCE)):
        r = requests.get(f"{url}/subjects", headers={"Authorization": f"Bearer {bad}"}, verify=ca, timeout=15)
        assert r.status_code == 401 and json_body(r)["error_code"] == 40101, r.text


def test_registering_without_write_on_the_topic_is_403_with_a_json_body(registry, users, audit):
    url, ca = registry
    # viewer has no ACL on topic x.
    r = requests.post(
        f"{url}/subjects/x-value/versions",
        data=json.dumps({"schema": SCHEMA}),
        headers={"Content-Type": CONTENT_TYPE},
        auth=("viewer", users["viewer"]),
        verify=ca,
        timeout=15,
    )
    assert r.status_code == 403, r.text
    v = json_body(r)
    assert v.get("error_code") == 40301 and "User:viewer" in v.get("message", ""), v
    # The same through the Confluent client: SchemaRegistryError 403.
    client = SchemaRegistryClient({"url": url, "basic.auth.user.info": f"viewer:{users['viewer']}", "ssl.ca.location": ca})
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("x-value", Schema(SCHEMA, "AVRO"))
    assert refused.value.http_status_code == 403 and refused.value.error_code == 40301
    audit.wait_for(
        "viewer denied the subject x-value",
        category="authorization",
        outcome="failure",
        principal="User:viewer",
        source="http:registry",
        resource="Subject:x-value",
    )
