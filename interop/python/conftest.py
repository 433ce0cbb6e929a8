"""Shared pieces of the Python interop suites: the broker address, unique topic names, the
records every suite produces, deadlines, and an exact record comparison that reports every
mismatch.

The suites run against the broker named by MEDULLA_BOOTSTRAP (host:port); interop/run-all.sh
sets it, starting a broker first when needed. Topic names are random so several suites can
share one broker.
"""

import os
import time
import uuid

import pytest

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
RECORDS_PER_CODEC = 10_000


@pytest.fixture(scope="session")
def bootstrap():
    addr = os.environ.get("MEDULLA_BOOTSTRAP")
    if not addr:
        pytest.fail(
            "MEDULLA_BOOTSTRAP is not set: run through interop/run-all.sh, or export "
            "MEDULLA_BOOTSTRAP=host:port of a running broker"
        )
    return addr


@pytest.fixture(autouse=True)
def _own_line():
    # With -s, a test's first print would share the line pytest -v starts with the test name.
    print()


def unique_topic(suite, purpose):
    """A topic name no other run or suite uses."""
    return f"interop-{suite}-{purpose}-{uuid.uuid4().hex[:12]}"


class Deadline:
    """Wait on a condition with a deadline instead of sleeping a fixed time."""

    def __init__(self, seconds, what):
        self.end = time.monotonic() + seconds
        self.seconds = seconds
        self.what = what

    def remaining(self):
        return max(0.0, self.end - time.monotonic())

    def expired(self):
        return time.monotonic() >= self.end

    def fail(self, detail=""):
        pytest.fail(f"timed out after {self.seconds}s waiting for {self.what}. {detail}")


def wait_until(condition, seconds, what, interval_s=0.1):
    """Polls condition() until it returns a truthy value, which is returned; fails at the
    deadline with the last value seen."""
    deadline = Deadline(seconds, what)
    last = None
    while True:
        last = condition()
        if last:
            return last
        if deadline.expired():
            deadline.fail(f"last value: {last!r}")
        time.sleep(interval_s)


def make_record(i, codec, base_ts_ms):
    """Record number i of a codec run. Mostly keyed records with compressible values, with
    a few awkward ones mixed in: repeated header keys (the order and both values must survive:
    a broker that decodes headers into a map loses one), an empty header value, a null value
    (tombstone), binary bytes, and an empty value. Timestamps are explicit (CreateTime) and
    strictly increasing so offset-by-time lookups have exact answers."""
    key = f"key-{i:05d}".encode()
    value = (f"value-{i:05d}-{codec}-" + "lorem ipsum dolor sit amet " * (1 + i % 7)).encode()
    headers = [
        ("idx", str(i).encode()),
        ("codec", codec.encode()),
        ("dup", b"first"),
        ("dup", b"second"),
        ("empty", b""),
    ]
    if i % 1000 == 999:
        value = None  # tombstone
    elif i % 1000 == 123:
        value = bytes(range(256)) * 3
    elif i % 1000 == 500:
        value = b""
    if i % 1000 == 777:
        headers = []
    return {"key": key, "value": value, "headers": headers, "timestamp": base_ts_ms + i}


def base_timestamp_ms():
    # An hour ago, on a whole second, so timestamps are recent (within retention) and readable.
    return (int(time.time()) - 3600) * 1000


def compare_records(what, expected, actual):
    """expected, actual: dict (partition, offset) -> record dict. Fails listing every
    difference (up to 20 in full) and prints a summary when they are identical."""
    problems = []
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    if missing:
        problems.append(f"{len(missing)} records not read back, first: {missing[:10]}")
    if extra:
        problems.append(f"{len(extra)} unexpected records read, first: {extra[:10]}")
    field_diffs = []
    for pos in sorted(set(expected) & set(actual)):
        exp, act = expected[pos], actual[pos]
        for field in ("key", "value", "headers", "timestamp"):
            if exp[field] != act[field]:
                field_diffs.append(
                    f"  partition {pos[0]} offset {pos[1]} {field}: expected {exp[field]!r}, got {act[field]!r}"
                )
    if field_diffs:
        problems.append(f"{len(field_diffs)} field differences:\n" + "\n".join(field_diffs[:20]))
    if problems:
        pytest.fail(f"{what}: read-back differs from what was produced:\n" + "\n".join(problems))
    parts = sorted({p for p, _ in expected})
    print(
        f"  {what}: {len(actual)} records identical (key, value, headers incl. repeated keys, "
        f"timestamp) at the offsets the producer was given, partitions {parts}"
    )


def check_offsets_contiguous(what, positions_by_index):
    """positions_by_index: record index -> (partition, offset), from the producer's delivery
    reports. Per partition the offsets must be 0..n-1 with no gap, in production order."""
    by_partition = {}
    for i in sorted(positions_by_index):
        p, o = positions_by_index[i]
        by_partition.setdefault(p, []).append(o)
    for p, offsets in by_partition.items():
        if offsets != list(range(len(offsets))):
            bad = next(k for k, o in enumerate(offsets) if o != k)
            pytest.fail(
                f"{what}: partition {p}: offsets assigned in production order are not 0..{len(offsets) - 1}; "
                f"record #{bad} of the partition got offset {offsets[bad]} (context {offsets[max(0, bad - 3) : bad + 3]})"
            )
    return {p: len(o) for p, o in by_partition.items()}
