"""Processes the harness starts: CPU pinning, readiness, CPU-seconds and memory from /proc.

Every wait here is on a condition with a deadline; nothing sleeps and hopes.
"""

import os
import signal
import socket
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


class HarnessError(Exception):
    """A benchmark step failed; the message says which and why."""


def cpus():
    return os.cpu_count() or 1


def pinning():
    """(broker_cpu, client_cpu): separate cores when there are at least two."""
    if cpus() >= 2 and _have("taskset"):
        return 1, 0
    return None, None


def _have(tool):
    return any(
        os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get("PATH", "").split(":")
    )


def pinned(argv, cpu):
    """argv run on one CPU (taskset), or unchanged when pinning is not possible."""
    return ["taskset", "-c", str(cpu)] + list(argv) if cpu is not None else list(argv)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for(condition, timeout_s, what, interval_s=0.01, alive=None):
    """Polls `condition` until it is true; HarnessError after `timeout_s` or when the
    process `alive` (a Popen) exits first."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return
        if alive is not None and alive.poll() is not None:
            raise HarnessError(f"{what}: the process exited ({alive.returncode}) first")
        if time.monotonic() >= deadline:
            raise HarnessError(f"{what}: not within {timeout_s} s")
        time.sleep(interval_s)


def proc_cpu_s(pid):
    """utime + stime of `pid` in seconds (all its threads), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime 14, stime 15 (1-based, man proc).
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_mb(pid, key):
    """A `VmHWM` / `VmRSS` line of /proc/PID/status in MiB, None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(argv, log_path, timeout_s, cpu=None, env=None):
    """Runs a command to completion with its output in `log_path`; returns the output.
    HarnessError on a non-zero exit or timeout (the log's tail in the message)."""
    with open(log_path, "w") as out:
        try:
            proc = subprocess.run(
                pinned(argv, cpu), stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s, env=env
            )
        except subprocess.TimeoutExpired:
            raise HarnessError(f"{argv[0]} did not finish within {timeout_s} s ({log_path})")
    with open(log_path, errors="replace") as f:
        text = f.read()
    if proc.returncode != 0:
        tail = "\n".join(text.splitlines()[-15:])
        raise HarnessError(f"{os.path.basename(argv[0])} exited {proc.returncode}:\n{tail}")
    return text


def stop(proc, sig=signal.SIGTERM, timeout_s=120):
    """Sends `sig` and waits for the exit; returns the seconds it took (SIGKILL after
    `timeout_s`, then HarnessError)."""
    if proc.poll() is not None:
        return 0.0
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise HarnessError(f"pid {proc.pid} did not exit within {timeout_s} s of {sig.name}")
    return time.monotonic() - started


def drop_caches():
    """Empties the page cache (root only); False when not permitted."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def mem_available_bytes():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0
