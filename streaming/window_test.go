package streaming

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// runInts drives a job whose input records carry "i" values, one batch per second.
func recs(vals ...string) []Record {
	out := make([]Record, len(vals))
	for i, v := range vals {
		out[i] = Record{Topic: "t", Offset: int64(i), Value: []byte(v)}
	}
	return out
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(want) != got {
		t.Fatalf("%s differs from golden:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestBatchWindowsGolden(t *testing.T) {
	j := NewJob("w", time.Second)
	vals := Map(Input(j), func(r Record) string { return string(r.Value) })
	var sb strings.Builder
	for _, c := range []struct {
		name          string
		length, slide time.Duration
	}{{"tumbling 3s", 3 * time.Second, 3 * time.Second}, {"sliding 3s/1s", 3 * time.Second, time.Second}, {"sliding 4s/2s", 4 * time.Second, 2 * time.Second}} {
		w := Window(vals, c.length, c.slide)
		ForeachBatch(w, c.name, func(_ context.Context, b BatchInfo, items []string) error {
			if aligned(b.Time, c.slide) {
				fmt.Fprintf(&sb, "%s @%02d: %v\n", c.name, b.Time.Sub(t0)/time.Second, items)
			} else if len(items) > 0 {
				t.Errorf("%s emitted off-slide at %v", c.name, b.Time)
			}
			return nil
		})
	}
	for i := 1; i <= 9; i++ {
		in := []string{fmt.Sprintf("a%d", i)}
		if i%2 == 0 {
			in = append(in, fmt.Sprintf("b%d", i))
		}
		if err := j.RunBatch(context.Background(), BatchInfo{ID: int64(i), Time: at(i)}, recs(in...)); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "batch_windows", sb.String())
}

// TestReduceByKeyAndWindowInverseEqualsRecompute runs both forms side by side on random
// keyed counts, with a checkpoint/restore of the state in the middle.
func TestReduceByKeyAndWindowInverseEqualsRecompute(t *testing.T) {
	build := func() (*Job, map[string]map[string]int64) {
		j := NewJob("rbkw", time.Second)
		kv := Map(Input(j), func(r Record) KV[string, int64] { return KV[string, int64]{string(r.Key), int64(len(r.Value))} })
		spec := WindowSpec[int64]{Length: 10 * time.Second, Slide: 2 * time.Second, Reduce: func(a, b int64) int64 { return a + b }}
		rec := ReduceByKeyAndWindow(kv, spec)
		spec.Inverse = func(a, b int64) int64 { return a - b }
		inv := ReduceByKeyAndWindow(kv, spec)
		got := map[string]map[string]int64{}
		for name, s := range map[string]*Stream[KV[string, int64]]{"recompute": rec, "inverse": inv} {
			ForeachBatch(s, name, func(_ context.Context, b BatchInfo, items []KV[string, int64]) error {
				if !aligned(b.Time, spec.Slide) {
					if len(items) > 0 {
						t.Errorf("%s: emitted off-slide", name)
					}
					return nil
				}
				m := map[string]int64{}
				for _, kv := range items {
					if _, dup := m[kv.Key]; dup {
						t.Errorf("%s: key %q twice", name, kv.Key)
					}
					m[kv.Key] = kv.Val
				}
				got[fmt.Sprintf("%s@%d", name, b.ID)] = m
				return nil
			})
		}
		return j, got
	}
	rng := rand.New(rand.NewPCG(1, 2))
	batches := make([][]Record, 200)
	for i := range batches {
		n := rng.IntN(20) // some batches are empty
		for range n {
			batches[i] = append(batches[i], Record{Key: []byte(fmt.Sprintf("k%d", rng.IntN(12))), Value: make([]byte, 1+rng.IntN(5))})
		}
	}
	j, got := build()
	emitted := 0
	var restored *Job
	var got2 map[string]map[string]int64
	for i, b := range batches {
		info := BatchInfo{ID: int64(i), Time: at(i + 1)}
		if err := j.RunBatch(context.Background(), info, b); err != nil {
			t.Fatal(err)
		}
		if restored != nil {
			if err := restored.RunBatch(context.Background(), info, b); err != nil {
				t.Fatal(err)
			}
		}
		if i == 99 { // checkpoint the state into a fresh job and run it alongside
			restored, got2 = build()
			for k, op := range j.stateful {
				st, err := op.snapshotState()
				if err != nil {
					t.Fatal(err)
				}
				if err := restored.stateful[k].restoreState(st); err != nil {
					t.Fatal(err)
				}
			}
		}
		if m, ok := got[fmt.Sprintf("recompute@%d", i)]; ok {
			emitted++
			if inv := got[fmt.Sprintf("inverse@%d", i)]; !maps.Equal(m, inv) {
				t.Fatalf("batch %d: inverse %v != recompute %v", i, inv, m)
			}
			// Independent check: sum over the batches in (t-10s, t].
			want := map[string]int64{}
			for k := max(0, i-9); k <= i; k++ {
				for _, r := range batches[k] {
					want[string(r.Key)] += int64(len(r.Value))
				}
			}
			if !maps.Equal(m, want) {
				t.Fatalf("batch %d: got %v want %v", i, m, want)
			}
			if i > 99 {
				if !maps.Equal(got2[fmt.Sprintf("inverse@%d", i)], m) || !maps.Equal(got2[fmt.Sprintf("recompute@%d", i)], m) {
					t.Fatalf("batch %d: restored job differs", i)
				}
			}
		}
	}
	if emitted != 100 {
		t.Fatalf("emitted %d windows, want 100", emitted)
	}
}

type ev struct {
	Key string
	At  int // seconds after t0
}

func TestEventTimeWindowsGolden(t *testing.T) {
	// Batches of events with out-of-order and late arrivals.
	batches := [][]ev{
		{{"a", 1}, {"b", 3}, {"a", 7}},
		{{"a", 12}, {"b", 9}, {"a", 4}},   // 9 and 4 are fine: watermark is 7-5=2
		{{"b", 21}, {"a", 13}},            // watermark 12-5=7
		{{"a", 5}, {"b", 16}, {"a", 26}},  // watermark 16: a@5 is late
		{{"b", 14}, {"a", 33}, {"a", 19}}, // watermark 21: b@14 and a@19 are late
		{{"x", 60}},                       // watermark 28
		{},                                // watermark 55: closes everything up to 55
	}
	for _, c := range []struct {
		name          string
		length, slide time.Duration
	}{{"event_tumbling", 10 * time.Second, 10 * time.Second}, {"event_sliding", 10 * time.Second, 5 * time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			j := NewJob("ev", time.Second)
			w := countEvents(j, c.length, c.slide, 5*time.Second)
			var sb strings.Builder
			ForeachBatch(w.Results, "results", func(_ context.Context, b BatchInfo, rs []WindowResult[string, int]) error {
				for _, r := range rs {
					fmt.Fprintf(&sb, "batch %d: window [%02d,%02d) %s=%d\n", b.ID, r.Start.Sub(t0)/time.Second, r.End.Sub(t0)/time.Second, r.Key, r.Val)
				}
				return nil
			})
			ForeachBatch(w.Late, "late", func(_ context.Context, b BatchInfo, late []ev) error {
				for _, e := range late {
					fmt.Fprintf(&sb, "batch %d: late %s@%d\n", b.ID, e.Key, e.At)
				}
				fmt.Fprintf(&sb, "batch %d: watermark now %d\n", b.ID, w.Watermark().Sub(t0)/time.Second)
				return nil
			})
			for i, b := range batches {
				var rs []Record
				for _, e := range b {
					rs = append(rs, Record{Value: fmt.Appendf(nil, "%s %d", e.Key, e.At)})
				}
				if err := j.RunBatch(context.Background(), BatchInfo{ID: int64(i), Time: at(100 + i)}, rs); err != nil {
					t.Fatal(err)
				}
			}
			golden(t, c.name, sb.String())
			if w.OpenPanes() != 1 { // x@60's pane stays open
				t.Fatalf("open panes %d", w.OpenPanes())
			}
		})
	}
}

func TestMapWithStateTimeout(t *testing.T) {
	j := NewJob("s", time.Second)
	kv := Map(Input(j), func(r Record) KV[string, int] { return KV[string, int]{string(r.Key), 1} })
	type out struct {
		Key     string
		Count   int
		Timeout bool
	}
	s := MapWithState(kv, StateSpec[string, int, int, out]{
		Update: func(_ time.Time, k string, v int, st *State[int]) (out, bool) {
			n, _ := st.Get()
			n += v
			if k == "drop" {
				st.Remove()
				return out{k, n, false}, true
			}
			st.Update(n)
			return out{k, n, false}, true
		},
		Timeout:   3 * time.Second,
		OnTimeout: func(_ time.Time, k string, n int) (out, bool) { return out{k, n, true}, true },
	})
	var got []string
	ForeachBatch(s, "collect", func(_ context.Context, b BatchInfo, items []out) error {
		var line []string
		for _, o := range items {
			line = append(line, fmt.Sprintf("%s=%d%s", o.Key, o.Count, map[bool]string{true: "(timeout)"}[o.Timeout]))
		}
		slices.Sort(line)
		got = append(got, fmt.Sprintf("%d:%s", b.ID, strings.Join(line, ",")))
		return nil
	})
	keys := [][]string{{"a", "b", "a"}, {"b"}, {"drop", "drop"}, {"b"}, {}, {}, {"a"}, {}, {}, {}}
	for i, ks := range keys {
		var rs []Record
		for _, k := range ks {
			rs = append(rs, Record{Key: []byte(k)})
		}
		if err := j.RunBatch(context.Background(), BatchInfo{ID: int64(i), Time: at(i)}, rs); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"0:a=1,a=2,b=1", "1:b=2", "2:drop=1,drop=1", "3:a=2(timeout),b=3", "4:", "5:", "6:a=1,b=3(timeout)", "7:", "8:", "9:a=1(timeout)"}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if n := StateSize(s); n != 0 {
		t.Fatalf("state size %d", n)
	}
}

// countEvents counts j's "key second" records per key in event-time windows.
func countEvents(j *Job, length, slide, lateness time.Duration) *EventWindows[ev, string, int] {
	in := Map(Input(j), func(r Record) ev {
		var e ev
		fmt.Sscanf(string(r.Value), "%s %d", &e.Key, &e.At)
		return e
	})
	return EventTimeWindow(in, EventWindowSpec[ev, string, int]{
		Length: length, Slide: slide, AllowedLateness: lateness,
		EventTime: func(e ev) time.Time { return at(e.At) },
		Key:       func(e ev) string { return e.Key },
		Value:     func(ev) int { return 1 },
		Reduce:    func(a, b int) int { return a + b },
	})
}

// An element that is not late but falls in a pane before every pane seen so far must
// still be counted: its windows are still open (their ends are above the watermark).
func TestEventTimeWindowEarlierPaneNotLate(t *testing.T) {
	for _, c := range []struct {
		name          string
		length, slide time.Duration
	}{{"tumbling", 10 * time.Second, 10 * time.Second}, {"sliding", 10 * time.Second, 5 * time.Second}} {
		t.Run(c.name, func(t *testing.T) {
			j := NewJob("ev", time.Second)
			w := countEvents(j, c.length, c.slide, 50*time.Second)
			var got []string
			ForeachBatch(w.Results, "results", func(_ context.Context, _ BatchInfo, rs []WindowResult[string, int]) error {
				for _, r := range rs {
					if r.Key == "early" {
						got = append(got, fmt.Sprintf("[%d,%d)=%d", r.Start.Sub(t0)/time.Second, r.End.Sub(t0)/time.Second, r.Val))
					}
				}
				return nil
			})
			ForeachBatch(w.Late, "late", func(_ context.Context, _ BatchInfo, late []ev) error {
				if len(late) > 0 {
					t.Errorf("late %v", late)
				}
				return nil
			})
			// Watermark after batch 0: 100-50 = 50; early@60 is on time, in a pane before
			// the first one (100). Batch 2 moves the watermark past every window.
			for i, b := range [][]ev{{{"a", 100}}, {{"early", 60}}, {{"z", 500}}, {}} {
				var rs []Record
				for _, e := range b {
					rs = append(rs, Record{Value: fmt.Appendf(nil, "%s %d", e.Key, e.At)})
				}
				if err := j.RunBatch(context.Background(), BatchInfo{ID: int64(i), Time: at(200 + i)}, rs); err != nil {
					t.Fatal(err)
				}
			}
			want := []string{"[60,70)=1"}
			if c.slide != c.length {
				want = []string{"[55,65)=1", "[60,70)=1"}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("early@60 counted in windows %v, want %v", got, want)
			}
		})
	}
}
