// One consumer-group member (kafkajs 2.2.4) for the group scenarios: the kafkajs counterpart
// of member_confluent.py, with the same JSON lines on stdout:
//
//   {"t": wall-clock ms, "ev": "ready"}
//   {"t": ..., "ev": "assigned", "p": partition}          one line per partition
//   {"t": ..., "ev": "revoked", "p": partition}           one line per partition
//   {"t": ..., "ev": "record", "p": partition, "o": offset, "v": value}
//   {"t": ..., "ev": "committed", "p": partition, "o": next offset}
//   {"t": ..., "ev": "error", "code": name, "msg": text}
//   {"t": ..., "ev": "closed"}
//
// kafkajs has no rebalance callbacks, only instrumentation events, and only the eager
// protocol. A partition is reported revoked when kafkajs starts rebalancing (REBALANCING,
// emitted before its JoinGroup, after the fetch loop stopped), when it crashes, or when a
// new GROUP_JOIN assignment no longer has it (the UNKNOWN_MEMBER_ID path rejoins without a
// REBALANCING event); assigned when a GROUP_JOIN (after SyncGroup) has it and it was not
// held already.
//
// Processing commits explicitly (autoCommit: false): --mode eachMessage commits each record
// after printing it; --mode eachBatch prints a batch's records, then commits the batch.
// SIGTERM: stop processing, report the assignment revoked, then disconnect (which sends
// LeaveGroup), so the revocation is reported before any other member can be given the
// partitions.
//
// Usage: node member_kafkajs.mjs --bootstrap H:P --group G --topic T [--mode eachBatch|
// eachMessage] [--session-timeout-ms N] [--heartbeat-ms N] [--client-id ID]

import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'

// kafkajs is installed for the kafkajs suite, in interop/node/node_modules.
const require = createRequire(new URL('../node/package.json', import.meta.url))
const { Kafka, PartitionAssigners, logLevel } = require('kafkajs')

const { values: args } = parseArgs({
  options: {
    bootstrap: { type: 'string' },
    group: { type: 'string' },
    topic: { type: 'string' },
    mode: { type: 'string', default: 'eachBatch' },
    strategy: { type: 'string', default: 'roundrobin' },
    'session-timeout-ms': { type: 'string', default: '6000' },
    'heartbeat-ms': { type: 'string', default: '500' },
    'client-id': { type: 'string', default: 'groups-member' },
  },
})
if (!args.bootstrap || !args.group || !args.topic) {
  process.stderr.write('usage: member_kafkajs.mjs --bootstrap H:P --group G --topic T [--mode eachBatch|eachMessage]\n')
  process.exit(2)
}
if (args.strategy !== 'roundrobin') {
  // kafkajs ships only the round-robin assigner.
  process.stderr.write(`kafkajs has no '${args.strategy}' assigner\n`)
  process.exit(2)
}

function emit(ev, fields = {}) {
  process.stdout.write(JSON.stringify({ t: Date.now(), ev, ...fields }) + '\n')
}

// kafkajs's default logger writes to stdout, which carries the events: log to stderr.
const stderrLog = () => ({ namespace, level, label, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`${new Date().toISOString()} ${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`)
}

const kafka = new Kafka({
  clientId: args['client-id'],
  brokers: [args.bootstrap],
  logLevel: logLevel.INFO,
  logCreator: stderrLog,
  retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 30 },
})
const consumer = kafka.consumer({
  groupId: args.group,
  sessionTimeout: Number(args['session-timeout-ms']),
  heartbeatInterval: Number(args['heartbeat-ms']),
  rebalanceTimeout: 20000,
  partitionAssigners: [PartitionAssigners.roundRobin],
})

const assigned = new Set()
let stopping = false

function revokeAll(why) {
  for (const p of [...assigned].sort((a, b) => a - b)) {
    assigned.delete(p)
    emit('revoked', { p, why })
  }
}

const { GROUP_JOIN, REBALANCING, CRASH } = consumer.events
consumer.on(REBALANCING, () => revokeAll('rebalancing'))
consumer.on(CRASH, ({ payload }) => {
  emit('error', { code: payload.error.type || payload.error.name, msg: String(payload.error.message), restart: payload.restart })
  revokeAll('crash')
})
consumer.on(GROUP_JOIN, ({ payload }) => {
  const now = new Set(payload.memberAssignment[args.topic] || [])
  for (const p of [...assigned]) {
    if (!now.has(p)) {
      assigned.delete(p)
      emit('revoked', { p, why: 'not in the new assignment' })
    }
  }
  for (const p of [...now].sort((a, b) => a - b)) {
    if (!assigned.has(p)) {
      assigned.add(p)
      emit('assigned', { p, generation_leader: payload.isLeader })
    }
  }
})

async function commit(partition, nextOffset) {
  await consumer.commitOffsets([{ topic: args.topic, partition, offset: String(nextOffset) }])
  emit('committed', { p: partition, o: nextOffset })
}

function record(partition, message) {
  emit('record', { p: partition, o: Number(message.offset), v: message.value === null ? null : message.value.toString() })
}

const handlers =
  args.mode === 'eachMessage'
    ? {
        eachMessage: async ({ partition, message }) => {
          if (stopping) return
          record(partition, message)
          await commit(partition, Number(message.offset) + 1)
        },
      }
    : {
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          let last = null
          for (const message of batch.messages) {
            if (stopping || !isRunning() || isStale()) break
            record(batch.partition, message)
            resolveOffset(message.offset)
            last = Number(message.offset)
          }
          if (last !== null) await commit(batch.partition, last + 1)
          await heartbeat()
        },
      }

async function shutdown() {
  if (stopping) return
  stopping = true
  // Nothing is processed from here on (the handlers check `stopping`), so the assignment
  // ends now; disconnect() then stops the runner and sends LeaveGroup.
  revokeAll('close')
  try {
    await consumer.disconnect()
  } catch (e) {
    emit('error', { code: e.type || e.name, msg: String(e.message) })
  }
  emit('closed')
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)

await consumer.connect()
await consumer.subscribe({ topics: [args.topic], fromBeginning: true })
emit('ready', { mode: args.mode, strategy: args.strategy })
await consumer.run({ autoCommit: false, ...handlers })
