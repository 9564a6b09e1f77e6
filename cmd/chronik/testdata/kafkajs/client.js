// Drives a chronik broker with kafkajs (a client of its own protocol code,
// in JavaScript): admin (create with configs, describe and alter configs,
// create partitions, offsets by time, delete records, delete), an
// idempotent producer with acks=all and gzip, a group of two consumers,
// committed offsets, group listing, description and deletion; then a
// transactional producer (a commit with offsets sent, an abort) read back
// by a read_committed consumer.
//
// Usage: node client.js HOST:PORT TOPIC GROUP [BROKERS]
// (BROKERS: how many brokers the cluster has, default 1)
// Prints "ok" on stdout, or exits non-zero saying what went wrong; kafkajs's
// own log goes to stderr.
'use strict'
const { Kafka, CompressionTypes, logLevel, ConfigResourceTypes, Partitioners } = require('kafkajs')

const [addr, topic, group, brokers = '1'] = process.argv.slice(2)
const toStderr = () => ({ level, log }) => console.error(JSON.stringify({ level, ...log }))
const kafka = new Kafka({ clientId: 'kafkajs-test', brokers: [addr], logLevel: logLevel.WARN, logCreator: toStderr, retry: { retries: 5 } })

function fail(msg) { console.error(msg); process.exit(1) }

async function main() {
  const admin = kafka.admin()
  await admin.connect()
  const created = await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] })
  if (!created) fail('createTopics returned false')
  const topics = await admin.listTopics()
  if (!topics.includes(topic)) fail(`topic ${topic} not listed in ${topics}`)
  const cluster = await admin.describeCluster()
  if (cluster.brokers.length !== Number(brokers)) fail(`describeCluster: ${JSON.stringify(cluster)}`)
  const cfg = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] })
  const ret = cfg.resources[0].configEntries.find(e => e.configName === 'retention.ms')
  if (!ret || ret.configValue !== '3600000') fail(`describeConfigs: ${JSON.stringify(cfg.resources[0])}`)
  await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '7200000' }] }] })
  await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] })
  const md = await admin.fetchTopicMetadata({ topics: [topic] })
  if (md.topics[0].partitions.length !== 3) fail(`metadata after createPartitions: ${JSON.stringify(md)}`)

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  for (let i = 0; i < 30; i++) {
    await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: [{ key: `k${i}`, value: `kafkajs-${i}`, partition: i % 3 }] })
  }
  await producer.sendBatch({ acks: -1, topicMessages: [{ topic, messages: [0, 1, 2].map(p => ({ value: `batch-${p}`, partition: p })) }] })
  await producer.disconnect()
  const ends = await admin.fetchTopicOffsets(topic)
  if (ends.map(o => o.high).join() !== '11,11,11') fail(`fetchTopicOffsets: ${JSON.stringify(ends)}`)
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, 0)
  if (byTime.map(o => o.offset).join() !== '0,0,0') fail(`fetchTopicOffsetsByTimestamp: ${JSON.stringify(byTime)}`)

  // Two consumers in one group share the three partitions.
  const seen = new Set()
  // Short fetch waits: kafkajs heartbeats (and so rebalances) between fetches.
  const consumerConfig = { groupId: group, sessionTimeout: 10000, heartbeatInterval: 500, maxWaitTimeInMs: 100 }
  const consumers = [kafka.consumer(consumerConfig), kafka.consumer(consumerConfig)]
  const assigned = [0, 0]
  let done
  const all = new Promise(resolve => { done = resolve })
  for (const [i, c] of consumers.entries()) {
    c.on(c.events.GROUP_JOIN, e => { assigned[i] = Object.values(e.payload.memberAssignment).flat().length })
    await c.connect()
    await c.subscribe({ topic, fromBeginning: true })
    await c.run({ eachMessage: async ({ message }) => { seen.add(message.value.toString()); if (seen.size === 33) done() } })
  }
  const timeout = setTimeout(() => fail(`consumed ${seen.size} of 33 records`), 30000)
  await all
  clearTimeout(timeout)
  // Both members end up with partitions once the second has joined.
  for (let t = 0; assigned[0] + assigned[1] !== 3 || !assigned[0] || !assigned[1]; t++) {
    if (t > 100) fail(`assignments ${assigned}`)
    await new Promise(r => setTimeout(r, 100))
  }
  for (const c of consumers) await c.disconnect()

  const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  const committed = offsets[0].partitions.map(p => p.offset).sort().join()
  if (committed !== '11,11,11') fail(`committed offsets ${JSON.stringify(offsets)}`)
  const groups = await admin.listGroups()
  if (!groups.groups.some(g => g.groupId === group)) fail(`listGroups: ${JSON.stringify(groups)}`)
  const desc = await admin.describeGroups([group])
  if (desc.groups[0].state !== 'Empty') fail(`describeGroups: ${JSON.stringify(desc)}`)
  await admin.deleteGroups([group])
  const after = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  if (after[0].partitions.some(p => p.offset !== '-1')) fail(`offsets after deleteGroups: ${JSON.stringify(after)}`)
  // Records before offset 5 of partition 0 deleted: its low watermark moves.
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '5' }] })
  const lows = await admin.fetchTopicOffsets(topic)
  if (lows.find(o => o.partition === 0).low !== '5') fail(`fetchTopicOffsets after deleteTopicRecords: ${JSON.stringify(lows)}`)
  await admin.deleteTopics({ topics: [topic] })
  if ((await admin.listTopics()).includes(topic)) fail('deleted topic still listed')
  await transactions(admin, `${topic}-txn`, `${group}-txn`)
  await admin.disconnect()
  console.log('ok')
}

// transactions: a committed transaction that also commits the group's
// offset, an aborted one; a read_committed consumer (kafkajs's default)
// reads the committed records only.
async function transactions(admin, txnTopic, txnGroup) {
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: txnTopic, numPartitions: 1 }] })
  const producer = kafka.producer({ transactionalId: `kafkajs-${txnTopic}`, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const committed = await producer.transaction()
  await committed.send({ topic: txnTopic, messages: [0, 1, 2].map(i => ({ value: `committed-${i}` })) })
  await committed.sendOffsets({ consumerGroupId: txnGroup, topics: [{ topic: txnTopic, partitions: [{ partition: 0, offset: '2' }] }] })
  await committed.commit()
  const aborted = await producer.transaction()
  await aborted.send({ topic: txnTopic, messages: [0, 1].map(i => ({ value: `aborted-${i}` })) })
  await aborted.abort()
  await producer.disconnect()

  const offsets = await admin.fetchOffsets({ groupId: txnGroup, topics: [txnTopic] })
  if (offsets[0].partitions[0].offset !== '2') fail(`offset committed in a transaction: ${JSON.stringify(offsets)}`)
  const consumer = kafka.consumer({ groupId: `${txnGroup}-reader`, maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topic: txnTopic, fromBeginning: true })
  const read = []
  await consumer.run({ eachMessage: async ({ message }) => { read.push(message.value.toString()) } })
  for (let t = 0; read.length < 3; t++) {
    if (t > 100) fail(`read_committed read ${read}`)
    await new Promise(r => setTimeout(r, 100))
  }
  await new Promise(r => setTimeout(r, 500)) // nothing more may come
  await consumer.disconnect()
  if (read.sort().join() !== 'committed-0,committed-1,committed-2') fail(`read_committed read ${read}`)
}

main().catch(e => fail(e.stack || String(e)))
