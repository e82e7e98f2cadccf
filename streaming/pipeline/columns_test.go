package pipeline

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
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
