package main

import (
	"bytes"
	"cmp"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/warehouse"
)

func runTagpipe(t *testing.T, args ...string) string {
	t.Helper()
	var out, errw bytes.Buffer
	root := newRootCmd(&out, &errw)
	root.SetArgs(args)
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("tagpipe %s: %v\n%s", strings.Join(args, " "), err, errw.String())
	}
	return out.String()
}

func TestTablesCommands(t *testing.T) {
	dir := t.TempDir()
	w, err := warehouse.Open(filepath.Join(dir, "warehouse"), warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{
		warehouse.Field("user_id", arrow.BinaryTypes.String, "who"),
		warehouse.RequiredField("dt", arrow.BinaryTypes.String, "day"),
	}, nil)
	tb, err := w.CreateTable(ctx, warehouse.TableSpec{Name: "ods_events", Schema: schema, PartitionKeys: []string{"dt"}, Doc: "raw events"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		b.Field(0).(*array.StringBuilder).AppendValues([]string{"a", "b"}, nil)
		b.Field(1).(*array.StringBuilder).AppendValues([]string{"2024-05-01", "2024-05-01"}, nil)
		rec := b.NewRecordBatch()
		b.Release()
		tx, err := tb.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if _, err := tx.Commit(ctx, warehouse.CommitOptions{Properties: map[string]string{"batch": string(rune('0' + i))}}); err != nil {
			t.Fatal(err)
		}
	}
	list := runTagpipe(t, "--data-dir", dir, "tables", "list")
	if !strings.Contains(list, "ods_events") || !strings.Contains(list, "  6  ") {
		t.Fatalf("list:\n%s", list)
	}
	desc := runTagpipe(t, "--data-dir", dir, "tables", "describe", "ods_events")
	for _, want := range []string{"raw events", "user_id", "VARCHAR (partition)", "dt=2024-05-01", "batch = 4", "10 rows"} {
		if !strings.Contains(desc, want) {
			t.Fatalf("describe lacks %q:\n%s", want, desc)
		}
	}
	// Mistakes say where to look: a misspelt table, a time before the first snapshot.
	if out, err := runTagpipeErr("--data-dir", dir, "tables", "describe", "ods_event"); err == nil ||
		!strings.Contains(err.Error(), `table "ods_event": not found in `+filepath.Join(dir, "warehouse")+" (tagpipe tables list shows the tables") {
		t.Fatalf("describe ods_event: %v\n%s", err, out)
	}
	if out, err := runTagpipeErr("--data-dir", dir, "tables", "describe", "ods_events", "--as-of", "2000-01-01T00:00:00Z"); err == nil ||
		!strings.Contains(err.Error(), "tagpipe tables history ods_events lists its snapshots") {
		t.Fatalf("describe --as-of 2000: %v\n%s", err, out)
	}
	hist := runTagpipe(t, "--data-dir", dir, "tables", "history", "ods_events")
	if n := strings.Count(hist, "\n"); n != 7 || !strings.Contains(hist, "create") {
		t.Fatalf("history:\n%s", hist)
	}
	comp := runTagpipe(t, "--data-dir", dir, "tables", "compact")
	if !strings.Contains(comp, "ods_events: 1 partitions, 5 files -> 1, 10 rows rewritten, snapshot 7") {
		t.Fatalf("compact:\n%s", comp)
	}
	exp := runTagpipe(t, "--data-dir", dir, "tables", "expire", "--older-than", "1ns", "--retain", "1")
	if !strings.Contains(exp, "ods_events: expired 6 snapshots, removed 5 files") {
		t.Fatalf("expire:\n%s", exp)
	}
	if s, _ := tb.Current(); s.ID != 7 || s.Rows() != 10 || len(s.Files) != 1 {
		t.Fatalf("after maintenance: snapshot %d rows %d files %d", s.ID, s.Rows(), len(s.Files))
	}
	m := runTagpipe(t, "--data-dir", dir, "tables", "maintain", "ods_events")
	if !strings.Contains(m, "ods_events: nothing to compact") || !strings.Contains(m, "ods_events: expired 0 snapshots") {
		t.Fatalf("maintain:\n%s", m)
	}
}

// TestWarehouseCompression: config takes exactly the codecs and levels the warehouse
// does; files written (here: by compaction) with each configured codec read back in
// DuckDB.
func TestWarehouseCompression(t *testing.T) {
	if !slices.Equal(config.WarehouseCompressions, warehouse.Compressions) {
		t.Fatalf("config codecs %v, warehouse codecs %v", config.WarehouseCompressions, warehouse.Compressions)
	}
	for _, codec := range append(slices.Clone(warehouse.Compressions), "uncompressed") {
		for level := 0; level <= 23; level++ {
			_, cerr := config.Load(config.LoadOptions{Environ: []string{}, Overrides: map[string]string{
				"warehouse.compression": codec, "warehouse.compression_level": strconv.Itoa(level)}})
			_, werr := warehouse.ParseCompression(codec, level)
			if (cerr == nil) != (werr == nil) {
				t.Errorf("%s level %d: config says %v, warehouse %v", codec, level, cerr, werr)
			}
		}
	}
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{
		warehouse.Field("user_id", arrow.BinaryTypes.String, "who"),
		warehouse.RequiredField("dt", arrow.BinaryTypes.String, "day"),
	}, nil)
	for _, codec := range warehouse.Compressions {
		t.Run(codec, func(t *testing.T) {
			dir := t.TempDir()
			w, err := warehouse.Open(filepath.Join(dir, "warehouse"), warehouse.DefaultOptions())
			if err != nil {
				t.Fatal(err)
			}
			tb, err := w.CreateTable(ctx, warehouse.TableSpec{Name: "ods_events", Schema: schema, PartitionKeys: []string{"dt"}, Doc: "raw events"})
			if err != nil {
				t.Fatal(err)
			}
			for range 4 {
				b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
				b.Field(0).(*array.StringBuilder).AppendValues([]string{"a", "b", "c"}, nil)
				b.Field(1).(*array.StringBuilder).AppendValues([]string{"2024-05-01", "2024-05-01", "2024-05-02"}, nil)
				rec := b.NewRecordBatch()
				b.Release()
				commitRecord(t, tb, rec)
			}
			w.Close()
			cfg := filepath.Join(dir, "tagpipe.yaml")
			if err := os.WriteFile(cfg, []byte("warehouse:\n  compression: "+codec+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			runTagpipe(t, "--config", cfg, "--data-dir", dir, "tables", "compact")
			files, _ := filepath.Glob(filepath.Join(dir, "warehouse", "ods", "ods_events", "dt=*", "*.parquet"))
			if len(files) != 2 {
				t.Fatalf("files after compaction: %v", files)
			}
			got := runTagpipe(t, "--config", cfg, "--data-dir", dir, "sql", "--csv", "-e",
				"SELECT DISTINCT compression FROM parquet_metadata('"+filepath.Join(dir, "warehouse", "ods", "ods_events")+"/*/*.parquet')")
			if want := map[string]string{"none": "UNCOMPRESSED"}[codec]; !strings.Contains(got, cmp.Or(want, strings.ToUpper(codec))) {
				t.Errorf("compression of the compacted files:\n%s", got)
			}
			got = runTagpipe(t, "--config", cfg, "--data-dir", dir, "sql", "--csv", "-e", "SELECT dt, count(*) AS n FROM ods_events GROUP BY dt ORDER BY dt")
			if want := "dt,n\n2024-05-01,8\n2024-05-02,4\n"; got != want {
				t.Errorf("DuckDB reads %q, want %q", got, want)
			}
		})
	}
}
