package ingest

import (
	"context"
	"net"
	"sync"
)

// Conns tracks a socket source's goroutines and open connections, so Stop can close every
// connection and wait for every goroutine. The zero value is ready to use.
type Conns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Go runs fn in a tracked goroutine (an accept loop, a UDP reader).
func (c *Conns) Go(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// Serve runs fn on conn in a tracked goroutine and closes conn when fn returns. With
// max > 0 and max connections already open, conn is closed at once and Serve reports
// false.
func (c *Conns) Serve(conn net.Conn, max int, fn func(net.Conn)) bool {
	c.mu.Lock()
	if max > 0 && len(c.conns) >= max {
		c.mu.Unlock()
		conn.Close()
		return false
	}
	if c.conns == nil {
		c.conns = map[net.Conn]struct{}{}
	}
	c.conns[conn] = struct{}{}
	c.mu.Unlock()
	c.Go(func() {
		defer func() {
			c.mu.Lock()
			delete(c.conns, conn)
			c.mu.Unlock()
			conn.Close()
		}()
		fn(conn)
	})
	return true
}

// CloseAll closes every open connection; their goroutines then end.
func (c *Conns) CloseAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for conn := range c.conns {
		conn.Close()
	}
}

// Wait waits for every tracked goroutine, giving up when ctx is done.
func (c *Conns) Wait(ctx context.Context) error { return waitCtx(ctx, &c.wg) }

// waitCtx waits for wg or ctx, whichever is first.
func waitCtx(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
