"""One consumer-group member (confluent-kafka, i.e. librdkafka) for the group scenarios.

It runs as its own OS process so a scenario can SIGKILL it. It subscribes to one topic,
processes every record it is given (processing = printing it), and commits what it processed
synchronously (enable.auto.commit=false) after each run of at most 100 records, whenever
poll() comes back empty, and in the revoke callback. Every event is one JSON line on stdout:

    {"t": wall-clock ms, "ev": "ready"}                          consumer created, subscribed
    {"t": ..., "ev": "assigned", "p": partition}                 one line per partition
    {"t": ..., "ev": "revoked", "p": partition, "lost": bool}    one line per partition
    {"t": ..., "ev": "record", "p": partition, "o": offset, "v": value}
    {"t": ..., "ev": "committed", "p": partition, "o": next offset}
    {"t": ..., "ev": "error", "code": name, "fatal": bool, "msg": text}
    {"t": ..., "ev": "armed"}                                    SIGUSR1 arrived
    {"t": ..., "ev": "closed"}                                   clean close done; exits 0

SIGUSR1 arms --revoke-delay-ms. SIGTERM asks for a clean close (consumer.close(): revoke, final commit, LeaveGroup for a
dynamic member). Partitions still assigned after close() are reported revoked at that moment,
so the driver always sees the end of an ownership interval of a member that stopped cleanly.

Usage: member_confluent.py --bootstrap H:P --group G --topic T [--strategy range|roundrobin|
cooperative-sticky, or with --protocol consumer the broker-side assignor: uniform|range]
[--instance-id ID] [--protocol classic|consumer] [--session-timeout-ms N]
[--heartbeat-ms N] [--client-id ID] [--revoke-delay-ms N]
"""

import argparse
import json
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def now_ms():
    return int(time.time() * 1000)


def emit(ev, **fields):
    fields["t"] = now_ms()
    fields["ev"] = ev
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--strategy", default="range")
    ap.add_argument("--instance-id", default=None)
    ap.add_argument("--protocol", default="classic", choices=["classic", "consumer"])
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    ap.add_argument("--heartbeat-ms", type=int, default=500)
    ap.add_argument("--client-id", default="groups-member")
    # From the first SIGUSR1 on, the revoke callback takes this long after it has given up
    # the partitions (a member with slow clean-up): a rebalance cannot complete until this
    # member is done. Armed by a signal so the group's first joins are not slowed.
    ap.add_argument("--revoke-delay-ms", type=int, default=0)
    args = ap.parse_args()

    stop = {"requested": False}

    def on_term(_signum, _frame):
        stop["requested"] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    slow_revoke = {"armed": False}

    def on_usr1(_signum, _frame):
        slow_revoke["armed"] = True
        emit("armed", revoke_delay_ms=args.revoke_delay_ms)

    signal.signal(signal.SIGUSR1, on_usr1)

    def on_error(err):
        emit("error", code=err.name(), fatal=err.fatal(), msg=err.str())

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": args.client_id,
        "group.protocol": args.protocol,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Quick reconnects after a broker restart (the default backoff grows to 10 s).
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 1000,
        "error_cb": on_error,
    }
    if args.protocol == "classic":
        conf.update(
            {
                "partition.assignment.strategy": args.strategy,
                "session.timeout.ms": args.session_timeout_ms,
                "heartbeat.interval.ms": args.heartbeat_ms,
                # The rebalance timeout (JoinGroup) of librdkafka: bounded so that a member
                # that never rejoins does not hold a rebalance for the default five minutes.
                "max.poll.interval.ms": 20000,
            }
        )
    else:
        # KIP-848: the session timeout and heartbeat interval are the broker's
        # (group.consumer.*), the assignor runs on the broker; librdkafka refuses the
        # classic settings with group.protocol=consumer.
        conf["group.remote.assignor"] = args.strategy
        conf["max.poll.interval.ms"] = 20000
    if args.instance_id:
        conf["group.instance.id"] = args.instance_id

    consumer = Consumer(conf)
    assigned = set()
    # The next offset to commit, per partition, for what was processed and not committed yet.
    pending = {}

    def commit_pending(partitions=None):
        todo = {p: o for p, o in pending.items() if partitions is None or p in partitions}
        if not todo:
            return
        tps = [TopicPartition(args.topic, p, o) for p, o in sorted(todo.items())]
        try:
            result = consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as e:
            emit("error", code=e.args[0].name(), fatal=e.args[0].fatal(), msg=f"commit: {e.args[0].str()}")
            return
        for tp in result or []:
            if tp.error is not None:
                emit("error", code=tp.error.name(), fatal=False, msg=f"commit p{tp.partition}: {tp.error.str()}")
                continue
            emit("committed", p=tp.partition, o=tp.offset)
            if pending.get(tp.partition) == tp.offset:
                del pending[tp.partition]

    def on_assign(c, partitions):
        for tp in partitions:
            assigned.add(tp.partition)
            emit("assigned", p=tp.partition)
        # confluent-kafka (incremental_)assigns after the callback returns.

    def revoke(c, partitions, lost):
        ps = {tp.partition for tp in partitions}
        if not lost:
            commit_pending(ps)
        for p in sorted(ps):
            pending.pop(p, None)
            assigned.discard(p)
            emit("revoked", p=p, lost=lost)
        if args.revoke_delay_ms and slow_revoke["armed"] and ps:
            time.sleep(args.revoke_delay_ms / 1000)
        # confluent-kafka (incremental_)unassigns after the callback returns.

    consumer.subscribe(
        [args.topic],
        on_assign=on_assign,
        on_revoke=lambda c, ps: revoke(c, ps, False),
        on_lost=lambda c, ps: revoke(c, ps, True),
    )
    emit("ready", instance_id=args.instance_id, strategy=args.strategy, protocol=args.protocol)

    # poll() one message at a time, not consume(): a rebalance callback served inside a
    # consume() call may run before messages that call already collected are returned, and
    # those would be processed after their partition was revoked. With poll(), every record
    # is processed before the next callback can run. Commit after each run of messages.
    since_commit = 0
    while not stop["requested"]:
        m = consumer.poll(0.2)
        if m is None or since_commit >= 100:
            commit_pending()
            since_commit = 0
        if m is None:
            continue
        if m.error():
            err = m.error()
            if err.code() != KafkaError._PARTITION_EOF:
                emit("error", code=err.name(), fatal=err.fatal(), msg=err.str())
            continue
        v = m.value()
        emit("record", p=m.partition(), o=m.offset(), v=v.decode() if v is not None else None)
        pending[m.partition()] = m.offset() + 1
        since_commit += 1

    commit_pending()
    consumer.close()
    for p in sorted(assigned):
        emit("revoked", p=p, lost=False, at_close=True)
    emit("closed")


if __name__ == "__main__":
    main()
