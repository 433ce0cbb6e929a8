"""Exactly-once acceptance scenarios with real clients (confluent-kafka/librdkafka), against a
broker each test starts itself (MEDULLA_BIN, default target/release/medulla) on a free
loopback port with a fresh data dir, so it can SIGKILL and restart it on the same port and
data dir. Logs, processor events and stderr are kept under target/interop/txn/run-*/TEST/.
The broker harness (Broker, Member, wait_until, ...) is interop/groups/harness.py's.

  test_processor_exactly_once
      100,000 input records (4 partitions, idempotent producer) go through processor.py, a
      consume-transform-produce loop on the transactional API (read_committed input,
      send_offsets_to_transaction, commit; every 7th transaction aborted and its input
      re-processed from the committed offsets). The processor is SIGKILLed mid-transaction
      four times, at random points found by watching its progress, and restarted with the
      same transactional.id until the committed offsets reach the input's end. Then a
      read_committed reader of the output sees every input record's result exactly once, in
      input order per partition, and nothing of an aborted or killed transaction; each
      transaction is all-or-nothing; a read_uncommitted reader sees strictly more, including
      every record of every aborted transaction.
  test_broker_killed_mid_transaction[committed | commit-after-restart | abort-after-restart |
                                     reinit-after-restart | timeout-after-restart]
      a transaction T1 (records + offsets for a group) is committed; T2 writes records and
      sends offsets for the same group; the broker is SIGKILLed (after T2's commit was
      acknowledged, or with T2 open) and restarted on the same port and data dir. T2 then
      ends committed or aborted as the variant says (the client commits, the client aborts, a
      new producer with the same transactional.id is initialised, or transaction.timeout.ms
      passes with the producer idle) and is never half-visible: a read_committed reader sees
      T1 and all or none of T2, the last stable offset reaches the high watermark, and the
      group's committed offsets are those of the committed transactions.

Nothing waits a fixed time: every wait is on a condition with a deadline.
"""

import os
import random
import shutil
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "groups"))

from confluent_kafka import (  # noqa: E402
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # noqa: E402
from harness import REPO, Broker, Member, client_logger, try_call, wait_until  # noqa: E402

PARTITIONS = 4
INPUT_RECORDS = 100_000
BATCH = 500
ABORT_EVERY = 7
PROCESSOR_KILLS = 4
TXN_TIMEOUT_MS = 5000
RUN_DIR = os.path.join(REPO, "target", "interop", "txn", f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")


def medulla_bin():
    path = os.environ.get("MEDULLA_BIN") or os.path.join(REPO, "target", "release", "medulla")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no broker binary at {path}: build it (cargo build --release -p medulla) or set MEDULLA_BIN")
    return path


def broker_overrides(binary):
    """Overrides for every broker of this suite. Kafka sweeps timed-out transactions every
    10 s by default (transaction.abort.timed.out.transaction.cleanup.interval.ms); a shorter
    sweep keeps the timeout variant quick. The key is only passed when the binary knows it
    (an unknown --override key stops the broker at start; `serve --help` does not list
    keys, so the probe is the key's name among the binary's strings)."""
    key = "transaction.abort.timed.out.transaction.cleanup.interval.ms"
    with open(binary, "rb") as f:
        known = key.encode() in f.read()
    return {key: "500"} if known else {}


@pytest.fixture(autouse=True)
def _own_line():
    print()


class Env:
    """What one test started: its broker, an admin client per broker lifetime, a logger for
    the in-process clients, and the clients to close at the end."""

    def __init__(self, broker, workdir):
        self.broker = broker
        self.workdir = workdir
        self.logger = client_logger(workdir)
        self.members = []
        self._admin = None
        self._admin_for = None

    @property
    def admin(self):
        # A fresh AdminClient per broker lifetime (see harness.Admin for why).
        if self._admin is None or self._admin_for != self.broker.starts:
            self._admin = AdminClient(
                {"bootstrap.servers": self.broker.bootstrap, "reconnect.backoff.max.ms": 1000}, logger=self.logger
            )
            self._admin_for = self.broker.starts
        return self._admin

    def conf(self, **extra):
        c = {"bootstrap.servers": self.broker.bootstrap, "reconnect.backoff.max.ms": 1000}
        c.update({k.replace("_", "."): v for k, v in extra.items()})
        return c

    def create_topic(self, topic, partitions=PARTITIONS):
        fs = self.admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        fs[topic].result(30)

    def offsets(self, topic, spec, isolation=IsolationLevel.READ_UNCOMMITTED, partitions=PARTITIONS):
        req = {TopicPartition(topic, p): spec for p in range(partitions)}
        res = self.admin.list_offsets(req, isolation_level=isolation, request_timeout=20)
        return {tp.partition: f.result(30).offset for tp, f in res.items()}

    def hwm(self, topic, partitions=PARTITIONS):
        return self.offsets(topic, OffsetSpec.latest(), IsolationLevel.READ_UNCOMMITTED, partitions)

    def lso(self, topic, partitions=PARTITIONS):
        return self.offsets(topic, OffsetSpec.latest(), IsolationLevel.READ_COMMITTED, partitions)

    def committed(self, group, topic, partitions=PARTITIONS):
        """{partition: committed offset} (-1001 = none), by OffsetFetch with require_stable:
        offsets of a pending transaction are not answered until it ends."""
        req = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])]
        res = self.admin.list_consumer_group_offsets(req, require_stable=True, request_timeout=20)
        out = {}
        for tp in res[group].result(30).topic_partitions:
            if tp.error is not None:
                raise KafkaException(tp.error)
            out[tp.partition] = tp.offset
        return out

    def wait_lso_at_hwm(self, topic, seconds, what):
        """Waits until no transaction holds the last stable offset of any partition back."""
        seen = {}

        def stable():
            seen["hwm"], seen["lso"] = try_call(self.hwm, topic), try_call(self.lso, topic)
            return seen["hwm"] is not None and seen["hwm"] == seen["lso"] and seen["hwm"]

        return wait_until(
            stable,
            seconds,
            what,
            interval_s=0.1,
            detail=lambda: f"  high watermarks {seen.get('hwm')}, last stable offsets {seen.get('lso')}",
        )


@pytest.fixture
def env(request):
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "_")
    workdir = os.path.join(RUN_DIR, name)
    os.makedirs(workdir, exist_ok=True)
    binary = medulla_bin()
    broker = Broker(binary, workdir, broker_overrides(binary))
    broker.start()
    e = Env(broker, workdir)
    print(f"  broker {broker.bootstrap}, overrides {broker.overrides}, log {broker.log_path}")
    t0 = time.monotonic()
    yield e
    for m in e.members:
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


def read_all(env, topic, isolation, ends, partitions=PARTITIONS):
    """Every record of topic from offset 0 up to ends[p] (exclusive) with a consumer of the
    given isolation.level, assigned (no group membership). Returns {partition: [(offset,
    value, txn header)]}. A read_committed reader is given the last stable offsets as ends:
    it cannot read past them, and stops at them."""
    c = Consumer(
        env.conf(
            group_id=f"reader-{uuid.uuid4().hex[:8]}",
            enable_auto_commit=False,
            isolation_level=isolation,
            enable_partition_eof=True,
            fetch_wait_max_ms=100,
        ),
        logger=env.logger,
    )
    try:
        out = {p: [] for p in range(partitions)}
        todo = {p for p in range(partitions) if ends[p] > 0}
        c.assign([TopicPartition(topic, p, 0) for p in sorted(todo)])
        last = {p: -1 for p in range(partitions)}

        def progress():
            for m in c.consume(1000, timeout=0.5):
                p = m.partition()
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        if m.offset() >= ends[p]:
                            todo.discard(p)
                        continue
                    pytest.fail(f"{isolation} read of {topic}[{p}]: {m.error()}")
                if m.offset() <= last[p]:
                    pytest.fail(f"{isolation} read of {topic}[{p}]: offset {m.offset()} after {last[p]}")
                last[p] = m.offset()
                txn = dict(m.headers() or []).get("txn")
                out[p].append((m.offset(), m.value(), txn.decode() if txn else None))
                if m.offset() + 1 >= ends[p]:
                    todo.discard(p)
            return not todo

        wait_until(
            progress,
            60,
            f"a {isolation} reader of {topic} to reach {ends}",
            interval_s=0,
            detail=lambda: f"  read up to {last}, partitions not done {sorted(todo)}",
        )
        return out
    finally:
        c.close()


# --------------------------------------------------------------------------------------
# a: consume-transform-produce, processor SIGKILLed and restarted


def produce_input(env, topic):
    """INPUT_RECORDS records, value = the record's number (6 digits), round-robin over the
    partitions, with a plain idempotent producer. Returns the end offsets."""
    p = Producer(
        env.conf(enable_idempotence=True, acks="all", linger_ms=20, batch_num_messages=10000), logger=env.logger
    )
    failed = []

    def cb(err, _msg):
        if err is not None:
            failed.append(err.str())

    for i in range(INPUT_RECORDS):
        while True:
            try:
                p.produce(topic, key=f"k{i % 1000}".encode(), value=f"{i:06d}".encode(), partition=i % PARTITIONS, on_delivery=cb)
                break
            except BufferError:
                p.poll(0.1)
        if i % 10000 == 0:
            p.poll(0)
    left = p.flush(60)
    assert left == 0 and not failed, f"input production: {left} undelivered, failures {failed[:5]}"
    ends = env.hwm(topic)
    assert sum(ends.values()) == INPUT_RECORDS, f"input end offsets {ends} do not hold {INPUT_RECORDS} records"
    return ends


def start_processor(env, n, input_topic, output_topic, group, txn_id, stall_after_flush=0):
    cmd = [
        sys.executable,
        os.path.join(HERE, "processor.py"),
        "--bootstrap",
        env.broker.bootstrap,
        "--input",
        input_topic,
        "--output",
        output_topic,
        "--group",
        group,
        "--txn-id",
        txn_id,
        "--partitions",
        str(PARTITIONS),
        "--batch",
        str(BATCH),
        "--abort-every",
        str(ABORT_EVERY),
        "--stall-after-flush",
        str(stall_after_flush),
    ]
    m = Member(f"processor-{n}", cmd, env.workdir, "processor")
    env.members.append(m)
    return m


def check_processor(m):
    """Fails at once when the processor reported an error or died on its own."""
    errors = m.events("error")
    fatal = [e for e in errors if e.get("fatal")]
    if fatal:
        pytest.fail(f"{m.name} reported: {fatal[0]['msg']}\n{m.stderr_tail()}")
    if not m.alive() and m.killed_at is None and m.proc.returncode != 0:
        pytest.fail(f"{m.name} exited with status {m.proc.returncode}; events {m.events()[-5:]}\n{m.stderr_tail()}")


def kill_mid_transaction(m, mode, commits):
    """Waits for a point inside a transaction of m, then SIGKILLs it. Once this instance
    has committed `commits` transactions, in a later transaction: mode `sent`: while it
    produces (some records may be in the log); `commit`: while commit_transaction runs (the
    commit may or may not be written by then); `flushed`, or when the racing modes miss
    their moment: at the transaction where the processor stalls after its flush (all its
    records acknowledged, in the log, uncommitted). Returns (mode, transaction id, records
    acknowledged)."""
    seen = {}

    def reached():
        check_processor(m)
        evs = m.events()
        if not evs:
            return None
        last = evs[-1]
        seen["last"] = last
        if last["ev"] == "stalled":
            return "flushed"
        if sum(e["ev"] == "committed" for e in evs) < commits:
            return None
        if mode == "sent" and last["ev"] == "sent":
            return "sent"
        if mode == "commit" and last["ev"] == "committing":
            return "commit"
        return None

    what = wait_until(reached, 120, f"{m.name} to reach its kill point", interval_s=0.002)
    m.kill()
    txn = seen["last"]["txn"]
    acked = max((e["delivered"] for e in m.events() if e.get("txn") == txn and "delivered" in e), default=0)
    return what, txn, acked


def test_processor_exactly_once(env):
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    run = uuid.uuid4().hex[:8]
    input_topic, output_topic, group, txn_id = f"in-{run}", f"out-{run}", f"proc-{run}", f"processor-{run}"
    env.create_topic(input_topic)
    env.create_topic(output_topic)
    t0 = time.monotonic()
    in_ends = produce_input(env, input_topic)
    print(f"  seed {seed}; {INPUT_RECORDS} input records in {time.monotonic() - t0:.1f}s, end offsets {in_ends}")

    t0 = time.monotonic()
    processors = []
    kills = []
    while True:
        if len(kills) < PROCESSOR_KILLS:
            # Kill after 1-6 commits: in the act (producing, committing), or where the
            # processor stalls after the flush of a transaction 1-3 later. Racing modes that
            # miss their moment still end at a stall (20 transactions on), so every instance
            # is killed before it could finish.
            commits = rng.randint(1, 6)
            mode = rng.choice(["sent", "flushed", "commit"])
            stall = commits + rng.randint(1, 3) if mode == "flushed" else commits + 20
            m = start_processor(env, len(processors), input_topic, output_topic, group, txn_id, stall)
            processors.append(m)
            mode, txn, acked = kill_mid_transaction(m, mode, commits)
            kills.append((mode, txn, acked))
            where = {"sent": "while producing", "flushed": "after its flush", "commit": "while committing"}[mode]
            print(f"  {m.name} SIGKILLed after {commits} commits, in transaction {txn} {where}, {acked} of its records acknowledged")
            continue
        m = start_processor(env, len(processors), input_topic, output_topic, group, txn_id)
        processors.append(m)
        wait_until(
            lambda m=m: (check_processor(m), m.events("done"))[1],
            120,
            f"{m.name} to process the rest of the input",
            interval_s=0.1,
            detail=lambda m=m: f"  last events: {m.events()[-3:]}",
        )
        rc = m.proc.wait(30)
        assert rc == 0, f"{m.name} exited with {rc}\n{m.stderr_tail()}"
        break
    print(f"  processed in {time.monotonic() - t0:.1f}s by {len(processors)} processor instances, {len(kills)} SIGKILLed")

    committed = env.committed(group, input_topic)
    assert committed == in_ends, f"the group's committed offsets {committed} are not the input's end offsets {in_ends}"

    evs = [e for m in processors for e in m.events()]
    aborted = {e["txn"]: e["n"] for e in evs if e["ev"] == "aborted"}
    committed_txns = {e["txn"] for e in evs if e["ev"] == "committed"}
    begun = {e["txn"] for e in evs if e["ev"] == "begin"}
    # A transaction begun by a killed instance and never reported committed: its commit may
    # have been written before the kill (killed during commit_transaction), or not.
    in_doubt = begun - committed_txns - set(aborted)
    print(
        f"  {len(committed_txns)} transactions committed, {len(aborted)} aborted by the processor, {len(in_doubt)} open at a kill"
    )
    assert aborted, "no transaction was aborted: the scenario did not exercise aborts"

    hwm = env.wait_lso_at_hwm(output_topic, 30, "the output's last stable offsets to reach its high watermarks")
    rc = read_all(env, output_topic, "read_committed", hwm)
    ru = read_all(env, output_topic, "read_uncommitted", hwm)
    n_rc, n_ru = sum(len(v) for v in rc.values()), sum(len(v) for v in ru.values())
    print(f"  output: high watermarks {hwm}; read_committed {n_rc} records, read_uncommitted {n_ru}")

    problems = []
    # Exactly once, in input order per partition (input record i is in partition i % 4).
    for p, recs in rc.items():
        values = [int(v.decode().removesuffix(":out")) for _, v, _ in recs if v.decode().endswith(":out")]
        if len(values) != len(recs):
            problems.append(f"partition {p}: values without the :out suffix")
        want = list(range(p, INPUT_RECORDS, PARTITIONS))
        if values != want:
            seen = set(values)
            dups = len(values) - len(seen)
            missing = [i for i in want if i not in seen]
            problems.append(
                f"partition {p}: read_committed has {len(values)} records ({dups} duplicates), "
                f"missing {len(missing)} (first {missing[:5]}), in order: {values == sorted(values)}"
            )
    # Nothing of an aborted transaction; every transaction all or nothing.
    per_txn_rc, per_txn_ru = {}, {}
    for recs, per in ((rc, per_txn_rc), (ru, per_txn_ru)):
        for p, lst in recs.items():
            for _, _, txn in lst:
                per[txn] = per.get(txn, 0) + 1
    leaked = {t: n for t, n in per_txn_rc.items() if t in aborted}
    if leaked:
        problems.append(f"read_committed shows records of aborted transactions: {dict(list(leaked.items())[:5])}")
    partial = {t: (n, per_txn_ru.get(t)) for t, n in per_txn_rc.items() if n != per_txn_ru.get(t)}
    if partial:
        problems.append(f"transactions partly visible to read_committed (visible, written): {dict(list(partial.items())[:5])}")
    not_committed = set(per_txn_rc) - committed_txns - in_doubt
    if not_committed:
        problems.append(f"read_committed shows transactions never committed: {sorted(not_committed)[:5]}")
    # read_uncommitted: strictly more, and every record of every aborted transaction.
    if n_ru <= n_rc:
        problems.append(f"read_uncommitted has {n_ru} records, not more than read_committed's {n_rc}")
    short = {t: (per_txn_ru.get(t, 0), n) for t, n in aborted.items() if per_txn_ru.get(t, 0) != n}
    if short:
        problems.append(f"aborted transactions not fully visible to read_uncommitted (seen, written): {short}")
    rc_set = {(p, o) for p, lst in rc.items() for o, _, _ in lst}
    ru_set = {(p, o) for p, lst in ru.items() for o, _, _ in lst}
    if not rc_set <= ru_set:
        problems.append(f"{len(rc_set - ru_set)} records read_committed sees are missing from read_uncommitted")
    # A transaction killed while open with records acknowledged: they are in the log
    # (read_uncommitted sees at least those), and read_committed sees none of them.
    for mode, txn, acked in kills:
        if mode != "commit" and (per_txn_ru.get(txn, 0) < acked or txn in per_txn_rc):
            problems.append(
                f"transaction {txn}, killed open with {acked} records acknowledged: read_uncommitted sees "
                f"{per_txn_ru.get(txn, 0)}, read_committed {per_txn_rc.get(txn, 0)} (want >= {acked} and 0)"
            )
    killed_rc = {t: per_txn_rc[t] for _, t, _ in kills if t in per_txn_rc}
    killed_ru = {t: per_txn_ru[t] for _, t, _ in kills if t in per_txn_ru}
    print(
        f"  read_uncommitted's {n_ru - n_rc} extra records: {sum(aborted.values())} of {len(aborted)} aborted "
        f"transactions, the rest of transactions open at a kill (read_uncommitted {killed_ru}, read_committed {killed_rc})"
    )
    assert not problems, "exactly-once violated:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------------------
# b: the broker SIGKILLed with a transaction in flight


def txn_producer(env, txn_id, timeout_ms=60000):
    p = Producer(
        env.conf(transactional_id=txn_id, transaction_timeout_ms=timeout_ms, linger_ms=0), logger=env.logger
    )
    p.init_transactions(60)
    return p


def produce_txn_records(p, topic, tag, n=50):
    """n records (value tag-i) over the partitions, all delivered (in the log) on return."""
    failed = []
    for i in range(n):
        p.produce(
            topic, value=f"{tag}-{i}".encode(), partition=i % PARTITIONS, on_delivery=lambda e, _m: e and failed.append(e.str())
        )
    assert p.flush(60) == 0 and not failed, f"{tag}: delivery failed {failed[:3]}"


def group_metadata(env, group):
    c = Consumer(env.conf(group_id=group, enable_auto_commit=False), logger=env.logger)
    md = c.consumer_group_metadata()
    return c, md


def retry_txn_call(fn, what, seconds=60):
    """fn() (commit_transaction / abort_transaction after a broker restart) until it does
    not raise a retriable error, with a deadline."""
    last = {}

    def attempt():
        try:
            fn()
            return True
        except KafkaException as e:
            err = e.args[0]
            last["err"] = err
            if err.retriable():
                return False
            pytest.fail(f"{what}: {err.str()} (fatal {err.fatal()}, abortable {err.txn_requires_abort()})")

    wait_until(attempt, seconds, what, interval_s=0.2, detail=lambda: f"  last error: {last.get('err')}")


VARIANTS = ["committed", "commit-after-restart", "abort-after-restart", "reinit-after-restart", "timeout-after-restart"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_broker_killed_mid_transaction(env, variant):
    run = uuid.uuid4().hex[:8]
    topic, source, group, txn_id = f"txn-{run}", f"src-{run}", f"g-{run}", f"t-{run}"
    env.create_topic(topic)
    env.create_topic(source, 1)
    consumer, md = group_metadata(env, group)
    timeout_ms = TXN_TIMEOUT_MS if variant == "timeout-after-restart" else 60000
    p = txn_producer(env, txn_id, timeout_ms)
    try:
        # T1: committed before anything happens.
        p.begin_transaction()
        produce_txn_records(p, topic, "T1")
        p.send_offsets_to_transaction([TopicPartition(source, 0, 10)], md, 30)
        p.commit_transaction(30)
        # T2: records in the log, offsets sent; committed (acknowledged) or left open.
        p.begin_transaction()
        produce_txn_records(p, topic, "T2")
        p.send_offsets_to_transaction([TopicPartition(source, 0, 20)], md, 30)
        if variant == "committed":
            p.commit_transaction(30)
        hwm_before, lso_before = env.hwm(topic), env.lso(topic)
        env.broker.kill()
        print(
            f"  broker SIGKILLed with T2 {'committed' if variant == 'committed' else 'open'}; "
            f"high watermarks {hwm_before}, last stable offsets {lso_before}"
        )
        env.broker.start()
        t0 = time.monotonic()
        if variant in ("commit-after-restart", "abort-after-restart", "reinit-after-restart"):
            # The open transaction survived the crash: it still holds the last stable offsets
            # at its first records (its timeout, 60 s, is far off).
            lso = wait_until(lambda: try_call(env.lso, topic), 30, "ListOffsets to answer after the restart")
            assert lso == lso_before, (
                f"after the restart the last stable offsets are {lso}, before the kill {lso_before} "
                f"(high watermarks {hwm_before}): the open transaction was not restored"
            )

        if variant == "commit-after-restart":
            retry_txn_call(lambda: p.commit_transaction(30), "commit_transaction after the restart")
        elif variant == "abort-after-restart":
            retry_txn_call(lambda: p.abort_transaction(30), "abort_transaction after the restart")
        elif variant == "reinit-after-restart":
            p2 = txn_producer(env, txn_id)
            print(f"  a new producer with transactional.id {txn_id} initialised {time.monotonic() - t0:.2f}s after the restart")
            p2.begin_transaction()  # the new epoch works
            p2.abort_transaction(30)
        expect_t2 = variant in ("committed", "commit-after-restart")

        hwm = env.wait_lso_at_hwm(
            topic,
            TXN_TIMEOUT_MS / 1000 + 30,
            f"T2 to end ({'committed' if expect_t2 else 'aborted'}) and the last stable offsets to reach the high watermarks",
        )
        print(f"  last stable offsets = high watermarks {hwm} {time.monotonic() - t0:.2f}s after the restart")
        rc = read_all(env, topic, "read_committed", hwm)
        ru = read_all(env, topic, "read_uncommitted", hwm)
        values_rc = sorted(v.decode() for lst in rc.values() for _, v, _ in lst)
        values_ru = sorted(v.decode() for lst in ru.values() for _, v, _ in lst)
        t1 = sorted(f"T1-{i}" for i in range(50))
        t2 = sorted(f"T2-{i}" for i in range(50))
        want = sorted(t1 + (t2 if expect_t2 else []))
        n_t2 = sum(v.startswith("T2-") for v in values_rc)
        assert values_rc == want, (
            f"read_committed after the restart: {len(values_rc)} records, {n_t2} of T2's 50 "
            f"(expected {'all' if expect_t2 else 'none'}); T1's 50 all there: {set(t1) <= set(values_rc)}"
        )
        assert values_ru == sorted(t1 + t2), f"read_uncommitted sees {len(values_ru)} records, expected T1 and T2's 100"
        want_offset = 20 if expect_t2 else 10
        got = wait_until(
            lambda: try_call(env.committed, group, source, 1),
            30,
            "OffsetFetch (require_stable) to answer for the group",
            interval_s=0.2,
        )
        assert got == {0: want_offset}, f"the group's committed offset is {got}, expected {{0: {want_offset}}}"
        print(
            f"  T2 {'committed' if expect_t2 else 'aborted'}: read_committed {len(values_rc)} records, "
            f"read_uncommitted {len(values_ru)}, group offset {got[0]}"
        )
        if variant == "timeout-after-restart":
            # The producer's epoch was bumped by the broker's abort: its next commit is refused.
            try:
                p.commit_transaction(30)
            except KafkaException as e:
                print(f"  the idle producer's commit after the timeout abort: {e.args[0].name()} (expected a refusal)")
            else:
                pytest.fail("commit_transaction succeeded after the broker aborted the transaction on timeout")
    finally:
        consumer.close()
