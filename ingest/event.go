package ingest

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"
)

// Event is one unit of data flowing through an agent: a body (one line, usually) and
// string headers, as in Flume.
type Event struct {
	Headers Headers
	Body    []byte
}

// Header is one event header.
type Header struct{ Key, Value string }

// Headers are an event's headers in the order they were set, each key once. An event has
// a handful, so a slice searched linearly is cheaper than a map, and sources hand out
// its room from a per-batch slab (Slab.LineEvent): no allocation per event.
type Headers []Header

// Get returns the value of header k, or "".
func (h Headers) Get(k string) string {
	for i := range h {
		if h[i].Key == k {
			return h[i].Value
		}
	}
	return ""
}

// Lookup returns the value of header k and whether it is set.
func (h Headers) Lookup(k string) (string, bool) {
	for i := range h {
		if h[i].Key == k {
			return h[i].Value, true
		}
	}
	return "", false
}

// HeadersOf turns a map into Headers sorted by key (config and JSON input have no order).
func HeadersOf(m map[string]string) Headers {
	if len(m) == 0 {
		return nil
	}
	h := make(Headers, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		h = append(h, Header{k, m[k]})
	}
	return h
}

// Map returns the headers as a map (for logs and tests).
func (h Headers) Map() map[string]string {
	m := make(map[string]string, len(h))
	for _, x := range h {
		m[x.Key] = x.Value
	}
	return m
}

// copyEvents copies a batch for one more put: interceptors change events in place (and
// a filter compacts the slice), so each try of a retried put gets fresh header lists.
// Bodies are shared: nothing changes them.
func copyEvents(evs []Event) []Event {
	out := make([]Event, len(evs))
	for i, e := range evs {
		out[i] = Event{Body: e.Body, Headers: slices.Clone(e.Headers)}
	}
	return out
}

// Size is the event's weight for channel byte bounds: body plus headers.
func (e *Event) Size() int {
	n := len(e.Body)
	for i := range e.Headers {
		n += len(e.Headers[i].Key) + len(e.Headers[i].Value)
	}
	return n
}

// SetHeader sets a header, replacing its value when it is already set.
func (e *Event) SetHeader(k, v string) {
	for i := range e.Headers {
		if e.Headers[i].Key == k {
			e.Headers[i].Value = v
			return
		}
	}
	e.Headers = append(e.Headers, Header{k, v})
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
	// HeaderEventID is a stable id of an event: a line read from a file gets the same id
	// when read again (after a collector crash), and every event keeps its id through a
	// redelivered channel batch or a producer retry when the broker died before
	// acknowledging, so the streaming engine can drop the copy (dedup_by_event_id). File
	// sources set it from the file and offset, the Processor gives one to events that
	// come without it; it goes out as a record header.
	HeaderEventID = "event_id"
	// HeaderBodyEncoding "base64" says a Flume JSON event's body is base64 (the http sink
	// sends bodies that are not UTF-8 so, as JSON strings cannot carry them); the http
	// source decodes it and drops the header.
	HeaderBodyEncoding = "tagpipe.body_encoding"
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
