// Package chantest holds test helpers for the collector's sources: taking what a source
// put into a channel.
package chantest

import (
	"context"
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
