"""Consumer-group acceptance scenarios with real clients (confluent-kafka/librdkafka and
kafkajs) as separate member processes, against a broker each test starts itself.

Each test gets its own broker (MEDULLA_BIN, default target/release/medulla) on a free loopback
port with a fresh data dir, so it can SIGKILL and restart it on the same port and data dir;
its log, and each member's events and stderr, are kept under
target/interop/groups/run-*/TEST/. A producer thread writes to a 6-partition topic
throughout (value = the partition's sequence number); members process and commit.

  test_members_leave_and_crash[confluent-range | kafkajs-roundrobin |
                               confluent-cooperative-sticky | confluent-kip848-uniform]
      three members (the last: group.protocol=consumer, KIP-848, with the broker's uniform
      assignor); one closes cleanly, a fourth joins, one is SIGKILLed: each time the
      partitions end up with exactly one live member each; never two holders at once;
      everything produced is processed (nothing skipped); the committed offsets reach the
      end offsets and read back identically after a clean broker restart.
  test_static_membership[classic-range | kip848-uniform]
      three static members (group.instance.id); one is SIGKILLed (KIP-848: closed, see the
      test) and restarted with the same instance id within the session timeout: it gets its
      old partitions back and nobody else sees a rebalance; DescribeGroups shows the instance
      ids. Then one is SIGKILLed for good: its partitions move once its session expires.
  test_broker_restart_mid_rebalance[classic-range | kip848-uniform]
      a fourth member starts; at the first revocation (revocations are slow) the broker is
      SIGKILLed and restarted: the four members converge and consumption completes with
      nothing skipped.
  test_broker_restart_stable_group[classic-range | kip848-uniform]
      the broker is SIGKILLed and restarted under a stable group: nobody is rebalanced.

Nothing waits a fixed time: every wait is on a condition with a deadline, and durations are
printed, not asserted.
"""

import os
import shutil
import signal
import time
import uuid

import pytest

from harness import REPO, Admin, Broker, ProducerThread, Scenario, client_logger, now_ms, try_call, wait_until

PARTITIONS = 6
SESSION_TIMEOUT_MS = 6000
STATIC_SESSION_TIMEOUT_MS = 10000
BROKER_OVERRIDES = {
    "group.initial.rebalance.delay.ms": "0",
    # KIP-848 groups take these from the broker (Kafka's defaults: 45 s and 5 s).
    "group.consumer.session.timeout.ms": str(SESSION_TIMEOUT_MS),
    "group.consumer.heartbeat.interval.ms": "500",
}
RUN_DIR = os.path.join(REPO, "target", "interop", "groups", f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")


def medulla_bin():
    path = os.environ.get("MEDULLA_BIN") or os.path.join(REPO, "target", "release", "medulla")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no broker binary at {path}: build it (cargo build --release -p medulla) or set MEDULLA_BIN")
    return path


@pytest.fixture(autouse=True)
def _own_line():
    # With -s, a test's first print would share the line pytest -v starts with the test name.
    print()


@pytest.fixture
def scenario(request):
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "_")
    workdir = os.path.join(RUN_DIR, name)
    os.makedirs(workdir, exist_ok=True)
    broker = Broker(medulla_bin(), workdir, BROKER_OVERRIDES)
    broker.start()
    logger = client_logger(workdir)
    sc = Scenario(
        broker=broker,
        workdir=workdir,
        topic=f"groups-{uuid.uuid4().hex[:10]}",
        group=f"g-{uuid.uuid4().hex[:10]}",
        partitions=PARTITIONS,
        admin=Admin(broker, logger),
        logger=logger,
    )
    sc.admin.create_topic(sc.topic, PARTITIONS)
    print(
        f"  broker {broker.bootstrap}, log {broker.log_path}; topic {sc.topic} ({PARTITIONS} partitions), group {sc.group}"
    )
    t0 = time.monotonic()
    yield sc
    if sc.producer is not None and sc.producer.is_alive():
        sc.producer.abort()
    for m in sc.members:
        m.reap()
    panics = broker.panics()
    broker_was_alive = broker.alive()
    try:
        broker.stop()
    finally:
        print(f"  ({time.monotonic() - t0:.1f}s; broker log {broker.log_path})")
        if os.environ.get("MEDULLA_KEEP_DATA") != "1":
            shutil.rmtree(broker.data_dir, ignore_errors=True)
    assert not panics, "the broker panicked:\n" + "\n".join(panics) + "\n" + broker.log_tail()
    assert broker_was_alive, f"the broker died during the test:\n{broker.log_tail()}"


def start_producer(sc):
    sc.producer = ProducerThread(sc.broker.bootstrap, sc.topic, sc.partitions, sc.logger)
    sc.producer.start()


def finish(sc, live, exact_values=True):
    """Stops production, then waits until the live members processed everything ([0, end)
    of every partition, by anyone) and committed the end offsets; checks ownership never
    overlapped and records were only processed by their partition's holder. Returns the
    end offsets."""
    sc.producer.stop()
    ends = sc.admin.end_offsets(sc.topic, sc.partitions)
    acked = len(sc.producer.acked)
    print(
        f"  production stopped: {sc.producer.sent} sent, {acked} acknowledged, {len(sc.producer.failed)} failed; end offsets {ends}"
    )
    if sc.producer.failed:
        print(f"    first delivery failures: {sc.producer.failed[:5]}")
    assert sum(ends.values()) >= acked, f"end offsets {ends} hold fewer records than the {acked} acknowledged"
    t0 = time.monotonic()
    wait_until(
        lambda: not sc.gaps(ends),
        60,
        "every produced record to be processed by some member",
        interval_s=0.2,
        check=lambda: sc.check_members(live),
        detail=lambda: f"  offsets nobody processed, by partition: {sc.gaps(ends)}",
    )
    print(f"  all {sum(ends.values())} records processed {time.monotonic() - t0:.2f}s after production stopped")
    seen = {}

    def committed_at_end():
        seen["committed"] = try_call(sc.admin.committed, sc.group, sc.topic, sc.partitions)
        return seen["committed"] == ends and seen["committed"]

    committed = wait_until(
        committed_at_end,
        30,
        f"the committed offsets to reach the end offsets {ends}",
        interval_s=0.2,
        detail=lambda: f"  committed offsets: {seen.get('committed')}",
    )
    print(f"  committed offsets = end offsets {committed}")
    sc.summary()
    sc.check_exclusive_ownership()
    sc.check_processed_while_owned()
    sc.check_values(exact_values)
    return ends


def check_commits_survive_restart(sc, ends):
    """After every member closed: the committed offsets read back the same, and again after
    a clean broker restart (group metadata and offsets loaded from __consumer_offsets)."""
    before = sc.admin.committed(sc.group, sc.topic, sc.partitions)
    assert before == ends, f"with the members gone, committed offsets are {before}, expected {ends}"
    desc = try_call(sc.admin.describe, sc.group)
    if desc is not None:
        print(f"  group after the members closed: state {desc.state}, {len(desc.members)} members")
    sc.broker.stop()
    sc.broker.start()
    after = wait_until(
        lambda: try_call(sc.admin.committed, sc.group, sc.topic, sc.partitions),
        30,
        "OffsetFetch to answer after the restart",
        interval_s=0.2,
    )
    assert after == ends, f"after a clean broker restart the committed offsets are {after}, before it {ends}"
    print(f"  after a clean broker restart the committed offsets read back identically: {after}")


# --------------------------------------------------------------------------------------
# 1-3: members leave cleanly, join, crash


@pytest.mark.parametrize(
    "client,protocol,strategy",
    [
        ("confluent", "classic", "range"),
        ("kafkajs", "classic", "roundrobin"),
        ("confluent", "classic", "cooperative-sticky"),
        ("confluent", "consumer", "uniform"),
    ],
    ids=["confluent-range", "kafkajs-roundrobin", "confluent-cooperative-sticky", "confluent-kip848-uniform"],
)
def test_members_leave_and_crash(scenario, client, protocol, strategy):
    sc = scenario
    reassign_deadline_s = SESSION_TIMEOUT_MS / 1000 + 15
    # kafkajs members alternate between its two processing APIs.
    modes = ["eachMessage", "eachBatch"]

    def start(i):
        return sc.start_member(f"m{i}", client, strategy, SESSION_TIMEOUT_MS, protocol=protocol, mode=modes[i % 2])

    start_producer(sc)
    m1, m2, m3 = start(1), start(2), start(3)
    assignment, took = sc.wait_settled([m1, m2, m3], 60, "three members to join")
    print(f"  three members hold {assignment} ({took:.2f}s after starting them)")

    t = m1.terminate()
    assignment, took = sc.wait_settled([m2, m3], reassign_deadline_s, "m1's partitions to move after its clean close")
    print(f"  m1 closed cleanly: m2, m3 hold {assignment}, {(now_ms() - t) / 1000:.2f}s after SIGTERM")

    m4 = start(4)
    assignment, took = sc.wait_settled([m2, m3, m4], 60, "m4 to join")
    print(f"  m4 joined: {assignment} ({took:.2f}s after starting it)")

    t = m2.kill()
    assignment, took = sc.wait_settled([m3, m4], reassign_deadline_s, "m2's partitions to move after its SIGKILL")
    print(
        f"  m2 SIGKILLed: m3, m4 hold {assignment}, {took:.2f}s after the kill (session timeout {SESSION_TIMEOUT_MS} ms)"
    )

    ends = finish(sc, [m3, m4])
    m3.terminate()
    m4.terminate()
    check_commits_survive_restart(sc, ends)


# --------------------------------------------------------------------------------------
# 4: static membership


@pytest.mark.parametrize(
    "protocol,strategy", [("classic", "range"), ("consumer", "uniform")], ids=["classic-range", "kip848-uniform"]
)
def test_static_membership(scenario, protocol, strategy):
    sc = scenario
    # A KIP-848 member's session timeout is the broker's group.consumer.session.timeout.ms.
    session_ms = STATIC_SESSION_TIMEOUT_MS if protocol == "classic" else SESSION_TIMEOUT_MS
    start_producer(sc)

    def start(name, instance):
        return sc.start_member(name, "confluent", strategy, session_ms, instance_id=instance, protocol=protocol)

    s1, s2, s3 = (start(f"s{i}", f"instance-{i}") for i in (1, 2, 3))
    assignment, took = sc.wait_settled([s1, s2, s3], 60, "three static members to join")
    print(f"  three static members hold {assignment} ({took:.2f}s)")

    desc = wait_until(
        lambda: (d := try_call(sc.admin.describe, sc.group)) and d.state.name == "STABLE" and len(d.members) == 3 and d,
        30,
        "DescribeGroups to show a Stable group of three",
    )
    ids = sorted(m.group_instance_id or "" for m in desc.members)
    print(f"  DescribeGroups: state {desc.state.name}, assignor {desc.partition_assignor}, instance ids {ids}")
    assert ids == ["instance-1", "instance-2", "instance-3"], f"DescribeGroups shows instance ids {ids}"
    old_member_ids = {m.group_instance_id: m.member_id for m in desc.members}

    before = sorted(s2.owned())
    others_events_before = {m.name: len(m.events("assigned")) + len(m.events("revoked")) for m in (s1, s3)}
    if protocol == "classic":
        t_kill = s2.kill()
        how = "SIGKILLed"
    else:
        # KIP-848 hands a static member's place to a new member only once the old one has
        # left with epoch -2 (what librdkafka's close() sends for a static member); a member
        # that crashed keeps it until its session expires, and a replacement joining before
        # that gets UNRELEASED_INSTANCE_ID, fatal for the client (Kafka's
        # GroupMetadataManager.throwIfInstanceIdIsUnreleased). So here s2 closes cleanly.
        t_kill = s2.terminate()
        how = "closed (static leave, epoch -2)"
    s2b = start("s2-restarted", "instance-2")
    assignment, took = sc.wait_settled(
        [s1, s2b, s3], session_ms / 1000 + 15, "the restarted static member to be assigned"
    )
    t_assigned = s2b.events("assigned")[0]["t"]
    print(
        f"  s2 {how} and restarted as instance-2: it holds {sorted(s2b.owned())}, assigned {(t_assigned - t_kill) / 1000:.2f}s after s2 stopped; before: {before}"
    )
    assert (
        sorted(s2b.owned()) == before
    ), f"the restarted static member got {sorted(s2b.owned())}, it held {before} before"

    # A broker that kept the killed member's id would expire it one session timeout after
    # its last heartbeat and rebalance then: watch until every member has processed records
    # stamped after that moment (a progress condition, which also shows they still consume).
    window_end = t_kill + session_ms + 2000
    wait_until(
        lambda: all(any(e["t"] > window_end for e in m.events("record")) for m in (s1, s2b, s3)),
        session_ms / 1000 + 30,
        "every static member to process records past the old session's expiry",
        interval_s=0.2,
        check=lambda: sc.check_members([s1, s2b, s3]),
    )
    moved = {
        m.name: [e for e in m.events() if e["ev"] in ("assigned", "revoked")][others_events_before[m.name] :]
        for m in (s1, s3)
    }
    assert not any(moved.values()), f"the other static members saw a rebalance: {moved}"
    print(f"  s1 and s3 saw no revocation or assignment through {(window_end - t_kill) / 1000:.1f}s after s2 stopped")

    desc = try_call(sc.admin.describe, sc.group)
    if desc is not None:
        now_ids = {m.group_instance_id: m.member_id for m in desc.members}
        print(f"  DescribeGroups now: state {desc.state.name}, instance ids {sorted(now_ids)}")
        assert sorted(now_ids) == ["instance-1", "instance-2", "instance-3"], f"DescribeGroups shows {now_ids}"
        assert (
            now_ids["instance-1"] == old_member_ids["instance-1"]
            and now_ids["instance-3"] == old_member_ids["instance-3"]
        ), f"members of instance-1/3 changed ids: {old_member_ids} -> {now_ids}"
        assert (
            now_ids["instance-2"] != old_member_ids["instance-2"]
        ), "instance-2 kept its old member id across a restart"

    # A static member that does not come back is removed when its session expires, and its
    # partitions move to the others.
    s3.kill()
    assignment, took = sc.wait_settled(
        [s1, s2b], session_ms / 1000 + 15, "s3's partitions to move after its SIGKILL (no restart)"
    )
    print(
        f"  s3 SIGKILLed for good: s1, s2-restarted hold {assignment}, {took:.2f}s after the kill (session timeout {session_ms} ms)"
    )

    ends = finish(sc, [s1, s2b])
    for m in (s1, s2b):
        m.terminate()
    # Static members do not leave the group on close; the committed offsets are still there.
    after = sc.admin.committed(sc.group, sc.topic, sc.partitions)
    assert after == ends, f"committed offsets {after}, end offsets {ends}"


# --------------------------------------------------------------------------------------
# 5: broker crash in the middle of a rebalance


@pytest.mark.parametrize(
    "protocol,strategy",
    [("classic", "range"), ("consumer", "uniform")],
    ids=["classic-range", "kip848-uniform"],
)
def test_broker_restart_mid_rebalance(scenario, protocol, strategy):
    sc = scenario
    start_producer(sc)
    # Once armed (SIGUSR1, after the first joins), the three first members take 3 s in their
    # revoke callbacks, so the rebalance (classic) or reconciliation (KIP-848) m4 starts
    # cannot complete for 3 s after the first revocation: the broker is killed in the middle.
    ms = [
        sc.start_member(f"m{i}", "confluent", strategy, SESSION_TIMEOUT_MS, protocol=protocol, revoke_delay_ms=3000)
        for i in (1, 2, 3)
    ]
    assignment, took = sc.wait_settled(ms, 60, "three members to join")
    print(f"  three members hold {assignment} ({took:.2f}s)")
    for m in ms:
        m.signal(signal.SIGUSR1)
    wait_until(lambda: all(m.events("armed") for m in ms), 10, "the members to arm their slow revoke callbacks")

    t_start = now_ms()
    counts = {m.name: len(m.events("revoked")) for m in ms}
    m4 = sc.start_member("m4", "confluent", strategy, SESSION_TIMEOUT_MS, protocol=protocol)
    first = wait_until(
        lambda: next((m.name for m in ms if len(m.events("revoked")) > counts[m.name]), None),
        30,
        "a member to log 'revoked' (the rebalance m4 causes)",
        interval_s=0.01,
    )
    t_kill = sc.broker.kill()
    revoked = [m.name for m in ms if len(m.events("revoked")) > counts[m.name]]
    print(
        f"  {first} logged revoked {(t_kill - t_start) / 1000:.2f}s after m4 started: broker SIGKILLed; at the kill {revoked} had revoked, m4 held {sorted(m4.owned())}"
    )
    assert sc.converged(ms + [m4]) is None, "precondition: the rebalance had completed before the broker was killed"
    sc.broker.start()
    assignment, took = sc.wait_settled(ms + [m4], 90, "the four members to converge after the broker restart")
    print(f"  four members hold {assignment}, {(now_ms() - t_kill) / 1000:.2f}s after the broker was killed")

    ends = finish(sc, ms + [m4], exact_values=False)
    for m in ms + [m4]:
        m.terminate()
    after = sc.admin.committed(sc.group, sc.topic, sc.partitions)
    assert after == ends, f"committed offsets {after}, end offsets {ends}"


# --------------------------------------------------------------------------------------
# A stable group rides out a broker crash


@pytest.mark.parametrize(
    "protocol,strategy",
    [("classic", "range"), ("consumer", "uniform")],
    ids=["classic-range", "kip848-uniform"],
)
def test_broker_restart_stable_group(scenario, protocol, strategy):
    """Kafka loads a group's members with the group after a coordinator restart and gives
    them fresh sessions: members that keep heartbeating are not rebalanced."""
    sc = scenario
    start_producer(sc)
    ms = [sc.start_member(f"m{i}", "confluent", strategy, SESSION_TIMEOUT_MS, protocol=protocol) for i in (1, 2, 3)]
    assignment, took = sc.wait_settled(ms, 60, "three members to join")
    print(f"  three members hold {assignment} ({took:.2f}s)")
    moves_before = {m.name: len(m.events("assigned")) + len(m.events("revoked")) for m in ms}

    t_kill = sc.broker.kill()
    sc.broker.start()
    # Watch past the point where the members' sessions, restarted on load, would expire.
    window_end = now_ms() + SESSION_TIMEOUT_MS + 2000
    wait_until(
        lambda: all(any(e["t"] > window_end for e in m.events("record")) for m in ms),
        SESSION_TIMEOUT_MS / 1000 + 30,
        "every member to process records past the restarted sessions' expiry",
        interval_s=0.2,
        check=lambda: sc.check_members(ms),
    )
    moved = {
        m.name: [(e["ev"], e["p"], e["t"] - t_kill) for e in m.events() if e["ev"] in ("assigned", "revoked")][
            moves_before[m.name] :
        ]
        for m in ms
    }
    assert not any(
        moved.values()
    ), f"members saw a rebalance after the broker restart (event, partition, ms after the kill): {moved}"
    view = sc.broker_view()
    assert view == (
        "STABLE",
        assignment,
    ), f"after the restart DescribeGroups shows {view}, the members hold {assignment}"
    print(
        f"  broker SIGKILLed and restarted: no member saw a revocation or assignment through {(window_end - t_kill) / 1000:.1f}s after the kill; DescribeGroups {view}"
    )

    finish(sc, ms, exact_values=False)
