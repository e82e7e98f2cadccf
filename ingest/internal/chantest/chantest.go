// Package chantest holds test helpers for the collector's sources: taking what a source
// put into a channel.
package chantest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

// Take takes n events from ch (committing each take), failing the test if they do not
// come within 10 s.
func Take(t testing.TB, ch ingest.Channel, n int) []ingest.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []ingest.Event
	for len(out) < n {
		tx, err := ch.Take(ctx, n-len(out))
		if err != nil {
			t.Fatalf("have %d of %d events: %v", len(out), n, err)
		}
		out = append(out, tx.Events()...)
		tx.Commit()
	}
	return out
}

// Gate is a channel that refuses puts (full, as a file channel on a nearly full disk)
// until Open is set.
type Gate struct {
	ingest.Channel
	Open atomic.Bool
}

func (g *Gate) Put(ctx context.Context, evs []ingest.Event) error {
	if !g.Open.Load() {
		return fmt.Errorf("gate: %w", ingest.ErrFull)
	}
	return g.Channel.Put(ctx, evs)
}
