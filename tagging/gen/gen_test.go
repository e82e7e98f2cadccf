package gen

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDeterministicAndSkewed(t *testing.T) {
	o := Options{Users: 10_000, Items: 50_000, Categories: 100, Days: 7, Seed: 42}
	var a, b bytes.Buffer
	if err := New(o).WriteTaobao(&a, 50_000); err != nil {
		t.Fatal(err)
	}
	if err := New(o).WriteTaobao(&b, 50_000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed, different events")
	}
	users := map[string]int{}
	behav := map[string]int{}
	itemCat := map[string]string{}
	start := DefaultOptions().Start
	lines := strings.Split(strings.TrimSpace(a.String()), "\n")
	for _, l := range lines {
		f := strings.Split(l, ",")
		if len(f) != 5 {
			t.Fatalf("line %q", l)
		}
		users[f[0]]++
		behav[f[3]]++
		if c, ok := itemCat[f[1]]; ok && c != f[2] {
			t.Fatalf("item %s in categories %s and %s", f[1], c, f[2])
		}
		itemCat[f[1]] = f[2]
		sec, _ := strconv.ParseInt(f[4], 10, 64)
		if ts := time.Unix(sec, 0); ts.Before(start) || !ts.Before(start.AddDate(0, 0, 7)) {
			t.Fatalf("time %v out of range", ts)
		}
	}
	if pv := float64(behav["pv"]) / float64(len(lines)); pv < 0.87 || pv > 0.91 || behav["buy"] == 0 {
		t.Errorf("behaviours: %v", behav)
	}
	max := 0
	for _, n := range users {
		max = maxInt(max, n)
	}
	// Zipf: the busiest user has far more than the mean (5 events per user).
	if max < 500 {
		t.Errorf("busiest user has %d events: not skewed", max)
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}
