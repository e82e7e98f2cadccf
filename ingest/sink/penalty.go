package sink

import (
	"sync"
	"time"
)

// penalties is the backoff a sink group keeps per member sink: a failure penalizes the
// sink for a time that starts at one second and doubles, up to max; a success clears it
// (Flume's failover penalty and load_balance backoff).
type penalties struct {
	max time.Duration

	mu    sync.Mutex
	until map[int]time.Time
	pen   map[int]time.Duration
}

func newPenalties(max time.Duration) *penalties {
	if max <= 0 {
		max = 30 * time.Second
	}
	return &penalties{max: max, until: map[int]time.Time{}, pen: map[int]time.Duration{}}
}

// active says whether sink i is penalized at now.
func (p *penalties) active(i int, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return now.Before(p.until[i])
}

// ok clears sink i's penalty.
func (p *penalties) ok(i int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.until, i)
	delete(p.pen, i)
}

// failed penalizes sink i from now and returns for how long.
func (p *penalties) failed(i int, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := min(p.pen[i]*2+time.Second, p.max)
	p.pen[i], p.until[i] = d, now.Add(d)
	return d
}
