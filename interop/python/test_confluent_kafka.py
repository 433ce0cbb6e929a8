"""confluent-kafka-python (librdkafka 2.16, bundled in the wheel) against a running broker.

What it checks:
  * per codec (none, gzip, snappy, lz4, zstd): AdminClient.create_topics (3 partitions),
    10,000 records produced with acks=all (keys, headers incl. repeated keys, tombstones,
    explicit timestamps), every delivery report carries an offset, offsets are 0..n-1 per
    partition in production order, watermarks match, and a plain Consumer using assign() at
    explicit offset 0 reads every record back identical at the reported (partition, offset);
  * admin: create_topics (validate_only, duplicate -> TOPIC_ALREADY_EXISTS, unknown config ->
    INVALID_CONFIG), list_topics / describe_topics / describe_cluster, describe_configs,
    alter_configs and incremental_alter_configs (SET, DELETE, unknown name -> INVALID_CONFIG),
    create_partitions (3 -> 6, shrinking -> INVALID_PARTITIONS), list_offsets with
    earliest / latest / for_timestamp / max_timestamp, delete_records, delete_topics;
  * group admin: a subscribed consumer commits, then list_consumer_groups (with a state
    filter), describe_consumer_groups, list_consumer_group_offsets,
    alter_consumer_group_offsets (refused while the group has members, applied once it is
    empty), delete_consumer_groups (refused while active, unknown -> GROUP_ID_NOT_FOUND).

The codec round trips read with assign() at explicit offsets (no group membership); the
rebalancing scenarios with several members live in interop/groups/.
"""

import pytest
from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from conftest import (
    CODECS,
    RECORDS_PER_CODEC,
    Deadline,
    base_timestamp_ms,
    check_offsets_contiguous,
    compare_records,
    make_record,
    unique_topic,
    wait_until,
)

TIMEOUT_S = 30


@pytest.fixture(scope="module")
def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(admin, topic, partitions, config=None):
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
        request_timeout=TIMEOUT_S,
    )
    futures[topic].result(TIMEOUT_S)
    wait_until(
        lambda: topic_partitions(admin, topic) == partitions,
        TIMEOUT_S,
        f"{topic} to show {partitions} partitions in metadata",
    )


def topic_partitions(admin, topic):
    """Number of partitions of topic in a metadata request for ALL topics (asking for one
    topic by name could auto-create it), or None when it does not exist."""
    md = admin.list_topics(timeout=TIMEOUT_S)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return len(t.partitions)


def expect_kafka_error(what, code, fn):
    """Runs fn, which must raise a KafkaException carrying the error code `code`."""
    try:
        fn()
    except KafkaException as e:
        err = e.args[0]
        if err.code() != code:
            pytest.fail(f"{what}: expected error {KafkaError(code).name()}, got {err}")
        print(f"  {what}: got {err.name()} as expected")
        return
    pytest.fail(f"{what}: expected error {KafkaError(code).name()}, but it succeeded")


def produce(bootstrap, topic, records, codec, extra=None):
    """Produces records (acks=all) with an idempotent producer (five requests in flight,
    order kept by the broker's sequence checks), returns index -> (partition, offset) from
    the delivery reports; fails on any delivery error."""
    conf = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "compression.type": codec,
        "enable.idempotence": True,
        "max.in.flight.requests.per.connection": 5,
        "linger.ms": 5,
    }
    conf.update(extra or {})
    producer = Producer(conf)
    positions, errors = {}, []

    def on_delivery(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                positions[i] = (msg.partition(), msg.offset())

        return cb

    for i, r in enumerate(records):
        while True:
            try:
                producer.produce(
                    topic,
                    key=r["key"],
                    value=r["value"],
                    headers=r["headers"],
                    timestamp=r["timestamp"],
                    on_delivery=on_delivery(i),
                    **({"partition": r["partition"]} if "partition" in r else {}),
                )
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining:
        pytest.fail(f"{topic}: {remaining} records still undelivered after 60 s")
    if errors:
        pytest.fail(f"{topic}: {len(errors)} delivery errors, first: {errors[:5]}")
    if len(positions) != len(records):
        pytest.fail(f"{topic}: {len(positions)} delivery reports for {len(records)} records")
    return positions


def consume_assigned(bootstrap, topic, end_offsets, start_offsets=None):
    """Reads every partition of end_offsets (partition -> end offset) from its start offset
    (default 0) to its end with assign(), no group. Returns (partition, offset) -> record and
    the per-partition lists of offsets in delivery order."""
    start_offsets = start_offsets or {p: 0 for p in end_offsets}
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "interop-unused-no-group-coordinator",
            "enable.auto.commit": False,
            "auto.offset.reset": "error",
            "enable.partition.eof": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, start_offsets[p]) for p in end_offsets])
        records, order = {}, {p: [] for p in end_offsets}
        need = sum(end_offsets[p] - start_offsets[p] for p in end_offsets)
        deadline = Deadline(60, f"{need} records from {topic}")
        while len(records) < need:
            if deadline.expired():
                got = {p: len(o) for p, o in order.items()}
                deadline.fail(f"read {len(records)} of {need}; per partition {got}, want {end_offsets}")
            for msg in consumer.consume(num_messages=1000, timeout=min(1.0, deadline.remaining())):
                if msg.error() is not None:
                    pytest.fail(f"{topic}: consumer error: {msg.error()}")
                ts_type, ts = msg.timestamp()
                records[(msg.partition(), msg.offset())] = {
                    "key": msg.key(),
                    "value": msg.value(),
                    "headers": msg.headers() or [],
                    "timestamp": ts,
                    "timestamp_type": ts_type,
                }
                order[msg.partition()].append(msg.offset())
        return records, order
    finally:
        consumer.close()


@pytest.mark.parametrize("codec", CODECS)
def test_produce_consume_codec(admin, bootstrap, codec):
    topic = unique_topic("confluent", codec)
    create_topic(admin, topic, 3)
    print(f"  created {topic} with 3 partitions")
    base_ts = base_timestamp_ms()
    records = [make_record(i, codec, base_ts) for i in range(RECORDS_PER_CODEC)]

    positions = produce(bootstrap, topic, records, codec)
    counts = check_offsets_contiguous(topic, positions)
    print(f"  produced {len(records)} records ({codec}, acks=all), per partition {counts}")
    assert sum(counts.values()) == RECORDS_PER_CODEC

    actual, order = consume_assigned(bootstrap, topic, {p: counts.get(p, 0) for p in range(3)})
    for p, offsets in order.items():
        if offsets != list(range(len(offsets))):
            pytest.fail(f"{topic}[{p}]: consumer delivered offsets out of order: {offsets[:20]}...")
    bad_ts_type = [pos for pos, r in actual.items() if r["timestamp_type"] != TIMESTAMP_CREATE_TIME]
    if bad_ts_type:
        pytest.fail(f"{topic}: {len(bad_ts_type)} records lost their CreateTime timestamp type, e.g. {bad_ts_type[:5]}")
    expected = {positions[i]: records[i] for i in range(len(records))}
    compare_records(f"{topic} ({codec})", expected, actual)

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "interop-unused"})
    try:
        for p in range(3):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S)
            if (low, high) != (0, counts.get(p, 0)):
                pytest.fail(f"{topic}[{p}] watermarks: expected (0, {counts.get(p, 0)}), got ({low}, {high})")
    finally:
        consumer.close()
    print("  watermarks (low, high) = (0, records in partition) for all 3 partitions")


def test_create_topics(admin):
    topic = unique_topic("confluent", "create")

    futures = admin.create_topics([NewTopic(topic, num_partitions=3)], validate_only=True)
    futures[topic].result(TIMEOUT_S)
    if topic_partitions(admin, topic) is not None:
        pytest.fail(f"create_topics(validate_only=True) created {topic}")
    print("  create_topics(validate_only=True) succeeded and created nothing")

    create_topic(admin, topic, 3, config={"retention.ms": "86400000"})
    print(f"  create_topics created {topic} with 3 partitions and retention.ms=86400000")

    expect_kafka_error(
        "create_topics of an existing topic",
        KafkaError.TOPIC_ALREADY_EXISTS,
        lambda: admin.create_topics([NewTopic(topic, num_partitions=1)])[topic].result(TIMEOUT_S),
    )
    bad = unique_topic("confluent", "badconfig")
    expect_kafka_error(
        "create_topics with an unknown config name",
        KafkaError.INVALID_CONFIG,
        lambda: admin.create_topics([NewTopic(bad, num_partitions=1, config={"no.such.config": "1"})])[bad].result(
            TIMEOUT_S
        ),
    )
    if topic_partitions(admin, bad) is not None:
        pytest.fail(f"a rejected create_topics still created {bad}")


def test_metadata_and_describe(admin):
    topic = unique_topic("confluent", "describe")
    create_topic(admin, topic, 3)

    md = admin.list_topics(timeout=TIMEOUT_S)
    broker_ids = set(md.brokers)
    if not broker_ids:
        pytest.fail("list_topics: metadata lists no broker")
    t = md.topics[topic]
    for p, pm in sorted(t.partitions.items()):
        if pm.leader not in broker_ids or pm.error is not None:
            pytest.fail(f"list_topics: {topic}[{p}] leader {pm.leader} (brokers {broker_ids}), error {pm.error}")
    print(f"  list_topics: brokers {sorted(broker_ids)}, {topic} has partitions {sorted(t.partitions)} with leaders")

    desc = admin.describe_topics(TopicCollection([topic]), request_timeout=TIMEOUT_S)[topic].result(TIMEOUT_S)
    if desc.name != topic or len(desc.partitions) != 3 or desc.is_internal:
        pytest.fail(
            f"describe_topics: unexpected description {desc.name} {desc.partitions} internal={desc.is_internal}"
        )
    for p in desc.partitions:
        if p.leader is None or p.leader.id not in broker_ids:
            pytest.fail(f"describe_topics: {topic}[{p.id}] has leader {p.leader}")
    print(f"  describe_topics: {topic} with 3 partitions, each led by a listed broker")

    cluster = admin.describe_cluster(request_timeout=TIMEOUT_S).result(TIMEOUT_S)
    if not cluster.cluster_id or not cluster.nodes:
        pytest.fail(f"describe_cluster: cluster_id={cluster.cluster_id!r}, nodes={cluster.nodes}")
    if {n.id for n in cluster.nodes} != broker_ids:
        pytest.fail(f"describe_cluster nodes {cluster.nodes} differ from metadata brokers {broker_ids}")
    print(f"  describe_cluster: cluster id {cluster.cluster_id}, nodes {[n.id for n in cluster.nodes]}")


def config_source(entry):
    # The C extension fills ConfigEntry.source with a plain int.
    return ConfigSource(getattr(entry.source, "value", entry.source))


def topic_config(admin, topic):
    resource = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([resource], request_timeout=TIMEOUT_S)[resource].result(TIMEOUT_S)


def test_configs(admin):
    topic = unique_topic("confluent", "configs")
    create_topic(admin, topic, 1)

    entries = topic_config(admin, topic)
    for name in ("retention.ms", "cleanup.policy", "segment.bytes"):
        if name not in entries:
            pytest.fail(f"describe_configs: {name} missing; got {sorted(entries)}")
    default_retention = entries["retention.ms"].value
    print(f"  describe_configs: {len(entries)} entries, retention.ms={default_retention} by default")

    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)],
    )
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT_S)
    entry = topic_config(admin, topic)["retention.ms"]
    if entry.value != "3600000" or config_source(entry) != ConfigSource.DYNAMIC_TOPIC_CONFIG:
        pytest.fail(f"after incremental SET retention.ms=3600000, read back {entry.value} (source {entry.source})")
    print("  incremental_alter_configs SET retention.ms=3600000: read back 3600000, source DYNAMIC_TOPIC_CONFIG")

    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)],
    )
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT_S)
    entry = topic_config(admin, topic)["retention.ms"]
    if entry.value != default_retention:
        pytest.fail(f"after incremental DELETE retention.ms, read back {entry.value}, want default {default_retention}")
    print(f"  incremental_alter_configs DELETE retention.ms: back to {default_retention}")

    resource = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.ms": "7200000"})
    admin.alter_configs([resource])[resource].result(TIMEOUT_S)  # deprecated API, still used by tools
    entry = topic_config(admin, topic)["retention.ms"]
    if entry.value != "7200000":
        pytest.fail(f"after alter_configs retention.ms=7200000, read back {entry.value}")
    print("  alter_configs retention.ms=7200000: read back 7200000")

    resource = ConfigResource(
        ResourceType.TOPIC,
        topic,
        incremental_configs=[ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)],
    )
    expect_kafka_error(
        "incremental_alter_configs of an unknown config name",
        KafkaError.INVALID_CONFIG,
        lambda: admin.incremental_alter_configs([resource])[resource].result(TIMEOUT_S),
    )


def test_create_partitions(admin, bootstrap):
    topic = unique_topic("confluent", "partitions")
    create_topic(admin, topic, 3)
    admin.create_partitions([NewPartitions(topic, 6)], request_timeout=TIMEOUT_S)[topic].result(TIMEOUT_S)
    wait_until(lambda: topic_partitions(admin, topic) == 6, TIMEOUT_S, f"{topic} to have 6 partitions")
    print(f"  create_partitions {topic} 3 -> 6: metadata shows 6")

    base_ts = base_timestamp_ms()
    records = [dict(make_record(i, "none", base_ts), partition=5) for i in range(10)]
    positions = produce(bootstrap, topic, records, "none")
    if sorted(positions.values()) != [(5, o) for o in range(10)]:
        pytest.fail(f"produce to new partition 5: got positions {sorted(positions.values())}")
    print("  produced 10 records to new partition 5 at offsets 0..9")

    expect_kafka_error(
        "create_partitions 6 -> 4",
        KafkaError.INVALID_PARTITIONS,
        lambda: admin.create_partitions([NewPartitions(topic, 4)])[topic].result(TIMEOUT_S),
    )


def list_offsets(admin, topic, spec):
    tp = TopicPartition(topic, 0)
    return admin.list_offsets({tp: spec}, request_timeout=TIMEOUT_S)[tp].result(TIMEOUT_S)


def test_list_offsets_and_delete_records(admin, bootstrap):
    topic = unique_topic("confluent", "offsets")
    create_topic(admin, topic, 1)
    base_ts = base_timestamp_ms()
    # 100 records, timestamps base + 10 * i, all to partition 0
    records = []
    for i in range(100):
        r = make_record(i, "none", base_ts)
        r["timestamp"] = base_ts + 10 * i
        records.append(r)
    positions = produce(bootstrap, topic, records, "none")
    check_offsets_contiguous(topic, positions)

    checks = [
        ("earliest", OffsetSpec.earliest(), 0),
        ("latest", OffsetSpec.latest(), 100),
        ("for_timestamp(ts of #40)", OffsetSpec.for_timestamp(base_ts + 400), 40),
        ("for_timestamp(between #39 and #40)", OffsetSpec.for_timestamp(base_ts + 395), 40),
        ("for_timestamp(before all)", OffsetSpec.for_timestamp(base_ts - 1000), 0),
        ("for_timestamp(after all)", OffsetSpec.for_timestamp(base_ts + 100_000), -1),
        ("max_timestamp", OffsetSpec.max_timestamp(), 99),
    ]
    for name, spec, want in checks:
        got = list_offsets(admin, topic, spec)
        if got.offset != want:
            pytest.fail(f"list_offsets {name}: expected offset {want}, got {got.offset} (timestamp {got.timestamp})")
        if name == "max_timestamp" and got.timestamp != base_ts + 990:
            pytest.fail(f"list_offsets max_timestamp: expected timestamp {base_ts + 990}, got {got.timestamp}")
    print("  list_offsets: " + ", ".join(f"{name} -> {want}" for name, _, want in checks))

    tp = TopicPartition(topic, 0, 30)
    deleted = admin.delete_records([tp], request_timeout=TIMEOUT_S)[tp].result(TIMEOUT_S)
    if deleted.low_watermark != 30:
        pytest.fail(f"delete_records before 30: low watermark {deleted.low_watermark}")
    got = list_offsets(admin, topic, OffsetSpec.earliest())
    if got.offset != 30:
        pytest.fail(f"after delete_records before 30, earliest offset is {got.offset}")
    actual, _ = consume_assigned(bootstrap, topic, {0: 100}, start_offsets={0: 30})
    compare_records(
        f"{topic} after delete_records",
        {(0, i): records[i] for i in range(30, 100)},
        {pos: r for pos, r in actual.items()},
    )
    print("  delete_records before offset 30: low watermark 30, earliest 30, offsets 30..99 still readable")

    tp = TopicPartition(topic, 0, 500)
    expect_kafka_error(
        "delete_records beyond the high watermark",
        KafkaError.OFFSET_OUT_OF_RANGE,
        lambda: admin.delete_records([tp])[tp].result(TIMEOUT_S),
    )


def test_delete_topics(admin):
    topic = unique_topic("confluent", "delete")
    create_topic(admin, topic, 2)
    admin.delete_topics([topic], operation_timeout=TIMEOUT_S)[topic].result(TIMEOUT_S)
    wait_until(lambda: topic_partitions(admin, topic) is None, TIMEOUT_S, f"{topic} to leave metadata")
    print(f"  delete_topics {topic}: gone from metadata")
    expect_kafka_error(
        "delete_topics of a topic that does not exist",
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        lambda: admin.delete_topics([topic])[topic].result(TIMEOUT_S),
    )


def test_group_admin(admin, bootstrap):
    from confluent_kafka import ConsumerGroupTopicPartitions

    topic = unique_topic("confluent", "group-admin")
    group = unique_topic("confluent", "group")
    create_topic(admin, topic, 2)
    records = [make_record(i, "none", base_timestamp_ms()) for i in range(20)]
    produce(bootstrap, topic, records, "none")
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    deadline = Deadline(TIMEOUT_S, "the group member to read 20 records")
    while seen < 20:
        if deadline.expired():
            deadline.fail(f"{seen} read")
        m = consumer.poll(0.2)
        if m is not None and m.error() is None:
            seen += 1
    consumer.commit(asynchronous=False)

    listed = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(TIMEOUT_S)
    assert group in [g.group_id for g in listed.valid], "the active group is listed as STABLE"
    desc = admin.describe_consumer_groups([group])[group].result(TIMEOUT_S)
    assert desc.state == ConsumerGroupState.STABLE
    assert desc.partition_assignor == "range"
    assert len(desc.members) == 1
    assigned = sorted(tp.partition for tp in desc.members[0].assignment.topic_partitions)
    assert assigned == [0, 1]
    print(f"  describe_consumer_groups {group}: STABLE, one member owning {assigned}")

    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0), TopicPartition(topic, 1)])]
    committed = admin.list_consumer_group_offsets(request)[group].result(TIMEOUT_S)
    total = sum(tp.offset for tp in committed.topic_partitions)
    assert total == 20, committed.topic_partitions

    rewind = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 1)])]
    # Kafka refuses commits without a generation while the group has members; the
    # error comes back per partition.
    refused = admin.alter_consumer_group_offsets(rewind)[group].result(TIMEOUT_S)
    errors = [tp.error.code() if tp.error else 0 for tp in refused.topic_partitions]
    assert errors == [KafkaError.UNKNOWN_MEMBER_ID], refused.topic_partitions
    print("  alter_consumer_group_offsets while the group has a member: UNKNOWN_MEMBER_ID")
    expect_kafka_error(
        "delete_consumer_groups while the group has a member",
        KafkaError.NON_EMPTY_GROUP,
        lambda: admin.delete_consumer_groups([group])[group].result(TIMEOUT_S),
    )
    consumer.close()
    wait_until(
        lambda: admin.describe_consumer_groups([group])[group].result(TIMEOUT_S).state
        == ConsumerGroupState.EMPTY,
        TIMEOUT_S,
        "the group to be empty after close()",
    )
    admin.alter_consumer_group_offsets(rewind)[group].result(TIMEOUT_S)
    after = admin.list_consumer_group_offsets(request)[group].result(TIMEOUT_S)
    offsets = {tp.partition: tp.offset for tp in after.topic_partitions}
    assert offsets[0] == 1, offsets
    print(f"  alter_consumer_group_offsets: {topic}-0 rewound to 1 ({offsets})")

    admin.delete_consumer_groups([group])[group].result(TIMEOUT_S)
    gone = admin.list_consumer_groups().result(TIMEOUT_S)
    assert group not in [g.group_id for g in gone.valid]
    expect_kafka_error(
        "delete_consumer_groups of an unknown group",
        KafkaError.GROUP_ID_NOT_FOUND,
        lambda: admin.delete_consumer_groups([group])[group].result(TIMEOUT_S),
    )
    print(f"  delete_consumer_groups {group}: deleted; a second delete -> GROUP_ID_NOT_FOUND")
