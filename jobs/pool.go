package jobs

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Pools (Airflow's): named sets of slots that cap how many runs of the jobs in them run
// at once, whatever their schedule. A job names its pool (`pool:`, default DefaultPool)
// and how many slots a run takes (`pool_slots:`, default 1); a run starts only when its
// pool has that many free.
//
// A pool sized in jobs.pools is shared by every process on the data dir, as Airflow's
// pools live in its metadata DB: its slots are the files <dir>/pools/<pool>/slot-<i>
// (i < size), and a run holds an exclusive flock on one per slot it takes. The kernel
// drops a dead process's locks (kill -9 included), so no stale count can build up; the
// slot files are passed to the task's processes as the run lock is, so orphans of a
// killed scheduler keep their slots until they exit. DefaultPool, unless jobs.pools
// sizes it, has the scheduler's Parallelism slots and is this process's alone
// (parallelism is per scheduler in Airflow too).
//
// Each Scheduler also counts its own holds: a pool it fills itself is refused without
// touching a file, and its own releases wake its waiters at once; slots other processes
// free are seen by polling (Options.PoolPollInterval).
//
// The runs waiting for a pool's slots form a queue ranked by priority (priority.go): a
// run refused for want of slots keeps its place, and a run ranked after it is refused
// too, though enough slots for it may be free, so a run taking several slots is not
// starved by a stream of one-slot runs. Within one Scheduler the queue is in memory
// (pools.waiting: the scheduler's runs, a backfill's and manual runs'). For a shared
// pool each waiting run also holds a waiter file (pool_wait.go), and a run is refused
// while another process's live waiter ranks before it: the queue is the data dir's,
// as Airflow's one scheduler ranks every queued task instance of a pool.

// DefaultPool is the pool of jobs that name none (Airflow's default_pool).
const DefaultPool = "default_pool"

// pools hands out one Scheduler's pool slots.
type pools struct {
	dir    string          // <jobs dir>/pools
	size   map[string]int  // this process's sizes (its config)
	shared map[string]bool // pools whose slots are slot files
	mu     sync.Mutex
	used   map[string]int // slots this Scheduler holds
	freed  chan struct{}  // closed (and replaced) when this Scheduler releases slots or its queue shortens
	// waiting is, per pool, the runs of this process refused for want of its slots.
	waiting map[string][]*slotWaiter
}

// slotWaiter is one run waiting in a pool's queue.
type slotWaiter struct {
	q    *slotQueue
	rank rank
	gen  uint64    // q's round that last refused it
	file *waitFile // its waiter file (shared pools)
}

// slotQueue is one party that takes slots for ranked runs — the scheduler's loop, a
// backfill, a manual run — and its place in the pools' queues. Each pass over its runs
// is a round (begin, take…, end): its runs refused in the round wait in their pools'
// queues, and at end those it did not try again (started, or held back by something
// else: a dependency, max_active_runs) leave them.
type slotQueue struct {
	p   *pools
	gen uint64
}

// poolHold is the slots one run holds.
type poolHold struct {
	pool  string
	n     int
	files []*os.File // shared pool: the locked slot files
}

func newPools(dir string, size map[string]int, shared map[string]bool) *pools {
	return &pools{dir: filepath.Join(dir, "pools"), size: size, shared: shared, used: map[string]int{}, freed: make(chan struct{}),
		waiting: map[string][]*slotWaiter{}}
}

// queue is a new party in the pools' queues.
func (p *pools) queue() *slotQueue { return &slotQueue{p: p} }

// begin starts a round.
func (q *slotQueue) begin() {
	q.p.mu.Lock()
	defer q.p.mu.Unlock()
	q.gen++
}

// end drops q's runs not refused in this round from the queues, waking whoever waits
// behind them.
func (q *slotQueue) end() {
	p := q.p
	p.mu.Lock()
	defer p.mu.Unlock()
	dropped := false
	for pool, ws := range p.waiting {
		kept := ws[:0]
		for _, w := range ws {
			if w.q == q && w.gen != q.gen {
				w.file.leave()
				dropped = true
				continue
			}
			kept = append(kept, w)
		}
		if len(kept) == 0 {
			delete(p.waiting, pool)
		} else {
			p.waiting[pool] = kept
		}
	}
	if dropped {
		p.wakeLocked()
	}
}

// close takes q's runs out of every queue.
func (q *slotQueue) close() {
	q.begin()
	q.end()
}

// take is tryAcquire for the run rk of q, in its pool's queue: refused while a run of
// this Scheduler ranked before it waits for slots of the pool, or, for a shared pool,
// while another's live waiter file does. A refused run waits in the queue (with a
// waiter file of its own, for a shared pool) until it gets its slots or q's round ends
// without trying it again. others is as for tryAcquire, and true when another
// Scheduler's waiter holds it back (only polling sees it leave); false when a run of
// this one does (that run's start or leaving wakes it).
func (q *slotQueue) take(rk rank, pool string, n int, who string) (h *poolHold, others bool, err error) {
	p := q.p
	p.mu.Lock()
	defer p.mu.Unlock()
	var me *slotWaiter
	ahead := false
	for _, w := range p.waiting[pool] {
		switch {
		case w.q == q && w.rank.job == rk.job && w.rank.logical.Equal(rk.logical):
			me = w
		case w.rank.before(rk):
			ahead = true
		}
	}
	if !ahead && p.shared[pool] {
		var mine, reg string
		if me != nil && me.file != nil {
			mine, reg = filepath.Base(me.file.path), me.file.reg
		}
		if ahead, err = liveWaiterBefore(filepath.Join(p.dir, pool), rk, reg, mine); err != nil {
			return nil, false, fmt.Errorf("cannot read the waiters of pool %q: %w", pool, err)
		}
		others = ahead
	}
	if !ahead {
		if h, others, err = p.acquireLocked(pool, n, who); err != nil {
			return nil, false, err
		}
	}
	if h != nil {
		if me != nil {
			p.unwaitLocked(pool, me)
			// The runs behind it may fit in what is left.
			p.wakeLocked()
		}
		return h, false, nil
	}
	if me == nil {
		me = &slotWaiter{q: q, rank: rk}
		if p.shared[pool] {
			if me.file, err = registerWait(filepath.Join(p.dir, pool), rk, who); err != nil {
				return nil, false, fmt.Errorf("cannot wait for slots of pool %q: %w", pool, err)
			}
		}
		p.waiting[pool] = append(p.waiting[pool], me)
	}
	me.gen = q.gen
	return nil, others, nil
}

func (p *pools) unwaitLocked(pool string, me *slotWaiter) {
	me.file.leave()
	ws := p.waiting[pool]
	for i, w := range ws {
		if w == me {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(p.waiting, pool)
	} else {
		p.waiting[pool] = ws
	}
}

// wakeLocked wakes whoever waits for slots (p.mu held).
func (p *pools) wakeLocked() {
	close(p.freed)
	p.freed = make(chan struct{})
}

// tryAcquire takes n slots of pool for the run who ("job ts", written into the slot
// files) if they are free; nil if not. others says the slots were refused though this
// Scheduler holds few enough: other processes (or schedulers) hold them, and only
// polling will see them freed.
func (p *pools) tryAcquire(pool string, n int, who string) (h *poolHold, others bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acquireLocked(pool, n, who)
}

func (p *pools) acquireLocked(pool string, n int, who string) (h *poolHold, others bool, err error) {
	size := p.size[pool]
	if p.used[pool]+n > size {
		return nil, false, nil
	}
	h = &poolHold{pool: pool, n: n}
	if p.shared[pool] {
		files, err := lockSlots(filepath.Join(p.dir, pool), size, n, who)
		if err != nil {
			return nil, false, fmt.Errorf("cannot take slots of pool %q: %w", pool, err)
		}
		if files == nil {
			return nil, true, nil
		}
		h.files = files
	}
	p.used[pool] += n
	return h, false, nil
}

// release gives the slots of h back and wakes whoever waits for slots.
func (p *pools) release(h *poolHold) {
	for _, f := range h.files {
		unlockFile(f)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.used[h.pool] -= h.n
	p.wakeLocked()
}

// changed is closed at the next release; take it before trying to acquire, so a release
// in between is not missed.
func (p *pools) changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.freed
}

// lockSlots takes n of the size slot files in d, all or none (nil: not enough free). It
// never waits, so runs taking several slots cannot deadlock. Slots numbered size or more
// (taken while the pool was bigger, before its config was edited) that are still held
// count against size: after a shrink no new run starts until the pool is below its new
// size, as Airflow's open slots go negative.
func lockSlots(d string, size, n int, who string) ([]*os.File, error) {
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	above, err := poolUsage(d, size)
	if err != nil {
		return nil, err
	}
	extra := above.Used
	var held []*os.File
	drop := func() {
		for _, f := range held {
			unlockFile(f)
		}
	}
	spare := 0 // free slots beyond the n taken
	for i := 0; i < size && (len(held) < n || spare < extra); i++ {
		f, ok, err := tryLockFile(slotPath(d, i))
		if err != nil {
			drop()
			return nil, err
		}
		switch {
		case !ok:
		case len(held) < n:
			held = append(held, f)
		default:
			unlockFile(f)
			spare++
		}
	}
	if len(held) < n || spare < extra {
		drop()
		return nil, nil
	}
	for _, f := range held {
		// Who holds it, for `tagpipe jobs pools`; the lock, not this text, is the truth.
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(who+"\n"), 0)
		}
	}
	return held, nil
}

func slotPath(d string, i int) string { return filepath.Join(d, "slot-"+strconv.Itoa(i)) }

// slotsFrom lists the numbers >= from of the slot files in d.
func slotsFrom(d string, from int) ([]int, error) {
	ents, err := os.ReadDir(d)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		if v, ok := strings.CutPrefix(e.Name(), "slot-"); ok {
			if i, err := strconv.Atoi(v); err == nil && i >= from {
				out = append(out, i)
			}
		}
	}
	sort.Ints(out)
	return out, nil
}

// slotUsage is what a shared pool's slot files say: how many any process holds, and
// who ("slot-<i>: host:pid job/ts").
type slotUsage struct {
	Used    int
	Holders []string
}

// poolUsage probes the slot files in d numbered from or more (0: all, those above the
// pool's size too).
func poolUsage(d string, from int) (slotUsage, error) {
	var u slotUsage
	all, err := slotsFrom(d, from)
	if err != nil {
		return u, err
	}
	for _, i := range all {
		busy, who, err := probeSlot(d, i)
		if err != nil {
			return u, err
		}
		if busy {
			u.Used++
			u.Holders = append(u.Holders, fmt.Sprintf("slot-%d: %s", i, who))
		}
	}
	return u, nil
}

// probeSlot says whether slot i of d is held (by any process, this one included), and
// by whom as its holder wrote it. Probing takes the lock for an instant: a run trying
// the slot just then finds it busy and looks again at its next poll.
func probeSlot(d string, i int) (busy bool, who string, err error) {
	f, ok, err := tryLockFile(slotPath(d, i))
	if err != nil {
		return false, "", err
	}
	if ok {
		unlockFile(f)
		return false, "", nil
	}
	b, _ := os.ReadFile(slotPath(d, i))
	return true, strings.TrimSpace(string(b)), nil
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

// poolSizes is the scheduler's pools: the DAG's, shared across processes, with
// DefaultPool sized parallelism and per process unless the DAG sizes it. A job whose
// pool_slots exceed DefaultPool's size is refused.
func poolSizes(dag *DAG, parallelism int) (sizes map[string]int, shared map[string]bool, err error) {
	sizes, shared = map[string]int{DefaultPool: parallelism}, map[string]bool{}
	for n, v := range dag.pools {
		sizes[n], shared[n] = v, true
	}
	for _, name := range dag.order {
		j := dag.jobs[name]
		if j.pool == DefaultPool && j.poolSlots > sizes[DefaultPool] {
			return nil, nil, &DefError{Job: name, Field: "pool_slots", Reason: fmt.Sprintf("%d is more than pool %q's %d slots (the scheduler's parallelism): it could never run",
				j.poolSlots, DefaultPool, sizes[DefaultPool])}
		}
	}
	return sizes, shared, nil
}
