package streaming

import (
	"context"
	"fmt"
	"testing"

	"github.com/tagpipe/tagpipe/streaming/internal/testkafka"
)

// TestReadRangeOverCompactionGap: a range of a compacted topic whose records were all
// cleaned away (a batch capped by max records per partition ends inside such a gap) is
// read in a few fetches, not one per missing offset, and a range that ends in a gap
// gets the records before it.
func TestReadRangeOverCompactionGap(t *testing.T) {
	c := testkafka.StartCompacted(t, "profiles")
	// 30 batches of the same 5 keys (offsets 0–149), then a record that closes the last
	// of their segments: the cleaner keeps offsets 145–149 and 150.
	for round := range 30 {
		var recs []testkafka.Record
		for k := range 5 {
			recs = append(recs, testkafka.Record{Key: fmt.Appendf(nil, "user-%d", k), Value: fmt.Appendf(nil, "%d", round)})
		}
		testkafka.Produce(t, c.Addrs, "profiles", recs)
	}
	testkafka.Produce(t, c.Addrs, "profiles", []testkafka.Record{{Key: []byte("end"), Value: []byte("x")}})
	if n := c.Compact(t); n != 145 {
		t.Fatalf("cleaner removed %d records, want 145", n)
	}
	s := newSource(c.Addrs, nil, newSubscription([]string{"profiles"}, nil), "", "test")
	defer s.close()
	ctx := context.Background()
	for _, r := range []struct {
		from, until int64
		want        int
	}{{0, 140, 0}, {0, 147, 2}, {100, 151, 6}} {
		before := c.Fetches(t)
		n, err := s.readRange(ctx, OffsetRange{Topic: "profiles", From: r.from, Until: r.until}, make([]Record, 0, 200))
		if err != nil || n != r.want {
			t.Fatalf("range [%d, %d): %d records, %v; want %d", r.from, r.until, n, err, r.want)
		}
		if f := c.Fetches(t) - before; f > 3 {
			t.Fatalf("range [%d, %d): %v fetches for a compaction gap", r.from, r.until, f)
		}
	}
}
