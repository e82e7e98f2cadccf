package duckpeer

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/tagpipe/tagpipe/streaming"
	"github.com/tagpipe/tagpipe/streaming/pipeline"
	"github.com/tagpipe/tagpipe/warehouse"
	"github.com/tagpipe/tagpipe/warehouse/duckbridge"
)

// cpuTime is the process's CPU time so far, all threads (DuckDB's included).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tables are the two tables every record of the events pipeline lands in.
var tables = []string{pipeline.TableODS, pipeline.TableDWD}

// BenchmarkEventsWriters: the rows one batch of TAGPIPE_BENCH_EVENTS (default 300k)
// Taobao lines gives ods_events and dwd_events, written from memory to Parquet files
// by each writer in turn:
//   - tagpipe: the warehouse writer (zstd level 1, the default) from Arrow records,
//     both tables at once as the pipeline writes them, committed (fsynced);
//   - duckdb_zstd, duckdb_snappy, duckdb_none: DuckDB's native writer, COPY … TO
//     (FORMAT parquet) from in-memory DuckDB tables of the same rows, two threads.
//
// It reports CPU per record (the whole process) and records per second per writer.
// This is the floor under the events pipeline's end-to-end rate
// (BenchmarkEventsEndToEnd): the write alone, with no Kafka read and no parsing.
func BenchmarkEventsWriters(b *testing.B) {
	n := 300_000
	if v, err := strconv.Atoi(os.Getenv("TAGPIPE_BENCH_EVENTS")); err == nil && v > 0 {
		n = v
	}
	recs, db := setup(b, n)
	duck := func(opts string) func(string) {
		return func(dir string) { writeDuckDB(b, db, dir, opts) }
	}
	writers := []struct {
		name  string
		write func(dir string)
	}{
		{"tagpipe", func(dir string) { writeTagpipe(b, dir, recs) }},
		{"duckdb_zstd", duck(", COMPRESSION zstd")},
		{"duckdb_snappy", duck(", COMPRESSION snappy")},
		{"duckdb_none", duck(", COMPRESSION uncompressed")},
	}
	cpu := make([]time.Duration, len(writers))
	wall := make([]time.Duration, len(writers))
	b.ResetTimer()
	for i := range b.N {
		// Each iteration starts at another writer, so load from elsewhere on the
		// machine falls on all of them alike.
		for k := range writers {
			j := (i + k) % len(writers)
			dir := b.TempDir()
			c0, t0 := cpuTime(), time.Now()
			writers[j].write(dir)
			wall[j] += time.Since(t0)
			cpu[j] += cpuTime() - c0
			if err := os.RemoveAll(dir); err != nil {
				b.Fatal(err)
			}
		}
	}
	for j, w := range writers {
		b.ReportMetric(float64(cpu[j].Nanoseconds())/1e3/float64(n*b.N), w.name+"_cpu_us/record")
		b.ReportMetric(float64(n*b.N)/wall[j].Seconds(), w.name+"_records/s")
	}
}

// setup returns the rows of n Taobao lines' ods_events and dwd_events as Arrow
// records (eventsTables) and an in-memory DuckDB holding the same rows in tables
// of those names.
func setup(tb testing.TB, n int) (map[string][]arrow.RecordBatch, *sql.DB) {
	recs, parquetFiles := eventsTables(tb, n)
	tb.Cleanup(func() {
		for _, rs := range recs {
			for _, r := range rs {
				r.Release()
			}
		}
	})
	db, err := sql.Open("duckdb", "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	for _, t := range tables {
		var list []string
		for _, f := range parquetFiles[t] {
			list = append(list, duckbridge.Literal(f))
		}
		q := fmt.Sprintf(`CREATE TABLE %s AS SELECT * FROM read_parquet([%s], hive_partitioning = false)`, t, strings.Join(list, ", "))
		if _, err := db.Exec(q); err != nil {
			tb.Fatal(err)
		}
	}
	return recs, db
}

// writeTagpipe writes both tables of recs into a new warehouse in dir at once, as
// the pipeline writes them.
func writeTagpipe(tb testing.TB, dir string, recs map[string][]arrow.RecordBatch) {
	w, err := warehouse.Open(dir, warehouse.DefaultOptions())
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	var wg sync.WaitGroup
	errs := make([]error, len(tables))
	for i, name := range tables {
		wg.Go(func() { errs[i] = writeTable(context.Background(), w, name, recs[name]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// writeDuckDB copies both tables of db to dir/<table>.parquet with DuckDB's
// writer; opts are more COPY options (", COMPRESSION zstd").
func writeDuckDB(tb testing.TB, db *sql.DB, dir, opts string) {
	for _, t := range tables {
		q := fmt.Sprintf(`COPY %s TO %s (FORMAT parquet%s)`, t, duckbridge.Literal(filepath.Join(dir, t+".parquet")), opts)
		if _, err := db.Exec(q); err != nil {
			tb.Fatal(err)
		}
	}
}

// eventsTables runs the events pipeline on one batch of n Taobao lines and returns
// the rows of ods_events and dwd_events as Arrow records (the tables' data columns,
// dt aside) and the Parquet files that hold them.
func eventsTables(b testing.TB, n int) (map[string][]arrow.RecordBatch, map[string][]string) {
	ctx := context.Background()
	in := make([]streaming.Record, n)
	for i := range in {
		line := fmt.Appendf(nil, "%d,%d,%d,%s,%d", i%100000, 1000000+i%50000, i%500, [...]string{"pv", "pv", "pv", "fav", "cart", "buy"}[i%6], 1511544070+i/2000)
		in[i] = streaming.Record{Topic: "events", Partition: int32(i % 6), Offset: int64(i / 6), Value: line, Time: time.Unix(1511544070, 0)}
	}
	w, err := warehouse.Open(b.TempDir(), warehouse.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	po := pipeline.DefaultOptions()
	po.Warehouse = w
	ev, err := pipeline.NewEvents(ctx, po)
	if err != nil {
		b.Fatal(err)
	}
	if err := ev.Job.RunBatch(ctx, streaming.BatchInfo{ID: 0, Time: time.Unix(1511544070, 0)}, in); err != nil {
		b.Fatal(err)
	}
	recs, files := map[string][]arrow.RecordBatch{}, map[string][]string{}
	for _, name := range tables {
		t, err := w.Table(name)
		if err != nil {
			b.Fatal(err)
		}
		s, err := t.Current()
		if err != nil {
			b.Fatal(err)
		}
		rows := int64(0)
		err = s.Scan(ctx, func(f warehouse.DataFile, rec arrow.RecordBatch) error {
			rec, err := dictionaries(rec)
			if err != nil {
				return err
			}
			recs[name] = append(recs[name], rec)
			rows += rec.NumRows()
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if rows != int64(n) {
			b.Fatalf("%s has %d rows, want %d", name, rows, n)
		}
		for _, f := range s.Files {
			files[name] = append(files[name], s.AbsPath(f))
		}
	}
	return recs, files
}

// writeTable creates name (unpartitioned, the records' columns) in w and writes recs
// to it in one committed transaction.
func writeTable(ctx context.Context, w *warehouse.Warehouse, name string, recs []arrow.RecordBatch) error {
	// The table's columns are the records' with plain strings for dictionaries.
	fields := slices.Clone(recs[0].Schema().Fields())
	for i, f := range fields {
		if dt, ok := f.Type.(*arrow.DictionaryType); ok {
			fields[i].Type = dt.ValueType
		}
	}
	md := recs[0].Schema().Metadata()
	t, err := w.CreateTable(ctx, warehouse.TableSpec{Name: name, Schema: arrow.NewSchema(fields, &md)})
	if err != nil {
		return err
	}
	tx, err := t.Begin(ctx)
	if err != nil {
		return err
	}
	if err := tx.WriteChunks(recs); err != nil {
		tx.Abort()
		return err
	}
	_, err = tx.Commit(ctx, warehouse.CommitOptions{})
	return err
}

// TestEventsWritersAgree: the events tables written by the warehouse and by DuckDB
// from the same rows read back the same in DuckDB, every column of every row
// (timestamps with zone, the props map, nulls, dictionary-encoded strings).
func TestEventsWritersAgree(t *testing.T) {
	recs, db := setup(t, 20_000)
	ours, theirs := t.TempDir(), t.TempDir()
	writeTagpipe(t, ours, recs)
	writeDuckDB(t, db, theirs, ", COMPRESSION zstd")
	w, err := warehouse.Open(ours, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, name := range tables {
		tb, err := w.Table(name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tb.Current()
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Files) == 0 {
			t.Fatalf("%s: no files", name)
		}
		var files []string
		for _, f := range s.Files {
			files = append(files, duckbridge.Literal(s.AbsPath(f)))
		}
		// Order-free digest of whole rows, and the row count.
		digest := func(from string) (n int64, h string) {
			q := fmt.Sprintf(`SELECT count(*), bit_xor(hash(columns_row))::VARCHAR FROM (SELECT struct_pack(*COLUMNS(*)) AS columns_row FROM %s)`, from)
			if err := db.QueryRow(q).Scan(&n, &h); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return n, h
		}
		n1, h1 := digest(fmt.Sprintf("read_parquet([%s])", strings.Join(files, ", ")))
		n2, h2 := digest(fmt.Sprintf("read_parquet(%s)", duckbridge.Literal(filepath.Join(theirs, name+".parquet"))))
		n3, h3 := digest(name)
		if n1 != 20_000 || n1 != n2 || h1 != h2 || h1 != h3 {
			t.Errorf("%s: warehouse file %d rows %s, DuckDB's %d rows %s, the table %d rows %s", name, n1, h1, n2, h2, n3, h3)
		}
	}
}

// dictColumns are the string columns the pipeline hands the warehouse as Arrow
// dictionaries (streaming/pipeline/pieces.go), so the writer is timed on the input
// it gets in the pipeline.
var dictColumns = map[string]bool{"topic": true, "source": true, "format": true, "action": true, "category": true}

// dictionaries returns rec with its dictColumns dictionary-encoded (a new record;
// rec is the scan's, released by it).
func dictionaries(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	fields := slices.Clone(rec.Schema().Fields())
	cols := make([]arrow.Array, len(fields))
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, f := range fields {
		col := rec.Column(i)
		str, ok := col.(*array.String)
		if !dictColumns[f.Name] || !ok {
			col.Retain()
			cols[i] = col
			continue
		}
		dt := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
		bld := array.NewDictionaryBuilder(memory.DefaultAllocator, dt).(*array.BinaryDictionaryBuilder)
		for j := range str.Len() {
			if str.IsNull(j) {
				bld.AppendNull()
			} else if err := bld.AppendString(str.Value(j)); err != nil {
				bld.Release()
				return nil, err
			}
		}
		cols[i] = bld.NewArray()
		bld.Release()
		fields[i].Type = dt
	}
	md := rec.Schema().Metadata()
	return array.NewRecordBatch(arrow.NewSchema(fields, &md), cols, rec.NumRows()), nil
}
