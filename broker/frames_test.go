package broker

import (
	"encoding/binary"
	"testing"
	"time"
)

func TestFramePoolReusesAndBounds(t *testing.T) {
	var p framePool
	a := p.get(3 << 20)
	if len(a) != 3<<20 || cap(a) != minPooledFrame {
		t.Fatalf("get(3 MiB): len %d cap %d, want a %d-byte buffer", len(a), cap(a), minPooledFrame)
	}
	p.put(a)
	b := p.get(1 << 20)
	if &b[0] != &a[0] || len(b) != 1<<20 {
		t.Fatal("an idle buffer that fits was not reused")
	}
	p.put(b)

	// A request larger than every idle buffer replaces the largest one: a producer whose
	// requests grow keeps one buffer.
	c := p.get(minPooledFrame + 1)
	if cap(c) != 2*minPooledFrame || len(p.free) != 0 || p.idle != 0 {
		t.Fatalf("grow: cap %d, %d idle buffers (%d bytes)", cap(c), len(p.free), p.idle)
	}
	p.put(c)

	// Concurrent requests each get a buffer; the idle ones stay within the bound, the
	// largest kept first.
	var held [][]byte
	for i := 0; i < 8; i++ {
		held = append(held, p.get(6<<20))
	}
	for _, h := range held {
		p.put(h)
	}
	if p.idle > framePoolIdleBytes || len(p.free) != framePoolIdleBytes/minPooledFrame-1 {
		t.Fatalf("%d idle buffers, %d bytes (bound %d)", len(p.free), p.idle, framePoolIdleBytes)
	}
	if largest := p.get(2 * minPooledFrame); &largest[0] != &c[0] {
		t.Fatal("the largest idle buffer was dropped for smaller ones")
	}
}

func TestFramePoolHugeFramesAreExactAndNotKept(t *testing.T) {
	var p framePool
	n := framePoolIdleBytes + 1
	b := p.get(n)
	if len(b) != n || cap(b) != n {
		t.Fatalf("get(%d): len %d cap %d", n, len(b), cap(b))
	}
	p.put(b)
	if len(p.free) != 0 || p.idle != 0 {
		t.Fatalf("a buffer above the idle bound was kept: %d buffers, %d bytes", len(p.free), p.idle)
	}
}

// A client that goes away in the middle of a large request leaves its pooled buffer to
// the pool (buffers live outside the Go heap: a lost one would never be freed).
func TestFramePoolGetsBufferBackFromDroppedRequest(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	frame := make([]byte, 4+300<<10)
	binary.BigEndian.PutUint32(frame, uint32(1<<20)) // promises 1 MiB, sends 300 KiB
	if _, err := c.nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	c.nc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.frames.mu.Lock()
		idle := b.frames.idle
		b.frames.mu.Unlock()
		if idle > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the buffer of a request cut short never came back to the pool")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
