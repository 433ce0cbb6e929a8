#!/usr/bin/env bash
# Runs the interop suites (real Kafka clients we did not write) against one broker.
#
#   interop/run-all.sh                 all suites
#   interop/run-all.sh kcat kafkajs    only these (names: kcat confluent-kafka kafka-python kafkajs
#                                      groups txn schema-registry schema-registry-js)
#
# The broker is MEDULLA_BOOTSTRAP (host:port) when set - scripts/test-all.sh sets it, and any
# Kafka-protocol broker can be pointed at this way. When it is unset, this script starts
# target/release/medulla itself (interop/lib.sh) and stops it at the end. The `groups` suite
# (consumer-group scenarios) starts, kills and restarts brokers of its own from MEDULLA_BIN
# (default target/release/medulla) and ignores MEDULLA_BOOTSTRAP; so does `txn` (exactly-once:
# transactional processors and brokers SIGKILLed mid-transaction). The schema-registry suites
# (confluent-kafka's and @kafkajs/confluent-schema-registry's serdes) also need the registry,
# MEDULLA_REGISTRY_URL (http://host:port), which medulla_start exports beside MEDULLA_BOOTSTRAP.
# The clients come from scripts/install-test-deps.sh (.venv-interop/, interop/node/node_modules,
# Debian's kcat). Each suite has a deadline (INTEROP_SUITE_TIMEOUT_S, default 300 s).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
# shellcheck source=interop/lib.sh
. interop/lib.sh

ALL_SUITES=(kcat confluent-kafka kafka-python kafkajs groups txn schema-registry schema-registry-js)
suites=("$@")
if ((${#suites[@]} == 0)); then
    suites=("${ALL_SUITES[@]}")
fi
timeout_s="${INTEROP_SUITE_TIMEOUT_S:-300}"
python="$root/.venv-interop/bin/python"

if [[ -z "${MEDULLA_BOOTSTRAP:-}" ]]; then
    medulla_start
fi
echo "interop: suites ${suites[*]} against $MEDULLA_BOOTSTRAP"

# Sets `dir` and `cmd` for a suite; fails if its client is not installed.
suite_command() {
    case "$1" in
    kcat) dir=.; cmd=(interop/kcat/test_kcat.sh) ;;
    confluent-kafka) dir=interop/python; cmd=("$python" -m pytest test_confluent_kafka.py) ;;
    kafka-python) dir=interop/python; cmd=("$python" -m pytest test_kafka_python.py) ;;
    kafkajs) dir=interop/node; cmd=(node --test --test-reporter=spec kafkajs.test.js) ;;
    groups) dir=.; cmd=(env MEDULLA_BIN="${MEDULLA_BIN:-$root/target/release/medulla}" "$python" -m pytest interop/groups) ;;
    txn) dir=.; cmd=(env MEDULLA_BIN="${MEDULLA_BIN:-$root/target/release/medulla}" "$python" -m pytest interop/txn) ;;
    schema-registry)
        # test_schema_*.py and test_field_*.py (field-level encryption), whichever exist.
        local files=() f
        for f in interop/python/test_schema_*.py interop/python/test_field_*.py; do
            [[ -e "$f" ]] && files+=("${f##*/}")
        done
        dir=interop/python
        cmd=("$python" -m pytest "${files[@]}")
        ;;
    schema-registry-js) dir=interop/node; cmd=(node --test --test-reporter=spec schema-registry.test.js) ;;
    *)
        echo "unknown suite '$1' (known: ${ALL_SUITES[*]})" >&2
        return 1
        ;;
    esac
    if [[ "$1" == schema-registry* && -z "${MEDULLA_REGISTRY_URL:-}" ]]; then
        echo "suite $1 needs the schema registry: MEDULLA_REGISTRY_URL is not set (MEDULLA_REGISTRY=off?)" >&2
        return 1
    fi
    if [[ "$1" == confluent-kafka || "$1" == kafka-python || "$1" == groups || "$1" == txn || "$1" == schema-registry ]] && [[ ! -x "$python" ]]; then
        echo "no $python: run scripts/install-test-deps.sh" >&2
        return 1
    fi
    if [[ ("$1" == kafkajs || "$1" == groups) && ! -d interop/node/node_modules/kafkajs ]] ||
        [[ "$1" == schema-registry-js && ! -d interop/node/node_modules/@kafkajs/confluent-schema-registry ]]; then
        echo "no interop/node/node_modules: run scripts/install-test-deps.sh" >&2
        return 1
    fi
}

passed=()
failed=()
for suite in "${suites[@]}"; do
    echo
    echo "======== interop suite: $suite ========"
    start=$SECONDS
    # Each suite runs under a deadline; `timeout` signals the suite's whole process group.
    if suite_command "$suite" && (cd "$dir" && timeout --kill-after=10 "$timeout_s" "${cmd[@]}"); then
        rc=0
    else
        rc=$?
    fi
    if ((rc == 124 || rc == 137)); then
        echo "interop suite $suite: TIMED OUT after ${timeout_s}s" >&2
    fi
    if ((rc == 0)) && medulla_check_healthy; then
        passed+=("$suite")
        echo "======== $suite: passed ($((SECONDS - start)) s) ========"
    else
        failed+=("$suite")
        echo "======== $suite: FAILED (exit $rc, $((SECONDS - start)) s) ========" >&2
    fi
done

echo
if ((${#failed[@]} > 0)); then
    echo "interop: failed suites: ${failed[*]}" >&2
    medulla_log_tail 60
fi
echo "interop: ${#passed[@]} passed, ${#failed[@]} failed"
((${#failed[@]} == 0))
