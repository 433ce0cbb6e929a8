# shellcheck shell=bash
# interop/lib.sh — start, wait for, check and stop one `medulla serve` for the test scripts.
#
# Source it (`. interop/lib.sh`), then:
#
#   medulla_start [ARGS...]  start target/release/medulla (or $MEDULLA_BIN) on a free loopback
#                            port with a fresh data dir under target/interop/ (ARGS go to
#                            `serve`, e.g. --override KEY=VALUE), wait until the
#                            port accepts, and export MEDULLA_BOOTSTRAP=127.0.0.1:PORT; the
#                            schema registry runs on another free port, exported as
#                            MEDULLA_REGISTRY_URL=http://127.0.0.1:PORT (MEDULLA_REGISTRY=off
#                            leaves it out). Installs an
#                            EXIT/INT/TERM trap that stops the broker and removes the data dir;
#                            the log is kept (target/interop/run.*/broker.log).
#   medulla_check_healthy    fail (printing the log tail) if the broker died or its log shows a
#                            panic; call it after a suite: no client input may kill the broker.
#   medulla_stop             stop it now (idempotent; also what the trap runs).
#   medulla_log_tail [N]     print the last N (default 60) lines of the broker log.
#
# Tunables (environment): MEDULLA_BIN, MEDULLA_START_TIMEOUT_S (default 60),
# MEDULLA_KEEP_DATA=1 to keep the data dir for inspection.
#
# Needs: bash, python3 (free port, port probe), coreutils.

MEDULLA_REPO_ROOT="${MEDULLA_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
MEDULLA_PID=""
MEDULLA_WORK_DIR=""
MEDULLA_LOG=""

# Prints a TCP port that is free on 127.0.0.1 right now. (There is a small window before the
# broker binds it in which another process could take it; medulla_start then fails clearly.)
medulla_free_port() {
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# medulla_alive PID: true while PID runs (a dead child that was not waited for yet is a zombie,
# which `kill -0` still reports as alive).
medulla_alive() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }" # the state is the first field after "(command name) "
    [[ -n "$stat" && "${stat%% *}" != Z ]]
}

# medulla_wait_port HOST PORT DEADLINE_S [PID]: returns 0 as soon as HOST:PORT accepts a TCP
# connection, 1 when the deadline passes or when PID (if given) has exited.
medulla_wait_port() {
    local host="$1" port="$2" deadline_s="$3" pid="${4:-}"
    local end=$((SECONDS + deadline_s))
    while ((SECONDS < end)); do
        if python3 -c 'import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()' "$host" "$port" 2>/dev/null; then
            return 0
        fi
        if [[ -n "$pid" ]] && ! medulla_alive "$pid"; then
            return 1
        fi
        sleep 0.2 # poll interval, not a wait for readiness: the loop has a deadline
    done
    return 1
}

medulla_log_tail() {
    local lines="${1:-60}"
    if [[ -n "$MEDULLA_LOG" && -f "$MEDULLA_LOG" ]]; then
        echo "---- last $lines lines of the broker log ($MEDULLA_LOG) ----" >&2
        tail -n "$lines" "$MEDULLA_LOG" >&2
        echo "---- end of broker log ----" >&2
    fi
}

medulla_start() {
    local bin="${MEDULLA_BIN:-$MEDULLA_REPO_ROOT/target/release/medulla}"
    local timeout_s="${MEDULLA_START_TIMEOUT_S:-60}"
    if [[ ! -x "$bin" ]]; then
        echo "medulla_start: no broker binary at $bin (build it: cargo build --release -p medulla)" >&2
        return 1
    fi
    mkdir -p "$MEDULLA_REPO_ROOT/target/interop"
    MEDULLA_WORK_DIR="$(mktemp -d "$MEDULLA_REPO_ROOT/target/interop/run.XXXXXX")"
    MEDULLA_LOG="$MEDULLA_WORK_DIR/broker.log"
    mkdir -p "$MEDULLA_WORK_DIR/data"
    local port rport="" registry_args=(--registry-listen off)
    port="$(medulla_free_port)"
    if [[ "${MEDULLA_REGISTRY:-on}" != off ]]; then
        rport="$(medulla_free_port)"
        registry_args=(--registry-listen "127.0.0.1:$rport")
    fi
    trap medulla_stop EXIT
    trap 'medulla_stop; exit 130' INT
    trap 'medulla_stop; exit 143' TERM
    "$bin" serve --data-dir "$MEDULLA_WORK_DIR/data" --kafka-listen "127.0.0.1:$port" \
        "${registry_args[@]}" "$@" >"$MEDULLA_LOG" 2>&1 </dev/null &
    MEDULLA_PID=$!
    if ! medulla_wait_port 127.0.0.1 "$port" "$timeout_s" "$MEDULLA_PID" ||
        { [[ -n "$rport" ]] && ! medulla_wait_port 127.0.0.1 "$rport" "$timeout_s" "$MEDULLA_PID"; }; then
        local rc
        if medulla_alive "$MEDULLA_PID"; then
            echo "medulla_start: broker (pid $MEDULLA_PID) did not accept on 127.0.0.1:$port within ${timeout_s}s" >&2
        else
            wait "$MEDULLA_PID" && rc=0 || rc=$?
            echo "medulla_start: broker exited with status $rc before accepting on 127.0.0.1:$port" >&2
        fi
        medulla_log_tail 60
        medulla_stop
        return 1
    fi
    export MEDULLA_BOOTSTRAP="127.0.0.1:$port"
    if [[ -n "$rport" ]]; then
        export MEDULLA_REGISTRY_URL="http://127.0.0.1:$rport"
    fi
    echo "medulla_start: broker pid $MEDULLA_PID listening on $MEDULLA_BOOTSTRAP, registry ${MEDULLA_REGISTRY_URL:-off} (log: $MEDULLA_LOG)"
}

medulla_check_healthy() {
    if [[ -z "$MEDULLA_PID" ]]; then
        return 0 # not started by us: nothing to check
    fi
    if ! medulla_alive "$MEDULLA_PID"; then
        echo "medulla_check_healthy: the broker (pid $MEDULLA_PID) has died" >&2
        medulla_log_tail 60
        return 1
    fi
    if grep -n -E 'panicked at|RUST_BACKTRACE' "$MEDULLA_LOG" >&2; then
        echo "medulla_check_healthy: the broker log shows a panic (above)" >&2
        medulla_log_tail 60
        return 1
    fi
}

medulla_stop() {
    if [[ -n "$MEDULLA_PID" ]]; then
        if medulla_alive "$MEDULLA_PID"; then
            kill -TERM "$MEDULLA_PID" 2>/dev/null || true
            # Give it 10 s to shut down cleanly, then kill it.
            local end=$((SECONDS + 10))
            while medulla_alive "$MEDULLA_PID" && ((SECONDS < end)); do
                sleep 0.1
            done
            kill -KILL "$MEDULLA_PID" 2>/dev/null || true
        fi
        wait "$MEDULLA_PID" 2>/dev/null || true
        MEDULLA_PID=""
    fi
    if [[ -n "$MEDULLA_WORK_DIR" && -d "$MEDULLA_WORK_DIR/data" ]]; then
        if [[ "${MEDULLA_KEEP_DATA:-0}" == 1 ]]; then
            echo "medulla_stop: kept the data dir $MEDULLA_WORK_DIR/data" >&2
        else
            rm -rf "$MEDULLA_WORK_DIR/data"
        fi
    fi
}
