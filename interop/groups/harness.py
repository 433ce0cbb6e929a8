"""Pieces of the consumer-group scenarios (test_groups.py): a broker the scenario owns (so it
can kill and restart it on the same port and data dir), a producer thread, member processes
(member_confluent.py, member_kafkajs.mjs) whose JSON-line events are collected, and the
analysis of those events (who owned which partition when, what was processed).

Times: members stamp events with the wall clock in ms; the driver stamps kills and exits
the same way. All processes run on this host, so the stamps share one clock. Within one
member the order of its lines is exact, and checks that can use that order do.
"""

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def now_ms():
    return int(time.time() * 1000)


class Deadline:
    """Wait on a condition with a deadline instead of sleeping a fixed time."""

    def __init__(self, seconds, what):
        self.end = time.monotonic() + seconds
        self.seconds = seconds
        self.what = what

    def expired(self):
        return time.monotonic() >= self.end

    def fail(self, detail=""):
        pytest.fail(f"timed out after {self.seconds}s waiting for {self.what}. {detail}")


def wait_until(condition, seconds, what, interval_s=0.1, check=None, detail=None):
    """Polls condition() until it returns a truthy value, which is returned; fails at the
    deadline with the last value seen, and detail() if given (the state worth seeing).
    check(), if given, runs first on every poll and may fail the test early (a member died,
    a client reported a fatal error)."""
    deadline = Deadline(seconds, what)
    last = None
    while True:
        if check is not None:
            check()
        last = condition()
        if last:
            return last
        if deadline.expired():
            deadline.fail(f"last value: {last!r}" + (f"\n{detail()}" if detail is not None else ""))
        time.sleep(interval_s)


def client_logger(workdir):
    """A logger for the in-process librdkafka clients (producer, admin) writing to
    workdir/clients.log, so their connection errors during broker restarts do not flood the
    test output."""
    log = logging.getLogger(f"clients.{workdir}")
    if not log.handlers:
        handler = logging.FileHandler(os.path.join(workdir, "clients.log"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
        log.propagate = False
    return log


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _alive(proc):
    return proc is not None and proc.poll() is None


def log_tail(path, lines=60):
    """The last `lines` lines of a broker log, headed by its path."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no broker log)"
    return f"---- last {lines} lines of {path} ----\n" + "\n".join(text[-lines:])


def log_panics(path):
    """The lines of a broker log that report a panic."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if "panicked at" in line]


class Broker:
    """One `medulla serve` on a fixed loopback port and data dir, restartable. Every start
    appends to the same log (workdir/broker.log), after a marker line, so the log of a test
    covers all its broker lifetimes."""

    def __init__(self, binary, workdir, overrides):
        self.binary = binary
        self.workdir = workdir
        self.data_dir = os.path.join(workdir, "data")
        self.log_path = os.path.join(workdir, "broker.log")
        self.overrides = dict(overrides)
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc = None
        self.starts = 0
        os.makedirs(self.data_dir, exist_ok=True)

    def start(self, timeout_s=60):
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"==== harness: broker start #{self.starts} at {now_ms()} ====\n".encode())
            offset = log.tell()
        cmd = [self.binary, "serve", "--data-dir", self.data_dir, "--kafka-listen", self.bootstrap,
               "--registry-listen", "off"]
        for k, v in self.overrides.items():
            cmd += ["--override", f"{k}={v}"]
        log = open(self.log_path, "ab")
        env = dict(os.environ, NO_COLOR="1")  # a plain-text log
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        log.close()
        t0 = time.monotonic()
        deadline = Deadline(timeout_s, f"broker start #{self.starts} on {self.bootstrap}")
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                if b"kafka listener on" in f.read():
                    break
            if not _alive(self.proc):
                pytest.fail(f"broker exited with status {self.proc.returncode} before listening:\n{self.log_tail()}")
            if deadline.expired():
                deadline.fail(self.log_tail())
            time.sleep(0.05)
        print(f"  broker start #{self.starts}: listening on {self.bootstrap} after {time.monotonic() - t0:.2f}s")

    def stop(self, timeout_s=15):
        """SIGTERM: a clean stop. Fails if the broker does not exit in time or exits non-zero."""
        if not _alive(self.proc):
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

    def kill(self):
        """SIGKILL: a crash. Returns the wall-clock ms once the process is gone."""
        self.proc.kill()
        self.proc.wait()
        with open(self.log_path, "ab") as log:
            log.write(f"==== harness: broker SIGKILLed at {now_ms()} ====\n".encode())
        return now_ms()

    def alive(self):
        return _alive(self.proc)

    def log_tail(self, lines=60):
        return log_tail(self.log_path, lines)

    def panics(self):
        return log_panics(self.log_path)


class Member:
    """A member process. Its stdout lines (JSON events) are collected by a reader thread;
    its stderr goes to workdir/NAME.stderr."""

    def __init__(self, name, cmd, workdir, info=""):
        self.name = name
        self.info = info
        self.cmd = cmd
        self.stderr_path = os.path.join(workdir, f"{name}.stderr")
        self.stdout_path = os.path.join(workdir, f"{name}.events")
        self._events = []
        self._lock = threading.Lock()
        self.killed_at = None  # wall-clock ms of a SIGKILL
        self.exited_at = None  # wall-clock ms the process was seen gone
        self.started_at = now_ms()
        err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, cwd=HERE)
        err.close()
        self._reader = threading.Thread(target=self._read, name=f"reader-{name}", daemon=True)
        self._reader.start()

    def _read(self):
        with open(self.stdout_path, "w") as copy:
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace")
                copy.write(line)
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if isinstance(ev, dict) and "ev" in ev:
                    with self._lock:
                        self._events.append(ev)

    def events(self, kind=None):
        with self._lock:
            evs = list(self._events)
        return [e for e in evs if kind is None or e["ev"] == kind]

    def alive(self):
        return _alive(self.proc)

    def owned(self):
        """The partitions this member holds now, by its own events."""
        held = set()
        for e in self.events():
            if e["ev"] == "assigned":
                held.add(e["p"])
            elif e["ev"] == "revoked":
                held.discard(e["p"])
        return held

    def kill(self):
        """SIGKILL. Returns the wall-clock ms once the process is gone: its ownership ends there."""
        self.proc.kill()
        self.proc.wait()
        self._reader.join(5)
        self.killed_at = self.exited_at = now_ms()
        return self.killed_at

    def terminate(self, timeout_s=30):
        """SIGTERM (clean close); waits for the exit. Returns the ms of the signal."""
        t = now_ms()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(
                f"member {self.name} did not close within {timeout_s}s of SIGTERM (killed); {self.stderr_tail()}"
            )
        self._reader.join(5)
        self.exited_at = now_ms()
        if rc != 0:
            pytest.fail(f"member {self.name} exited with status {rc} on SIGTERM; {self.stderr_tail()}")
        return t

    def signal(self, signum):
        self.proc.send_signal(signum)

    def reap(self):
        """Kills the process if it still runs (test teardown)."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()
        if self.exited_at is None:
            self.exited_at = now_ms()

    def stderr_tail(self, lines=15):
        try:
            with open(self.stderr_path, "rb") as f:
                text = f.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            text = []
        return f"stderr of {self.name} ({self.stderr_path}), last {lines} lines:\n" + "\n".join(text[-lines:])

    def intervals(self, end_ms):
        """{partition: [(start_ms, end_ms)]}: the member's ownership intervals. An interval
        still open ends at the kill, at the exit, or else at end_ms."""
        out = {}
        start = {}
        for e in self.events():
            if e["ev"] == "assigned":
                start.setdefault(e["p"], e["t"])
            elif e["ev"] == "revoked" and e["p"] in start:
                out.setdefault(e["p"], []).append((start.pop(e["p"]), e["t"]))
        close = self.killed_at or self.exited_at or end_ms
        for p, s in start.items():
            out.setdefault(p, []).append((s, close))
        return out

    def processed(self):
        """[(partition, offset, value)] of every record event."""
        return [(e["p"], e["o"], e.get("v")) for e in self.events("record")]


class ProducerThread(threading.Thread):
    """Produces to every partition of a topic in turn, with an explicit partition and the
    partition's sequence number as the value, at about rate_per_s records a second, until
    stop(). Delivery reports give the offset each acknowledged value got."""

    def __init__(self, bootstrap, topic, partitions, logger, rate_per_s=300):
        super().__init__(name="producer", daemon=True)
        self.topic = topic
        self.partitions = partitions
        self.rate_per_s = rate_per_s
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                # Without idempotence, one request in flight keeps a partition's order on retries.
                "enable.idempotence": False,
                "max.in.flight.requests.per.connection": 1,
                "linger.ms": 5,
                # Long enough to ride out a broker restart.
                "message.timeout.ms": 120000,
                "reconnect.backoff.ms": 100,
                "reconnect.backoff.max.ms": 1000,
            },
            logger=logger,
        )
        self._stop_requested = threading.Event()
        self._abort = False
        self.sent = 0
        self.acked = {}  # (partition, offset) -> value
        self.failed = []
        self.error = None

    def _on_delivery(self, err, msg):
        if err is not None:
            self.failed.append((msg.partition(), msg.value().decode(), err.str()))
        else:
            self.acked[(msg.partition(), msg.offset())] = msg.value().decode()

    def run(self):
        try:
            seq = [0] * self.partitions
            t0 = time.monotonic()
            while not self._stop_requested.is_set():
                p = self.sent % self.partitions
                try:
                    self.producer.produce(
                        self.topic, value=str(seq[p]).encode(), partition=p, on_delivery=self._on_delivery
                    )
                except BufferError:
                    self.producer.poll(0.1)
                    continue
                seq[p] += 1
                self.sent += 1
                self.producer.poll(0)
                # Pacing, not a wait for a condition: keep to rate_per_s.
                ahead_s = self.sent / self.rate_per_s - (time.monotonic() - t0)
                if ahead_s > 0:
                    self._stop_requested.wait(ahead_s)
            if self._abort:
                self.producer.purge()
                self.producer.flush(1)
                return
            left = self.producer.flush(150)
            if left:
                self.error = f"{left} records still undelivered 150 s after stop"
        except Exception as e:  # reported by stop()
            self.error = repr(e)

    def abort(self):
        """Teardown: stop at once, dropping what is not delivered."""
        self._abort = True
        self._stop_requested.set()
        self.join(10)

    def stop(self):
        self._stop_requested.set()
        self.join(180)
        if self.is_alive():
            pytest.fail("the producer thread did not finish flushing")
        if self.error:
            pytest.fail(f"producer: {self.error}")


class Admin:
    """AdminClient calls the scenarios need.

    A new AdminClient is made after every broker (re)start: librdkafka 2.16's AdminClient
    that saw its only broker go away re-bootstraps (KIP-899) and can get stuck with the old
    broker handle "terminating" (2 refcnts, retried every millisecond), timing out every
    request from then on while a fresh client gets answers at once (seen with debug=broker,
    admin after a SIGKILL of the broker; cf. confluentinc/librdkafka#5088). That is the
    client's state, not the broker's, so each broker lifetime gets its own client."""

    def __init__(self, broker, logger):
        self.broker = broker
        self.logger = logger
        self._client = None
        self._for_start = None

    @property
    def client(self):
        if self._client is None or self._for_start != self.broker.starts:
            self._client = AdminClient(
                {"bootstrap.servers": self.broker.bootstrap, "reconnect.backoff.max.ms": 1000}, logger=self.logger
            )
            self._for_start = self.broker.starts
        return self._client

    def create_topic(self, topic, partitions):
        fs = self.client.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        fs[topic].result(30)

    def end_offsets(self, topic, partitions):
        req = {TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)}
        res = self.client.list_offsets(req, request_timeout=20)
        return {tp.partition: f.result(30).offset for tp, f in res.items()}

    def committed(self, group, topic, partitions):
        """{partition: committed offset} (-1001 = none), by OffsetFetch."""
        req = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])]
        res = self.client.list_consumer_group_offsets(req, request_timeout=20)
        out = {}
        for tp in res[group].result(30).topic_partitions:
            if tp.error is not None:
                raise KafkaException(tp.error)
            out[tp.partition] = tp.offset
        return out

    def describe(self, group):
        res = self.client.describe_consumer_groups([group], request_timeout=20)
        return res[group].result(30)


def try_call(fn, *args):
    """fn(*args), or None when the client raises (the broker may be restarting)."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - any client error means "not yet"
        print(f"    ({fn.__name__}: {e})")
        return None


@dataclass
class Scenario:
    """What one test started, for teardown and analysis."""

    broker: Broker
    workdir: str
    topic: str
    group: str
    partitions: int = 6
    members: list = field(default_factory=list)
    producer: ProducerThread | None = None
    admin: "Admin | None" = None
    logger: logging.Logger | None = None

    def start_member(
        self,
        name,
        client,
        strategy="range",
        session_timeout_ms=6000,
        heartbeat_ms=500,
        instance_id=None,
        protocol="classic",
        mode="eachBatch",
        revoke_delay_ms=0,
    ):
        common = [
            "--bootstrap",
            self.broker.bootstrap,
            "--group",
            self.group,
            "--topic",
            self.topic,
            "--client-id",
            name,
        ]
        if client == "confluent":
            cmd = [
                sys.executable,
                os.path.join(HERE, "member_confluent.py"),
                *common,
                "--strategy",
                strategy,
                "--protocol",
                protocol,
                "--session-timeout-ms",
                str(session_timeout_ms),
                "--heartbeat-ms",
                str(heartbeat_ms),
            ]
            if instance_id:
                cmd += ["--instance-id", instance_id]
            if revoke_delay_ms:
                cmd += ["--revoke-delay-ms", str(revoke_delay_ms)]
            info = (
                f"confluent {strategy} {protocol}"
                + (f" instance {instance_id}" if instance_id else "")
                + (f" revoke delay {revoke_delay_ms} ms" if revoke_delay_ms else "")
            )
        elif client == "kafkajs":
            cmd = [
                "node",
                os.path.join(HERE, "member_kafkajs.mjs"),
                *common,
                "--strategy",
                strategy,
                "--mode",
                mode,
                "--session-timeout-ms",
                str(session_timeout_ms),
                "--heartbeat-ms",
                str(heartbeat_ms),
            ]
            info = f"kafkajs {strategy} {mode}"
        else:
            raise ValueError(client)
        m = Member(name, cmd, self.workdir, info)
        self.members.append(m)
        print(f"  started member {name} ({info}), pid {m.proc.pid}")
        return m

    # ---- analysis -------------------------------------------------------------------

    def owners(self, members):
        """{partition: [names of the given live members that hold it]}."""
        out = {p: [] for p in range(self.partitions)}
        for m in members:
            if m.alive():
                for p in m.owned():
                    out.setdefault(p, []).append(m.name)
        return out

    def converged(self, members):
        """The assignment when every partition is held by exactly one of `members` (all
        alive) and every one of them holds at least one partition; else None."""
        if not all(m.alive() for m in members):
            return None
        owners = self.owners(members)
        if any(len(v) != 1 for v in owners.values()):
            return None
        if any(not m.owned() for m in members):
            return None
        return {m.name: sorted(m.owned()) for m in members}

    def check_members(self, members, allow_fatal=False):
        """Fails at once when a member that should run has died or reported a fatal error."""
        for m in members:
            if not m.alive() and m.killed_at is None and m.exited_at is None:
                pytest.fail(f"member {m.name} died (status {m.proc.returncode}); {m.stderr_tail()}")
            if not allow_fatal:
                fatal = [e for e in m.events("error") if e.get("fatal")]
                if fatal:
                    pytest.fail(f"member {m.name} reported a fatal error: {fatal[0]}; {m.stderr_tail()}")

    def wait_converged(self, members, seconds, what):
        t0 = time.monotonic()
        names = ", ".join(m.name for m in members)
        assignment = wait_until(
            lambda: self.converged(members),
            seconds,
            f"{what}: every partition held by exactly one of {names}",
            interval_s=0.05,
            check=lambda: self.check_members(members),
            detail=lambda: "  holders by partition (live members): "
            + repr(self.owners(members))
            + "\n  each member's own view: "
            + repr({m.name: (sorted(m.owned()), "alive" if m.alive() else "dead") for m in self.members})
            + "\n  last client errors: "
            + repr({m.name: m.events("error")[-1:] for m in self.members if m.events("error")}),
        )
        return assignment, time.monotonic() - t0

    def broker_view(self):
        """(state, {client id: sorted partitions}) as DescribeGroups reports the group, or
        None when the call fails."""
        desc = try_call(self.admin.describe, self.group)
        if desc is None:
            return None
        return desc.state.name, {
            m.client_id: sorted(tp.partition for tp in m.assignment.topic_partitions if tp.topic == self.topic)
            for m in desc.members
        }

    def wait_settled(self, members, seconds, what):
        """Waits until the assignment the members report is the broker's (DescribeGroups:
        Stable, the same members, the same partitions each), then until every member has
        processed records fetched after that moment (the new assignment works end to end:
        each member fetches from the committed offsets it was handed). Returns the assignment."""
        assignment, took = self.wait_converged(members, seconds, what)
        last = {}

        def agree():
            last["members"], last["broker"] = self.converged(members), self.broker_view()
            ok = last["members"] is not None and last["broker"] == ("STABLE", last["members"])
            return last["members"] if ok else None

        try:
            view = wait_until(
                agree,
                15,
                f"{what}: DescribeGroups to report the assignment the members hold",
                interval_s=0.2,
                check=lambda: self.check_members(members),
            )
        except pytest.fail.Exception as e:
            pytest.fail(f"{e}\n  the members hold: {last.get('members')}\n  DescribeGroups: {last.get('broker')}")
        since = now_ms()
        wait_until(
            lambda: all(any(e["t"] > since for e in m.events("record")) for m in members),
            30,
            f"{what}: every member to process records after the assignment settled",
            interval_s=0.1,
            check=lambda: self.check_members(members),
        )
        return view, took

    def check_exclusive_ownership(self):
        """No two members held a partition at the same time (half-open intervals [assigned,
        revoked); a SIGKILLed member's interval ends at the kill)."""
        end = now_ms()
        per_partition = {}
        for m in self.members:
            for p, ivs in m.intervals(end).items():
                for s, e in ivs:
                    per_partition.setdefault(p, []).append((s, e, m.name))
        overlaps = []
        for p, ivs in sorted(per_partition.items()):
            ivs.sort()
            # Sorted by start, an interval overlaps an earlier one iff it starts before the
            # latest end seen so far.
            latest = None
            for s, e, n in ivs:
                if latest is not None and s < latest[1]:
                    overlaps.append(
                        f"partition {p}: {latest[2]} held it [{latest[0]}, {latest[1]}) and {n} from {s} ({latest[1] - s} ms overlap)"
                    )
                if latest is None or e > latest[1]:
                    latest = (s, e, n)
        if overlaps:
            pytest.fail("partitions held by two members at once:\n  " + "\n  ".join(overlaps[:20]))
        n = sum(len(v) for v in per_partition.values())
        print(f"  ownership: {n} assignment intervals over {len(per_partition)} partitions, never two holders at once")

    def check_processed_while_owned(self):
        """Within each member's own event order, every record of a partition comes between an
        assigned and the next revoked of that partition."""
        bad = []
        for m in self.members:
            held = set()
            for e in m.events():
                if e["ev"] == "assigned":
                    held.add(e["p"])
                elif e["ev"] == "revoked":
                    held.discard(e["p"])
                elif e["ev"] == "record" and e["p"] not in held:
                    bad.append(f"{m.name}: partition {e['p']} offset {e['o']} at {e['t']} while not assigned")
        if bad:
            pytest.fail(
                f"{len(bad)} records processed by a member that did not hold the partition:\n  " + "\n  ".join(bad[:20])
            )

    def processed_union(self):
        """{partition: set of processed offsets} over all members."""
        out = {p: set() for p in range(self.partitions)}
        for m in self.members:
            for p, o, _ in m.processed():
                out[p].add(o)
        return out

    def gaps(self, ends):
        """{partition: [first missing offsets]} of [0, end) not processed by anyone."""
        union = self.processed_union()
        out = {}
        for p, end in ends.items():
            missing = [o for o in range(end) if o not in union[p]]
            if missing:
                out[p] = missing[:10] + ([f"... {len(missing)} in all"] if len(missing) > 10 else [])
        return out

    def check_values(self, exact):
        """Every processed record's value is what the producer had acknowledged at that
        offset. exact=False (a broker crash may have duplicated an unacknowledged retried
        record) only checks that acknowledged offsets carry the acknowledged value."""
        acked = self.producer.acked
        wrong = []
        for m in self.members:
            for p, o, v in m.processed():
                want = acked.get((p, o))
                if want is not None and v != want:
                    wrong.append(f"{m.name}: partition {p} offset {o}: value {v!r}, producer was told {want!r}")
                elif exact and want is None:
                    wrong.append(
                        f"{m.name}: partition {p} offset {o}: value {v!r}, but the producer was never told of that offset"
                    )
        if wrong:
            pytest.fail(f"{len(wrong)} processed records differ from what was produced:\n  " + "\n  ".join(wrong[:20]))

    def summary(self):
        for m in self.members:
            recs = m.processed()
            dup = len(recs) - len(set((p, o) for p, o, _ in recs))
            state = "killed" if m.killed_at else ("alive" if m.alive() else f"exited {m.proc.returncode}")
            errors = m.events("error")
            print(
                f"    {m.name} ({m.info}, {state}): {len(recs)} records ({dup} seen twice by it), "
                f"{len(m.events('assigned'))} assigned / {len(m.events('revoked'))} revoked events, "
                f"{len(m.events('committed'))} commits, {len(errors)} errors"
                + (f", first: {errors[0]}" if errors else "")
            )
