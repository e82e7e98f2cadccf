package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// WholeMatch returns re matching whole strings only, as Java's Matcher.matches() that
// Flume's and Kafka's patterns (header names, topic subscriptions) are applied with.
func WholeMatch(re *regexp.Regexp) *regexp.Regexp {
	return regexp.MustCompile(`^(?:` + re.String() + `)$`)
}

// Interceptor sees events between a source and its channels; it may change headers or
// bodies and may drop events (the returned slice).
type Interceptor interface {
	Intercept(evs []Event) []Event
}

// Selector picks, per event, the channels (indexes into Processor.Channels) an event
// must go to and the ones it may go to (a failed optional put is only counted).
type Selector interface {
	Select(e *Event) (required, optional []int)
}

// Processor is Flume's channel processor: what a source hands its batches to. It runs
// the interceptor chain, then puts each event into the channels its selector picks.
type Processor struct {
	Interceptors []Interceptor
	Channels     []Channel
	// Selector nil means replicating to every channel, all required.
	Selector Selector
	// C counts received, accepted, rejected (filtered out), bad_input (error header)
	// and optional_failed.
	C *Counters

	ids idSource
}

// idSource names the events that reach the channels without an event_id (socket
// sources: tcp, syslog, http; file sources set ids from the file and offset). The id is
// set once, before the channel, so a copy made later — a channel batch redelivered
// after a failed delivery or a crash, a producer retry — carries the same id and the
// streaming engine drops it (dedup_by_event_id). A random prefix per processor keeps
// ids unique across restarts and collectors.
type idSource struct {
	once   sync.Once
	prefix string
	n      atomic.Uint64
}

func (s *idSource) next() string {
	s.once.Do(func() {
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		s.prefix = hex.EncodeToString(b[:]) + "-"
	})
	return s.prefix + strconv.FormatUint(s.n.Add(1), 16)
}

// Put delivers a batch, waiting for room. It returns nil once every required channel
// holds its events.
func (p *Processor) Put(ctx context.Context, evs []Event) error { return p.put(ctx, evs, true) }

// TryPut is Put that fails with ErrFull instead of waiting (the http source turns that
// into 503).
func (p *Processor) TryPut(evs []Event) error { return p.put(context.Background(), evs, false) }

func (p *Processor) put(ctx context.Context, evs []Event, wait bool) error {
	n := len(evs)
	p.C.Add("received", int64(n))
	for _, ic := range p.Interceptors {
		evs = ic.Intercept(evs)
	}
	if dropped := n - len(evs); dropped > 0 {
		p.C.Add("rejected", int64(dropped))
	}
	bad := 0
	for i := range evs {
		if evs[i].Headers.Get(HeaderError) != "" {
			bad++
		}
		if _, ok := evs[i].Headers.Lookup(HeaderEventID); !ok {
			evs[i].SetHeader(HeaderEventID, p.ids.next())
		}
	}
	if len(evs) == 0 {
		return nil
	}
	doPut := func(c Channel, batch []Event) error {
		if wait {
			return c.Put(ctx, batch)
		}
		return c.TryPut(batch)
	}
	if p.Selector == nil {
		for _, c := range p.Channels {
			if err := doPut(c, evs); err != nil {
				return fmt.Errorf("cannot put %d events into channel %s: %w", len(evs), c.Name(), err)
			}
		}
	} else {
		req := make([][]Event, len(p.Channels))
		opt := make([][]Event, len(p.Channels))
		for i := range evs {
			r, o := p.Selector.Select(&evs[i])
			for _, j := range r {
				req[j] = append(req[j], evs[i])
			}
			for _, j := range o {
				opt[j] = append(opt[j], evs[i])
			}
		}
		for j, batch := range req {
			if len(batch) == 0 {
				continue
			}
			if err := doPut(p.Channels[j], batch); err != nil {
				return fmt.Errorf("cannot put %d events into channel %s: %w", len(batch), p.Channels[j].Name(), err)
			}
		}
		for j, batch := range opt {
			if len(batch) > 0 {
				if err := p.Channels[j].TryPut(batch); err != nil {
					p.C.Add("optional_failed", int64(len(batch)))
				}
			}
		}
	}
	p.C.Add("accepted", int64(len(evs)))
	p.C.Add("bad_input", int64(bad))
	return nil
}

// PutRetrying is Put for a source that must not drop a batch: it waits for room and
// retries a refused put (a file channel on a nearly full disk; counted as put_failures
// and logged with args) after a backoff, each try with a fresh copy of evs, as
// interceptors change events in place. It gives up, returning the error, only when a
// channel is closed or ctx ends. A retry puts the batch again into every channel, so
// with several required channels one that took it before holds it twice (at-least-once).
func (p *Processor) PutRetrying(ctx context.Context, evs []Event, log *slog.Logger, args ...any) error {
	backoff := Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		err := p.Put(ctx, copyEvents(evs))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return err
		}
		p.C.Add("put_failures", 1)
		log.Warn("source cannot put into the channel, will retry", append(args, "err", err)...)
		if !Sleep(ctx, backoff.Next()) {
			return ctx.Err()
		}
	}
}

// Replicating sends every event to all channels; Optional ones may fail.
type Replicating struct {
	Required, Optional []int
}

func (r *Replicating) Select(*Event) ([]int, []int) { return r.Required, r.Optional }

// Multiplexing routes by one header's value (Flume's multiplexing selector). A mapping
// for "*" takes every event whose header is set but has no mapping of its own, so
// `header: error, mapping.*: dead` sends all bad input to a dead-letter channel.
type Multiplexing struct {
	Header   string
	Mapping  map[string][]int
	Optional map[string][]int
	Default  []int
}

func (m *Multiplexing) Select(e *Event) ([]int, []int) {
	v, ok := e.Headers.Lookup(m.Header)
	if r, hit := m.Mapping[v]; ok && hit {
		return r, m.Optional[v]
	}
	if r, hit := m.Mapping["*"]; ok && v != "" && hit {
		return r, m.Optional["*"]
	}
	return m.Default, m.Optional[v]
}
