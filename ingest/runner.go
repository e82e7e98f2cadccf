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
	// The next batch is taken while the current one is delivered (for a file channel
	// the take reads and decodes it), so the sink does not wait for it after each ack.
	// It is only taken, not delivered: when the current batch fails, the prefetched one
	// is rolled back first and the current one after it, so both return to the head of
	// the channel in their order and nothing leaves the channel unacknowledged.
	next := r.prefetch(stop)
	defer func() { next.rollback() }() // the take pending when Run returns
	for {
		res := next.wait()
		if res.err != nil {
			if stop.Err() != nil || errors.Is(res.err, ErrClosed) {
				return
			}
			r.Log.Error("channel take failed", "agent", r.Agent, "sink", r.Sink.Name(), "err", res.err)
			if !Sleep(stop, r.Backoff.Next()) {
				return
			}
			next = r.prefetch(stop)
			continue
		}
		tx := res.tx
		next = r.prefetch(stop)
		evs := tx.Events()
		t0 := time.Now()
		err := r.Sink.Deliver(hard, evs)
		if err == nil {
			if err = tx.Commit(); err != nil {
				if errors.Is(err, ErrClosed) {
					return
				}
				// Delivered but not committed: give the batch back; it is delivered
				// again (duplicates, never loss).
				next.rollback()
				tx.Rollback()
				r.C.Add("commit_failures", 1)
				r.Log.Error("channel commit failed, batch will be delivered again", "agent", r.Agent, "sink", r.Sink.Name(), "err", err)
				if !Sleep(stop, r.Backoff.Next()) {
					return
				}
				next = r.prefetch(stop)
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
		next.rollback()
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
		next = r.prefetch(stop)
	}
}

// pendingTake is a Take running in its own goroutine.
type pendingTake struct {
	cancel context.CancelFunc
	done   chan takeResult
	res    *takeResult
}

type takeResult struct {
	tx  Tx
	err error
}

// prefetch starts taking the next batch; it waits for events until stop ends (or
// rollback cancels it).
func (r *SinkRunner) prefetch(stop context.Context) *pendingTake {
	ctx, cancel := context.WithCancel(stop)
	p := &pendingTake{cancel: cancel, done: make(chan takeResult, 1)}
	go func() {
		tx, err := r.Channel.Take(ctx, r.BatchSize)
		p.done <- takeResult{tx, err}
	}()
	return p
}

// wait returns the take's result (once; later calls return an empty result).
func (p *pendingTake) wait() takeResult {
	if p.res != nil {
		return takeResult{}
	}
	res := <-p.done
	p.cancel()
	p.res = &res
	return res
}

// rollback cancels the take and gives back what it took, if anything.
func (p *pendingTake) rollback() {
	p.cancel()
	if res := p.wait(); res.tx != nil {
		res.tx.Rollback()
	}
}
