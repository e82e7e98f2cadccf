package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// brokenOn is a task for each name that fails on the ds listed in bad (guarded by mu),
// recording its calls in rec.
func brokenOn(rec *recorder, mu *sync.Mutex, bad map[string]bool, names ...string) *Kinds {
	funcs := map[string]TaskFunc{}
	for _, n := range names {
		funcs[n] = func(ctx context.Context, rc RunContext) (int64, error) {
			mu.Lock()
			fail := bad[rc.DS]
			mu.Unlock()
			n, err := rec.task(rc.Job)(ctx, rc)
			if fail {
				return 0, context.DeadlineExceeded
			}
			return n, err
		}
	}
	k := NewKinds()
	k.Register("func", BuiltinKind(funcs))
	return k
}

// jobs clear: the failed run and its downstream upstream_failed one (--downstream
// --only-failed) are reset to queued with trigger clear, and the running scheduler runs
// them again; a run whose lock is held is refused and nothing is cleared; depends_on_past
// sees a cleared run as not done.
func TestClear(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		now := shiftedNow(nov20)
		rec := &recorder{now: now}
		var mu sync.Mutex
		bad := map[string]bool{"2026-11-18": true}
		a, b, p := daily("a"), daily("b", "a"), daily("p")
		p.DependsOnPast = true
		for _, d := range []*Def{&a, &b, &p} {
			d.Retries, d.StartDate = -1, "2026-11-17"
		}
		dag := mustCompile(t, []Def{a, b, p}, brokenOn(rec, &mu, bad, "a", "b", "p"))
		s := mustNew(t, dag, dir, now)
		mustStart(t, s)
		defer s.Close()
		synctest.Wait()
		l18 := time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)
		if r, _ := s.Store().Latest("b", l18); r.State != StateUpstreamFailed {
			t.Fatalf("b 11-18: %+v", r)
		}
		mu.Lock()
		bad["2026-11-18"] = false
		mu.Unlock()

		lk, err := tryLockRun(dir, "b", tsKey(l18))
		if err != nil {
			t.Fatal(err)
		}
		o := ClearOptions{Job: "a", From: "2026-11-17", To: "2026-11-18", Downstream: true, OnlyFailed: true}
		if _, err := s.Clear(o); err == nil || err.Error() != `job "b" ds 2026-11-18 is running (its run lock is held); not cleared` {
			t.Fatalf("clear of a locked run: %v", err)
		}
		if r, _ := s.Store().Latest("a", l18); r.State != StateFailed {
			t.Fatalf("a 11-18 changed by a refused clear: %+v", r)
		}
		lk.unlock()
		o.DryRun = true
		if runs, err := s.Clear(o); err != nil || len(runs) != 2 {
			t.Fatalf("dry run: %+v %v", runs, err)
		}
		o.DryRun = false
		runs, err := s.Clear(o)
		if err != nil || len(runs) != 2 || runs[0].Job != "a" || runs[0].State != StateFailed || runs[1].Job != "b" || runs[1].State != StateUpstreamFailed {
			t.Fatalf("clear: %+v %v", runs, err)
		}
		if r, _ := s.Store().Latest("b", l18); r.State != StateQueued || r.Trigger != TriggerClear || r.Error != "cleared by tagpipe jobs clear (was upstream_failed)" {
			t.Errorf("b 11-18 after clear: %+v", r)
		}
		time.Sleep(time.Minute) // the next poll
		synctest.Wait()
		for _, job := range []string{"a", "b"} {
			if r, _ := s.Store().Latest(job, l18); r.State != StateSuccess || r.Trigger != TriggerScheduled {
				t.Errorf("%s 11-18 after the scheduler ran it again: %+v", job, r)
			}
		}
		if n := strings.Count(strings.Join(rec.seq(), ","), "a 2026-11-18"); n != 2 {
			t.Errorf("a 11-18 ran %d times, want 2", n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		// Without a scheduler, a cleared run holds its depends_on_past successor.
		s = mustNew(t, dag, dir, now)
		defer s.Close()
		if _, err := s.Clear(ClearOptions{Job: "p", From: "2026-11-17", To: "2026-11-17"}); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckDeps("p", "2026-11-18", RunOptions{}); err == nil || !strings.Contains(err.Error(), "depends_on_past: its run for ds 2026-11-17 is queued") {
			t.Errorf("depends_on_past after clear: %v", err)
		}
	})
}

// jobs mark: marking a failed run success lets its held depends_on_past chain move on
// (the running scheduler runs the days after it); the record says it was marked, not
// run; a run in progress and a bad state are refused.
func TestMark(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		now := shiftedNow(nov20)
		rec := &recorder{now: now}
		var mu sync.Mutex
		p := daily("p")
		p.DependsOnPast, p.Retries, p.StartDate = true, -1, "2026-11-17"
		s := mustNew(t, mustCompile(t, []Def{p}, brokenOn(rec, &mu, map[string]bool{"2026-11-18": true}, "p")), dir, now)
		mustStart(t, s)
		defer s.Close()
		synctest.Wait()
		eqStrings(t, "held", rec.seq(), []string{"p 2026-11-17", "p 2026-11-18"})

		l18 := time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)
		lk, err := tryLockRun(dir, "p", tsKey(l18))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Mark("p", "2026-11-18", StateSuccess); err == nil || err.Error() != `job "p" ds 2026-11-18 is running (its run lock is held); not marked` {
			t.Fatalf("mark of a locked run: %v", err)
		}
		lk.unlock()
		if _, err := s.Mark("p", "2026-11-18", StateRunning); err == nil || err.Error() != `--state: want success or failed, got "running"` {
			t.Fatalf("mark running: %v", err)
		}
		r, err := s.Mark("p", "2026-11-18", StateSuccess)
		if err != nil || r.State != StateSuccess || r.Trigger != TriggerMark || r.Error != "marked success by tagpipe jobs mark" {
			t.Fatalf("mark: %+v %v", r, err)
		}
		time.Sleep(time.Minute) // the next poll
		synctest.Wait()
		eqStrings(t, "after the mark", rec.seq(), []string{"p 2026-11-17", "p 2026-11-18", "p 2026-11-19"})
		if r, _ := s.Store().Latest("p", l18); r.Trigger != TriggerMark {
			t.Errorf("p 11-18 ran again after the mark: %+v", r)
		}
	})
}

// A run waiting up_for_retry ends its wait when it is cleared or marked, as in Airflow:
// cleared, it runs again (as attempt 2: the try number goes on) at the scheduler's next
// poll, not at its old retry time; marked
// failed, it stops counting against max_active_runs, so the job's next run starts at
// that poll, and it is not tried again.
func TestClearOrMarkEndsRetryWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		now := shiftedNow(nov20)
		r := &recorder{now: now, fail: map[string]bool{"c": true, "m": true}}
		c, m := daily("c"), daily("m")
		c.Retries, c.RetryDelay, c.StartDate = 2, time.Hour, "2026-11-19"
		m.Retries, m.RetryDelay, m.StartDate = 2, time.Hour, "2026-11-18"
		s := mustNew(t, mustCompile(t, []Def{c, m}, r.kinds("c", "m")), dir, now)
		mustStart(t, s)
		defer s.Close()
		time.Sleep(time.Minute + time.Second) // 00:31:01; both wait until 01:30
		synctest.Wait()
		l18 := time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)
		l19 := l18.AddDate(0, 0, 1)
		if rc, _ := s.Store().Latest("c", l19); rc.State != StateUpForRetry || rc.Attempt != 1 {
			t.Fatalf("c 11-19 at 00:31: %+v, want up_for_retry after attempt 1", rc)
		}
		if rm, _ := s.Store().Latest("m", l18); rm.State != StateUpForRetry {
			t.Fatalf("m 11-18 at 00:31: %+v, want up_for_retry", rm)
		}
		r.mu.Lock()
		r.fail = nil
		r.mu.Unlock()
		if was, err := s.Clear(ClearOptions{Job: "c", From: "2026-11-19", To: "2026-11-19"}); err != nil || len(was) != 1 || was[0].State != StateUpForRetry {
			t.Fatalf("clear: %+v %v", was, err)
		}
		if _, err := s.Mark("m", "2026-11-18", StateFailed); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Minute) // past the poll at 00:31:30, well before 01:30
		synctest.Wait()
		var got []string
		for _, cl := range r.snapshot() {
			got = append(got, fmt.Sprintf("%s %s #%d %s", cl.job, cl.ds, cl.attempt, cl.at.Format("15:04:05")))
		}
		sort.Strings(got)
		eqStrings(t, "calls", got, []string{
			"c 2026-11-19 #1 00:30:00", "c 2026-11-19 #2 00:31:30",
			"m 2026-11-18 #1 00:30:00", "m 2026-11-19 #1 00:31:30"})
		if rc, _ := s.Store().Latest("c", l19); rc.State != StateSuccess {
			t.Errorf("c 11-19 after the clear: %+v", rc)
		}
		if rm, _ := s.Store().Latest("m", l18); rm.State != StateFailed || rm.Trigger != TriggerMark {
			t.Errorf("m 11-18 after the mark: %+v, want the marked record", rm)
		}
		if rm, _ := s.Store().Latest("m", l19); rm.State != StateSuccess {
			t.Errorf("m 11-19: %+v", rm)
		}
	})
}

// As Airflow's clear_task_instances, a cleared run keeps its try number: its next
// attempt is the one after its last, with max_tries = that try number + retries, so the
// earlier attempts' logs are kept and each new one writes its own; the backoff counts
// the retries since the clear, not the try number.
func TestClearKeepsTryNumber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		now := shiftedNow(nov20)
		var calls []string
		var mu sync.Mutex
		k := NewKinds()
		k.Register("func", BuiltinKind(map[string]TaskFunc{"c": func(ctx context.Context, rc RunContext) (int64, error) {
			mu.Lock()
			calls = append(calls, fmt.Sprintf("#%d %s", rc.Attempt, now().Format("15:04:05")))
			mu.Unlock()
			fmt.Fprintf(rc.Output, "try %d\n", rc.Attempt)
			return 0, fmt.Errorf("try %d failed", rc.Attempt)
		}}))
		c := daily("c")
		c.Retries, c.RetryDelay, c.MaxRetryDelay, c.StartDate = 1, time.Hour, 24*time.Hour, "2026-11-19"
		s := mustNew(t, mustCompile(t, []Def{c}, k), dir, now)
		mustStart(t, s)
		defer s.Close()
		l19 := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
		latest := func() Record {
			t.Helper()
			if err := s.Store().Refresh(); err != nil {
				t.Fatal(err)
			}
			r, _ := s.Store().Latest("c", l19)
			return r
		}
		time.Sleep(time.Hour + time.Minute) // 01:31: attempts 1 (00:30) and 2 (01:30) failed
		synctest.Wait()
		if r := latest(); r.State != StateFailed || r.Attempt != 2 || r.MaxTries != 1 {
			t.Fatalf("before the clear: %+v, want failed at attempt 2 with max_tries 1", r)
		}
		was, err := s.Clear(ClearOptions{Job: "c", From: "2026-11-19", To: "2026-11-19"})
		if err != nil || len(was) != 1 {
			t.Fatalf("clear: %+v %v", was, err)
		}
		if r := latest(); r.State != StateQueued || r.Trigger != TriggerClear || r.Attempt != 2 || r.MaxTries != 3 {
			t.Fatalf("the clear's record: %+v, want queued, attempt 2, max_tries 3 (2 + retries 1)", r)
		}
		time.Sleep(time.Minute) // the poll at 01:31:30 runs attempt 3
		synctest.Wait()
		if r := latest(); r.State != StateUpForRetry || r.Attempt != 3 || r.MaxTries != 3 {
			t.Fatalf("after attempt 3: %+v, want up_for_retry (3 <= max_tries 3)", r)
		}
		// Its first retry since the clear waits retry_delay (1h), not the 4h its try
		// number would give.
		time.Sleep(time.Hour)
		synctest.Wait()
		r := latest()
		if r.State != StateFailed || r.Attempt != 4 || r.MaxTries != 3 || r.Error != "try 4 failed" {
			t.Fatalf("after attempt 4: %+v, want failed at attempt 4", r)
		}
		mu.Lock()
		eqStrings(t, "attempts", calls, []string{"#1 00:30:00", "#2 01:30:00", "#3 01:31:30", "#4 02:31:30"})
		mu.Unlock()
		for n := 1; n <= 4; n++ {
			b, err := os.ReadFile(s.LogPath("c", l19, n))
			if err != nil || string(b) != fmt.Sprintf("try %d\n", n) {
				t.Errorf("attempt-%d.log: %q %v", n, b, err)
			}
		}
	})
}

// A run left up_for_retry by a record written before max_tries existed (no such field)
// goes on with the job's retries, its attempts counted from 1, as before.
func TestRetryRecordWithoutMaxTries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		now := shiftedNow(nov20)
		l19 := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
		line := `{"job":"o","ds":"2026-11-19","logical":"2026-11-19T00:00:00Z","state":"up_for_retry","trigger":"scheduled",` +
			`"scheduled":true,"attempt":1,"start":"2026-11-20T00:00:00Z","end":"2026-11-20T00:00:05Z","rows":0,` +
			`"error":"boom","owner":"old:1","updated":"2026-11-20T00:00:05Z"}` + "\n"
		if err := os.WriteFile(filepath.Join(dir, "history.jsonl"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
		r := &recorder{now: now, fail: map[string]bool{"o": true}}
		o := daily("o")
		o.Retries, o.RetryDelay, o.StartDate = 2, time.Hour, "2026-11-19"
		s := mustNew(t, mustCompile(t, []Def{o}, r.kinds("o")), dir, now)
		mustStart(t, s)
		defer s.Close()
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		var got []string
		for _, c := range r.snapshot() {
			got = append(got, fmt.Sprintf("%s %s #%d %s", c.job, c.ds, c.attempt, c.at.Format("15:04:05")))
		}
		// Attempt 2 after its 1h backoff from 00:00:05, attempt 3 after max_retry_delay.
		eqStrings(t, "calls", got, []string{"o 2026-11-19 #2 01:00:05", "o 2026-11-19 #3 02:00:05"})
		if rec, _ := s.Store().Latest("o", l19); rec.State != StateFailed || rec.Attempt != 3 || rec.MaxTries != 2 {
			t.Errorf("o 11-19: %+v, want failed at attempt 3 (retries 2)", rec)
		}
	})
}
