package ingest

import (
	"context"
	"testing"
)

// recordChannel records what was put into it.
type recordChannel struct {
	Channel
	got []Event
}

func (c *recordChannel) Put(_ context.Context, evs []Event) error {
	c.got = append(c.got, evs...)
	return nil
}

// Events without an event_id (socket sources) get one before the channel, distinct per
// event; a file source's id is kept, and a batch put again (a source's retry) keeps the
// ids it was given.
func TestProcessorGivesEventIDs(t *testing.T) {
	ch := &recordChannel{}
	p := &Processor{Channels: []Channel{ch}, C: NewMetrics(nil).Component("a", "source", "s", "tcp")}
	evs := []Event{{Body: []byte("a")}, {Body: []byte("b")}, {Body: []byte("c"), Headers: Headers{{HeaderEventID, "file-1"}}}}
	if err := p.Put(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	if err := p.Put(context.Background(), evs); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, e := range ch.got[:3] {
		id := e.Headers.Get(HeaderEventID)
		if id == "" || seen[id] {
			t.Fatalf("event %d: id %q (seen %v)", i, id, seen)
		}
		seen[id] = true
		if again := ch.got[i+3].Headers.Get(HeaderEventID); again != id {
			t.Errorf("event %d put again: id %q, first %q", i, again, id)
		}
	}
	if got := ch.got[2].Headers.Get(HeaderEventID); got != "file-1" {
		t.Errorf("a source's own id was replaced: %q", got)
	}
	if a, b := (&Processor{}).ids.next(), p.ids.next(); a[:17] == b[:17] {
		t.Errorf("two processors share the id prefix: %q %q", a, b)
	}
}
