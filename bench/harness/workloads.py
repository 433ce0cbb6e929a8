"""The workloads of issue 7. Each runs on fresh brokers, one broker at a time, and returns
one dict of figures per run; the caller keeps the medians.

(1)/(2) produce      1 KiB records, acks=all, linger.ms=5, 8 partitions, one producer:
                     Medulla with fsync `always` (1) and `never` (2), Tansu's engines
(3) catch-up         fill a topic of 8 partitions, then read it all from the start
(4) latency          end to end at a fixed offered rate (medulla-bench latency)
(5) scale            (1) on 1,000 partitions while 1,000 more connections long-poll
(6) restart          1,000 partitions holding the catch-up volume: clean stop and start,
                     SIGKILL under load and start (page cache warm, then dropped)
(7) efficiency       broker CPU-seconds per GB and peak resident memory, in every run
"""

import os
import signal
import time

import procs
from procs import HarnessError
from tools import RECORD_BYTES

PRODUCE_PARTITIONS = 8


def _gb(records):
    return records * RECORD_BYTES / 1e9


def _topic(name):
    return f"bench-{name}-{int(time.time() * 1000) % 10**9}"


def produce(broker, tools, records):
    """(1) and (2): one run on a fresh broker."""
    broker.start()
    try:
        topic = _topic("produce")
        broker.create_topic(topic, PRODUCE_PARTITIONS)
        cpu0 = broker.cpu_s()
        result = tools.produce(broker.bootstrap, topic, records)
        cpu1 = broker.cpu_s()
        if not broker.alive():
            raise HarnessError(f"{broker.name} died during the produce run")
        result["broker_cpu_s_per_gb"] = (cpu1 - cpu0) / _gb(records)
        result["broker_rss_peak_mb"] = broker.rss_peak_mb()
        return result
    finally:
        broker.destroy()


def catchup(broker, tools, records, runs):
    """(3): fills once (acks=1), then reads everything from the start `runs` times. The
    data stays in the page cache (it fits in this machine's memory)."""
    broker.start()
    try:
        topic = _topic("catchup")
        broker.create_topic(topic, PRODUCE_PARTITIONS)
        cpu0 = broker.cpu_s()
        fill = tools.produce(broker.bootstrap, topic, records, acks="1")
        fill["broker_cpu_s_per_gb"] = (broker.cpu_s() - cpu0) / _gb(records)
        out = []
        for _ in range(runs):
            cpu0 = broker.cpu_s()
            result = tools.consume(broker.bootstrap, topic, PRODUCE_PARTITIONS, records)
            result["broker_cpu_s_per_gb"] = (broker.cpu_s() - cpu0) / _gb(records)
            result["broker_rss_peak_mb"] = broker.rss_peak_mb()
            result["fill_mb_per_s"] = fill["mb_per_s"]
            result["gib"] = records * RECORD_BYTES / 2**30
            out.append(result)
        return out
    finally:
        broker.destroy()


def latency(broker, tools, seconds, warmup_s, rate_bytes):
    """(4): one run on a fresh broker."""
    broker.start()
    try:
        topic = _topic("latency")
        broker.create_topic(topic, PRODUCE_PARTITIONS)
        cpu0 = broker.cpu_s()
        r = tools.latency(broker.bootstrap, topic, seconds, warmup_s, rate_bytes)
        e2e = r["e2e_us"]
        ack = r["ack_us"]
        return {
            "offered_mb_per_s": r["offered_mb_per_s"],
            "e2e_p50_ms": e2e["p50"] / 1000, "e2e_p99_ms": e2e["p99"] / 1000,
            "e2e_p999_ms": e2e["p999"] / 1000, "e2e_max_ms": e2e["max"] / 1000,
            "ack_p50_ms": ack["p50"] / 1000, "ack_p99_ms": ack["p99"] / 1000,
            "ack_p999_ms": ack["p999"] / 1000,
            "records": r["records_received"],
            "broker_cpu_s": broker.cpu_s() - cpu0,
            "broker_rss_peak_mb": broker.rss_peak_mb(),
        }
    finally:
        broker.destroy()


def scale(broker, tools, records, partitions, connections):
    """(5): one run on a fresh broker."""
    broker.start()
    try:
        topic = _topic("scale")
        broker.create_topic(topic, partitions)
        conns = tools.start_conns(broker.bootstrap, topic, connections)
        try:
            cpu0 = broker.cpu_s()
            result = tools.produce(broker.bootstrap, topic, records)
            cpu1 = broker.cpu_s()
        finally:
            stats = tools.stop_conns(conns)
        if not broker.alive():
            raise HarnessError(f"{broker.name} died during the scale run")
        if stats.get("errors"):
            raise HarnessError(f"{stats['errors']} of {connections} consumer connections failed")
        result.update(
            partitions=partitions, connections=stats["connected"],
            consumer_records=stats["records"], consumer_fetches=stats["fetches"],
            broker_cpu_s_per_gb=(cpu1 - cpu0) / _gb(records),
            broker_rss_peak_mb=broker.rss_peak_mb(),
        )
        return result
    finally:
        broker.destroy()


def _data_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def restart(broker, tools, records, partitions, runs):
    """(6): fills `partitions` partitions, then `runs` clean restarts and `runs` restarts
    after a SIGKILL under load (page cache warm), and one after a SIGKILL with the page
    cache dropped (cold). Ready = Metadata lists the topic with all its partitions."""
    broker.start()
    try:
        topic = _topic("restart")
        broker.create_topic(topic, partitions)
        tools.produce(broker.bootstrap, topic, records, acks="1")
        data_gib = _data_bytes(broker.data) / 2**30
        out = []
        for _ in range(runs):
            stop_s = broker.stop()
            start_s = broker.start(topic=topic, partitions=partitions)
            out.append({"kind": "clean", "stop_s": stop_s, "start_s": start_s,
                        "rss_after_start_mb": broker.rss_mb(), "data_gib": data_gib})
        for cold in [False] * runs + [True]:
            start_s, written = _kill_under_load(broker, tools, topic, partitions, cold)
            out.append({"kind": "sigkill-cold" if cold else "sigkill", "start_s": start_s,
                        "rss_after_start_mb": broker.rss_mb(), "data_gib": data_gib,
                        "written_before_kill_mb": written / 1e6})
        return out
    finally:
        broker.destroy()


def _kill_under_load(broker, tools, topic, partitions, cold):
    before = _data_bytes(broker.data)
    producer, _log = tools.start_producer(broker.bootstrap, topic, 100_000_000, acks="1")
    try:
        # Kill once the producer has written ~200 MB: the active segments of many
        # partitions then end in unsynced, possibly torn data.
        procs.wait_for(lambda: _data_bytes(broker.data) - before > 200e6, 120,
                       "the producer writing before the SIGKILL", interval_s=0.05, alive=producer)
        broker.stop(signal.SIGKILL)
    finally:
        procs.stop(producer, signal.SIGKILL)
    written = _data_bytes(broker.data) - before
    if cold and not procs.drop_caches():
        raise HarnessError("cannot drop the page cache (needs root) for the cold restart")
    return broker.start(topic=topic, partitions=partitions), written
