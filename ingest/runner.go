package ingest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// SinkRunner moves batches from one channel to one sink (or sink group): take, deliver,
// commit when acknowledged, roll back and back off when not.
type SinkRunner struct {
	Agent     string
	Channel   Channel
	Sink      Sink
	BatchSize int
	C         *Counters
	M         *Metrics
	Log       *slog.Logger
	// Backoff between failed deliveries; zero = 100ms … 5s.
	Backoff Backoff
	// MaxInFlight > 1 (with an AsyncSink) takes the next batch while earlier ones wait
	// for their acknowledgement; each batch is still committed only once acknowledged.
	MaxInFlight int
}

// Run loops until stop ends. A delivery in progress when stop ends finishes (or fails)
// under hard, which the caller cancels at its shutdown deadline; its take is committed or
// rolled back accordingly.
func (r *SinkRunner) Run(stop, hard context.Context) {
	if r.BatchSize <= 0 {
		r.BatchSize = 1000
	}
	if r.Backoff.Min == 0 {
		r.Backoff = Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	}
	if r.Log == nil {
		r.Log = slog.New(slog.DiscardHandler)
	}
	if as, ok := r.Sink.(AsyncSink); ok && r.MaxInFlight > 1 {
		r.runAsync(stop, hard, as)
		return
	}
	failing := false
	for {
		tx, err := r.Channel.Take(stop, r.BatchSize)
		if err != nil {
			if stop.Err() != nil || errors.Is(err, ErrClosed) {
				return
			}
			r.Log.Error("channel take failed", "agent", r.Agent, "sink", r.Sink.Name(), "err", err)
			if !Sleep(stop, r.Backoff.Next()) {
				return
			}
			continue
		}
		evs := tx.Events()
		t0 := time.Now()
		err = r.Sink.Deliver(hard, evs)
		if err == nil {
			if err = tx.Commit(); err != nil {
				if errors.Is(err, ErrClosed) {
					return
				}
				// Delivered but not committed: give the batch back; it is delivered
				// again (duplicates, never loss).
				tx.Rollback()
				r.C.Add("commit_failures", 1)
				r.Log.Error("channel commit failed, batch will be delivered again", "agent", r.Agent, "sink", r.Sink.Name(), "err", err)
				if !Sleep(stop, r.Backoff.Next()) {
					return
				}
				continue
			}
			r.C.Add("success", int64(len(evs)))
			r.C.Add("batches", 1)
			r.M.Observe(r.Agent, r.Sink.Name(), time.Since(t0))
			r.Backoff.Reset()
			if failing {
				r.Log.Info("sink recovered", "agent", r.Agent, "sink", r.Sink.Name())
				failing = false
			}
			continue
		}
		tx.Rollback()
		r.C.Add("failure", int64(len(evs)))
		r.C.Add("failed_batches", 1)
		if !failing {
			r.Log.Warn("sink delivery failed, will retry", "agent", r.Agent, "sink", r.Sink.Name(), "events", len(evs), "err", err)
			failing = true
		} else {
			r.Log.Debug("sink delivery failed again", "agent", r.Agent, "sink", r.Sink.Name(), "err", err)
		}
		if !Sleep(stop, r.Backoff.Next()) {
			return
		}
	}
}

// runAsync keeps up to MaxInFlight batches in flight. Takes happen in channel order and
// each is handed to the sink before the next take, so records reach each partition in
// order; a failed batch is rolled back (and so sent again after later ones).
func (r *SinkRunner) runAsync(stop, hard context.Context, as AsyncSink) {
	sem := make(chan struct{}, r.MaxInFlight)
	var wg sync.WaitGroup
	var failed, failing atomic.Bool
	var lastErr atomic.Value
	defer func() {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-hard.Done():
		}
	}()
	settle := func(tx Tx, n int, t0 time.Time, err error) {
		if err == nil {
			if err = tx.Commit(); err != nil && !errors.Is(err, ErrClosed) {
				r.C.Add("commit_failures", 1)
			}
		}
		if err != nil {
			tx.Rollback()
			r.C.Add("failure", int64(n))
			r.C.Add("failed_batches", 1)
			lastErr.Store(err)
			failed.Store(true)
			return
		}
		r.C.Add("success", int64(n))
		r.C.Add("batches", 1)
		r.M.Observe(r.Agent, r.Sink.Name(), time.Since(t0))
	}
	for {
		if failed.Swap(false) {
			if !failing.Swap(true) {
				r.Log.Warn("sink delivery failed, will retry", "agent", r.Agent, "sink", r.Sink.Name(), "err", lastErr.Load())
			}
			if !Sleep(stop, r.Backoff.Next()) {
				return
			}
		} else if failing.Load() {
			// No failure since the last pause: the sink is back.
			r.Backoff.Reset()
			failing.Store(false)
			r.Log.Info("sink recovered", "agent", r.Agent, "sink", r.Sink.Name())
		}
		select {
		case sem <- struct{}{}:
		case <-stop.Done():
			return
		}
		tx, err := r.Channel.Take(stop, r.BatchSize)
		if err != nil {
			<-sem
			if stop.Err() != nil || errors.Is(err, ErrClosed) {
				return
			}
			r.Log.Error("channel take failed", "agent", r.Agent, "sink", r.Sink.Name(), "err", err)
			if !Sleep(stop, r.Backoff.Next()) {
				return
			}
			continue
		}
		evs := tx.Events()
		t0 := time.Now()
		wg.Add(1)
		err = as.DeliverAsync(hard, evs, func(err error) {
			defer wg.Done()
			defer func() { <-sem }()
			settle(tx, len(evs), t0, err)
		})
		if err != nil {
			settle(tx, len(evs), t0, err)
			<-sem
			wg.Done()
		}
	}
}
