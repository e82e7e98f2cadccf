package lifecycle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartOrderStopReverse(t *testing.T) {
	var events []string
	mk := func(name string, startErr error) Component {
		return Func{N: name,
			StartFn: func(context.Context) error { events = append(events, "start "+name); return startErr },
			StopFn:  func(context.Context) error { events = append(events, "stop "+name); return nil },
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := New(log, time.Second, mk("a", nil), mk("b", nil), mk("c", nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	for !r.Ready() {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(events, ","); got != "start a,start b,start c,stop c,stop b,stop a" {
		t.Fatalf("order: %s", got)
	}

	events = nil
	r = New(log, time.Second, mk("a", nil), mk("b", errors.New("boom")), mk("c", nil))
	if err := r.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot start b: boom") {
		t.Fatalf("err = %v", err)
	}
	if got := strings.Join(events, ","); got != "start a,start b,stop a" {
		t.Fatalf("order after failure: %s", got)
	}
}

func TestStopDeadline(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	stuck := Func{N: "stuck", StopFn: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }}
	var stoppedFirst bool
	first := Func{N: "first", StopFn: func(context.Context) error { stoppedFirst = true; return nil }}
	r := New(log, 20*time.Millisecond, first, stuck)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := r.Stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if !stoppedFirst {
		t.Fatal("a stuck component must not keep the others from stopping")
	}
}

// ending is a component whose work ends on its own when fail is closed.
type ending struct {
	Func
	done chan struct{}
	err  error
}

func (e *ending) Done() <-chan struct{} { return e.done }
func (e *ending) Err() error            { return e.err }

// A component that ends on its own (a fatal error in its background work) stops the
// others and is Run's error: the process does not run on without it.
func TestRunEndsWhenAComponentEnds(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var stopped []string
	mk := func(name string) Func {
		return Func{N: name, StopFn: func(context.Context) error { stopped = append(stopped, name); return nil }}
	}
	e := &ending{Func: mk("stream"), done: make(chan struct{}), err: errors.New("records lost")}
	r := New(log, time.Second, mk("broker"), e, mk("sql"))
	done := make(chan error)
	go func() { done <- r.Run(context.Background()) }()
	for !r.Ready() {
		time.Sleep(time.Millisecond)
	}
	close(e.done)
	err := <-done
	if err == nil || err.Error() != "stream stopped: records lost" {
		t.Fatalf("Run returned %v", err)
	}
	if got := strings.Join(stopped, ","); got != "sql,stream,broker" {
		t.Fatalf("stopped %s", got)
	}
	if r.Ready() {
		t.Fatal("still ready")
	}
}

// A component that finishes its work (ends with a nil error) ends the run with nil.
func TestRunEndsWhenAComponentFinishes(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &ending{Func: Func{N: "stream"}, done: make(chan struct{})}
	r := New(log, time.Second, e)
	done := make(chan error)
	go func() { done <- r.Run(context.Background()) }()
	for !r.Ready() {
		time.Sleep(time.Millisecond)
	}
	close(e.done)
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}
}

// TestStopSignalDuringStart: ctx done while a component starts (SIGINT during start-up)
// starts nothing after it, stops what started in reverse, and Run returns nil, as a stop
// after start-up does; Start itself reports the context error.
func TestStopSignalDuringStart(t *testing.T) {
	var events []string
	ctx, cancel := context.WithCancel(context.Background())
	mk := func(name string, onStart func()) Component {
		return Func{N: name,
			StartFn: func(context.Context) error { events = append(events, "start "+name); onStart(); return nil },
			StopFn:  func(context.Context) error { events = append(events, "stop "+name); return nil },
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r := New(log, time.Second, mk("a", func() {}), mk("b", cancel), mk("c", func() {}))
	if err := r.Run(ctx); err != nil {
		t.Fatalf("Run after a stop during start-up: %v", err)
	}
	if got := strings.Join(events, ","); got != "start a,start b,stop b,stop a" {
		t.Fatalf("events: %s", got)
	}
	if r.Ready() {
		t.Fatal("ready after a stopped start-up")
	}

	events = nil
	r = New(log, time.Second, mk("a", func() {}))
	if err := r.Start(ctx); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "start stopped before a") {
		t.Fatalf("Start with ctx done: %v", err)
	}
	if len(events) != 0 {
		t.Fatalf("started with ctx done: %v", events)
	}
}
