"""confluent-kafka-python (librdkafka underneath) against tagpipe's broker.

Run by scripts/interop.d/12_confluent_kafka.sh with the broker's host:port. Every wait is
bounded by a deadline; any failed expectation raises (non-zero exit).
"""
import sys
import time

import confluent_kafka
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,
                             Producer, TopicPartition)
from confluent_kafka.admin import (AdminClient, ConfigResource, ConfigSource, NewPartitions,
                                   NewTopic)

ADDR = sys.argv[1]
WAIT = 30.0  # seconds: the bound of every wait below
CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd']
admin = AdminClient({'bootstrap.servers': ADDR})


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def results(futures):
    """Waits for every future of an AdminClient call; returns {key: result}."""
    return {k: f.result(timeout=WAIT) for k, f in futures.items()}


def until(what, fn, interval=0.1):
    """Calls fn until it returns a true value, at most WAIT seconds; returns that value."""
    deadline = time.monotonic() + WAIT
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for ' + what)
        time.sleep(interval)


def partitions(topic):
    # All topics: list_topics(topic=X) would leave X in librdkafka's topic cache, and its
    # metadata refreshes (allow_auto_topic_creation) create X again after delete_topics.
    md = admin.list_topics(timeout=WAIT)
    t = md.topics.get(topic)
    return sorted(t.partitions) if t is not None and t.error is None else []


def described_resource(res):
    return next(iter(results(admin.describe_configs([res])).values()))


def described(topic):
    return described_resource(ConfigResource('topic', topic))


def read_all(topic, isolation='read_committed'):
    """A group-less consumer reads topic from the beginning to the end of every partition
    (the last stable offset for read_committed); returns the messages in read order."""
    parts = partitions(topic)
    c = Consumer({'bootstrap.servers': ADDR, 'group.id': 'ck-reader', 'enable.auto.commit': False,
                  'enable.partition.eof': True, 'isolation.level': isolation})
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    got, eof = [], set()
    deadline = time.monotonic() + WAIT
    while len(eof) < len(parts):
        check(time.monotonic() < deadline, 'read %s: end of %s of %s partitions' % (topic, sorted(eof), parts))
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            check(m.error().code() == KafkaError._PARTITION_EOF, 'read %s: %s' % (topic, m.error()))
            eof.add(m.partition())
            continue
        got.append(m)
    c.close()
    return got


def group(g):
    """Group g as (state, assignor, member ids, client ids), state lower-case: with
    describe_consumer_groups where the client has it (confluent-kafka 2.0+), else with
    list_groups (ListGroups + DescribeGroups in librdkafka)."""
    if hasattr(admin, 'describe_consumer_groups'):
        d = results(admin.describe_consumer_groups([g]))[g]
        return (d.state.name.lower(), d.partition_assignor, sorted(m.member_id for m in d.members),
                sorted(m.client_id for m in d.members))
    gs = admin.list_groups(g, timeout=WAIT)
    check(len(gs) == 1 and gs[0].id == g and gs[0].error is None and gs[0].protocol_type in ('consumer', ''),
          'list_groups %s: %s' % (g, [(x.id, x.error, x.protocol_type) for x in gs]))
    return (gs[0].state.lower(), gs[0].protocol, sorted(m.id for m in gs[0].members),
            sorted(m.client_id for m in gs[0].members))


def group_ids():
    if hasattr(admin, 'list_consumer_groups'):
        return {x.group_id for x in admin.list_consumer_groups().result(timeout=WAIT).valid}
    return {x.id for x in admin.list_groups(timeout=WAIT)}


GROUP_API = 'describe_consumer_groups' if hasattr(admin, 'describe_consumer_groups') else 'list_groups'


def take(c, n, linger=0.0):
    """Polls consumer c until it has n messages (at most WAIT seconds), then linger seconds
    more, so that extra ones would show; returns them."""
    out = []

    def one():
        m = c.poll(0.1)
        if m is not None:
            check(not m.error(), 'consumer: %s' % m.error())
            out.append(m)
        return len(out) >= n
    until('%d records (have %d)' % (n, len(out)), one, interval=0)
    end = time.monotonic() + linger
    while time.monotonic() < end:
        one()
    return out


def produce(p, topic, records):
    """Produces (key, value) pairs and waits for every delivery report; returns the
    reports' (partition, offset) in produce order."""
    reports = {}

    def on_delivery(i):
        def cb(err, msg):
            reports[i] = err if err is not None else (msg.partition(), msg.offset())
        return cb

    for i, (k, v) in enumerate(records):
        while True:
            try:
                p.produce(topic, key=k, value=v, on_delivery=on_delivery(i))
                break
            except BufferError:
                p.poll(0.1)
    left = p.flush(WAIT)
    check(left == 0, '%d records not delivered in %ss' % (left, WAIT))
    errs = [r for r in reports.values() if not isinstance(r, tuple)]
    check(not errs and len(reports) == len(records), 'delivery reports: %d of %d, errors %s' % (len(reports), len(records), errs[:3]))
    return [reports[i] for i in range(len(records))]


# --- AdminClient: topics and their configs ------------------------------------------------
def admin_topics():
    t = 'ck-admin'
    results(admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1,
                                          config={'retention.ms': '3600000', 'max.message.bytes': '200000'})],
                                operation_timeout=10))
    check(partitions(t) == [0, 1], 'create_topics: partitions %s' % partitions(t))
    cfg = described(t)
    for k, v in (('retention.ms', '3600000'), ('max.message.bytes', '200000')):
        check(cfg[k].value == v and cfg[k].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value,
              'describe_configs %s: %s (source %s)' % (k, cfg[k].value, cfg[k].source))
    check(cfg['cleanup.policy'].value == 'delete' and cfg['cleanup.policy'].is_default,
          'describe_configs cleanup.policy: %s' % cfg['cleanup.policy'])
    # alter_configs (AlterConfigs) replaces the topic's whole set: max.message.bytes,
    # not named, goes back to its default.
    results(admin.alter_configs([ConfigResource('topic', t, set_config={'retention.ms': '7200000'})]))
    cfg = described(t)
    check(cfg['retention.ms'].value == '7200000', 'alter_configs retention.ms: %s' % cfg['retention.ms'].value)
    check(cfg['max.message.bytes'].is_default, 'alter_configs kept max.message.bytes=%s' % cfg['max.message.bytes'].value)
    said = ['create_topics (2 partitions, 2 configs)', 'describe_configs', 'alter_configs (replaces the set)']
    if hasattr(admin, 'incremental_alter_configs'):
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry
        res = ConfigResource('topic', t, incremental_configs=[
            ConfigEntry('segment.bytes', '1048576', incremental_operation=AlterConfigOpType.SET)])
        results(admin.incremental_alter_configs([res]))
        cfg = described(t)
        check(cfg['segment.bytes'].value == '1048576' and cfg['retention.ms'].value == '7200000',
              'incremental_alter_configs: %s %s' % (cfg['segment.bytes'].value, cfg['retention.ms'].value))
        said.append('incremental_alter_configs')
    else:
        said.append('(no incremental_alter_configs in confluent-kafka %s)' % confluent_kafka.version()[0])
    results(admin.create_partitions([NewPartitions(t, 4)], operation_timeout=10))
    until('4 partitions of ' + t, lambda: partitions(t) == [0, 1, 2, 3])
    md = admin.list_topics(timeout=WAIT)
    check(t in md.topics and len(md.brokers) == 1, 'list_topics: %s, brokers %s' % (sorted(md.topics), md.brokers))
    b = next(iter(md.brokers.values()))
    check('%s:%d' % (b.host, b.port) == ADDR, 'list_topics broker %s:%d, want %s' % (b.host, b.port, ADDR))
    # Refusals, each with Kafka's error code: one node (replication factor 1 only), an
    # unknown topic config, a topic that exists; validate_only creates nothing.
    for nt, code in ((NewTopic('ck-rf3', num_partitions=1, replication_factor=3), KafkaError.INVALID_REPLICATION_FACTOR),
                     (NewTopic('ck-badcfg', num_partitions=1, replication_factor=1, config={'no.such.config': '1'}), KafkaError.INVALID_CONFIG),
                     (NewTopic(t, num_partitions=1, replication_factor=1), KafkaError.TOPIC_ALREADY_EXISTS)):
        try:
            results(admin.create_topics([nt]))
            raise AssertionError('create_topics %s succeeded' % nt.topic)
        except KafkaException as e:
            check(e.args[0].code() == code, 'create_topics %s: %s, want %s' % (nt.topic, e.args[0], code))
    results(admin.create_topics([NewTopic('ck-validate', num_partitions=1, replication_factor=1)], validate_only=True))
    check('ck-validate' not in admin.list_topics(timeout=WAIT).topics, 'validate_only created the topic')
    # Broker configs are static (UNSUPPORTED.md): described, read-only, AlterConfigs refused.
    bcfg = described_resource(ConfigResource('broker', '0'))
    check(bcfg and all(e.is_read_only for e in bcfg.values()), 'describe_configs broker 0: %d entries' % len(bcfg))
    try:
        results(admin.alter_configs([ConfigResource('broker', '0', set_config={'log.retention.ms': '1000'})]))
        raise AssertionError('alter_configs of broker 0 succeeded')
    except KafkaException as e:
        check(e.args[0].code() == KafkaError.INVALID_REQUEST, 'alter_configs broker 0: %s' % e.args[0])
    said += ['refusals (INVALID_REPLICATION_FACTOR, INVALID_CONFIG, TOPIC_ALREADY_EXISTS)', 'validate_only',
             'describe_configs of the broker (%d read-only entries), alter_configs of it refused' % len(bcfg)]
    results(admin.delete_topics([t], operation_timeout=10))
    until('%s deleted' % t, lambda: t not in admin.list_topics(timeout=WAIT).topics)
    said += ['create_partitions 2 -> 4', 'list_topics', 'delete_topics']
    print('confluent-kafka admin: ' + ', '.join(said))


# --- Idempotent producer with every codec -------------------------------------------------
def idempotent_producer():
    t = 'ck-idem'
    results(admin.create_topics([NewTopic(t, num_partitions=3, replication_factor=1)]))
    records, reports = [], []
    for codec in CODECS:
        p = Producer({'bootstrap.servers': ADDR, 'enable.idempotence': True, 'acks': 'all',
                      'compression.type': codec, 'linger.ms': 5, 'batch.num.messages': 37})
        batch = [(b'key%d' % (i % 7), b'%s-%d' % (codec.encode(), i)) for i in range(300)]
        reports += produce(p, t, batch)
        records += batch
    got = read_all(t)
    check(len(got) == len(records), 'read %d of %d' % (len(got), len(records)))
    at = {(m.partition(), m.offset()): (m.key(), m.value()) for m in got}
    for rec, rep in zip(records, reports):
        check(at.get(rep) == rec, 'record %r acked at %s, read %r there' % (rec, rep, at.get(rep)))
    # Each key lives in one partition, its records in the order produced.
    per_key = {}
    for m in got:
        per_key.setdefault(m.key(), []).append((m.partition(), m.offset(), m.value()))
    for k, rows in per_key.items():
        check(len({r[0] for r in rows}) == 1, 'key %r in partitions %s' % (k, {r[0] for r in rows}))
        check([r[2] for r in sorted(rows)] == [v for kk, v in records if kk == k], 'key %r out of order' % k)
    print('confluent-kafka idempotent producer (acks=all, %s): %d records delivered, read back at their acked offsets, per key in order'
          % ('/'.join(CODECS), len(records)))
    return t


# --- Consumer group: cooperative-sticky ---------------------------------------------------
def group_consumer(i):
    return Consumer({'bootstrap.servers': ADDR, 'group.id': 'ck-coop', 'client.id': 'ck-coop-%d' % i,
                     'partition.assignment.strategy': 'cooperative-sticky', 'enable.auto.commit': False,
                     'auto.offset.reset': 'earliest', 'session.timeout.ms': 6000,
                     'heartbeat.interval.ms': 300})


def cooperative_group():
    t, g = 'ck-coop', 'ck-coop'
    results(admin.create_topics([NewTopic(t, num_partitions=4, replication_factor=1)]))
    c1 = group_consumer(1)
    c1.subscribe([t])
    until('c1 assigned all 4 partitions', lambda: c1.poll(0.1) is None and len(c1.assignment()) == 4)
    c2 = group_consumer(2)
    c2.subscribe([t])
    got = {1: [], 2: []}

    def poll_both():
        for i, c in ((1, c1), (2, c2)):
            m = c.poll(0.05)
            if m is not None:
                check(not m.error(), 'consumer %d: %s' % (i, m.error()))
                got[i].append(m)

    def shared():
        poll_both()
        a1 = {tp.partition for tp in c1.assignment()}
        a2 = {tp.partition for tp in c2.assignment()}
        return len(a1) == 2 and len(a2) == 2 and a1 | a2 == {0, 1, 2, 3}

    until('the two members share the 4 partitions', shared, interval=0)
    assigned = {i: sorted(tp.partition for tp in c.assignment()) for i, c in ((1, c1), (2, c2))}
    state, assignor, _, clients = group(g)
    check((state, assignor, clients) == ('stable', 'cooperative-sticky', ['ck-coop-1', 'ck-coop-2']),
          '%s: %s %s %s' % (GROUP_API, state, assignor, clients))
    p = Producer({'bootstrap.servers': ADDR, 'enable.idempotence': True})
    records = [(b'u%d' % (i % 11), b'%d' % i) for i in range(400)]
    produce(p, t, records)
    until('400 records read', lambda: poll_both() or len(got[1]) + len(got[2]) >= 400, interval=0)
    for i in (1, 2):
        check(got[i], 'consumer %d read nothing' % i)
        check({m.partition() for m in got[i]} <= set(assigned[i]),
              'consumer %d read partitions %s, assigned %s' % (i, {m.partition() for m in got[i]}, assigned[i]))
    values = sorted(int(m.value()) for m in got[1] + got[2])
    check(values == list(range(400)), 'group read %d records, %d distinct' % (len(values), len(set(values))))
    ends = {}
    for i, c in ((1, c1), (2, c2)):
        offs = c.commit(asynchronous=False)
        for tp in offs:
            check(tp.error is None, 'commit %s: %s' % (tp, tp.error))
            ends[tp.partition] = tp.offset
    check(sum(ends.values()) == 400 and sorted(ends) == [0, 1, 2, 3], 'committed %s' % ends)
    c2.close()
    c1.close()
    # A restart of the group resumes from the commits: it reads only what came after.
    produce(p, t, [(b'u%d' % (i % 11), b'%d' % i) for i in range(400, 450)])
    c3 = group_consumer(3)
    c3.subscribe([t])
    committed = c3.committed([TopicPartition(t, q) for q in range(4)], timeout=WAIT)
    check({tp.partition: tp.offset for tp in committed} == ends, 'committed() %s, want %s' % (committed, ends))
    again = [int(m.value()) for m in take(c3, 50, linger=1.0)]  # and nothing older after them
    check(sorted(again) == list(range(400, 450)), 'restarted member read %s' % sorted(again)[:20])
    c3.close()
    state, _, members, _ = group(g)
    check(state == 'empty' and not members, '%s after close: %s %s' % (GROUP_API, state, members))
    ids = group_ids()
    check(g in ids, 'listing the groups: %s' % ids)
    print('confluent-kafka cooperative-sticky group: 2 members shared 4 partitions %s, read 400 records once, '
          'committed, %s Stable/2 members then Empty; a restart resumed with the 50 new records' % (assigned, GROUP_API))
    return t


# --- Offsets: watermarks, offsets_for_times, AdminClient.list_offsets when present -----------
def offsets(t):
    c = Consumer({'bootstrap.servers': ADDR, 'group.id': 'ck-offsets', 'enable.auto.commit': False})
    got = read_all(t)
    total = 0
    for p in partitions(t):
        lo, hi = c.get_watermark_offsets(TopicPartition(t, p), timeout=WAIT)
        mine = [m for m in got if m.partition() == p]
        check(lo == 0 and hi == len(mine), 'watermarks %d: %d..%d, read %d' % (p, lo, hi, len(mine)))
        total += hi
        if not mine:
            continue
        # offsets_for_times: the first record at or after a timestamp, -1 past the last.
        mid = mine[len(mine) // 2]
        ts = mid.timestamp()[1]
        want = min(m.offset() for m in mine if m.timestamp()[1] >= ts)
        # (one partition a request: Kafka answers a partition named twice INVALID_REQUEST)
        res = [c.offsets_for_times([TopicPartition(t, p, x)], timeout=WAIT)[0] for x in (ts, mine[-1].timestamp()[1] + 60000)]
        check(res[0].offset == want and res[1].offset == -1,
              'offsets_for_times %d: %s, want %d and -1' % (p, [(r.offset, r.error) for r in res], want))
    c.close()
    said = 'get_watermark_offsets, offsets_for_times'
    if hasattr(admin, 'list_offsets'):
        from confluent_kafka.admin import OffsetSpec
        for spec, name in ((OffsetSpec.earliest(), 'earliest'), (OffsetSpec.latest(), 'latest')):
            res = results(admin.list_offsets({TopicPartition(t, p): spec for p in partitions(t)}))
            n = sum(r.offset for r in res.values())
            check(n == (0 if name == 'earliest' else total), 'list_offsets %s: %s' % (name, res))
        said += ', AdminClient.list_offsets'
    else:
        said += ' (no AdminClient.list_offsets in confluent-kafka %s)' % confluent_kafka.version()[0]
    print('confluent-kafka offsets: %s agree with the records read' % said)


# --- Transactions: consume-transform-produce --------------------------------------------
def txn_consumer():
    return Consumer({'bootstrap.servers': ADDR, 'group.id': 'ck-eos', 'enable.auto.commit': False,
                     'auto.offset.reset': 'earliest', 'isolation.level': 'read_committed',
                     'session.timeout.ms': 6000, 'heartbeat.interval.ms': 300})


def committed(c, tin):
    return {tp.partition: tp.offset for tp in c.committed([TopicPartition(tin, q) for q in (0, 1)], timeout=WAIT)}


def transactions():
    tin, tout = 'ck-txn-in', 'ck-txn-out'
    results(admin.create_topics([NewTopic(tin, num_partitions=2, replication_factor=1),
                                 NewTopic(tout, num_partitions=2, replication_factor=1)]))
    produce(Producer({'bootstrap.servers': ADDR}), tin, [(b'k%d' % i, b'in-%d' % i) for i in range(20)])
    c = txn_consumer()
    c.subscribe([tin])
    p = Producer({'bootstrap.servers': ADDR, 'transactional.id': 'ck-eos-1', 'acks': 'all',
                  'compression.type': 'lz4', 'transaction.timeout.ms': 60000})
    p.init_transactions(WAIT)

    def transform(batch, commit):
        p.begin_transaction()
        for m in batch:
            p.produce(tout, key=m.key(), value=b'out-' + m.value())
        # Delivered before the end either way: abort_transaction would purge records still
        # queued in the client, and the aborted ones are to reach the log.
        check(p.flush(WAIT) == 0, 'transactional records not delivered')
        pos = [tp for tp in c.position(c.assignment()) if tp.offset >= 0]
        p.send_offsets_to_transaction(pos, c.consumer_group_metadata(), WAIT)
        if commit:
            p.commit_transaction(WAIT)
        else:
            p.abort_transaction(WAIT)
        return {tp.partition: tp.offset for tp in pos}

    first = take(c, 10)
    moved = transform(first, True)
    check(committed(c, tin) == {0: moved.get(0, -1001), 1: moved.get(1, -1001)},
          'after commit: committed %s, positions %s' % (committed(c, tin), moved))
    before = committed(c, tin)
    second = take(c, 10)
    transform(second, False)
    check(committed(c, tin) == before, 'the aborted transaction moved the offsets: %s, want %s' % (committed(c, tin), before))
    out = read_all(tout)
    check(sorted(m.value() for m in out) == sorted(b'out-' + m.value() for m in first),
          'read_committed after commit+abort: %s' % sorted(m.value() for m in out))
    unc = read_all(tout, 'read_uncommitted')
    check(len(unc) == 20, 'read_uncommitted should see the aborted 10 too: %s' % sorted((m.partition(), m.offset(), m.value()) for m in unc))
    c.close()
    # As an exactly-once application restarts after an abort: a new member resumes from
    # the committed offsets, gets the aborted batch's inputs again and commits them.
    c = txn_consumer()
    c.subscribe([tin])
    third = take(c, 10)
    check(sorted(m.value() for m in third) == sorted(m.value() for m in second),
          'after the abort the group resumed at %s' % sorted(m.value() for m in third))
    transform(third, True)
    final = committed(c, tin)
    ends = {q: c.get_watermark_offsets(TopicPartition(tin, q), timeout=WAIT)[1] for q in (0, 1)}
    check(final == {q: e if e > 0 else -1001 for q, e in ends.items()},
          'final committed offsets %s, end offsets %s' % (final, ends))
    c.close()
    out = read_all(tout)
    check(sorted(m.value() for m in out) == sorted(b'out-in-%d' % i for i in range(20)),
          'read_committed output: %d records %s' % (len(out), sorted(m.value() for m in out)[:5]))
    p.flush(WAIT)
    print('confluent-kafka transactions: consume-transform-produce committed 10, aborted 10 (offsets unmoved, '
          'read_committed hides them, read_uncommitted shows them), a restart redid them: output has each of 20 inputs once')


def static_member():
    """A static member (group.instance.id) does not leave on close: the group keeps it, and
    the same instance coming back takes its place and its partitions."""
    t, g = 'ck-static', 'ck-static'
    results(admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1)]))
    p = Producer({'bootstrap.servers': ADDR})
    produce(p, t, [(b'k%d' % i, b'%d' % i) for i in range(20)])

    def member():
        c = Consumer({'bootstrap.servers': ADDR, 'group.id': g, 'group.instance.id': 'ck-static-a',
                      'enable.auto.commit': False, 'auto.offset.reset': 'earliest',
                      'session.timeout.ms': 30000, 'heartbeat.interval.ms': 300})
        c.subscribe([t])
        return c

    def read(c, n):
        return [int(m.value()) for m in take(c, n)]

    c = member()
    check(sorted(read(c, 20)) == list(range(20)), 'static member first read')
    c.commit(asynchronous=False)
    state, _, before, _ = group(g)
    check(state == 'stable' and len(before) == 1, 'static group: %s %s' % (state, before))
    c.close()
    state, _, after, _ = group(g)
    check(state == 'stable' and after == before, 'after close the static member left: %s %s' % (state, after))
    produce(p, t, [(b'k%d' % i, b'%d' % i) for i in range(20, 30)])
    c = member()
    check(sorted(read(c, 10)) == list(range(20, 30)), 'the static member came back at its commits')
    state, _, back, _ = group(g)
    check(state == 'stable' and len(back) == 1 and back != before, 'static member back: %s %s' % (state, back))
    check(len(c.assignment()) == 2, 'static member assignment %s' % c.assignment())
    c.close()
    print('confluent-kafka static member (group.instance.id): stays in the group after close, '
          'comes back under a new member id in its place, resumes from its commits')


admin_topics()
t = idempotent_producer()
offsets(t)
static_member()
cooperative_group()
transactions()
print('confluent-kafka %s (librdkafka %s): ok' % (confluent_kafka.version()[0], confluent_kafka.libversion()[0]))
