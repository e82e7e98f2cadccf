package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/channel"
)

// flakySink fails every third delivery after a pause (so the runner's next take is
// already out) and records the events of the deliveries that succeeded.
type flakySink struct {
	mu    sync.Mutex
	calls int
	got   []int
}

func (s *flakySink) Name() string { return "flaky" }
func (s *flakySink) Close() error { return nil }
func (s *flakySink) Deliver(_ context.Context, evs []ingest.Event) error {
	time.Sleep(time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls%3 == 0 {
		return errors.New("broker said no")
	}
	for _, e := range evs {
		n, _ := strconv.Atoi(string(e.Body))
		s.got = append(s.got, n)
	}
	return nil
}

func (s *flakySink) delivered() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.got...)
}

// TestSinkRunnerFailuresKeepOrder: with the next batch taken while one is delivered, a
// failed delivery gives both batches back in order, so the acknowledged events are every
// event exactly once, in put order — for both channels.
func TestSinkRunnerFailuresKeepOrder(t *testing.T) {
	for _, kind := range []string{"memory", "file"} {
		t.Run(kind, func(t *testing.T) {
			var ch ingest.Channel = channel.NewMemory("c", channel.MemoryOptions{Capacity: 1000})
			if kind == "file" {
				o := channel.DefaultFileOptions(t.TempDir())
				o.MinFreeBytes = -1
				f, err := channel.OpenFile("c", o)
				if err != nil {
					t.Fatal(err)
				}
				ch = f
			}
			defer ch.Close()
			const batches, per = 30, 10
			for b := 0; b < batches; b++ {
				evs := make([]ingest.Event, per)
				for i := range evs {
					evs[i].Body = []byte(fmt.Sprint(b*per + i))
				}
				if err := ch.Put(context.Background(), evs); err != nil {
					t.Fatal(err)
				}
			}
			sink := &flakySink{}
			r := &ingest.SinkRunner{Agent: "a", Channel: ch, Sink: sink, BatchSize: 7,
				Backoff: ingest.Backoff{Min: time.Millisecond, Max: time.Millisecond}}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); r.Run(ctx, context.Background()) }()
			deadline := time.Now().Add(20 * time.Second)
			for len(sink.delivered()) < batches*per && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			cancel()
			<-done
			got := sink.delivered()
			if len(got) != batches*per {
				t.Fatalf("delivered %d events, want %d", len(got), batches*per)
			}
			for i, n := range got {
				if n != i {
					t.Fatalf("event %d delivered as #%d: order or exactly-once broken: %v", n, i, got)
				}
			}
			if st := ch.Stats(); st.Events != 0 {
				t.Fatalf("channel still holds %d events", st.Events)
			}
		})
	}
}
