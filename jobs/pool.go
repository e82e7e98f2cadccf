package jobs

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Pools (Airflow's): named sets of slots that cap how many runs of the jobs in them run
// at once in one process, whatever their schedule. A job names its pool (`pool:`,
// default DefaultPool) and how many slots a run takes (`pool_slots:`, default 1); a run
// starts only when its pool has that many free. DefaultPool has the scheduler's
// Parallelism slots unless Defaults.Pools sizes it. The scheduler's runs, its manual
// runs and its backfills share the pools; another process (a `tagpipe jobs backfill`)
// has its own.

// DefaultPool is the pool of jobs that name none (Airflow's default_pool).
const DefaultPool = "default_pool"

// pools counts the slots in use per pool.
type pools struct {
	mu    sync.Mutex
	size  map[string]int
	used  map[string]int
	freed chan struct{} // closed (and replaced) when slots are released
}

func newPools(size map[string]int) *pools {
	return &pools{size: size, used: map[string]int{}, freed: make(chan struct{})}
}

// tryAcquire takes n slots of pool if they are free.
func (p *pools) tryAcquire(pool string, n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.used[pool]+n > p.size[pool] {
		return false
	}
	p.used[pool] += n
	return true
}

// release gives n slots of pool back and wakes whoever waits for slots.
func (p *pools) release(pool string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used[pool] -= n
	close(p.freed)
	p.freed = make(chan struct{})
}

// changed is closed at the next release; take it before trying to acquire, so a release
// in between is not missed.
func (p *pools) changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.freed
}

// checkPool resolves def's pool and pool_slots against the pools Compile was given
// (sizes; DefaultPool may be missing: the scheduler sizes it), reporting through fail.
func (j *Job) checkPool(sizes map[string]int, fail func(job, field, format string, args ...any)) {
	j.pool, j.poolSlots = j.Pool, j.PoolSlots
	if j.pool == "" {
		j.pool = DefaultPool
	}
	if j.poolSlots == 0 {
		j.poolSlots = 1
	}
	size, ok := sizes[j.pool]
	if !ok && j.pool != DefaultPool {
		names := []string{DefaultPool}
		for n := range sizes {
			if n != DefaultPool {
				names = append(names, n)
			}
		}
		sort.Strings(names[1:])
		fail(j.Name, "pool", "unknown pool %q (jobs.pools has %s)", j.pool, strings.Join(names, ", "))
		return
	}
	switch {
	case j.poolSlots < 0:
		fail(j.Name, "pool_slots", "must be > 0, got %d", j.PoolSlots)
	case ok && j.poolSlots > size:
		fail(j.Name, "pool_slots", "%d is more than pool %q's %d slots: it could never run", j.poolSlots, j.pool, size)
	}
}

// poolSizes is the scheduler's pools: the DAG's, with DefaultPool sized parallelism
// unless the DAG sizes it. A job whose pool_slots exceed DefaultPool's size is refused.
func poolSizes(dag *DAG, parallelism int) (map[string]int, error) {
	sizes := map[string]int{DefaultPool: parallelism}
	for n, v := range dag.pools {
		sizes[n] = v
	}
	for _, name := range dag.order {
		j := dag.jobs[name]
		if j.pool == DefaultPool && j.poolSlots > sizes[DefaultPool] {
			return nil, &DefError{Job: name, Field: "pool_slots", Reason: fmt.Sprintf("%d is more than pool %q's %d slots (the scheduler's parallelism): it could never run",
				j.poolSlots, DefaultPool, sizes[DefaultPool])}
		}
	}
	return sizes, nil
}
