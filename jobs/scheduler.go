package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
)

// Options configure a Scheduler. Zero values take DefaultOptions' value.
type Options struct {
	// Dir holds the history, run locks and attempt logs (<data_dir>/jobs). Required.
	Dir string
	Log *slog.Logger
	// Registry receives the scheduler's metrics; nil = not exported.
	Registry *prometheus.Registry
	// Now is the clock; tests inject one. Timers still run on the runtime's clock, so a
	// test shifts time with testing/synctest and Now = time.Now()+offset.
	Now func() time.Time
	// Parallelism caps concurrent runs over all jobs in this process.
	Parallelism int
	// PollInterval is how often the scheduler re-reads the history to see what other
	// schedulers did (and retries runs it found locked).
	PollInterval time.Duration
	// PoolPollInterval is how often a run waiting for slots of a shared pool (one sized
	// in jobs.pools) that other processes hold looks again; slots this scheduler frees
	// wake its waiters at once.
	PoolPollInterval time.Duration
	// Owner names this process in run records; default host:pid.
	Owner string
	// HistoryRetention: compaction drops finished runs older than this; 0 = keep all.
	HistoryRetention time.Duration
}

// DefaultOptions: Parallelism 4, PollInterval 30s, PoolPollInterval 500ms, Now time.Now.
func DefaultOptions() Options {
	return Options{Parallelism: 4, PollInterval: 30 * time.Second, PoolPollInterval: 500 * time.Millisecond, Now: time.Now}
}

// Scheduler runs a DAG's jobs on their schedules (Start/Stop), and runs single jobs and
// backfills on demand (RunNow, Backfill). Two schedulers on one Dir — in one process or
// in two — never run the same job+logical date twice: each run holds a flock and checks
// the shared history under it.
type Scheduler struct {
	opts    Options
	dag     *DAG
	store   *Store
	metrics *metrics
	pools   *pools // shared by scheduled runs, manual runs and backfills
	// queue is the scheduled runs' place in the pools' queues (owned by the loop).
	queue *slotQueue
	// poolWait: the last reconcile left a run waiting for slots other processes hold.
	poolWait bool

	// Dispatch state, owned by the loop goroutine.
	next     map[string]time.Time // job → next logical time to plan
	pending  []*pendingRun
	inflight map[string]bool
	active   map[string]int
	running  int
	// wakeAt is the earliest next poke of an up_for_reschedule run, or next try of an
	// up_for_retry one (zero = none).
	wakeAt time.Time

	cron    *cron.Cron
	wake    chan struct{}
	done    chan runResult
	stop    chan struct{}
	cancel  context.CancelFunc
	loopWG  sync.WaitGroup
	runWG   sync.WaitGroup
	mu      sync.Mutex
	started bool
	stopped bool
}

// maxPlanned caps the due runs of one job held pending at once.
const maxPlanned = 64

type pendingRun struct {
	job     *Job
	logical time.Time
	key     string
	// busy: another scheduler held its lock; try again at the next poll.
	busy bool
	// pastNoted: the wait for the run before it (depends_on_past) was logged.
	pastNoted bool
	// notBefore: up_for_reschedule (sensor_mode reschedule) or up_for_retry; poked or
	// tried again at this time, holding no slot until then.
	notBefore time.Time
}

type runResult struct {
	p   *pendingRun
	rec Record
	err error
}

// New opens the history in opts.Dir.
func New(dag *DAG, opts Options) (*Scheduler, error) {
	d := DefaultOptions()
	if opts.Dir == "" {
		return nil, fmt.Errorf("jobs: Options.Dir must be set")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = d.Now
	}
	if opts.Parallelism <= 0 {
		opts.Parallelism = d.Parallelism
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = d.PollInterval
	}
	if opts.PoolPollInterval <= 0 {
		opts.PoolPollInterval = d.PoolPollInterval
	}
	if opts.Owner == "" {
		host, _ := os.Hostname()
		opts.Owner = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	sizes, shared, err := poolSizes(dag, opts.Parallelism)
	if err != nil {
		return nil, err
	}
	store, err := OpenStore(opts.Dir, opts.Log)
	if err != nil {
		return nil, err
	}
	store.SetRetention(opts.HistoryRetention, opts.Now)
	pl := newPools(opts.Dir, sizes, shared)
	return &Scheduler{opts: opts, dag: dag, store: store, metrics: newMetrics(opts.Registry), pools: pl, queue: pl.queue(),
		next: map[string]time.Time{}, inflight: map[string]bool{}, active: map[string]int{},
		wake: make(chan struct{}, 1), done: make(chan runResult), stop: make(chan struct{})}, nil
}

func (s *Scheduler) now() time.Time { return s.opts.Now() }

// Store is the run history.
func (s *Scheduler) Store() *Store { return s.store }

// DAG is the scheduler's job set.
func (s *Scheduler) DAG() *DAG { return s.dag }

// Name implements lifecycle.Component.
func (s *Scheduler) Name() string { return "jobs" }

// cronLogger adapts slog to robfig/cron's Logger.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}

// shifted presents a job's schedule to robfig/cron on the runtime clock when Now is
// shifted (tests); with Now = time.Now the shift is zero.
type shifted struct {
	s *Scheduler
	j *Job
}

func (sh shifted) Next(t time.Time) time.Time {
	off := time.Until(sh.s.now())
	n := sh.j.sched.Next(t.Add(off))
	if n.IsZero() {
		return n
	}
	return n.Add(-off)
}

// Start plans every job from its history (catch-up) and starts the cron and the
// dispatch loop.
func (s *Scheduler) Start(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("jobs: scheduler already started")
	}
	s.started = true
	if err := s.store.Refresh(); err != nil {
		return err
	}
	now := s.now()
	for _, name := range s.dag.order {
		s.next[name] = s.firstPlan(s.dag.jobs[name], now)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	cl := cronLogger{s.opts.Log}
	s.cron = cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cl), cron.WithChain(cron.Recover(cl)))
	for _, name := range s.dag.order {
		j := s.dag.jobs[name]
		if j.Paused {
			continue
		}
		s.cron.Schedule(shifted{s, j}, cron.FuncJob(s.kick))
	}
	s.cron.Start()
	s.opts.Log.Info("scheduler started", "jobs", len(s.dag.order), "dir", s.opts.Dir, "parallelism", s.opts.Parallelism)
	s.loopWG.Add(1)
	go s.loop(ctx)
	s.kick()
	return nil
}

// kick asks the loop to look at the schedule now (cron ticks call it).
func (s *Scheduler) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// firstPlan says where planning of j resumes: at the oldest unfinished run the scheduler
// planned before, else after the newest one it planned, else at start_date, else at the
// interval in progress now.
func (s *Scheduler) firstPlan(j *Job, now time.Time) time.Time {
	if wm, ok := s.store.Watermark(j.Name); ok {
		from := j.sched.Next(wm)
		for _, r := range s.store.Runs(j.Name) {
			if r.Scheduled && !r.State.Terminal() && r.Logical.Before(from) {
				from = r.Logical
			}
		}
		return from
	}
	if !j.start.IsZero() {
		return j.sched.Next(j.start.Add(-time.Nanosecond))
	}
	if p := j.sched.Prev(now); !p.IsZero() {
		return p
	}
	return j.sched.Next(now)
}

func (s *Scheduler) loop(ctx context.Context) {
	defer s.loopWG.Done()
	defer s.queue.close()
	poll := time.NewTicker(s.opts.PollInterval)
	defer poll.Stop()
	freed := s.pools.changed() // taken before each reconcile: a release after it wakes the loop
	for {
		var repoke, poolPoll <-chan time.Time
		var repokeT, poolPollT *time.Timer
		if !s.wakeAt.IsZero() {
			repokeT = time.NewTimer(s.wakeAt.Sub(s.now()))
			repoke = repokeT.C
		}
		if s.poolWait {
			poolPollT = time.NewTimer(s.opts.PoolPollInterval)
			poolPoll = poolPollT.C
		}
		select {
		case <-s.stop:
			// Let running runs finish (Stop decides how long); collect their results.
			for s.running > 0 {
				r := <-s.done
				s.finish(r)
			}
			return
		case <-s.wake:
		case <-poll.C:
			for _, p := range s.pending {
				p.busy = false
			}
		case r := <-s.done:
			s.finish(r)
		case <-repoke:
		case <-freed:
		case <-poolPoll:
		}
		if repokeT != nil {
			repokeT.Stop()
		}
		if poolPollT != nil {
			poolPollT.Stop()
		}
		freed = s.pools.changed()
		s.reconcile(ctx)
	}
}

func (s *Scheduler) finish(r runResult) {
	s.running--
	s.active[r.p.job.Name]--
	delete(s.inflight, r.p.key)
	var rs *rescheduled
	switch {
	case errors.As(r.err, &rs):
		// Stays pending without a slot until its next poke or try.
		r.p.notBefore = rs.At
	case r.err == nil, errors.Is(r.err, errDone):
		s.dropPending(r.p.key)
	case errors.Is(r.err, errBusy):
		// Stays pending: the other scheduler may die; look again at the next poll.
		r.p.busy = true
	case errors.Is(r.err, errInterrupted):
		// Stays pending (and queued on disk) for the next start.
	default:
		// Lock or history trouble (disk full?): retry at the next poll, not in a loop.
		r.p.busy = true
		s.opts.Log.Error("run could not be started or recorded; will retry", "job", r.p.job.Name, "logical", r.p.logical, "err", r.err)
	}
}

func (s *Scheduler) dropPending(key string) {
	for i, p := range s.pending {
		if p.key == key {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			return
		}
	}
}

func (s *Scheduler) isPending(key string) bool {
	for _, p := range s.pending {
		if p.key == key {
			return true
		}
	}
	return false
}

// reconcile plans due runs and starts what can start.
func (s *Scheduler) reconcile(ctx context.Context) {
	select {
	case <-s.stop:
		return
	default:
	}
	// Runs refused slots this round wait in their pools' queues; the others leave them.
	s.queue.begin()
	defer s.queue.end()
	if err := s.store.Refresh(); err != nil {
		s.opts.Log.Error("cannot read run history", "err", err)
		return
	}
	now := s.now()
	paused := map[string]bool{}
	for _, name := range s.dag.order {
		j := s.dag.jobs[name]
		if paused[name] = s.paused(j); !paused[name] {
			s.plan(j, now)
		}
	}
	// Highest effective weight first, then the earlier logical date, then the name
	// (Airflow: priority_weight, then logical date): the first run that can start, does.
	sort.SliceStable(s.pending, func(a, b int) bool {
		pa, pb := s.pending[a], s.pending[b]
		return rankOf(pa.job, pa.logical).before(rankOf(pb.job, pb.logical))
	})
	blocked := map[string]bool{} // job has an earlier run still waiting: keep order
	s.poolWait = false
	// Runs up_for_reschedule or up_for_retry hold no parallelism or pool slot but count as
	// active runs of their job (max_active_runs), as a DAG run whose task waits so does.
	resting := map[string]int{}
	s.wakeAt = time.Time{}
	for _, p := range s.pending {
		if !s.inflight[p.key] && !p.notBefore.IsZero() {
			// A wait ends when the run's record no longer says it waits: cleared (queued
			// again: it runs now, as a cleared task instance does in Airflow) or marked
			// success or failed (dropped below), by tagpipe jobs clear / mark.
			if r, ok := s.store.Latest(p.job.Name, p.logical); ok && r.State != StateUpForRetry && r.State != StateUpForReschedule {
				p.notBefore = time.Time{}
			}
		}
		if !s.inflight[p.key] && p.notBefore.After(now) {
			resting[p.job.Name]++
			if s.wakeAt.IsZero() || p.notBefore.Before(s.wakeAt) {
				s.wakeAt = p.notBefore
			}
		}
	}
	for _, p := range append([]*pendingRun(nil), s.pending...) {
		if s.inflight[p.key] || p.busy || p.notBefore.After(now) {
			continue
		}
		j := p.job
		if r, ok := s.store.Latest(j.Name, p.logical); ok && r.State.Terminal() {
			s.dropPending(p.key) // another scheduler finished it
			continue
		}
		if blocked[j.Name] || paused[j.Name] {
			continue // a paused job's planned runs wait for its unpausing
		}
		ds := j.sched.DS(p.logical)
		switch v, why := s.upstreamState(j, ds); v {
		case verdictUpstreamFailed, verdictSkipped:
			st, msg, level := StateUpstreamFailed, "run not started: upstream failed", slog.LevelWarn
			if v == verdictSkipped {
				// Routine for some rules (a one_failed alert on a good day).
				st, msg, level = StateSkipped, "run skipped by its trigger_rule", slog.LevelInfo
			}
			rec := Record{Job: j.Name, DS: ds, Logical: p.logical, State: st,
				Trigger: TriggerScheduled, Scheduled: true, Error: why, Owner: s.opts.Owner, Updated: now}
			rec.keepTries(s.store)
			wrote, err := s.store.AppendIf(rec, notFinished)
			if err != nil {
				s.opts.Log.Error("cannot record run", "job", j.Name, "err", err)
				continue
			}
			if wrote {
				s.metrics.finished(rec)
			}
			s.opts.Log.Log(context.Background(), level, msg, "job", j.Name, "ds", ds, "trigger_rule", j.rule, "reason", why)
			s.dropPending(p.key)
			continue
		case verdictWait:
			blocked[j.Name] = true
			continue
		}
		if why := s.pastPending(j, p.logical); why != "" {
			if !p.pastNoted {
				s.opts.Log.Warn("run waits for the run before it (depends_on_past)", "job", j.Name, "ds", ds, "reason", why)
				p.pastNoted = true
			}
			blocked[j.Name] = true
			continue
		}
		if s.active[j.Name]+resting[j.Name] >= j.maxActiveRuns || s.running >= s.opts.Parallelism {
			blocked[j.Name] = true
			continue
		}
		hold, others, err := s.queue.take(rankOf(j, p.logical), j.pool, j.poolSlots, s.opts.Owner+" "+p.key)
		if err != nil {
			s.opts.Log.Error("run waits: cannot take its pool slots; will retry", "job", j.Name, "pool", j.pool, "err", err)
			p.busy, blocked[j.Name] = true, true
			continue
		}
		if hold == nil {
			s.poolWait = s.poolWait || others
			blocked[j.Name] = true
			continue
		}
		s.inflight[p.key] = true
		s.active[j.Name]++
		s.running++
		s.runWG.Add(1)
		go func(p *pendingRun) {
			defer s.runWG.Done()
			rec, err := s.execute(ctx, p.job, p.logical, TriggerScheduled, false, hold)
			s.pools.release(hold)
			s.done <- runResult{p: p, rec: rec, err: err}
		}(p)
	}
}

// plan turns every interval of j that has ended into a pending run and records the next
// one as scheduled.
func (s *Scheduler) plan(j *Job, now time.Time) {
	var due []time.Time
	if !j.CatchupOn {
		// Jump straight to the latest ended interval (a long outage of a per-second
		// schedule would otherwise walk millions of ticks).
		if l := s.next[j.Name]; !l.IsZero() {
			if end := j.sched.Next(l); !end.IsZero() && !end.After(now) {
				lastEnd := j.sched.Prev(now)
				if last := j.sched.Prev(lastEnd.Add(-time.Nanosecond)); !last.IsZero() && !last.Before(l) {
					if last.After(l) {
						s.opts.Log.Info("catchup off: skipping missed intervals", "job", j.Name, "from", l, "to", last)
					}
					due = append(due, last)
					s.next[j.Name] = lastEnd
				}
			}
		}
	}
	planned := 0
	for _, p := range s.pending {
		if p.job == j {
			planned++
		}
	}
	for {
		l := s.next[j.Name]
		if l.IsZero() {
			return
		}
		end := j.sched.Next(l)
		if end.IsZero() || end.After(now) {
			if _, ok := s.store.Latest(j.Name, l); !ok {
				s.record(j, l, StateScheduled, now)
			}
			break
		}
		if planned+len(due) >= maxPlanned {
			// A long backlog is planned a window at a time, as runs finish.
			break
		}
		due = append(due, l)
		s.next[j.Name] = end
	}
	// Runs cleared (tagpipe jobs clear) run again, however old.
	for _, r := range s.store.Cleared(j.Name) {
		if key := r.key(); !s.inflight[key] && !s.isPending(key) {
			s.pending = append(s.pending, &pendingRun{job: j, logical: r.Logical, key: key})
		}
	}
	for _, l := range due {
		key := j.Name + "/" + tsKey(l)
		if s.inflight[key] || s.isPending(key) {
			continue
		}
		r, ok := s.store.Latest(j.Name, l)
		if ok && r.State.Terminal() {
			continue
		}
		if !ok || r.State == StateScheduled {
			s.record(j, l, StateQueued, now)
		}
		p := &pendingRun{job: j, logical: l, key: key}
		if ok {
			// Planned again after a restart: its next poke or try is where the last one
			// left it.
			p.notBefore = j.resumeAt(r)
		}
		s.pending = append(s.pending, p)
	}
}

func (s *Scheduler) record(j *Job, l time.Time, st State, now time.Time) {
	rec := Record{Job: j.Name, DS: j.sched.DS(l), Logical: l, State: st, Trigger: TriggerScheduled,
		Scheduled: true, Owner: s.opts.Owner, Updated: now}
	// Conditional: another scheduler may have finished the run since our last read.
	if _, err := s.store.AppendIf(rec, notFinished); err != nil {
		s.opts.Log.Error("cannot record run", "job", j.Name, "err", err)
	}
}

func notFinished(prev Record, seen bool) bool { return !seen || !prev.State.Terminal() }

// pastPending says why a run of j at logical must wait with depends_on_past: the job's
// run before it has neither succeeded nor been skipped (Airflow lets a skipped run
// through too); "" when it did, when there is none, or without depends_on_past. A
// failed run before it holds it until that run is run again.
func (s *Scheduler) pastPending(j *Job, logical time.Time) string {
	if !j.DependsOnPast {
		return ""
	}
	prev, ok := s.store.Before(j.Name, logical)
	if !ok || prev.State == StateSuccess || prev.State == StateSkipped {
		return ""
	}
	return fmt.Sprintf("depends_on_past: its run for ds %s is %s", prev.DS, prev.State)
}

// upstreamState applies j's trigger_rule to the runs of its depends_on jobs for ds
// (every run of each that day; a job with none recorded yet counts as unfinished). The
// reason is set when the run is not to run (skipped, upstream_failed).
func (s *Scheduler) upstreamState(j *Job, ds string) (verdict, string) {
	if j.rule == RuleAlways {
		return verdictRun, ""
	}
	return j.rule.decide(s.tally(j, ds))
}

// tally counts the runs of j's depends_on jobs for ds by outcome.
func (s *Scheduler) tally(j *Job, ds string) upTally {
	var t upTally
	for _, up := range j.upstream {
		recs := s.store.ByDS(up, ds)
		if len(recs) == 0 {
			t.add(up, ds, "")
			continue
		}
		for _, r := range recs {
			t.add(up, ds, r.State)
		}
	}
	return t
}

// Stop stops planning, waits for running runs until ctx is done, then cancels them
// (they are recorded as queued and run again on the next start). Safe twice.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	started := s.started
	s.mu.Unlock()
	if started {
		<-s.cron.Stop().Done()
		close(s.stop)
		// The loop exits once every running run has reported; it starts no new ones.
		loopDone := make(chan struct{})
		go func() { s.loopWG.Wait(); close(loopDone) }()
		select {
		case <-loopDone:
		case <-ctx.Done():
			s.cancel()
			<-loopDone
		}
		s.cancel()
		s.runWG.Wait()
	}
	return s.store.Close()
}

// Close is Stop without a grace period for running runs.
func (s *Scheduler) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return s.Stop(ctx)
}

// NextRun says when job runs next and for which logical time (zero when never).
func (s *Scheduler) NextRun(job string) (at, logical time.Time, err error) {
	j, err := s.dag.Find(job)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	now := s.now()
	at = j.sched.Next(now)
	if at.IsZero() {
		return at, at, nil
	}
	return at, j.sched.Prev(at.Add(-time.Nanosecond)), nil
}

// LogPath is where attempt n of a run wrote its output.
func (s *Scheduler) LogPath(job string, logical time.Time, attempt int) string {
	return filepath.Join(s.opts.Dir, "logs", job, tsKey(logical), fmt.Sprintf("attempt-%d.log", attempt))
}
