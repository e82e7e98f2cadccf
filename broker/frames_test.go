package broker

import "testing"

func TestFramePoolReusesAndBounds(t *testing.T) {
	var p framePool
	a := p.get(3 << 20)
	if len(a) != 3<<20 || cap(a) != 4<<20 {
		t.Fatalf("get(3 MiB): len %d cap %d, want a 4 MiB buffer", len(a), cap(a))
	}
	p.put(a)
	b := p.get(1 << 20)
	if &b[0] != &a[0] || len(b) != 1<<20 {
		t.Fatal("an idle buffer that fits was not reused")
	}
	p.put(b)

	// A request larger than every idle buffer replaces the largest one: a producer whose
	// requests grow keeps one buffer.
	c := p.get(5 << 20)
	if cap(c) != 8<<20 || len(p.free) != 0 || p.idle != 0 {
		t.Fatalf("grow: cap %d, %d idle buffers (%d bytes)", cap(c), len(p.free), p.idle)
	}
	p.put(c)

	// Concurrent requests each get a buffer; the idle ones stay within the bound, the
	// largest kept first.
	var held [][]byte
	for i := 0; i < 8; i++ {
		held = append(held, p.get(6<<20))
	}
	small := p.get(600 << 10)
	for _, h := range held {
		p.put(h)
	}
	p.put(small)
	if p.idle > framePoolIdleBytes || len(p.free) != framePoolIdleBytes/(8<<20) {
		t.Fatalf("%d idle buffers, %d bytes (bound %d)", len(p.free), p.idle, framePoolIdleBytes)
	}
	for _, f := range p.free {
		if cap(f) != 8<<20 {
			t.Fatalf("kept a %d-byte buffer instead of a larger one", cap(f))
		}
	}
}
