package pipeline

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"

	"github.com/tagpipe/tagpipe/streaming"
	"github.com/tagpipe/tagpipe/warehouse"
)

// TestColumns: the slice-backed columns give the same arrays Arrow's builders would:
// values, nulls, invalid UTF-8 replaced, booleans past a byte.
func TestColumns(t *testing.T) {
	s := newStrCol(1, 0) // grows past its estimate
	s.add("a")
	s.null()
	s.opt("")
	s.addText([]byte{'x', 0xff, 'y'})
	s.opt("bc")
	sa, err := s.array()
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Release()
	got := sa.(*array.String)
	want := []string{"a", "", "", "x\uFFFDy", "bc"}
	valid := []bool{true, false, false, true, true}
	if got.Len() != 5 || got.NullN() != 2 {
		t.Fatalf("len %d nulls %d", got.Len(), got.NullN())
	}
	for i := range want {
		if got.IsValid(i) != valid[i] || (valid[i] && got.Value(i) != want[i]) {
			t.Errorf("row %d: %q valid %v, want %q valid %v", i, got.Value(i), got.IsValid(i), want[i], valid[i])
		}
	}

	// A dictionary column reads as its values; all null, it is a plain null column.
	d := newDictCol(4)
	for _, v := range []string{"x", "", "y", "x"} {
		d.opt(v)
	}
	da, err := d.array()
	if err != nil {
		t.Fatal(err)
	}
	defer da.Release()
	if dv := da.(*array.Dictionary); dv.Len() != 4 || dv.NullN() != 1 || dv.ValueStr(0) != "x" || dv.ValueStr(2) != "y" || dv.ValueStr(3) != "x" {
		t.Errorf("dictionary column %v", dv)
	}
	dn := newDictCol(3)
	for range 3 {
		dn.opt("")
	}
	na, err := dn.array()
	if err != nil {
		t.Fatal(err)
	}
	defer na.Release()
	if na.DataType().ID() != arrow.STRING || na.Len() != 3 || na.NullN() != 3 {
		t.Errorf("all-null dictionary column: %s of %d rows, %d null", na.DataType(), na.Len(), na.NullN())
	}

	ts := newTSCol(0)
	ts.opt(time.Time{})
	ts.opt(time.UnixMicro(42))
	ta := ts.array(tsType).(*array.Timestamp)
	defer ta.Release()
	if !ta.IsNull(0) || ta.Value(1) != 42 || ta.NullN() != 1 {
		t.Errorf("timestamps %v", ta)
	}

	b := newBoolCol(3)
	for i := range 11 {
		b.add(i%3 == 0)
	}
	ba := b.array().(*array.Boolean)
	defer ba.Release()
	for i := range 11 {
		if ba.Value(i) != (i%3 == 0) {
			t.Errorf("bool %d: %v", i, ba.Value(i))
		}
	}

	rec, err := strRecord(arrow.NewSchema([]arrow.Field{{Name: "s", Type: str, Nullable: true}, {Name: "n", Type: i64}}, nil), 2,
		[]any{func() *strCol { c := newStrCol(2, 1); c.add("p"); c.null(); return c }(), func() *fixedCol[int64] { c := newFixedCol[int64](2); c.add(1); c.add(2); return c }()})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if rec.NumRows() != 2 || rec.Column(1).(*array.Int64).Value(1) != 2 || !rec.Column(0).IsNull(1) {
		t.Errorf("record %v", rec)
	}
}

// TestBigBatchParsedOnEveryCore: a batch big enough to be parsed by several workers
// lands whole and in order in ods_events and dwd_events.
func TestBigBatchParsedOnEveryCore(t *testing.T) {
	const n = 3 * minParseChunk
	recs := make([]streaming.Record, n)
	for i := range recs {
		recs[i] = streaming.Record{Topic: "events", Partition: 0, Offset: int64(i), Value: taobaoLine(i), Time: time.Unix(1700000000, 0)}
	}
	recs[n-1].Value = []byte("not,a,taobao,line") // one bad line at the end goes to the DLQ
	wh := openWarehouse(t, t.TempDir())
	po := DefaultOptions()
	po.Warehouse = wh
	ev, err := NewEvents(context.Background(), po)
	if err != nil {
		t.Fatal(err)
	}
	if err := ev.Job.RunBatch(context.Background(), streaming.BatchInfo{ID: 0, Time: time.Unix(1700000000, 0)}, recs); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]int{TableODS: n, TableDWD: n - 1, TableDLQ: 1} {
		tb, err := wh.Table(table)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tb.Current()
		if err != nil {
			t.Fatal(err)
		}
		var offsets []int64
		err = s.Scan(context.Background(), func(_ warehouse.DataFile, rec arrow.RecordBatch) error {
			idx := rec.Schema().FieldIndices("offset")[0]
			offsets = append(offsets, rec.Column(idx).(*array.Int64).Int64Values()...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(offsets) != want {
			t.Fatalf("%s: %d rows, want %d", table, len(offsets), want)
		}
		if table == TableDLQ {
			if offsets[0] != n-1 {
				t.Fatalf("dlq offset %d, want %d", offsets[0], n-1)
			}
			continue
		}
		for i, o := range offsets {
			if o != int64(i) {
				t.Fatalf("%s: row %d has offset %d (order lost)", table, i, o)
			}
		}
	}
}

// TestNullMask: the mask (a prefix count until a null follows a valid row, a bitmap
// after) gives the nulls it was given.
func TestNullMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gen := func() ([]bool, *nullMask) {
		n := rng.IntN(40)
		lead := rng.IntN(n + 1)
		var m nullMask
		nulls := make([]bool, n)
		for i := range n {
			nulls[i] = i < lead || rng.IntN(4) == 0 && rng.IntN(2) == 0
			if nulls[i] {
				m.set(i)
			}
		}
		return nulls, &m
	}
	check := func(name string, want []bool, m *nullMask) {
		t.Helper()
		v := m.validity(len(want))
		count := 0
		for i, null := range want {
			if null {
				count++
			}
			if m.isSet(i) != null || v != nil && bitutil.BitIsSet(v.Bytes(), i) == null {
				t.Fatalf("%s: row %d null %v: isSet %v, validity %v", name, i, null, m.isSet(i), v)
			}
		}
		if m.n != count || (v == nil) != (count == 0) {
			t.Fatalf("%s: %d nulls counted, want %d", name, m.n, count)
		}
	}
	for range 2000 {
		a, ma := gen()
		check("one", a, ma)
		ma.reset()
		check("reset", nil, ma)
	}
}

// TestDictColIndex: values of every length, short ones through the packed table,
// get one index each, in first-seen order, across resets.
func TestDictColIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := newDictCol(0)
	for round := range 3 {
		want := map[string]int32{}
		for range 5000 {
			b := make([]byte, rng.IntN(10))
			for i := range b {
				b[i] = byte(rng.IntN(3)) // few distinct values, zero bytes included
			}
			s := string(b)
			i, ok := want[s]
			if !ok {
				i = int32(len(want))
				want[s] = i
			}
			if got := c.index(s); got != i {
				t.Fatalf("round %d: %q got index %d, want %d", round, s, got, i)
			}
		}
		c.reset()
	}
}
