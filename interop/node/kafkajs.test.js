// kafkajs (pure JavaScript, old protocol versions: the "old client" probe) against the broker
// named by MEDULLA_BOOTSTRAP. Run with `npm test` (node's built-in test runner) from
// interop/node, or through interop/run-all.sh.
//
// What it checks:
//   * per codec (none, gzip, snappy, lz4, zstd: see ZSTD below): admin.createTopics with 3
//     partitions, 10,000 keyed records with headers (incl. a repeated header key), tombstones
//     and explicit timestamps produced with acks=-1 in sends of 1,000; every send's base
//     offsets are contiguous per partition; then every record is read back and compared
//     exactly at the offset the producer was given.
//   * admin: createTopics (validateOnly, duplicate, unknown config -> INVALID_CONFIG),
//     fetchTopicMetadata, describeCluster, describeConfigs, alterConfigs (read back; unknown
//     name -> INVALID_CONFIG), createPartitions (3 -> 6; shrinking -> INVALID_PARTITIONS),
//     fetchTopicOffsets, fetchTopicOffsetsByTimestamp, deleteTopicRecords, deleteTopics.
//   * transactions: a producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
//     commits A (with offsets for a group by sendOffsets), aborts B (offsets sent too), commits
//     C; a group consumer with readUncommitted: false sees A and C only, one with
//     readUncommitted: true A, B and C; the group's committed offset is A's.
//
// READING BACK. kafkajs can only consume through a consumer group, and this suite was written
// before Medulla had a group coordinator. So the per-codec read-back uses kafkajs's own Fetch
// path directly: the client's internal Cluster (created through the same factory
// kafka.consumer() uses, so it has this client's configuration) finds each partition's leader
// and calls broker.fetch(), which encodes kafkajs's Fetch request and decodes the record
// batches with kafkajs's decoder and the registered codec plugins - exactly what its consumer
// runs underneath the group protocol. It relies on kafkajs internals, hence the exact kafkajs
// version pin in package.json (2.2.4 is the final kafkajs release). A group consumer
// read-back (kafkajs's consumer.run) is a test of its own; the group scenarios (members
// joining, leaving, crashing) are in interop/groups.
//
// ZSTD: kafkajs has no built-in zstd codec, and its plugin `@kafkajs/zstd` depends on the
// native module `cppzst`, which fails to compile against Node 20's headers. A kafkajs codec is
// just { compress(encoder), decompress(buffer) }, so ZstdCodec below wraps the WebAssembly
// build of the reference zstd library (@bokuweb/zstd-wasm): no native build at all.

'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const {
  Kafka,
  CompressionTypes,
  CompressionCodecs,
  ConfigResourceTypes,
  Partitioners,
  logLevel,
} = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const LZ4Codec = require('kafkajs-lz4')

const zstd = require('@bokuweb/zstd-wasm')

const zstdReady = zstd.init()
const ZstdCodec = () => ({
  async compress(encoder) {
    await zstdReady
    return Buffer.from(zstd.compress(encoder.buffer, 3))
  },
  async decompress(buffer) {
    await zstdReady
    return Buffer.from(zstd.decompress(buffer))
  },
})

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec
CompressionCodecs[CompressionTypes.ZSTD] = ZstdCodec

const BOOTSTRAP = process.env.MEDULLA_BOOTSTRAP
const RECORDS_PER_CODEC = 10000
const SEND_CHUNK = 1000
const PARTITIONS = 3
const CODECS = [
  ['none', CompressionTypes.None],
  ['gzip', CompressionTypes.GZIP],
  ['snappy', CompressionTypes.Snappy],
  ['lz4', CompressionTypes.LZ4],
  ['zstd', CompressionTypes.ZSTD],
]

if (!BOOTSTRAP) {
  throw new Error('MEDULLA_BOOTSTRAP is not set: run through interop/run-all.sh or export MEDULLA_BOOTSTRAP=host:port')
}

const kafka = new Kafka({
  clientId: 'medulla-interop-kafkajs',
  brokers: [BOOTSTRAP],
  logLevel: logLevel.ERROR,
  retry: { retries: 3 },
})
const admin = kafka.admin()
let producer

before(async () => {
  await admin.connect()
  producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    idempotent: false, // plain producer; the transactions test covers the idempotent one
    maxInFlightRequests: 1, // per-partition order without idempotence
  })
  await producer.connect()
})

after(async () => {
  if (producer) await producer.disconnect()
  await admin.disconnect()
})

function uniqueTopic(purpose) {
  return `interop-kafkajs-${purpose}-${crypto.randomBytes(6).toString('hex')}`
}

// Polls condition() until it returns a truthy value (returned), failing at the deadline.
async function waitUntil(condition, seconds, what) {
  const end = Date.now() + seconds * 1000
  let last
  for (;;) {
    last = await condition()
    if (last) return last
    if (Date.now() >= end) {
      assert.fail(`timed out after ${seconds}s waiting for ${what}; last value ${JSON.stringify(last)}`)
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

async function topicExists(topic) {
  return (await admin.listTopics()).includes(topic)
}

async function partitionCount(topic) {
  if (!(await topicExists(topic))) return null
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  return md.topics[0].partitions.length
}

async function createTopic(topic, numPartitions, configEntries = []) {
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }],
    waitForLeaders: true,
  })
  assert.equal(created, true, `createTopics(${topic}) reported the topic already existed`)
  await waitUntil(async () => (await partitionCount(topic)) === numPartitions, 30, `${topic} to have ${numPartitions} partitions`)
}

// kafkajs reports broker errors as KafkaJSProtocolError (type = Kafka error name), possibly
// wrapped in a KafkaJSAggregateError or a retry error.
function errorTypes(e) {
  const types = new Set()
  const visit = err => {
    if (!err) return
    if (err.type) types.add(err.type)
    for (const inner of err.errors || []) visit(inner)
    visit(err.originalError)
    visit(err.cause)
  }
  visit(e)
  return [...types]
}

async function expectKafkaError(what, type, fn) {
  let error
  try {
    await fn()
  } catch (e) {
    error = e
  }
  assert.ok(error, `${what}: expected ${type}, but it succeeded`)
  const types = errorTypes(error)
  assert.ok(types.includes(type), `${what}: expected ${type}, got ${types.join(', ') || error}`)
  console.log(`  ${what}: got ${type} as expected`)
}

function makeRecord(i, codec, baseTs) {
  let value = Buffer.from(`value-${String(i).padStart(5, '0')}-${codec}-` + 'lorem ipsum dolor sit amet '.repeat(1 + (i % 7)))
  if (i % 1000 === 999) value = null // tombstone
  else if (i % 1000 === 123) value = Buffer.from(Array.from({ length: 768 }, (_, k) => k % 256))
  else if (i % 1000 === 500) value = Buffer.alloc(0)
  const headers = i % 1000 === 777 ? {} : { idx: String(i), codec, dup: ['first', 'second'], empty: '' }
  return {
    key: Buffer.from(`key-${String(i).padStart(5, '0')}`),
    value,
    headers,
    timestamp: String(baseTs + i),
    partition: i % PARTITIONS,
  }
}

// Headers as kafkajs's decoder returns them: values are Buffers, a repeated key an array.
function normalizeHeaders(headers) {
  const out = {}
  for (const [k, v] of Object.entries(headers || {})) {
    out[k] = Array.isArray(v) ? v.map(x => Buffer.from(x)) : Buffer.from(v)
  }
  return out
}

// Sends records in chunks; returns a Map "partition:offset" -> record index. Within one send,
// kafkajs writes one batch per partition in message order, so a message's offset is its
// partition's baseOffset plus its rank among that send's messages for the partition.
async function produce(topic, records, compression) {
  const positions = new Map()
  const next = new Array(PARTITIONS).fill(0)
  for (let start = 0; start < records.length; start += SEND_CHUNK) {
    const chunk = records.slice(start, start + SEND_CHUNK)
    const meta = await producer.send({ topic, acks: -1, compression, messages: chunk })
    const base = new Map(meta.map(m => [m.partition, m]))
    const rank = new Array(PARTITIONS).fill(0)
    chunk.forEach((r, k) => {
      const m = base.get(r.partition)
      assert.ok(m && m.errorCode === 0, `${topic}: no successful result for partition ${r.partition}: ${JSON.stringify(meta)}`)
      if (rank[r.partition] === 0) {
        assert.equal(Number(m.baseOffset), next[r.partition], `${topic}[${r.partition}]: send at record ${start} got base offset ${m.baseOffset}, expected ${next[r.partition]}`)
      }
      positions.set(`${r.partition}:${Number(m.baseOffset) + rank[r.partition]}`, start + k)
      rank[r.partition] += 1
    })
    rank.forEach((n, p) => (next[p] += n))
  }
  return { positions, counts: next }
}

// The internal Cluster factory of this Kafka instance (see READING BACK above).
function internalCluster() {
  const factory = Object.getOwnPropertySymbols(kafka).find(s => s.description === 'private:Kafka:createCluster')
  assert.ok(factory, 'kafkajs internals changed: no private:Kafka:createCluster (kafkajs version pin?)')
  return kafka[factory]({ allowAutoTopicCreation: false })
}

// Reads partitions [0, counts.length) from `from[p]` up to counts[p] with kafkajs's Fetch.
// Returns Map "partition:offset" -> decoded message.
async function fetchAll(topic, counts, from = counts.map(() => 0)) {
  const cluster = internalCluster()
  await cluster.connect()
  try {
    await cluster.addTargetTopic(topic)
    const got = new Map()
    const end = Date.now() + 60000
    for (let p = 0; p < counts.length; p++) {
      let offset = from[p]
      while (offset < counts[p]) {
        assert.ok(Date.now() < end, `timed out reading ${topic}[${p}] at offset ${offset} of ${counts[p]}`)
        const leader = cluster.findTopicPartitionMetadata(topic).find(m => m.partitionId === p).leader
        const broker = await cluster.findBroker({ nodeId: leader })
        const res = await broker.fetch({
          maxWaitTime: 500,
          topics: [{ topic, partitions: [{ partition: p, fetchOffset: String(offset), maxBytes: 1048576 }] }],
        })
        const part = res.responses[0].partitions[0]
        assert.equal(part.errorCode, 0, `${topic}[${p}] fetch at ${offset}: error code ${part.errorCode}`)
        for (const m of part.messages) {
          const o = Number(m.offset)
          if (o < offset) continue // a fetch returns whole batches
          assert.equal(o, offset, `${topic}[${p}]: expected offset ${offset} next, fetch returned ${o}`)
          got.set(`${p}:${o}`, m)
          offset = o + 1
        }
      }
    }
    return got
  } finally {
    await cluster.disconnect()
  }
}

function compareRecords(what, records, positions, got) {
  const problems = []
  for (const [pos, i] of positions) {
    const m = got.get(pos)
    if (!m) {
      problems.push(`${pos}: record #${i} not read back`)
      continue
    }
    const want = records[i]
    const diffs = []
    if (m.key === null || !want.key.equals(m.key)) diffs.push(`key ${m.key}`)
    if (want.value === null ? m.value !== null : m.value === null || !want.value.equals(m.value)) diffs.push(`value ${m.value && m.value.toString()}`)
    if (m.timestamp !== want.timestamp) diffs.push(`timestamp ${m.timestamp} (want ${want.timestamp})`)
    try {
      assert.deepStrictEqual(normalizeHeaders(m.headers), normalizeHeaders(want.headers))
    } catch {
      diffs.push(`headers ${JSON.stringify(m.headers)} (want ${JSON.stringify(want.headers)})`)
    }
    if (diffs.length) problems.push(`${pos} (record #${i}): ${diffs.join('; ')}`)
  }
  if (got.size !== positions.size) problems.push(`read ${got.size} records, produced ${positions.size}`)
  if (problems.length) {
    assert.fail(`${what}: read-back differs from what was produced (${problems.length} problems):\n  ${problems.slice(0, 20).join('\n  ')}`)
  }
  console.log(`  ${what}: ${got.size} records identical (key, value, headers incl. repeated key, timestamp) at the offsets the producer was given`)
}

for (const [codec, compression] of CODECS) {
  test(`produce ${RECORDS_PER_CODEC} records with ${codec} and read them back with kafkajs's Fetch`, { timeout: 120000 }, async () => {
    const topic = uniqueTopic(codec)
    await createTopic(topic, PARTITIONS)
    const baseTs = (Math.floor(Date.now() / 1000) - 3600) * 1000
    const records = Array.from({ length: RECORDS_PER_CODEC }, (_, i) => makeRecord(i, codec, baseTs))
    const { positions, counts } = await produce(topic, records, compression)
    console.log(`  produced ${records.length} records to ${topic} (${codec}, acks=-1), per partition ${counts}`)
    const got = await fetchAll(topic, counts)
    compareRecords(`${topic} (${codec})`, records, positions, got)
  })
}

test(
  'consumer group read-back (kafkajs consumer)',
  { timeout: 120000 },
  async () => {
    const topic = uniqueTopic('group')
    await createTopic(topic, PARTITIONS)
    const baseTs = (Math.floor(Date.now() / 1000) - 3600) * 1000
    const records = Array.from({ length: RECORDS_PER_CODEC }, (_, i) => makeRecord(i, 'gzip', baseTs))
    const { positions } = await produce(topic, records, CompressionTypes.GZIP)
    const consumer = kafka.consumer({ groupId: `interop-kafkajs-${crypto.randomBytes(6).toString('hex')}` })
    const got = new Map()
    await consumer.connect()
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      let done
      const all = new Promise(resolve => (done = resolve))
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          got.set(`${partition}:${Number(message.offset)}`, message)
          if (got.size >= records.length) done()
        },
      })
      let timer
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out: consumed ${got.size} of ${records.length}`)), 90000)
      })
      await Promise.race([all, timeout]).finally(() => clearTimeout(timer))
    } finally {
      await consumer.disconnect()
    }
    compareRecords(`${topic} (group consumer)`, records, positions, got)
  }
)

test('createTopics: validateOnly, duplicate, unknown config', async () => {
  const topic = uniqueTopic('create')
  // waitForLeaders: false, because a validate-only create makes no topic to wait for: with the
  // default (true) kafkajs asks Metadata for it and fails on UNKNOWN_TOPIC_OR_PARTITION, against
  // Apache Kafka as well.
  await admin.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] })
  assert.equal(await topicExists(topic), false, `createTopics(validateOnly) created ${topic}`)
  console.log('  createTopics(validateOnly: true) created nothing')
  await createTopic(topic, 3)
  console.log(`  createTopics created ${topic} with 3 partitions`)
  const again = await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] })
  assert.equal(again, false, 'createTopics of an existing topic should report false (TOPIC_ALREADY_EXISTS)')
  console.log('  createTopics of an existing topic: false (TOPIC_ALREADY_EXISTS)')
  const bad = uniqueTopic('badconfig')
  await expectKafkaError('createTopics with an unknown config name', 'INVALID_CONFIG', () =>
    admin.createTopics({ topics: [{ topic: bad, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'no.such.config', value: '1' }] }] })
  )
})

test('fetchTopicMetadata and describeCluster', async () => {
  const topic = uniqueTopic('metadata')
  await createTopic(topic, 3)
  const cluster = await admin.describeCluster()
  const brokerIds = cluster.brokers.map(b => b.nodeId)
  assert.ok(brokerIds.length > 0 && cluster.clusterId, `describeCluster: ${JSON.stringify(cluster)}`)
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  const partitions = md.topics[0].partitions.map(p => [p.partitionId, p.leader]).sort((a, b) => a[0] - b[0])
  assert.deepEqual(partitions.map(p => p[0]), [0, 1, 2])
  for (const [id, leader] of partitions) assert.ok(brokerIds.includes(leader), `partition ${id} leader ${leader} not in ${brokerIds}`)
  console.log(`  describeCluster: cluster ${cluster.clusterId}, brokers ${brokerIds}; fetchTopicMetadata: partitions 0..2 with leaders`)
})

async function topicConfig(topic, name) {
  const res = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false })
  const entries = res.resources[0].configEntries
  return { entries, entry: entries.find(e => e.configName === name) }
}

test('describeConfigs and alterConfigs', async () => {
  const topic = uniqueTopic('configs')
  await createTopic(topic, 1)
  const { entries, entry } = await topicConfig(topic, 'retention.ms')
  assert.ok(entry, `describeConfigs: no retention.ms among ${entries.map(e => e.configName)}`)
  console.log(`  describeConfigs: ${entries.length} entries, retention.ms=${entry.configValue}`)
  await admin.alterConfigs({
    validateOnly: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
  })
  const after = (await topicConfig(topic, 'retention.ms')).entry
  assert.equal(after && after.configValue, '3600000', 'retention.ms read back after alterConfigs')
  console.log('  alterConfigs retention.ms=3600000: read back 3600000')
  await expectKafkaError('alterConfigs with an unknown config name', 'INVALID_CONFIG', () =>
    admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'no.such.config', value: '1' }] }],
    })
  )
})

test('createPartitions 3 -> 6', async () => {
  const topic = uniqueTopic('partitions')
  await createTopic(topic, 3)
  await admin.createPartitions({ topicPartitions: [{ topic, count: 6 }] })
  await waitUntil(async () => (await partitionCount(topic)) === 6, 30, `${topic} to have 6 partitions`)
  console.log(`  createPartitions ${topic} 3 -> 6: metadata shows 6`)
  await expectKafkaError('createPartitions 6 -> 4', 'INVALID_PARTITIONS', () =>
    admin.createPartitions({ topicPartitions: [{ topic, count: 4 }] })
  )
})

test('fetchTopicOffsets, fetchTopicOffsetsByTimestamp, deleteTopicRecords', async () => {
  const topic = uniqueTopic('offsets')
  await createTopic(topic, 1)
  const baseTs = (Math.floor(Date.now() / 1000) - 3600) * 1000
  const records = Array.from({ length: 100 }, (_, i) => ({ ...makeRecord(i, 'none', baseTs), partition: 0, timestamp: String(baseTs + 10 * i) }))
  await produce(topic, records, CompressionTypes.None)

  const offsets = await admin.fetchTopicOffsets(topic)
  assert.deepEqual(offsets.map(o => [o.partition, o.low, o.high]), [[0, '0', '100']], `fetchTopicOffsets ${JSON.stringify(offsets)}`)
  const byTs = async ts => (await admin.fetchTopicOffsetsByTimestamp(topic, ts))[0].offset
  assert.equal(await byTs(baseTs + 400), '40', 'fetchTopicOffsetsByTimestamp(ts of #40)')
  assert.equal(await byTs(baseTs + 395), '40', 'fetchTopicOffsetsByTimestamp(between #39 and #40)')
  assert.equal(await byTs(baseTs - 1000), '0', 'fetchTopicOffsetsByTimestamp(before all)')
  // kafkajs maps "no such offset" (-1) to the high watermark itself
  assert.equal(await byTs(baseTs + 100000), '100', 'fetchTopicOffsetsByTimestamp(after all)')
  console.log('  fetchTopicOffsets low 0 high 100; fetchTopicOffsetsByTimestamp: #40 -> 40, between -> 40, before -> 0, after -> 100')

  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '30' }] })
  const afterDelete = await admin.fetchTopicOffsets(topic)
  assert.deepEqual(afterDelete.map(o => [o.low, o.high]), [['30', '100']], `after deleteTopicRecords: ${JSON.stringify(afterDelete)}`)
  const got = await fetchAll(topic, [100], [30])
  assert.equal(got.size, 70)
  console.log('  deleteTopicRecords before 30: low 30, high 100, offsets 30..99 still readable')
})

test('deleteTopics', async () => {
  const topic = uniqueTopic('delete')
  await createTopic(topic, 2)
  await admin.deleteTopics({ topics: [topic] })
  await waitUntil(async () => !(await topicExists(topic)), 30, `${topic} to leave metadata`)
  console.log(`  deleteTopics ${topic}: gone from metadata`)
  await expectKafkaError('deleteTopics of a topic that does not exist', 'UNKNOWN_TOPIC_OR_PARTITION', () =>
    admin.deleteTopics({ topics: [topic] })
  )
})

// Values of `topic` read from the beginning by a group consumer (a fresh group) with the given
// readUncommitted, until done(values) holds.
async function readValues(topic, readUncommitted, done) {
  const consumer = kafka.consumer({ groupId: `interop-kafkajs-read-${crypto.randomBytes(6).toString('hex')}`, readUncommitted })
  const values = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    let finish
    const all = new Promise(resolve => (finish = resolve))
    await consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value.toString())
        if (done(values)) finish()
      },
    })
    let timer
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out (readUncommitted ${readUncommitted}): read ${values.length} values`)), 90000)
    })
    await Promise.race([all, timeout]).finally(() => clearTimeout(timer))
  } finally {
    await consumer.disconnect()
  }
  return values
}

test('transactions: commit, abort, sendOffsets; read back with readUncommitted false and true', { timeout: 120000 }, async () => {
  const topic = uniqueTopic('txn')
  const source = uniqueTopic('txnsrc')
  const groupId = `interop-kafkajs-txn-${crypto.randomBytes(6).toString('hex')}`
  await createTopic(topic, PARTITIONS)
  await createTopic(source, 1)
  const N = 30
  const messages = tag => Array.from({ length: N }, (_, i) => ({ value: `${tag}-${i}`, partition: i % PARTITIONS }))
  const offsets = offset => ({ consumerGroupId: groupId, topics: [{ topic: source, partitions: [{ partition: 0, offset }] }] })
  const txProducer = kafka.producer({
    transactionalId: `interop-kafkajs-${crypto.randomBytes(6).toString('hex')}`,
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await txProducer.connect()
  try {
    let txn = await txProducer.transaction()
    await txn.send({ topic, messages: messages('A') })
    await txn.sendOffsets(offsets('5'))
    await txn.commit()
    txn = await txProducer.transaction()
    await txn.send({ topic, messages: messages('B') })
    await txn.sendOffsets(offsets('7'))
    await txn.abort()
    txn = await txProducer.transaction()
    await txn.send({ topic, messages: messages('C') })
    await txn.commit()
  } finally {
    await txProducer.disconnect()
  }
  console.log(`  ${topic}: transaction A (${N} records, offset 5 for ${groupId}) committed, B (offset 7) aborted, C committed`)
  const tags = values => Object.fromEntries(['A', 'B', 'C'].map(t => [t, values.filter(v => v.startsWith(`${t}-`)).length]))
  const cDone = values => tags(values).C === N
  const want = ts => ts.flatMap(t => Array.from({ length: N }, (_, i) => `${t}-${i}`)).sort()
  const [committed, uncommitted] = await Promise.all([readValues(topic, false, cDone), readValues(topic, true, cDone)])
  assert.deepEqual([...committed].sort(), want(['A', 'C']), `readUncommitted: false sees ${JSON.stringify(tags(committed))} of A, B, C`)
  assert.deepEqual([...uncommitted].sort(), want(['A', 'B', 'C']), `readUncommitted: true sees ${JSON.stringify(tags(uncommitted))} of A, B, C`)
  const fetched = await admin.fetchOffsets({ groupId, topics: [source] })
  const got = fetched[0].partitions.find(p => p.partition === 0).offset
  assert.equal(got, '5', `the group's committed offset is ${got}: want 5 (A committed, B aborted)`)
  console.log(`  readUncommitted false: ${JSON.stringify(tags(committed))}; true: ${JSON.stringify(tags(uncommitted))}; group offset ${got}`)
})
