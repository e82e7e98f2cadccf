package broker

// Transactions through real clients (franz-go's transactional producer,
// GroupTransactSession, read_committed consumers) and raw requests for the error paths.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func txnProducer(t *testing.T, addr, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.TransactionalID(id), kgo.DefaultProduceTopic("t"),
		kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// txnBroker starts a broker with options o and a one-partition topic "t", the setup of
// the transaction tests, and returns it with its address.
func txnBroker(t *testing.T, o Options) (*Broker, string) {
	t.Helper()
	b := startBroker(t, o)
	createTopic(t, testCtx(t), b.Addr(), "t", 1)
	return b, b.Addr()
}

// produceTxn runs one transaction of the given values and ends it with commit.
func produceTxn(t *testing.T, ctx context.Context, cl *kgo.Client, commit bool, values ...string) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction: %v", err)
	}
}

// committedUpToEnd commits a last transaction "end" with p and reads topic with
// read_committed up to it: what a consumer sees of the transactions before.
func committedUpToEnd(t *testing.T, ctx context.Context, p *kgo.Client, addr, topic string) []string {
	t.Helper()
	produceTxn(t, ctx, p, true, "end")
	return readUntil(t, ctx, addr, topic, true, "end")
}

// readUntil consumes topic from the start with the isolation level until it has seen
// the value last, and returns every value before it.
func readUntil(t *testing.T, ctx context.Context, addr, topic string, committed bool, last string) []string {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s never arrived; read %v", last, out)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("fetch: %v", errs[0].Err)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if done {
				return
			}
			if string(r.Value) == last {
				done = true
				return
			}
			out = append(out, string(r.Value))
		})
		if done {
			return out
		}
	}
}

func createTopic(t *testing.T, ctx context.Context, addr, topic string, parts int32) {
	t.Helper()
	_, adm := newAdmin(t, addr)
	if _, err := adm.CreateTopic(ctx, parts, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

// TestTxnCommitAbortReadCommittedAcrossRestart: committed transactions are read by a
// read_committed consumer, aborted and open ones are not (read_uncommitted sees them
// all); ListOffsets read_committed answers the last stable offset; after a restart the
// open transaction still holds the last stable offset, and a new producer with the same
// transactional id aborts it.
func TestTxnCommitAbortReadCommittedAcrossRestart(t *testing.T) {
	ctx := testCtx(t)
	o := testOptions(t)
	o.Flush.Mode = "always"
	b, addr := txnBroker(t, o)

	p := txnProducer(t, addr, "tx1")
	produceTxn(t, ctx, p, true, "c1", "c2")
	produceTxn(t, ctx, p, false, "a1", "a2")
	produceTxn(t, ctx, p, true, "c3")
	// An open transaction from a second producer.
	open := txnProducer(t, addr, "tx2")
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, &kgo.Record{Value: []byte("open1")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	produceTxn(t, ctx, p, true, "c4")
	plain, _ := newAdmin(t, addr, kgo.DefaultProduceTopic("t"))
	if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	if got := readUntil(t, ctx, addr, "t", false, "end"); fmt.Sprint(got) != "[c1 c2 a1 a2 c3 open1 c4]" {
		t.Fatalf("read_uncommitted: %v", got)
	}
	_, adm := newAdmin(t, addr)
	lso := b.partition("t", 0).log.LastStableOffset()
	// c1 c2 m a1 a2 m c3 m open1 ...: the open transaction starts at offset 8.
	if lso != 8 {
		t.Fatalf("last stable offset %d, want 8", lso)
	}
	ends, err := adm.ListCommittedOffsets(ctx, "t")
	if err != nil || ends["t"][0].Offset != 8 {
		t.Fatalf("ListOffsets read_committed: %v %v", ends, err)
	}
	ends, err = adm.ListEndOffsets(ctx, "t")
	if err != nil || ends["t"][0].Offset != b.partition("t", 0).log.HighWatermark() {
		t.Fatalf("ListOffsets latest: %v %v", ends, err)
	}
	open.Close()
	p.Close()

	// Restart (a clean stop; TestTxnKill9 covers the crash).
	b = restartBroker(t, b, o)
	if lso := b.partition("t", 0).log.LastStableOffset(); lso != 8 {
		t.Fatalf("last stable offset after restart %d, want 8", lso)
	}
	// The new producer of tx2 fences the old one and aborts its transaction.
	p2 := txnProducer(t, addr, "tx2")
	produceTxn(t, ctx, p2, true, "c5")
	produceTxn(t, ctx, p2, true, "end2")
	if got := readUntil(t, ctx, addr, "t", true, "end2"); fmt.Sprint(got) != "[c1 c2 c3 c4 end c5]" {
		t.Fatalf("read_committed after restart: %v", got)
	}
	if lso, hw := b.partition("t", 0).log.LastStableOffset(), b.partition("t", 0).log.HighWatermark(); lso != hw {
		t.Fatalf("last stable offset %d, high watermark %d", lso, hw)
	}
}

// txnReq sends a raw request through cl and fails the test on a transport error.
func txnReq[R kmsg.Response](t *testing.T, ctx context.Context, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	resp, err := cl.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(R)
}

// TestTxnErrorPaths drives the coordinator's answers with raw requests.
func TestTxnErrorPaths(t *testing.T) {
	ctx := testCtx(t)
	o := testOptions(t)
	b, addr := txnBroker(t, o)
	cl, _ := newAdmin(t, addr)

	init := func(version int16, timeout int32, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version = version
		id := "x"
		req.TransactionalID, req.TransactionTimeoutMillis, req.ProducerID, req.ProducerEpoch = &id, timeout, pid, epoch
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// FindCoordinator for a transactional id answers this broker.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType, fc.CoordinatorKey = 1, "x"
	fc.Version = 3
	if r, err := fc.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 || r.NodeID != b.opts.NodeID {
		t.Fatalf("FindCoordinator: %+v %v", r, err)
	}
	if r := init(4, int32((16 * time.Minute).Milliseconds()), -1, -1); r.ErrorCode != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("timeout above the max: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	first := init(4, 60000, -1, -1)
	second := init(4, 60000, -1, -1)
	if first.ErrorCode != 0 || second.ProducerID != first.ProducerID || second.ProducerEpoch != first.ProducerEpoch+1 {
		t.Fatalf("re-init: %+v then %+v", first, second)
	}
	// A request naming a stale epoch is fenced (kgo sends the newest version: the
	// INVALID_PRODUCER_EPOCH of older versions is fenced()'s, TestFencedCodeByVersion).
	if r := init(4, 60000, first.ProducerID, first.ProducerEpoch); r.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("stale init v4: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	pid, epoch := second.ProducerID, second.ProducerEpoch

	end := func(version int16, pid int64, epoch int16, commit bool) int16 {
		req := kmsg.NewPtrEndTxnRequest()
		req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = version, "x", pid, epoch, commit
		return txnReq[*kmsg.EndTxnResponse](t, ctx, cl, req).ErrorCode
	}
	if c := end(3, pid, epoch, true); c != kerr.InvalidTxnState.Code {
		t.Fatalf("EndTxn with no transaction: %v", kerr.ErrorForCode(c))
	}
	if c := end(3, pid+1000, epoch, true); c != kerr.InvalidProducerIDMapping.Code {
		t.Fatalf("EndTxn with another producer id: %v", kerr.ErrorForCode(c))
	}
	if c := end(3, pid, epoch-1, true); c != kerr.ProducerFenced.Code {
		t.Fatalf("EndTxn v3 old epoch: %v", kerr.ErrorForCode(c))
	}
	add := func(topic string, part int32) *kmsg.AddPartitionsToTxnResponse {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = 3, "x", pid, epoch
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = topic, []int32{part}
		req.Topics = append(req.Topics, rt)
		return txnReq[*kmsg.AddPartitionsToTxnResponse](t, ctx, cl, req)
	}
	if r := add("nope", 0); r.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("add unknown partition: %+v", r)
	}
	// Produce to a partition not in the transaction: INVALID_TXN_STATE.
	produce := func(epoch int16, seq int32) int16 {
		batch := txnBatch(pid, epoch, seq)
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
		id := "x"
		req.TransactionID = &id
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = 0, batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return txnReq[*kmsg.ProduceResponse](t, ctx, cl, req).Topics[0].Partitions[0].ErrorCode
	}
	if c := produce(epoch, 0); c != kerr.InvalidTxnState.Code {
		t.Fatalf("produce outside the transaction: %v", kerr.ErrorForCode(c))
	}
	if r := add("t", 0); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("add: %+v", r)
	}
	if c := produce(epoch, 0); c != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(c))
	}
	if c := produce(epoch, 5); c != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("produce with a sequence gap: %v", kerr.ErrorForCode(c))
	}
	// Offsets staged in the transaction: unstable until it commits.
	addOffs := kmsg.NewPtrAddOffsetsToTxnRequest()
	addOffs.Version, addOffs.TransactionalID, addOffs.ProducerID, addOffs.ProducerEpoch, addOffs.Group = 3, "x", pid, epoch, "g"
	if r := txnReq[*kmsg.AddOffsetsToTxnResponse](t, ctx, cl, addOffs); r.ErrorCode != 0 {
		t.Fatalf("AddOffsetsToTxn: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	toc := kmsg.NewPtrTxnOffsetCommitRequest()
	toc.Version, toc.TransactionalID, toc.Group, toc.ProducerID, toc.ProducerEpoch = 3, "x", "g", pid, epoch
	tt := kmsg.NewTxnOffsetCommitRequestTopic()
	tt.Topic = "t"
	tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	tp.Partition, tp.Offset = 0, 42
	tt.Partitions = append(tt.Partitions, tp)
	toc.Topics = append(toc.Topics, tt)
	if r := txnReq[*kmsg.TxnOffsetCommitResponse](t, ctx, cl, toc); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("TxnOffsetCommit: %+v", r)
	}
	fetchOffset := func(stable bool) (int64, int16) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group, req.RequireStable = 7, "g", stable
		ft := kmsg.NewOffsetFetchRequestTopic()
		ft.Topic, ft.Partitions = "t", []int32{0}
		req.Topics = append(req.Topics, ft)
		r := txnReq[*kmsg.OffsetFetchResponse](t, ctx, cl, req)
		return r.Topics[0].Partitions[0].Offset, r.Topics[0].Partitions[0].ErrorCode
	}
	if off, c := fetchOffset(false); off != -1 || c != 0 {
		t.Fatalf("OffsetFetch during the transaction: %d %v", off, kerr.ErrorForCode(c))
	}
	if _, c := fetchOffset(true); c != kerr.UnstableOffsetCommit.Code {
		t.Fatalf("OffsetFetch require_stable: %v", kerr.ErrorForCode(c))
	}
	if c := end(3, pid, epoch, true); c != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(c))
	}
	if c := end(3, pid, epoch, true); c != 0 {
		t.Fatalf("commit retried: %v", kerr.ErrorForCode(c))
	}
	if c := end(3, pid, epoch, false); c != kerr.InvalidTxnState.Code {
		t.Fatalf("abort after commit: %v", kerr.ErrorForCode(c))
	}
	if off, c := fetchOffset(true); off != 42 || c != 0 {
		t.Fatalf("OffsetFetch after commit: %d %v", off, kerr.ErrorForCode(c))
	}
	// A transaction past its timeout is aborted with the epoch bumped: fenced.
	init(4, 1, pid, epoch)
	epoch++
	if r := add("t", 0); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("add: %+v", r)
	}
	if c := produce(epoch, 0); c != 0 {
		t.Fatalf("produce: %v", kerr.ErrorForCode(c))
	}
	deadline := time.Now().Add(30 * time.Second)
	for b.partition("t", 0).log.LastStableOffset() != b.partition("t", 0).log.HighWatermark() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		b.txns.sweep()
	}
	if c := end(3, pid, epoch, true); c != kerr.ProducerFenced.Code {
		t.Fatalf("commit after the timeout: %v", kerr.ErrorForCode(c))
	}
	if c := produce(epoch, 1); c != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("produce after the timeout: %v", kerr.ErrorForCode(c))
	}
	// A transactional batch without a transactional id is refused.
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 9, -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = txnBatch(pid, epoch, 0)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if c := txnReq[*kmsg.ProduceResponse](t, ctx, cl, req).Topics[0].Partitions[0].ErrorCode; c != kerr.InvalidRecord.Code {
		t.Fatalf("transactional batch without an id: %v", kerr.ErrorForCode(c))
	}
}

// txnBatch is a one-record transactional RecordBatch v2.
func txnBatch(pid int64, epoch int16, seq int32) []byte {
	raw := batch(1, 1, []byte("v"))
	raw[22] |= 0x10 // transactional
	binary.BigEndian.PutUint64(raw[43:], uint64(pid))
	binary.BigEndian.PutUint16(raw[51:], uint16(epoch))
	binary.BigEndian.PutUint32(raw[53:], uint32(seq))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// TestFencedCodeByVersion: PRODUCER_FENCED from the versions of KIP-588, before them
// INVALID_PRODUCER_EPOCH.
func TestFencedCodeByVersion(t *testing.T) {
	if fenced(3, 4) != kerr.InvalidProducerEpoch.Code || fenced(4, 4) != kerr.ProducerFenced.Code ||
		fenced(1, 2) != kerr.InvalidProducerEpoch.Code || fenced(2, 2) != kerr.ProducerFenced.Code {
		t.Fatal("fenced codes")
	}
}

// TestTxnResumesAcrossRestart: an Ongoing transaction survives a broker restart and its
// producer (the same client, reconnecting) adds to it and commits it.
func TestTxnResumesAcrossRestart(t *testing.T) {
	ctx := testCtx(t)
	o := testOptions(t)
	b, addr := txnBroker(t, o)
	p := txnProducer(t, addr, "r1")
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// ListOffsets by time finds the open transaction's record read_uncommitted only.
	cl, _ := newAdmin(t, addr)
	for iso, want := range map[int8]int64{0: 0, 1: -1} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.IsolationLevel = iso
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		if got := txnReq[*kmsg.ListOffsetsResponse](t, ctx, cl, req).Topics[0].Partitions[0].Offset; got != want {
			t.Fatalf("ListOffsets by time, isolation %d: %d, want %d", iso, got, want)
		}
	}
	cl.Close()
	restartBroker(t, b, o)
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got := committedUpToEnd(t, ctx, p, addr, "t"); fmt.Sprint(got) != "[before after]" {
		t.Fatalf("read_committed: %v", got)
	}
}

// TestTxnPreparedCompletedAtStart: a transaction whose commit decision was written but
// whose markers were not (a crash in between) is completed when the broker starts:
// markers written, offsets committed, state CompleteCommit. A torn last line of txn.log
// is ignored.
func TestTxnPreparedCompletedAtStart(t *testing.T) {
	ctx := testCtx(t)
	o := testOptions(t)
	b, addr := txnBroker(t, o)
	cl, _ := newAdmin(t, addr)
	init := kmsg.NewPtrInitProducerIDRequest()
	id := "p1"
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	ir := txnReq[*kmsg.InitProducerIDResponse](t, ctx, cl, init)
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, ir.ProducerID, ir.ProducerEpoch
	at := kmsg.NewAddPartitionsToTxnRequestTopic()
	at.Topic, at.Partitions = "t", []int32{0}
	add.Topics = append(add.Topics, at)
	txnReq[*kmsg.AddPartitionsToTxnResponse](t, ctx, cl, add)
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis, req.TransactionID = -1, 5000, &id
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = txnBatch(ir.ProducerID, ir.ProducerEpoch, 0)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if c := txnReq[*kmsg.ProduceResponse](t, ctx, cl, req).Topics[0].Partitions[0].ErrorCode; c != 0 {
		t.Fatal(kerr.ErrorForCode(c))
	}
	cl.Close()
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// What a crash after the PrepareCommit line leaves: that line, then a torn one.
	path := filepath.Join(o.Dir, "__transaction_state", "txn.log")
	m := b.txns.txns[id]
	m.State = txnPrepareCommit
	line, _ := json.Marshal(m)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(append(line, '\n'))
	f.Write([]byte(`{"id":"p1","pid":`))
	f.Close()

	b = startBroker(t, o)
	l := b.partition("t", 0).log
	if lso, hw := l.LastStableOffset(), l.HighWatermark(); lso != hw || hw != 2 {
		t.Fatalf("last stable offset %d, high watermark %d; want 2, 2", lso, hw)
	}
	if st := b.txns.txns[id].State; st != txnCompleteCommit {
		t.Fatalf("state %s", st)
	}
	if got := l.AbortedTxns(0, 2); len(got) != 0 {
		t.Fatalf("aborted: %+v", got)
	}
}

// TestTxnOffsetCommitChecks: TxnOffsetCommit needs the group added to the transaction
// and, naming a member, that member at the group's generation.
func TestTxnOffsetCommitChecks(t *testing.T) {
	ctx := testCtx(t)
	b, addr := txnBroker(t, testOptions(t))
	cl, _ := newAdmin(t, addr)
	init := kmsg.NewPtrInitProducerIDRequest()
	id := "o1"
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	ir := txnReq[*kmsg.InitProducerIDResponse](t, ctx, cl, init)
	commit := func(gen int32, member string) int16 {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = id, "g", ir.ProducerID, ir.ProducerEpoch
		req.Generation, req.MemberID = gen, member
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Offset = 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return txnReq[*kmsg.TxnOffsetCommitResponse](t, ctx, cl, req).Topics[0].Partitions[0].ErrorCode
	}
	if c := commit(-1, ""); c != kerr.InvalidTxnState.Code {
		t.Fatalf("group not added: %v", kerr.ErrorForCode(c))
	}
	if c := commit(3, "nobody"); c != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member: %v", kerr.ErrorForCode(c))
	}
	ao := kmsg.NewPtrAddOffsetsToTxnRequest()
	ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = id, ir.ProducerID, ir.ProducerEpoch+1, "g"
	if c := txnReq[*kmsg.AddOffsetsToTxnResponse](t, ctx, cl, ao).ErrorCode; c != kerr.ProducerFenced.Code {
		t.Fatalf("AddOffsetsToTxn with a wrong epoch: %v", kerr.ErrorForCode(c))
	}
	ao.ProducerEpoch = ir.ProducerEpoch
	if c := txnReq[*kmsg.AddOffsetsToTxnResponse](t, ctx, cl, ao).ErrorCode; c != 0 {
		t.Fatal(kerr.ErrorForCode(c))
	}
	if c := commit(-1, ""); c != 0 {
		t.Fatalf("commit: %v", kerr.ErrorForCode(c))
	}
	// An abort drops the staged offset.
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch = id, ir.ProducerID, ir.ProducerEpoch
	if c := txnReq[*kmsg.EndTxnResponse](t, ctx, cl, end).ErrorCode; c != 0 {
		t.Fatal(kerr.ErrorForCode(c))
	}
	if offs := b.groups.Fetch("g"); len(offs) != 0 {
		t.Fatalf("offsets after an abort: %v", offs)
	}
}

// TestTxnFencing: a second producer with the same transactional id fences the first:
// its open transaction is aborted and its next requests fail.
func TestTxnFencing(t *testing.T) {
	ctx := testCtx(t)
	_, addr := txnBroker(t, testOptions(t))
	p1 := txnProducer(t, addr, "f")
	if err := p1.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p1.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p2 := txnProducer(t, addr, "f")
	produceTxn(t, ctx, p2, true, "live")
	err := p1.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie2")}).FirstErr()
	if err == nil {
		err = p1.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.ProducerFenced) {
		t.Fatalf("fenced producer: %v", err)
	}
	if got := committedUpToEnd(t, ctx, p2, addr, "t"); fmt.Sprint(got) != "[live]" {
		t.Fatalf("read_committed: %v", got)
	}
}

// TestTxnTimeoutAbortsAndFences: the background check aborts a transaction past its
// transaction.timeout.ms with a bumped epoch; the producer's next request is fenced and
// read_committed never shows the transaction's records.
func TestTxnTimeoutAbortsAndFences(t *testing.T) {
	ctx := testCtx(t)
	o := testOptions(t)
	o.TransactionAbortInterval = 10 * time.Millisecond
	_, addr := txnBroker(t, o)
	p := txnProducer(t, addr, "slow", kgo.TransactionTimeout(200*time.Millisecond))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, adm := newAdmin(t, addr)
	for {
		ds, err := adm.DescribeTransactions(ctx, "slow")
		if err != nil {
			t.Fatal(err)
		}
		if ds["slow"].State == "CompleteAbort" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the transaction was not aborted: %+v", ds["slow"])
		case <-time.After(10 * time.Millisecond):
		}
	}
	err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("later")}).FirstErr()
	if err == nil {
		err = p.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.ProducerFenced) {
		t.Fatalf("producer after the timeout: %v", err)
	}
	p2 := txnProducer(t, addr, "other")
	if got := committedUpToEnd(t, ctx, p2, addr, "t"); len(got) != 0 {
		t.Fatalf("read_committed: %v", got)
	}
}
