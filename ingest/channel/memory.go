package channel

import (
	"context"

	"github.com/tagpipe/tagpipe/ingest"
)

// MemoryOptions configure a Memory channel.
type MemoryOptions struct {
	// Capacity is the most events held (taken-but-uncommitted ones included); 0 = 10000.
	Capacity int
	// CapacityBytes bounds the events' bytes; 0 = unbounded.
	CapacityBytes int64
}

// DefaultMemoryOptions returns Flume's memory channel defaults.
func DefaultMemoryOptions() MemoryOptions { return MemoryOptions{Capacity: 10000} }

// Memory is a bounded in-memory channel. Its events are lost when the process dies.
type Memory struct {
	name string
	q    *queue[ingest.Event]
	opts MemoryOptions
}

// NewMemory returns an empty memory channel.
func NewMemory(name string, opts MemoryOptions) *Memory {
	if opts.Capacity <= 0 {
		opts.Capacity = 10000
	}
	return &Memory{name: name, opts: opts,
		q: newQueue(opts.Capacity, opts.CapacityBytes, func(e *ingest.Event) int64 { return int64(e.Size()) })}
}

func (m *Memory) Name() string { return m.name }

func (m *Memory) Put(ctx context.Context, evs []ingest.Event) error { return m.put(ctx, true, evs) }

func (m *Memory) TryPut(evs []ingest.Event) error { return m.put(context.Background(), false, evs) }

func (m *Memory) put(ctx context.Context, wait bool, evs []ingest.Event) error {
	if len(evs) == 0 {
		return nil
	}
	var b int64
	for i := range evs {
		b += int64(evs[i].Size())
	}
	if err := m.q.reserve(ctx, wait, len(evs), b); err != nil {
		return err
	}
	m.q.push(evs, len(evs), b) // push copies the events into the queue
	return nil
}

func (m *Memory) Take(ctx context.Context, max int) (ingest.Tx, error) {
	evs, b, err := m.q.take(ctx, max)
	if err != nil {
		return nil, err
	}
	return &memTx{q: m.q, evs: evs, b: b}, nil
}

func (m *Memory) Stats() ingest.ChannelStats {
	n, b := m.q.stats()
	return ingest.ChannelStats{Events: n, Bytes: b, CapacityBytes: m.opts.CapacityBytes}
}

// Close wakes blocked puts and takes; events still held are dropped.
func (m *Memory) Close() error { m.q.close(); return nil }

type memTx struct {
	q    *queue[ingest.Event]
	evs  []ingest.Event
	b    int64
	done bool
}

func (t *memTx) Events() []ingest.Event { return t.evs }

func (t *memTx) Commit() error {
	if !t.done {
		t.done = true
		t.q.done(t.evs, t.b, false)
	}
	return nil
}

func (t *memTx) Rollback() {
	if !t.done {
		t.done = true
		t.q.done(t.evs, t.b, true)
	}
}
