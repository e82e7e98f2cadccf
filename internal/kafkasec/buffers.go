package kafkasec

import "sync"

// minResponseBuffer is the smallest buffer ResponseBuffers allocates: responses are
// read into one of the next power of two at least this size, so buffers are few sizes
// and a buffer fits the next response of about the same size.
const minResponseBuffer = 64 << 10

// ResponseBuffers lends Conns (UseBuffers) the buffers they read responses into and
// keeps the ones handed back (Conn.Release) for the next responses, on any of them:
// a reader of many responses allocates for few of them. It keeps at most keep buffers,
// so what it holds is bounded by keep times the largest response. It is safe for
// concurrent use.
type ResponseBuffers struct {
	keep int

	mu   sync.Mutex
	free [][]byte
}

// NewResponseBuffers keeps up to keep buffers (about as many as responses are read at
// once).
func NewResponseBuffers(keep int) *ResponseBuffers {
	return &ResponseBuffers{keep: keep}
}

// get returns a buffer of n bytes: the smallest kept one large enough, else a new one.
func (p *ResponseBuffers) get(n int) []byte {
	p.mu.Lock()
	best := -1
	for i, b := range p.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(p.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := p.free[best]
		last := len(p.free) - 1
		p.free[best], p.free[last] = p.free[last], nil
		p.free = p.free[:last]
		p.mu.Unlock()
		return b[:n]
	}
	p.mu.Unlock()
	size := minResponseBuffer
	for size < n {
		size <<= 1
	}
	return make([]byte, n, size)
}

// put keeps b for a later get; when keep buffers are kept already, the smallest of
// them and b is dropped.
func (p *ResponseBuffers) put(b []byte) {
	if cap(b) < minResponseBuffer || p.keep <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < p.keep {
		p.free = append(p.free, b)
		return
	}
	small := 0
	for i := range p.free {
		if cap(p.free[i]) < cap(p.free[small]) {
			small = i
		}
	}
	if cap(p.free[small]) < cap(b) {
		p.free[small] = b
	}
}
