#!/usr/bin/env bash
# Apache Kafka's bin/kafka-acls.sh as librdkafka's test suite calls it (KAFKA_PATH shim,
# see interop/librdkafka/run.sh): the flags it passes, over the Kafka protocol.
exec "${MEDULLA_RDK_PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/../kafka_admin.py" acls "$@"
