package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

// Failover is Flume's failover sink processor: batches go to the highest-priority sink
// that is not penalized; a failing sink is penalized for a backoff that doubles up to
// MaxPenalty, and the batch is retried on the next sink.
type Failover struct {
	name  string
	sinks []ingest.Sink
	pen   *penalties
	log   *slog.Logger
	now   func() time.Time
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
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Failover{name: name, sinks: ordered, pen: newPenalties(maxPenalty), log: log, now: time.Now}
}

func (f *Failover) Name() string { return f.name }

func (f *Failover) Deliver(ctx context.Context, evs []ingest.Event) error {
	order := make([]int, len(f.sinks))
	for i := range order {
		order[i] = i
	}
	return deliverInOrder(ctx, f.name, f.sinks, order, f.pen, true, f.now(), f.log, "failing over", evs)
}

// Close closes every sink.
func (f *Failover) Close() error { return closeAll(f.sinks) }

// deliverInOrder offers the batch to sinks in order until one takes it. With skip, a
// penalized sink is passed over, unless every sink is: then all are tried anyway (a
// batch is never refused for penalties alone). A failure penalizes the sink.
func deliverInOrder(ctx context.Context, group string, sinks []ingest.Sink, order []int, pen *penalties, skip bool,
	now time.Time, log *slog.Logger, action string, evs []ingest.Event) error {
	var errs []error
	tried := 0
	for pass := 0; pass < 2 && tried == 0; pass++ {
		for _, i := range order {
			if skip && pass == 0 && pen.active(i, now) {
				continue
			}
			tried++
			err := sinks[i].Deliver(ctx, evs)
			if err == nil {
				pen.ok(i)
				return nil
			}
			p := pen.failed(i, now)
			log.Warn("sink failed, "+action, "group", group, "sink", sinks[i].Name(), "penalty", p, "err", err)
			errs = append(errs, err)
		}
	}
	return fmt.Errorf("sink group %s: every sink failed: %w", group, errors.Join(errs...))
}

func closeAll(sinks []ingest.Sink) error {
	var errs []error
	for _, s := range sinks {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
