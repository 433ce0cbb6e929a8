#!/usr/bin/env bash
# Build librdkafka's test runner and examples (rdkafka_performance) from the
# librdkafka tree vendored in the rdkafka-sys crate that Cargo.lock pins.
#
# The registry copy stays pristine: the tree is copied to
#   ${MEDULLA_CACHE:-$HOME/.cache/medulla}/librdkafka-<version>
# and built there once (a marker file records a finished build).
#
# Prints the build directory as the last line of stdout; progress goes to stderr.
# Used by interop/librdkafka/run.sh and bench/run.sh.
#
# Needs the Debian packages
#   libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev rapidjson-dev
# (scripts/install-test-deps.sh installs them). Never run the tests/ Makefile's
# `broker`, `sasl` or `full` targets: they download Apache Kafka.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache_dir="${MEDULLA_CACHE:-$HOME/.cache/medulla}"
jobs="${MEDULLA_BUILD_JOBS:-2}"

log() { echo "[librdkafka-build] $*" >&2; }

lock_version() {
    # The version line that follows `name = "rdkafka-sys"` in Cargo.lock.
    awk '/^name = "rdkafka-sys"$/ { found = 1; next }
         found && /^version = / { gsub(/"/, "", $3); print $3; exit }' \
        "$repo_root/Cargo.lock"
}

find_source() {
    local version="$1" d
    for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rdkafka-sys-$version"/librdkafka; do
        if [[ -f "$d/configure" && -d "$d/tests" ]]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

sys_version="$(lock_version)"
if [[ -z "$sys_version" ]]; then
    log "rdkafka-sys is not in $repo_root/Cargo.lock"
    exit 1
fi
# "4.10.0+2.12.1": the part after '+' is librdkafka's own version.
lib_version="${sys_version#*+}"

src="$(find_source "$sys_version" || true)"
if [[ -z "$src" ]]; then
    log "rdkafka-sys $sys_version not in the cargo registry; running cargo fetch"
    (cd "$repo_root" && cargo fetch --locked >&2)
    src="$(find_source "$sys_version")" || { log "still no rdkafka-sys-$sys_version/librdkafka after cargo fetch"; exit 1; }
fi

build="$cache_dir/librdkafka-$lib_version"
marker="$build/.medulla-built"

if [[ -f "$marker" && -x "$build/tests/test-runner" && -x "$build/examples/rdkafka_performance" ]]; then
    log "already built: $build"
    echo "$build"
    exit 0
fi

for h in openssl/ssl.h zlib.h zstd.h lz4.h sasl/sasl.h rapidjson/document.h; do
    if [[ ! -e "/usr/include/$h" ]]; then
        log "missing /usr/include/$h: apt-get install libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev rapidjson-dev"
        exit 1
    fi
done

mkdir -p "$cache_dir"
if [[ ! -f "$build/configure" ]]; then
    log "copying $src -> $build"
    rm -rf "$build.tmp"
    cp -a "$src" "$build.tmp"
    mv "$build.tmp" "$build"
fi

cd "$build"
log "building in $build (make -j$jobs; a few CPU-minutes)"
{
    if [[ ! -f Makefile.config ]]; then
        ./configure --no-download
    fi
    nice make -j"$jobs" libs
    nice make -j"$jobs" -C tests build
    nice make -j"$jobs" -C examples
} >"$build/medulla-build.log" 2>&1 || {
    log "build failed; last lines of $build/medulla-build.log:"
    tail -30 "$build/medulla-build.log" >&2
    exit 1
}
date -u +%Y-%m-%dT%H:%M:%SZ >"$marker"
log "built: $build"
echo "$build"
