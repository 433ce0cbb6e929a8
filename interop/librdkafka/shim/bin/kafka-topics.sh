#!/usr/bin/env bash
# Apache Kafka's bin/kafka-topics.sh as librdkafka's test suite calls it (KAFKA_PATH shim,
# see interop/librdkafka/run.sh): --create and --delete of one --topic, with
# --partitions, --replication-factor (1 or -1 only: one broker) and
# repeated --config KEY=VALUE, done by `medulla topic create|delete`. Any other flag is
# an error. MEDULLA_BIN is the medulla binary (run.sh sets it).
set -euo pipefail

die() { echo "kafka-topics.sh (medulla shim): $*" >&2; exit 1; }
action="" topic="" rf=-1
remote=() extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --bootstrap-server) remote+=(--bootstrap "${2:?}"); shift ;;
        --command-config) remote+=(--command-config "${2:?}"); shift ;;
        --create) action=create ;;
        --delete) action=delete ;;
        --topic) topic="${2:?}"; shift ;;
        --partitions) extra+=(--partitions "${2:?}"); shift ;;
        --replication-factor) rf="${2:?}"; shift ;;
        --config) extra+=(--config "${2:?}"); shift ;;
        *) die "flag $1 is not supported" ;;
    esac
    shift
done
[[ -n "$action" && -n "$topic" ]] || die "--create or --delete, and --topic, are needed"
if [[ "$rf" != 1 && "$rf" != -1 ]]; then
    die "--replication-factor $rf: this shim creates topics on one broker (1 or -1 only)"
fi
if [[ "$action" == delete ]]; then extra=(); fi
exec "${MEDULLA_BIN:?MEDULLA_BIN must name the medulla binary}" topic "$action" "${remote[@]}" "$topic" "${extra[@]}"
