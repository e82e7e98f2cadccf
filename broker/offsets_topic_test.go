package broker

// __consumer_offsets as a readable Kafka topic: a franz-go group's commits and metadata
// arrive there in Kafka's binary schemas, tombstones follow DeleteGroups/OffsetDelete,
// a restart keeps it, an append lost between offsets.log and the topic is made up for
// at the next start, and clients cannot write or reshape it.

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/groups"
)

// offsetsRecord is one record of __consumer_offsets, decoded with kmsg.
type offsetsRecord struct {
	partition int32
	offset    int64
	// one of these, by the key's version
	commitKey *kmsg.OffsetCommitKey
	groupKey  *kmsg.GroupMetadataKey
	// nil for a tombstone
	commit *kmsg.OffsetCommitValue
	group  *kmsg.GroupMetadataValue
}

func (r offsetsRecord) groupName() string {
	if r.commitKey != nil {
		return r.commitKey.Group
	}
	return r.groupKey.Group
}

// readOffsetsTopic consumes every partition of __consumer_offsets from its start up to
// its end now, as a client would, and decodes each record.
func readOffsetsTopic(t *testing.T, addr string) []offsetsRecord {
	t.Helper()
	ctx := testCtx(t)
	_, adm := newAdmin(t, addr)
	ends, err := adm.ListEndOffsets(ctx, offsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(offsetsTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []offsetsRecord
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading __consumer_offsets: %v; partitions left %v", ctx.Err(), want)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("fetch %s-%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, decodeOffsetsRecord(t, r))
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

func decodeOffsetsRecord(t *testing.T, r *kgo.Record) offsetsRecord {
	t.Helper()
	or := offsetsRecord{partition: r.Partition, offset: r.Offset}
	if len(r.Key) < 2 {
		t.Fatalf("record %d/%d: key %x", r.Partition, r.Offset, r.Key)
	}
	switch v := int16(binary.BigEndian.Uint16(r.Key)); v {
	case 1:
		k := kmsg.NewOffsetCommitKey()
		if err := k.ReadFrom(r.Key); err != nil {
			t.Fatalf("offset commit key: %v", err)
		}
		or.commitKey = &k
		if r.Value != nil {
			val := kmsg.NewOffsetCommitValue()
			if err := val.ReadFrom(r.Value); err != nil || val.Version != 3 {
				t.Fatalf("offset commit value v%d: %v", val.Version, err)
			}
			or.commit = &val
		}
	case 2:
		k := kmsg.NewGroupMetadataKey()
		if err := k.ReadFrom(r.Key); err != nil {
			t.Fatalf("group metadata key: %v", err)
		}
		or.groupKey = &k
		if r.Value != nil {
			val := kmsg.NewGroupMetadataValue()
			if err := val.ReadFrom(r.Value); err != nil || val.Version != 3 {
				t.Fatalf("group metadata value v%d: %v", val.Version, err)
			}
			or.group = &val
		}
	default:
		t.Fatalf("record %d/%d: key version %d", r.Partition, r.Offset, v)
	}
	return or
}

// latestOf is the last record of each key (the topic as compaction leaves it).
func latestOf(recs []offsetsRecord) map[string]offsetsRecord {
	out := map[string]offsetsRecord{}
	for _, r := range recs {
		var k string
		if r.commitKey != nil {
			k = "offset/" + r.commitKey.Group + "/" + r.commitKey.Topic + "/" + strconv.Itoa(int(r.commitKey.Partition))
		} else {
			k = "group/" + r.groupKey.Group
		}
		out[k] = r
	}
	return out
}

func TestOffsetsTopicFromClients(t *testing.T) {
	o := groupTestOptions(t)
	o.OffsetsTopicPartitions = 50 // Kafka's offsets.topic.num.partitions
	b := startBroker(t, o)
	addr := b.Addr()
	ctx := testCtx(t)
	_, adm := newAdmin(t, addr)
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "ot"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	produceSeq(t, addr, "ot", 0, 20)

	// Metadata: an internal topic of 50 partitions.
	td, err := adm.ListTopicsWithInternal(ctx, offsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	if d := td[offsetsTopic]; d.Err != nil || !d.IsInternal || len(d.Partitions) != 50 {
		t.Fatalf("metadata of %s: %+v", offsetsTopic, d)
	}
	if plain, err := adm.ListTopics(ctx); err != nil || plain.Has(offsetsTopic) {
		t.Fatalf("ListTopics without internal: %v %v", plain.Names(), err)
	}

	// A group member consumes everything and commits.
	before := time.Now().UnixMilli()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("ot-client"), kgo.ConsumerGroup("ot-group"),
		kgo.ConsumeTopics("ot"), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(2*time.Second), kgo.HeartbeatInterval(200*time.Millisecond), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < 20; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		n += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	committed, err := adm.FetchOffsets(ctx, "ot-group")
	if err != nil {
		t.Fatal(err)
	}
	// An admin (simple) commit with metadata, for a second group.
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: "ot", Partition: 1, At: 7, LeaderEpoch: -1, Metadata: "hello"})
	if r, err := adm.CommitOffsets(ctx, "ot-admin", offs); err != nil || r.Error() != nil {
		t.Fatal(err, r.Error())
	}

	recs := readOffsetsTopic(t, addr)
	latest := latestOf(recs)
	for _, r := range recs {
		if want := groups.PartitionFor(r.groupName(), 50); r.partition != want {
			t.Errorf("group %q's record in partition %d, want %d", r.groupName(), r.partition, want)
		}
	}
	for _, p := range []int32{0, 1} {
		r, ok := latest["offset/ot-group/ot/"+strconv.Itoa(int(p))]
		c, _ := committed.Lookup("ot", p)
		if !ok || r.commit == nil || r.commit.Offset != c.At || r.commit.Offset <= 0 || r.commit.CommitTimestamp < before ||
			r.commit.CommitTimestamp > time.Now().UnixMilli() || r.commit.LeaderEpoch != c.LeaderEpoch {
			t.Errorf("ot-group ot/%d: %+v (committed %+v)", p, r.commit, c)
		}
	}
	if r := latest["offset/ot-admin/ot/1"]; r.commit == nil || r.commit.Offset != 7 || r.commit.Metadata != "hello" || r.commit.LeaderEpoch != -1 {
		t.Errorf("ot-admin ot/1: %+v", r.commit)
	}
	g := latest["group/ot-group"].group
	if g == nil || g.ProtocolType != "consumer" || g.Generation < 1 || g.Protocol == nil || g.Leader == nil || len(g.Members) != 1 {
		t.Fatalf("ot-group metadata: %+v", g)
	}
	m := g.Members[0]
	var sub kmsg.ConsumerMemberMetadata
	if m.MemberID != *g.Leader || m.ClientID != "ot-client" || !strings.HasPrefix(m.ClientHost, "/127.0.0.1") ||
		m.SessionTimeoutMillis != 2000 || sub.ReadFrom(m.Subscription) != nil || len(sub.Topics) != 1 || sub.Topics[0] != "ot" || len(m.Assignment) == 0 {
		t.Fatalf("ot-group member: %+v (subscription %+v)", m, sub)
	}
	gen := g.Generation

	// Leaving makes the group Empty at the next generation.
	cl.Close()
	waitFor(t, "the Empty group record", func() bool {
		g := latestOf(readOffsetsTopic(t, addr))["group/ot-group"].group
		return g != nil && len(g.Members) == 0
	})
	g = latestOf(readOffsetsTopic(t, addr))["group/ot-group"].group
	if g.Generation != gen+1 || g.ProtocolType != "consumer" || g.Protocol != nil || g.Leader != nil {
		t.Fatalf("Empty ot-group: %+v", g)
	}

	// OffsetDelete: a tombstone for that partition only; DeleteGroups: for the rest.
	if r, err := adm.DeleteOffsets(ctx, "ot-admin", kadm.TopicsSet{"ot": {1: {}}}); err != nil || r.Error() != nil {
		t.Fatal(err, r.Error())
	}
	if r, err := adm.DeleteGroups(ctx, "ot-group"); err != nil || r.Error() != nil {
		t.Fatal(err, r.Error())
	}
	latest = latestOf(readOffsetsTopic(t, addr))
	for _, k := range []string{"offset/ot-admin/ot/1", "offset/ot-group/ot/0", "offset/ot-group/ot/1", "group/ot-group"} {
		if r, ok := latest[k]; !ok || r.commit != nil || r.group != nil {
			t.Errorf("%s: want a tombstone, got %+v", k, r)
		}
	}
}

func TestOffsetsTopicRestartAndReconcile(t *testing.T) {
	o := groupTestOptions(t)
	o.OffsetsTopicPartitions = 5
	b := startBroker(t, o)
	ctx := testCtx(t)
	_, adm := newAdmin(t, b.Addr())
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "rc"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	commit := func(adm *kadm.Client, group string, p int32, at int64) {
		t.Helper()
		var offs kadm.Offsets
		offs.Add(kadm.Offset{Topic: "rc", Partition: p, At: at, LeaderEpoch: -1, Metadata: group})
		if r, err := adm.CommitOffsets(ctx, group, offs); err != nil || r.Error() != nil {
			t.Fatal(err, r.Error())
		}
	}
	commit(adm, "kept", 0, 3)
	commit(adm, "gone", 0, 4)
	commit(adm, "gone", 1, 5)
	before := readOffsetsTopic(t, b.Addr())
	if len(before) != 3 {
		t.Fatalf("%d records, want 3: %+v", len(before), before)
	}

	// A clean restart keeps the topic and appends nothing.
	b = restartBroker(t, b, o)
	_, adm = newAdmin(t, b.Addr())
	if got := readOffsetsTopic(t, b.Addr()); len(got) != 3 {
		t.Fatalf("after a restart: %d records, want 3", len(got))
	}

	// The appends after offsets.log fail (a crash in between): the commit and the delete
	// are acknowledged, and the topic misses them until the next start.
	failOffsetsAppend.Store(true)
	t.Cleanup(func() { failOffsetsAppend.Store(false) })
	commit(adm, "kept", 0, 30)
	commit(adm, "kept", 1, 31)
	if r, err := adm.DeleteGroups(ctx, "gone"); err != nil || r.Error() != nil {
		t.Fatal(err, r.Error())
	}
	if got := readOffsetsTopic(t, b.Addr()); len(got) != 3 {
		t.Fatalf("with appends failing: %d records, want 3", len(got))
	}
	failOffsetsAppend.Store(false)
	b = restartBroker(t, b, o)
	latest := latestOf(readOffsetsTopic(t, b.Addr()))
	if r := latest["offset/kept/rc/0"]; r.commit == nil || r.commit.Offset != 30 || r.commit.Metadata != "kept" {
		t.Errorf("kept rc/0 after reconciling: %+v", r.commit)
	}
	if r := latest["offset/kept/rc/1"]; r.commit == nil || r.commit.Offset != 31 {
		t.Errorf("kept rc/1 after reconciling: %+v", r.commit)
	}
	for _, k := range []string{"offset/gone/rc/0", "offset/gone/rc/1"} {
		if r, ok := latest[k]; !ok || r.commit != nil {
			t.Errorf("%s after reconciling: want a tombstone, got %+v", k, r.commit)
		}
	}
	n := len(readOffsetsTopic(t, b.Addr()))
	// Reconciled: the next start has nothing to add.
	b = restartBroker(t, b, o)
	if got := len(readOffsetsTopic(t, b.Addr())); got != n {
		t.Fatalf("a second restart appended %d records", got-n)
	}
}

// A group whose members were in the topic when the broker stopped is Empty after the
// restart (members are not kept across one), at the next generation.
func TestOffsetsTopicMembersGoneAfterRestart(t *testing.T) {
	o := groupTestOptions(t)
	b := startBroker(t, o)
	ctx := testCtx(t)
	_, adm := newAdmin(t, b.Addr())
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "mg"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	produceSeq(t, b.Addr(), "mg", 0, 3)
	d := &cutDialer{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("mg-group"), kgo.ConsumeTopics("mg"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.Dialer(d.dial), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for n := 0; n < 3; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		n += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	d.cutNow() // the member never leaves
	g := latestOf(readOffsetsTopic(t, b.Addr()))["group/mg-group"].group
	if g == nil || len(g.Members) != 1 {
		t.Fatalf("before the restart: %+v", g)
	}
	b = restartBroker(t, b, o)
	after := latestOf(readOffsetsTopic(t, b.Addr()))["group/mg-group"].group
	if after == nil || len(after.Members) != 0 || after.Generation != g.Generation+1 || after.ProtocolType != "consumer" {
		t.Fatalf("after the restart: %+v", after)
	}
	// The coordinator says what the topic says (Kafka's loaded group): ListGroups keeps
	// the protocol type, DescribeGroups the state.
	_, adm = newAdmin(t, b.Addr())
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lg, ok := listed["mg-group"]; !ok || lg.ProtocolType != "consumer" || lg.State != "Empty" {
		t.Fatalf("ListGroups after the restart: %+v", listed)
	}
}

func TestOffsetsTopicRefusesChanges(t *testing.T) {
	b := startBroker(t, testOptions(t))
	ctx := testCtx(t)
	cl, adm := newAdmin(t, b.Addr())

	// Produce: Kafka's ReplicaManager answer.
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = offsetsTopic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = internalBatch([]groups.TopicRecord{{Key: groups.GroupKey("x"), Value: []byte("x")}}, time.Now().UnixMilli())
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if sp := resp.Topics[0].Partitions[0]; sp.ErrorCode != kerr.InvalidTopicException.Code || sp.ErrorMessage == nil ||
		*sp.ErrorMessage != "Cannot append to internal topic __consumer_offsets" {
		t.Fatalf("produce: %+v", sp)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: offsetsTopic, Key: []byte("k"), Value: []byte("v")}).FirstErr(); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("kgo produce: %v", err)
	}

	// kadm returns a topic's error as its error too.
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, offsetsTopic); !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create: %v", err)
	}
	if _, err := adm.DeleteTopic(ctx, offsetsTopic); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("delete: %v", err)
	}
	if r, err := adm.CreatePartitions(ctx, 2, offsetsTopic); err != nil || !errors.Is(r[offsetsTopic].Err, kerr.InvalidPartitions) {
		t.Fatalf("create partitions: %v %+v", err, r)
	}
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{offsetsTopic: {0: {Topic: offsetsTopic, Partition: 0, At: 0}}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := dr.Lookup(offsetsTopic, 0); !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Fatalf("delete records: %+v", r)
	}
	if got := len(b.topic(offsetsTopic).parts); got != 1 {
		t.Fatalf("%d partitions now", got)
	}

	// Its configs are Kafka's overrides.
	rc, err := adm.DescribeTopicConfigs(ctx, offsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc[0].Configs {
		if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			got[c.Key] = c.MaybeValue()
		}
	}
	if got["cleanup.policy"] != "compact" || got["segment.bytes"] != "104857600" || got["compression.type"] != "producer" {
		t.Fatalf("configs: %v", got)
	}
}

// A data dir from before __consumer_offsets was a topic (offsets.log only) opens: the
// topic is created and filled from offsets.log, which stays where it was.
func TestOffsetsTopicOldDataDir(t *testing.T) {
	o := testOptions(t)
	o.OffsetsTopicPartitions = 3
	dir := filepath.Join(o.Dir, offsetsTopic)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	log := `{"g":"old","t":"legacy","p":1,"o":42,"e":3,"m":"meta","ts":1700000000000}` + "\n" +
		`{"g":"old","t":"legacy","o":7,"ts":1700000000001}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "offsets.log"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	topics := `{"version":1,"topics":[{"name":"legacy","id":"000102030405060708090a0b0c0d0e0f","partitions":2}]}` + "\n"
	if err := os.WriteFile(filepath.Join(o.Dir, "topics.json"), []byte(topics), 0o644); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, o)
	ctx := testCtx(t)
	_, adm := newAdmin(t, b.Addr())
	fo, err := adm.FetchOffsets(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := fo.Lookup("legacy", 1); r.At != 42 || r.Metadata != "meta" {
		t.Fatalf("fetched %+v", r)
	}
	latest := latestOf(readOffsetsTopic(t, b.Addr()))
	if r := latest["offset/old/legacy/1"]; r.commit == nil || r.commit.Offset != 42 || r.commit.LeaderEpoch != 3 ||
		r.commit.Metadata != "meta" || r.commit.CommitTimestamp != 1700000000000 || r.partition != groups.PartitionFor("old", 3) {
		t.Fatalf("legacy/1 in the topic: %+v", r)
	}
	if r := latest["offset/old/legacy/0"]; r.commit == nil || r.commit.Offset != 7 || r.commit.CommitTimestamp != 1700000000001 {
		t.Fatalf("legacy/0 in the topic: %+v", r.commit)
	}
	for _, p := range []string{filepath.Join(dir, "offsets.log"), filepath.Join(o.Dir, offsetsTopic+"-0"), filepath.Join(o.Dir, "legacy-1")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
	}
}

// TxnOffsetCommit's offsets reach the topic when their transaction commits, not when
// they are sent, and never when it aborts.
func TestOffsetsTopicTransactionalCommit(t *testing.T) {
	ctx := testCtx(t)
	b, addr := txnBroker(t, testOptions(t))
	cl, _ := newAdmin(t, addr)
	createTopic(t, ctx, addr, "tt", 1)
	id := "otx"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	ir := txnReq[*kmsg.InitProducerIDResponse](t, ctx, cl, init)
	txn := func(offset int64, commit bool) {
		t.Helper()
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = id, ir.ProducerID, ir.ProducerEpoch, "txg"
		if c := txnReq[*kmsg.AddOffsetsToTxnResponse](t, ctx, cl, ao).ErrorCode; c != 0 {
			t.Fatal(kerr.ErrorForCode(c))
		}
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = id, "txg", ir.ProducerID, ir.ProducerEpoch
		req.Generation = -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "tt"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Offset, rp.LeaderEpoch = offset, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if c := txnReq[*kmsg.TxnOffsetCommitResponse](t, ctx, cl, req).Topics[0].Partitions[0].ErrorCode; c != 0 {
			t.Fatal(kerr.ErrorForCode(c))
		}
		if got := readOffsetsTopic(t, b.Addr()); len(got) != 0 && latestOf(got)["offset/txg/tt/0"].commit.Offset == offset {
			t.Fatalf("offset %d in the topic before its transaction ended", offset)
		}
		end := kmsg.NewPtrEndTxnRequest()
		end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, ir.ProducerID, ir.ProducerEpoch, commit
		if c := txnReq[*kmsg.EndTxnResponse](t, ctx, cl, end).ErrorCode; c != 0 {
			t.Fatal(kerr.ErrorForCode(c))
		}
	}
	txn(5, true)
	txn(9, false)
	recs := readOffsetsTopic(t, b.Addr())
	if len(recs) != 1 || recs[0].commit == nil || recs[0].commit.Offset != 5 || recs[0].commitKey.Group != "txg" {
		t.Fatalf("records after a committed and an aborted transaction: %+v", recs)
	}
}

// Offsets of a group empty for offsets_retention expire: a tombstone for each (a group
// that never had a generation has no metadata record to remove).
func TestOffsetsTopicExpiry(t *testing.T) {
	o := groupTestOptions(t)
	var now atomic.Int64
	now.Store(time.Now().UnixMilli())
	o.Now = func() time.Time { return time.UnixMilli(now.Load()) }
	// Short, so the idle reaper checks every 100 ms (of wall time); the clock only moves
	// when the test moves it.
	o.Groups.OffsetsRetention = 100 * time.Millisecond
	b := startBroker(t, o)
	ctx := testCtx(t)
	_, adm := newAdmin(t, b.Addr())
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "ex"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: "ex", Partition: 0, At: 11, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, "exg", offs); err != nil || r.Error() != nil {
		t.Fatal(err, r.Error())
	}
	if r := latestOf(readOffsetsTopic(t, b.Addr()))["offset/exg/ex/0"]; r.commit == nil || r.commit.Offset != 11 {
		t.Fatalf("before expiry: %+v", r.commit)
	}
	now.Add((2 * time.Hour).Milliseconds())
	waitFor(t, "the expired offset's tombstone", func() bool {
		r, ok := latestOf(readOffsetsTopic(t, b.Addr()))["offset/exg/ex/0"]
		return ok && r.commit == nil
	})
	if fo, err := adm.FetchOffsets(ctx, "exg"); err != nil || len(fo) != 0 {
		t.Fatalf("offsets after expiry: %v %v", fo, err)
	}
}
