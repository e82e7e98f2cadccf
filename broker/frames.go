package broker

import "sync"

// Request frames are read whole into one buffer and decoded without copying (kmsg's
// UnsafeReadFrom), so the buffer is busy only while its request is handled. Small frames
// (metadata, fetch, commits) use a buffer each connection keeps. Large ones (produce
// requests of megabytes) share a broker-wide free list: allocating a fresh multi-megabyte
// buffer per request cost more than the append itself (page faults on new memory,
// zeroing, and a GC cycle every few requests, which also grew the heap), while keeping
// one per connection would grow memory with the number of producers.
const (
	// connFrameBytes is the largest request buffer a connection keeps for itself.
	connFrameBytes = 256 << 10
	// minPooledFrame is the smallest pooled buffer. A producer's requests grow while its
	// client warms up (a few hundred KiB to several MiB); one buffer then serves them
	// all. Pages a request never fills are never touched, so the spare capacity costs no
	// resident memory (buffers live outside the Go heap: see allocFrame).
	minPooledFrame = 8 << 20
	// framePoolIdleBytes bounds the memory of idle pooled buffers; a buffer that would
	// push the pool past it is left to the GC.
	framePoolIdleBytes = 32 << 20
)

// framePool is the free list of large request buffers.
type framePool struct {
	mu   sync.Mutex
	free [][]byte // idle buffers, any order
	idle int      // sum of cap(free[i])
}

// get returns a buffer of length n, reusing the smallest idle buffer that fits. When
// none fits, the largest idle one is dropped for the new one: a producer whose requests
// grow then keeps one buffer instead of one per size it has sent. Capacities are powers
// of two from minPooledFrame, so a producer whose requests vary in size settles on one
// buffer quickly; a frame too large to ever be kept gets a buffer of its exact size.
func (p *framePool) get(n int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	best, largest := -1, -1
	for i, b := range p.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(p.free[best])) {
			best = i
		}
		if largest < 0 || cap(b) > cap(p.free[largest]) {
			largest = i
		}
	}
	if best >= 0 {
		return p.take(best)[:n]
	}
	if largest >= 0 {
		freeFrame(p.take(largest)) // too small for n
	}
	if n > framePoolIdleBytes {
		return allocFrame(n, n) // never kept (see put): no room to grow into
	}
	c := minPooledFrame
	for c < n {
		c *= 2
	}
	return allocFrame(n, c)
}

// take removes and returns free[i]. Called with mu held.
func (p *framePool) take(i int) []byte {
	b := p.free[i]
	last := len(p.free) - 1
	p.free[i] = p.free[last]
	p.free[last] = nil
	p.free = p.free[:last]
	p.idle -= cap(b)
	return b
}

// put returns a buffer from get; nothing may refer to it afterwards (a dropped buffer is
// unmapped). When the pool is full, the smallest idle buffers make room for a larger one
// (large requests are the ones that need a buffer most), and a buffer that still does
// not fit is dropped.
func (p *framePool) put(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.idle+cap(b) > framePoolIdleBytes && len(p.free) > 0 {
		small := 0
		for i := range p.free {
			if cap(p.free[i]) < cap(p.free[small]) {
				small = i
			}
		}
		if cap(p.free[small]) >= cap(b) {
			freeFrame(b) // everything idle is at least as useful as b
			return
		}
		freeFrame(p.take(small))
	}
	if p.idle+cap(b) > framePoolIdleBytes {
		freeFrame(b)
		return
	}
	p.free = append(p.free, b[:0])
	p.idle += cap(b)
}
