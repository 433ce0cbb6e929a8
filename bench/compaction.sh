#!/usr/bin/env bash
# Compaction benchmark: what the log cleaner costs produce and fetch. The same
# workload runs against two fresh brokers, one cleaning (log.cleaner.backoff.ms=100,
# so it cleans continuously) and one with log.cleaner.enable=false, and the figures
# and their ratios (cleaner on / off) are printed.
#
#   bench/compaction.sh [--quick]
#
#   --quick   a small run (about 20 s once built): CI checks that it still works
#
# Workload, per broker (crates/medulla/examples/compaction_bench.rs, rdkafka):
#   fill      a compacted topic (1 partition, segment.bytes 1 MiB,
#             min.cleanable.dirty.ratio 0.01) gets FILL keyed updates over KEYS keys
#             (acks=all): the history the cleaner works through
#   measure   for SECONDS: RATE updates/s more (acks=all) while one consumer tails the
#             topic and another scans it from the beginning again and again
# Figures: produce latency p50/p99 (send → acknowledgement), fetch latency p50/p99
# (send → the tailing consumer has it), scan throughput (MB/s of keys and values),
# and the cleaner passes the broker logged during the run.
#
# Builds target/release/medulla and the example first (honours CARGO_TARGET_DIR;
# MEDULLA_BIN overrides the broker). The first build compiles librdkafka in release
# mode and takes minutes; the run itself stays under two minutes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/.." && pwd)"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

quick=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
if [[ $quick -eq 1 ]]; then
    FILL=30000 KEYS=3000 SECONDS_MEASURED=4 RATE=1000 mode=quick
else
    FILL=300000 KEYS=10000 SECONDS_MEASURED=30 RATE=2000 mode=full
fi
VALUE_BYTES=100
CLIENT_TIMEOUT_S=300

log() { echo "[compaction-bench] $*" >&2; }

target="${CARGO_TARGET_DIR:-$repo_root/target}"
log "building the broker and the benchmark client (release)"
(cd "$repo_root" && cargo build --quiet --release -p medulla --bin medulla --example compaction_bench) >&2
export MEDULLA_BIN="${MEDULLA_BIN:-$target/release/medulla}"
client="$target/release/examples/compaction_bench"

# shellcheck source=../interop/lib.sh
. "$repo_root/interop/lib.sh"

run() { # run LABEL SERVE_ARGS... -> "LABEL key=value ..." on stdout
    local label="$1" out passes
    shift
    medulla_start "$@" >&2
    log "$label: $FILL updates over $KEYS keys, then ${SECONDS_MEASURED}s at $RATE updates/s"
    out="$(timeout --foreground -k 10 "$CLIENT_TIMEOUT_S" "$client" --bootstrap "$MEDULLA_BOOTSTRAP" \
        --fill "$FILL" --keys "$KEYS" --value-bytes "$VALUE_BYTES" \
        --seconds "$SECONDS_MEASURED" --rate "$RATE")" || { medulla_log_tail 40; return 1; }
    passes="$(grep -c 'cleaned partition' "$MEDULLA_LOG" || true)"
    medulla_check_healthy
    medulla_stop
    echo "$label $(sed -n 's/^RESULT //p' <<<"$out") cleaner_passes=$passes"
}

on="$(run cleaner-on --override log.cleaner.backoff.ms=100)"
off="$(run cleaner-off --override log.cleaner.enable=false)"

field() { sed -E "s/.* $2=([^ ]*).*/\1/" <<<" $1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

echo "### log compaction — $mode run, $(nproc) CPUs"
echo
echo "$FILL updates over $KEYS keys ($VALUE_BYTES-byte values) filled first; then ${SECONDS_MEASURED}s at $RATE updates/s, acks=all"
echo
echo "| figure | cleaner on | cleaner off | on / off |"
echo "|---|---:|---:|---:|"
for f in produce_p50_ms produce_p99_ms fetch_p50_ms fetch_p99_ms scan_mb_per_s scan_records_per_s produced fetch_records cleaner_passes; do
    a="$(field "$on" "$f")" b="$(field "$off" "$f")"
    echo "| $f | $a | $b | $(ratio "$a" "$b") |"
done
