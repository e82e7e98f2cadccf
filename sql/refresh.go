package sql

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Refresher moves an engine's views to the newest snapshots every interval; it is a
// lifecycle.Component for the servers.
type Refresher struct {
	name     string
	e        *Engine
	interval time.Duration
	log      *slog.Logger
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	started  atomic.Bool
}

// NewRefresher returns a refresher; it runs between Start and Stop.
func NewRefresher(e *Engine, interval time.Duration, log *slog.Logger) *Refresher {
	if log == nil {
		log = slog.Default()
	}
	return &Refresher{name: "sql-views", e: e, interval: interval, log: log, stop: make(chan struct{}), done: make(chan struct{})}
}

// Named sets the component name (default sql-views), for a process with several engines.
func (r *Refresher) Named(name string) *Refresher {
	r.name = name
	return r
}

// Name implements lifecycle.Component.
func (r *Refresher) Name() string { return r.name }

// Start begins refreshing in the background.
func (r *Refresher) Start(context.Context) error {
	r.started.Store(true)
	// A refresh that copies a cached table (Options.Cache) into memory takes seconds, so
	// it is bounded by a minute rather than by the interval; Stop cancels it.
	stopped, cancelAll := context.WithCancel(context.Background())
	go func() {
		<-r.stop
		cancelAll()
	}()
	go func() {
		defer close(r.done)
		defer cancelAll()
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(stopped, max(r.interval, time.Minute))
				if err := r.e.Refresh(ctx); err != nil {
					r.log.Warn("cannot refresh warehouse views", "err", err)
				}
				cancel()
			}
		}
	}()
	return nil
}

// Stop ends the refresh loop and waits for it; safe to call twice or without Start.
func (r *Refresher) Stop(ctx context.Context) error {
	r.once.Do(func() { close(r.stop) })
	if !r.started.Load() {
		return nil
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
