package sink

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

// LoadBalance is Flume's load_balance sink processor: each batch goes to one sink, picked
// in turn (round_robin) or at random (random); if it fails, the batch is offered to the
// others in the same order before the take is rolled back. With backoff, a failed sink
// is left out for a time that doubles from one second up to maxTimeOut
// (processor.selector.maxTimeOut), unless every sink is left out.
type LoadBalance struct {
	name    string
	sinks   []ingest.Sink
	random  bool
	backoff bool
	pen     *penalties
	log     *slog.Logger
	now     func() time.Time

	mu   sync.Mutex
	next int
	rng  *rand.Rand
}

// NewLoadBalance builds the processor; selector is "round_robin" or "random".
func NewLoadBalance(name string, sinks []ingest.Sink, selector string, backoff bool, maxTimeOut time.Duration, log *slog.Logger) *LoadBalance {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &LoadBalance{name: name, sinks: sinks, random: selector == "random", backoff: backoff,
		pen: newPenalties(maxTimeOut), log: log, now: time.Now, rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
}

func (l *LoadBalance) Name() string { return l.name }

func (l *LoadBalance) Deliver(ctx context.Context, evs []ingest.Event) error {
	return deliverInOrder(ctx, l.name, l.sinks, l.order(), l.pen, l.backoff, l.now(), l.log, "trying the next", evs)
}

// order is the sinks to offer this batch to: the selector's pick first.
func (l *LoadBalance) order() []int {
	n := len(l.sinks)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.random {
		return l.rng.Perm(n)
	}
	out := make([]int, n)
	for i := range out {
		out[i] = (l.next + i) % n
	}
	l.next = (l.next + 1) % n
	return out
}

// Close closes every sink.
func (l *LoadBalance) Close() error { return closeAll(l.sinks) }
