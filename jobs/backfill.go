package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// BackfillOptions say what to backfill.
type BackfillOptions struct {
	// Jobs to run; with Upstream their depends_on jobs (transitively) run too. Without
	// it, depends_on jobs outside the backfill are not checked: the runs were asked for.
	Jobs     []string
	Upstream bool
	// From and To are ds values (YYYY-MM-DD), inclusive.
	From, To string
	// Parallel runs up to this many runs at once (default 1: strictly in ds order), each
	// also taking its job's pool slots (shared with the scheduler of this process).
	// Within one ds, a job starts once its trigger_rule holds for the runs of the jobs it
	// depends on in this backfill (default all_success: after they succeeded).
	Parallel int
	// Progress receives the progress bar; nil = none. TTY redraws one line with \r;
	// otherwise a line is printed per finished run.
	Progress io.Writer
	TTY      bool
	// LockWait is how often a run locked by another scheduler is retried (default 1s).
	LockWait time.Duration
	// Trigger is recorded on the runs (default TriggerBackfill).
	Trigger string
}

// BackfillSummary is the outcome of a backfill. Succeeded, Failed, UpstreamFailed and
// Skipped count the runs recorded in those states (skipped: by their trigger_rule);
// NotDue counts those not run because their interval has not ended yet.
type BackfillSummary struct {
	Total, Succeeded, Failed, UpstreamFailed, Skipped, NotDue int
	Rows                                                      int64
	Took                                                      time.Duration
	// Failures lists "job ds: error" of failed runs.
	Failures []string
}

func (b BackfillSummary) String() string {
	s := fmt.Sprintf("backfill: %d runs: %d succeeded, %d failed, %d upstream_failed, %d skipped, %d not due yet; %d rows in %v",
		b.Total, b.Succeeded, b.Failed, b.UpstreamFailed, b.Skipped, b.NotDue, b.Rows, b.Took.Round(time.Millisecond))
	for _, f := range b.Failures {
		s += "\n  failed: " + f
	}
	return s
}

// bfNotDue marks a backfill item whose interval has not ended: it is not run, and runs
// depending on it do not count it.
const bfNotDue State = "not_due"

type bfItem struct {
	job     *Job
	ds      string
	logical time.Time
	deps    []*bfItem // the depends_on jobs' items on ds
	past    *bfItem   // with depends_on_past: the job's item before it
	state   State     // "" = waiting
	started bool
	retryAt time.Time
	// resume: it waited without its slots (up_for_retry, up_for_reschedule); it goes on
	// from its recorded state rather than starting afresh.
	resume bool
}

// Backfill re-runs every ds from From to To (each run overwrites its ds: idempotent).
// Intervals that have not ended yet are skipped. It returns when all runs finished, or
// when ctx is cancelled (runs in progress are recorded as queued).
func (s *Scheduler) Backfill(ctx context.Context, o BackfillOptions) (BackfillSummary, error) {
	var sum BackfillSummary
	from, to, err := parseDSRange(o.From, o.To)
	if err != nil {
		return sum, err
	}
	if o.Parallel <= 0 {
		o.Parallel = 1
	}
	if o.LockWait <= 0 {
		o.LockWait = time.Second
	}
	if o.Trigger == "" {
		o.Trigger = TriggerBackfill
	}
	names, err := s.backfillJobs(o.Jobs, o.Upstream)
	if err != nil {
		return sum, err
	}
	now := s.now()
	var items []*bfItem
	byKey := map[string][]*bfItem{} // job/ds → that job's items on ds
	last := map[string]*bfItem{}    // job → its latest item so far (depends_on_past)
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		ds := d.Format(time.DateOnly)
		for _, n := range names {
			j := s.dag.jobs[n]
			ls, err := j.logicalsOn(ds)
			if err != nil {
				continue // no run of this job on ds (e.g. a weekly job)
			}
			for _, l := range ls {
				it := &bfItem{job: j, ds: ds, logical: l}
				if end := j.sched.Next(l); end.After(now) {
					it.state = bfNotDue
					sum.NotDue++
				}
				for _, up := range j.upstream {
					it.deps = append(it.deps, byKey[up+"/"+ds]...)
				}
				if prev := last[n]; prev != nil && j.DependsOnPast {
					it.past = prev
				}
				last[n] = it
				byKey[n+"/"+ds] = append(byKey[n+"/"+ds], it)
				items = append(items, it)
			}
		}
	}
	// In ds order, and within a ds by priority (the order of a scheduler's queue).
	sort.SliceStable(items, func(a, b int) bool {
		ia, ib := items[a], items[b]
		if ia.ds != ib.ds {
			return ia.ds < ib.ds
		}
		return rankOf(ia.job, ia.logical).before(rankOf(ib.job, ib.logical))
	})
	sum.Total = len(items)
	if sum.Total == 0 {
		return sum, fmt.Errorf("nothing to backfill: no run of %s between %s and %s", strings.Join(names, ", "), o.From, o.To)
	}
	bar := &progress{w: o.Progress, tty: o.TTY, total: sum.Total - sum.NotDue, start: s.now(), now: s.now,
		left: map[string]int{}}
	for _, it := range items {
		if it.state == "" {
			bar.left[it.ds]++
		}
	}
	bar.dsTotal = len(bar.left)

	type result struct {
		it  *bfItem
		rec Record
		err error
	}
	results := make(chan result)
	q := s.pools.queue() // this backfill's place in the pools' queues
	defer q.close()
	var wg sync.WaitGroup
	running := 0
	var fatal error
	var poolPollT, restPollT *time.Timer
	defer func() {
		for _, t := range []*time.Timer{poolPollT, restPollT} {
			if t != nil {
				t.Stop()
			}
		}
	}()
	for {
		for _, t := range []**time.Timer{&poolPollT, &restPollT} {
			if *t != nil {
				(*t).Stop()
				*t = nil
			}
		}
		// Start what can start, in ds order.
		var retryAt time.Time // earliest moment a lock-busy run is tried again
		freed := s.pools.changed()
		poolWait := false   // a run waits for its pool's slots (held by the scheduler, say)
		poolOthers := false // … held by other processes: poll
		q.begin()
		for _, it := range items {
			if running >= o.Parallel || fatal != nil || ctx.Err() != nil {
				break
			}
			if it.started || it.state != "" {
				continue
			}
			if now := s.now(); now.Before(it.retryAt) {
				if retryAt.IsZero() || it.retryAt.Before(retryAt) {
					retryAt = it.retryAt
				}
				continue
			}
			v, why := it.verdict()
			if v == verdictUpstreamFailed || v == verdictSkipped {
				it.state = StateUpstreamFailed
				if v == verdictSkipped {
					it.state = StateSkipped
				}
				rec := Record{Job: it.job.Name, DS: it.ds, Logical: it.logical, State: it.state,
					Trigger: o.Trigger, Owner: s.opts.Owner, Updated: s.now(), Error: why}
				rec.keepTries(s.store)
				if err := s.store.Append(rec); err != nil && fatal == nil {
					fatal = err
				}
				if v == verdictSkipped {
					sum.Skipped++
				} else {
					sum.UpstreamFailed++
					sum.Failures = append(sum.Failures, fmt.Sprintf("%s %s: %s", it.job.Name, it.ds, rec.Error))
				}
				bar.done(it.ds, 0)
				continue
			}
			if v == verdictWait {
				continue
			}
			held, others, err := q.take(rankOf(it.job, it.logical), it.job.pool, it.job.poolSlots, s.opts.Owner+" "+it.job.Name+"/"+tsKey(it.logical))
			if err != nil {
				fatal = err
				break
			}
			if held == nil {
				poolWait, poolOthers = true, poolOthers || others
				continue
			}
			it.started = true
			running++
			wg.Add(1)
			go func(it *bfItem) {
				defer wg.Done()
				rec, err := s.execute(ctx, it.job, it.logical, o.Trigger, !it.resume, held)
				s.pools.release(held)
				results <- result{it, rec, err}
			}(it)
		}
		q.end()
		var wake <-chan time.Time
		if !retryAt.IsZero() && fatal == nil && ctx.Err() == nil {
			wake = time.After(retryAt.Sub(s.now()))
		}
		// Runs waiting up_for_retry or up_for_reschedule look at their records every
		// PollInterval, as a scheduler does: cleared or marked by another process, their
		// wait ends (waitEnded).
		var restPoll <-chan time.Time
		if fatal == nil && ctx.Err() == nil {
			for _, it := range items {
				if it.resume && !it.started && it.state == "" && s.now().Before(it.retryAt) {
					restPollT = time.NewTimer(s.opts.PollInterval)
					restPoll = restPollT.C
					break
				}
			}
		}
		var poolFreed <-chan struct{}
		var ctxDone <-chan struct{}
		var poolPoll <-chan time.Time
		if poolWait && fatal == nil {
			poolFreed, ctxDone = freed, ctx.Done()
			if poolOthers {
				poolPollT = time.NewTimer(s.opts.PoolPollInterval)
				poolPoll = poolPollT.C
			}
		}
		if running == 0 && wake == nil && poolFreed == nil {
			break
		}
		select {
		case <-poolFreed:
		case <-ctxDone:
		case <-poolPoll:
		case r := <-results:
			running--
			var rs *rescheduled
			switch {
			case errors.As(r.err, &rs):
				// up_for_reschedule or up_for_retry: its slots are free until its next
				// poke or try.
				r.it.started, r.it.resume = false, true
				r.it.retryAt = rs.At
				continue
			case errors.Is(r.err, errDone):
				// Finished elsewhere (marked, say) while it waited: that is its outcome.
				r.err = nil
			case errors.Is(r.err, errBusy):
				// Another scheduler is running it now: try again shortly.
				r.it.started = false
				r.it.retryAt = s.now().Add(o.LockWait)
				continue
			case r.err != nil:
				r.it.state = StateFailed
				if fatal == nil && !errors.Is(r.err, errInterrupted) {
					fatal = r.err
				}
				continue
			}
			r.it.state = r.rec.State
			sum.Rows += r.rec.Rows
			if r.rec.State == StateSuccess {
				sum.Succeeded++
			} else {
				sum.Failed++
				sum.Failures = append(sum.Failures, fmt.Sprintf("%s %s: %s", r.it.job.Name, r.it.ds, r.rec.Error))
			}
			bar.done(r.it.ds, r.rec.Rows)
		case <-wake:
		case <-restPoll:
			for _, it := range items {
				if it.resume && !it.started && it.state == "" && s.now().Before(it.retryAt) && s.waitEnded(it.job, it.logical) {
					it.retryAt = time.Time{}
				}
			}
		}
	}
	wg.Wait()
	sum.Took = s.now().Sub(bar.start)
	bar.finish()
	if fatal != nil {
		return sum, fatal
	}
	if ctx.Err() != nil {
		return sum, fmt.Errorf("backfill interrupted: %w", ctx.Err())
	}
	return sum, nil
}

// parseDSRange reads an inclusive ds range (--from, --to: YYYY-MM-DD).
func parseDSRange(fromDS, toDS string) (from, to time.Time, err error) {
	if from, err = time.Parse(time.DateOnly, fromDS); err != nil {
		return from, to, fmt.Errorf("bad --from %q: want YYYY-MM-DD", fromDS)
	}
	if to, err = time.Parse(time.DateOnly, toDS); err != nil {
		return from, to, fmt.Errorf("bad --to %q: want YYYY-MM-DD", toDS)
	}
	if to.Before(from) {
		return from, to, fmt.Errorf("--to %s is before --from %s", toDS, fromDS)
	}
	return from, to, nil
}

// verdict says whether the item can start: its trigger_rule over its deps' states (items
// not due are left out, as jobs outside the backfill are), then depends_on_past.
func (it *bfItem) verdict() (verdict, string) {
	var t upTally
	if it.job.rule != RuleAlways {
		for _, d := range it.deps {
			switch d.state {
			case bfNotDue:
			case StateSuccess, StateSkipped, StateFailed, StateUpstreamFailed:
				t.add(d.job.Name, d.ds, d.state)
			default:
				t.add(d.job.Name, d.ds, "")
			}
		}
	}
	v, why := it.job.rule.decide(t)
	if v != verdictRun || it.past == nil {
		return v, why
	}
	switch p := it.past; p.state {
	case StateSuccess, StateSkipped, bfNotDue:
		return verdictRun, ""
	case StateFailed, StateUpstreamFailed:
		return verdictUpstreamFailed, fmt.Sprintf("depends_on_past: its run for ds %s is %s", p.ds, p.state)
	}
	return verdictWait, ""
}

// backfillJobs expands names with their upstream jobs when asked, in DAG order.
func (s *Scheduler) backfillJobs(names []string, upstream bool) ([]string, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("backfill: name at least one job")
	}
	want := map[string]bool{}
	var add func(n string) error
	add = func(n string) error {
		j, err := s.dag.Find(n)
		if err != nil {
			return err
		}
		want[n] = true
		if upstream {
			for _, up := range j.upstream {
				if err := add(up); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, n := range names {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	var out []string
	for _, n := range s.dag.order {
		if want[n] {
			out = append(out, n)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return s.dag.jobs[out[a]].topo < s.dag.jobs[out[b]].topo })
	return out, nil
}

// progress draws "[=====>    ] ds 12/30  runs 24/60  rows 1,234  elapsed 3s  ETA 4s".
type progress struct {
	w     io.Writer
	tty   bool
	total int
	n     int
	// left counts unfinished runs per ds; a ds is done when it reaches 0.
	left            map[string]int
	dsDone, dsTotal int
	rows            int64
	start           time.Time
	now             func() time.Time
}

func (p *progress) done(ds string, rows int64) {
	p.n++
	p.rows += rows
	if p.left[ds]--; p.left[ds] == 0 {
		p.dsDone++
	}
	if p.w == nil {
		return
	}
	const width = 30
	filled := width
	if p.total > 0 {
		filled = p.n * width / p.total
	}
	bar := strings.Repeat("=", filled)
	if filled < width {
		bar += ">" + strings.Repeat(" ", width-filled-1)
	}
	el := p.now().Sub(p.start)
	eta := "?"
	if p.n > 0 && p.total >= p.n {
		eta = (el / time.Duration(p.n) * time.Duration(p.total-p.n)).Round(time.Second).String()
	}
	line := fmt.Sprintf("[%s] ds %d/%d  runs %d/%d  rows %s  elapsed %v  ETA %s", bar, p.dsDone, p.dsTotal, p.n, p.total,
		commas(p.rows), el.Round(time.Second), eta)
	if p.tty {
		fmt.Fprintf(p.w, "\r%-100s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) finish() {
	if p.w != nil && p.tty && p.n > 0 {
		fmt.Fprintln(p.w)
	}
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + commas(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
