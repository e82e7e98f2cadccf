package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/streaming"
	"github.com/tagpipe/tagpipe/warehouse"
)

// streamed is a data dir whose events pipeline has read a topic of the built-in broker.
type streamed struct {
	dir, cfg string
	cl       *kgo.Client
	adm      *kadm.Client
}

// startStreamed starts a broker with topic events (one partition) holding n Taobao lines,
// runs `tagpipe stream` on a new data dir until it has committed them, and stops it.
func startStreamed(t *testing.T, ctx context.Context, n int, extraYAML string) *streamed {
	t.Helper()
	b := startTestBroker(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	s := &streamed{dir: t.TempDir(), cl: cl, adm: kadm.NewClient(cl)}
	if _, err := s.adm.CreateTopic(ctx, 1, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	s.produce(t, ctx, 0, n)
	s.cfg = filepath.Join(s.dir, "tagpipe.yaml")
	yaml := fmt.Sprintf("admin:\n  listen: \"\"\nstreaming:\n  bootstrap_servers: [%s]\n  batch_interval: 100ms\n  window_enabled: false\n%s", b.Addr(), extraYAML)
	if err := os.WriteFile(s.cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() { _, err := s.stream(runCtx); first <- err }()
	for {
		p, ok, err := streaming.ReadProgress(filepath.Join(s.dir, "streaming", "events"))
		if err != nil {
			t.Fatal(err)
		}
		if ok && p.Ends[streaming.TopicPartition{Topic: "events"}] == int64(n) {
			break
		}
		select {
		case err := <-first:
			t.Fatalf("stream ended early: %v", err)
		case <-ctx.Done():
			t.Fatalf("the first %d records were never committed", n)
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	if err := <-first; err != nil {
		t.Fatalf("first run: %v", err)
	}
	return s
}

// produce writes Taobao lines from to from+n-1 to topic events.
func (s *streamed) produce(t *testing.T, ctx context.Context, from, n int) {
	t.Helper()
	var rs []*kgo.Record
	for i := from; i < from+n; i++ {
		rs = append(rs, &kgo.Record{Value: fmt.Appendf(nil, "%d,%d,7,pv,1511544070", i, 1000+i)})
	}
	if err := s.cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// stream runs `tagpipe stream` on the data dir until it ends or ctx does.
func (s *streamed) stream(ctx context.Context) (string, error) {
	return runTagpipeCtx(ctx, "--config", s.cfg, "--data-dir", s.dir, "stream")
}

// TestStreamExitsOnDataLoss: `tagpipe stream` whose next records were deleted before it
// read them (retention, DeleteRecords) exits with the engine's error instead of running
// on with the pipeline stopped, and says how to go on.
func TestStreamExitsOnDataLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := startStreamed(t, ctx, 10, "")

	// Records 10-29 are deleted before the next run reads them.
	s.produce(t, ctx, 10, 30)
	off := kadm.Offsets{}
	off.Add(kadm.Offset{Topic: "events", Partition: 0, At: 30})
	if rs, err := s.adm.DeleteRecords(ctx, off); err != nil || rs.Error() != nil {
		t.Fatalf("delete records: %v %v", err, rs.Error())
	}
	// The second run is not cancelled: it has to end by itself.
	type result struct {
		out string
		err error
	}
	second := make(chan result, 1)
	go func() { out, err := s.stream(context.Background()); second <- result{out, err} }()
	var r result
	select {
	case r = <-second:
	case <-ctx.Done():
		t.Fatal("tagpipe stream kept running after its pipeline stopped")
	}
	if !errors.Is(r.err, streaming.ErrDataLoss) || !strings.Contains(r.err.Error(), "offsets 10-29") ||
		!strings.Contains(r.err.Error(), "fail_on_data_loss: false") {
		t.Fatalf("second run ended with %v, want the data loss\n%s", r.err, r.out)
	}
}

// TestStreamAvailableNow: `tagpipe stream --available-now` reads what the topic holds
// and exits 0 by itself.
func TestStreamAvailableNow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := startStreamed(t, ctx, 10, "")
	s.produce(t, ctx, 10, 25)
	done := make(chan error, 1)
	go func() {
		_, err := runTagpipeCtx(context.Background(), "--config", s.cfg, "--data-dir", s.dir, "stream", "--available-now")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("tagpipe stream --available-now did not exit")
	}
	p, ok, err := streaming.ReadProgress(filepath.Join(s.dir, "streaming", "events"))
	if err != nil || !ok || p.Ends[streaming.TopicPartition{Topic: "events"}] != 35 {
		t.Fatalf("progress %+v, %v, %v: want the 35 records read", p, ok, err)
	}
}

// TestJobSensors: a job waits for the streaming pipeline to have committed a batch past
// its interval's end and for a warehouse partition (wait_for), and fails, without
// running its task, when they do not hold within wait_timeout.
func TestJobSensors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	today := time.Now().UTC().Format(time.DateOnly)
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	s := startStreamed(t, ctx, 10, "")
	// The job is defined once the pipeline has run, in jobs/defs/: it waits for the
	// ods_events partition the pipeline wrote (the day the records reached Kafka).
	w, err := warehouse.Open(filepath.Join(s.dir, "warehouse"), warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := w.Table("ods_events")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tbl.Current()
	if err != nil || len(snap.Partitions()) == 0 {
		t.Fatalf("ods_events: %v", err)
	}
	part := snap.Partitions()[0].Path()
	w.Close()
	def := `jobs:
  - name: after_stream
    schedule: "@daily"
    retries: -1
    wait_for: [{kind: streaming, pipeline: events}, {kind: partition, table: ods_events, partition: "` + part + `"}]
    poke_interval: 50ms
    wait_timeout: 1s
    task: {kind: shell, command: "echo ran {{ds}}"}
`
	if err := os.MkdirAll(filepath.Join(s.dir, "jobs", "defs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "jobs", "defs", "after.yaml"), []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	// Yesterday's interval ended before the pipeline's last batch, and the partition is
	// there: the task runs.
	out, err := runTagpipeCtx(ctx, "--config", s.cfg, "--data-dir", s.dir, "jobs", "run", "--job", "after_stream", "--ds", yesterday)
	if err != nil || !strings.Contains(out, "after_stream ds "+yesterday+": success") {
		t.Fatalf("yesterday run: %v\n%s", err, out)
	}
	// Today's interval ends tomorrow: no batch is that late yet, so the run times out.
	out, err = runTagpipeCtx(ctx, "--config", s.cfg, "--data-dir", s.dir, "jobs", "run", "--job", "after_stream", "--ds", today)
	if !strings.Contains(out, "after_stream ds "+today+": failed") {
		t.Fatalf("today's run: %v\n%s", err, out)
	}
	hist, err := runTagpipeCtx(ctx, "--config", s.cfg, "--data-dir", s.dir, "jobs", "history", "--job", "after_stream", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hist, "wait_for timed out after 1s: still waiting for streaming pipeline events to commit a batch of") {
		t.Fatalf("history:\n%s", hist)
	}
	logs, _ := filepath.Glob(filepath.Join(s.dir, "jobs", "logs", "after_stream", "*", "attempt-*.log"))
	if len(logs) != 1 {
		t.Fatalf("attempt logs %v: want only yesterday's run to have run its task", logs)
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
