package broker

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// shiftClock is time.Now moved forward by a settable amount, so retention can be driven
// without sleeping.
type shiftClock struct{ shift atomic.Int64 }

func (c *shiftClock) now() time.Time          { return time.Now().Add(time.Duration(c.shift.Load())) }
func (c *shiftClock) advance(d time.Duration) { c.shift.Add(int64(d)) }

func TestRetentionByTimeAndDeleteConfig(t *testing.T) {
	clock := &shiftClock{}
	o := testOptions(t)
	o.Now = clock.now
	b := startBroker(t, o)
	cl, adm := newAdmin(t, b.Addr(), kgo.DefaultProduceTopic("ret"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1))
	ctx := testCtx(t)
	ten, small := "10000", "1024"
	if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &ten, "segment.bytes": &small}, "ret"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	produce := func(n int) {
		for i := 0; i < n; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strings.Repeat("r", 200))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(40) // ~40 batches of ~270 bytes: many closed 1 KiB segments
	p := b.partition("ret", 0)
	if n, err := b.EnforceRetention(); err != nil || n != 0 {
		t.Fatalf("fresh data deleted: %d %v", n, err)
	}
	clock.advance(11 * time.Second)
	n, err := b.EnforceRetention()
	if err != nil || n == 0 {
		t.Fatalf("nothing deleted after retention.ms: %d %v", n, err)
	}
	start, end := p.log.LogStartOffset(), p.log.HighWatermark()
	if start == 0 || end != 40 || start >= end {
		t.Fatalf("after retention start %d end %d: the active segment's data must stay", start, end)
	}
	starts, _ := adm.ListStartOffsets(ctx, "ret")
	if so, _ := starts.Lookup("ret", 0); so.Offset != start {
		t.Fatalf("ListOffsets earliest %d, log start %d", so.Offset, start)
	}

	// --delete-config retention.ms: back to the 7-day default; old data now stays.
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, "ret")
	if err != nil || rs[0].Err != nil {
		t.Fatal(err, rs)
	}
	if c := configOf(t, adm, "ret", "retention.ms"); c.MaybeValue() != "604800000" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms after delete-config: %s %v", c.MaybeValue(), c.Source)
	}
	produce(40)
	clock.advance(11 * time.Second)
	if n, err := b.EnforceRetention(); err != nil || n != 0 {
		t.Fatalf("default retention deleted %d segments (%v)", n, err)
	}
	if p.log.LogStartOffset() != start {
		t.Fatal("log start moved under the default retention")
	}
}

func TestRetentionRunsInBackground(t *testing.T) {
	clock := &shiftClock{}
	o := testOptions(t)
	o.Now = clock.now
	o.RetentionCheckInterval = 5 * time.Millisecond
	o.RetentionMS = 10000
	o.SegmentBytes = 512
	b := startBroker(t, o)
	c := dialRaw(t, b.Addr())
	for i := 0; i < 10; i++ {
		c.send(produceReq(-1, "bg", 0, batch(1, time.Now().UnixMilli(), []byte(strings.Repeat("b", 300)))))
		c.read(&kmsg.ProduceResponse{Version: 9})
	}
	clock.advance(time.Minute)
	p := b.partition("bg", 0)
	deadline := time.Now().Add(20 * time.Second)
	for p.log.LogStartOffset() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("background retention never ran")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRetentionBytes(t *testing.T) {
	o := testOptions(t)
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	small, limit := "1024", "4096"
	if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": &small}, "rb"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	p := b.partition("rb", 0)
	for i := 0; i < 60; i++ {
		if _, err := p.log.Append(batch(1, time.Now().UnixMilli(), []byte(strings.Repeat("b", 200)))); err != nil {
			t.Fatal(err)
		}
	}
	before := p.log.Size()
	if n, _ := b.EnforceRetention(); n != 0 {
		t.Fatalf("deleted %d segments with unlimited retention.bytes", n)
	}
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.bytes", Value: &limit}}, "rb")
	if err != nil || rs[0].Err != nil {
		t.Fatal(err, rs)
	}
	if n, err := b.EnforceRetention(); err != nil || n == 0 {
		t.Fatalf("retention.bytes deleted nothing: %d %v", n, err)
	}
	// Whole closed segments go while the partition is over the limit; the active one stays.
	if after := p.log.Size(); after >= before || p.log.LogStartOffset() == 0 || p.log.HighWatermark() != 60 {
		t.Fatalf("size %d -> %d, start %d, end %d", before, after, p.log.LogStartOffset(), p.log.HighWatermark())
	}
}
