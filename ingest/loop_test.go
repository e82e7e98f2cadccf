package ingest

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDrain: Stop ends Soft and waits for the source to finish; past Stop's deadline it
// ends Hard too and still waits; twice and without Go are fine.
func TestDrain(t *testing.T) {
	var idle Drain
	if err := idle.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-idle.Done()

	var d Drain
	d.Go(func() {
		<-d.Soft().Done()
		<-d.Hard().Done() // a put waiting for room
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := d.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop past its deadline: %v", err)
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	var g Drain
	g.Go(func() { <-g.Soft().Done() })
	if err := g.Stop(context.Background()); err != nil || g.Hard().Err() == nil {
		t.Fatalf("Stop: %v, Hard after the end: %v", err, g.Hard().Err())
	}
}
