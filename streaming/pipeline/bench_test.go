package pipeline

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/streaming"
	"github.com/tagpipe/tagpipe/streaming/internal/testkafka"
)

// benchEvents is the number of Taobao lines in the benchmark topic
// (TAGPIPE_BENCH_EVENTS overrides; default 300k).
func benchEvents() int {
	if v, err := strconv.Atoi(os.Getenv("TAGPIPE_BENCH_EVENTS")); err == nil && v > 0 {
		return v
	}
	return 300_000
}

// taobaoLine is event i of a stream of 2,000 events per second of event time.
func taobaoLine(i int) []byte {
	return fmt.Appendf(nil, "%d,%d,%d,%s,%d", i%100000, 1000000+i%50000, i%500, [...]string{"pv", "pv", "pv", "fav", "cart", "buy"}[i%6], 1511544070+i/2000)
}

// cpuTime is the process's CPU time so far (all threads): on a shared, noisy machine
// CPU per record compares runs better than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runToEnd runs job over the topic until n records are committed and returns the time.
func runToEnd(b *testing.B, addrs []string, job *streaming.Job, resume func(context.Context) (streaming.BatchInfo, bool, error), n int64) time.Duration {
	w := newWaiter()
	o := streaming.DefaultOptions()
	o.Brokers, o.Topics, o.CheckpointDir = addrs, []string{"events"}, b.TempDir()
	o.OnBatch = func(m streaming.BatchMetrics) {
		if os.Getenv("TAGPIPE_BENCH_VERBOSE") != "" {
			b.Logf("%s batch %d: %d records in %v", job.Name(), m.ID, m.Records, m.ProcessingTime)
		}
		w.onBatch(m)
	}
	o.Resume = resume
	e, err := streaming.New(job, o)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := e.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	w.wait(b, e, n)
	d := time.Since(start)
	if err := e.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkEventsEndToEnd: records/s from the topic to committed Parquet (ods_events,
// dwd_events, window counts), next to the raw consume rate of the same topic through the
// same kafka-go reader with no output, in the same run. Batch interval 100ms, 6
// partitions, max 100k records per partition per batch.
func BenchmarkEventsEndToEnd(b *testing.B) {
	n := benchEvents()
	addrs := testkafka.Start(b, "kfake", "events", 6)
	for off := 0; off < n; off += 100000 {
		recs := make([]testkafka.Record, 0, 100000)
		for i := off; i < min(n, off+100000); i++ {
			recs = append(recs, testkafka.Record{Partition: int32(i % 6), Value: taobaoLine(i)})
		}
		testkafka.Produce(b, addrs, "events", recs)
	}
	b.ResetTimer()
	for range b.N {
		raw := streaming.NewJob("raw", 100*time.Millisecond)
		var bytes int64
		streaming.ForeachBatch(streaming.Input(raw), "count", func(_ context.Context, _ streaming.BatchInfo, rs []streaming.Record) error {
			for _, r := range rs {
				bytes += int64(len(r.Value))
			}
			return nil
		})
		cpu0 := cpuTime()
		rawD := runToEnd(b, addrs, raw, nil, int64(n))
		rawCPU := cpuTime() - cpu0

		wh := openWarehouse(b, b.TempDir())
		po := DefaultOptions()
		po.Interval = 100 * time.Millisecond
		po.Warehouse = wh
		ev, err := NewEvents(context.Background(), po)
		if err != nil {
			b.Fatal(err)
		}
		cpu0 = cpuTime()
		e2eD := runToEnd(b, addrs, ev.Job, nil, int64(n))
		e2eCPU := cpuTime() - cpu0
		rawRate := float64(n) / rawD.Seconds()
		e2eRate := float64(n) / e2eD.Seconds()
		b.ReportMetric(rawRate, "raw_records/s")
		b.ReportMetric(e2eRate, "e2e_records/s")
		b.ReportMetric(100*e2eRate/rawRate, "e2e_%_of_raw")
		// CPU of the whole process (the in-process kfake broker included).
		b.ReportMetric(float64(rawCPU.Microseconds())/float64(n), "raw_cpu_us/record")
		b.ReportMetric(float64(e2eCPU.Microseconds())/float64(n), "e2e_cpu_us/record")
		b.Logf("%d events (%.1f MB): raw consume %.0f records/s, end-to-end to committed Parquet %.0f records/s (%.0f%%)",
			n, float64(bytes)/1e6, rawRate, e2eRate, 100*e2eRate/rawRate)
	}
}

// BenchmarkEndToEndLatency produces Taobao lines at a fixed rate (TAGPIPE_BENCH_RATE,
// default 50k/s) for TAGPIPE_BENCH_SECONDS (default 6) into kfake while the events
// pipeline runs with a 1 s batch interval, and reports the latency from each record's
// produce timestamp to the commit of its dwd_events snapshot (the moment a SQL view over
// the current snapshot can see it): p50, p99, max.
func BenchmarkEndToEndLatency(b *testing.B) {
	rate, secs := 50000, 6
	if v, err := strconv.Atoi(os.Getenv("TAGPIPE_BENCH_RATE")); err == nil && v > 0 {
		rate = v
	}
	if v, err := strconv.Atoi(os.Getenv("TAGPIPE_BENCH_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	for range b.N {
		addrs := testkafka.Start(b, "kfake", "events", 6)
		wh := openWarehouse(b, b.TempDir())
		po := DefaultOptions()
		po.Interval = time.Second
		po.Warehouse = wh
		ev, err := NewEvents(context.Background(), po)
		if err != nil {
			b.Fatal(err)
		}
		var mu sync.Mutex
		pending := map[int64][]time.Time{}
		var lat []time.Duration
		streaming.ForeachBatch(streaming.Input(ev.Job), "latency", func(_ context.Context, bi streaming.BatchInfo, rs []streaming.Record) error {
			ts := make([]time.Time, len(rs))
			for i, r := range rs {
				ts[i] = r.Time
			}
			mu.Lock()
			pending[bi.ID] = ts
			mu.Unlock()
			return nil
		})
		o := streaming.DefaultOptions()
		o.Brokers, o.Topics, o.CheckpointDir = addrs, []string{"events"}, b.TempDir()
		o.StartingOffsets = "latest"
		total := int64(0)
		o.OnBatch = func(m streaming.BatchMetrics) { // runs after the batch committed
			now := time.Now()
			mu.Lock()
			for _, t := range pending[m.ID] {
				lat = append(lat, now.Sub(t))
			}
			delete(pending, m.ID)
			total += m.Records
			mu.Unlock()
		}
		e, err := streaming.New(ev.Job, o)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // first (empty) batches: the engine is at the end
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerLinger(5*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		tick := time.NewTicker(10 * time.Millisecond)
		sent := 0
		for start := time.Now(); time.Since(start) < time.Duration(secs)*time.Second; {
			<-tick.C
			// Catch up to the target rate when a tick was late.
			due := int(time.Since(start).Seconds() * float64(rate))
			for ; sent < due; sent++ {
				cl.Produce(context.Background(), &kgo.Record{Topic: "events", Value: taobaoLine(sent)}, nil)
			}
		}
		tick.Stop()
		if err := cl.Flush(context.Background()); err != nil {
			b.Fatal(err)
		}
		cl.Close()
		deadline := time.Now().Add(60 * time.Second)
		for {
			mu.Lock()
			done := total >= int64(sent)
			mu.Unlock()
			if done || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := e.Stop(context.Background()); err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		slices.Sort(lat)
		if len(lat) != sent {
			b.Fatalf("measured %d of %d records", len(lat), sent)
		}
		q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		b.ReportMetric(q(0.5).Seconds(), "p50_s")
		b.ReportMetric(q(0.99).Seconds(), "p99_s")
		b.ReportMetric(lat[len(lat)-1].Seconds(), "max_s")
		b.Logf("%d events at %d/s, batch interval 1s: produce → committed in dwd_events p50 %v, p99 %v, max %v",
			sent, rate, q(0.5).Round(time.Millisecond), q(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
		mu.Unlock()
	}
}

// BenchmarkEventsBatch runs the events job on in-memory batches of 100k Taobao records
// (no Kafka): the cost of parsing, dedup, windows and the Parquet commits per record.
func BenchmarkEventsBatch(b *testing.B) {
	const n = 100_000
	recs := make([]streaming.Record, n)
	for i := range recs {
		recs[i] = streaming.Record{Topic: "events", Partition: int32(i % 6), Offset: int64(i / 6), Value: taobaoLine(i), Time: time.Unix(1700000000, 0)}
	}
	wh := openWarehouse(b, b.TempDir())
	po := DefaultOptions()
	po.Warehouse = wh
	ev, err := NewEvents(context.Background(), po)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		bt := time.Unix(1700000000, 0).Add(time.Duration(i) * po.Interval)
		if err := ev.Job.RunBatch(context.Background(), streaming.BatchInfo{ID: int64(i), Time: bt}, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n*b.N), "cpu_us/record")
}

// BenchmarkMovieLensBatch runs the events job on one batch of the bundled MovieLens
// ratings (100k lines over 22 years of event days): dwd_events gets one file per
// event day (thousands of small files in one commit), the case where per-file costs
// (writer setup, fsyncs, renames, the manifest) dominate.
func BenchmarkMovieLensBatch(b *testing.B) {
	lines := movielensLines(b, 200_000)
	recs := make([]streaming.Record, len(lines))
	for i, l := range lines {
		recs[i] = streaming.Record{Topic: "ratings", Partition: 0, Offset: int64(i), Value: []byte(l), Time: time.Unix(1700000000, 0)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	files := 0
	for range b.N {
		b.StopTimer()
		wh := openWarehouse(b, b.TempDir())
		po := DefaultOptions()
		po.Warehouse = wh
		ev, err := NewEvents(context.Background(), po)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := ev.Job.RunBatch(context.Background(), streaming.BatchInfo{ID: 0, Time: time.Unix(1700000000, 0)}, recs); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		t, err := wh.Table(TableDWD)
		if err != nil {
			b.Fatal(err)
		}
		s, err := t.Current()
		if err != nil {
			b.Fatal(err)
		}
		files = len(s.Files)
		b.StartTimer()
	}
	b.ReportMetric(float64(len(recs)*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(len(recs)*b.N), "cpu_us/record")
	b.ReportMetric(float64(files), "dwd_files")
}
