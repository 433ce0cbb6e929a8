#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian 12 machine of this project's kind
# (root, Debian / PyPI / npm / crates.io reachable, no Docker). Idempotent: every step checks
# first and skips what is already there, so a second run takes about a second.
#
#   Debian:  kcat (librdkafka 2.0.2: the old-client probe) and the build dependencies of
#            librdkafka's own test suite (interop/librdkafka) and of node-gyp modules.
#   Python:  .venv-interop/ with interop/python/requirements.txt (confluent-kafka,
#            kafka-python, pytest). Reinstalled when the requirements file changes.
#   npm:     interop/node/node_modules from package-lock.json (kafkajs + codec plugins).
#            Reinstalled when the lock file changes.
#   Rust:    rustfmt and clippy components, cargo-nextest.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

say() { echo "install-test-deps: $*"; }

# ---- Debian packages --------------------------------------------------------------------
apt_packages=(
    kcat
    # librdkafka's test suite (./configure --no-download && make -C tests); rapidjson for 3 tests
    build-essential pkg-config libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev rapidjson-dev
    # bench/run.sh's yardsticks: durable disk bandwidth and loopback bandwidth
    fio iperf3
    # interop/librdkafka/pki.sh: the security runs' test CA and certificates
    openssl
    # `python3 -m venv` on Debian's python3
    python3-venv
)
missing=()
for pkg in "${apt_packages[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing+=(nodejs npm)
fi
if ((${#missing[@]} > 0)); then
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    say "Debian packages present"
fi

# ---- Python clients ---------------------------------------------------------------------
venv="$root/.venv-interop"
requirements="$root/interop/python/requirements.txt"
want_sha="$(sha256sum "$requirements" | cut -d' ' -f1)"
stamp="$venv/.requirements.sha256"
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import sys' 2>/dev/null &&
    [[ -f "$stamp" && "$(cat "$stamp")" == "$want_sha" ]]; then
    say "Python venv up to date ($venv)"
else
    if ! [[ -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        rm -rf "$venv"
        say "creating $venv"
        # python3 on PATH may be a pyenv build; Debian's /usr/bin/python3 is the fallback.
        python3 -m venv "$venv" 2>/dev/null || { rm -rf "$venv" && /usr/bin/python3 -m venv "$venv"; }
    fi
    say "pip install -r interop/python/requirements.txt"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want_sha" >"$stamp"
fi

# ---- Node clients -----------------------------------------------------------------------
node_dir="$root/interop/node"
want_sha="$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)"
stamp="$node_dir/node_modules/.medulla-lock.sha256"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want_sha" ]]; then
    say "node_modules up to date ($node_dir)"
else
    say "npm ci in interop/node"
    # kafkajs-lz4 pulls `lz4`, a node-gyp module: it compiles with build-essential and the
    # node headers found locally (no header download is needed or possible here).
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want_sha" >"$stamp"
fi

# ---- Rust tools -------------------------------------------------------------------------
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    say "rustup component add rustfmt clippy"
    rustup component add rustfmt clippy
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    say "cargo install cargo-nextest (a few CPU-minutes, once)"
    cargo install --locked cargo-nextest
fi
say "done"
