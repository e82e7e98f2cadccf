package pipeline

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

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
		rawD := runToEnd(b, addrs, raw, nil, int64(n))

		wh := openWarehouse(b, b.TempDir())
		po := DefaultOptions()
		po.Interval = 100 * time.Millisecond
		po.Warehouse = wh
		ev, err := NewEvents(context.Background(), po)
		if err != nil {
			b.Fatal(err)
		}
		e2eD := runToEnd(b, addrs, ev.Job, nil, int64(n))
		rawRate := float64(n) / rawD.Seconds()
		e2eRate := float64(n) / e2eD.Seconds()
		b.ReportMetric(rawRate, "raw_records/s")
		b.ReportMetric(e2eRate, "e2e_records/s")
		b.ReportMetric(100*e2eRate/rawRate, "e2e_%_of_raw")
		b.Logf("%d events (%.1f MB): raw consume %.0f records/s, end-to-end to committed Parquet %.0f records/s (%.0f%%)",
			n, float64(bytes)/1e6, rawRate, e2eRate, 100*e2eRate/rawRate)
	}
}
