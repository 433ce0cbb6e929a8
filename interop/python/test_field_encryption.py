"""Client-side field-level encryption (CSFLE) through Medulla with confluent-kafka-python
2.16: its ENCRYPT rule executor and `local-kms` KMS driver, Medulla's schema registry
(data contracts: `metadata` and `ruleSet`) and its DEK Registry (/dek-registry/v1).

What it checks:
  * an Avro schema whose PHI fields carry `"confluent:tags": ["PHI"]`, registered with
    metadata and a ruleSet whose domain rule ENCRYPTs PHI-tagged fields (KEK name, KMS type
    local-kms, KMS key id as rule params), comes back from the registry exactly as
    registered (metadata and ruleSet included; metadata tags checked over REST, as the
    2.16 client cannot hash a Metadata holding tags);
  * an AvroSerializer with use.latest.version produces through Medulla: the serializer
    creates the KEK and a DEK (wrapped by the local KMS) in the DEK Registry;
  * the bytes in the topic, read raw, do not contain the PHI plaintext while the
    untagged fields are there in clear; decoded without the rule, the PHI fields hold
    base64 ciphertext;
  * an AvroDeserializer with the rule executor gets the plaintext back, field for field;
  * the KEK and DEK are visible through /dek-registry/v1 (KEK: kmsType, kmsKeyId,
    shared=false; DEK: subject, version 1, AES256_GCM, encryptedKeyMaterial and never a
    plaintext keyMaterial);
  * another process reading with a different local-KMS secret is refused, and with the
    right one decrypts: the DEK in the registry is useless without the KMS.

Needs MEDULLA_BOOTSTRAP (broker) and MEDULLA_REGISTRY_URL (registry), as interop/lib.sh's
medulla_start exports them. A registry restart is covered by the Rust test
crates/medulla/tests/dek_registry.rs (dek_registry_keys_survive_a_restart).
"""

import base64
import copy
import io
import json
import os
import subprocess
import sys
import uuid

import fastavro
import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.rules.encryption.encrypt_executor import FieldEncryptionExecutor
from confluent_kafka.schema_registry.rules.encryption.localkms.local_driver import LocalKmsDriver
from confluent_kafka.schema_registry.schema_registry_client import (
    Metadata,
    MetadataProperties,
    MetadataTags,
    Rule,
    RuleKind,
    RuleMode,
    RuleParams,
    RuleSet,
)
from confluent_kafka.serialization import MessageField, SerializationContext

from conftest import Deadline, unique_topic

TIMEOUT_S = 30
# The local KMS derives its key-encryption key from this secret (as the executor's
# rule_conf "secret"); only holders of it can unwrap the DEK.
LOCAL_KMS_SECRET = "medulla-interop-local-kms-secret"
KMS_KEY_ID = "medulla-interop-key"

SCHEMA = {
    "type": "record",
    "name": "Observation",
    "namespace": "org.medulla.interop",
    "fields": [
        {"name": "patient_id", "type": "string"},
        {"name": "ssn", "type": "string", "confluent:tags": ["PHI"]},
        {"name": "diagnosis", "type": "string", "confluent:tags": ["PHI"]},
        {"name": "heart_rate", "type": "int"},
    ],
}

RECORDS = [
    {
        "patient_id": f"patient-{i:04d}",
        "ssn": f"123-45-{6789 + i:04d}",
        "diagnosis": f"Essential hypertension, stage {1 + i % 2} (case {i})",
        "heart_rate": 60 + i,
    }
    for i in range(5)
]


@pytest.fixture(scope="session")
def registry_url():
    url = os.environ.get("MEDULLA_REGISTRY_URL")
    if not url:
        pytest.fail(
            "MEDULLA_REGISTRY_URL is not set: run through interop/run-all.sh, or export "
            "MEDULLA_REGISTRY_URL=http://host:port of a running registry"
        )
    return url.rstrip("/")


@pytest.fixture(scope="module", autouse=True)
def _encryption_registered():
    # As the client's docs and examples do: register the rule executor and the KMS driver
    # once per process.
    FieldEncryptionExecutor.register()
    LocalKmsDriver.register()


def create_topic(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    futures[topic].result(timeout=TIMEOUT_S)


def read_raw(bootstrap, topic, count):
    """The first `count` records of partition 0, as raw value bytes."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"fle-raw-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values = []
        deadline = Deadline(TIMEOUT_S, f"{count} records of {topic}")
        while len(values) < count:
            if deadline.expired():
                deadline.fail(f"read {len(values)}")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            values.append(msg.value())
        return values
    finally:
        consumer.close()


def test_phi_fields_are_encrypted_in_the_topic_and_decrypted_by_the_reader(bootstrap, registry_url):
    topic = unique_topic("fle", "observations")
    subject = f"{topic}-value"
    kek_name = f"medulla_fle_{uuid.uuid4().hex[:12]}"
    create_topic(bootstrap, topic)

    # ---- the data contract: schema with PHI tags, metadata, and an ENCRYPT rule
    rule = Rule(
        name="encrypt-phi",
        doc="PHI fields are encrypted client-side",
        kind=RuleKind.TRANSFORM,
        mode=RuleMode.WRITEREAD,
        type="ENCRYPT",
        tags=["PHI"],
        params=RuleParams(
            {
                "encrypt.kek.name": kek_name,
                "encrypt.kms.type": "local-kms",
                "encrypt.kms.key.id": KMS_KEY_ID,
            }
        ),
        expr=None,
        on_success=None,
        on_failure="ERROR,NONE",
        disabled=False,
    )
    # Field tags are inline ("confluent:tags"). Metadata carries properties only: the 2.16
    # client cannot hash a Metadata with tags (MetadataTags.__hash__ hashes the tag lists,
    # TypeError) and hashes the latest schema in the serializer; metadata tags are
    # checked over REST below instead.
    metadata = Metadata(
        tags=None,
        properties=MetadataProperties({"owner": "medulla-interop", "classification": "PHI"}),
        sensitive=None,
    )
    client = SchemaRegistryClient({"url": registry_url})
    schema_id = client.register_schema(
        subject, Schema(json.dumps(SCHEMA), "AVRO", [], metadata, RuleSet(None, [rule]))
    )

    latest = requests.get(f"{registry_url}/subjects/{subject}/versions/latest", timeout=TIMEOUT_S)
    assert latest.status_code == 200, latest.text
    latest = latest.json()
    assert latest["id"] == schema_id
    assert latest["metadata"] == metadata.to_dict(), latest
    assert latest["ruleSet"] == RuleSet(None, [rule]).to_dict(), latest
    assert json.loads(latest["schema"]) == SCHEMA

    tagged = {
        "tags": {"Observation.ssn": ["PHI"], "Observation.diagnosis": ["PHI", "PII"]},
        "properties": {"owner": "medulla-interop"},
        "sensitive": ["ssn"],
    }
    other = requests.post(
        f"{registry_url}/subjects/{subject}-tags/versions",
        json={"schema": json.dumps(SCHEMA), "metadata": tagged, "ruleSet": latest["ruleSet"]},
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        timeout=TIMEOUT_S,
    )
    assert other.status_code == 200, other.text
    back = requests.get(f"{registry_url}/schemas/ids/{other.json()['id']}", timeout=TIMEOUT_S).json()
    assert back["metadata"] == tagged and back["ruleSet"] == latest["ruleSet"], back
    print(f"  registered {subject} id {schema_id} with metadata and ruleSet, returned unchanged")

    # ---- produce through Medulla with the serializer using the latest version's rules
    serializer = AvroSerializer(
        client,
        schema_str=None,
        conf={"auto.register.schemas": False, "use.latest.version": True},
        rule_conf={"secret": LOCAL_KMS_SECRET},
    )
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    errors = []
    ctx = SerializationContext(topic, MessageField.VALUE)
    for rec in RECORDS:
        producer.produce(
            topic,
            key=rec["patient_id"].encode(),
            # The serializer encrypts the dict's fields in place: give it a copy.
            value=serializer(copy.deepcopy(rec), ctx),
            on_delivery=lambda err, _msg: err and errors.append(err),
        )
    assert producer.flush(TIMEOUT_S) == 0, "records still in flight"
    assert not errors, errors

    # ---- (a) the topic holds ciphertext for PHI, clear text for the rest
    raw = read_raw(bootstrap, topic, len(RECORDS))
    parsed = fastavro.parse_schema(SCHEMA)
    for rec, value in zip(RECORDS, raw):
        assert value[0] == 0 and int.from_bytes(value[1:5], "big") == schema_id
        for phi in ("ssn", "diagnosis"):
            assert rec[phi].encode() not in value, f"{phi} plaintext {rec[phi]!r} is in the topic"
        assert rec["patient_id"].encode() in value, "untagged field should be in clear"
        stored = fastavro.schemaless_reader(io.BytesIO(value[5:]), parsed)
        assert stored["patient_id"] == rec["patient_id"]
        assert stored["heart_rate"] == rec["heart_rate"]
        for phi in ("ssn", "diagnosis"):
            ciphertext = base64.b64decode(stored[phi], validate=True)
            # AES256-GCM: 12-byte nonce + ciphertext + 16-byte tag.
            assert len(ciphertext) >= len(rec[phi]) + 28, (phi, stored[phi])
            assert rec[phi].encode() not in ciphertext
    print(f"  {len(raw)} records in the topic: PHI fields are AES-GCM ciphertext, the rest in clear")

    # ---- (b) the rule executor decrypts them back
    deserializer = AvroDeserializer(client, rule_conf={"secret": LOCAL_KMS_SECRET})
    decrypted = [deserializer(value, ctx) for value in raw]
    assert decrypted == RECORDS
    print(f"  deserialized with the ENCRYPT rule: {len(decrypted)} records equal to what was produced")

    # ---- (c) the KEK and the DEK in the DEK Registry
    base = f"{registry_url}/dek-registry/v1/keks"
    names = requests.get(base, timeout=TIMEOUT_S).json()
    assert kek_name in names, names
    kek = requests.get(f"{base}/{kek_name}", timeout=TIMEOUT_S).json()
    assert kek["name"] == kek_name
    assert kek["kmsType"] == "local-kms"
    assert kek["kmsKeyId"] == KMS_KEY_ID
    assert kek["shared"] is False
    assert requests.get(f"{base}/{kek_name}/deks", timeout=TIMEOUT_S).json() == [subject]
    dek = requests.get(f"{base}/{kek_name}/deks/{subject}/versions/1", timeout=TIMEOUT_S).json()
    assert dek["kekName"] == kek_name
    assert dek["subject"] == subject
    assert dek["version"] == 1
    assert dek["algorithm"] == "AES256_GCM"
    wrapped = base64.b64decode(dek["encryptedKeyMaterial"], validate=True)
    assert len(wrapped) > 32, "the DEK is stored wrapped by the KEK"
    assert "keyMaterial" not in dek, "the registry must never hold a plaintext DEK"
    print(f"  KEK {kek_name} (local-kms) and its DEK for {subject} are in /dek-registry/v1")


WRONG_SECRET_READER = """
import base64, sys
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.rules.encryption.encrypt_executor import FieldEncryptionExecutor
from confluent_kafka.schema_registry.rules.encryption.localkms.local_driver import LocalKmsDriver
from confluent_kafka.serialization import MessageField, SerializationContext

FieldEncryptionExecutor.register()
LocalKmsDriver.register()
url, topic, secret, value = sys.argv[1], sys.argv[2], sys.argv[3], base64.b64decode(sys.argv[4])
d = AvroDeserializer(SchemaRegistryClient({"url": url}), rule_conf={"secret": secret})
try:
    print("DECRYPTED", d(value, SerializationContext(topic, MessageField.VALUE)))
except Exception as e:
    print("REFUSED", type(e).__name__, e)
"""


def test_reader_without_the_kms_secret_cannot_decrypt(bootstrap, registry_url):
    """The DEK in the registry is useless without the KMS: another process reading with a
    different local-KMS secret is refused on the encrypted fields (the rule's READ failure
    action is ERROR), while the same process with the right secret decrypts. (A separate
    process because the client caches KMS clients per key URL for the whole process.)"""
    topic = unique_topic("fle", "wrongsecret")
    subject = f"{topic}-value"
    kek_name = f"medulla_fle_{uuid.uuid4().hex[:12]}"
    rule = Rule(
        "encrypt-phi", None, RuleKind.TRANSFORM, RuleMode.WRITEREAD, "ENCRYPT", ["PHI"],
        RuleParams({"encrypt.kek.name": kek_name, "encrypt.kms.type": "local-kms",
                    "encrypt.kms.key.id": KMS_KEY_ID}),
        None, None, "ERROR,ERROR", False,
    )
    client = SchemaRegistryClient({"url": registry_url})
    client.register_schema(subject, Schema(json.dumps(SCHEMA), "AVRO", [], None, RuleSet(None, [rule])))
    serializer = AvroSerializer(
        client, schema_str=None,
        conf={"auto.register.schemas": False, "use.latest.version": True},
        rule_conf={"secret": LOCAL_KMS_SECRET},
    )
    value = serializer(copy.deepcopy(RECORDS[0]), SerializationContext(topic, MessageField.VALUE))
    assert RECORDS[0]["ssn"].encode() not in value

    def read_in_another_process(secret):
        out = subprocess.run(
            [sys.executable, "-c", WRONG_SECRET_READER, registry_url, topic, secret,
             base64.b64encode(value).decode()],
            capture_output=True, text=True, timeout=TIMEOUT_S,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    wrong = read_in_another_process("not-the-secret")
    assert wrong.startswith("REFUSED"), wrong
    assert RECORDS[0]["ssn"] not in wrong
    right = read_in_another_process(LOCAL_KMS_SECRET)
    assert right.startswith("DECRYPTED") and RECORDS[0]["ssn"] in right, right
    print("  another process with the wrong local-KMS secret is refused; with the right one it decrypts")
