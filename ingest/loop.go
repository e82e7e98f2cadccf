package ingest

import (
	"context"
	"sync"
)

// Loop is the Start/Stop pair of a source that runs one goroutine until stopped: Go
// starts it, Stop cancels its context and waits for it (or for ctx). Safe to Stop twice
// or without Go.
type Loop struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Go runs fn in a goroutine with a context that Stop cancels.
func (l *Loop) Go(fn func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		fn(ctx)
	}()
}

// Stop cancels the goroutine and waits for it to return, giving up when ctx is done.
func (l *Loop) Stop(ctx context.Context) error {
	l.once.Do(func() {
		if l.cancel != nil {
			l.cancel()
		}
	})
	return waitCtx(ctx, &l.wg)
}

// Drain is the Start/Stop pair of a source that, asked to stop, first puts what it read:
// Stop cancels Soft (read no more, put the batch in hand) and waits for the source to
// end; when Stop's ctx ends first it cancels Hard too (a put waiting for room gives up)
// and still waits. The zero value is ready; safe to Stop twice or without Go.
type Drain struct {
	init                   sync.Once
	soft, hard             context.Context
	softCancel, hardCancel context.CancelFunc
	done                   chan struct{}
	started                bool
	stop                   sync.Once
}

func (d *Drain) lazy() {
	d.init.Do(func() {
		d.soft, d.softCancel = context.WithCancel(context.Background())
		d.hard, d.hardCancel = context.WithCancel(context.Background())
		d.done = make(chan struct{})
	})
}

// Soft ends when Stop is called.
func (d *Drain) Soft() context.Context { d.lazy(); return d.soft }

// Hard ends when Stop's ctx does, or when the source has ended.
func (d *Drain) Hard() context.Context { d.lazy(); return d.hard }

// Done is closed when the source has ended.
func (d *Drain) Done() <-chan struct{} { d.lazy(); return d.done }

// Go runs the source in a goroutine; Done closes when fn returns.
func (d *Drain) Go(fn func()) {
	d.lazy()
	d.started = true
	go func() {
		defer close(d.done)
		defer d.hardCancel()
		fn()
	}()
}

// Stop asks the source to stop and waits for it to end; when ctx ends first, Hard is
// cancelled and ctx's error returned once the source has ended.
func (d *Drain) Stop(ctx context.Context) error {
	d.lazy()
	d.stop.Do(func() {
		d.softCancel()
		if !d.started {
			d.hardCancel()
			close(d.done)
		}
	})
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		d.hardCancel()
		<-d.done
		return ctx.Err()
	}
}
