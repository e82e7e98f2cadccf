package duckbridge

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/tagpipe/tagpipe/warehouse"
)

func openDuck(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

func openWarehouse(t *testing.T) *warehouse.Warehouse {
	t.Helper()
	w, err := warehouse.Open(t.TempDir(), warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func allTypesSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		warehouse.RequiredField("id", arrow.PrimitiveTypes.Int64, "row id"),
		warehouse.Field("s", arrow.BinaryTypes.String, "string"),
		warehouse.Field("f", arrow.PrimitiveTypes.Float64, "float64"),
		warehouse.Field("b", arrow.FixedWidthTypes.Boolean, "bool"),
		warehouse.Field("ts", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, "timestamp"),
		warehouse.Field("d", arrow.FixedWidthTypes.Date32, "date"),
		warehouse.Field("tags", arrow.ListOf(arrow.BinaryTypes.String), "list<string>"),
		warehouse.Field("props", arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String), "map<string,string>"),
		warehouse.RequiredField("dt", arrow.FixedWidthTypes.Date32, "partition"),
	}, nil)
}

type typedRow struct {
	id    int64
	s     *string
	f     *float64
	b     *bool
	ts    *time.Time
	d     *time.Time
	tags  []string // nil = NULL
	props map[string]string
	dt    time.Time
}

var t0 = time.Date(2024, 5, 1, 12, 30, 45, 123456000, time.UTC)

func ptr[T any](v T) *T { return &v }

func sampleRows() []typedRow {
	var rows []typedRow
	for i := range 20 {
		r := typedRow{id: int64(i), dt: time.Date(2024, 5, 1+i%3, 0, 0, 0, 0, time.UTC)}
		if i%4 != 3 { // every 4th row: nulls everywhere nullable
			r.s = ptr(fmt.Sprintf("str-%d ünï'\"", i))
			r.f = ptr(float64(i)*1.5 - 3)
			r.b = ptr(i%2 == 0)
			r.ts = ptr(t0.Add(time.Duration(i) * time.Hour))
			r.d = ptr(time.Date(2000+i, 2, 29-i%2, 0, 0, 0, 0, time.UTC))
			r.tags = []string{}
			for j := range i % 3 {
				r.tags = append(r.tags, fmt.Sprintf("t%d", j))
			}
			r.props = map[string]string{}
			for j := range i % 4 {
				r.props[fmt.Sprintf("k%d", j)] = fmt.Sprintf("v%d", i*j)
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func buildRecord(rows []typedRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, allTypesSchema())
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(r.id)
		if r.s == nil {
			for i := 1; i <= 7; i++ {
				b.Field(i).AppendNull()
			}
		} else {
			b.Field(1).(*array.StringBuilder).Append(*r.s)
			b.Field(2).(*array.Float64Builder).Append(*r.f)
			b.Field(3).(*array.BooleanBuilder).Append(*r.b)
			b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(r.ts.UnixMicro()))
			b.Field(5).(*array.Date32Builder).Append(arrow.Date32FromTime(*r.d))
			lb := b.Field(6).(*array.ListBuilder)
			lb.Append(true)
			for _, s := range r.tags {
				lb.ValueBuilder().(*array.StringBuilder).Append(s)
			}
			mb := b.Field(7).(*array.MapBuilder)
			mb.Append(true)
			keys := make([]string, 0, len(r.props))
			for k := range r.props {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				mb.KeyBuilder().(*array.StringBuilder).Append(k)
				mb.ItemBuilder().(*array.StringBuilder).Append(r.props[k])
			}
		}
		b.Field(8).(*array.Date32Builder).Append(arrow.Date32FromTime(r.dt))
	}
	return b.NewRecordBatch()
}

func createAllTypes(t *testing.T, w *warehouse.Warehouse, rows []typedRow) *warehouse.Table {
	t.Helper()
	ctx := context.Background()
	tb, err := w.CreateTable(ctx, warehouse.TableSpec{Name: "dim_types", Schema: allTypesSchema(), PartitionKeys: []string{"dt"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := buildRecord(rows)
	defer rec.Release()
	tx, err := tb.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Write(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx, warehouse.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	return tb
}

// readTyped reads query's rows (the all-types columns, in order) into typedRows.
func readTyped(t *testing.T, db *sql.DB, query string) []typedRow {
	t.Helper()
	rs, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rs.Close()
	var out []typedRow
	for rs.Next() {
		var r typedRow
		var s sql.NullString
		var f sql.NullFloat64
		var b sql.NullBool
		var ts, d sql.NullTime
		var tags, props any
		if err := rs.Scan(&r.id, &s, &f, &b, &ts, &d, &tags, &props, &r.dt); err != nil {
			t.Fatal(err)
		}
		if s.Valid {
			r.s = &s.String
		}
		if f.Valid {
			r.f = &f.Float64
		}
		if b.Valid {
			r.b = &b.Bool
		}
		if ts.Valid {
			r.ts = ptr(ts.Time.UTC())
		}
		if d.Valid {
			r.d = ptr(d.Time.UTC())
		}
		if tags != nil {
			r.tags = []string{}
			for _, v := range tags.([]any) {
				r.tags = append(r.tags, v.(string))
			}
		}
		if props != nil {
			r.props = map[string]string{}
			om := props.(duckdb.OrderedMap)
			vals := om.Values()
			for i, k := range om.Keys() {
				r.props[k.(string)] = vals[i].(string)
			}
		}
		r.dt = r.dt.UTC()
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func diffRows(t *testing.T, got, want []typedRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("row %d:\n got %s\nwant %s", i, show(got[i]), show(want[i]))
		}
	}
}

func show(r typedRow) string {
	p := func(v any) string {
		rv := reflect.ValueOf(v)
		if rv.IsNil() {
			return "NULL"
		}
		return fmt.Sprint(rv.Elem().Interface())
	}
	return fmt.Sprintf("{%d %s %s %s %s %s %v %v %s}", r.id, p(r.s), p(r.f), p(r.b), p(r.ts), p(r.d), r.tags, r.props, r.dt)
}

const typedCols = "id, s, f, b, ts, d, tags, props, dt"

// Acceptance: every column type round-trips through Parquet and back through DuckDB.
func TestRoundTripAllTypesThroughDuckDB(t *testing.T) {
	w := openWarehouse(t)
	rows := sampleRows()
	createAllTypes(t, w, rows)
	db := openDuck(t)
	names, err := Register(context.Background(), db, w)
	if err != nil || len(names) != 1 || names[0] != "dim_types" {
		t.Fatalf("register: %v %v", names, err)
	}
	got := readTyped(t, db, "SELECT "+typedCols+" FROM dim_types ORDER BY id")
	diffRows(t, got, rows)

	// The view's column types are the schema's.
	var typ string
	wantTypes := map[string]string{"id": "BIGINT", "s": "VARCHAR", "f": "DOUBLE", "b": "BOOLEAN", "ts": "TIMESTAMP WITH TIME ZONE",
		"d": "DATE", "tags": "VARCHAR[]", "props": "MAP(VARCHAR, VARCHAR)", "dt": "DATE"}
	for col, want := range wantTypes {
		if err := db.QueryRow("SELECT typeof(" + col + ") FROM dim_types LIMIT 1").Scan(&typ); err != nil {
			t.Fatal(err)
		}
		if typ != want {
			t.Errorf("column %s: DuckDB type %s, want %s", col, typ, want)
		}
	}
}

// Acceptance: DuckDB reads the table directory directly with a glob (standard
// Hive layout), with the same rows.
func TestDuckDBReadsDirectoryGlob(t *testing.T) {
	w := openWarehouse(t)
	rows := sampleRows()
	tb := createAllTypes(t, w, rows)
	db := openDuck(t)
	q := fmt.Sprintf("SELECT %s FROM read_parquet(%s, hive_partitioning = true) ORDER BY id",
		typedCols, Literal(filepath.Join(tb.Dir(), "**", "*.parquet")))
	diffRows(t, readTyped(t, db, q), rows)
}

// After compaction and an overwrite, a directory glob still sees exactly the
// current snapshot (replaced files leave the globbed names at commit).
func TestGlobMatchesCurrentAfterMaintenance(t *testing.T) {
	ctx := context.Background()
	w := openWarehouse(t)
	tb := createAllTypes(t, w, sampleRows())
	for range 3 {
		tx, _ := tb.Begin(ctx)
		rec := buildRecord(sampleRows())
		if err := tx.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if _, err := tx.Commit(ctx, warehouse.CommitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tb.Compact(ctx, warehouse.CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	tx, _ := tb.Begin(ctx)
	rec := buildRecord(sampleRows()[:3])
	if err := tx.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	if _, err := tx.Commit(ctx, warehouse.CommitOptions{Operation: warehouse.OpOverwritePartitions}); err != nil {
		t.Fatal(err)
	}
	db := openDuck(t)
	if _, err := Register(ctx, db, w); err != nil {
		t.Fatal(err)
	}
	var viewRows, globRows, viewSum, globSum int64
	glob := Literal(filepath.Join(tb.Dir(), "**", "*.parquet"))
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM dim_types), (SELECT count(*) FROM read_parquet(`+glob+`, hive_partitioning = true)),
		(SELECT sum(hash(id, s, dt) % 1000003) FROM dim_types), (SELECT sum(hash(id, s, dt) % 1000003) FROM read_parquet(`+glob+`, hive_partitioning = true))`).Scan(&viewRows, &globRows, &viewSum, &globSum); err != nil {
		t.Fatal(err)
	}
	// 80 rows over 3 days; the overwrite replaced days 1-3 with rows 0-2 (one per day).
	if viewRows != 3 || globRows != viewRows || globSum != viewSum {
		t.Fatalf("view %d rows, glob %d rows (sums %d %d)", viewRows, globRows, viewSum, globSum)
	}
}

// The same rows read back through arrow-go (Snapshot.Scan) equal what was written.
func TestRoundTripAllTypesThroughArrow(t *testing.T) {
	w := openWarehouse(t)
	rows := sampleRows()
	tb := createAllTypes(t, w, rows)
	s, err := tb.Current()
	if err != nil {
		t.Fatal(err)
	}
	var got []typedRow
	err = s.Scan(context.Background(), func(f warehouse.DataFile, rec arrow.RecordBatch) error {
		dt, _ := time.Parse(time.DateOnly, f.Partition[0].Value)
		c := rec.Columns()
		for i := range int(rec.NumRows()) {
			r := typedRow{id: c[0].(*array.Int64).Value(i), dt: dt}
			if !c[1].IsNull(i) {
				r.s = ptr(c[1].(*array.String).Value(i))
				r.f = ptr(c[2].(*array.Float64).Value(i))
				r.b = ptr(c[3].(*array.Boolean).Value(i))
				r.ts = ptr(c[4].(*array.Timestamp).Value(i).ToTime(arrow.Microsecond).UTC())
				r.d = ptr(c[5].(*array.Date32).Value(i).ToTime().UTC())
				l := c[6].(*array.List)
				start, end := l.ValueOffsets(i)
				r.tags = []string{}
				for j := start; j < end; j++ {
					r.tags = append(r.tags, l.ListValues().(*array.String).Value(int(j)))
				}
				m := c[7].(*array.Map)
				start, end = m.ValueOffsets(i)
				r.props = map[string]string{}
				for j := start; j < end; j++ {
					r.props[m.Keys().(*array.String).Value(int(j))] = m.Items().(*array.String).Value(int(j))
				}
			}
			got = append(got, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].id < got[j].id })
	diffRows(t, got, rows)
}
