#!/usr/bin/env bash
# THE command that runs Medulla's whole test suite (CI runs it through .ci/run):
#
#   1. scripts/install-test-deps.sh          clients and tools (skips what is installed)
#   2. cargo fmt --check, cargo clippy -D warnings
#   3. cargo build --release -p medulla, cargo nextest run --workspace --release
#      (release profile, so the tests reuse the broker's build)
#   4. one `medulla serve` on a free loopback port (interop/lib.sh) and, against it with
#      MEDULLA_BOOTSTRAP=127.0.0.1:PORT, interop/run-all.sh (kcat, confluent-kafka,
#      kafka-python, kafkajs); then the broker must still be alive with no panic in its log
#   5. if present: interop/librdkafka/run.sh (it starts its own broker with the 4 partitions
#      per auto-created topic that librdkafka's suite expects), bench/run.sh --quick,
#      bench/compaction.sh --quick, scripts/fuzz.sh --ci
#
# Every step runs even when an earlier one failed (except those that need the broker binary),
# and the end prints one line per step and a total. Exit status: non-zero if any step failed.
#
#   scripts/test-all.sh                  everything
#   scripts/test-all.sh --interop-only   steps 1, 4 and the librdkafka suite only, with an
#                                        already built broker (or MEDULLA_BIN=/path/to/broker)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=interop/lib.sh
. interop/lib.sh

interop_only=0
case "${1:-}" in
"") ;;
--interop-only) interop_only=1 ;;
*)
    echo "usage: $0 [--interop-only]" >&2
    exit 2
    ;;
esac

summary=()
passed=0
failed=0
skipped=0
started_at=$SECONDS

# step NAME COMMAND...: runs one step, records its outcome; returns the command's status.
step() {
    local name="$1"
    shift
    local start=$SECONDS rc=0
    echo
    echo "=================== test-all: $name ==================="
    echo "+ $*"
    "$@" || rc=$?
    if ((rc == 0)); then
        summary+=("  passed   $name ($((SECONDS - start)) s)")
        passed=$((passed + 1))
    else
        summary+=("  FAILED   $name (exit $rc, $((SECONDS - start)) s)")
        failed=$((failed + 1))
        echo "=================== test-all: $name FAILED (exit $rc) ===================" >&2
    fi
    return "$rc"
}

skip() {
    summary+=("  skipped  $1 ($2)")
    skipped=$((skipped + 1))
}

step "install test dependencies" scripts/install-test-deps.sh || true

have_broker=1
if ((interop_only == 0)); then
    step "cargo fmt" cargo fmt --all -- --check || true
    step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings || true
    step "cargo build (release)" cargo build --release -p medulla || have_broker=0
    # --no-tests=warn: a workspace with no tests yet is not a failure.
    step "cargo nextest (release)" cargo nextest run --workspace --release --no-tests=warn || true
fi

if ((have_broker)); then
    if step "start medulla serve" medulla_start; then
        step "interop suites" interop/run-all.sh || medulla_log_tail 80
        step "broker still healthy" medulla_check_healthy || true
        medulla_stop
        unset MEDULLA_BOOTSTRAP
        echo "broker log kept in $MEDULLA_LOG"
    else
        skip "interop suites" "the broker did not start"
    fi
    # librdkafka's suite starts its own broker: it needs num.partitions=4 for auto-created topics.
    if [[ -f interop/librdkafka/run.sh ]]; then
        step "librdkafka test suite" bash interop/librdkafka/run.sh || true
    else
        skip "librdkafka test suite" "no interop/librdkafka/run.sh"
    fi
else
    skip "interop suites" "the release build failed"
    skip "librdkafka test suite" "the release build failed"
fi

if ((interop_only == 0)); then
    if [[ -f bench/run.sh ]]; then
        if ((have_broker)); then
            step "benchmarks (quick)" bash bench/run.sh --quick || true
            step "compaction benchmark (quick)" bash bench/compaction.sh --quick || true
        else
            skip "benchmarks (quick)" "the release build failed"
            skip "compaction benchmark (quick)" "the release build failed"
        fi
    else
        skip "benchmarks (quick)" "no bench/run.sh"
    fi
    if [[ -f scripts/fuzz.sh ]]; then
        step "fuzz (ci)" bash scripts/fuzz.sh --ci || true
    else
        skip "fuzz (ci)" "no scripts/fuzz.sh"
    fi
fi

echo
echo "=================== test-all summary ($((SECONDS - started_at)) s) ==================="
printf '%s\n' "${summary[@]}"
echo "test-all: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
