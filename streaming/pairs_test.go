package streaming

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestPairOps: GroupByKey, CoGroup, the four joins, Count and CountByValue on one batch,
// golden: keys in first-seen order (left, then right-only keys), values in arrival
// order, every left × right pair of a key, unmatched sides kept only by the outer joins
// with their Has flag false; an empty batch gives nothing, and Count 0.
func TestPairOps(t *testing.T) {
	j := NewJob("pairs", time.Second)
	in := Input(j)
	// Records with key "L" are clicks (user, item), "R" purchases (user, amount).
	clicks := Map(Filter(in, func(r Record) bool { return string(r.Key) == "L" }),
		func(r Record) KV[string, string] { u, item := split2(r.Value); return KV[string, string]{u, item} })
	buys := Map(Filter(in, func(r Record) bool { return string(r.Key) == "R" }),
		func(r Record) KV[string, string] { u, amount := split2(r.Value); return KV[string, string]{u, amount} })
	got := map[string]string{}
	collect := func(name string, render func() []string) {
		ForeachBatch(in, name, func(context.Context, BatchInfo, []Record) error {
			got[name] = fmt.Sprint(render())
			return nil
		})
	}
	grouped, co := GroupByKey(clicks), CoGroup(clicks, buys)
	joins := map[string]*Stream[KV[string, Joined[string, string]]]{
		"join": Join(clicks, buys), "left": LeftOuterJoin(clicks, buys),
		"right": RightOuterJoin(clicks, buys), "full": FullOuterJoin(clicks, buys),
	}
	count, byValue := Count(in), CountByValue(Map(clicks, func(kv KV[string, string]) string { return kv.Val }))
	collect("group", func() []string {
		var out []string
		for _, kv := range grouped.items() {
			out = append(out, fmt.Sprintf("%s=%v", kv.Key, kv.Val))
		}
		return out
	})
	collect("cogroup", func() []string {
		var out []string
		for _, kv := range co.items() {
			out = append(out, fmt.Sprintf("%s=%v|%v", kv.Key, kv.Val.Left, kv.Val.Right))
		}
		return out
	})
	for name, s := range joins {
		collect(name, func() []string {
			var out []string
			for _, kv := range s.items() {
				l, r := kv.Val.Left, kv.Val.Right
				if !kv.Val.HasLeft {
					l = "-"
				}
				if !kv.Val.HasRight {
					r = "-"
				}
				out = append(out, kv.Key+":"+l+"/"+r)
			}
			return out
		})
	}
	collect("count", func() []string { return []string{fmt.Sprint(count.items())} })
	collect("byValue", func() []string {
		var out []string
		for _, kv := range byValue.items() {
			out = append(out, fmt.Sprintf("%s=%d", kv.Key, kv.Val))
		}
		return out
	})

	var rs []Record
	for _, e := range []string{"L u1 i1", "R u2 9", "L u2 i2", "L u1 i3", "R u1 5", "R u3 7", "L u4 i1", "R u1 6"} {
		rs = append(rs, Record{Key: []byte(e[:1]), Value: []byte(e[2:])})
	}
	if err := j.RunBatch(context.Background(), BatchInfo{ID: 0, Time: time.Unix(1, 0)}, rs); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"group":   "[u1=[i1 i3] u2=[i2] u4=[i1]]",
		"cogroup": "[u1=[i1 i3]|[5 6] u2=[i2]|[9] u4=[i1]|[] u3=[]|[7]]",
		"join":    "[u1:i1/5 u1:i1/6 u1:i3/5 u1:i3/6 u2:i2/9]",
		"left":    "[u1:i1/5 u1:i1/6 u1:i3/5 u1:i3/6 u2:i2/9 u4:i1/-]",
		"right":   "[u1:i1/5 u1:i1/6 u1:i3/5 u1:i3/6 u2:i2/9 u3:-/7]",
		"full":    "[u1:i1/5 u1:i1/6 u1:i3/5 u1:i3/6 u2:i2/9 u4:i1/- u3:-/7]",
		"count":   "[[8]]",
		"byValue": "[i1=2 i2=1 i3=1]",
	}
	if !reflect.DeepEqual(got, want) {
		for k := range want {
			if got[k] != want[k] {
				t.Errorf("%s: %s, want %s", k, got[k], want[k])
			}
		}
	}
	if err := j.RunBatch(context.Background(), BatchInfo{ID: 1, Time: time.Unix(2, 0)}, nil); err != nil {
		t.Fatal(err)
	}
	for k, v := range got {
		if w := map[string]string{"count": "[[0]]"}[k]; w == "" && v != "[]" || w != "" && v != w {
			t.Errorf("empty batch: %s: %s", k, v)
		}
	}
}

// TestWindowedJoin: a join of two windowed streams is Spark's windowed join — on each
// slide, every pair of the last length of batches — and nothing between slides.
func TestWindowedJoin(t *testing.T) {
	j := NewJob("wjoin", time.Second)
	in := Input(j)
	side := func(key string) *Stream[KV[string, string]] {
		return Map(Filter(in, func(r Record) bool { return string(r.Key) == key }),
			func(r Record) KV[string, string] { u, v := split2(r.Value); return KV[string, string]{u, v} })
	}
	joined := Join(Window(side("L"), 2*time.Second, 2*time.Second), Window(side("R"), 2*time.Second, 2*time.Second))
	var got []string
	ForeachBatch(joined, "out", func(_ context.Context, b BatchInfo, kvs []KV[string, Joined[string, string]]) error {
		for _, kv := range kvs {
			got = append(got, fmt.Sprintf("t%d %s:%s/%s", b.Time.Unix(), kv.Key, kv.Val.Left, kv.Val.Right))
		}
		return nil
	})
	batches := [][]string{{"L u1 a"}, {"R u1 x"}, {"R u1 y"}, {"L u1 b", "L u2 c"}}
	for i, b := range batches {
		var rs []Record
		for _, e := range b {
			rs = append(rs, Record{Key: []byte(e[:1]), Value: []byte(e[2:])})
		}
		if err := j.RunBatch(context.Background(), BatchInfo{ID: int64(i), Time: time.Unix(int64(i+1), 0)}, rs); err != nil {
			t.Fatal(err)
		}
	}
	// Slides at t2 (batches t1, t2) and t4 (t3, t4).
	want := []string{"t2 u1:a/x", "t4 u1:b/y"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("windowed join: %v, want %v", got, want)
	}
}

func split2(b []byte) (string, string) {
	for i, c := range b {
		if c == ' ' {
			return string(b[:i]), string(b[i+1:])
		}
	}
	return string(b), ""
}
