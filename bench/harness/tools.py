"""The load generators and the machine's yardsticks.

- librdkafka's `rdkafka_performance` (built from the rdkafka-sys tree by
  interop/librdkafka/build.sh): produce and catch-up consume throughput.
- `medulla-bench` (bench/probe, Rust): `latency` (end-to-end latency at a fixed offered
  rate, on rdkafka) and `conns` (many long-polling consumer connections).
- `fio`: durable sequential write bandwidth and fdatasync latency; `iperf3`: loopback TCP.

MB = 10^6 bytes throughout (rdkafka_performance's unit).
"""

import json
import os
import re
import signal
import subprocess
import time

import procs
from procs import HarnessError

RECORD_BYTES = 1024
RUN_TIMEOUT_S = 1800


class Tools:
    def __init__(self, rdkafka_build, probe, work, client_cpu, broker_cpu):
        self.perf = os.path.join(rdkafka_build, "examples", "rdkafka_performance")
        if not os.access(self.perf, os.X_OK):
            raise HarnessError(f"no rdkafka_performance in {rdkafka_build}/examples")
        self.probe = probe
        if not os.access(probe, os.X_OK):
            raise HarnessError(f"no medulla-bench at {probe} (cargo build --release -p medulla-bench)")
        self.librdkafka_version = os.path.basename(rdkafka_build.rstrip("/")).removeprefix("librdkafka-")
        # Our build of librdkafka, not Debian's librdkafka1.
        self.env = dict(
            os.environ,
            LD_LIBRARY_PATH=":".join(
                [os.path.join(rdkafka_build, "src"), os.path.join(rdkafka_build, "src-cpp")]
                + ([os.environ["LD_LIBRARY_PATH"]] if os.environ.get("LD_LIBRARY_PATH") else [])
            ),
        )
        self.work = work
        self.client_cpu = client_cpu
        self.broker_cpu = broker_cpu
        self.seq = 0

    def _log(self, what):
        self.seq += 1
        return os.path.join(self.work, f"{self.seq:03d}-{what}.log")

    # ---- rdkafka_performance --------------------------------------------------------------

    def produce_argv(self, bootstrap, topic, records, acks="-1", linger_ms=5):
        return [
            self.perf, "-P", "-t", topic, "-b", bootstrap, "-s", str(RECORD_BYTES),
            "-c", str(records), "-a", str(acks), "-X", f"linger.ms={linger_ms}",
        ]

    def produce(self, bootstrap, topic, records, acks="-1", linger_ms=5):
        """Produces `records` records of 1 KiB; returns records/s, MB/s, seconds."""
        out = procs.run(
            self.produce_argv(bootstrap, topic, records, acks, linger_ms),
            self._log("produce"), RUN_TIMEOUT_S, cpu=self.client_cpu, env=self.env,
        )
        # "% N messages produced (B bytes), D delivered (offset O, F failed) in Tms: X msgs/s and Y MB/s, ..."
        m = _last(
            r"% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset \d+, (\d+) failed\) "
            r"in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s",
            out,
        )
        if not m:
            raise HarnessError("no produce summary from rdkafka_performance")
        delivered, failed = int(m[3]), int(m[4])
        if delivered != records or failed != 0:
            raise HarnessError(f"produce: {delivered} of {records} delivered, {failed} failed")
        return {"records": records, "seconds": int(m[5]) / 1000, "records_per_s": int(m[6]),
                "mb_per_s": float(m[7])}

    def consume(self, bootstrap, topic, partitions, records):
        """Reads `records` records from the beginning of every partition (assign, no group)."""
        argv = [self.perf, "-C", "-t", topic, "-b", bootstrap, "-o", "beginning", "-e",
                "-c", str(records)]
        for p in range(partitions):
            argv += ["-p", str(p)]
        out = procs.run(argv, self._log("consume"), RUN_TIMEOUT_S, cpu=self.client_cpu, env=self.env)
        # "% N messages (B bytes) consumed in Tms: X msgs/s (Y MB/s)"
        m = _last(r"% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms: (\d+) msgs/s \(([\d.]+) MB/s\)", out)
        if not m:
            raise HarnessError("no consume summary from rdkafka_performance")
        if int(m[1]) != records:
            raise HarnessError(f"consume: got {m[1]} of {records} records")
        return {"records": records, "seconds": int(m[3]) / 1000, "records_per_s": int(m[4]),
                "mb_per_s": float(m[5])}

    def start_producer(self, bootstrap, topic, records, acks="1"):
        """A producer in the background (for the SIGKILL restart): returns (Popen, log path)."""
        log_path = self._log("background-produce")
        out = open(log_path, "w")
        proc = subprocess.Popen(
            procs.pinned(self.produce_argv(bootstrap, topic, records, acks), self.client_cpu),
            stdout=out, stderr=subprocess.STDOUT, env=self.env,
        )
        out.close()
        return proc, log_path

    # ---- medulla-bench -------------------------------------------------------------------

    def latency(self, bootstrap, topic, seconds, warmup_s, rate_bytes, linger_ms=1):
        out_json = self._log("latency").replace(".log", ".json")
        procs.run(
            [self.probe, "latency", "--bootstrap", bootstrap, "--topic", topic,
             "--rate-bytes", str(rate_bytes), "--record-bytes", str(RECORD_BYTES),
             "--seconds", str(seconds), "--warmup-seconds", str(warmup_s),
             "--linger-ms", str(linger_ms), "--acks", "all", "--out", out_json],
            self._log("latency"), seconds + warmup_s + 180, cpu=self.client_cpu,
        )
        with open(out_json) as f:
            return json.load(f)

    def start_conns(self, bootstrap, topic, connections):
        """Starts `connections` long-polling consumer connections; returns once every one
        is connected. Stop with stop_conns()."""
        ready = self._log("conns-ready").replace(".log", ".ready")
        out_json = ready.replace(".ready", ".json")
        log_path = self._log("conns")
        out = open(log_path, "w")
        proc = subprocess.Popen(
            procs.pinned(
                [self.probe, "conns", "--bootstrap", bootstrap, "--topic", topic,
                 "--connections", str(connections), "--ready-file", ready, "--out", out_json],
                self.client_cpu,
            ),
            stdout=out, stderr=subprocess.STDOUT,
        )
        out.close()
        procs.wait_for(lambda: os.path.exists(ready), 300, f"{connections} consumer connections",
                       interval_s=0.1, alive=proc)
        return proc, out_json

    def stop_conns(self, handle):
        proc, out_json = handle
        procs.stop(proc, signal.SIGTERM, timeout_s=60)
        if proc.returncode not in (0, -signal.SIGTERM):
            raise HarnessError(f"medulla-bench conns exited {proc.returncode}")
        with open(out_json) as f:
            return json.load(f)

    # ---- the machine's limits -------------------------------------------------------------

    def fio_write(self, directory, size):
        """Sequential 1 MiB writes with an fdatasync every 64 (the durable disk bandwidth)."""
        os.makedirs(directory, exist_ok=True)
        try:
            out = procs.run(
                ["fio", "--name=medulla-disk", f"--directory={directory}", "--rw=write", "--bs=1M",
                 f"--size={size}", "--fdatasync=64", "--end_fsync=1", "--ioengine=psync",
                 "--output-format=json"],
                self._log("fio-write"), RUN_TIMEOUT_S,
            )
        finally:
            _rm_tree(directory)
        job = _fio_job(out)
        return {"mb_per_s": job["write"]["bw_bytes"] / 1e6, "size": size}

    def fio_fdatasync(self, directory, size="64M"):
        """4 KiB appends each followed by fdatasync: the latency of one durable write."""
        os.makedirs(directory, exist_ok=True)
        try:
            out = procs.run(
                ["fio", "--name=medulla-fsync", f"--directory={directory}", "--rw=write", "--bs=4k",
                 f"--size={size}", "--fdatasync=1", "--ioengine=sync", "--output-format=json"],
                self._log("fio-fdatasync"), RUN_TIMEOUT_S,
            )
        finally:
            _rm_tree(directory)
        job = _fio_job(out)
        sync = job.get("sync", {}).get("lat_ns") or job.get("sync", {})
        pct = sync.get("percentile", {})
        us = lambda v: round(v / 1000, 1) if v is not None else None  # noqa: E731
        return {"p50_us": us(pct.get("50.000000")), "p99_us": us(pct.get("99.000000")),
                "mean_us": us(sync.get("mean")), "syncs": sync.get("N") or job["write"].get("total_ios")}

    def iperf3(self, seconds):
        """Loopback TCP bandwidth, server on the broker CPU and client on the client CPU."""
        port = procs.free_port()
        server = subprocess.Popen(
            procs.pinned(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)], self.broker_cpu),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            # iperf3 takes any connection for a test client, so no probe by connecting:
            # the client is retried until the server listens (iperf3 3.12 may exit 0
            # with only an "error" in its JSON).
            deadline = time.monotonic() + 30
            while True:
                try:
                    result = json.loads(procs.run(
                        ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-J"],
                        self._log("iperf3"), seconds + 60, cpu=self.client_cpu,
                    ))
                    if "error" not in result:
                        break
                    error = result["error"]
                except (HarnessError, ValueError) as e:
                    error = str(e)
                if time.monotonic() > deadline or server.poll() is not None:
                    raise HarnessError(f"iperf3: {error}")
                time.sleep(0.1)
        finally:
            procs.stop(server)
        return {"mb_per_s": result["end"]["sum_received"]["bits_per_second"] / 8 / 1e6}


def _last(pattern, text):
    found = re.findall(pattern, text)
    return (None,) + found[-1] if found else None


def _fio_job(out):
    start = out.find("{")
    if start < 0:
        raise HarnessError("no JSON from fio")
    return json.loads(out[start:])["jobs"][0]


def _rm_tree(path):
    import shutil

    shutil.rmtree(path, ignore_errors=True)
