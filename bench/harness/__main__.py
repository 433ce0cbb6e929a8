"""Medulla's benchmark harness (issue 7). Run it through bench/run.sh, which installs and
builds what it needs and passes the paths; `bench/run.sh --help` explains the modes.

Workloads (workloads.py): produce (1, 2), catchup (3), latency (4), scale (5),
restart (6); efficiency (7) is measured in every run. Brokers (brokers.py): medulla
(fsync always), medulla-nofsync (fsync never), tansu-memory, tansu-sqlite.
"""

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import brokers  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402
import workloads  # noqa: E402
from procs import HarnessError  # noqa: E402
from tools import RECORD_BYTES, Tools  # noqa: E402

GIB_RECORDS = 2**30 // RECORD_BYTES

SIZES = {
    # CI: proves every path still works, in about a minute.
    "quick": dict(runs=1, produce_records=20_000, sqlite_produce_records=5_000,
                  catchup_records=64 * 1024, sqlite_catchup_records=16 * 1024,
                  latency_seconds=3, latency_warmup=1, scale_partitions=100,
                  scale_connections=100, scale_records=20_000, restart_partitions=100,
                  restart_records=256 * 1024, fio_size="256M", fsync_size="4M", iperf_seconds=1),
    # The workloads.
    "standard": dict(runs=3, produce_records=2_000_000, sqlite_produce_records=200_000,
                     catchup_records=10 * GIB_RECORDS, sqlite_catchup_records=GIB_RECORDS // 4,
                     latency_seconds=30, latency_warmup=3, scale_partitions=1000,
                     scale_connections=1000, scale_records=2_000_000, restart_partitions=1000,
                     restart_records=10 * GIB_RECORDS, fio_size="4G", fsync_size="16M",
                     iperf_seconds=5),
}
SIZES["full"] = SIZES["standard"]
LATENCY_RATE_BYTES = 20_000_000
WORKLOADS = ["produce", "catchup", "latency", "scale", "restart"]
PEERS_PER_WORKLOAD = {
    "produce": ["medulla", "medulla-nofsync", "tansu-memory", "tansu-sqlite"],
    "catchup": ["medulla", "tansu-memory", "tansu-sqlite"],
    "latency": ["medulla", "tansu-memory", "tansu-sqlite"],
    "scale": ["medulla"],
    "restart": ["medulla"],
}


def parse_args():
    p = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_const", dest="mode", const="quick")
    mode.add_argument("--full", action="store_const", dest="mode", const="full")
    p.set_defaults(mode="standard")
    p.add_argument("--only", default=",".join(WORKLOADS), help="workloads, comma-separated")
    p.add_argument("--brokers", default="", help="brokers to run (default: all available)")
    p.add_argument("--runs", type=int, help="runs per figure (default 1 quick, 3 otherwise)")
    p.add_argument("--out", help="results directory (default bench/results/<stamp>)")
    p.add_argument("--no-prewarm", action="store_true",
                   help="skip pre-touching memory (quicker iterations; figures less comparable)")
    p.add_argument("--rdkafka-build", required=True)
    p.add_argument("--medulla", required=True)
    p.add_argument("--probe", required=True)
    p.add_argument("--tansu-sqlite", default="")
    return p.parse_args()


def prewarm(results):
    """Touches most of the free memory once. On this kind of VM the first touch of a
    guest page is slow (writing a fresh 1 GiB file costs ~2.5 CPU-s, 0.2 s once the
    memory has been used): without this, whichever figure runs first pays for it."""
    size = max(0, procs.mem_available_bytes() - (3 << 30))
    started = time.monotonic()
    import mmap

    chunk = 1 << 20
    ones = b"\1" * chunk
    m = mmap.mmap(-1, size - size % chunk, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        for off in range(0, len(m), chunk):
            m[off:off + chunk] = ones
    finally:
        m.close()
    results["limits"]["prewarm"] = {"gib": size / 2**30, "seconds": time.monotonic() - started}


def _summary(detail):
    """One line of an error: a traceback's last line, a HarnessError's first."""
    lines = [line for line in str(detail).strip().splitlines() if line.strip()]
    if not lines:
        return "?"
    return lines[-1].strip() if lines[0].startswith("Traceback") else lines[0]


def environment_notes():
    """What on this machine moves figures between runs, said in the results."""
    notes = []
    root = "/sys/kernel/mm/damon/admin/kdamonds"
    try:
        for k in sorted(os.listdir(root)):
            state = open(os.path.join(root, k, "state")).read().strip() if k.isdigit() else ""
            if state == "on":
                notes.append(
                    "the kernel runs DAMON (kdamond) proactive reclaim: cold page cache is paged "
                    "out in the background, so data written minutes ago may be re-read from disk "
                    "and freed memory is touched afresh; figures vary between runs (medians)")
                break
    except OSError:
        pass
    return notes


def say(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def main():
    args = parse_args()
    sizes = dict(SIZES[args.mode])
    if args.runs:
        sizes["runs"] = args.runs
    runs = sizes["runs"]
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    results_root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")
    out_dir = args.out or os.path.join(results_root, stamp)
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="medulla-bench-")
    broker_cpu, client_cpu = procs.pinning()
    tools = Tools(args.rdkafka_build, args.probe, work, client_cpu, broker_cpu)

    binaries = {"medulla": args.medulla, "medulla-nofsync": args.medulla}
    notes = environment_notes()
    try:
        binaries["tansu-memory"] = brokers.tansu_memory_binary()
    except (HarnessError, ImportError) as e:
        notes.append(f"tansu-memory not run: {e}")
    if args.tansu_sqlite:
        binaries["tansu-sqlite"] = args.tansu_sqlite
    else:
        notes.append("tansu-sqlite not run: its binary is built only by `bench/run.sh --full` "
                     "(bench/tansu-build.sh)")
    wanted = [b for b in args.brokers.split(",") if b] or list(binaries)
    only = [w for w in args.only.split(",") if w]
    for w in only:
        if w not in WORKLOADS:
            sys.exit(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")

    results = {
        "meta": {
            "timestamp": stamp, "mode": args.mode, "runs": runs, "cpus": procs.cpus(),
            "kernel": platform.release(),
            "pinning": (f"broker on CPU {broker_cpu}, load generators on CPU {client_cpu}"
                        if broker_cpu is not None else "not pinned"),
            "librdkafka": tools.librdkafka_version, "tansu_version": "0.6.0",
            "record_bytes": RECORD_BYTES, "sizes": sizes,
        },
        "limits": {}, "workloads": {}, "notes": notes, "errors": [],
    }

    def attempt(what, fn):
        try:
            return fn()
        except (HarnessError, Exception) as e:  # one failed figure must not lose the others
            detail = str(e) if isinstance(e, HarnessError) else traceback.format_exc(limit=3)
            say(f"{what} FAILED: {detail}")
            results["errors"].append(f"{what}: {_summary(detail)}")
            return None

    def new_broker(name):
        kind = "medulla" if name.startswith("medulla") else name
        fsync = {"medulla": "always", "medulla-nofsync": "never"}.get(name)
        return brokers.Broker(name, kind, work, broker_cpu, binaries[name], fsync=fsync)

    def record(section, who, runs_list, error=None):
        entry = {"runs": runs_list or []}
        if runs_list:
            entry["median"] = report.medians(runs_list)
        if error:
            entry["error"] = error
        results["workloads"].setdefault(section, {})[who] = entry

    if args.mode != "quick" and not args.no_prewarm:
        say("pre-touching free memory (see prewarm())")
        attempt("prewarm", lambda: prewarm(results))
    say("limits: fio sequential write, fio fdatasync latency, iperf3 loopback")
    results["limits"]["disk_write"] = attempt(
        "fio write", lambda: tools.fio_write(os.path.join(work, "fio"), sizes["fio_size"]))
    results["limits"]["fdatasync"] = attempt(
        "fio fdatasync", lambda: tools.fio_fdatasync(os.path.join(work, "fio"), sizes["fsync_size"]))
    results["limits"]["loopback"] = attempt("iperf3", lambda: tools.iperf3(sizes["iperf_seconds"]))

    for workload in only:
        for name in PEERS_PER_WORKLOAD[workload]:
            if name not in binaries or name not in wanted:
                continue
            say(f"{workload} on {name}")
            broker = new_broker(name)
            sqlite = name == "tansu-sqlite"
            out = []
            error = None
            try:
                if workload == "produce":
                    n = sizes["sqlite_produce_records" if sqlite else "produce_records"]
                    for _ in range(runs):
                        out.append(workloads.produce(broker, tools, n))
                elif workload == "catchup":
                    n = sizes["sqlite_catchup_records" if sqlite else "catchup_records"]
                    out = workloads.catchup(broker, tools, n, runs)
                elif workload == "latency":
                    for _ in range(runs):
                        out.append(workloads.latency(broker, tools, sizes["latency_seconds"],
                                                     sizes["latency_warmup"], LATENCY_RATE_BYTES))
                elif workload == "scale":
                    for _ in range(runs):
                        out.append(workloads.scale(broker, tools, sizes["scale_records"],
                                                   sizes["scale_partitions"],
                                                   sizes["scale_connections"]))
                elif workload == "restart":
                    rows = workloads.restart(broker, tools, sizes["restart_records"],
                                             sizes["restart_partitions"], runs)
                    for kind in ("clean", "sigkill", "sigkill-cold"):
                        record("restart", kind, [r for r in rows if r["kind"] == kind])
                    continue
            except Exception as e:  # noqa: BLE001 — recorded, the run goes on
                detail = str(e) if isinstance(e, HarnessError) else traceback.format_exc(limit=4)
                say(f"{workload} on {name} FAILED: {detail}")
                error = detail
                results["errors"].append(f"{workload} on {name}: {_summary(detail)}")
                try:
                    broker.destroy()
                except Exception:  # noqa: BLE001
                    pass
            record(workload, name, out, error)

    md = report.write(results, out_dir)
    latest = os.path.join(results_root, "latest")
    try:
        if os.path.islink(latest) or os.path.exists(latest):
            os.remove(latest)
        os.symlink(os.path.abspath(out_dir), latest)
    except OSError:
        pass
    import shutil

    if results["errors"]:
        # Keep what explains a failure: every tool's and broker's log.
        logs = os.path.join(out_dir, "logs")
        for root, _dirs, files in os.walk(work):
            for name in files:
                if name.endswith((".log", ".json")):
                    os.makedirs(logs, exist_ok=True)
                    rel = os.path.relpath(os.path.join(root, name), work).replace(os.sep, "--")
                    shutil.copy(os.path.join(root, name), os.path.join(logs, rel))
    shutil.rmtree(work, ignore_errors=True)
    print(md)
    print(f"results: {out_dir}/results.json, results.md, {', '.join(results.get('charts', []))}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
