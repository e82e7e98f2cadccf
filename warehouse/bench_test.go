package warehouse_test

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tagpipe/tagpipe/warehouse"
	"github.com/tagpipe/tagpipe/warehouse/internal/benchdata"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWrite measures Tx.Write + Commit of benchdata.Rows() narrow events into a
// dt-partitioned table (3 days), in 64k-row batches built beforehand.
func BenchmarkWrite(b *testing.B) {
	total := benchdata.Rows()
	const batch = 64 * 1024
	var recs []arrow.RecordBatch
	for start := 0; start < total; start += batch {
		recs = append(recs, benchdata.Events(start, min(batch, total-start), total, 3))
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	var bytes int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w, err := warehouse.Open(b.TempDir(), warehouse.DefaultOptions())
		if err != nil {
			b.Fatal(err)
		}
		tb, err := w.CreateTable(ctx, warehouse.TableSpec{Name: "ods_events", Schema: benchdata.Schema(), PartitionKeys: []string{"dt"}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		tx, err := tb.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range recs {
			if err := tx.Write(r); err != nil {
				b.Fatal(err)
			}
		}
		s, err := tx.Commit(ctx, warehouse.CommitOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if s.Rows() != int64(total) {
			b.Fatalf("rows %d", s.Rows())
		}
		bytes = s.Summary.TotalBytes
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	// CPU time (all threads) makes the figure comparable on a busy machine; it
	// includes the untimed table setup, so it is a slight underestimate.
	b.ReportMetric(float64(total)*float64(b.N)/(cpuTime()-cpu0).Seconds(), "rows/cpu-s")
	b.ReportMetric(float64(total)/sec, "rows/s")
	var in int64
	for _, r := range recs {
		for _, c := range r.Columns() {
			for _, buf := range c.Data().Buffers() {
				if buf != nil {
					in += int64(buf.Len())
				}
			}
		}
	}
	b.ReportMetric(float64(in)/sec/1e6, "inMB/s")
	b.ReportMetric(float64(bytes)/sec/1e6, "outMB/s")
	b.ReportMetric(float64(bytes)/float64(total), "B/row")
}

// BenchmarkCommitManyFiles: one small append commit to a table that already holds
// TAGPIPE_BENCH_FILES (default 2000) files — the per-commit cost that grows with a
// table streaming commits to between compactions.
func BenchmarkCommitManyFiles(b *testing.B) {
	files := 2000
	if v, err := strconv.Atoi(os.Getenv("TAGPIPE_BENCH_FILES")); err == nil && v > 0 {
		files = v
	}
	ctx := context.Background()
	w, err := warehouse.Open(b.TempDir(), warehouse.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	tb, err := w.CreateTable(ctx, warehouse.TableSpec{Name: "ods_events", Schema: benchdata.Schema(), PartitionKeys: []string{"dt"}})
	if err != nil {
		b.Fatal(err)
	}
	rec := benchdata.Events(0, 10, 10, 1)
	defer rec.Release()
	// Many files in one commit: each Write to a new transaction file via a tiny target.
	tx, err := tb.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for range files {
		if err := tx.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := tx.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := tx.Commit(ctx, warehouse.CommitOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for range b.N {
		tx, err := tb.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := tx.Write(rec); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Commit(ctx, warehouse.CommitOptions{Properties: map[string]string{"streaming.batch_id": "1"}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu_us/commit")
}
