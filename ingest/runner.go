package ingest

import (
	"context"
	"errors"
	"log/slog"
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
