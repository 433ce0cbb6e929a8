#!/usr/bin/env bash
# Apache Kafka's bin/kafka-acls.sh as librdkafka's test suite calls it (KAFKA_PATH shim,
# see interop/librdkafka/run.sh): `medulla acl add|remove|list`, which takes
# kafka-acls.sh's own flags. Translated here: the action flag (--add, --remove, --list)
# becomes the subcommand, --bootstrap-server becomes --bootstrap, and --force (skip
# kafka-acls.sh's confirmation prompt; medulla acl remove never prompts) is dropped.
# MEDULLA_BIN is the medulla binary (run.sh sets it).
set -euo pipefail

action=""
args=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --add) action=add ;;
        --remove) action=remove ;;
        --list) action=list ;;
        --force) ;;
        --bootstrap-server) args+=(--bootstrap "${2:?--bootstrap-server needs HOST:PORT}"); shift ;;
        --bootstrap-server=*) args+=(--bootstrap "${1#*=}") ;;
        *) args+=("$1") ;;
    esac
    shift
done
if [[ -z "$action" ]]; then
    echo "kafka-acls.sh (medulla shim): one of --add, --remove, --list is needed" >&2
    exit 1
fi
exec "${MEDULLA_BIN:?MEDULLA_BIN must name the medulla binary}" acl "$action" "${args[@]}"
