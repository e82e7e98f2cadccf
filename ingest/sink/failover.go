package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

// Failover is Flume's failover sink processor: batches go to the highest-priority sink
// that is not penalized; a failing sink is penalized for a backoff that doubles up to
// MaxPenalty, and the batch is retried on the next sink.
type Failover struct {
	name       string
	sinks      []ingest.Sink
	maxPenalty time.Duration
	log        *slog.Logger
	now        func() time.Time

	mu    sync.Mutex
	until map[int]time.Time
	pen   map[int]time.Duration
}

// NewFailover orders sinks by priority (higher first; ties keep the given order).
func NewFailover(name string, sinks []ingest.Sink, priorities []int, maxPenalty time.Duration, log *slog.Logger) *Failover {
	idx := make([]int, len(sinks))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return priorities[idx[a]] > priorities[idx[b]] })
	ordered := make([]ingest.Sink, len(sinks))
	for i, j := range idx {
		ordered[i] = sinks[j]
	}
	if maxPenalty <= 0 {
		maxPenalty = 30 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Failover{name: name, sinks: ordered, maxPenalty: maxPenalty, log: log, now: time.Now,
		until: map[int]time.Time{}, pen: map[int]time.Duration{}}
}

func (f *Failover) Name() string { return f.name }

func (f *Failover) Deliver(ctx context.Context, evs []ingest.Event) error {
	var errs []error
	now := f.now()
	tried := 0
	for pass := 0; pass < 2 && tried == 0; pass++ {
		for i, s := range f.sinks {
			f.mu.Lock()
			penalized := now.Before(f.until[i])
			f.mu.Unlock()
			if penalized && pass == 0 {
				continue
			}
			tried++
			err := s.Deliver(ctx, evs)
			f.mu.Lock()
			if err == nil {
				delete(f.until, i)
				delete(f.pen, i)
				f.mu.Unlock()
				return nil
			}
			p := f.pen[i]*2 + time.Second
			if p > f.maxPenalty {
				p = f.maxPenalty
			}
			f.pen[i], f.until[i] = p, now.Add(p)
			f.mu.Unlock()
			f.log.Warn("sink failed, failing over", "group", f.name, "sink", s.Name(), "penalty", p, "err", err)
			errs = append(errs, err)
		}
	}
	return fmt.Errorf("sink group %s: every sink failed: %w", f.name, errors.Join(errs...))
}

// Close closes every sink.
func (f *Failover) Close() error {
	var errs []error
	for _, s := range f.sinks {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
