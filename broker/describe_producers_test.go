package broker

// DescribeProducers (61_describe_producers.go) through kadm, as kafka-transactions.sh
// describe-producers asks it, and raw requests for the per-partition errors.

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describeProducers asks kadm for one partition's active producers.
func describeProducers(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, p int32) kadm.DescribedProducers {
	t.Helper()
	var s kadm.TopicsSet
	s.Add(topic, p)
	ds, err := adm.DescribeProducers(ctx, s)
	if err != nil {
		t.Fatalf("DescribeProducers %s-%d: %v", topic, p, err)
	}
	dp, ok := ds[topic].Partitions[p]
	if !ok || dp.Err != nil {
		t.Fatalf("DescribeProducers %s-%d: %+v", topic, p, dp)
	}
	return dp.ActiveProducers
}

// TestDescribeProducers: an idempotent producer is described with its id, epoch, last
// sequence and last record timestamp, no coordinator epoch and no transaction; a
// transactional producer with an open transaction with the transaction's first offset,
// and after the commit with none, the marker's coordinator epoch (0) and timestamp;
// every field is the same after a restart (producer snapshots); a partition or topic
// that does not exist is UNKNOWN_TOPIC_OR_PARTITION for that partition alone.
func TestDescribeProducers(t *testing.T) {
	ctx := testCtx(t)
	o := testOptions(t)
	b := startBroker(t, o)
	addr := b.Addr()
	createTopic(t, ctx, addr, "dp", 2)
	_, adm := newAdmin(t, addr)
	ts := time.UnixMilli(1_700_000_000_000)

	// (1) An idempotent producer: three batches, sequences 0..2.
	idem, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("dp"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer idem.Close()
	var last *kgo.Record
	for i := range 3 {
		last = &kgo.Record{Value: []byte{byte(i)}, Timestamp: ts.Add(time.Duration(i) * time.Second)}
		if err := idem.ProduceSync(ctx, last).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	idemPID := last.ProducerID
	want := kadm.DescribedProducer{Leader: b.opts.NodeID, Topic: "dp", Partition: 0, ProducerID: idemPID, ProducerEpoch: last.ProducerEpoch,
		LastSequence: 2, LastTimestamp: ts.Add(2 * time.Second).UnixMilli(), CoordinatorEpoch: -1, CurrentTxnStartOffset: -1}
	ps := describeProducers(t, ctx, adm, "dp", 0)
	if len(ps) != 1 || ps[idemPID] != want {
		t.Fatalf("idempotent producer:\n got %+v\nwant %+v", ps, want)
	}

	// (2) A transactional producer with an open transaction of two batches.
	txn := txnProducer(t, addr, "dp-txn")
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	first := &kgo.Record{Topic: "dp", Value: []byte("a"), Timestamp: ts}
	second := &kgo.Record{Topic: "dp", Value: []byte("b"), Timestamp: ts.Add(time.Minute)}
	for _, r := range []*kgo.Record{first, second} {
		if err := txn.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	txnPID := first.ProducerID
	if first.Offset != 3 {
		t.Fatalf("transaction's first record at offset %d, want 3", first.Offset)
	}
	wantTxn := kadm.DescribedProducer{Leader: b.opts.NodeID, Topic: "dp", Partition: 0, ProducerID: txnPID, ProducerEpoch: first.ProducerEpoch,
		LastSequence: 1, LastTimestamp: second.Timestamp.UnixMilli(), CoordinatorEpoch: -1, CurrentTxnStartOffset: first.Offset}
	ps = describeProducers(t, ctx, adm, "dp", 0)
	if len(ps) != 2 || ps[idemPID] != want || ps[txnPID] != wantTxn {
		t.Fatalf("open transaction:\n got %+v\nwant %+v and %+v", ps, want, wantTxn)
	}
	if ps := describeProducers(t, ctx, adm, "dp", 1); len(ps) != 0 {
		t.Fatalf("partition 1 has no producer: %+v", ps)
	}

	// After the commit (its markers are written before EndTxn is answered): no open
	// transaction, the marker's coordinator epoch and timestamp.
	before := time.Now().UnixMilli()
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	ps = describeProducers(t, ctx, adm, "dp", 0)
	got := ps[txnPID]
	if got.LastTimestamp < before || got.LastTimestamp > after {
		t.Fatalf("last timestamp after commit %d, want the marker's, in [%d, %d]", got.LastTimestamp, before, after)
	}
	wantTxn.CurrentTxnStartOffset, wantTxn.CoordinatorEpoch, wantTxn.LastTimestamp = -1, 0, got.LastTimestamp
	if len(ps) != 2 || ps[idemPID] != want || got != wantTxn {
		t.Fatalf("after commit:\n got %+v\nwant %+v and %+v", ps, want, wantTxn)
	}

	// A second transaction left open across the restart.
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	third := &kgo.Record{Topic: "dp", Value: []byte("c"), Timestamp: ts.Add(2 * time.Minute)}
	if err := txn.ProduceSync(ctx, third).FirstErr(); err != nil {
		t.Fatal(err)
	}
	wantTxn.LastSequence, wantTxn.LastTimestamp, wantTxn.CurrentTxnStartOffset = 2, third.Timestamp.UnixMilli(), third.Offset
	ps = describeProducers(t, ctx, adm, "dp", 0)
	if len(ps) != 2 || ps[idemPID] != want || ps[txnPID] != wantTxn {
		t.Fatalf("second transaction:\n got %+v\nwant %+v and %+v", ps, want, wantTxn)
	}

	// (3) Errors per partition, as the broker answers them (kadm's sharding answers an
	// unknown partition itself, from metadata, without asking).
	req := kmsg.NewPtrDescribeProducersRequest()
	for _, tp := range []struct {
		topic string
		parts []int32
	}{{"dp", []int32{0, 7, -1, 1}}, {"nope", []int32{0}}} {
		rt := kmsg.NewDescribeProducersRequestTopic()
		rt.Topic, rt.Partitions = tp.topic, tp.parts
		req.Topics = append(req.Topics, rt)
	}
	resp := roundTrip[*kmsg.DescribeProducersResponse](t, addr, req)
	unknown := kerr.UnknownTopicOrPartition.Code
	type answer struct {
		topic     string
		partition int32
		code      int16
		producers int
	}
	var answers []answer
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			answers = append(answers, answer{rt.Topic, rp.Partition, rp.ErrorCode, len(rp.ActiveProducers)})
		}
	}
	if wantAnswers := []answer{{"dp", 0, 0, 2}, {"dp", 7, unknown, 0}, {"dp", -1, unknown, 0}, {"dp", 1, 0, 0}, {"nope", 0, unknown, 0}}; !reflect.DeepEqual(answers, wantAnswers) {
		t.Fatalf("per-partition answers %+v, want %+v", answers, wantAnswers)
	}
	var s kadm.TopicsSet
	s.Add("dp", 7)
	if ds, err := adm.DescribeProducers(ctx, s); err == nil || !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("kadm, partition 7: %+v %v", ds, err)
	}

	// (4) A clean restart: the same producers from the snapshots written at close.
	idem.Close()
	txn.Close()
	restartBroker(t, b, o)
	_, adm = newAdmin(t, addr)
	ps = describeProducers(t, ctx, adm, "dp", 0)
	if len(ps) != 2 || ps[idemPID] != want || ps[txnPID] != wantTxn {
		t.Fatalf("after restart:\n got %+v\nwant %+v and %+v", ps, want, wantTxn)
	}
}
