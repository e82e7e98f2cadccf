package warehouse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"
)

// eventsSchema is a narrow ods_events-like schema.
func eventsSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		RequiredField("user_id", arrow.BinaryTypes.String, "who"),
		Field("item_id", arrow.BinaryTypes.String, "what"),
		Field("action", arrow.BinaryTypes.String, "view, click, buy, ..."),
		Field("event_time", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, "when it happened"),
		Field("value", arrow.PrimitiveTypes.Float64, "rating or price"),
		RequiredField("dt", arrow.FixedWidthTypes.Date32, "event day (partition)"),
	}, nil)
}

var day0 = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

// events builds n rows; row i belongs to day (i % days) and user u<seed+i>.
func events(n, days, seed int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, eventsSchema())
	defer b.Release()
	for i := range n {
		k := seed + i
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("u%d", k%1000))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("i%d", k%97))
		b.Field(2).(*array.StringBuilder).Append([]string{"view", "click", "buy"}[k%3])
		d := day0.AddDate(0, 0, i%days)
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(d.Add(time.Duration(k) * time.Second).UnixMicro()))
		if k%5 == 0 {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.Float64Builder).Append(float64(k) / 10)
		}
		b.Field(5).(*array.Date32Builder).Append(arrow.Date32FromTime(d))
	}
	return b.NewRecordBatch()
}

func openTest(t *testing.T, root string) *Warehouse {
	t.Helper()
	o := DefaultOptions()
	o.LockTimeout = 5 * time.Second
	w, err := Open(root, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func createEvents(t *testing.T, w *Warehouse, name string) *Table {
	t.Helper()
	tb, err := w.CreateTable(context.Background(), TableSpec{Name: name, Schema: eventsSchema(), PartitionKeys: []string{"dt"}, Doc: "test events"})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func appendRec(t *testing.T, tb *Table, rec arrow.RecordBatch, opts CommitOptions) *Snapshot {
	t.Helper()
	tx, err := tb.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	if err := tx.Write(rec); err != nil {
		t.Fatal(err)
	}
	s, err := tx.Commit(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rowsOf reads a snapshot back as sorted canonical row strings (partition values
// included), the basis of count + checksum comparisons.
func rowsOf(t *testing.T, s *Snapshot) []string {
	t.Helper()
	var out []string
	err := s.Scan(context.Background(), func(f DataFile, rec arrow.RecordBatch) error {
		for r := range int(rec.NumRows()) {
			var b strings.Builder
			b.WriteString(f.Partition.Path())
			for c := range int(rec.NumCols()) {
				b.WriteString("|")
				col := rec.Column(c)
				if col.IsNull(r) {
					b.WriteString("NULL")
				} else {
					b.WriteString(col.ValueStr(r))
				}
			}
			out = append(out, b.String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestCreateWriteCommitList(t *testing.T) {
	w := openTest(t, t.TempDir())
	tb := createEvents(t, w, "ods_events")
	if got := tb.Dir(); got != filepath.Join(w.Root(), "ods", "ods_events") {
		t.Fatalf("dir = %s", got)
	}
	rec := events(1000, 3, 0)
	defer rec.Release()
	s := appendRec(t, tb, rec, CommitOptions{Properties: map[string]string{"batch": "1"}})
	if s.ID != 2 || s.ParentID != 1 || s.Operation != OpAppend {
		t.Fatalf("snapshot %d parent %d op %s", s.ID, s.ParentID, s.Operation)
	}
	if s.Rows() != 1000 || len(s.Files) != 3 {
		t.Fatalf("rows %d files %d", s.Rows(), len(s.Files))
	}
	for _, f := range s.Files {
		if !strings.HasPrefix(f.Path, "dt=2024-05-0") || f.Bytes <= 0 || f.Rows == 0 {
			t.Fatalf("bad file %+v", f)
		}
		if _, err := os.Stat(s.AbsPath(f)); err != nil {
			t.Fatal(err)
		}
	}
	cur, err := tb.Current()
	if err != nil || cur.ID != 2 || cur.Properties["batch"] != "1" {
		t.Fatalf("current %+v %v", cur, err)
	}
	if got := len(rowsOf(t, cur)); got != 1000 {
		t.Fatalf("read back %d rows", got)
	}
	names, err := w.TableNames()
	if err != nil || !slices.Equal(names, []string{"ods_events"}) {
		t.Fatalf("tables %v %v", names, err)
	}
	// A second handle from a fresh Open sees the same.
	w2 := openTest(t, w.Root())
	tb2, err := w2.Table("ods_events")
	if err != nil {
		t.Fatal(err)
	}
	cur2, _ := tb2.Current()
	if cur2.ID != 2 || cur2.Rows() != 1000 || !cur2.Schema.Equal(cur.Schema) {
		t.Fatalf("reopened: %d %d", cur2.ID, cur2.Rows())
	}
	if _, err := w2.Table("ods_nothing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing table: %v", err)
	}
	if _, err := w2.Table("Events"); err == nil {
		t.Fatal("bad name accepted")
	}
}

// Metrics go to the registry given in Options, and a second Open on the same
// registry shares them.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := DefaultOptions()
	o.Registerer = reg
	root := t.TempDir()
	w, err := Open(root, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root, o); err != nil {
		t.Fatalf("second Open on the same registry: %v", err)
	}
	tb := createEvents(t, w, "ods_events")
	rec := events(30, 3, 0)
	defer rec.Release()
	appendRec(t, tb, rec, CommitOptions{})
	tx, _ := tb.Begin(context.Background())
	if _, err := tx.Commit(context.Background(), CommitOptions{ExpectedParent: Parent(1)}); !errors.Is(err, ErrConflict) {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				got[key] = c.GetValue()
			}
		}
	}
	want := map[string]float64{
		"tagpipe_warehouse_commits_total,operation=append,table=ods_events": 1,
		"tagpipe_warehouse_commits_total,operation=create,table=ods_events": 1,
		"tagpipe_warehouse_rows_added_total,table=ods_events":               30,
		"tagpipe_warehouse_files_added_total,table=ods_events":              3,
		"tagpipe_warehouse_commit_conflicts_total,table=ods_events":         1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// Open removes staging directories a dead job left behind, after a day.
func TestStaleStagingRemoved(t *testing.T) {
	root := t.TempDir()
	w := openTest(t, root)
	old, err := w.StagingDir("job")
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := w.StagingDir("job")
	if err := os.WriteFile(filepath.Join(old, "x.parquet"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-25 * time.Hour)
	if err := os.Chtimes(old, past, past); err != nil {
		t.Fatal(err)
	}
	openTest(t, root)
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("stale staging dir kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("fresh staging dir removed: %v", err)
	}
}
