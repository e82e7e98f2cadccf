package broker

import (
	"sync"
	"unsafe"
)

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

// hugeFrameMin is the request size from which a pooled buffer asks for transparent huge
// pages (see adviseHuge). Smaller requests touch the buffer in 4 KiB pages: a huge page
// is zeroed whole on first touch, 2 MiB for a request of a few hundred KiB (snappy
// batches, most kafka-go requests), which took 8 ms on this benchmark's VM, half the
// produce CPU of a fresh broker's first million snappy records, and made 2 MiB
// resident.
const hugeFrameMin = 2 << 20

// framePool is the free list of large request buffers.
type framePool struct {
	mu   sync.Mutex
	free [][]byte // idle buffers, any order
	idle int      // sum of cap(free[i])
	// huge holds the buffers (by their first byte) that asked for huge pages.
	huge map[*byte]bool
}

// sized returns b[:n], first asking for huge pages for b if n is large enough. Called
// with mu held.
func (p *framePool) sized(b []byte, n int) []byte {
	if n >= hugeFrameMin && !p.huge[unsafe.SliceData(b)] {
		if p.huge == nil {
			p.huge = map[*byte]bool{}
		}
		p.huge[unsafe.SliceData(b)] = true
		adviseHuge(b)
	}
	return b[:n]
}

// drop frees b for good. Called with mu held.
func (p *framePool) drop(b []byte) {
	delete(p.huge, unsafe.SliceData(b))
	freeFrame(b)
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
		return p.sized(p.take(best), n)
	}
	if largest >= 0 {
		p.drop(p.take(largest)) // too small for n
	}
	if n > framePoolIdleBytes {
		return p.sized(allocFrame(n), n) // never kept (see put): no room to grow into
	}
	c := minPooledFrame
	for c < n {
		c *= 2
	}
	return p.sized(allocFrame(c), n)
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
			p.drop(b) // everything idle is at least as useful as b
			return
		}
		p.drop(p.take(small))
	}
	if p.idle+cap(b) > framePoolIdleBytes {
		p.drop(b)
		return
	}
	p.free = append(p.free, b[:0])
	p.idle += cap(b)
}
