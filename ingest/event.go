package ingest

import (
	"context"
	"errors"
	"time"
)

// Event is one unit of data flowing through an agent: a body (one line, usually) and
// string headers, as in Flume.
type Event struct {
	Headers map[string]string
	Body    []byte
}

// Size is the event's weight for channel byte bounds: body plus headers.
func (e *Event) Size() int {
	n := len(e.Body)
	for k, v := range e.Headers {
		n += len(k) + len(v)
	}
	return n
}

// SetHeader sets a header, allocating the map when needed.
func (e *Event) SetHeader(k, v string) {
	if e.Headers == nil {
		e.Headers = make(map[string]string, 4)
	}
	e.Headers[k] = v
}

// Well-known headers.
const (
	// HeaderError marks an event that was delivered although its input was bad (over-long
	// line, invalid UTF-8, binary data, unparsable syslog); the value says why. A kafka
	// sink with a dead_letter_topic sends such events there.
	HeaderError = "error"
	// HeaderKey is the Kafka record key (a user id), so a user's events share a partition.
	HeaderKey = "key"
	// HeaderTopic overrides the sink's topic for one event.
	HeaderTopic = "topic"
	// HeaderFile is the source file of a spooldir/taildir event (when enabled).
	HeaderFile = "file"
	// HeaderEventID is a stable id of a line read from a file: the same line read again
	// (after a collector crash, a redelivered channel batch or a producer retry when the
	// broker died before acknowledging) gets the same id, so the streaming engine can
	// drop the copy (dedup_by_event_id). Sources set it; it goes out as a record header.
	HeaderEventID = "event_id"
)

// ErrFull is returned by Channel.TryPut when the channel has no room.
var ErrFull = errors.New("channel is full")

// ErrClosed is returned by a closed channel.
var ErrClosed = errors.New("channel is closed")

// Channel is the durable (or not) queue between sources and sinks. A Put is one
// transaction: all events are accepted or none. A Take returns a Tx whose events stay in
// the channel until Commit; Rollback gives them back, at the head, in order.
type Channel interface {
	Name() string
	// Put blocks until there is room for all events or ctx ends. When it returns nil the
	// events are as durable as the channel promises (file channel: fsynced).
	Put(ctx context.Context, evs []Event) error
	// TryPut is Put that fails with ErrFull (wrapped) instead of waiting.
	TryPut(evs []Event) error
	// Take waits until at least one event is available (or ctx ends) and returns up to max.
	Take(ctx context.Context, max int) (Tx, error)
	// Stats reports fill for metrics.
	Stats() ChannelStats
	Close() error
}

// Tx is a take transaction.
type Tx interface {
	Events() []Event
	Commit() error
	Rollback()
}

// ChannelStats is a channel's fill.
type ChannelStats struct {
	Events        int64
	Bytes         int64
	CapacityBytes int64
}

// Sink delivers a batch. It returns nil only when every event was acknowledged by the
// destination; on error the caller rolls the take back and retries later.
type Sink interface {
	Name() string
	Deliver(ctx context.Context, evs []Event) error
	Close() error
}

// Backoff is an exponential backoff between Min and Max.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the next wait and doubles it.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	}
	d := b.cur
	b.cur *= 2
	if b.cur > b.Max {
		b.cur = b.Max
	}
	return d
}

// Reset goes back to Min.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d or until ctx ends; it reports whether the full wait elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
