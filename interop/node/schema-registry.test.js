// @kafkajs/confluent-schema-registry against Medulla's schema registry
// (MEDULLA_REGISTRY_URL), with kafkajs producing to and consuming from Medulla
// (MEDULLA_BOOTSTRAP). Run through interop/run-all.sh (suite schema-registry-js).
//
// What it checks, for Avro, JSON Schema and Protobuf (the library supports all three):
//   * register({type, schema}, {subject}) answers an id; on a subject's first registration
//     the library also sets its compatibility (GET /config/{subject} answering 404, then
//     PUT /config/{subject}); a compatible evolution registers a new id, the same schema
//     again answers the same id, an incompatible evolution is refused with HTTP 409;
//   * encode(id, payload) framed values are produced with kafkajs, consumed with a kafkajs
//     group consumer and decode()d to what was encoded (Avro v1 data also through a v2
//     reader schema); a decoder in a fresh client fetches the writer schemas by id.
//   * getLatestSchemaId / getRegistryIdBySchema (lookup) agree with register.
// Protobuf here is the library's own framing (no message-index bytes), read back by the
// same library: the test is the registry's side of it (text schemas, references-free).

'use strict'

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { Kafka, logLevel } = require('kafkajs')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

const BOOTSTRAP = process.env.MEDULLA_BOOTSTRAP
const REGISTRY = process.env.MEDULLA_REGISTRY_URL
if (!BOOTSTRAP) {
  throw new Error('MEDULLA_BOOTSTRAP is not set: run through interop/run-all.sh or export MEDULLA_BOOTSTRAP=host:port')
}
if (!REGISTRY) {
  throw new Error(
    'MEDULLA_REGISTRY_URL is not set: run through interop/run-all.sh or export MEDULLA_REGISTRY_URL=http://host:port'
  )
}

const kafka = new Kafka({
  clientId: 'medulla-interop-schema-registry',
  brokers: [BOOTSTRAP],
  logLevel: logLevel.ERROR,
  retry: { retries: 3 },
})
const admin = kafka.admin()
const registry = new SchemaRegistry({ host: REGISTRY })
let producer

before(async () => {
  await admin.connect()
  producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
})

after(async () => {
  if (producer) await producer.disconnect()
  await admin.disconnect()
})

function uniqueTopic(purpose) {
  return `interop-srjs-${purpose}-${crypto.randomBytes(6).toString('hex')}`
}

// register() must be refused by the registry with HTTP 409 (incompatible schema).
async function expectIncompatible(what, fn) {
  await assert.rejects(fn, err => {
    assert.equal(err.status, 409, `${what}: ${err}`)
    return true
  })
  console.log(`  ${what}: refused with 409 as expected`)
}

// Produces the values to a new one-partition topic, reads them back with a group consumer
// and returns the raw values in offset order.
async function roundTrip(topic, values) {
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
  await producer.send({ topic, acks: -1, messages: values.map(value => ({ value })) })
  const consumer = kafka.consumer({ groupId: `interop-srjs-${crypto.randomBytes(6).toString('hex')}` })
  const got = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    let finish
    const all = new Promise(resolve => (finish = resolve))
    await consumer.run({
      eachMessage: async ({ message }) => {
        got.push(message.value)
        if (got.length === values.length) finish()
      },
    })
    let timer
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: read ${got.length} of ${values.length} from ${topic}`)), 60000)
    })
    await Promise.race([all, timeout]).finally(() => clearTimeout(timer))
  } finally {
    await consumer.disconnect()
  }
  assert.deepEqual(got, values, 'the broker returns the encoded bytes unchanged')
  return got
}

function avroRecord(fields) {
  return JSON.stringify({ type: 'record', name: 'LabResult', namespace: 'org.example.interopjs', fields })
}

test('Avro: register, evolve, encode, produce, consume, decode', { timeout: 90000 }, async () => {
  const topic = uniqueTopic('avro')
  const subject = `${topic}-value`
  const v1 = avroRecord([
    { name: 'patient', type: 'string' },
    { name: 'value', type: 'double' },
  ])
  const v2 = avroRecord([
    { name: 'patient', type: 'string' },
    { name: 'value', type: 'double' },
    { name: 'unit', type: 'string', default: 'mg/dL' },
  ])
  const bad = avroRecord([
    { name: 'patient', type: 'string' },
    { name: 'value', type: 'double' },
    { name: 'lab', type: 'string' },
  ])
  const { id: id1 } = await registry.register({ type: SchemaType.AVRO, schema: v1 }, { subject })
  const { id: id2 } = await registry.register({ type: SchemaType.AVRO, schema: v2 }, { subject })
  assert.notEqual(id1, id2)
  assert.equal((await registry.register({ type: SchemaType.AVRO, schema: v2 }, { subject })).id, id2, 'idempotent')
  assert.equal(await registry.getLatestSchemaId(subject), id2)
  assert.equal(await registry.getRegistryIdBySchema(subject, { type: SchemaType.AVRO, schema: v1 }), id1)
  assert.equal(await registry.getRegistryId(subject, 1), id1)
  console.log(`  ${subject}: v1 id ${id1}, v2 id ${id2}`)
  await expectIncompatible('Avro field without default', () =>
    registry.register({ type: SchemaType.AVRO, schema: bad }, { subject })
  )

  const a = await registry.encode(id1, { patient: 'p1', value: 5.5 })
  const b = await registry.encode(id2, { patient: 'p2', value: 7.25, unit: 'mmol/L' })
  const [ra, rb] = await roundTrip(topic, [a, b])
  const fresh = new SchemaRegistry({ host: REGISTRY })
  assert.deepEqual({ ...(await fresh.decode(ra)) }, { patient: 'p1', value: 5.5 })
  assert.deepEqual({ ...(await fresh.decode(rb)) }, { patient: 'p2', value: 7.25, unit: 'mmol/L' })
  const asV2 = await fresh.decode(ra, { [SchemaType.AVRO]: { readerSchema: v2 } })
  assert.deepEqual({ ...asV2 }, { patient: 'p1', value: 5.5, unit: 'mg/dL' })
  console.log('  decoded with the writer schemas and through a v2 reader schema')
})

test('JSON Schema: register, evolve, encode, produce, consume, decode', { timeout: 90000 }, async () => {
  const topic = uniqueTopic('json')
  const subject = `${topic}-value`
  const schema = properties =>
    JSON.stringify({
      $schema: 'http://json-schema.org/draft-07/schema#',
      title: 'LabResult',
      type: 'object',
      properties,
      required: ['patient', 'value'],
      additionalProperties: false,
    })
  const v1 = schema({ patient: { type: 'string' }, value: { type: 'number' } })
  const v2 = schema({ patient: { type: 'string' }, value: { type: 'number' }, unit: { type: 'string' } })
  const bad = schema({ patient: { type: 'string' }, value: { type: 'string' }, unit: { type: 'string' } })
  const { id: id1 } = await registry.register({ type: SchemaType.JSON, schema: v1 }, { subject })
  const { id: id2 } = await registry.register({ type: SchemaType.JSON, schema: v2 }, { subject })
  assert.notEqual(id1, id2)
  assert.equal(await registry.getLatestSchemaId(subject), id2)
  console.log(`  ${subject}: v1 id ${id1}, v2 id ${id2}`)
  await expectIncompatible('JSON Schema type change', () =>
    registry.register({ type: SchemaType.JSON, schema: bad }, { subject })
  )

  const a = await registry.encode(id1, { patient: 'p1', value: 5.5 })
  const b = await registry.encode(id2, { patient: 'p2', value: 7, unit: 'mmol/L' })
  const [ra, rb] = await roundTrip(topic, [a, b])
  const fresh = new SchemaRegistry({ host: REGISTRY })
  assert.deepEqual(await fresh.decode(ra), { patient: 'p1', value: 5.5 })
  assert.deepEqual(await fresh.decode(rb), { patient: 'p2', value: 7, unit: 'mmol/L' })
  // The library validates against the registered schema: v1 refuses a property it closes out.
  await assert.rejects(() => registry.encode(id1, { patient: 'p', value: 1, unit: 'x' }))
})

test('Protobuf: register, evolve, encode, produce, consume, decode', { timeout: 90000 }, async () => {
  const topic = uniqueTopic('proto')
  const subject = `${topic}-value`
  const proto = (fields, valueType = 'double') =>
    `syntax = "proto3";\npackage interopjs.lab;\n\nmessage LabResult {\n  string patient = 1;\n  ${valueType} value = 2;\n${fields}}\n`
  const v1 = proto('')
  const v2 = proto('  string unit = 3;\n')
  const bad = proto('  string unit = 3;\n', 'string')
  const { id: id1 } = await registry.register({ type: SchemaType.PROTOBUF, schema: v1 }, { subject })
  const { id: id2 } = await registry.register({ type: SchemaType.PROTOBUF, schema: v2 }, { subject })
  assert.notEqual(id1, id2)
  assert.equal(await registry.getLatestSchemaId(subject), id2)
  console.log(`  ${subject}: v1 id ${id1}, v2 id ${id2}`)
  await expectIncompatible('Protobuf field type change', () =>
    registry.register({ type: SchemaType.PROTOBUF, schema: bad }, { subject })
  )

  const a = await registry.encode(id1, { patient: 'p1', value: 5.5 })
  const b = await registry.encode(id2, { patient: 'p2', value: 7.25, unit: 'mmol/L' })
  const [ra, rb] = await roundTrip(topic, [a, b])
  const fresh = new SchemaRegistry({ host: REGISTRY })
  assert.deepEqual((await fresh.decode(ra)).toJSON(), { patient: 'p1', value: 5.5 })
  assert.deepEqual((await fresh.decode(rb)).toJSON(), { patient: 'p2', value: 7.25, unit: 'mmol/L' })
})
