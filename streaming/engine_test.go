package streaming

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/streaming/internal/testkafka"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(m.Run()) // the kill -9 child: no leak check
	}
	goleak.VerifyTestMain(m)
}

// newCluster starts an in-process kfake cluster with topic "events".
func newCluster(t testing.TB, partitions int32) []string {
	return testkafka.Start(t, "kfake", "events", partitions)
}

// produce writes records "v<i>" keyed "k<i%97>" to topic events, partition i%partitions.
func produce(t testing.TB, addrs []string, partitions, from, n int) {
	t.Helper()
	for n > 0 {
		chunk := min(n, 200000)
		recs := make([]testkafka.Record, chunk)
		for k := range recs {
			i := from + k
			recs[k] = testkafka.Record{Partition: int32(i % partitions), Key: fmt.Appendf(nil, "k%d", i%97), Value: fmt.Appendf(nil, "v%d", i)}
		}
		testkafka.Produce(t, addrs, "events", recs)
		from += chunk
		n -= chunk
	}
}

type collected struct {
	mu      sync.Mutex
	byBatch map[int64][]Record // idempotent by batch id
	batches []BatchMetrics
	total   int64
	signal  chan struct{}
}

func newCollected() *collected {
	return &collected{byBatch: map[int64][]Record{}, signal: make(chan struct{}, 1)}
}

func (c *collected) onBatch(m BatchMetrics) {
	c.mu.Lock()
	c.batches = append(c.batches, m)
	c.total += m.Records
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

func (c *collected) waitTotal(t *testing.T, e *Engine, want int64) {
	t.Helper()
	// The deadline is for progress, not for the whole wait: a million records take
	// ~17 s under -race on an idle machine, longer on a loaded one, and that is no
	// failure as long as batches keep committing.
	const stall = 20 * time.Second
	deadline := time.NewTimer(stall)
	defer deadline.Stop()
	last := int64(-1)
	for {
		c.mu.Lock()
		got := c.total
		c.mu.Unlock()
		if got >= want {
			return
		}
		if got > last {
			last = got
			deadline.Reset(stall)
		}
		select {
		case <-c.signal:
		case <-e.Done():
			t.Fatalf("engine ended early: %v", e.Err())
		case <-deadline.C:
			c.mu.Lock()
			for _, b := range c.batches[max(0, len(c.batches)-10):] {
				t.Logf("batch %d: %d records, processing %v, delay %v, rate limit %.0f/s", b.ID, b.Records, b.ProcessingTime, b.SchedulingDelay, b.RateLimit)
			}
			c.mu.Unlock()
			t.Fatalf("no progress for %v: %d of %d records", stall, got, want)
		}
	}
}

func collectJob(c *collected, interval time.Duration) *Job {
	j := NewJob("test", interval)
	ForeachBatch(Input(j), "collect", func(_ context.Context, b BatchInfo, rs []Record) error {
		c.mu.Lock()
		c.byBatch[b.ID] = append([]Record(nil), rs...)
		c.mu.Unlock()
		return nil
	})
	return j
}

func engineOpts(addrs []string, dir string) Options {
	o := DefaultOptions()
	o.Brokers = addrs
	o.Topics = []string{"events"}
	o.CheckpointDir = dir
	o.RetryBackoff = 20 * time.Millisecond
	return o
}

// assertExactlyOnce checks that the collected batches hold offsets [0, perPartition[p])
// of every partition exactly once and in order.
func assertExactlyOnce(t *testing.T, c *collected, want map[int32]int64) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[int32]int64{}
	for id := int64(0); id < int64(len(c.byBatch)); id++ {
		rs, ok := c.byBatch[id]
		if !ok {
			t.Fatalf("batch %d missing (have %d batches)", id, len(c.byBatch))
		}
		for _, r := range rs {
			if r.Offset != next[r.Partition] {
				t.Fatalf("batch %d: partition %d offset %d, want %d", id, r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
		}
	}
	for p, n := range want {
		if next[p] != n {
			t.Fatalf("partition %d: read %d records, want %d", p, next[p], n)
		}
	}
}

func TestEngineReadsEveryRecordOnceInBoundedBatches(t *testing.T) {
	for _, backend := range testkafka.Backends {
		t.Run(backend, func(t *testing.T) { testEngineReadsEveryRecordOnce(t, backend) })
	}
}

func testEngineReadsEveryRecordOnce(t *testing.T, backend string) {
	addrs := testkafka.Start(t, backend, "events", 4)
	produce(t, addrs, 4, 0, 10000)
	col := newCollected()
	opts := engineOpts(addrs, t.TempDir())
	opts.MaxRecordsPerPartition = 700
	opts.OnBatch = col.onBatch
	e, err := New(collectJob(col, 20*time.Millisecond), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	col.waitTotal(t, e, 10000)
	// More data while running.
	produce(t, addrs, 4, 10000, 2000)
	col.waitTotal(t, e, 12000)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, col, map[int32]int64{0: 3000, 1: 3000, 2: 3000, 3: 3000})
	for _, b := range col.batches {
		for _, r := range b.Ranges {
			if r.Count() > 700 {
				t.Fatalf("batch %d: range %+v over the cap", b.ID, r)
			}
		}
	}
	if err := e.Stop(context.Background()); err != nil { // twice is fine
		t.Fatal(err)
	}
}

// MaxRecordsPerBatch (Spark's maxOffsetsPerTrigger) bounds a whole batch, split across
// partitions by lag: a backlog of uneven partitions drains in batches of about the cap.
func TestEngineMaxRecordsPerBatch(t *testing.T) {
	addrs := newCluster(t, 3)
	// Partition 0 gets 3000 records, 1 and 2 get 1000 each.
	recs := make([]testkafka.Record, 0, 5000)
	for i := range 5000 {
		recs = append(recs, testkafka.Record{Partition: int32(max(0, i%5-2)), Value: fmt.Appendf(nil, "v%d", i)})
	}
	testkafka.Produce(t, addrs, "events", recs)
	col := newCollected()
	opts := engineOpts(addrs, t.TempDir())
	opts.MaxRecordsPerBatch = 500
	opts.OnBatch = col.onBatch
	runEngine(t, collectJob(col, 10*time.Millisecond), opts, col, 5000)
	assertExactlyOnce(t, col, map[int32]int64{0: 3000, 1: 1000, 2: 1000})
	for _, b := range col.batches {
		if b.Records > 500 {
			t.Fatalf("batch %d: %d records, over the cap of 500: %+v", b.ID, b.Records, b.Ranges)
		}
	}
	if first := col.batches[0]; first.Records != 500 || first.Ranges[0].Count() != 300 || first.Ranges[1].Count() != 100 {
		t.Fatalf("first batch %+v: want 300, 100, 100 (split by lag)", first.Ranges)
	}
}

// MinRecordsPerBatch (Spark's minOffsetsPerTrigger): intervals with fewer new records
// than it run no batch (nothing is planned or committed); the batch comes once enough
// records are there, or once MaxTriggerDelay has passed since the last batch ran.
func TestEngineMinRecordsPerBatch(t *testing.T) {
	t.Run("enough records", func(t *testing.T) {
		addrs := newCluster(t, 1)
		produce(t, addrs, 1, 0, 4)
		col := newCollected()
		opts := engineOpts(addrs, t.TempDir())
		opts.MinRecordsPerBatch, opts.MaxTriggerDelay = 10, time.Hour
		opts.OnBatch = col.onBatch
		e := startEngine(t, collectJob(col, 10*time.Millisecond), opts)
		deadline := time.Now().Add(30 * time.Second)
		for counterValue(t, e.met.delayed) < 3 { // three intervals without a batch
			if time.Now().After(deadline) {
				t.Fatal("no batch was delayed")
			}
			time.Sleep(5 * time.Millisecond)
		}
		col.mu.Lock()
		early := len(col.batches)
		col.mu.Unlock()
		if early != 0 {
			t.Fatalf("%d batches ran with 4 records of the 10 wanted", early)
		}
		produce(t, addrs, 1, 4, 6)
		col.waitTotal(t, e, 10)
		if err := e.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if first := col.batches[0]; first.Records != 10 {
			t.Fatalf("first batch has %d records, want all 10", first.Records)
		}
		assertExactlyOnce(t, col, map[int32]int64{0: 10})
	})
	t.Run("max trigger delay", func(t *testing.T) {
		addrs := newCluster(t, 1)
		produce(t, addrs, 1, 0, 5)
		col := newCollected()
		opts := engineOpts(addrs, t.TempDir())
		opts.MinRecordsPerBatch, opts.MaxTriggerDelay = 1000, 300*time.Millisecond
		var firstAt time.Time
		opts.OnBatch = func(m BatchMetrics) {
			if firstAt.IsZero() {
				firstAt = time.Now()
			}
			col.onBatch(m)
		}
		start := time.Now()
		e := startEngine(t, collectJob(col, 10*time.Millisecond), opts)
		col.waitTotal(t, e, 5)
		if err := e.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := firstAt.Sub(start); d < 300*time.Millisecond {
			t.Fatalf("the first batch ran %v after the start, before max_trigger_delay", d)
		}
		if first := col.batches[0]; first.Records != 5 {
			t.Fatalf("first batch has %d records, want 5", first.Records)
		}
	})
}

// A batch at a slide time of the job's batch-time windows is never delayed: those
// windows emit only on such batches.
func TestDelayKeepsSlideTimes(t *testing.T) {
	j := NewJob("x", 10*time.Second)
	Window(Input(j), 30*time.Second, 20*time.Second)
	o := engineOpts([]string{"127.0.0.1:1"}, t.TempDir())
	o.MinRecordsPerBatch = 100
	e, err := New(j, o)
	if err != nil {
		t.Fatal(err)
	}
	e.lastRun = time.Now()
	at := func(sec int64) plan { return plan{BatchTime: time.Unix(sec, 0)} }
	if !e.delay(at(1010)) {
		t.Error("a batch off the slide times was not delayed")
	}
	if e.delay(at(1020)) {
		t.Error("a batch at a slide time was delayed")
	}
	e.opts.AvailableNow = true
	if e.delay(at(1030)) {
		t.Error("an AvailableNow batch was delayed")
	}
}

// AvailableNow (Spark's Trigger.AvailableNow) reads what the topics held at start, in
// capped batches, then stops by itself; what arrives later waits for the next run,
// which reads it from where the first stopped.
func TestEngineAvailableNow(t *testing.T) {
	addrs := newCluster(t, 2)
	produce(t, addrs, 2, 0, 1000)
	col := newCollected()
	opts := engineOpts(addrs, t.TempDir())
	opts.MaxRecordsPerPartition = 100
	opts.AvailableNow = true
	var once sync.Once
	opts.OnBatch = func(m BatchMetrics) {
		once.Do(func() { produce(t, addrs, 2, 1000, 10) }) // after the start: not read
		col.onBatch(m)
	}
	e := startEngine(t, collectJob(col, 10*time.Millisecond), opts)
	if err := waitStopped(t, e); err != nil {
		t.Fatalf("engine ended with %v", err)
	}
	assertExactlyOnce(t, col, map[int32]int64{0: 500, 1: 500})
	if len(col.batches) < 5 {
		t.Fatalf("%d batches: the cap of 100 per partition was not kept", len(col.batches))
	}
	// The next run takes the 10 that came later, from where the first run ended.
	e = startEngine(t, collectJob(col, 10*time.Millisecond), opts)
	if err := waitStopped(t, e); err != nil {
		t.Fatalf("second run ended with %v", err)
	}
	assertExactlyOnce(t, col, map[int32]int64{0: 505, 1: 505})
}

func TestEngineRestartResumesFromCheckpoint(t *testing.T) {
	c := newCluster(t, 3)
	dir := t.TempDir()
	produce(t, c, 3, 0, 3000)
	col := newCollected()
	run := func(want int64) {
		opts := engineOpts(c, dir)
		opts.MaxRecordsPerPartition = 250
		opts.OnBatch = col.onBatch
		e, err := New(collectJob(col, 10*time.Millisecond), opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		col.waitTotal(t, e, want)
		if err := e.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	run(1000)
	produce(t, c, 3, 3000, 3000)
	run(6000)
	assertExactlyOnce(t, col, map[int32]int64{0: 2000, 1: 2000, 2: 2000})
	// A second engine on the same checkpoint is refused while one runs.
	opts := engineOpts(c, dir)
	e1, _ := New(collectJob(newCollected(), time.Second), opts)
	if err := e1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e2, _ := New(collectJob(newCollected(), time.Second), opts)
	if err := e2.Start(context.Background()); err == nil {
		e2.Stop(context.Background())
		t.Fatal("second engine on one checkpoint started")
	}
	e1.Stop(context.Background())
}

func TestEngineRetriesFailedBatchFromCheckpointedState(t *testing.T) {
	c := newCluster(t, 2)
	produce(t, c, 2, 0, 400)
	col := newCollected()
	j := NewJob("retry", 10*time.Millisecond)
	counts := MapWithState(KeyBy(Input(j), func(r Record) string { return string(r.Key) }),
		StateSpec[string, Record, int, KV[string, int]]{Update: func(_ time.Time, k string, _ Record, st *State[int]) (KV[string, int], bool) {
			n, _ := st.Get()
			st.Update(n + 1)
			return KV[string, int]{k, n + 1}, true
		}})
	final := map[string]int{}
	failed := false
	ForeachBatch(counts, "counts", func(_ context.Context, b BatchInfo, kvs []KV[string, int]) error {
		if b.ID == 2 && !failed {
			failed = true
			return fmt.Errorf("injected failure")
		}
		for _, kv := range kvs {
			final[kv.Key] = kv.Val
		}
		return nil
	})
	opts := engineOpts(c, t.TempDir())
	opts.MaxRecordsPerPartition = 50
	opts.OnBatch = col.onBatch
	runEngine(t, j, opts, col, 400)
	if !failed {
		t.Fatal("failure not injected")
	}
	sum := 0
	for _, n := range final {
		sum += n
	}
	if sum != 400 {
		t.Fatalf("state counted %d records after a retried batch, want 400", sum)
	}
}

// TestBackpressureBurst: a burst of 1M records is read in bounded batches with bounded
// memory.
func TestBackpressureBurst(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 200_000
	}
	c := newCluster(t, 4)
	produce(t, c, 4, 0, n)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	col := newCollected()
	var peak uint64
	var maxBatch int64
	j := NewJob("burst", 200*time.Millisecond)
	var seen int64
	ForeachBatch(Input(j), "count", func(_ context.Context, b BatchInfo, rs []Record) error {
		seen += int64(len(rs))
		// Live heap while the batch is held (garbage collected first so the number is
		// what the engine retains, not what the GC has yet to free).
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
		maxBatch = max(maxBatch, int64(len(rs)))
		return nil
	})
	opts := engineOpts(c, t.TempDir())
	opts.MaxRecordsPerPartition = 25000
	opts.Backpressure = true
	opts.OnBatch = col.onBatch
	runEngine(t, j, opts, col, int64(n))
	if seen != int64(n) {
		t.Fatalf("seen %d", seen)
	}
	if maxBatch > 4*25000 {
		t.Fatalf("batch of %d records exceeds 4 partitions × 25000", maxBatch)
	}
	growth := int64(peak) - int64(base.HeapAlloc)
	for _, b := range col.batches {
		t.Logf("batch %d: %d records, processing %v, delay %v, rate limit %.0f/s", b.ID, b.Records, b.ProcessingTime, b.SchedulingDelay, b.RateLimit)
	}
	t.Logf("%d records in %d batches, largest %d; heap in use grew by at most %d MiB (base %d MiB)", n, len(col.batches), maxBatch, growth>>20, base.HeapAlloc>>20)
	// One batch of 100k small records is a few MiB of payload plus Record headers; the
	// bound is generous but far below holding the burst (1M records).
	if growth > 96<<20 {
		t.Fatalf("heap grew by %d MiB while processing", growth>>20)
	}
}

// TestGracefulStopCommitsBatchInProgress: Stop during a batch lets it finish and commit;
// the next start continues after it. Metrics describe the committed batches.
func TestGracefulStopCommitsBatchInProgress(t *testing.T) {
	c := newCluster(t, 2)
	produce(t, c, 2, 0, 1000)
	dir := t.TempDir()
	entered, release := make(chan struct{}), make(chan struct{})
	var got int
	blocked := false
	j := NewJob("graceful", 10*time.Millisecond)
	ForeachBatch(Input(j), "slow", func(_ context.Context, b BatchInfo, rs []Record) error {
		if len(rs) > 0 && !blocked {
			blocked = true
			close(entered)
			<-release
		}
		got += len(rs)
		return nil
	})
	reg := prometheus.NewRegistry()
	opts := engineOpts(c, dir)
	opts.Registry = reg
	e := startEngine(t, j, opts)
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("no batch started")
	}
	stopped := make(chan error)
	go func() { stopped <- e.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned before the batch finished: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if got != 1000 {
		t.Fatalf("batch in progress saw %d records", got)
	}
	prog, ok, err := ReadProgress(dir)
	if err != nil || !ok {
		t.Fatalf("no committed batch: %v", err)
	}
	if prog.Plan.Ranges.Count() != 1000 {
		t.Fatalf("committed batch ranges %+v", prog.Plan.Ranges)
	}
	// Per-batch metrics on the registry.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				vals[mf.GetName()] = m.Counter.GetValue()
			case m.Gauge != nil:
				vals[mf.GetName()] = m.Gauge.GetValue()
			case m.Histogram != nil:
				vals[mf.GetName()] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	if vals["tagpipe_streaming_records_total"] != 1000 || vals["tagpipe_streaming_batches_total"] < 1 ||
		vals["tagpipe_streaming_processing_seconds"] < 1 || vals["tagpipe_streaming_scheduling_delay_seconds"] < 1 {
		t.Fatalf("metrics %v", vals)
	}
	for _, name := range []string{"tagpipe_streaming_lag_records", "tagpipe_streaming_input_rate", "tagpipe_streaming_batch_records", "tagpipe_streaming_last_batch_id"} {
		if _, ok := vals[name]; !ok {
			t.Fatalf("metric %s missing", name)
		}
	}
	// Restart: nothing is read twice.
	got = 0
	produce(t, c, 2, 1000, 10)
	col := newCollected()
	opts = engineOpts(c, dir)
	opts.OnBatch = col.onBatch
	e, _ = New(j, opts)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	col.waitTotal(t, e, 10)
	e.Stop(context.Background())
	if got != 10 {
		t.Fatalf("after restart read %d records, want 10", got)
	}
}

// TestEngineCommitsGroupOffsets: committed batches' ends are visible as the consumer
// group's offsets (for lag tools), read back with franz-go's admin client.
func TestEngineCommitsGroupOffsets(t *testing.T) {
	c := newCluster(t, 3)
	produce(t, c, 3, 0, 900)
	col := newCollected()
	opts := engineOpts(c, t.TempDir())
	opts.Group = "tagpipe-streaming-test"
	opts.OnBatch = col.onBatch
	e, err := New(collectJob(col, 10*time.Millisecond), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	col.waitTotal(t, e, 900)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(context.Background(), "tagpipe-streaming-test")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 3; p++ {
		o, ok := offs.Lookup("events", p)
		if !ok || o.At != 300 {
			t.Fatalf("group offset of partition %d: %+v (found %v), want 300", p, o, ok)
		}
	}
}

// TestOverrunningBatchDelaysTheNext: batches never overlap; a batch that takes longer than
// the interval makes the next start late (scheduling delay) at the next tick, and batch
// times stay multiples of the interval.
func TestOverrunningBatchDelaysTheNext(t *testing.T) {
	c := newCluster(t, 1)
	produce(t, c, 1, 0, 10)
	const iv = 20 * time.Millisecond
	var running, overlaps int32
	col := newCollected()
	j := NewJob("overrun", iv)
	ForeachBatch(Input(j), "slow", func(_ context.Context, b BatchInfo, rs []Record) error {
		running++
		if running > 1 {
			overlaps++
		}
		if len(rs) > 0 {
			time.Sleep(5 * iv) // overrun
		}
		running--
		return nil
	})
	opts := engineOpts(c, t.TempDir())
	opts.OnBatch = col.onBatch
	e := startEngine(t, j, opts)
	col.waitTotal(t, e, 10)
	for {
		col.mu.Lock()
		n := len(col.batches)
		col.mu.Unlock()
		if n >= 4 {
			break
		}
		select {
		case <-col.signal:
		case <-time.After(10 * time.Second):
			t.Fatal("no batches after the overrun")
		}
	}
	e.Stop(context.Background())
	if overlaps != 0 {
		t.Fatalf("%d overlapping batches", overlaps)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	for i, b := range col.batches {
		if b.Time.UnixNano()%int64(iv) != 0 {
			t.Fatalf("batch %d time %v is not a multiple of %v", b.ID, b.Time, iv)
		}
		if i == 0 {
			continue
		}
		prev := col.batches[i-1]
		if !b.Time.After(prev.Time) {
			t.Fatalf("batch %d time %v not after %v", b.ID, b.Time, prev.Time)
		}
		if prev.Records > 0 {
			// The overrunning batch took ≥ 5 intervals: the next batch started after it
			// finished, at a later tick (missed ticks are skipped, not queued).
			if b.Time.Sub(prev.Time) < 4*iv && b.SchedulingDelay < 4*iv {
				t.Fatalf("batch after an overrun: time %v (prev %v), delay %v", b.Time, prev.Time, b.SchedulingDelay)
			}
		}
	}
}

func TestWindowArgumentsMustBeMultiplesOfTheInterval(t *testing.T) {
	j := NewJob("bad", time.Second)
	for _, c := range []struct{ l, s time.Duration }{{1500 * time.Millisecond, time.Second}, {2 * time.Second, 0}, {0, time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Window(%v, %v) accepted", c.l, c.s)
				}
			}()
			Window(Input(j), c.l, c.s)
		}()
	}
}

// TestFailingBatchIsReplayedAfterRestart: an output that keeps failing is retried with
// backoff until Stop; the uncommitted batch is replayed, with the same ranges, on the
// next start.
func TestFailingBatchIsReplayedAfterRestart(t *testing.T) {
	c := newCluster(t, 2)
	produce(t, c, 2, 0, 100)
	dir := t.TempDir()
	failures := make(chan struct{}, 100)
	j := NewJob("failing", 10*time.Millisecond)
	ForeachBatch(Input(j), "broken", func(_ context.Context, b BatchInfo, rs []Record) error {
		failures <- struct{}{}
		return fmt.Errorf("disk full")
	})
	opts := engineOpts(c, dir)
	opts.RetryBackoff = time.Millisecond
	e := startEngine(t, j, opts)
	for range 3 {
		select {
		case <-failures:
		case <-time.After(10 * time.Second):
			t.Fatal("no retries")
		}
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatalf("Stop while retrying: %v", err)
	}
	if _, ok, _ := ReadProgress(dir); ok {
		t.Fatal("a failing batch was committed")
	}
	col := newCollected()
	opts.OnBatch = col.onBatch
	runEngine(t, collectJob(col, 10*time.Millisecond), opts, col, 100)
	col.mu.Lock()
	first := col.batches[0]
	col.mu.Unlock()
	if !first.Replayed || first.ID != 0 {
		t.Fatalf("first batch after restart: %+v", first)
	}
	assertExactlyOnce(t, col, map[int32]int64{0: 50, 1: 50})
}

// TestSlowBatchesPrefetchTheNext: the next batch is planned and read while the current
// one is processed (here longer than the interval, so the next batch's time comes
// during it); every record is still processed once and in order, and each batch
// processes exactly the ranges its checkpoint plan holds (persisted before it ran).
func TestSlowBatchesPrefetchTheNext(t *testing.T) {
	addrs := newCluster(t, 3)
	produce(t, addrs, 3, 0, 3000)
	var prefetched atomic.Int64
	testHookPrefetched = func(int64) { prefetched.Add(1) }
	defer func() { testHookPrefetched = nil }()
	const iv = 10 * time.Millisecond
	col := newCollected()
	j := NewJob("slow", iv)
	ForeachBatch(Input(j), "slow", func(_ context.Context, b BatchInfo, rs []Record) error {
		col.mu.Lock()
		col.byBatch[b.ID] = append([]Record(nil), rs...)
		col.mu.Unlock()
		if len(rs) > 0 {
			time.Sleep(3 * iv)
		}
		return nil
	})
	dir := t.TempDir()
	opts := engineOpts(addrs, dir)
	opts.MaxRecordsPerPartition = 100
	opts.OnBatch = col.onBatch
	runEngine(t, j, opts, col, 3000)
	assertExactlyOnce(t, col, map[int32]int64{0: 1000, 1: 1000, 2: 1000})
	if prefetched.Load() == 0 {
		t.Fatal("no batch ran on prefetched records")
	}
	cp, err := openCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.close()
	col.mu.Lock()
	defer col.mu.Unlock()
	checked := 0
	for _, b := range col.batches {
		p, ok, err := cp.readPlan(b.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			continue // pruned
		}
		if p.Ranges.Encode() != b.Ranges.Encode() || !p.BatchTime.Equal(b.Time) {
			t.Fatalf("batch %d ran %v at %v, its plan says %v at %v", b.ID, b.Ranges, b.Time, p.Ranges, p.BatchTime)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no plan left to compare")
	}
}

// TestStateCheckpointsAreIncremental: a growing MapWithState (a dedup state, one key per
// record) is checkpointed as per-batch deltas after a full snapshot, not rewritten
// whole; a restart rebuilds it from the snapshot and the deltas (every key seen before
// the restart is still known: no record is emitted twice), and pruning keeps the files
// the committed state needs.
func TestStateCheckpointsAreIncremental(t *testing.T) {
	c := newCluster(t, 3)
	dir := t.TempDir()
	produce(t, c, 3, 0, 3000)
	var mu sync.Mutex
	emitted := map[string]int{}
	col := newCollected()
	run := func(want int64) int {
		j := NewJob("dedup", 5*time.Millisecond)
		first := MapWithState(KeyBy(Input(j), func(r Record) string { return string(r.Value) }),
			StateSpec[string, Record, bool, string]{
				Update: func(_ time.Time, k string, _ Record, st *State[bool]) (string, bool) {
					if _, seen := st.Get(); seen {
						return "", false
					}
					st.Update(true)
					return k, true
				},
				Timeout: time.Hour,
			})
		ForeachBatch(first, "emit", func(_ context.Context, _ BatchInfo, ks []string) error {
			mu.Lock()
			for _, k := range ks {
				emitted[k]++
			}
			mu.Unlock()
			return nil
		})
		opts := engineOpts(c, dir)
		opts.MaxRecordsPerPartition = 40
		opts.OnBatch = col.onBatch
		runEngine(t, j, opts, col, want)
		return StateSize(first)
	}
	run(3000)
	// The same values again (new offsets): all known, none emitted.
	produce(t, c, 3, 0, 3000)
	if n := run(6000); n != 3000 {
		t.Fatalf("state holds %d keys after the restart, want 3000", n)
	}
	for k, n := range emitted {
		if n != 1 {
			t.Fatalf("%s emitted %d times", k, n)
		}
	}
	if len(emitted) != 3000 {
		t.Fatalf("%d keys emitted, want 3000", len(emitted))
	}
	cp, err := openCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.close()
	files, err := cp.stateFiles()
	if err != nil {
		t.Fatal(err)
	}
	deltas := 0
	for _, full := range files {
		if !full {
			deltas++
		}
	}
	if deltas == 0 {
		t.Fatalf("no delta state files among %d", len(files))
	}
	last, err := cp.lastID("commits")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := cp.readState(last); !ok || err != nil {
		t.Fatalf("state of the last committed batch %d cannot be rebuilt after pruning: %v", last, err)
	}
}

// TestParallelOutputStartsWithItsStream: with parallel outputs, an output over an early
// stream runs while later streams are computed (here a later stream waits for it), and
// every output sees its whole stream.
func TestParallelOutputStartsWithItsStream(t *testing.T) {
	j := NewJob("early", time.Second)
	j.SetParallelOutputs(true)
	started := make(chan struct{})
	var early, late []Record
	ForeachBatch(Input(j), "early", func(_ context.Context, _ BatchInfo, rs []Record) error {
		early = rs
		close(started)
		return nil
	})
	waited := Transform(Input(j), func(_ BatchInfo, rs []Record) []Record {
		select {
		case <-started:
		case <-time.After(10 * time.Second): // a deadlock guard, not a timing assertion
			t.Error("the early output did not start before the later stream was computed")
		}
		return rs
	})
	ForeachBatch(waited, "late", func(_ context.Context, _ BatchInfo, rs []Record) error {
		late = rs
		return nil
	})
	in := []Record{{Offset: 1}, {Offset: 2}}
	if err := j.RunBatch(context.Background(), BatchInfo{ID: 0, Time: time.Unix(0, 0)}, in); err != nil {
		t.Fatal(err)
	}
	if len(early) != 2 || len(late) != 2 {
		t.Fatalf("outputs saw %d and %d records, want 2 each", len(early), len(late))
	}
}

// TestMapPartitionsDuringRead: MapPartitions output is the input mapped in input order,
// whether the engine computes it range by range while reading (each call then gets one
// partition's records) or RunBatch cuts the batch into pieces itself.
func TestMapPartitionsDuringRead(t *testing.T) {
	addrs := newCluster(t, 3)
	produce(t, addrs, 3, 0, 3000)
	col := newCollected()
	j := NewJob("parts", 10*time.Millisecond)
	j.SetParallelOutputs(true)
	var mu sync.Mutex
	mixed := 0
	mapped := MapPartitions(j, 16, func(_ BatchInfo, piece []Record) []Record {
		for _, r := range piece {
			if r.Partition != piece[0].Partition {
				mu.Lock()
				mixed++
				mu.Unlock()
				break
			}
		}
		return append([]Record(nil), piece...)
	})
	same := true
	ForeachBatch(mapped, "collect", func(_ context.Context, b BatchInfo, rs []Record) error {
		in := Input(j).items()
		same = same && len(in) == len(rs)
		for i := range min(len(in), len(rs)) {
			same = same && in[i].Partition == rs[i].Partition && in[i].Offset == rs[i].Offset
		}
		col.mu.Lock()
		col.byBatch[b.ID] = rs
		col.mu.Unlock()
		return nil
	})
	ForeachBatch(Input(j), "other", func(context.Context, BatchInfo, []Record) error { return nil })
	opts := engineOpts(addrs, t.TempDir())
	opts.MaxRecordsPerPartition = 300
	opts.OnBatch = col.onBatch
	runEngine(t, j, opts, col, 3000)
	assertExactlyOnce(t, col, map[int32]int64{0: 1000, 1: 1000, 2: 1000})
	if !same || mixed > 0 {
		t.Fatalf("mapped records differ from the input (%v) or a read-time call mixed partitions (%d)", same, mixed)
	}
	// Without the engine: pieces of at least 16 records, in order.
	recs := make([]Record, 100)
	for i := range recs {
		recs[i] = Record{Partition: int32(i % 3), Offset: int64(i)}
	}
	var got []Record
	j2 := NewJob("pieces", time.Second)
	ForeachBatch(MapPartitions(j2, 16, func(_ BatchInfo, piece []Record) []Record {
		if len(piece) < 16 && piece[len(piece)-1].Offset != 99 {
			t.Errorf("piece of %d records", len(piece))
		}
		return piece
	}), "got", func(_ context.Context, _ BatchInfo, rs []Record) error {
		got = rs
		return nil
	})
	if err := j2.RunBatch(context.Background(), BatchInfo{}, recs); err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r.Offset != int64(i) {
			t.Fatalf("record %d has offset %d", i, r.Offset)
		}
	}
	if len(got) != 100 {
		t.Fatalf("%d records, want 100", len(got))
	}
}

// startEngine creates and starts an engine for j.
func startEngine(t *testing.T, j *Job, opts Options) *Engine {
	t.Helper()
	e, err := New(j, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// runEngine starts an engine for j, waits until col has n records and stops it.
func runEngine(t *testing.T, j *Job, opts Options, col *collected, n int64) {
	t.Helper()
	e := startEngine(t, j, opts)
	col.waitTotal(t, e, n)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// jumpClock is a clock that moves one interval every time it is read and never waits:
// an engine that always runs late, skipping ticks.
type jumpClock struct {
	mu  sync.Mutex
	now time.Time
	iv  time.Duration
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.iv)
	return c.now
}

func (c *jumpClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

// Missed ticks are skipped, but never a window's slide time: a batch-time window
// emits only on batches at a multiple of its slide, so skipping one would drop the
// batches of that window without their ever being emitted.
func TestSkippedTicksKeepWindowSlides(t *testing.T) {
	c := newCluster(t, 1)
	const n = 30
	produce(t, c, 1, 0, n)
	const iv = time.Second
	j := NewJob("skip", iv)
	w := Window(Input(j), 3*iv, 3*iv)
	var mu sync.Mutex
	var emitted int
	var lastEmit time.Time
	ForeachBatch(w, "count", func(_ context.Context, b BatchInfo, rs []Record) error {
		mu.Lock()
		defer mu.Unlock()
		if aligned(b.Time, 3*iv) {
			emitted += len(rs)
			lastEmit = b.Time
		}
		return nil
	})
	col := newCollected()
	opts := engineOpts(c, t.TempDir())
	opts.MaxRecordsPerPartition = 1
	clk := &jumpClock{now: t0, iv: iv}
	opts.Now, opts.After = clk.Now, clk.After
	opts.OnBatch = col.onBatch
	e := startEngine(t, j, opts)
	col.waitTotal(t, e, n)
	// Wait for a window that ends after the last record's batch.
	col.mu.Lock()
	lastData := col.batches[len(col.batches)-1].Time
	col.mu.Unlock()
	for {
		mu.Lock()
		done := lastEmit.After(lastData) || lastEmit.Equal(lastData)
		mu.Unlock()
		if done {
			break
		}
		select {
		case <-col.signal:
		case <-time.After(10 * time.Second):
			t.Fatal("no window emitted after the last record")
		}
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if emitted != n {
		t.Fatalf("tumbling windows emitted %d records of %d", emitted, n)
	}
}

// Batch times are multiples of the interval since the Unix epoch (FORMAT.md; windows
// align to it) whatever the interval: time.Truncate counts from year 1, which agrees
// only for intervals that divide 719162 days.
func TestBatchTimesAlignToTheUnixEpoch(t *testing.T) {
	c := newCluster(t, 1)
	produce(t, c, 1, 0, 5)
	const iv = 7 * time.Second
	j := NewJob("odd", iv)
	w := Window(Input(j), iv, iv)
	var mu sync.Mutex
	emitted := 0
	ForeachBatch(w, "count", func(_ context.Context, _ BatchInfo, rs []Record) error {
		mu.Lock()
		emitted += len(rs)
		mu.Unlock()
		return nil
	})
	col := newCollected()
	opts := engineOpts(c, t.TempDir())
	opts.MaxRecordsPerPartition = 1
	clk := &jumpClock{now: t0, iv: 3 * time.Second}
	opts.Now, opts.After = clk.Now, clk.After
	opts.OnBatch = col.onBatch
	runEngine(t, j, opts, col, 5)
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, b := range col.batches {
		if b.Time.UnixNano()%int64(iv) != 0 {
			t.Fatalf("batch %d time %v is not a multiple of %v", b.ID, b.Time, iv)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if emitted != 5 {
		t.Fatalf("a window of one batch emitted %d of 5 records", emitted)
	}
}

// backClock reads t0 plus one interval per read until jumped, then an hour earlier
// (an NTP step back, or batches committed while the clock was an hour ahead). It never
// waits; it records the longest wait asked for.
type backClock struct {
	mu      sync.Mutex
	now     time.Time
	iv      time.Duration
	maxWait time.Duration
}

func (c *backClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.iv)
	return c.now
}

func (c *backClock) jump(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *backClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.maxWait = max(c.maxWait, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

// A clock that steps back does not stall the engine until it catches up with the last
// batch time: the next batch waits at most one interval.
func TestClockStepBackDoesNotStall(t *testing.T) {
	c := newCluster(t, 1)
	produce(t, c, 1, 0, 10)
	const iv = time.Second
	col := newCollected()
	j := collectJob(col, iv)
	opts := engineOpts(c, t.TempDir())
	opts.MaxRecordsPerPartition = 1
	clk := &backClock{now: t0, iv: iv}
	opts.Now, opts.After = clk.Now, clk.After
	opts.OnBatch = col.onBatch
	e := startEngine(t, j, opts)
	col.waitTotal(t, e, 3)
	clk.jump(-time.Hour)
	col.waitTotal(t, e, 10)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.mu.Lock()
	defer clk.mu.Unlock()
	if clk.maxWait > iv {
		t.Fatalf("the engine waited %v for the next batch (interval %v)", clk.maxWait, iv)
	}
}
