package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
)

// errDone: the run is already in a terminal state and was not forced.
var errDone = errors.New("run already finished")

// errInterrupted marks a run stopped by shutdown; it stays non-terminal so the next
// scheduler start runs it again.
var errInterrupted = errors.New("interrupted by shutdown")

// backoff is the wait before retry n (1-based): RetryDelay·2^(n-1), capped.
func (j *Job) backoff(n int) time.Duration {
	d := j.RetryDelay
	for i := 1; i < n; i++ {
		d *= 2
		if j.MaxRetryDelay > 0 && d >= j.MaxRetryDelay {
			return j.MaxRetryDelay
		}
	}
	if j.MaxRetryDelay > 0 && d > j.MaxRetryDelay {
		d = j.MaxRetryDelay
	}
	return d
}

// maxTries is Airflow's max_tries of the run whose latest record is r: its failed
// attempt n is retried while n <= max_tries. Records written before the field carry
// none: the job's retries (attempts counted from 1).
func (j *Job) maxTries(r Record) int {
	if r.MaxTries > 0 {
		return r.MaxTries
	}
	return j.maxRetries
}

// retryWait is the backoff after r's failed attempt, by the retry it leads to among
// those of r's round (the attempts since the run was last started, cleared or re-run:
// max_tries less retries came before it). So a cleared run waits as a new one does,
// not by its try number (where Airflow's backoff grows after each clear).
func (j *Job) retryWait(r Record) time.Duration {
	n := r.Attempt - (j.maxTries(r) - j.maxRetries)
	return j.backoff(max(1, min(n, r.Attempt)))
}

// resumeAt is when a run whose latest record is r goes on: an up_for_retry run's next
// attempt after its backoff, counted from the end of the attempt that failed; an
// up_for_reschedule run's next poke (no later than its wait_timeout); zero for others.
func (j *Job) resumeAt(r Record) time.Time {
	switch r.State {
	case StateUpForRetry:
		return r.Updated.Add(j.retryWait(r))
	case StateUpForReschedule:
		at := r.Updated.Add(j.PokeInterval)
		if dl := r.Start.Add(j.WaitTimeout); dl.Before(at) {
			at = dl
		}
		return at
	}
	return time.Time{}
}

// execute runs one (job, logical) under its cross-process lock, recording each step in
// the history, until the run is final or has to wait without its slots. Unless force is
// set it does nothing for a run that is already terminal (another scheduler finished
// it), and goes on with a run left up_for_retry (its next attempt, once the backoff is
// over); force starts the run afresh with the job's full retries. Attempts are numbered
// as Airflow's try numbers: on from the run's last recorded one, across clears and
// re-runs, so every attempt writes a log of its own. The returned record is the run's
// latest state; the error is for lock/store trouble, errBusy, errDone, errInterrupted,
// or a *rescheduled: the run waits, holding no slot, until At — up_for_reschedule
// (sensor_mode reschedule: its conditions do not hold yet) or up_for_retry (an attempt
// failed and retries are left: Airflow's up_for_retry holds no slot either); the caller
// gives its slots back, takes them again in its turn and calls execute without force.
// held is the pool slots the caller took for the run (nil: none).
func (s *Scheduler) execute(ctx context.Context, j *Job, logical time.Time, trigger string, force bool, held *poolHold) (Record, error) {
	ts := tsKey(logical)
	lk, err := tryLockRun(s.opts.Dir, j.Name, ts)
	if err != nil {
		return Record{}, err
	}
	defer lk.unlock()
	// The task's processes inherit the run lock and the pool's slot locks (see
	// RunContext.InheritFiles).
	inherit := []*os.File{lk.f}
	if held != nil {
		inherit = append(inherit, held.files...)
	}
	// Holding the lock, the history is authoritative: anyone who ran it has recorded it.
	if err := s.store.Refresh(); err != nil {
		return Record{}, err
	}
	prev, seen := s.store.Latest(j.Name, logical)
	if seen && prev.State.Terminal() && !force {
		return prev, errDone
	}
	rec := Record{Job: j.Name, DS: j.sched.DS(logical), Logical: logical, Trigger: trigger, Owner: s.opts.Owner}
	end := j.sched.Next(logical)
	s.metrics.running.WithLabelValues(j.Name).Inc()
	defer s.metrics.running.WithLabelValues(j.Name).Dec()
	rec.Start = s.now()
	// A new round of tries (a first run, a re-run, a cleared run, one stopped by a
	// shutdown or a kill) gets the job's retries on top of the attempts already made, as
	// Airflow's clear sets max_tries = try_number + retries.
	first := prev.Attempt + 1
	maxTries := prev.Attempt + j.maxRetries
	resume := seen && !force && prev.State == StateUpForRetry
	if resume {
		if at := j.resumeAt(prev); s.now().Before(at) {
			// Its backoff is not over (another scheduler's retry wait, seen at a poll).
			return prev, &rescheduled{At: at, State: StateUpForRetry}
		}
		// Its wait_for conditions held before its first attempt.
		maxTries = j.maxTries(prev)
		if !prev.Start.IsZero() {
			rec.Start = prev.Start
		}
	}
	rec.MaxTries = maxTries
	if len(j.sensors) > 0 && !resume {
		rc := RunContext{Job: j.Name, DS: rec.DS, Logical: rec.Logical, IntervalEnd: end,
			Log: s.opts.Log.With("job", j.Name, "ds", rec.DS)}
		var werr error
		if j.reschedule {
			// One poke; the run holds its slot only while it pokes. wait_timeout counts
			// from the first poke, kept in the record across reschedules and restarts.
			prevWaiting := ""
			if seen && prev.State == StateUpForReschedule && !prev.Start.IsZero() {
				rec.Start, prevWaiting = prev.Start, strings.TrimPrefix(prev.Error, "waiting for ")
			}
			var waiting string
			var next time.Time
			waiting, next, werr = s.pokeOnce(ctx, j, rc, rec.Start, prevWaiting)
			if werr == nil && waiting != "" {
				rec.State, rec.Attempt, rec.Error, rec.Updated = StateUpForReschedule, first-1, "waiting for "+waiting, s.now()
				if err := s.store.Append(rec); err != nil {
					return rec, err
				}
				return rec, &rescheduled{At: next, State: StateUpForReschedule}
			}
		} else {
			rec.State, rec.Attempt, rec.Updated = StateRunning, first-1, s.now()
			if err := s.store.Append(rec); err != nil {
				return rec, err
			}
			werr = s.wait(ctx, j, rc)
		}
		if werr != nil {
			rec.End, rec.Updated = s.now(), s.now()
			if ctx.Err() != nil {
				return s.interrupted(rec)
			}
			rec.Error = werr.Error()
			return s.failed(ctx, j, rec, end, inherit)
		}
	}
	// One attempt: a failure with retries left gives its slots back and waits as
	// up_for_retry (rescheduled); the next attempt is a new call that resumes it.
	attempt := first
	rec.State, rec.Attempt, rec.End, rec.Error, rec.Rows = StateRunning, attempt, time.Time{}, "", 0
	rec.Updated = s.now()
	if err := s.store.Append(rec); err != nil {
		return rec, err
	}
	rows, terr := s.attempt(ctx, j, rec, end, inherit)
	rec.End, rec.Updated = s.now(), s.now()
	if ctx.Err() != nil {
		// Shutdown, not the task's fault: leave it for the next start.
		return s.interrupted(rec)
	}
	if terr == nil {
		rec.State, rec.Rows = StateSuccess, rows
		if err := s.store.Append(rec); err != nil {
			return rec, err
		}
		s.metrics.finished(rec)
		s.opts.Log.Info("run succeeded", "job", j.Name, "ds", rec.DS, "attempt", attempt, "rows", rows, "took", rec.Duration())
		s.callback(ctx, j, rec, end, inherit)
		return rec, nil
	}
	rec.Error = terr.Error()
	s.metrics.attemptFailures.WithLabelValues(j.Name).Inc()
	if attempt > maxTries {
		return s.failed(ctx, j, rec, end, inherit)
	}
	wait := j.retryWait(rec)
	rec.State = StateUpForRetry
	if err := s.store.Append(rec); err != nil {
		return rec, err
	}
	s.callback(ctx, j, rec, end, inherit)
	s.opts.Log.Warn("attempt failed; retrying", "job", j.Name, "ds", rec.DS, "attempt", attempt, "retry_in", wait, "err", terr)
	return rec, &rescheduled{At: rec.Updated.Add(wait), State: StateUpForRetry}
}

// interrupted records rec as stopped by shutdown: queued again, for the next start.
func (s *Scheduler) interrupted(rec Record) (Record, error) {
	rec.State, rec.Error = StateQueued, errInterrupted.Error()
	if err := s.store.Append(rec); err != nil {
		return rec, err
	}
	return rec, errInterrupted
}

// failed records rec (its Error set) as failed for good and runs the job's on_failure.
func (s *Scheduler) failed(ctx context.Context, j *Job, rec Record, end time.Time, inherit []*os.File) (Record, error) {
	rec.State = StateFailed
	if err := s.store.Append(rec); err != nil {
		return rec, err
	}
	s.metrics.finished(rec)
	s.opts.Log.Error("run failed", "job", rec.Job, "ds", rec.DS, "attempts", rec.Attempt, "err", rec.Error)
	s.callback(ctx, j, rec, end, inherit)
	return rec, nil
}

// callback runs the job's callback for rec's state, if it has one, with the job's
// timeout; its output goes to <dir>/logs/<job>/<ts>/<state>-<attempt>.log. Its failure is
// logged and counted, never the run's.
func (s *Scheduler) callback(ctx context.Context, j *Job, rec Record, end time.Time, inherit []*os.File) {
	t := j.callbacks[rec.State]
	if t == nil {
		return
	}
	if j.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, j.Timeout)
		defer cancel()
	}
	log := s.opts.Log.With("job", j.Name, "ds", rec.DS, "callback", rec.State)
	err := func() (err error) {
		logDir := filepath.Join(s.opts.Dir, "logs", j.Name, tsKey(rec.Logical))
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			return err
		}
		out, err := os.Create(filepath.Join(logDir, fmt.Sprintf("%s-%d.log", rec.State, rec.Attempt)))
		if err != nil {
			return err
		}
		defer out.Close()
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("callback panicked: %v", p)
			}
		}()
		_, err = t.Run(ctx, RunContext{Job: j.Name, DS: rec.DS, Logical: rec.Logical, IntervalEnd: end, Attempt: rec.Attempt,
			Log: log, Output: out, InheritFiles: inherit, State: rec.State, Error: rec.Error})
		return err
	}()
	if err != nil {
		s.metrics.callbackFailures.WithLabelValues(j.Name).Inc()
		log.Warn("callback failed", "err", err)
	}
}

// attempt runs the task once with the job's timeout, its output going to
// <dir>/logs/<job>/<ts>/attempt-<n>.log. A panic is a failed attempt.
func (s *Scheduler) attempt(ctx context.Context, j *Job, rec Record, end time.Time, inherit []*os.File) (rows int64, err error) {
	if j.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, j.Timeout, fmt.Errorf("timed out after %v", j.Timeout))
		defer cancel()
	}
	logDir := filepath.Join(s.opts.Dir, "logs", j.Name, tsKey(rec.Logical))
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return 0, fmt.Errorf("cannot create log dir: %w", err)
	}
	out, err := os.Create(filepath.Join(logDir, fmt.Sprintf("attempt-%d.log", rec.Attempt)))
	if err != nil {
		return 0, fmt.Errorf("cannot create attempt log: %w", err)
	}
	defer out.Close()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("task panicked: %v", p)
			fmt.Fprintf(out, "panic: %v\n%s", p, debug.Stack())
		}
	}()
	rc := RunContext{Job: j.Name, DS: rec.DS, Logical: rec.Logical, IntervalEnd: end, Attempt: rec.Attempt,
		Log: s.opts.Log.With("job", j.Name, "ds", rec.DS, "attempt", rec.Attempt), Output: out,
		InheritFiles: inherit}
	rows, err = j.task.Run(ctx, rc)
	if err == nil && ctx.Err() != nil {
		// The task ignored its context and returned late: still a timeout.
		err = context.Cause(ctx)
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	}
	return rows, err
}

// LogicalFor is the logical time of job's first run on ds (YYYY-MM-DD in the job's zone).
func (j *Job) LogicalFor(ds string) (time.Time, error) {
	day, err := time.ParseInLocation(time.DateOnly, ds, j.Loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad ds %q: want YYYY-MM-DD", ds)
	}
	l := j.sched.Next(day.Add(-time.Nanosecond))
	if l.IsZero() || j.sched.DS(l) != ds {
		return time.Time{}, fmt.Errorf("job %q has no run on %s (schedule %q)", j.Name, ds, j.Schedule)
	}
	return l, nil
}

// jobOn is the named job and the logical time of its first run on ds.
func (s *Scheduler) jobOn(job, ds string) (*Job, time.Time, error) {
	j, err := s.dag.Find(job)
	if err != nil {
		return nil, time.Time{}, err
	}
	l, err := j.LogicalFor(ds)
	return j, l, err
}

// logicalsOn lists every logical time of job whose ds is ds.
func (j *Job) logicalsOn(ds string) ([]time.Time, error) {
	l, err := j.LogicalFor(ds)
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for ; !l.IsZero() && j.sched.DS(l) == ds; l = j.sched.Next(l) {
		out = append(out, l)
	}
	return out, nil
}

// RunNow runs job for ds now, whatever its history says (a manual re-run overwrites the
// ds), ignoring depends_on and depends_on_past (CheckDeps applies them first, as `tagpipe
// jobs run` does). It fails with a clear error when another scheduler holds the
// run. A sensor_mode reschedule run waiting for its conditions is up_for_reschedule
// between pokes, its lock released; a failed attempt with retries left waits
// up_for_retry the same way. While it waits another process may clear or mark the run
// (tagpipe jobs clear / mark): RunNow sees it within PollInterval, as a scheduler does,
// and runs a cleared run at once (a new round of tries) or returns the marked record. A
// run another scheduler took meanwhile is followed to its end.
func (s *Scheduler) RunNow(ctx context.Context, job, ds string) (Record, error) {
	j, l, err := s.jobOn(job, ds)
	if err != nil {
		return Record{}, err
	}
	force := true
	for {
		// The run takes its pool's slots, shared with this process's scheduled runs (and
		// other processes', for a pool sized in jobs.pools).
		held, err := s.waitSlots(ctx, j, l)
		if err != nil {
			return Record{}, err
		}
		rec, err := s.execute(ctx, j, l, TriggerManual, force, held)
		s.pools.release(held)
		var rs *rescheduled
		switch {
		case errors.Is(err, errBusy) && force:
			return rec, fmt.Errorf("job %q ds %s is running in another scheduler", job, ds)
		case errors.Is(err, errBusy):
			// Cleared while it waited and taken by a scheduler: see how it ends.
			if err := s.restUntil(ctx, j, l, s.now().Add(s.opts.PollInterval)); err != nil {
				return rec, errInterrupted
			}
			continue
		case errors.Is(err, errDone):
			return rec, nil // finished by another scheduler while this one waited
		case !errors.As(err, &rs):
			return rec, err
		}
		// up_for_reschedule or up_for_retry: this process holds nothing until the next
		// poke or try, and does not re-run the run if another scheduler finishes it
		// meanwhile.
		force = false
		if err := s.restUntil(ctx, j, l, rs.At); err != nil {
			return rec, errInterrupted
		}
	}
}

// restUntil waits, holding no lock or slot, until at (the next try or poke of j's run
// at logical), until the run's record no longer says it waits (waitEnded), looked at
// every PollInterval, or until ctx is done (its error).
func (s *Scheduler) restUntil(ctx context.Context, j *Job, logical, at time.Time) error {
	t := time.NewTimer(at.Sub(s.now()))
	defer t.Stop()
	poll := time.NewTicker(s.opts.PollInterval)
	defer poll.Stop()
	for {
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
			if s.waitEnded(j, logical) {
				return nil
			}
		}
	}
}

// waitEnded re-reads the history and says whether the run of j at logical, which this
// process left waiting up_for_retry or up_for_reschedule, no longer waits: another
// process cleared it (queued again, to run now), marked it, or took it and ran on.
func (s *Scheduler) waitEnded(j *Job, logical time.Time) bool {
	if err := s.store.Refresh(); err != nil {
		s.opts.Log.Warn("cannot re-read run history; will look again", "job", j.Name, "err", err)
		return false
	}
	r, ok := s.store.Latest(j.Name, logical)
	return ok && r.State != StateUpForRetry && r.State != StateUpForReschedule
}

// waitSlots takes j's pool slots for its run at logical, waiting in the pool's queue
// until they are free: woken by this process's releases, polling for other processes'.
func (s *Scheduler) waitSlots(ctx context.Context, j *Job, logical time.Time) (*poolHold, error) {
	q := s.pools.queue()
	defer q.close()
	key := j.Name + "/" + tsKey(logical)
	for noted := false; ; noted = true {
		freed := s.pools.changed()
		q.begin()
		held, others, err := q.take(rankOf(j, logical), j.pool, j.poolSlots, s.opts.Owner+" "+key)
		if err != nil || held != nil {
			return held, err
		}
		if !noted {
			s.opts.Log.Info("run waits for free slots of its pool (`tagpipe jobs pools` shows who holds them)",
				"job", j.Name, "pool", j.pool, "pool_slots", j.poolSlots)
		}
		var poll <-chan time.Time
		var t *time.Timer
		if others {
			t = time.NewTimer(s.opts.PoolPollInterval)
			poll = t.C
		}
		select {
		case <-freed:
		case <-poll:
		case <-ctx.Done():
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return nil, errInterrupted
		}
	}
}

// RunOptions say which dependencies a manual run may ignore (Airflow's `tasks run`
// flags).
type RunOptions struct {
	// IgnoreDependencies: neither the trigger_rule over the depends_on runs nor
	// depends_on_past (--ignore-dependencies).
	IgnoreDependencies bool
	// IgnoreDependsOnPast: only depends_on_past (--ignore-depends-on-past).
	IgnoreDependsOnPast bool
}

// DepsError is why a manual run may not start: its trigger_rule over the depends_on
// jobs' runs of the ds, or depends_on_past, does not hold.
type DepsError struct {
	Job, DS string
	// Reason names the upstream run (or the run before it) and its state.
	Reason string
	// Past: the depends_on_past check refused it.
	Past bool
}

func (e *DepsError) Error() string {
	flag := "--ignore-dependencies"
	if e.Past {
		flag = "--ignore-depends-on-past"
	}
	return fmt.Sprintf("job %q ds %s not run: %s (%s runs it anyway)", e.Job, e.DS, e.Reason, flag)
}

// CheckDeps says whether job's run for ds may start now as a scheduled run would: its
// trigger_rule holds for its depends_on jobs' runs of ds (all_success: all succeeded)
// and, with depends_on_past, its run before it succeeded or was skipped. It re-reads the
// history; a refusal is a *DepsError naming the upstream run and its state. o says what
// to ignore.
func (s *Scheduler) CheckDeps(job, ds string, o RunOptions) error {
	j, l, err := s.jobOn(job, ds)
	if err != nil {
		return err
	}
	if o.IgnoreDependencies {
		return nil
	}
	if err := s.store.Refresh(); err != nil {
		return err
	}
	switch v, why := s.upstreamState(j, ds); v {
	case verdictWait:
		t := s.tally(j, ds)
		return &DepsError{Job: job, DS: ds, Reason: fmt.Sprintf("trigger_rule %s does not hold yet: %s", j.rule, t.whyWaiting)}
	case verdictSkipped, verdictUpstreamFailed:
		if !strings.HasPrefix(why, "trigger_rule ") {
			why = fmt.Sprintf("trigger_rule %s: %s", j.rule, why)
		}
		return &DepsError{Job: job, DS: ds, Reason: why}
	}
	if o.IgnoreDependsOnPast {
		return nil
	}
	if why := s.pastPending(j, l); why != "" {
		return &DepsError{Job: job, DS: ds, Reason: why, Past: true}
	}
	return nil
}
