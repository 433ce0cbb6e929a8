"""Medians, the targets of issue 7 as ratios, and the JSON / Markdown / PNG output."""

import json
import os
import statistics

# (section, broker, figure): where a target's measured value comes from.
TARGETS = [
    # name, numerator, denominator (None: an absolute bound), bound, "min" | "max", unit
    ("(1) durable produce / disk durable write", ("produce", "medulla", "mb_per_s"),
     ("limits", "disk_write", "mb_per_s"), 0.70, "min", "×"),
    ("(1) durable produce / Tansu memory", ("produce", "medulla", "mb_per_s"),
     ("produce", "tansu-memory", "mb_per_s"), 0.75, "min", "×"),
    ("(1) durable produce / Tansu sqlite", ("produce", "medulla", "mb_per_s"),
     ("produce", "tansu-sqlite", "mb_per_s"), 10.0, "min", "×"),
    ("(2) non-durable produce / Tansu memory", ("produce", "medulla-nofsync", "mb_per_s"),
     ("produce", "tansu-memory", "mb_per_s"), 1.5, "min", "×"),
    ("(3) catch-up consume / loopback TCP", ("catchup", "medulla", "mb_per_s"),
     ("limits", "loopback", "mb_per_s"), 0.35, "min", "×"),
    ("(3) catch-up consume / Tansu memory", ("catchup", "medulla", "mb_per_s"),
     ("catchup", "tansu-memory", "mb_per_s"), 2.0, "min", "×"),
    ("(3) catch-up consume / Tansu sqlite", ("catchup", "medulla", "mb_per_s"),
     ("catchup", "tansu-sqlite", "mb_per_s"), 100.0, "min", "×"),
    ("(4) end-to-end p99 at 20 MB/s, fsync always", ("latency", "medulla", "e2e_p99_ms"),
     None, 10.0, "max", "ms"),
    ("(4) end-to-end p99.9 at 20 MB/s, fsync always", ("latency", "medulla", "e2e_p999_ms"),
     None, 25.0, "max", "ms"),
    ("(5) 1,000 partitions + connections / (1)", ("scale", "medulla", "mb_per_s"),
     ("produce", "medulla", "mb_per_s"), 0.80, "min", "×"),
    ("(5) broker resident memory", ("scale", "medulla", "broker_rss_peak_mb"), None, 300.0, "max",
     "MiB"),
    ("(6) start after a clean stop", ("restart", "clean", "start_s"), None, 3.0, "max", "s"),
    ("(6) start after SIGKILL (page cache warm)", ("restart", "sigkill", "start_s"), None, 15.0,
     "max", "s"),
    ("(6) start after SIGKILL (page cache dropped)", ("restart", "sigkill-cold", "start_s"), None,
     15.0, "max", "s"),
    ("(7) produce CPU-s/GB / Tansu memory's", ("produce", "medulla", "broker_cpu_s_per_gb"),
     ("produce", "tansu-memory", "broker_cpu_s_per_gb"), 0.5, "max", "×"),
    ("(7) produce CPU-s/GB / Tansu sqlite's", ("produce", "medulla", "broker_cpu_s_per_gb"),
     ("produce", "tansu-sqlite", "broker_cpu_s_per_gb"), 0.5, "max", "×"),
    ("(7) catch-up CPU-s/GB / Tansu memory's", ("catchup", "medulla", "broker_cpu_s_per_gb"),
     ("catchup", "tansu-memory", "broker_cpu_s_per_gb"), 0.5, "max", "×"),
]


def medians(runs):
    """Per figure, the median over the runs (numbers only)."""
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = {}
    for k in keys:
        values = [r[k] for r in runs if isinstance(r.get(k), (int, float))]
        if values:
            out[k] = statistics.median(values)
    return out


def _lookup(results, path):
    section, who, figure = path
    if section == "limits":
        return (results["limits"].get(who) or {}).get(figure)
    return (results["workloads"].get(section, {}).get(who, {}).get("median") or {}).get(figure)


def targets(results):
    rows = []
    for name, num, den, bound, kind, unit in TARGETS:
        a = _lookup(results, num)
        b = _lookup(results, den) if den else 1.0
        value = a / b if a is not None and b else None
        met = None if value is None else (value >= bound if kind == "min" else value <= bound)
        rows.append({"target": name, "value": value, "bound": bound, "kind": kind, "unit": unit,
                     "met": met})
    return rows


def _fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _error_line(detail):
    lines = [line.strip() for line in detail.strip().splitlines() if line.strip()]
    line = lines[-1] if lines and lines[0].startswith("Traceback") else (lines or ["?"])[0]
    return line[:200].replace("|", "/")


def markdown(results):
    m = results["meta"]
    lines = [
        f"# Medulla benchmark — {m['mode']} run {m['timestamp']}",
        "",
        f"{m['cpus']} CPUs ({m['pinning']}), kernel {m['kernel']}, load generator "
        f"rdkafka_performance and medulla-bench (librdkafka {m['librdkafka']}); peer "
        f"Tansu {m['tansu_version']}. Medians of {m['runs']} run(s). MB = 10^6 bytes.",
        "",
        "## Targets",
        "",
        "| target | measured | required | met |",
        "|---|---:|---:|:---:|",
    ]
    for t in results["targets"]:
        sign = "≥" if t["kind"] == "min" else "≤"
        met = "–" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['target']} | {_fmt(t['value'], 3)} {t['unit']} | {sign} {t['bound']} {t['unit']} | {met} |")
    lim = results["limits"]
    lines += ["", "## The machine's limits", "", "| limit | figure |", "|---|---:|"]
    if lim.get("disk_write"):
        lines.append(f"| fio sequential 1 MiB writes, fdatasync every 64 | {_fmt(lim['disk_write']['mb_per_s'])} MB/s |")
    if lim.get("fdatasync"):
        f = lim["fdatasync"]
        lines.append(f"| fio 4 KiB write + fdatasync latency p50 / p99 | {_fmt(f['p50_us'], 0)} / {_fmt(f['p99_us'], 0)} µs |")
    if lim.get("loopback"):
        lines.append(f"| iperf3 loopback TCP | {_fmt(lim['loopback']['mb_per_s'])} MB/s |")
    if lim.get("prewarm"):
        lines.append(f"| memory pre-touched before measuring | {_fmt(lim['prewarm']['gib'], 1)} GiB in {_fmt(lim['prewarm']['seconds'], 1)} s |")
    sections = [
        ("produce", "(1)/(2) produce: acks=all, linger.ms=5, 1 KiB, 8 partitions",
         ["records_per_s", "mb_per_s", "seconds", "broker_cpu_s_per_gb", "broker_rss_peak_mb"]),
        ("catchup", "(3) catch-up consume from the start",
         ["gib", "mb_per_s", "records_per_s", "seconds", "broker_cpu_s_per_gb", "broker_rss_peak_mb",
          "fill_mb_per_s"]),
        ("latency", "(4) end-to-end latency at a fixed offered rate (linger.ms=1, acks=all)",
         ["offered_mb_per_s", "e2e_p50_ms", "e2e_p99_ms", "e2e_p999_ms", "e2e_max_ms", "ack_p50_ms",
          "ack_p99_ms", "broker_rss_peak_mb"]),
        ("scale", "(5) 1,000 partitions, 1,000 long-polling consumer connections, durable produce",
         ["partitions", "connections", "mb_per_s", "consumer_records", "broker_cpu_s_per_gb",
          "broker_rss_peak_mb"]),
        ("restart", "(6) restart",
         ["data_gib", "stop_s", "start_s", "rss_after_start_mb", "written_before_kill_mb"]),
    ]
    for key, title, cols in sections:
        rows = results["workloads"].get(key)
        if not rows:
            continue
        lines += ["", f"## {title}", "", "| broker | runs | " + " | ".join(cols) + " |",
                  "|---|---:|" + "---:|" * len(cols)]
        for who, data in rows.items():
            med = data.get("median") or {}
            if data.get("error"):
                lines.append(f"| {who} | error: {_error_line(data['error'])} |")
                continue
            lines.append(f"| {who} | {len(data.get('runs', []))} | " + " | ".join(_fmt(med.get(c)) for c in cols) + " |")
    if results["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    if results["errors"]:
        lines += ["", "## Errors", ""] + [f"- {e}" for e in results["errors"]]
    return "\n".join(lines) + "\n"


def charts(results, out_dir):
    """throughput.png, latency.png and efficiency.png; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = results["workloads"]
    lim = results["limits"]
    med = lambda section, who, fig: (w.get(section, {}).get(who, {}).get("median") or {}).get(fig)  # noqa: E731
    written = []

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    produce = [(b, med("produce", b, "mb_per_s")) for b in w.get("produce", {})]
    if lim.get("disk_write"):
        produce.append(("disk (fio)", lim["disk_write"]["mb_per_s"]))
    consume = [(b, med("catchup", b, "mb_per_s")) for b in w.get("catchup", {})]
    if lim.get("loopback"):
        consume.append(("loopback (iperf3)", lim["loopback"]["mb_per_s"]))
    for ax, data, title in ((axes[0], produce, "Produce (1 KiB, acks=all, linger 5 ms)"),
                            (axes[1], consume, "Catch-up consume")):
        data = [(k, v) for k, v in data if v is not None]
        colors = ["#4c72b0" if k.startswith("medulla") else "#999999" if "(" in k else "#dd8452"
                  for k, _ in data]
        ax.bar([k for k, _ in data], [v for _, v in data], color=colors)
        for i, (_, v) in enumerate(data):
            ax.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
        ax.set_title(title)
        ax.set_ylabel("MB/s")
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    path = os.path.join(out_dir, "throughput.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    lat = w.get("latency", {})
    if lat:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        pcts = [("p50", "e2e_p50_ms"), ("p99", "e2e_p99_ms"), ("p99.9", "e2e_p999_ms"),
                ("max", "e2e_max_ms")]
        brokers = [b for b in lat if lat[b].get("median")]
        width = 0.8 / max(1, len(brokers))
        for i, b in enumerate(brokers):
            vals = [lat[b]["median"].get(k) or 0 for _, k in pcts]
            ax.bar([j + i * width for j in range(len(pcts))], vals, width, label=b)
        ax.set_xticks([j + width * (len(brokers) - 1) / 2 for j in range(len(pcts))])
        ax.set_xticklabels([p for p, _ in pcts])
        ax.set_yscale("log")
        ax.set_ylabel("end-to-end latency, ms (log)")
        ax.set_title("Latency at a fixed offered rate")
        ax.legend()
        fig.tight_layout()
        path = os.path.join(out_dir, "latency.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    cpu = [(f"{s}: {b}", med(s, b, "broker_cpu_s_per_gb")) for s in ("produce", "catchup")
           for b in w.get(s, {})]
    rss = [(f"{s}: {b}", med(s, b, "broker_rss_peak_mb")) for s in ("produce", "catchup", "scale")
           for b in w.get(s, {})]
    for ax, data, title, unit in ((axes[0], cpu, "Broker CPU per GB", "CPU-seconds / GB"),
                                  (axes[1], rss, "Broker peak resident memory", "MiB")):
        data = [(k, v) for k, v in data if v is not None]
        ax.barh([k for k, _ in data], [v for _, v in data],
                color=["#4c72b0" if "medulla" in k else "#dd8452" for k, _ in data])
        ax.set_title(title)
        ax.set_xlabel(unit)
        ax.invert_yaxis()
    fig.tight_layout()
    path = os.path.join(out_dir, "efficiency.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def write(results, out_dir):
    """Charts first (a failure there is recorded in the results), then JSON and Markdown."""
    results["targets"] = targets(results)
    try:
        results["charts"] = [os.path.basename(p) for p in charts(results, out_dir)]
    except Exception as e:  # noqa: BLE001 — a chart is not worth losing the figures for
        results["errors"].append(f"charts: {e}")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    md = markdown(results)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(md)
    return md
