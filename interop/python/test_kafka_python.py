"""kafka-python (pure Python, its own protocol code) against a running broker.

What it checks:
  * per codec (none, gzip, snappy, lz4, zstd): KafkaAdminClient.create_topics (3 partitions),
    10,000 records from KafkaProducer(compression_type=codec, acks='all') with keys, headers
    (incl. repeated keys), tombstones and explicit timestamps; the offsets in the send results
    are 0..n-1 per partition in production order; beginning_offsets / end_offsets match; a
    KafkaConsumer with no group (assign + seek_to_beginning) reads every record back
    identical at the offset the producer was given; offsets_for_times finds exact offsets;
  * admin: create_topics (validate_only, duplicate, unknown config), describe_topics,
    describe_cluster, describe_configs, alter_configs (incremental and legacy; unknown name ->
    InvalidConfigurationError), create_partitions (3 -> 6), delete_records, delete_topics.
  * transactions: a KafkaProducer(transactional_id=...) commits A (with offsets for a group
    by send_offsets_to_transaction), aborts B (records flushed to the log, offsets sent), and
    commits C: a read_committed KafkaConsumer sees A and C only, a read_uncommitted one A, B
    and C; the group's committed offset is A's.

The record read-backs use no consumer group (assign + seek); test_transactions commits offsets
for a group through the transactional producer.
"""

import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka import errors as Errors
from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, KafkaAdminClient

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

TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def admin(bootstrap):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)
    yield client
    client.close()


def topic_partitions(admin, topic):
    """Partition count of topic from a metadata request for all topics, None if absent."""
    for t in admin.describe_topics():
        if t["name"] == topic and t["error_code"] == 0:
            return len(t["partitions"])
    return None


def create_topic(admin, topic, partitions, configs=None):
    admin.create_topics(
        {topic: {"num_partitions": partitions, "replication_factor": 1, "configs": configs or {}}},
        timeout_ms=TIMEOUT_MS,
    )
    wait_until(
        lambda: topic_partitions(admin, topic) == partitions,
        30,
        f"{topic} to show {partitions} partitions in metadata",
    )


def expect_error(what, error_class, fn):
    try:
        fn()
    except error_class as e:
        print(f"  {what}: got {type(e).__name__} as expected")
        return
    except Exception as e:  # noqa: BLE001 - report whatever else came back
        pytest.fail(f"{what}: expected {error_class.__name__}, got {type(e).__name__}: {e}")
    pytest.fail(f"{what}: expected {error_class.__name__}, but it succeeded")


def produce(bootstrap, topic, records, codec):
    """Sends every record (acks=all) and returns index -> (partition, offset).
    max_in_flight_requests_per_connection=1 keeps per-partition order without idempotence
    (test_transactions covers the idempotent, transactional producer)."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        compression_type=None if codec == "none" else codec,
        enable_idempotence=False,
        max_in_flight_requests_per_connection=1,
        linger_ms=5,
        request_timeout_ms=TIMEOUT_MS,
    )
    try:
        futures = [
            producer.send(
                topic,
                key=r["key"],
                value=r["value"],
                headers=r["headers"],
                timestamp_ms=r["timestamp"],
                **({"partition": r["partition"]} if "partition" in r else {}),
            )
            for r in records
        ]
        producer.flush(timeout=60)
        positions, errors = {}, []
        for i, f in enumerate(futures):
            try:
                md = f.get(timeout=0)
                positions[i] = (md.partition, md.offset)
            except Exception as e:  # noqa: BLE001 - collect and report all delivery errors
                errors.append((i, repr(e)))
        if errors:
            pytest.fail(f"{topic}: {len(errors)} send errors, first: {errors[:5]}")
        return positions
    finally:
        producer.close(timeout=10)


def new_consumer(bootstrap):
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
        request_timeout_ms=TIMEOUT_MS + 5_000,
    )


def consume(bootstrap, topic, end_offsets):
    """Reads partitions 0..n-1 from the beginning to end_offsets[p] with assign() +
    seek_to_beginning(), no group."""
    consumer = new_consumer(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in end_offsets]
        consumer.assign(tps)
        consumer.seek_to_beginning()
        need = sum(end_offsets.values())
        records, order = {}, {p: [] for p in end_offsets}
        deadline = Deadline(60, f"{need} records from {topic}")
        while len(records) < need:
            if deadline.expired():
                got = {p: len(o) for p, o in order.items()}
                deadline.fail(f"read {len(records)} of {need}; per partition {got}, want {end_offsets}")
            for batch in consumer.poll(timeout_ms=1000, max_records=5000).values():
                for m in batch:
                    records[(m.partition, m.offset)] = {
                        "key": m.key,
                        "value": m.value,
                        "headers": list(m.headers or []),
                        "timestamp": m.timestamp,
                        "timestamp_type": m.timestamp_type,
                    }
                    order[m.partition].append(m.offset)
        return records, order, consumer
    except BaseException:
        consumer.close()
        raise


@pytest.mark.parametrize("codec", CODECS)
def test_produce_consume_codec(admin, bootstrap, codec):
    topic = unique_topic("kafkapython", codec)
    create_topic(admin, topic, 3)
    print(f"  created {topic} with 3 partitions")
    base_ts = base_timestamp_ms()
    records = [make_record(i, codec, base_ts) for i in range(RECORDS_PER_CODEC)]

    positions = produce(bootstrap, topic, records, codec)
    counts = check_offsets_contiguous(topic, positions)
    print(f"  produced {len(records)} records ({codec}, acks=all), per partition {counts}")

    end_offsets = {p: counts.get(p, 0) for p in range(3)}
    actual, order, consumer = consume(bootstrap, topic, end_offsets)
    try:
        for p, offsets in order.items():
            if offsets != list(range(len(offsets))):
                pytest.fail(f"{topic}[{p}]: consumer delivered offsets out of order: {offsets[:20]}...")
        bad = [pos for pos, r in actual.items() if r["timestamp_type"] != 0]  # 0 = CreateTime
        if bad:
            pytest.fail(f"{topic}: {len(bad)} records lost their CreateTime timestamp type, e.g. {bad[:5]}")
        compare_records(f"{topic} ({codec})", {positions[i]: records[i] for i in range(len(records))}, actual)

        # offsets_for_times: the record produced at index i has timestamp base_ts + i; in each
        # partition the answer is the first offset whose timestamp is >= the one asked.
        index_at = {pos: i for i, pos in positions.items()}
        query = {}
        want = {}
        for p in range(3):
            in_p = sorted(o for (pp, o) in index_at if pp == p)
            if not in_p:
                continue
            mid = in_p[len(in_p) // 2]
            query[TopicPartition(topic, p)] = base_ts + index_at[(p, mid)]
            want[p] = mid
        got = consumer.offsets_for_times(query)
        got = {tp.partition: (v.offset if v is not None else None) for tp, v in got.items()}
        if got != want:
            pytest.fail(f"{topic}: offsets_for_times gave {got}, want {want}")
        print(f"  offsets_for_times (the middle record of each partition): {got}")

        tps = [TopicPartition(topic, p) for p in range(3)]
        begin = {tp.partition: o for tp, o in consumer.beginning_offsets(tps).items()}
        end = {tp.partition: o for tp, o in consumer.end_offsets(tps).items()}
        if begin != {p: 0 for p in range(3)} or end != end_offsets:
            pytest.fail(f"{topic}: beginning_offsets {begin}, end_offsets {end}; want all 0 and {end_offsets}")
        print(f"  beginning_offsets all 0, end_offsets {end}")
    finally:
        consumer.close()


def test_create_topics(admin):
    topic = unique_topic("kafkapython", "create")
    admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}}, validate_only=True)
    if topic_partitions(admin, topic) is not None:
        pytest.fail(f"create_topics(validate_only=True) created {topic}")
    print("  create_topics(validate_only=True) succeeded and created nothing")

    create_topic(admin, topic, 3)
    print(f"  create_topics created {topic} with 3 partitions")
    expect_error(
        "create_topics of an existing topic",
        Errors.TopicAlreadyExistsError,
        lambda: admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}}),
    )
    bad = unique_topic("kafkapython", "badconfig")
    expect_error(
        "create_topics with an unknown config name",
        Errors.InvalidConfigurationError,
        lambda: admin.create_topics(
            {bad: {"num_partitions": 1, "replication_factor": 1, "configs": {"no.such.config": "1"}}}
        ),
    )


def test_describe_cluster_and_topics(admin):
    topic = unique_topic("kafkapython", "describe")
    create_topic(admin, topic, 3)
    cluster = admin.describe_cluster()
    brokers = {b["broker_id"] for b in cluster["brokers"]}
    if not cluster.get("cluster_id") or not brokers:
        pytest.fail(f"describe_cluster: {cluster}")
    print(f"  describe_cluster: cluster id {cluster['cluster_id']}, brokers {sorted(brokers)}")
    (desc,) = admin.describe_topics([topic])
    leaders = {p["partition_index"]: p["leader_id"] for p in desc["partitions"]}
    if sorted(leaders) != [0, 1, 2] or not set(leaders.values()) <= brokers:
        pytest.fail(f"describe_topics {topic}: partitions/leaders {leaders}, brokers {brokers}")
    print(f"  describe_topics: {topic} partitions {sorted(leaders)} led by {sorted(set(leaders.values()))}")


def topic_config(admin, topic):
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    return res["topic"][topic]


def test_configs(admin):
    topic = unique_topic("kafkapython", "configs")
    create_topic(admin, topic, 1)
    configs = topic_config(admin, topic)
    if "retention.ms" not in configs:
        pytest.fail(f"describe_configs: retention.ms missing; got {sorted(configs)}")
    default_retention = configs["retention.ms"]["value"]
    print(f"  describe_configs: {len(configs)} entries, retention.ms={default_retention}")

    res = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "3600000"})], incremental=True
    )
    if res["topic"][topic] != "OK":
        pytest.fail(f"incremental alter_configs SET retention.ms: {res}")
    got = topic_config(admin, topic)["retention.ms"]["value"]
    if got != "3600000":
        pytest.fail(f"after incremental SET retention.ms=3600000, read back {got}")
    print("  alter_configs (IncrementalAlterConfigs) SET retention.ms=3600000: read back")

    res = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": (AlterConfigOp.DELETE, None)})],
        incremental=True,
    )
    got = topic_config(admin, topic)["retention.ms"]["value"]
    if res["topic"][topic] != "OK" or got != default_retention:
        pytest.fail(f"incremental DELETE retention.ms: result {res}, read back {got}, want {default_retention}")
    print(f"  alter_configs (IncrementalAlterConfigs) DELETE retention.ms: back to {default_retention}")

    res = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "7200000"})], incremental=False
    )
    got = topic_config(admin, topic)["retention.ms"]["value"]
    if res["topic"][topic] != "OK" or got != "7200000":
        pytest.fail(f"legacy AlterConfigs retention.ms=7200000: result {res}, read back {got}")
    print("  alter_configs (legacy AlterConfigs) retention.ms=7200000: read back")

    res = admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, {"no.such.config": "1"})],
        incremental=True,
        raise_on_unknown=False,  # let the broker judge it, not the client
    )
    if "InvalidConfigurationError" not in res["topic"][topic]:
        pytest.fail(f"alter_configs of an unknown config name: expected InvalidConfigurationError, got {res}")
    print("  alter_configs of an unknown config name: InvalidConfigurationError as expected")


def test_create_partitions(admin):
    topic = unique_topic("kafkapython", "partitions")
    create_topic(admin, topic, 3)
    admin.create_partitions({topic: 6})
    wait_until(lambda: topic_partitions(admin, topic) == 6, 30, f"{topic} to have 6 partitions")
    print(f"  create_partitions {topic} 3 -> 6: metadata shows 6")
    expect_error(
        "create_partitions 6 -> 4",
        Errors.InvalidPartitionsError,
        lambda: admin.create_partitions({topic: 4}),
    )


def test_delete_records(admin, bootstrap):
    topic = unique_topic("kafkapython", "deleterecords")
    create_topic(admin, topic, 1)
    base_ts = base_timestamp_ms()
    records = [dict(make_record(i, "none", base_ts), partition=0) for i in range(100)]
    positions = produce(bootstrap, topic, records, "none")
    check_offsets_contiguous(topic, positions)
    tp = TopicPartition(topic, 0)
    result = admin.delete_records({tp: 30})
    low = result[tp]["low_watermark"]
    if low != 30:
        pytest.fail(f"delete_records before 30: result {result}")
    consumer = new_consumer(bootstrap)
    try:
        begin = consumer.beginning_offsets([tp])[tp]
        end = consumer.end_offsets([tp])[tp]
    finally:
        consumer.close()
    if (begin, end) != (30, 100):
        pytest.fail(f"after delete_records before 30: beginning {begin}, end {end}; want 30, 100")
    print("  delete_records before offset 30: low watermark 30, beginning_offsets 30, end_offsets 100")


def test_delete_topics(admin):
    topic = unique_topic("kafkapython", "delete")
    create_topic(admin, topic, 2)
    admin.delete_topics([topic])
    wait_until(lambda: topic_partitions(admin, topic) is None, 30, f"{topic} to leave metadata")
    print(f"  delete_topics {topic}: gone from metadata")
    expect_error(
        "delete_topics of a topic that does not exist",
        Errors.UnknownTopicOrPartitionError,
        lambda: admin.delete_topics([topic]),
    )


def read_values(bootstrap, topic, partitions, isolation_level, until):
    """Values of topic's partitions from the beginning, read by a KafkaConsumer with the
    given isolation_level (assign, no group), until until(values) holds."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level=isolation_level,
        request_timeout_ms=TIMEOUT_MS + 5_000,
    )
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        values = []
        deadline = Deadline(60, f"{isolation_level} read of {topic}")
        while not until(values):
            if deadline.expired():
                deadline.fail(f"read {len(values)} values: {sorted(values)[:10]}...")
            for batch in consumer.poll(timeout_ms=500).values():
                values.extend(m.value.decode() for m in batch)
        return values
    finally:
        consumer.close()


def test_transactions(admin, bootstrap):
    topic = unique_topic("kafkapython", "txn")
    source = unique_topic("kafkapython", "txnsrc")
    group = f"kafkapython-txn-{uuid.uuid4().hex[:8]}"
    create_topic(admin, topic, 2)
    create_topic(admin, source, 1)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"kafkapython-{uuid.uuid4().hex[:8]}",
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=TIMEOUT_MS,
    )
    n = 20

    def send(tag):
        futures = [producer.send(topic, value=f"{tag}-{i}".encode(), partition=i % 2) for i in range(n)]
        producer.flush(timeout=30)
        for f in futures:
            f.get(timeout=0)  # raises if the record was not written

    try:
        producer.init_transactions()
        producer.begin_transaction()
        send("A")
        producer.send_offsets_to_transaction({TopicPartition(source, 0): OffsetAndMetadata(5, "", -1)}, group)
        producer.commit_transaction()
        producer.begin_transaction()
        send("B")
        producer.send_offsets_to_transaction({TopicPartition(source, 0): OffsetAndMetadata(7, "", -1)}, group)
        producer.abort_transaction()
        producer.begin_transaction()
        send("C")
        producer.commit_transaction()
    finally:
        producer.close(timeout=10)
    print(f"  {topic}: transaction A ({n} records, offset 5 for {group}) committed, B (offset 7) aborted, C committed")

    def tags(values):
        return {t: sum(v.startswith(t + "-") for v in values) for t in "ABC"}

    committed = read_values(bootstrap, topic, 2, "read_committed", lambda v: tags(v)["C"] == n)
    assert sorted(committed) == sorted(f"{t}-{i}" for t in "AC" for i in range(n)), (
        f"read_committed sees {tags(committed)} records of A, B, C; want {n}, 0, {n}"
    )
    uncommitted = read_values(bootstrap, topic, 2, "read_uncommitted", lambda v: tags(v)["C"] == n)
    assert sorted(uncommitted) == sorted(f"{t}-{i}" for t in "ABC" for i in range(n)), (
        f"read_uncommitted sees {tags(uncommitted)} records of A, B, C; want {n} each"
    )
    offsets = admin.list_group_offsets({group: [TopicPartition(source, 0)]})[group]
    got = offsets[TopicPartition(source, 0)].offset
    assert got == 5, f"the group's committed offset is {got}: want 5 (A committed, B aborted)"
    print(f"  read_committed: {tags(committed)}; read_uncommitted: {tags(uncommitted)}; group offset {got}")
