#!/usr/bin/env bash
# Throughput benchmark of a Kafka-protocol broker with librdkafka's
# rdkafka_performance: durable produce and consume of 1 KiB records, reported
# as records/s, MB/s and ratios to this machine's yardsticks (DESIGN.md,
# "Performance yardsticks").
#
#   bench/run.sh [--quick] [--bootstrap HOST:PORT] [--label NAME]
#
#   --quick       few records, no yardsticks: CI checks that it still runs
#                 (well under a minute once librdkafka is built)
#   --bootstrap   benchmark a running broker (e.g. another Kafka-protocol
#                 broker for a side-by-side run); without it a fresh
#                 `target/release/medulla serve` is started on a free loopback
#                 port with an empty temp data dir and
#                 `--override num.partitions=8`, and stopped at the end.
#                 Build it first: cargo build --release -p medulla
#   --label       name of the broker in the results (default: medulla, or
#                 "external" with --bootstrap)
#
# Workloads (one topic, auto-created by the first produce; partitions = the
# broker's default, 8 for the medulla we start):
#   produce   rdkafka_performance -P -s 1024 -c N -a -1 -X linger.ms=5
#             (acks=all: acknowledged after fsync under Medulla's default policy)
#   consume   rdkafka_performance -C -o beginning -e -c N -p 0 .. -p P-1
#             (assign, no consumer group)
# Full mode also measures, when the tools are installed:
#   disk      fio --rw=write --bs=1M --fdatasync=64 in the broker's data-dir
#             filesystem -> ratio produce MB/s / disk MB/s
#   loopback  iperf3 over 127.0.0.1 -> ratio consume MB/s / loopback MB/s
# and, when it started the broker, broker CPU-seconds per GB and peak RSS.
#
# Output: a Markdown table on stdout, bench/results/latest.json and
# bench/results/latest.md (plus timestamped copies). bench/results/ is
# gitignored. MB = 10^6 bytes throughout (rdkafka_performance's unit).
#
# Environment: BENCH_RECORDS (override the record count), BENCH_DISK_SIZE
# (fio file size, default 2G), MEDULLA_BIN, MEDULLA_CACHE (librdkafka build).
set -euo pipefail

RECORD_BYTES=1024
FULL_RECORDS=1000000
QUICK_RECORDS=20000
LINGER_MS=5
NUM_PARTITIONS=8
BROKER_START_TIMEOUT_S=30
RUN_TIMEOUT_S=900

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/.." && pwd)"
results_dir="$here/results"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

quick=0
bootstrap=""
label=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --bootstrap) bootstrap="${2:?--bootstrap needs HOST:PORT}"; shift 2 ;;
        --bootstrap=*) bootstrap="${1#*=}"; shift ;;
        --label) label="${2:?--label needs a name}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done

log() { echo "[bench] $*" >&2; }
die() { log "$*"; exit 1; }

if [[ $quick -eq 1 ]]; then records="${BENCH_RECORDS:-$QUICK_RECORDS}"; mode=quick
else records="${BENCH_RECORDS:-$FULL_RECORDS}"; mode=full; fi

build="$("$repo_root/interop/librdkafka/build.sh" | tail -1)" || die "librdkafka build failed"
perf="$build/examples/rdkafka_performance"
meta="$build/examples/rdkafka_example"
[[ -x "$perf" && -x "$meta" ]] || die "rdkafka_performance / rdkafka_example missing in $build/examples"
# Our build, not Debian's librdkafka1 (the examples link librdkafka.so.1).
export LD_LIBRARY_PATH="$build/src:$build/src-cpp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
work="$(mktemp -d "${TMPDIR:-/tmp}/medulla-bench.XXXXXX")"
broker_pid=""
iperf_pid=""

cleanup() {
    local rc=$? pid
    for pid in "$broker_pid" "$iperf_pid"; do
        [[ -n "$pid" ]] || continue
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    # On failure keep what explains it; the temp dir (and data dir) goes.
    if [[ $rc -ne 0 ]] && compgen -G "$work/*.log" >/dev/null; then
        mkdir -p "$results_dir/failed-$stamp"
        cp "$work"/*.log "$results_dir/failed-$stamp/" 2>/dev/null || true
        log "logs kept in $results_dir/failed-$stamp"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
        echo $((20000 + RANDOM % 20000))
}
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# ---- broker -------------------------------------------------------------------
data_dir=""
if [[ -z "$bootstrap" ]]; then
    broker_bin="${MEDULLA_BIN:-$repo_root/target/release/medulla}"
    [[ -x "$broker_bin" ]] ||
        die "$broker_bin not found: build it first (cargo build --release -p medulla) or pass --bootstrap HOST:PORT"
    port="$(free_port)"
    data_dir="$work/data"
    mkdir -p "$data_dir"
    log "starting $broker_bin on 127.0.0.1:$port (data dir $data_dir)"
    "$broker_bin" serve --data-dir "$data_dir" --kafka-listen "127.0.0.1:$port" \
        --override "num.partitions=$NUM_PARTITIONS" >"$work/broker.log" 2>&1 &
    broker_pid=$!
    deadline=$((SECONDS + BROKER_START_TIMEOUT_S))
    until port_open 127.0.0.1 "$port"; do
        kill -0 "$broker_pid" 2>/dev/null || { tail -20 "$work/broker.log" >&2; die "broker exited before accepting connections"; }
        ((SECONDS < deadline)) || die "broker did not accept connections on $port within ${BROKER_START_TIMEOUT_S}s"
        sleep 0.2
    done
    bootstrap="127.0.0.1:$port"
    label="${label:-medulla}"
else
    port_open "${bootstrap%:*}" "${bootstrap##*:}" || die "nothing accepts connections on $bootstrap"
    label="${label:-external}"
fi

# CPU seconds (user + system) and peak RSS of the broker we started.
clk_tck="$(getconf CLK_TCK)"
broker_cpu_s() {
    [[ -n "$broker_pid" && -r "/proc/$broker_pid/stat" ]] || { echo ""; return; }
    # Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    sed 's/.*) //' "/proc/$broker_pid/stat" | awk -v t="$clk_tck" '{ printf "%.2f", ($12 + $13) / t }'
}
broker_rss_peak_mb() {
    [[ -n "$broker_pid" && -r "/proc/$broker_pid/status" ]] || { echo ""; return; }
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$broker_pid/status"
}
broker_alive() { [[ -z "$broker_pid" ]] || kill -0 "$broker_pid" 2>/dev/null; }

topic="medulla-bench-$stamp-$RANDOM"
log "broker $label at $bootstrap, topic $topic, $records records of $RECORD_BYTES bytes ($mode mode)"

run_perf() { # run_perf LOGFILE ARGS... (bounded, output kept for parsing)
    local out="$1"; shift
    timeout --foreground -k 10 "$RUN_TIMEOUT_S" "$perf" -b "$bootstrap" "$@" >"$out" 2>&1
}

# ---- produce --------------------------------------------------------------------
# A one-record warm-up creates the topic (auto-creation), so the timed run does
# not include topic creation and we can read the partition count first.
run_perf "$work/warmup.log" -P -t "$topic" -s "$RECORD_BYTES" -c 1 -a -1 ||
    { cat "$work/warmup.log" >&2; die "warm-up produce failed"; }
partitions="$("$meta" -L -t "$topic" -b "$bootstrap" 2>/dev/null |
    sed -n 's/.*topic "'"$topic"'" with \([0-9]*\) partitions.*/\1/p' | head -1)"
[[ -n "$partitions" && "$partitions" -gt 0 ]] || die "could not read the partition count of $topic"
log "topic $topic has $partitions partition(s)"

cpu0="$(broker_cpu_s)"
run_perf "$work/produce.log" -P -t "$topic" -s "$RECORD_BYTES" -c "$records" -a -1 \
    -X "linger.ms=$LINGER_MS" || { tail -20 "$work/produce.log" >&2; die "produce run failed"; }
cpu1="$(broker_cpu_s)"
# "% N messages produced (B bytes), D delivered (offset O, F failed) in Tms: X msgs/s and Y MB/s, ..."
produce_line="$(grep 'messages produced' "$work/produce.log" | tail -1)"
[[ -n "$produce_line" ]] || { tail -20 "$work/produce.log" >&2; die "no produce summary"; }
p_delivered="$(sed -E 's/.* ([0-9]+) delivered .*/\1/' <<<"$produce_line")"
p_failed="$(sed -E 's/.*, ([0-9]+) failed\).*/\1/' <<<"$produce_line")"
p_ms="$(sed -E 's/.* in ([0-9]+)ms: .*/\1/' <<<"$produce_line")"
p_rps="$(sed -E 's/.*ms: ([0-9]+) msgs\/s.*/\1/' <<<"$produce_line")"
p_mbps="$(sed -E 's/.* and ([0-9.]+) MB\/s.*/\1/' <<<"$produce_line")"
[[ "$p_delivered" == "$records" && "$p_failed" == 0 ]] ||
    die "produce: $p_delivered of $records delivered, $p_failed failed: $produce_line"
broker_alive || die "the broker died during the produce run (log: $work/broker.log)"

# ---- consume ----------------------------------------------------------------------
part_args=()
for ((p = 0; p < partitions; p++)); do part_args+=(-p "$p"); done
expect=$((records + 1)) # + the warm-up record
cpu2="$(broker_cpu_s)"
run_perf "$work/consume.log" -C -t "$topic" -o beginning -e -c "$expect" "${part_args[@]}" ||
    { tail -20 "$work/consume.log" >&2; die "consume run failed"; }
cpu3="$(broker_cpu_s)"
# "% N messages (B bytes) consumed in Tms: X msgs/s (Y MB/s)"
consume_line="$(grep 'messages (.*) consumed in' "$work/consume.log" | tail -1)"
[[ -n "$consume_line" ]] || { tail -20 "$work/consume.log" >&2; die "no consume summary"; }
c_records="$(sed -E 's/^% ([0-9]+) messages.*/\1/' <<<"$consume_line")"
c_ms="$(sed -E 's/.* consumed in ([0-9]+)ms: .*/\1/' <<<"$consume_line")"
c_rps="$(sed -E 's/.*ms: ([0-9]+) msgs\/s.*/\1/' <<<"$consume_line")"
c_mbps="$(sed -E 's/.*\(([0-9.]+) MB\/s\).*/\1/' <<<"$consume_line")"
[[ "$c_records" == "$expect" ]] || die "consume: got $c_records of $expect records: $consume_line"
broker_alive || die "the broker died during the consume run (log: $work/broker.log)"
rss_mb="$(broker_rss_peak_mb)"

cpu_per_gb() { # cpu_per_gb START END -> CPU-seconds per GB of record payload
    [[ -n "$1" && -n "$2" ]] || { echo ""; return; }
    awk -v a="$1" -v b="$2" -v bytes="$((records * RECORD_BYTES))" 'BEGIN { printf "%.2f", (b - a) / (bytes / 1e9) }'
}
p_cpu_gb="$(cpu_per_gb "$cpu0" "$cpu1")"
c_cpu_gb="$(cpu_per_gb "$cpu2" "$cpu3")"

# ---- yardsticks (full mode) ----------------------------------------------------------
disk_mbps="" disk_note="" loop_mbps="" loop_note=""
if [[ $quick -eq 1 ]]; then
    disk_note="skipped (--quick)" loop_note="skipped (--quick)"
else
    if command -v fio >/dev/null; then
        # Same filesystem as the broker's data dir when we started it.
        fio_dir="${data_dir:-$work}/fio"
        mkdir -p "$fio_dir"
        log "fio: sequential 1 MiB writes, fdatasync every 64 (${BENCH_DISK_SIZE:-2G}) in $fio_dir"
        if fio --name=medulla-disk --directory="$fio_dir" --rw=write --bs=1M \
            --size="${BENCH_DISK_SIZE:-2G}" --fdatasync=64 --end_fsync=1 --ioengine=psync \
            --output-format=json >"$work/fio.json" 2>"$work/fio.err"; then
            bw_bytes="$(awk '/"write" : \{/ { w = 1 } w && /"bw_bytes"/ { gsub(/[^0-9]/, "", $3); print $3; exit }' "$work/fio.json")"
            [[ -n "$bw_bytes" ]] && disk_mbps="$(awk -v b="$bw_bytes" 'BEGIN { printf "%.2f", b / 1e6 }')"
        else
            disk_note="fio failed: $(head -c 200 "$work/fio.err")"
        fi
        rm -rf "$fio_dir"
    else
        disk_note="fio not installed (apt-get install fio)"
    fi
    if command -v iperf3 >/dev/null; then
        iport="$(free_port)"
        # No readiness probe by connecting: iperf3 takes any connection for a
        # test client. The client is retried until the server listens instead.
        iperf3 -s -B 127.0.0.1 -p "$iport" >/dev/null 2>&1 &
        iperf_pid=$!
        log "iperf3: loopback TCP for 5 s"
        bps=""
        for _ in $(seq 20); do
            if iperf3 -c 127.0.0.1 -p "$iport" -t 5 -J >"$work/iperf3.json" 2>/dev/null; then
                bps="$(awk '/"sum_received"/ { r = 1 } r && /"bits_per_second"/ { gsub(/[^0-9.e+]/, "", $2); print $2; exit }' "$work/iperf3.json")"
                break
            fi
            sleep 0.2
        done
        if [[ -n "$bps" ]]; then
            loop_mbps="$(awk -v b="$bps" 'BEGIN { printf "%.2f", b / 8 / 1e6 }')"
        else
            loop_note="iperf3 failed: $(grep -m1 '"error"' "$work/iperf3.json" 2>/dev/null | head -c 200)"
        fi
        kill "$iperf_pid" 2>/dev/null || true
        wait "$iperf_pid" 2>/dev/null || true
        iperf_pid=""
    else
        loop_note="iperf3 not installed (apt-get install iperf3)"
    fi
fi
ratio() { [[ -n "$1" && -n "$2" ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b }' || echo ""; }
produce_vs_disk="$(ratio "$p_mbps" "$disk_mbps")"
consume_vs_loop="$(ratio "$c_mbps" "$loop_mbps")"

# ---- report -------------------------------------------------------------------------
librdkafka_version="$(basename "$build")"
librdkafka_version="${librdkafka_version#librdkafka-}"
json_num() { [[ -n "$1" ]] && echo "$1" || echo null; }
json_str() { [[ -n "$1" ]] && printf '"%s"' "$(sed 's/\\/\\\\/g; s/"/\\"/g' <<<"$1")" || echo null; }

mkdir -p "$results_dir"
json="$results_dir/$stamp.json"
cat >"$json" <<EOF
{
  "timestamp": "$stamp",
  "mode": "$mode",
  "broker": $(json_str "$label"),
  "bootstrap": "$bootstrap",
  "started_by_bench": $([[ -n "$broker_pid" ]] && echo true || echo false),
  "host": {"cpus": $(nproc), "kernel": "$(uname -r)"},
  "client": "rdkafka_performance (librdkafka $librdkafka_version)",
  "topic": "$topic",
  "partitions": $partitions,
  "record_bytes": $RECORD_BYTES,
  "records": $records,
  "produce": {
    "acks": "all", "linger_ms": $LINGER_MS,
    "seconds": $(awk -v m="$p_ms" 'BEGIN { printf "%.3f", m / 1000 }'),
    "records_per_s": $p_rps, "mb_per_s": $p_mbps,
    "broker_cpu_s_per_gb": $(json_num "$p_cpu_gb")
  },
  "consume": {
    "from": "beginning", "group": null,
    "records": $c_records,
    "seconds": $(awk -v m="$c_ms" 'BEGIN { printf "%.3f", m / 1000 }'),
    "records_per_s": $c_rps, "mb_per_s": $c_mbps,
    "broker_cpu_s_per_gb": $(json_num "$c_cpu_gb")
  },
  "broker_rss_peak_mb": $(json_num "$rss_mb"),
  "yardsticks": {
    "disk_fio_fdatasync64_mb_per_s": $(json_num "$disk_mbps"),
    "disk_note": $(json_str "$disk_note"),
    "loopback_iperf3_mb_per_s": $(json_num "$loop_mbps"),
    "loopback_note": $(json_str "$loop_note")
  },
  "ratios": {
    "produce_vs_disk": $(json_num "$produce_vs_disk"),
    "consume_vs_loopback": $(json_num "$consume_vs_loop")
  }
}
EOF
cp "$json" "$results_dir/latest.json"

or_dash() { [[ -n "$1" ]] && echo "$1" || echo "–"; }
md="$results_dir/$stamp.md"
{
    echo "### $label — $mode run $stamp"
    echo
    echo "$records records × $RECORD_BYTES B, topic with $partitions partitions, rdkafka_performance (librdkafka $librdkafka_version), $(nproc) CPUs"
    echo
    echo "| workload | records/s | MB/s | seconds | yardstick MB/s | ratio | broker CPU-s/GB |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    echo "| produce (acks=all, linger.ms=$LINGER_MS) | $p_rps | $p_mbps | $(awk -v m="$p_ms" 'BEGIN { printf "%.2f", m / 1000 }') | $(or_dash "$disk_mbps") (disk, fio fdatasync=64) | $(or_dash "$produce_vs_disk") | $(or_dash "$p_cpu_gb") |"
    echo "| consume (from beginning, assign) | $c_rps | $c_mbps | $(awk -v m="$c_ms" 'BEGIN { printf "%.2f", m / 1000 }') | $(or_dash "$loop_mbps") (loopback, iperf3) | $(or_dash "$consume_vs_loop") | $(or_dash "$c_cpu_gb") |"
    echo
    [[ -n "$rss_mb" ]] && echo "Broker peak RSS: $rss_mb MB." && echo
    [[ -n "$disk_note" ]] && echo "Disk yardstick: $disk_note." && echo
    [[ -n "$loop_note" ]] && echo "Loopback yardstick: $loop_note." && echo
    true
} >"$md"
cp "$md" "$results_dir/latest.md"

echo "produce: $p_rps records/s, $p_mbps MB/s${produce_vs_disk:+ (= $produce_vs_disk × disk $disk_mbps MB/s)}"
echo "consume: $c_rps records/s, $c_mbps MB/s${consume_vs_loop:+ (= $consume_vs_loop × loopback $loop_mbps MB/s)}"
echo
cat "$md"
echo "results: $results_dir/latest.json, $results_dir/latest.md"
