"""A consume-transform-produce processor on confluent-kafka's transactional API (librdkafka),
run as its own OS process so the exactly-once scenario (test_txn.py) can SIGKILL it and start
it again with the same transactional.id.

It reads the input topic with a read_committed consumer assigned to every partition (no group
membership: the group id only names whose committed offsets the transactions write), and for
each input record produces value + b":out" to the same partition of the output topic, with a
header `txn` naming the transaction (`<instance>-<n>`: instance is random per process start).
At most --batch records per transaction; then a flush (every record of the transaction is in
the log, uncommitted, before it ends); the consumed positions go into the transaction with
send_offsets_to_transaction, then commit_transaction. Every --abort-every-th transaction is
aborted instead (so all of its records are in the log too): the processor then
reads the group's committed offsets back from the broker, checks they are the positions of
its last commit, and re-assigns the input there, so the aborted input is processed again.

On start, init_transactions fences a previous instance and aborts its open transaction; the
processor then starts from the committed offsets. It exits 0 once its committed positions
reach the input's end offsets (the input is complete before it starts).

Events, one JSON line each on stdout:
    {"t": ms, "ev": "ready", "instance": id, "positions": {p: offset}, "ends": {p: offset}}
    {"t": ms, "ev": "begin", "txn": id}
    {"t": ms, "ev": "sent", "txn": id, "n": records produced so far in it, "delivered": n}
    {"t": ms, "ev": "flushed", "txn": id, "n": n, "delivered": n}   all n acknowledged
    {"t": ms, "ev": "stalled", "txn": id}     --stall-after-flush: waits for its SIGKILL
    {"t": ms, "ev": "committing", "txn": id, "n": n, "offsets": {p: offset}}
    {"t": ms, "ev": "committed", "txn": id, "n": n, "offsets": {p: offset}}
    {"t": ms, "ev": "aborting", "txn": id, "n": n}
    {"t": ms, "ev": "aborted", "txn": id, "n": n}
    {"t": ms, "ev": "error", "fatal": bool, "msg": text}
    {"t": ms, "ev": "done", "positions": {p: offset}}

--stall-after-flush N makes the N-th transaction of this instance stop after its flush and
wait to be killed, so the driver has a sure kill point with the transaction open and all its
records in the log.

Usage: processor.py --bootstrap H:P --input T --output T --group G --txn-id ID
                    [--partitions 4] [--batch 500] [--abort-every 7] [--stall-after-flush N]
"""

import argparse
import json
import os
import signal
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition


def emit(ev, **fields):
    fields["t"] = int(time.time() * 1000)
    fields["ev"] = ev
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def fail(msg):
    emit("error", fatal=True, msg=msg)
    sys.exit(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--txn-id", required=True)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--abort-every", type=int, default=7)
    ap.add_argument("--stall-after-flush", type=int, default=0)
    args = ap.parse_args()
    instance = os.urandom(4).hex()

    def on_error(err):
        emit("error", fatal=err.fatal(), msg=f"{err.name()}: {err.str()}")

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "error_cb": on_error,
        }
    )
    producer = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "transactional.id": args.txn_id,
            "linger.ms": 5,
            "error_cb": on_error,
        }
    )
    producer.init_transactions(60)
    parts = [TopicPartition(args.input, p) for p in range(args.partitions)]

    def committed_positions():
        got = consumer.committed(parts, timeout=30)
        out = {}
        for tp in got:
            if tp.error is not None:
                fail(f"OffsetFetch {args.input}[{tp.partition}]: {tp.error}")
            out[tp.partition] = tp.offset if tp.offset >= 0 else 0
        return out

    def assign_at(positions):
        consumer.assign(
            [TopicPartition(args.input, p, o if o > 0 else OFFSET_BEGINNING) for p, o in sorted(positions.items())]
        )

    ends = {}
    for tp in parts:
        _, high = consumer.get_watermark_offsets(tp, timeout=30)
        ends[tp.partition] = high
    positions = committed_positions()
    assign_at(positions)
    emit("ready", instance=instance, positions=positions, ends=ends)

    delivered = [0]
    delivery_errors = []

    def on_delivery(err, _msg):
        if err is not None:
            delivery_errors.append(err.str())
        else:
            delivered[0] += 1

    txn_no = 0
    while any(positions[p] < ends[p] for p in positions):
        txn = f"{instance}-{txn_no}"
        txn_no += 1
        producer.begin_transaction()
        emit("begin", txn=txn)
        header = [("txn", txn.encode())]
        next_pos = dict(positions)
        n = 0
        delivered[0] = 0
        while n < args.batch and any(next_pos[p] < ends[p] for p in next_pos):
            for m in consumer.consume(min(100, args.batch - n), timeout=1.0):
                if m.error():
                    if m.error().fatal():
                        fail(f"consume: {m.error().str()}")
                    continue
                p, o = m.partition(), m.offset()
                if o != next_pos[p]:
                    fail(f"input {args.input}[{p}]: got offset {o}, expected {next_pos[p]} (input offsets are contiguous)")
                producer.produce(
                    args.output, key=m.key(), value=m.value() + b":out", partition=p, headers=header, on_delivery=on_delivery
                )
                next_pos[p] = o + 1
                n += 1
            producer.poll(0)
            emit("sent", txn=txn, n=n, delivered=delivered[0])
        try:
            producer.flush(60)
            emit("flushed", txn=txn, n=n, delivered=delivered[0])
            if txn_no == args.stall_after_flush:
                emit("stalled", txn=txn)
                while True:
                    signal.pause()
            if txn_no % args.abort_every == 0:
                emit("aborting", txn=txn, n=n)
                producer.abort_transaction(60)
                emit("aborted", txn=txn, n=n)
                back = committed_positions()
                if back != positions:
                    fail(f"after an abort the committed offsets read {back}, the last commit wrote {positions}")
                assign_at(positions)
                continue
            offsets = [TopicPartition(args.input, p, o) for p, o in sorted(next_pos.items())]
            emit("committing", txn=txn, n=n, offsets=next_pos)
            producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 60)
            producer.commit_transaction(60)
        except KafkaException as e:
            fail(f"transaction {txn}: {e.args[0].str()} (fatal {e.args[0].fatal()}, abortable {e.args[0].txn_requires_abort()})")
        if delivery_errors:
            fail(f"delivery failed in committed transaction {txn}: {delivery_errors[:3]}")
        emit("committed", txn=txn, n=n, offsets=next_pos)
        positions = next_pos
    emit("done", positions=positions)
    consumer.close()


if __name__ == "__main__":
    main()
