package streaming

import (
	"testing"
	"time"
)

// TestPIDKeepsProcessingUnderInterval simulates a job that costs 50 ms per batch plus
// 10 µs per record (so it can sustain at most 95k records/s with a 1 s interval) under
// an unbounded backlog: the estimator must settle where a batch fits in the interval.
func TestPIDKeepsProcessingUnderInterval(t *testing.T) {
	interval := time.Second
	p := newPIDEstimator(DefaultPIDOptions(), interval)
	cost := func(n int64) time.Duration { return 50*time.Millisecond + time.Duration(n)*10*time.Microsecond }
	now := time.Unix(1000, 0)
	records := int64(1_000_000) // first batch: the cap, far too big
	var delay time.Duration
	var rate float64
	for i := range 60 {
		proc := cost(records)
		r, ok := p.compute(now, records, proc, delay)
		if !ok {
			t.Fatal("no estimate")
		}
		rate = r
		// The next batch starts when this one is done or on the next tick.
		delay = max(0, proc-interval)
		now = now.Add(max(interval, proc))
		records = int64(rate * interval.Seconds())
		if i > 20 && cost(records) > interval {
			t.Fatalf("batch %d: %d records take %v > interval", i, records, cost(records))
		}
	}
	if rate < 80_000 || rate > 95_000 {
		t.Fatalf("settled at %.0f records/s, want close below 95k", rate)
	}
	// Capping ranges splits the rate by lag and never starves a partition.
	rs := Ranges{{Topic: "t", Partition: 0, From: 0, Until: 900}, {Topic: "t", Partition: 1, From: 0, Until: 100}, {Topic: "t", Partition: 2, From: 5, Until: 5}}
	capRanges(rs, 0, 0, 100, time.Second)
	if rs[0].Count() != 90 || rs[1].Count() != 10 || rs[2].Count() != 0 {
		t.Fatalf("capped %+v", rs)
	}
	rs = Ranges{{Topic: "t", Partition: 0, From: 10, Until: 1000}}
	capRanges(rs, 500, 20, 0, 5*time.Second)
	if rs[0].Until != 110 {
		t.Fatalf("rate cap: %+v", rs)
	}
}
