package broker

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnSarama: sarama's transactional producer commits and aborts; sarama's
// read_committed consumer sees the committed records only.
func TestTxnSarama(t *testing.T) {
	ctx := testCtx(t)
	_, addr := txnBroker(t, testOptions(t))
	cfg := saramaConfig("none")
	cfg.Producer.Idempotent = true
	cfg.Producer.Transaction.ID = "sarama-txn"
	cfg.Net.MaxOpenRequests = 1
	p, err := sarama.NewSyncProducer([]string{addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, txn := range []struct {
		commit bool
		values []string
	}{{true, []string{"c1", "c2"}}, {false, []string{"a1"}}, {true, []string{"c3", "end"}}} {
		if err := p.BeginTxn(); err != nil {
			t.Fatal(err)
		}
		for _, v := range txn.values {
			if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "t", Value: sarama.StringEncoder(v)}); err != nil {
				t.Fatalf("send %s: %v", v, err)
			}
		}
		if txn.commit {
			err = p.CommitTxn()
		} else {
			err = p.AbortTxn()
		}
		if err != nil {
			t.Fatalf("end transaction: %v", err)
		}
	}
	ccfg := saramaConfig("none")
	ccfg.Consumer.IsolationLevel = sarama.ReadCommitted
	c, err := sarama.NewConsumer([]string{addr}, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition("t", 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var got []string
	for len(got) == 0 || got[len(got)-1] != "end" {
		select {
		case m := <-pc.Messages():
			got = append(got, string(m.Value))
		case err := <-pc.Errors():
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("read %v", got)
		}
	}
	if fmt.Sprint(got) != "[c1 c2 c3 end]" {
		t.Fatalf("sarama read_committed: %v", got)
	}
	if got := readUntil(t, ctx, addr, "t", false, "end"); fmt.Sprint(got) != "[c1 c2 a1 c3]" {
		t.Fatalf("read_uncommitted: %v", got)
	}
}

// TestTxnDescribeListTransactions: kadm's DescribeTransactions and ListTransactions
// show the coordinator's state.
func TestTxnDescribeListTransactions(t *testing.T) {
	ctx := testCtx(t)
	_, addr := txnBroker(t, testOptions(t))
	done := txnProducer(t, addr, "done")
	produceTxn(t, ctx, done, true, "x")
	open := txnProducer(t, addr, "open")
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, &kgo.Record{Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl, adm := newAdmin(t, addr)
	ds, err := adm.DescribeTransactions(ctx, "open", "done", "nope")
	if err != nil {
		t.Fatal(err)
	}
	if d := ds["open"]; d.State != "Ongoing" || len(d.Topics["t"]) != 1 || d.StartTimestamp <= 0 || d.Err != nil {
		t.Fatalf("open: %+v", d)
	}
	if d := ds["done"]; d.State != "CompleteCommit" || len(d.Topics) != 0 {
		t.Fatalf("done: %+v", d)
	}
	if d := ds["nope"]; !errors.Is(d.Err, kerr.TransactionalIDNotFound) {
		t.Fatalf("nope: %+v", d)
	}
	ls, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := ls.TransactionalIDs(); fmt.Sprint(ids) != "[open]" {
		t.Fatalf("listed ongoing: %v", ids)
	}
	req := kmsg.NewPtrListTransactionsRequest()
	req.StateFilters = []string{"Bogus"}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || fmt.Sprint(resp.UnknownStateFilters) != "[Bogus]" || len(resp.TransactionStates) != 0 {
		t.Fatalf("unknown state filter: %+v %v", resp, err)
	}
}

// TestTxnCompactedTopic: the log cleaner keeps committed transactions' records and
// markers on a compacted topic, and read_committed never shows an aborted one.
func TestTxnCompactedTopic(t *testing.T) {
	ctx := testCtx(t)
	o := testOptions(t)
	o.CleanerBackoff = -1
	b := startBroker(t, o)
	addr := b.Addr()
	compact, small, ratio := "compact", "100", "0.01"
	_, adm := newAdmin(t, addr)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": &compact, "segment.bytes": &small, "min.cleanable.dirty.ratio": &ratio}, "c"); err != nil {
		t.Fatal(err)
	}
	p := txnProducer(t, addr, "ct", kgo.DefaultProduceTopic("c"))
	plain, _ := newAdmin(t, addr, kgo.DefaultProduceTopic("c"))
	txn := func(commit bool, kvs ...string) {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(kvs); i += 2 {
			if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte(kvs[i]), Value: []byte(kvs[i+1])}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"plain0", "plain1"} { // plain0 is superseded: the cleaner removes it
		if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte("k"), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	txn(true, "k", "committed1", "j", "committed2")
	txn(false, "k", "aborted1")
	if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte("j"), Value: []byte("plain2")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte("z"), Value: []byte("end")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.CompactLogs(); err != nil || n != 1 {
		t.Fatalf("compaction removed %d records, want 1: %v", n, err)
	}
	if got := readUntil(t, ctx, addr, "c", false, "end"); fmt.Sprint(got) != "[plain1 committed1 committed2 aborted1 plain2]" {
		t.Fatalf("read_uncommitted after compaction: %v", got)
	}
	if got := readUntil(t, ctx, addr, "c", true, "end"); fmt.Sprint(got) != "[plain1 committed1 committed2 plain2]" {
		t.Fatalf("read_committed after compaction: %v", got)
	}
}

// TestTxnIDExpires: a transactional id whose last transaction ended longer ago than
// transactional.id.expiration.ms is forgotten, for good (a restart does not bring it
// back); an open transaction is never expired (it times out and is aborted first), and
// the forgotten id starts afresh with a new producer id.
func TestTxnIDExpires(t *testing.T) {
	ctx := testCtx(t)
	var clock atomic.Int64
	clock.Store(time.Now().UnixMilli())
	o := testOptions(t)
	o.Now = func() time.Time { return time.UnixMilli(clock.Load()) }
	o.TransactionAbortInterval = -1 // swept by hand
	o.TransactionalIDExpiration = time.Hour
	b, addr := txnBroker(t, o)
	done := txnProducer(t, addr, "done")
	produceTxn(t, ctx, done, true, "x")
	open := txnProducer(t, addr, "open", kgo.TransactionTimeout(time.Minute))
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(ctx, &kgo.Record{Value: []byte("y")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, adm := newAdmin(t, addr)
	describe := func() kadm.DescribedTransactions {
		t.Helper()
		ds, err := adm.DescribeTransactions(ctx, "done", "open")
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	oldPID := describe()["done"].ProducerID
	b.txns.sweep()
	if ds := describe(); ds["done"].Err != nil || ds["open"].State != "Ongoing" {
		t.Fatalf("expired too early: %+v", ds)
	}

	clock.Add((2 * time.Hour).Milliseconds())
	b.txns.sweep()
	ds := describe()
	if d := ds["done"]; !errors.Is(d.Err, kerr.TransactionalIDNotFound) {
		t.Fatalf("done after the expiration: %+v", d)
	}
	if d := ds["open"]; d.State != "CompleteAbort" {
		t.Fatalf("open after its timeout: %+v, want aborted (not expired)", d)
	}
	ls, err := adm.ListTransactions(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ids := ls.TransactionalIDs(); fmt.Sprint(ids) != "[open]" {
		t.Fatalf("listed: %v", ids)
	}

	restartBroker(t, b, o)
	if d := describe()["done"]; !errors.Is(d.Err, kerr.TransactionalIDNotFound) {
		t.Fatalf("done after a restart: %+v", d)
	}
	again := txnProducer(t, addr, "done")
	produceTxn(t, ctx, again, true, "z")
	if d := describe()["done"]; d.State != "CompleteCommit" || d.ProducerID == oldPID {
		t.Fatalf("done used again: %+v, old producer id %d", d, oldPID)
	}
}
