package channel

import (
	"context"
	"fmt"
	"sync"

	"github.com/tagpipe/tagpipe/ingest"
)

// queue is the in-memory FIFO shared by both channels: items of type T with a size each,
// bounded by count and bytes, with take transactions that can roll back to the head.
// Locks: mu guards everything; no other lock is taken while holding it.
type queue[T any] struct {
	mu       sync.Mutex
	items    []T // ring would be nicer; a slice with a head index is enough
	head     int
	bytes    int64
	inflight int64 // bytes taken but not committed (still count against capacity)
	inflN    int   // items taken but not committed
	resItems int   // reserved by puts that are writing
	resBytes int64
	maxBytes int64
	maxItems int
	closed   bool
	size     func(*T) int64
	// key, when set, identifies items; open counts the first keys of open takes so a
	// checkpoint can find the oldest pending item under the same lock.
	key  func(*T) uint64
	open map[uint64]int
	// avail is closed and replaced whenever items arrive; space likewise when room frees.
	avail chan struct{}
	space chan struct{}
}

func newQueue[T any](maxItems int, maxBytes int64, size func(*T) int64) *queue[T] {
	return &queue[T]{maxItems: maxItems, maxBytes: maxBytes, size: size,
		avail: make(chan struct{}), space: make(chan struct{})}
}

func (q *queue[T]) lenLocked() int { return len(q.items) - q.head }

// fits reports whether n more items of b bytes fit; a batch larger than the whole
// capacity is let in when the queue is empty, so it cannot wedge a source forever.
func (q *queue[T]) fitsLocked(n int, b int64) bool {
	empty := q.lenLocked() == 0 && q.inflN == 0 && q.resItems == 0
	if q.maxItems > 0 && q.lenLocked()+q.inflN+q.resItems+n > q.maxItems && !empty {
		return false
	}
	if q.maxBytes > 0 && q.bytes+q.inflight+q.resBytes+b > q.maxBytes && !empty {
		return false
	}
	return true
}

// reserve waits for room (when wait is set, until ctx is done) and holds it for n items of
// b bytes until push or unreserve.
func (q *queue[T]) reserve(ctx context.Context, wait bool, n int, b int64) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ingest.ErrClosed
		}
		if q.fitsLocked(n, b) {
			q.resItems += n
			q.resBytes += b
			q.mu.Unlock()
			return nil
		}
		space := q.space
		q.mu.Unlock()
		if !wait {
			return fmt.Errorf("cannot put %d events (%d bytes): %w", n, b, ingest.ErrFull)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-space:
		}
	}
}

// unreserve gives back a reservation whose put failed.
func (q *queue[T]) unreserve(n int, b int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.resItems -= n
	q.resBytes -= b
	close(q.space)
	q.space = make(chan struct{})
}

// push appends reserved items (n, b as reserved; b < 0: nothing reserved) and wakes takers.
func (q *queue[T]) push(items []T, n int, b int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if b >= 0 {
		q.resItems -= n
		q.resBytes -= b
		q.bytes += b // the reservation's size is the items' size
	} else {
		for i := range items {
			q.bytes += q.size(&items[i])
		}
	}
	q.items = append(q.items, items...)
	close(q.avail)
	q.avail = make(chan struct{})
}

// take waits for at least one item and removes up to max from the head into flight.
func (q *queue[T]) take(ctx context.Context, max int) ([]T, int64, error) {
	for {
		q.mu.Lock()
		if q.lenLocked() > 0 {
			n := min(max, q.lenLocked())
			out := make([]T, n)
			copy(out, q.items[q.head:q.head+n])
			var zero T
			for i := q.head; i < q.head+n; i++ {
				q.items[i] = zero
			}
			q.head += n
			if q.head > 1024 && q.head*2 > len(q.items) {
				// Move the rest to the front of the same array (amortised O(1) per
				// item) instead of allocating a new one each time.
				rest := copy(q.items, q.items[q.head:])
				clear(q.items[rest:])
				q.items = q.items[:rest]
				q.head = 0
			}
			var b int64
			for i := range out {
				b += q.size(&out[i])
			}
			q.bytes -= b
			q.inflight += b
			q.inflN += n
			if q.key != nil {
				q.open[q.key(&out[0])]++
			}
			q.mu.Unlock()
			return out, b, nil
		}
		if q.closed {
			q.mu.Unlock()
			return nil, 0, ingest.ErrClosed
		}
		avail := q.avail
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-avail:
		}
	}
}

// done ends a take: committed items free their room; rolled-back ones go back to the head.
func (q *queue[T]) done(items []T, b int64, rollback bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflight -= b
	q.inflN -= len(items)
	if q.key != nil {
		k := q.key(&items[0])
		if q.open[k]--; q.open[k] <= 0 {
			delete(q.open, k)
		}
	}
	if rollback {
		if q.head >= len(items) {
			q.head -= len(items)
			copy(q.items[q.head:], items)
		} else {
			q.items = append(append(make([]T, 0, len(items)+q.lenLocked()), items...), q.items[q.head:]...)
			q.head = 0
		}
		q.bytes += b
		close(q.avail)
		q.avail = make(chan struct{})
		return
	}
	close(q.space)
	q.space = make(chan struct{})
}

// oldest is the smallest key pending (queued or taken); ok is false when none.
func (q *queue[T]) oldest() (uint64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var k uint64
	ok := false
	if q.lenLocked() > 0 {
		k, ok = q.key(&q.items[q.head]), true
	}
	for o := range q.open {
		if !ok || o < k {
			k, ok = o, true
		}
	}
	return k, ok
}

func (q *queue[T]) stats() (int64, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(q.lenLocked()), q.bytes + q.inflight
}

func (q *queue[T]) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.avail)
		close(q.space)
		q.avail = make(chan struct{})
		q.space = make(chan struct{})
	}
}
