package streaming

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/broker"
)

// TestBrokerRestartIsWaitedOut: the built-in broker goes away mid-stream and comes back
// on the same address and data; the engine retries and every record is read once.
func TestBrokerRestartIsWaitedOut(t *testing.T) {
	dir := t.TempDir()
	start := func(listen string) *broker.Broker {
		o := broker.DefaultOptions()
		o.Dir, o.Listen, o.RetentionCheckInterval = dir, listen, -1
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		b, err := broker.New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := start("127.0.0.1:0")
	addr := b.Addr()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 2, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	produce(t, []string{addr}, 2, 0, 1000)

	col := newCollected()
	opts := engineOpts([]string{addr}, t.TempDir())
	opts.MaxRecordsPerPartition = 100
	opts.OnBatch = col.onBatch
	e, err := New(collectJob(col, 20*time.Millisecond), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	col.waitTotal(t, e, 200)
	if err := b.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the engine fails to plan/read meanwhile
	b = start(addr)
	defer b.Stop(context.Background())
	produce(t, []string{addr}, 2, 1000, 1000)
	col.waitTotal(t, e, 2000)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, col, map[int32]int64{0: 1000, 1: 1000})
}
