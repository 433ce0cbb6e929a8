// kafkajs (2.2.4) over SASL_SSL for the security suite: produces --count records to --topic,
// then reads them back in group --group, and prints one JSON line on stdout:
//
//   {"ok": true, "produced": [values], "consumed": [values]}
//   {"ok": false, "stage": "produce"|"consume", "error": kafkajs error name, "type": Kafka
//    error type, "message": text}
//
// Usage: node client_kafkajs.mjs --bootstrap H:P --ca CA.pem --mechanism plain|scram-sha-256|
//        scram-sha-512 --username U --password P --topic T --group G [--count N] [--client-id ID]

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'

// kafkajs is installed for the kafkajs suite, in interop/node/node_modules.
const require = createRequire(new URL('../node/package.json', import.meta.url))
const { Kafka, logLevel } = require('kafkajs')

const { values: args } = parseArgs({
  options: {
    bootstrap: { type: 'string' },
    ca: { type: 'string' },
    mechanism: { type: 'string' },
    username: { type: 'string' },
    password: { type: 'string' },
    topic: { type: 'string' },
    group: { type: 'string' },
    count: { type: 'string', default: '3' },
    'client-id': { type: 'string', default: 'security-kafkajs' },
  },
})

const kafka = new Kafka({
  clientId: args['client-id'],
  brokers: [args.bootstrap],
  ssl: { ca: [readFileSync(args.ca)] },
  sasl: { mechanism: args.mechanism, username: args.username, password: args.password },
  connectionTimeout: 5000,
  // An authentication failure is not retried by kafkajs; other errors get a few tries.
  retry: { retries: 3, initialRetryTime: 100 },
  logLevel: logLevel.NOTHING,
})

function fail(stage, e) {
  console.log(JSON.stringify({ ok: false, stage, error: e.name, type: e.type ?? null, message: e.message }))
  process.exit(0)
}

const count = Number(args.count)
const produced = Array.from({ length: count }, (_, i) => `kafkajs-${i}-${Math.random().toString(16).slice(2, 8)}`)

const producer = kafka.producer()
try {
  await producer.connect()
  await producer.send({ topic: args.topic, messages: produced.map((value) => ({ value })) })
  await producer.disconnect()
} catch (e) {
  await producer.disconnect().catch(() => {})
  fail('produce', e)
}

const consumer = kafka.consumer({ groupId: args.group, sessionTimeout: 10000, heartbeatInterval: 500 })
const consumed = []
try {
  await consumer.connect()
  await consumer.subscribe({ topic: args.topic, fromBeginning: true })
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${consumed.length} of ${count} records in 30 s`)), 30000)
    consumer
      .run({
        eachMessage: async ({ message }) => {
          consumed.push(message.value.toString())
          if (consumed.length >= count) {
            clearTimeout(timer)
            resolve()
          }
        },
      })
      .catch(reject)
  })
  await consumer.disconnect()
} catch (e) {
  await consumer.disconnect().catch(() => {})
  fail('consume', e)
}
console.log(JSON.stringify({ ok: true, produced, consumed }))
