"""confluent-kafka-python's Schema Registry client and serdes against Medulla's registry
(MEDULLA_REGISTRY_URL) and broker (MEDULLA_BOOTSTRAP): the client code is Confluent's
documented usage, only the URLs point at Medulla.

What it checks, for each of Avro, JSON Schema and Protobuf:
  * the serializer registers the schema itself (auto.register.schemas) under
    `<topic>-value` (TopicNameStrategy);
  * a compatible evolution registers version 2; an incompatible one is refused: the
    client raises SchemaRegistryError with HTTP status 409 (error code 409);
  * records serialized with both versions are produced to Medulla, consumed back and
    deserialized to what was written (Avro also with a reader schema: v1 records gain v2's
    default);
  * use.latest.version (serialize with the subject's latest schema, no registration),
    normalize.schemas (two spellings of a schema are one id) and, for Avro,
    use.latest.with.metadata (write with the version whose metadata matches, read into
    another's shape);
  * references: an Avro record using a type registered under another subject, and a
    Protobuf file importing another .proto (registered by the serializer as a reference)
    and a Google well-known type (built in, not registered).
Broker-side validation: on a topic with confluent.value.schema.validation=true a record
serialized with the subject's schema is accepted; a record with no wire-format prefix and
one carrying the id of a schema registered only under another subject are refused with
INVALID_RECORD in the delivery report; consuming shows only the good record.

Protobuf message classes are built at test time: the .proto text below is compiled by
grpcio-tools' protoc into a descriptor set, loaded into a DescriptorPool of its own (one
per schema version, so v1 and v2 of the same message can live in one process) and turned
into classes with message_factory. Nothing generated is committed.
"""

import json
import os
import struct
import subprocess
import sys
import uuid

import grpc_tools
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import (
    Metadata,
    MetadataProperties,
    Schema,
    SchemaReference,
    SchemaRegistryClient,
    SchemaRegistryError,
)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from conftest import Deadline, unique_topic, wait_until

TIMEOUT_S = 30


@pytest.fixture(scope="module")
def registry_url():
    url = os.environ.get("MEDULLA_REGISTRY_URL")
    if not url:
        pytest.fail(
            "MEDULLA_REGISTRY_URL is not set: run through interop/run-all.sh, or export "
            "MEDULLA_REGISTRY_URL=http://host:port of a running Medulla schema registry"
        )
    return url


@pytest.fixture(scope="module")
def sr(registry_url):
    return SchemaRegistryClient({"url": registry_url})


@pytest.fixture(scope="module")
def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


# ------------------------------------------------------------------ Kafka helpers


def create_topic(admin, topic, config=None):
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1, config=config or {})],
        request_timeout=TIMEOUT_S,
    )
    futures[topic].result(TIMEOUT_S)

    def visible():
        t = admin.list_topics(timeout=TIMEOUT_S).topics.get(topic)
        return t is not None and t.error is None and len(t.partitions) == 1

    wait_until(visible, TIMEOUT_S, f"{topic} in metadata")


def produce_each(bootstrap, topic, values):
    """Produces each value in a request of its own (a refused record must not take good
    ones in its batch down with it); returns one delivery outcome per value: the offset,
    or the KafkaError."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    outcomes = [None] * len(values)

    def report(i):
        def cb(err, msg):
            outcomes[i] = err if err is not None else msg.offset()

        return cb

    for i, v in enumerate(values):
        producer.produce(topic, value=v, on_delivery=report(i))
        if producer.flush(TIMEOUT_S):
            pytest.fail(f"{topic}: record {i} undelivered after {TIMEOUT_S} s")
    assert all(o is not None for o in outcomes), outcomes
    return outcomes


def produce_ok(bootstrap, topic, values):
    outcomes = produce_each(bootstrap, topic, values)
    bad = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, KafkaError)]
    if bad:
        pytest.fail(f"{topic}: delivery errors {bad}")
    assert outcomes == list(range(len(values))), outcomes
    return outcomes


def consume_values(bootstrap, topic, count):
    """Reads partition 0 from offset 0 until `count` records arrived; returns their values."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "interop-unused-no-group-coordinator",
            "enable.auto.commit": False,
            "auto.offset.reset": "error",
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values = []
        deadline = Deadline(TIMEOUT_S, f"{count} records from {topic}")
        while len(values) < count:
            if deadline.expired():
                deadline.fail(f"read {len(values)}")
            for msg in consumer.consume(num_messages=100, timeout=min(1.0, deadline.remaining())):
                if msg.error() is not None:
                    pytest.fail(f"{topic}: consumer error: {msg.error()}")
                values.append(msg.value())
        return values
    finally:
        consumer.close()


def ctx(topic):
    return SerializationContext(topic, MessageField.VALUE)


def schema_id_of(framed):
    """The schema id of Confluent's wire format (magic byte 0, big-endian id)."""
    assert framed[0] == 0, framed[:8]
    return struct.unpack(">I", framed[1:5])[0]


def expect_incompatible(what, fn):
    """fn must fail with the registry's 409 (incompatible schema), raised by the client as
    SchemaRegistryError."""
    with pytest.raises(SchemaRegistryError) as info:
        fn()
    e = info.value
    assert e.http_status_code == 409, f"{what}: {e}"
    assert e.error_code == 409, f"{what}: {e}"
    print(f"  {what}: refused with 409 as expected ({e.error_message[:100]}...)")


def round_trip(admin, bootstrap, topic, serialized, deserialize):
    """Creates topic, produces the serialized records, consumes them (the bytes must come
    back unchanged) and returns them deserialized."""
    create_topic(admin, topic)
    produce_ok(bootstrap, topic, serialized)
    got = consume_values(bootstrap, topic, len(serialized))
    assert got == serialized, "the broker returns the serialized bytes unchanged"
    return [deserialize(v, ctx(topic)) for v in got]


# ------------------------------------------------------------------ Avro


def avro_record(fields, name="LabResult"):
    return json.dumps(
        {"type": "record", "name": name, "namespace": "org.example.interop", "fields": fields}
    )


AVRO_V1 = avro_record([{"name": "patient", "type": "string"}, {"name": "value", "type": "double"}])
AVRO_V2 = avro_record(
    [
        {"name": "patient", "type": "string"},
        {"name": "value", "type": "double"},
        {"name": "unit", "type": "string", "default": "mg/dL"},
    ]
)
# A new field without a default: this reader cannot read v1 or v2 data (BACKWARD fails).
AVRO_BAD = avro_record(
    [
        {"name": "patient", "type": "string"},
        {"name": "value", "type": "double"},
        {"name": "unit", "type": "string", "default": "mg/dL"},
        {"name": "lab", "type": "string"},
    ]
)


def test_avro_register_evolve_produce_consume(sr, admin, bootstrap):
    topic = unique_topic("sr", "avro")
    subject = f"{topic}-value"
    ser1 = AvroSerializer(sr, AVRO_V1)
    ser2 = AvroSerializer(sr, AVRO_V2)
    a = ser1({"patient": "p1", "value": 5.5}, ctx(topic))
    b = ser2({"patient": "p2", "value": 7.25, "unit": "mmol/L"}, ctx(topic))
    id1, id2 = schema_id_of(a), schema_id_of(b)
    assert id1 != id2
    assert sr.get_versions(subject) == [1, 2]
    latest = sr.get_latest_version(subject)
    assert (latest.version, latest.schema_id) == (2, id2)
    print(f"  {subject}: v1 id {id1}, v2 (field with default added) id {id2}")

    bad = AvroSerializer(sr, AVRO_BAD)
    expect_incompatible(
        "Avro field without default", lambda: bad({"patient": "x", "value": 1.0, "unit": "u", "lab": "l"}, ctx(topic))
    )
    assert sr.get_versions(subject) == [1, 2], "a refused schema adds no version"

    # use.latest.version: serialize with the latest registered schema, register nothing.
    latest_ser = AvroSerializer(sr, AVRO_V2, conf={"auto.register.schemas": False, "use.latest.version": True})
    c = latest_ser({"patient": "p3", "value": 1.0, "unit": "g"}, ctx(topic))
    assert schema_id_of(c) == id2

    # normalize.schemas: another spelling of a schema (attribute order, whitespace) is the
    # same id when both are registered normalized (a subject of its own).
    shuffled = json.dumps(
        {"fields": json.loads(AVRO_V2)["fields"], "namespace": "org.example.interop", "name": "LabResult", "type": "record"},
        indent=2,
    )
    norm_ctx = ctx(f"{topic}-norm")
    d = AvroSerializer(sr, AVRO_V2, conf={"normalize.schemas": True})({"patient": "p4", "value": 2.0, "unit": "g"}, norm_ctx)
    e = AvroSerializer(sr, shuffled, conf={"normalize.schemas": True})({"patient": "p4", "value": 2.0, "unit": "g"}, norm_ctx)
    assert schema_id_of(d) == schema_id_of(e), "two spellings, normalized, are one id"
    assert sr.get_versions(f"{topic}-norm-value") == [1]

    writer = AvroDeserializer(sr)
    got = round_trip(admin, bootstrap, topic, [a, b, c, d], writer)
    assert got == [
        {"patient": "p1", "value": 5.5},
        {"patient": "p2", "value": 7.25, "unit": "mmol/L"},
        {"patient": "p3", "value": 1.0, "unit": "g"},
        {"patient": "p4", "value": 2.0, "unit": "g"},
    ]
    reader = AvroDeserializer(sr, AVRO_V2)
    assert reader(a, ctx(topic)) == {"patient": "p1", "value": 5.5, "unit": "mg/dL"}
    print("  produced, consumed, deserialized with writer and reader schemas")


def test_avro_reference_to_another_subject(sr, admin, bootstrap):
    topic = unique_topic("sr", "avro-ref")
    addr_subject = f"{topic}-address"
    address = json.dumps(
        {
            "type": "record",
            "name": "Address",
            "namespace": "org.example.interop",
            "fields": [{"name": "city", "type": "string"}],
        }
    )
    addr = sr.register_schema_full_response(addr_subject, Schema(address, "AVRO"))
    patient = json.dumps(
        {
            "type": "record",
            "name": "Patient",
            "namespace": "org.example.interop",
            "fields": [{"name": "name", "type": "string"}, {"name": "home", "type": "org.example.interop.Address"}],
        }
    )
    refs = [SchemaReference("org.example.interop.Address", addr_subject, addr.version)]
    ser = AvroSerializer(sr, Schema(patient, "AVRO", refs))
    value = {"name": "Ada", "home": {"city": "London"}}
    framed = ser(value, ctx(topic))
    pid = schema_id_of(framed)
    assert sr.get_schema(pid).references == refs
    assert sr.get_referenced_by(addr_subject, addr.version) == [pid]
    got = round_trip(admin, bootstrap, topic, [framed], AvroDeserializer(sr))
    assert got == [value]
    print(f"  Patient (id {pid}) refers to Address under {addr_subject}: round trip ok")


def test_avro_use_latest_with_metadata(sr, admin, bootstrap):
    """Serializers and deserializers that pick the subject's latest version whose metadata
    properties match (GET /subjects/{s}/metadata?key=..&value=..&format=..)."""
    topic = unique_topic("sr", "avro-meta")
    subject = f"{topic}-value"
    v1 = sr.register_schema_full_response(
        subject, Schema(AVRO_V1, "AVRO", metadata=Metadata(None, MetadataProperties({"app.major": "1"}), None))
    )
    v2 = sr.register_schema_full_response(
        subject, Schema(AVRO_V2, "AVRO", metadata=Metadata(None, MetadataProperties({"app.major": "2"}), None))
    )
    assert (v1.version, v2.version) == (1, 2)
    assert sr.get_latest_with_metadata(subject, {"app.major": "1"}).schema_id == v1.schema_id

    old_app = AvroSerializer(
        sr, AVRO_V1, conf={"auto.register.schemas": False, "use.latest.with.metadata": {"app.major": "1"}}
    )
    framed = old_app({"patient": "p1", "value": 3.0}, ctx(topic))
    assert schema_id_of(framed) == v1.schema_id, "written with the version the metadata picks, not the latest"
    new_reader = AvroDeserializer(sr, conf={"use.latest.with.metadata": {"app.major": "2"}})
    got = round_trip(admin, bootstrap, topic, [framed], new_reader)
    assert got == [{"patient": "p1", "value": 3.0, "unit": "mg/dL"}], "read into v2's shape"
    print(f"  {subject}: written as v1 (app.major=1), read as v2 (app.major=2)")


# ------------------------------------------------------------------ JSON Schema


def json_schema(properties, required=("patient", "value")):
    return json.dumps(
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "LabResult",
            "type": "object",
            "properties": properties,
            "required": list(required),
            "additionalProperties": False,
        }
    )


JSON_V1 = json_schema({"patient": {"type": "string"}, "value": {"type": "number"}})
# Closed content model: a property added as optional can only be absent from v1 data.
JSON_V2 = json_schema({"patient": {"type": "string"}, "value": {"type": "number"}, "unit": {"type": "string"}})
# value's type changed: v1 data (numbers) is not valid for this reader.
JSON_BAD = json_schema({"patient": {"type": "string"}, "value": {"type": "string"}, "unit": {"type": "string"}})


def test_json_schema_register_evolve_produce_consume(sr, admin, bootstrap):
    topic = unique_topic("sr", "json")
    subject = f"{topic}-value"
    a = JSONSerializer(JSON_V1, sr)({"patient": "p1", "value": 5.5}, ctx(topic))
    b = JSONSerializer(JSON_V2, sr)({"patient": "p2", "value": 7, "unit": "mmol/L"}, ctx(topic))
    id1, id2 = schema_id_of(a), schema_id_of(b)
    assert id1 != id2
    assert sr.get_versions(subject) == [1, 2]
    print(f"  {subject}: v1 id {id1}, v2 (optional property added, closed model) id {id2}")

    bad = JSONSerializer(JSON_BAD, sr)
    expect_incompatible("JSON Schema type change", lambda: bad({"patient": "x", "value": "1"}, ctx(topic)))
    assert sr.get_versions(subject) == [1, 2]

    latest_ser = JSONSerializer(JSON_V2, sr, conf={"auto.register.schemas": False, "use.latest.version": True})
    c = latest_ser({"patient": "p3", "value": 1}, ctx(topic))
    assert schema_id_of(c) == id2

    got = round_trip(admin, bootstrap, topic, [a, b, c], JSONDeserializer(None, schema_registry_client=sr))
    assert got == [
        {"patient": "p1", "value": 5.5},
        {"patient": "p2", "value": 7, "unit": "mmol/L"},
        {"patient": "p3", "value": 1},
    ]
    # The deserializer validates against the writer's schema from the registry.
    print("  produced, consumed, deserialized (validated against the registered schema)")


# ------------------------------------------------------------------ Protobuf


def compile_proto(tmp_path, files, root):
    """Compiles the .proto files (name -> text) with grpcio-tools' protoc; returns a fresh
    DescriptorPool holding `root` and its imports (well-known types included)."""
    src = tmp_path / f"src-{uuid.uuid4().hex[:8]}"
    for name, text in files.items():
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    out = src / "set.pb"
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{src}",
            f"-I{wkt}",
            "--include_imports",
            f"--descriptor_set_out={out}",
            root,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"protoc failed: {proc.stderr}"
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:  # dependencies come first in a descriptor set
        pool.Add(f)
    return pool


def proto_class(pool, full_name):
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))


def test_protobuf_register_evolve_produce_consume(sr, registry_url, admin, bootstrap, tmp_path):
    topic = unique_topic("sr", "proto")
    subject = f"{topic}-value"
    # The imported file's path is unique to this run: the serializer registers it under a
    # subject named after it (ReferenceSubjectNameStrategy's default).
    dep = f"interop_{uuid.uuid4().hex[:8]}/address.proto"
    address = 'syntax = "proto3";\npackage interop.common;\nmessage Address { string city = 1; }\n'

    def lab(extra_fields, value_type="double"):
        return (
            'syntax = "proto3";\n'
            "package interop.lab;\n"
            'import "google/protobuf/timestamp.proto";\n'
            f'import "{dep}";\n'
            "message LabResult {\n"
            "  string patient = 1;\n"
            f"  {value_type} value = 2;\n"
            "  google.protobuf.Timestamp at = 4;\n"
            "  interop.common.Address where = 5;\n"
            f"{extra_fields}"
            "}\n"
        )

    v1 = proto_class(compile_proto(tmp_path, {dep: address, "lab.proto": lab("")}, "lab.proto"), "interop.lab.LabResult")
    v2 = proto_class(
        compile_proto(tmp_path, {dep: address, "lab.proto": lab("  string unit = 3;\n")}, "lab.proto"),
        "interop.lab.LabResult",
    )
    bad = proto_class(
        compile_proto(tmp_path, {dep: address, "lab.proto": lab("  string unit = 3;\n", "string")}, "lab.proto"),
        "interop.lab.LabResult",
    )

    m1 = v1(patient="p1", value=5.5)
    m1.at.seconds = 1_700_000_000
    m1.where.city = "Lyon"
    m2 = v2(patient="p2", value=7.25, unit="mmol/L")
    m2.where.city = "Oslo"

    a = ProtobufSerializer(v1, sr)(m1, ctx(topic))
    b = ProtobufSerializer(v2, sr)(m2, ctx(topic))
    id1, id2 = schema_id_of(a), schema_id_of(b)
    assert id1 != id2
    assert sr.get_versions(subject) == [1, 2]
    assert sr.get_versions(dep) == [1], "the import was registered once, as a reference"
    refs = sr.get_schema(id2).references
    assert [(r.name, r.subject) for r in refs] == [(dep, dep)], refs
    print(f"  {subject}: v1 id {id1}, v2 (field added) id {id2}; {dep} registered as a reference")

    expect_incompatible(
        "Protobuf field type change", lambda: ProtobufSerializer(bad, sr)(bad(patient="x", value="1"), ctx(topic))
    )
    assert sr.get_versions(subject) == [1, 2]

    latest_ser = ProtobufSerializer(v2, sr, conf={"auto.register.schemas": False, "use.latest.version": True})
    c = latest_ser(v2(patient="p3", value=1.0, unit="g"), ctx(topic))
    assert schema_id_of(c) == id2

    # Deserializers in a client of their own: nothing cached from the registrations, so the
    # writer schemas come from /schemas/ids/{id}?format=serialized.
    fresh = SchemaRegistryClient({"url": registry_url})
    got = round_trip(admin, bootstrap, topic, [a, b, c], ProtobufDeserializer(v2, {}, fresh))
    assert got[0].patient == "p1" and got[0].value == 5.5 and got[0].unit == ""
    assert got[0].at.seconds == 1_700_000_000 and got[0].where.city == "Lyon"
    assert got[1] == m2
    assert got[2] == v2(patient="p3", value=1.0, unit="g")
    # The registering client decodes too: its cache holds the schema the registration
    # answered, which must be the base64 descriptor it sent, not the stored .proto text.
    assert ProtobufDeserializer(v1, {}, sr)(a, ctx(topic)) == m1
    print("  produced, consumed, deserialized (fresh client and the registering one)")


# ------------------------------------------------------------------ broker-side validation


def test_broker_side_validation_refuses_bad_records(sr, bootstrap, admin):
    topic = unique_topic("sr", "validated")
    create_topic(admin, topic, {"confluent.value.schema.validation": "true"})
    good = AvroSerializer(sr, AVRO_V1)({"patient": "ok", "value": 1.0}, ctx(topic))
    # A schema registered only under another subject: a real id, the wrong subject.
    other = sr.register_schema(f"{topic}-other-value", Schema(avro_record([{"name": "x", "type": "int"}], "Other"), "AVRO"))
    assert other != schema_id_of(good)
    wrong_subject = b"\x00" + struct.pack(">I", other) + good[5:]
    no_prefix = b'{"patient": "raw"}'

    outcomes = produce_each(bootstrap, topic, [no_prefix, good, wrong_subject])
    print(f"  delivery reports: {outcomes}")
    for i in (0, 2):
        err = outcomes[i]
        assert isinstance(err, KafkaError), f"record {i} was accepted at offset {err}"
        assert err.code() == KafkaError.INVALID_RECORD, err
    assert outcomes[1] == 0, "the good record is the topic's first"
    got = consume_values(bootstrap, topic, 1)
    assert got == [good]
    lo, hi = Consumer({"bootstrap.servers": bootstrap, "group.id": "interop-unused"}).get_watermark_offsets(
        TopicPartition(topic, 0), timeout=TIMEOUT_S
    )
    assert (lo, hi) == (0, 1), "only the good record is in the log"
    print(f"  {topic}: no prefix and foreign id refused (INVALID_RECORD); only the good record is stored")
