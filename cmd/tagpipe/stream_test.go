package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/broker"
	"github.com/tagpipe/tagpipe/streaming"
)

// TestStreamExitsOnDataLoss: `tagpipe stream` whose next records were deleted before it
// read them (retention, DeleteRecords) exits with the engine's error instead of running
// on with the pipeline stopped, and says how to go on.
func TestStreamExitsOnDataLoss(t *testing.T) {
	o := broker.DefaultOptions()
	o.Dir, o.Listen, o.Logger = t.TempDir(), "127.0.0.1:0", slog.New(slog.DiscardHandler)
	o.RetentionCheckInterval, o.CleanerBackoff = -1, -1
	b, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Stop(context.Background()) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("events"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	produce := func(from, n int) {
		var rs []*kgo.Record
		for i := from; i < from+n; i++ {
			rs = append(rs, &kgo.Record{Value: fmt.Appendf(nil, "%d,%d,7,pv,1511544070", i, 1000+i)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 10)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "tagpipe.yaml")
	yaml := fmt.Sprintf("admin:\n  listen: \"\"\nstreaming:\n  bootstrap_servers: [%s]\n  batch_interval: 100ms\n  window_enabled: false\n", b.Addr())
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	stream := func(ctx context.Context) (string, error) {
		return runTagpipeCtx(ctx, "--config", cfg, "--data-dir", dir, "stream")
	}

	// First run: reads the 10 records, then is stopped.
	runCtx, stop := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() { _, err := stream(runCtx); first <- err }()
	for {
		p, ok, err := streaming.ReadProgress(filepath.Join(dir, "streaming", "events"))
		if err != nil {
			t.Fatal(err)
		}
		if ok && p.Ends[streaming.TopicPartition{Topic: "events"}] == 10 {
			break
		}
		select {
		case err := <-first:
			t.Fatalf("stream ended early: %v", err)
		case <-ctx.Done():
			t.Fatal("the first 10 records were never committed")
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	if err := <-first; err != nil {
		t.Fatalf("first run: %v", err)
	}

	// Records 10-29 are deleted before the next run reads them.
	produce(10, 30)
	off := kadm.Offsets{}
	off.Add(kadm.Offset{Topic: "events", Partition: 0, At: 30})
	if rs, err := adm.DeleteRecords(ctx, off); err != nil || rs.Error() != nil {
		t.Fatalf("delete records: %v %v", err, rs.Error())
	}
	// The second run is not cancelled: it has to end by itself.
	type result struct {
		out string
		err error
	}
	second := make(chan result, 1)
	go func() { out, err := stream(context.Background()); second <- result{out, err} }()
	var out string
	select {
	case r := <-second:
		out, err = r.out, r.err
	case <-ctx.Done():
		t.Fatal("tagpipe stream kept running after its pipeline stopped")
	}
	if !errors.Is(err, streaming.ErrDataLoss) || !strings.Contains(err.Error(), "offsets 10-29") ||
		!strings.Contains(err.Error(), "fail_on_data_loss: false") {
		t.Fatalf("second run ended with %v, want the data loss\n%s", err, out)
	}
}

// runTagpipeCtx runs the tagpipe command line with args until it returns or ctx ends.
func runTagpipeCtx(ctx context.Context, args ...string) (string, error) {
	var out strings.Builder
	root := newRootCmd(&out, &out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}
