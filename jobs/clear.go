package jobs

import (
	"errors"
	"fmt"
	"time"
)

// Clearing and marking runs (Airflow's `tasks clear` and mark success / mark failed).
// Both write the history under each run's lock, as a run does, so a run in progress is
// refused rather than overwritten.

// ClearOptions say which runs Clear resets.
type ClearOptions struct {
	Job string
	// From and To are ds values (YYYY-MM-DD), inclusive.
	From, To string
	// Downstream also clears the runs of every job depending on Job, directly or not.
	Downstream bool
	// OnlyFailed clears only failed and upstream_failed runs.
	OnlyFailed bool
	// DryRun lists the runs without clearing them.
	DryRun bool
}

// Clear resets the recorded runs of o.Job (and its downstream jobs) with ds from o.From
// to o.To: each gets a queued record with trigger "clear" (its error says what it was;
// its attempt, the try number, is kept and max_tries is that plus the job's retries),
// so a scheduler runs it again at its next poll (one waiting up_for_retry or
// up_for_reschedule too, not at its old retry or poke time), and depends_on_past and
// trigger rules see it as not finished. Runs never started (none, or scheduled) are left alone. It
// returns the runs as they were before. Every run's lock is taken first: when one is
// running, nothing is cleared.
func (s *Scheduler) Clear(o ClearOptions) ([]Record, error) {
	j, err := s.dag.Find(o.Job)
	if err != nil {
		return nil, err
	}
	from, to, err := parseDSRange(o.From, o.To)
	if err != nil {
		return nil, err
	}
	names := []string{j.Name}
	if o.Downstream {
		names = s.dag.Downstream(j.Name)
	}
	if err := s.store.Refresh(); err != nil {
		return nil, err
	}
	var runs []Record
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		for _, n := range names {
			for _, r := range s.store.ByDS(n, d.Format(time.DateOnly)) {
				switch {
				case r.State == StateScheduled:
				case o.OnlyFailed && r.State != StateFailed && r.State != StateUpstreamFailed:
				default:
					runs = append(runs, r)
				}
			}
		}
	}
	if o.DryRun || len(runs) == 0 {
		return runs, nil
	}
	var locks []*runLock
	defer func() {
		for _, lk := range locks {
			lk.unlock()
		}
	}()
	for _, r := range runs {
		lk, err := s.lockForChange(r.Job, r.DS, r.Logical, "cleared")
		if err != nil {
			return nil, err
		}
		locks = append(locks, lk)
	}
	// Under the locks the history is authoritative: a run may have finished meanwhile.
	if err := s.store.Refresh(); err != nil {
		return nil, err
	}
	now := s.now()
	var was []Record
	for _, r := range runs {
		if cur, ok := s.store.Latest(r.Job, r.Logical); ok {
			r = cur
		}
		if o.OnlyFailed && r.State != StateFailed && r.State != StateUpstreamFailed {
			continue
		}
		// As Airflow's clear_task_instances: the try number is kept (the next attempt is
		// attempt+1, writing a log of its own) and max_tries becomes it plus the retries.
		rec := Record{Job: r.Job, DS: r.DS, Logical: r.Logical, State: StateQueued, Trigger: TriggerClear,
			Attempt: r.Attempt, MaxTries: r.Attempt + s.dag.jobs[r.Job].maxRetries,
			Error: fmt.Sprintf("cleared by tagpipe jobs clear (was %s)", r.State), Owner: s.opts.Owner, Updated: now}
		if err := s.store.Append(rec); err != nil {
			return was, err
		}
		was = append(was, r)
	}
	return was, nil
}

// Mark records state (success or failed) as job's run for ds without running it, as
// Airflow's mark success / mark failed: a depends_on_past chain held by a failed run
// moves on once it is marked success; a run waiting up_for_retry or up_for_reschedule
// stops waiting (a scheduler drops it at its next poll). It is refused while the run is
// in progress.
func (s *Scheduler) Mark(job, ds string, state State) (Record, error) {
	if state != StateSuccess && state != StateFailed {
		return Record{}, fmt.Errorf("--state: want success or failed, got %q", state)
	}
	_, l, err := s.jobOn(job, ds)
	if err != nil {
		return Record{}, err
	}
	lk, err := s.lockForChange(job, ds, l, "marked")
	if err != nil {
		return Record{}, err
	}
	defer lk.unlock()
	now := s.now()
	rec := Record{Job: job, DS: ds, Logical: l, State: state, Trigger: TriggerMark,
		Error: fmt.Sprintf("marked %s by tagpipe jobs mark", state), Owner: s.opts.Owner, Start: now, End: now, Updated: now}
	if prev, ok := s.store.Latest(job, l); ok {
		rec.Attempt, rec.MaxTries, rec.Rows = prev.Attempt, prev.MaxTries, prev.Rows
	}
	return rec, s.store.Append(rec)
}

// lockForChange takes a run's lock to change its record by hand; a run in progress
// holds it, and is named in the refusal.
func (s *Scheduler) lockForChange(job, ds string, logical time.Time, what string) (*runLock, error) {
	lk, err := tryLockRun(s.opts.Dir, job, tsKey(logical))
	if errors.Is(err, errBusy) {
		return nil, fmt.Errorf("job %q ds %s is running (its run lock is held); not %s", job, ds, what)
	}
	return lk, err
}
