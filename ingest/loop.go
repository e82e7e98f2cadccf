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
