package ingest

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// Serve refuses a connection past the limit; CloseAll ends the serving goroutines and
// Wait sees them gone.
func TestConnsLimitCloseAllWait(t *testing.T) {
	var c Conns
	started := make(chan struct{}, 2)
	serve := func(conn net.Conn) {
		started <- struct{}{}
		_, _ = io.Copy(io.Discard, conn) // until the connection is closed
	}
	a1, b1 := net.Pipe()
	defer b1.Close()
	if !c.Serve(a1, 1, serve) {
		t.Fatal("first connection refused")
	}
	<-started
	a2, b2 := net.Pipe()
	defer b2.Close()
	if c.Serve(a2, 1, serve) {
		t.Fatal("second connection accepted past the limit of 1")
	}
	if _, err := a2.Write([]byte("x")); err == nil {
		t.Fatal("a refused connection must be closed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Wait(ctx); err == nil {
		t.Fatal("Wait returned while a connection was still served")
	}
	c.CloseAll()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	if err := c.Wait(ctx2); err != nil {
		t.Fatalf("Wait after CloseAll: %v", err)
	}
}
