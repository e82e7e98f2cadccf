package streaming

import (
	"context"
	"slices"
	"testing"
)

// TestFilterUnion: Filter keeps exactly the passing elements in order whether all,
// some, a prefix or none pass; Union concatenates in stream order, with one or no
// stream carrying elements too.
func TestFilterUnion(t *testing.T) {
	j := NewJob("filter", 1)
	nums := Map(Input(j), func(r Record) int { return int(r.Offset) })
	got := map[string][]int{}
	collect := func(name string, s *Stream[int]) {
		ForeachBatch(s, name, func(_ context.Context, _ BatchInfo, v []int) error {
			got[name] = append([]int(nil), v...)
			return nil
		})
	}
	all := Filter(nums, func(int) bool { return true })
	none := Filter(nums, func(int) bool { return false })
	even := Filter(nums, func(n int) bool { return n%2 == 0 })
	small := Filter(nums, func(n int) bool { return n < 3 })
	late := Filter(nums, func(n int) bool { return n >= 3 })
	collect("all", all)
	collect("none", none)
	collect("even", even)
	collect("small", small)
	collect("late", late)
	collect("union", Union(small, none, late))
	collect("unionOne", Union(none, even, none))
	collect("unionNone", Union(none, none))
	var rs []Record
	for i := range 6 {
		rs = append(rs, Record{Offset: int64(i)})
	}
	if err := j.RunBatch(context.Background(), BatchInfo{ID: 0}, rs); err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{
		"all": {0, 1, 2, 3, 4, 5}, "none": nil, "even": {0, 2, 4}, "small": {0, 1, 2}, "late": {3, 4, 5},
		"union": {0, 1, 2, 3, 4, 5}, "unionOne": {0, 2, 4}, "unionNone": nil,
	}
	for name, w := range want {
		if !slices.Equal(got[name], w) {
			t.Errorf("%s: %v, want %v", name, got[name], w)
		}
	}
}
