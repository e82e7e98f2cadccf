// kafkajs (pure JavaScript, its own protocol implementation) against tagpipe's broker.
// Run by scripts/interop.d/16_kafkajs.sh: node kafkajs_check.js HOST:PORT, with kafkajs on
// NODE_PATH. Every wait is bounded; any failed expectation exits non-zero.
'use strict'
const assert = require('assert/strict')
const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes } = require('kafkajs')

const addr = process.argv[2]
const WAIT = 30000 // ms: the bound of every wait below
const kafka = new Kafka({
  clientId: 'tagpipe-interop',
  brokers: [addr],
  logLevel: logLevel.WARN,
  // Left out: kafkajs logs every error answer at ERROR, those the check expects too
  // (TOPIC_ALREADY_EXISTS, REBALANCE_IN_PROGRESS while a member joins), and warns that an
  // idempotent producer's retries are limited (they are, on purpose: every wait is bounded).
  logCreator: () => ({ namespace, label, log }) => {
    if (namespace === 'Connection' && log.message.startsWith('Response')) return
    if (log.message.startsWith('Limiting retries for the idempotent producer')) return
    console.error(`kafkajs ${label} [${namespace}] ${JSON.stringify(log)}`)
  },
  retry: { retries: 5, initialRetryTime: 100 },
})
const admin = kafka.admin()

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// until calls fn until it returns a true value, at most WAIT ms.
async function until(what, fn) {
  const deadline = Date.now() + WAIT
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

// consume runs a consumer until it has `want` messages (and `done()`, when given, is
// true: onBatch's work is finished), then 1 s more to see that no others come; returns
// them as {partition, offset, key, value}.
async function consume({ groupId, topic, want, readUncommitted = false, batches = false, onBatch, done = () => true }) {
  const c = kafka.consumer({ groupId, readUncommitted, sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200 })
  const got = []
  const keep = (partition, m) => got.push({ partition, offset: Number(m.offset), key: m.key && m.key.toString(), value: m.value.toString() })
  await c.connect()
  await c.subscribe({ topics: [topic], fromBeginning: true })
  await c.run(
    batches
      ? { autoCommit: false, eachBatch: async ({ batch }) => { batch.messages.forEach(m => keep(batch.partition, m)); if (onBatch) await onBatch(c, batch) } }
      : { autoCommit: false, eachMessage: async ({ partition, message }) => keep(partition, message) },
  )
  try {
    await until(`${want} records of ${topic} (group ${groupId}, got ${got.length})`, () => got.length >= want && done())
    await sleep(1000)
  } finally {
    await c.disconnect()
  }
  return got
}

async function committedOffsets(groupId, topic) {
  const [t] = await admin.fetchOffsets({ groupId, topics: [topic] })
  return Object.fromEntries(t.partitions.map(p => [p.partition, Number(p.offset)]))
}

async function endOffsets(topic) {
  return Object.fromEntries((await admin.fetchTopicOffsets(topic)).map(p => [p.partition, Number(p.high)]))
}

async function adminTopics() {
  const t = 'kjs-admin'
  assert.equal(await admin.createTopics({
    topics: [{ topic: t, numPartitions: 2, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
    waitForLeaders: true,
  }), true, 'createTopics')
  assert.equal(await admin.createTopics({ topics: [{ topic: t, numPartitions: 2 }] }), false, 'createTopics of an existing topic')
  await admin.createPartitions({ topicPartitions: [{ topic: t, count: 3 }] })
  const md = await until('3 partitions', async () => {
    const { topics } = await admin.fetchTopicMetadata({ topics: [t] })
    return topics[0].partitions.length === 3 && topics[0]
  })
  assert.deepEqual(md.partitions.map(p => [p.partitionId, p.leader, p.replicas, p.isr]).sort(),
    [[0, 0, [0], [0]], [1, 0, [0], [0]], [2, 0, [0], [0]]], 'fetchTopicMetadata')
  const cfg = async () => {
    const { resources } = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: t }], includeSynonyms: false })
    assert.equal(resources[0].errorCode, 0, 'describeConfigs error')
    return Object.fromEntries(resources[0].configEntries.map(e => [e.configName, e]))
  }
  let c = await cfg()
  assert.equal(c['retention.ms'].configValue, '3600000', 'describeConfigs retention.ms')
  assert.equal(c['retention.ms'].isDefault, false, 'retention.ms is set')
  assert.equal(c['cleanup.policy'].configValue, 'delete', 'describeConfigs cleanup.policy')
  await admin.alterConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: t, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] })
  c = await cfg()
  assert.equal(c['cleanup.policy'].configValue, 'compact', 'alterConfigs cleanup.policy')
  assert.equal(c['retention.ms'].isDefault, true, 'alterConfigs replaces the set: retention.ms back to its default')
  assert.ok((await admin.listTopics()).includes(t), 'listTopics')
  await admin.deleteTopics({ topics: [t] })
  await until(`${t} deleted`, async () => !(await admin.listTopics()).includes(t))
  console.log('kafkajs admin: createTopics (configs), createPartitions, fetchTopicMetadata, describeConfigs, alterConfigs, listTopics, deleteTopics')
}

async function producerAndGroup() {
  const t = 'kjs-events'
  await admin.createTopics({ topics: [{ topic: t, numPartitions: 4, replicationFactor: 1 }] })
  // Two members of one group (eachBatch, a commit after each batch) share the 4 partitions
  // before anything is produced, so each reads its own.
  const g = 'kjs-group'
  const got = []
  const assigned = {}
  const members = [1, 2].map(i => {
    const c = kafka.consumer({ groupId: g, sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200, rebalanceTimeout: 10000 })
    c.on(c.events.GROUP_JOIN, e => { assigned[i] = (e.payload.memberAssignment[t] || []).slice().sort() })
    return c
  })
  const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  const acked = []
  let ends
  try {
    for (const [i, c] of members.entries()) {
      await c.connect()
      await c.subscribe({ topics: [t], fromBeginning: true })
      await c.run({
        autoCommit: false,
        eachBatch: async ({ batch, heartbeat }) => {
          for (const m of batch.messages) got.push({ member: i + 1, partition: batch.partition, offset: Number(m.offset), key: m.key.toString(), value: m.value.toString() })
          await c.commitOffsets([{ topic: t, partition: batch.partition, offset: String(Number(batch.lastOffset()) + 1) }])
          await heartbeat()
        },
      })
    }
    await until('both members assigned 2 partitions', async () => assigned[1] && assigned[2] &&
      assigned[1].length === 2 && assigned[2].length === 2 &&
      (await admin.describeGroups([g])).groups[0].state === 'Stable')
    const { groups } = await admin.describeGroups([g])
    assert.equal(groups[0].members.length, 2, `describeGroups ${JSON.stringify(groups[0])}`)
    assert.equal(groups[0].protocolType, 'consumer', 'describeGroups protocolType')
    assert.ok((await admin.listGroups()).groups.some(x => x.groupId === g), 'listGroups')

    await p.connect()
    for (const [n, compression] of [[0, CompressionTypes.GZIP], [1, CompressionTypes.None], [2, CompressionTypes.GZIP]]) {
      const messages = []
      for (let i = 0; i < 100; i++) {
        const v = n * 100 + i
        messages.push({ key: `user-${v % 13}`, value: `${v}` })
      }
      const meta = await p.send({ topic: t, acks: -1, compression, messages })
      for (const m of meta) assert.equal(m.errorCode, 0, `send error ${JSON.stringify(m)}`)
      acked.push(...meta)
    }
    ends = await endOffsets(t)
    assert.equal(Object.values(ends).reduce((a, b) => a + b, 0), 300, `end offsets ${JSON.stringify(ends)}`)
    const byTs = await admin.fetchTopicOffsetsByTimestamp(t, Date.now() - 3600000)
    assert.ok(byTs.every(o => Number(o.offset) === 0), `fetchTopicOffsetsByTimestamp (an hour ago): ${JSON.stringify(byTs)}`)
    // No record that new: the broker answers -1, which kafkajs turns into the end offset.
    const future = await admin.fetchTopicOffsetsByTimestamp(t, Date.now() + 3600000)
    assert.ok(future.every(o => Number(o.offset) === ends[o.partition]), `fetchTopicOffsetsByTimestamp (in an hour): ${JSON.stringify(future)}`)
    console.log(`kafkajs producer: idempotent, acks=-1, gzip and none, 300 keyed records; fetchTopicOffsets ${JSON.stringify(ends)}, fetchTopicOffsetsByTimestamp`)
    await until('300 records read by the group', () => got.length >= 300)
    await sleep(1000) // nothing is read twice
  } finally {
    for (const c of members) await c.disconnect()
  }
  const values = got.map(r => Number(r.value)).sort((a, b) => a - b)
  assert.deepEqual(values, [...Array(300).keys()], `group read ${values.length} records`)
  for (const i of [1, 2]) {
    const parts = [...new Set(got.filter(r => r.member === i).map(r => r.partition))].sort()
    assert.ok(parts.length > 0 && parts.every(q => assigned[i].includes(q)), `member ${i} read partitions ${parts}, assigned ${assigned[i]}`)
  }
  // kafkajs' default partitioner is murmur2 (as Java's): a key goes to one partition,
  // its records in the order sent.
  const perKey = {}
  for (const r of got.slice().sort((a, b) => a.partition - b.partition || a.offset - b.offset)) (perKey[r.key] ||= []).push(r)
  for (const [k, rs] of Object.entries(perKey)) {
    assert.equal(new Set(rs.map(r => r.partition)).size, 1, `key ${k} in several partitions`)
    const vs = rs.map(r => Number(r.value))
    assert.deepEqual(vs, vs.slice().sort((a, b) => a - b), `key ${k} out of order`)
  }
  // Each send's acks name the base offset of its records in each partition.
  for (const a of acked) {
    assert.ok(got.some(r => r.partition === a.partition && r.offset === Number(a.baseOffset)), `no record at the acked ${JSON.stringify(a)}`)
  }
  const wantCommitted = JSON.stringify(Object.fromEntries(Object.entries(ends).map(([q, e]) => [q, e > 0 ? e : -1])))
  let committed
  await until(`committed offsets ${wantCommitted}`, async () => JSON.stringify(committed = await committedOffsets(g, t)) === wantCommitted)
  console.log(`kafkajs group: 2 members (eachBatch) shared 4 partitions ${JSON.stringify(assigned)}, read 300 records once, committed ${JSON.stringify(committed)}; describeGroups, listGroups`)

  // A second run of the group (eachMessage) resumes from the commits: only new records.
  const more = []
  for (let i = 300; i < 340; i++) more.push({ key: `user-${i % 13}`, value: `${i}` })
  await p.send({ topic: t, acks: -1, compression: CompressionTypes.GZIP, messages: more })
  await p.disconnect()
  const again = await consume({ groupId: g, topic: t, want: 40 })
  assert.deepEqual(again.map(r => Number(r.value)).sort((a, b) => a - b), [...Array(40).keys()].map(i => 300 + i),
    `second run read ${again.length}: ${again.slice(0, 5).map(r => r.value)}`)
  console.log('kafkajs group: a second run (eachMessage) resumed from the committed offsets with the 40 new records only')

  // From the admin side: setOffsets of the (empty) group, which a third run starts from;
  // deleteTopicRecords moves a log start; deleteGroups.
  const ends2 = await endOffsets(t)
  await admin.setOffsets({ groupId: g, topic: t, partitions: Object.entries(ends2).map(([q, e]) => ({ partition: Number(q), offset: String(Math.max(0, e - 3)) })) })
  assert.deepEqual(await committedOffsets(g, t), Object.fromEntries(Object.entries(ends2).map(([q, e]) => [q, Math.max(0, e - 3)])), 'setOffsets')
  const want = Object.values(ends2).reduce((a, e) => a + Math.min(3, e), 0)
  const third = await consume({ groupId: g, topic: t, want })
  assert.equal(third.length, want, `third run read ${third.length}, want ${want}`)
  await admin.deleteTopicRecords({ topic: t, partitions: [{ partition: 0, offset: '10' }] })
  const lows = Object.fromEntries((await admin.fetchTopicOffsets(t)).map(p => [p.partition, Number(p.low)]))
  assert.deepEqual(lows, { 0: 10, 1: 0, 2: 0, 3: 0 }, 'deleteTopicRecords: log start offsets')
  await admin.deleteGroups([g])
  assert.ok(!(await admin.listGroups()).groups.some(x => x.groupId === g), 'deleteGroups')
  assert.deepEqual(await committedOffsets(g, t), { 0: -1, 1: -1, 2: -1, 3: -1 }, 'offsets after deleteGroups')
  console.log(`kafkajs admin: setOffsets (a third run read the last ${want}), deleteTopicRecords, deleteGroups`)
}

async function transactions() {
  const tin = 'kjs-txn-in'
  const tout = 'kjs-txn-out'
  const g = 'kjs-eos'
  await admin.createTopics({ topics: [{ topic: tin, numPartitions: 1 }, { topic: tout, numPartitions: 2 }] })
  const plain = kafka.producer()
  await plain.connect()
  await plain.send({ topic: tin, messages: [...Array(10).keys()].map(i => ({ key: `k${i}`, value: `in-${i}` })) })
  await plain.disconnect()
  const p = kafka.producer({ transactionalId: 'kjs-eos-1', idempotent: true, maxInFlightRequests: 1 })
  await p.connect()
  // consume-transform-produce: each batch of the input becomes one transaction, whose
  // offsets go with it; the first transaction commits, the second aborts.
  let n = 0
  let pending = []
  const outcome = []
  const onBatch = async (c, batch) => {
    for (const m of batch.messages) {
      pending.push(m)
      if (pending.length < 5) continue
      const part = pending
      pending = []
      const txn = await p.transaction()
      await txn.send({ topic: tout, compression: CompressionTypes.GZIP, messages: part.map(m => ({ key: m.key, value: `out-${m.value}` })) })
      await txn.sendOffsets({ consumerGroupId: g, topics: [{ topic: tin, partitions: [{ partition: batch.partition, offset: String(Number(part[part.length - 1].offset) + 1) }] }] })
      if (n++ % 2 === 0) {
        await txn.commit()
        outcome.push(['commit', part.map(m => m.value.toString())])
      } else {
        await txn.abort()
        outcome.push(['abort', part.map(m => m.value.toString())])
      }
    }
  }
  const consumed = await consume({ groupId: g, topic: tin, want: 10, batches: true, onBatch, done: () => outcome.length === 2 })
  assert.equal(consumed.length, 10, 'transactional consumer read the input once')
  assert.equal(outcome.length, 2, `transactions: ${JSON.stringify(outcome)}`)
  assert.deepEqual(await committedOffsets(g, tin), { 0: 5 }, 'the group\'s offsets moved with the committed transaction only')
  const committed = outcome[0][1].map(v => `out-${v}`).sort()
  // read_committed (kafkajs' default) sees the committed transaction only.
  const rc = await consume({ groupId: 'kjs-read-committed', topic: tout, want: 5 })
  assert.deepEqual(rc.map(r => r.value).sort(), committed, `read_committed read ${rc.map(r => r.value)}`)
  const ru = await consume({ groupId: 'kjs-read-uncommitted', topic: tout, want: 10, readUncommitted: true })
  assert.equal(ru.length, 10, `read_uncommitted read ${ru.map(r => r.value)}`)
  // A restart of the application resumes from the committed offset: the aborted inputs
  // come back and this time commit.
  n = 0
  const redo = await consume({ groupId: g, topic: tin, want: 5, batches: true, onBatch, done: () => outcome.length === 3 })
  assert.deepEqual(redo.map(r => r.value), outcome[1][1], 'the restart resumed at the aborted inputs')
  assert.deepEqual(await committedOffsets(g, tin), { 0: 10 }, 'committed offsets after the redo')
  const all = await consume({ groupId: 'kjs-read-committed-2', topic: tout, want: 10 })
  assert.deepEqual(all.map(r => r.value).sort(), [...Array(10).keys()].map(i => `out-in-${i}`).sort(), `output ${all.map(r => r.value)}`)
  await p.disconnect()
  console.log('kafkajs transactions: consume-transform-produce, one committed and one aborted (offsets unmoved, read_committed hides it, read_uncommitted shows it), a restart redid the aborted inputs: output has each input once')
}

async function main() {
  await admin.connect()
  try {
    await adminTopics()
    await producerAndGroup()
    await transactions()
  } finally {
    await admin.disconnect()
  }
  console.log('kafkajs 2.2.4: ok')
}

main().catch(e => {
  console.error('FAIL:', e && e.stack ? e.stack : e)
  process.exit(1)
})
