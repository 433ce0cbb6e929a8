"""The part of Apache Kafka's command-line tools librdkafka's test suite calls.

    kafka_admin.py acls   <kafka-acls.sh flags>     (bin/kafka-acls.sh)
    kafka_admin.py topics <kafka-topics.sh flags>   (bin/kafka-topics.sh)
    kafka_admin.py scram-user --bootstrap-server B --user U --password P

Run by the KAFKA_PATH shim interop/librdkafka/run.sh puts in front of the suite, with
confluent-kafka's AdminClient (CreateAcls / DeleteAcls, CreateTopics / DeleteTopics,
AlterUserScramCredentials). Only the flags the suite passes are understood; anything
else is an error, never silently ignored. Exit status 0 on success, 1 with a message.
"""

import argparse
import sys

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

TIMEOUT_S = 30


def admin(bootstrap, command_config):
    conf = {"bootstrap.servers": bootstrap}
    if command_config:
        with open(command_config, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    conf[k.strip()] = v.strip()
    return AdminClient(conf)


def wait_all(futures, what):
    failed = 0
    for key, fut in futures.items():
        try:
            fut.result(timeout=TIMEOUT_S)
        except Exception as e:  # noqa: BLE001 - reported and counted
            print(f"{what} {key}: {e}", file=sys.stderr)
            failed += 1
    return failed


def operation(name):
    norm = name.replace("-", "").replace("_", "").upper()
    for op in AclOperation:
        if op.name.replace("_", "") == norm:
            return op
    raise SystemExit(f"kafka-acls.sh: unknown operation {name}")


def acls(argv):
    p = argparse.ArgumentParser(prog="kafka-acls.sh")
    p.add_argument("--bootstrap-server", required=True)
    p.add_argument("--command-config")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--add", action="store_true")
    action.add_argument("--remove", action="store_true")
    p.add_argument("--force", action="store_true")
    p.add_argument("--allow-principal", action="append", default=[])
    p.add_argument("--deny-principal", action="append", default=[])
    p.add_argument("--allow-host", action="append", default=[])
    p.add_argument("--deny-host", action="append", default=[])
    p.add_argument("--operation", action="append", default=[])
    p.add_argument("--topic", action="append", default=[])
    p.add_argument("--group", action="append", default=[])
    p.add_argument("--cluster", action="store_true")
    p.add_argument("--transactional-id", action="append", default=[])
    p.add_argument("--resource-pattern-type", default="literal")
    a = p.parse_args(argv)

    pattern = ResourcePatternType[a.resource_pattern_type.upper()]
    resources = [(ResourceType.TOPIC, t) for t in a.topic]
    resources += [(ResourceType.GROUP, g) for g in a.group]
    resources += [(ResourceType.TRANSACTIONAL_ID, t) for t in a.transactional_id]
    if a.cluster:
        resources.append((ResourceType.BROKER, "kafka-cluster"))
    if not resources:
        raise SystemExit("kafka-acls.sh: no resource (--topic, --group, --cluster, --transactional-id)")
    ops = [operation(o) for o in (a.operation or ["All"])]
    entries = [(pr, h, AclPermissionType.ALLOW) for pr in a.allow_principal for h in (a.allow_host or ["*"])]
    entries += [(pr, h, AclPermissionType.DENY) for pr in a.deny_principal for h in (a.deny_host or ["*"])]

    client = admin(a.bootstrap_server, a.command_config)
    if a.add:
        if not entries:
            raise SystemExit("kafka-acls.sh --add: no --allow-principal or --deny-principal")
        bindings = [
            AclBinding(rt, name, pattern, pr, host, op, perm)
            for rt, name in resources
            for pr, host, perm in entries
            for op in ops
        ]
        return 1 if wait_all(client.create_acls(bindings, request_timeout=TIMEOUT_S), "CreateAcls") else 0
    if entries:
        filters = [
            AclBindingFilter(rt, name, pattern, pr, host, op, perm)
            for rt, name in resources
            for pr, host, perm in entries
            for op in ops
        ]
    else:
        filters = [
            AclBindingFilter(rt, name, pattern, None, None, AclOperation.ANY, AclPermissionType.ANY)
            for rt, name in resources
        ]
    return 1 if wait_all(client.delete_acls(filters, request_timeout=TIMEOUT_S), "DeleteAcls") else 0


def topics(argv):
    p = argparse.ArgumentParser(prog="kafka-topics.sh")
    p.add_argument("--bootstrap-server", required=True)
    p.add_argument("--command-config")
    action = p.add_mutually_exclusive_group(required=True)
    action.add_argument("--create", action="store_true")
    action.add_argument("--delete", action="store_true")
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=-1)
    p.add_argument("--replication-factor", type=int, default=-1)
    p.add_argument("--config", action="append", default=[])
    a = p.parse_args(argv)

    client = admin(a.bootstrap_server, a.command_config)
    if a.create:
        config = dict(c.split("=", 1) for c in a.config)
        new = NewTopic(a.topic, a.partitions, a.replication_factor, config=config)
        return 1 if wait_all(client.create_topics([new], request_timeout=TIMEOUT_S), "CreateTopics") else 0
    return 1 if wait_all(client.delete_topics([a.topic], request_timeout=TIMEOUT_S), "DeleteTopics") else 0


def scram_user(argv):
    p = argparse.ArgumentParser(prog="scram-user")
    p.add_argument("--bootstrap-server", required=True)
    p.add_argument("--command-config")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--iterations", type=int, default=4096)
    a = p.parse_args(argv)

    client = admin(a.bootstrap_server, a.command_config)
    upserts = [
        UserScramCredentialUpsertion(a.user, ScramCredentialInfo(m, a.iterations), a.password.encode())
        for m in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)
    ]
    failed = 0
    for u in upserts:  # one mechanism per request: a user appears once per request
        failed += wait_all(client.alter_user_scram_credentials([u], request_timeout=TIMEOUT_S), "AlterUserScramCredentials")
    return 1 if failed else 0


def main():
    commands = {"acls": acls, "topics": topics, "scram-user": scram_user}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        raise SystemExit(f"usage: kafka_admin.py {{{','.join(commands)}}} ...")
    sys.exit(commands[sys.argv[1]](sys.argv[2:]))


if __name__ == "__main__":
    main()
