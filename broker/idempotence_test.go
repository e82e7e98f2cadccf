package broker

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kgo's default idempotent producer retries a batch whose response was lost; the broker
// recognises the producer id and sequence and answers with the original offsets instead
// of appending the batch again.
func TestIdempotentRetryIsNotDuplicated(t *testing.T) {
	var produces atomic.Int32
	drop := func(key int16) bool { return key == 0 && produces.Add(1)%7 == 3 }
	testHookDropResponse.Store(&drop)
	o := testOptions(t)
	b := startBroker(t, o)
	t.Cleanup(func() { _ = b.Close(); testHookDropResponse.Store(nil) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("idem"), kgo.ProducerLinger(0), kgo.AllowAutoTopicCreation(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryBackoffFn(func(int) time.Duration { return time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 50
	for i := 0; i < n; i++ {
		r := &kgo.Record{Value: []byte{byte(i)}}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if r.Offset != int64(i) {
			t.Fatalf("record %d acked at offset %d", i, r.Offset)
		}
	}
	if produces.Load() <= n {
		t.Fatalf("no produce response was dropped (%d requests)", produces.Load())
	}
	testHookDropResponse.Store(nil)
	recs := consumeAll(t, b.Addr(), "idem", 3)[0]
	if len(recs) != n {
		t.Fatalf("%d records in the log, want %d (retries duplicated)", len(recs), n)
	}
	for i, r := range recs {
		if int(r.Value[0]) != i || r.ProducerID < 0 {
			t.Fatalf("record %d: value %d producer id %d", i, r.Value[0], r.ProducerID)
		}
	}
}

func TestInitProducerIDNeverReusesIDs(t *testing.T) {
	o := testOptions(t)
	b := startBroker(t, o)
	c := dialRaw(t, b.Addr())
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	req.ProducerID, req.ProducerEpoch = -1, -1
	c.send(req, req)
	r1, r2 := &kmsg.InitProducerIDResponse{Version: 4}, &kmsg.InitProducerIDResponse{Version: 4}
	c.read(r1)
	c.read(r2)
	if r1.ErrorCode != 0 || r2.ProducerID != r1.ProducerID+1 || r1.ProducerEpoch != 0 {
		t.Fatalf("ids %+v %+v", r1, r2)
	}
	// KIP-360 epoch bump for an id we issued.
	bump := kmsg.NewPtrInitProducerIDRequest()
	bump.Version = 4
	bump.ProducerID, bump.ProducerEpoch = r1.ProducerID, 0
	c.send(bump)
	r3 := &kmsg.InitProducerIDResponse{Version: 4}
	c.read(r3)
	if r3.ProducerID != r1.ProducerID || r3.ProducerEpoch != 1 {
		t.Fatalf("bump %+v", r3)
	}
	txn := kmsg.NewPtrInitProducerIDRequest()
	txn.Version = 4
	txn.TransactionalID = kmsg.StringPtr("tx")
	c.send(txn)
	r4 := &kmsg.InitProducerIDResponse{Version: 4}
	c.read(r4)
	if r4.ErrorCode == 0 {
		t.Fatal("transactional id accepted")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// After a restart (a crash is the same: the block was reserved on disk first), new
	// ids start after everything the last run could have handed out.
	b2 := startBroker(t, o)
	c2 := dialRaw(t, b2.Addr())
	c2.send(req)
	r5 := &kmsg.InitProducerIDResponse{Version: 4}
	c2.read(r5)
	if r5.ProducerID <= r2.ProducerID {
		t.Fatalf("id %d reused after restart (had %d)", r5.ProducerID, r2.ProducerID)
	}
}

// The producer's sequence state survives a broker restart: the same idempotent client
// keeps producing after the broker comes back on the same address, without errors or
// duplicates.
func TestIdempotentProducerAcrossRestart(t *testing.T) {
	o := testOptions(t)
	b := startBroker(t, o)
	o.Listen = b.Addr() // come back on the same port
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("idem-restart"), kgo.AllowAutoTopicCreation(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			r := &kgo.Record{Value: []byte{byte(i)}}
			if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			if r.Offset != int64(i) {
				t.Fatalf("record %d at offset %d", i, r.Offset)
			}
		}
	}
	produce(0, 20)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startBroker(t, o)
	produce(20, 40)
	recs := consumeAll(t, b2.Addr(), "idem-restart", 3)[0]
	if len(recs) != 40 {
		t.Fatalf("%d records, want 40", len(recs))
	}
	pid := recs[0].ProducerID
	for i, r := range recs {
		if int(r.Value[0]) != i || r.ProducerID != pid {
			t.Fatalf("record %d: value %d pid %d (first pid %d)", i, r.Value[0], r.ProducerID, pid)
		}
	}
}
