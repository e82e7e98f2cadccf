// Package lifecycle starts a process's components in dependency order and stops them in
// reverse, each within a deadline. Every server in tagpipe (broker, collector, streaming,
// scheduler, SQL endpoints, admin HTTP) is a Component run this way.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Component is one long-lived part of the process.
type Component interface {
	// Name is used in logs and errors.
	Name() string
	// Start brings the component up and returns once it is serving; long work runs in
	// goroutines the component owns.
	Start(ctx context.Context) error
	// Stop shuts it down gracefully, giving up when ctx is done; it must be safe to call
	// after a failed or partial Start.
	Stop(ctx context.Context) error
}

// Ending is a Component whose background work can end on its own: by a fatal error (a
// streaming engine that stops on data loss or after its retries), or because it is done
// (a streaming engine reading what is available now). Done is closed then, and Err says
// why (nil: done, or stopped by Stop).
type Ending interface {
	Component
	Done() <-chan struct{}
	Err() error
}

// Runner runs a list of components.
type Runner struct {
	log         *slog.Logger
	stopTimeout time.Duration
	components  []Component
	started     []Component
	ready       atomic.Bool
}

// New returns a Runner. stopTimeout bounds the whole shutdown (all components together).
func New(log *slog.Logger, stopTimeout time.Duration, components ...Component) *Runner {
	return &Runner{log: log, stopTimeout: stopTimeout, components: components}
}

// Add appends components to start after the ones already given.
func (r *Runner) Add(c ...Component) { r.components = append(r.components, c...) }

// Ready reports whether every component has started and none has been stopped yet; the
// admin listener's /readyz uses it.
func (r *Runner) Ready() bool { return r.ready.Load() }

// Start starts components in order. If one fails, the ones already started are stopped in
// reverse and the error is returned. Once ctx is done (a stop signal during start-up) it
// starts no more: the ones started are stopped and the error wraps ctx's.
func (r *Runner) Start(ctx context.Context) error {
	err, stopErr := r.start(ctx)
	if stopErr != nil {
		err = errors.Join(err, stopErr)
	}
	return err
}

// start is Start with the error that ended the start-up and that of stopping what had
// started apart.
func (r *Runner) start(ctx context.Context) (err, stopErr error) {
	for _, c := range r.components {
		if ctx.Err() != nil {
			return fmt.Errorf("start stopped before %s: %w", c.Name(), ctx.Err()), r.Stop()
		}
		t0 := time.Now()
		if err := c.Start(ctx); err != nil {
			err = fmt.Errorf("cannot start %s: %w", c.Name(), err)
			r.log.Error("start failed", "component", c.Name(), "err", err)
			return err, r.Stop()
		}
		r.started = append(r.started, c)
		r.log.Info("started", "component", c.Name(), "took", time.Since(t0).Round(time.Millisecond))
	}
	r.ready.Store(true)
	return nil, nil
}

// Stop stops started components in reverse start order within the stop timeout. A
// component that misses the deadline is reported and the rest are still stopped.
func (r *Runner) Stop() error {
	r.ready.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), r.stopTimeout)
	defer cancel()
	var errs []error
	for i := len(r.started) - 1; i >= 0; i-- {
		c := r.started[i]
		t0 := time.Now()
		if err := c.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cannot stop %s: %w", c.Name(), err))
			r.log.Error("stop failed", "component", c.Name(), "err", err)
			continue
		}
		r.log.Info("stopped", "component", c.Name(), "took", time.Since(t0).Round(time.Millisecond))
	}
	r.started = nil
	return errors.Join(errs...)
}

// Run starts everything, waits until ctx is done (the caller wires SIGINT/SIGTERM into
// ctx) or an Ending component ends on its own, and stops everything. A component that
// failed is the returned error: the process exits with it rather than running on without
// that part (a supervisor sees the exit; /readyz alone would not be watched). One that
// finished its work (nil Err) ends the run with nil.
//
// ctx done during start-up is a stop like any other: Run returns nil once what started
// is stopped (or the stop's error), not the start's context error.
func (r *Runner) Run(ctx context.Context) error {
	if err, stopErr := r.start(ctx); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			r.log.Info("stopped during start-up", "reason", context.Cause(ctx))
			return stopErr
		}
		if stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		return err
	}
	ended := make(chan error, len(r.started))
	quit := make(chan struct{})
	defer close(quit)
	for _, c := range r.started {
		if e, ok := c.(Ending); ok {
			go func() {
				select {
				case <-e.Done():
					if err := e.Err(); err != nil {
						ended <- fmt.Errorf("%s stopped: %w", e.Name(), err)
					} else {
						ended <- nil
					}
				case <-quit:
				}
			}()
		}
	}
	select {
	case <-ctx.Done():
		r.log.Info("stopping", "reason", context.Cause(ctx))
		return r.Stop()
	case err := <-ended:
		if err == nil {
			r.log.Info("a component finished its work; stopping")
			return r.Stop()
		}
		r.log.Error("a component stopped; stopping the others", "err", err)
		r.Stop() // the ended component's Stop reports its error again
		return err
	}
}

// Func adapts two functions into a Component.
type Func struct {
	N       string
	StartFn func(context.Context) error
	StopFn  func(context.Context) error
}

func (f Func) Name() string { return f.N }

func (f Func) Start(ctx context.Context) error {
	if f.StartFn == nil {
		return nil
	}
	return f.StartFn(ctx)
}

func (f Func) Stop(ctx context.Context) error {
	if f.StopFn == nil {
		return nil
	}
	return f.StopFn(ctx)
}
