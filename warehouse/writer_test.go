package warehouse

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
)

// TestDictionaryOnlyForRepeatingColumns: a file keeps dictionaries for columns whose
// values repeat (action, item, value) and writes mostly-distinct columns (user ids
// here) plain, and every row reads back the same.
func TestDictionaryOnlyForRepeatingColumns(t *testing.T) {
	const n = 20000
	b := array.NewRecordBuilder(memory.DefaultAllocator, eventsSchema())
	for i := range n {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("u%d", i))
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("i%d", i%97))
		b.Field(2).(*array.StringBuilder).Append([]string{"view", "click", "buy"}[i%3])
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(day0.Add(time.Duration(i) * time.Second).UnixMicro()))
		b.Field(4).(*array.Float64Builder).Append(float64(i%10) / 2)
		b.Field(5).(*array.Date32Builder).Append(arrow.Date32FromTime(day0))
	}
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()

	w := openTest(t, t.TempDir())
	tb := createEvents(t, w, "ods_events")
	snap := appendRec(t, tb, rec, CommitOptions{})
	if len(snap.Files) != 1 {
		t.Fatalf("files %d, want 1", len(snap.Files))
	}
	r, err := file.OpenParquetFile(snap.AbsPath(snap.Files[0]), false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want := map[string]bool{"user_id": false, "item_id": true, "action": true, "event_time": false, "value": true}
	rg := r.MetaData().RowGroup(0)
	for i := range rg.NumColumns() {
		cc, err := rg.ColumnChunk(i)
		if err != nil {
			t.Fatal(err)
		}
		name := cc.PathInSchema().String()
		if got := cc.HasDictionaryPage(); got != want[name] {
			t.Errorf("column %s: dictionary page %v, want %v (encodings %v)", name, got, want[name], cc.Encodings())
		}
	}
	rows := rowsOf(t, snap)
	if len(rows) != n {
		t.Fatalf("read back %d rows, want %d", len(rows), n)
	}
	if rows[0] != "dt=2024-05-01|u0|i0|view|2024-05-01T00:00:00Z|0" {
		t.Fatalf("first row %q", rows[0])
	}
}

// TestHighCardinality: the sampling rule on its own.
func TestHighCardinality(t *testing.T) {
	mk := func(n int, v func(int) string) arrow.Array {
		sb := array.NewStringBuilder(memory.DefaultAllocator)
		defer sb.Release()
		for i := range n {
			sb.Append(v(i))
		}
		return sb.NewArray()
	}
	for _, tc := range []struct {
		name string
		a    arrow.Array
		want bool
	}{
		{"distinct", mk(10000, func(i int) string { return fmt.Sprint(i) }), true},
		{"few", mk(10000, func(i int) string { return fmt.Sprint(i % 50) }), false},
		{"small record", mk(100, func(i int) string { return fmt.Sprint(i) }), false},
	} {
		if got := highCardinality(tc.a); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		tc.a.Release()
	}
}

// TestMaxOpenFiles: a record over many partitions keeps at most MaxOpenFiles files
// open; every partition still gets its rows, each file is fsynced and committed.
func TestMaxOpenFiles(t *testing.T) {
	o := DefaultOptions()
	o.MaxOpenFiles = 4
	w, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tb := createEvents(t, w, "dwd_events")
	rec := events(400, 40, 0) // row i on day i%40: every partition comes back 10 times
	defer rec.Release()
	tx, err := tb.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	if err := tx.Write(rec); err != nil {
		t.Fatal(err)
	}
	if len(tx.writers) > 4 {
		t.Fatalf("%d files open, want <= 4", len(tx.writers))
	}
	if err := tx.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, s := range tx.staged {
		if !s.synced {
			t.Fatalf("file %s not synced after Flush", s.src)
		}
	}
	snap, err := tx.Commit(context.Background(), CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	parts := map[string]bool{}
	for _, f := range snap.Files {
		parts[f.Partition.Path()] = true
	}
	if len(parts) != 40 || snap.Rows() != 400 {
		t.Fatalf("%d partitions, %d rows; want 40, 400", len(parts), snap.Rows())
	}
	if got, want := rowsOf(t, snap), rowsOf(t, appendRec(t, createEvents(t, openTest(t, t.TempDir()), "dwd_events"), rec, CommitOptions{})); !slices.Equal(got, want) {
		t.Fatal("rows differ from a write with the default MaxOpenFiles")
	}
}

// TestDictionaryRecordColumns: a record whose string column is an Arrow dictionary
// (the streaming pipeline's repeating columns) is written with a dictionary page,
// statistics and the table's string type in the stored Arrow schema, over row groups
// of at most RowGroupRows, and reads back the same as its plain twin; a plain record
// written to the same file afterwards starts a row group of its own.
func TestDictionaryRecordColumns(t *testing.T) {
	const n = 2500
	actions := []string{"view", "click", "buy"}
	mk := func(dict bool) arrow.RecordBatch {
		b := array.NewRecordBuilder(memory.DefaultAllocator, eventsSchema())
		defer b.Release()
		for i := range n {
			b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("u%d", i))
			b.Field(1).(*array.StringBuilder).AppendNull()
			if i%7 == 0 {
				b.Field(2).(*array.StringBuilder).AppendNull()
			} else {
				b.Field(2).(*array.StringBuilder).Append(actions[i%3])
			}
			b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(day0.Add(time.Duration(i) * time.Second).UnixMicro()))
			b.Field(4).(*array.Float64Builder).AppendNull()
			b.Field(5).(*array.Date32Builder).Append(arrow.Date32FromTime(day0))
		}
		rec := b.NewRecordBatch()
		if !dict {
			return rec
		}
		defer rec.Release()
		// action as dictionary<int32, string>: indices into actions, nulls kept.
		db := array.NewDictionaryBuilder(memory.DefaultAllocator, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
		defer db.Release()
		src := rec.Column(2).(*array.String)
		for i := range n {
			if src.IsNull(i) {
				db.AppendNull()
			} else if err := db.AppendString(src.Value(i)); err != nil {
				t.Fatal(err)
			}
		}
		da := db.NewArray()
		defer da.Release()
		fs := rec.Schema().Fields()
		fs[2].Type = da.DataType()
		cols := slices.Clone(rec.Columns())
		cols[2] = da
		return array.NewRecordBatch(arrow.NewSchema(fs, nil), cols, n)
	}
	o := DefaultOptions()
	o.RowGroupRows = 1000
	w, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	plainT, dictT := createEvents(t, w, "ods_plain"), createEvents(t, w, "ods_dict")
	plain, dict := mk(false), mk(true)
	defer plain.Release()
	defer dict.Release()
	ps := appendRec(t, plainT, plain, CommitOptions{})
	ctx := context.Background()
	tx, err := dictT.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	for _, r := range []arrow.RecordBatch{dict, plain} {
		if err := tx.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := tx.Commit(ctx, CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Files) != 1 {
		t.Fatalf("files %d, want 1", len(ds.Files))
	}
	want := rowsOf(t, ps)
	want = append(want, want...)
	slices.Sort(want)
	got := rowsOf(t, ds)
	if len(got) != len(want) {
		t.Fatalf("dictionary record read back %d rows, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("row %d reads back %q, want %q", i, got[i], want[i])
		}
	}
	r, err := file.OpenParquetFile(ds.AbsPath(ds.Files[0]), false)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// 3 row groups of the dictionary record (1000, 1000, 500), then 3 of the plain one.
	if g := r.NumRowGroups(); g != 6 {
		t.Fatalf("row groups %d, want 6", g)
	}
	for g := range r.NumRowGroups() {
		rg := r.MetaData().RowGroup(g)
		cc, err := rg.ColumnChunk(2)
		if err != nil {
			t.Fatal(err)
		}
		st, err := cc.Statistics()
		if err != nil || st == nil || !st.HasMinMax() {
			t.Errorf("row group %d: action has no min/max statistics (%v)", g, err)
		}
		if !cc.HasDictionaryPage() {
			t.Errorf("row group %d: action has no dictionary page (encodings %v)", g, cc.Encodings())
		}
	}
	sc, _, err := parquetInfo(ds.AbsPath(ds.Files[0]))
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := sc.FieldsByName("action"); len(f) != 1 || !arrow.TypeEqual(f[0].Type, arrow.BinaryTypes.String) {
		t.Fatalf("stored Arrow schema: action is %v, want string", f)
	}
}

// TestDictionaryPartitionColumn: a partition key may come as an Arrow dictionary of
// its values (one string per day instead of one per row); rows land in the partition
// their index names, however they interleave, and an index repeated in the
// dictionary (same value twice) still makes one partition.
func TestDictionaryPartitionColumn(t *testing.T) {
	w := openTest(t, t.TempDir())
	schema := arrow.NewSchema([]arrow.Field{
		RequiredField("dt", arrow.BinaryTypes.String, "day"),
		RequiredField("user", arrow.BinaryTypes.String, "user"),
	}, nil)
	tb, err := w.CreateTable(context.Background(), TableSpec{Name: "dwd_dict_dt", Schema: schema, PartitionKeys: []string{"dt"}})
	if err != nil {
		t.Fatal(err)
	}
	dict, _, err := array.FromJSON(memory.DefaultAllocator, arrow.BinaryTypes.String, strings.NewReader(`["2024-05-01", "2024-05-02", "2024-05-01"]`))
	if err != nil {
		t.Fatal(err)
	}
	defer dict.Release()
	idx, _, err := array.FromJSON(memory.DefaultAllocator, arrow.PrimitiveTypes.Int32, strings.NewReader(`[0, 0, 1, 2, 1, 0]`))
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Release()
	dtType := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	dt := array.NewDictionaryArray(dtType, idx, dict)
	defer dt.Release()
	users, _, err := array.FromJSON(memory.DefaultAllocator, arrow.BinaryTypes.String, strings.NewReader(`["a", "b", "c", "d", "e", "f"]`))
	if err != nil {
		t.Fatal(err)
	}
	defer users.Release()
	rs := arrow.NewSchema([]arrow.Field{{Name: "dt", Type: dtType}, {Name: "user", Type: arrow.BinaryTypes.String}}, nil)
	rec := array.NewRecordBatch(rs, []arrow.Array{dt, users}, 6)
	defer rec.Release()
	s := appendRec(t, tb, rec, CommitOptions{})
	want := []string{"dt=2024-05-01|a", "dt=2024-05-01|b", "dt=2024-05-01|d", "dt=2024-05-01|f", "dt=2024-05-02|c", "dt=2024-05-02|e"}
	if got := rowsOf(t, s); !slices.Equal(got, want) {
		t.Fatalf("rows %q, want %q", got, want)
	}
	if len(s.Files) != 2 {
		t.Fatalf("%d files, want one per day", len(s.Files))
	}
}

// TestWriteChunks: chunks written with WriteChunks land as Write puts their
// concatenation: the same rows in the same partitions and files, row groups of
// RowGroupRows spanning chunks, a dictionary shared by the chunks kept as the column
// chunk's dictionary (with its statistics); a chunk of another schema is refused
// and nothing of the call is written.
func TestWriteChunks(t *testing.T) {
	const n = 3000
	dict := array.NewStringBuilder(memory.DefaultAllocator)
	dict.AppendValues([]string{"view", "click", "buy", "never"}, nil)
	actions := dict.NewArray()
	dict.Release()
	defer actions.Release()
	src := events(n, 2, 7)
	defer src.Release()
	// src with action as indices into actions (rows with i%11 == 0 null).
	idx := make([]int32, n)
	valid := make([]bool, n)
	for i := range n {
		idx[i] = int32((7 + i) % 3)
		valid[i] = i%11 != 0
	}
	ib := array.NewInt32Builder(memory.DefaultAllocator)
	ib.AppendValues(idx, valid)
	ia := ib.NewArray()
	ib.Release()
	defer ia.Release()
	da := array.NewDictionaryArray(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, ia, actions)
	defer da.Release()
	fs := src.Schema().Fields()
	fs[2].Type = da.DataType()
	cols := slices.Clone(src.Columns())
	cols[2] = da
	whole := array.NewRecordBatch(arrow.NewSchema(fs, nil), cols, n)
	defer whole.Release()
	var chunks []arrow.RecordBatch
	for _, cut := range [][2]int64{{0, 700}, {700, 701}, {701, 2100}, {2100, n}} {
		c := whole.NewSlice(cut[0], cut[1])
		defer c.Release()
		chunks = append(chunks, c)
	}

	o := DefaultOptions()
	o.RowGroupRows = 1000
	w, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	write := func(tb *Table, f func(tx *Tx) error) *Snapshot {
		tx, err := tb.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Abort()
		if err := f(tx); err != nil {
			t.Fatal(err)
		}
		s, err := tx.Commit(ctx, CommitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	oneT, chunkT := createEvents(t, w, "ods_one"), createEvents(t, w, "ods_chunks")
	one := write(oneT, func(tx *Tx) error { return tx.Write(whole) })
	got := write(chunkT, func(tx *Tx) error { return tx.WriteChunks(chunks) })
	if !slices.Equal(rowsOf(t, got), rowsOf(t, one)) {
		t.Fatal("chunks read back other rows than their concatenation")
	}
	if len(got.Files) != 2 || len(one.Files) != 2 {
		t.Fatalf("files %d (chunks), %d (one record), want 2 (one a day)", len(got.Files), len(one.Files))
	}
	for _, f := range got.Files {
		r, err := file.OpenParquetFile(got.AbsPath(f), false)
		if err != nil {
			t.Fatal(err)
		}
		// 1500 rows a day: row groups of 1000 and 500 across the chunks.
		if g := r.NumRowGroups(); g != 2 {
			t.Errorf("%s: row groups %d, want 2", f.Path, g)
		}
		for g := range r.NumRowGroups() {
			cc, err := r.MetaData().RowGroup(g).ColumnChunk(2)
			if err != nil {
				t.Fatal(err)
			}
			st, err := cc.Statistics()
			if err != nil || st == nil || !st.HasMinMax() || !cc.HasDictionaryPage() {
				t.Errorf("%s row group %d: action has no dictionary page or no min/max (%v)", f.Path, g, err)
			}
			if st != nil && st.HasMinMax() {
				if mx := string(st.EncodeMax()); mx != "view" {
					t.Errorf("%s row group %d: action max %q, want view (never is not referenced)", f.Path, g, mx)
				}
			}
		}
		r.Close()
	}

	tx, err := chunkT.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	if err := tx.WriteChunks([]arrow.RecordBatch{chunks[0], src}); err == nil {
		t.Fatal("chunks of two schemas were written")
	}
	s, err := tx.Commit(ctx, CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != len(got.Files) {
		t.Fatalf("a refused WriteChunks left files: %d, want %d", len(s.Files), len(got.Files))
	}
}
