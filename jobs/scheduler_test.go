package jobs

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var nov20 = time.Date(2026, 11, 20, 0, 30, 0, 0, time.UTC)

// A 4-job DAG runs each ds upstream first: extract → clean → tags, and report after
// tags and extract.
func TestDAGOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		now := shiftedNow(nov20)
		rec.now = now
		defs := []Def{daily("report", "tags", "extract"), daily("tags", "clean"), daily("clean", "extract"), daily("extract")}
		dag := mustCompile(t, defs, rec.kinds("extract", "clean", "tags", "report"))
		eqStrings(t, "topological order", dag.Names(), []string{"extract", "clean", "tags", "report"})
		eqStrings(t, "downstream of clean", dag.Downstream("clean"), []string{"clean", "tags", "report"})
		s := mustNew(t, dag, t.TempDir(), now)
		mustStart(t, s)
		time.Sleep(48*time.Hour + 30*time.Minute) // to 2026-11-22 01:00
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		eqStrings(t, "run order", rec.seq(), []string{
			"extract 2026-11-20", "clean 2026-11-20", "tags 2026-11-20", "report 2026-11-20",
			"extract 2026-11-21", "clean 2026-11-21", "tags 2026-11-21", "report 2026-11-21",
		})
		var m dto.Metric
		s.metrics.lastSuccess.WithLabelValues("report").Write(&m)
		if want := float64(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).Unix()); m.GetGauge().GetValue() != want {
			t.Errorf("last_success_timestamp_seconds{report} = %v, want %v", m.GetGauge().GetValue(), want)
		}
		if n := counterValue(s.metrics.runs.WithLabelValues("tags", "success")); n != 2 {
			t.Errorf("runs_total{tags,success} = %v", n)
		}
		// Airflow semantics: ds 2026-11-20 ran after that day ended.
		for _, c := range rec.snapshot() {
			day, _ := time.Parse(time.DateOnly, c.ds)
			if !c.at.After(day.AddDate(0, 0, 1)) && !c.at.Equal(day.AddDate(0, 0, 1)) {
				t.Errorf("%s ds %s ran at %v, before its interval ended", c.job, c.ds, c.at)
			}
		}
		for _, r := range s.Store().Runs("") {
			if r.State != StateSuccess && r.State != StateScheduled {
				t.Errorf("%s %s: state %s", r.Job, r.DS, r.State)
			}
		}
	})
}

// A failing task is retried with exponential backoff (1m, 2m, 4m), then marked failed;
// its downstream job is not run and says why.
func TestRetriesBackoffThenFailedBlocksDownstream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20)
		rec := &recorder{now: now, fail: map[string]bool{"flaky": true}}
		flaky := daily("flaky")
		flaky.Retries, flaky.RetryDelay = 3, time.Minute
		defs := []Def{flaky, daily("after", "flaky")}
		reg := prometheus.NewRegistry()
		s, err := New(mustCompile(t, defs, rec.kinds("flaky", "after")), Options{Dir: t.TempDir(), Now: now, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		mustStart(t, s)
		time.Sleep(25 * time.Hour)
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		calls := rec.snapshot()
		if len(calls) != 4 {
			t.Fatalf("calls: %v, want 4 attempts of flaky only", rec.seq())
		}
		end := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
		for i, wantAfter := range []time.Duration{0, time.Minute, 3 * time.Minute, 7 * time.Minute} {
			if calls[i].job != "flaky" || calls[i].attempt != i+1 || !calls[i].at.Equal(end.Add(wantAfter)) {
				t.Errorf("attempt %d: %+v, want flaky attempt %d at %v", i+1, calls[i], i+1, end.Add(wantAfter))
			}
		}
		l := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		r, _ := s.Store().Latest("flaky", l)
		if r.State != StateFailed || r.Attempt != 4 || !strings.Contains(r.Error, "flaky is broken") {
			t.Errorf("flaky record: %+v", r)
		}
		d, _ := s.Store().Latest("after", l)
		if d.State != StateUpstreamFailed || d.Error != "upstream flaky ds 2026-11-20 is failed" {
			t.Errorf("downstream record: %+v", d)
		}
		if got := counterValue(s.metrics.runs.WithLabelValues("flaky", "failed")); got != 1 {
			t.Errorf("runs_total{flaky,failed} = %v", got)
		}
		if got := counterValue(s.metrics.attemptFailures.WithLabelValues("flaky")); got != 4 {
			t.Errorf("attempt_failures_total{flaky} = %v", got)
		}
	})
}

// The scheduler runs ds 2026-11-20, is down from 11-21 01:00 to 11-24 01:00, and on
// restart runs the 3 missed days in order, once each; nothing runs twice.
func TestCatchupAfterOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		now := shiftedNow(nov20)
		rec := &recorder{now: now}
		dag := mustCompile(t, []Def{daily("a")}, rec.kinds("a"))
		s := mustNew(t, dag, dir, now)
		mustStart(t, s)
		time.Sleep(24*time.Hour + 30*time.Minute) // 11-21 01:00
		synctest.Wait()
		s.Close()
		eqStrings(t, "before outage", rec.seq(), []string{"a 2026-11-20"})

		time.Sleep(72 * time.Hour) // down until 11-24 01:00
		s = mustNew(t, dag, dir, now)
		mustStart(t, s)
		synctest.Wait()
		time.Sleep(time.Hour)
		synctest.Wait()
		s.Close()
		eqStrings(t, "after restart", rec.seq(), []string{"a 2026-11-20", "a 2026-11-21", "a 2026-11-22", "a 2026-11-23"})
		for _, c := range rec.snapshot()[1:] {
			if want := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC); !c.at.Equal(want) {
				t.Errorf("catch-up of %s ran at %v, want at restart %v", c.ds, c.at, want)
			}
		}
	})
}

// With catchup: false, only the latest missed interval runs.
func TestCatchupOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		now := shiftedNow(nov20)
		rec := &recorder{now: now}
		off := false
		d := daily("a")
		d.Catchup = &off
		d.StartDate = "2026-11-01"
		s := mustNew(t, mustCompile(t, []Def{d}, rec.kinds("a")), dir, now)
		mustStart(t, s)
		synctest.Wait()
		s.Close()
		eqStrings(t, "runs", rec.seq(), []string{"a 2026-11-19"})
	})
}

// start_date with catchup on runs every interval since then, in order.
func TestStartDateCatchup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20)
		rec := &recorder{now: now}
		d := daily("a")
		d.StartDate = "2026-11-17"
		s := mustNew(t, mustCompile(t, []Def{d}, rec.kinds("a")), t.TempDir(), now)
		mustStart(t, s)
		synctest.Wait()
		s.Close()
		eqStrings(t, "runs", rec.seq(), []string{"a 2026-11-17", "a 2026-11-18", "a 2026-11-19"})
	})
}

// Across the spring-forward and fall-back days in America/New_York, a daily job whose
// time falls in the skipped (02:30) or repeated (01:30) hour runs exactly once per day.
func TestDSTDailyRunsOnce(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	cases := []struct {
		name, spec string
		from       time.Time
		wantDS     []string
		// gapRun is when the run for ds[1] fires.
		gapRun time.Time
	}{
		{"spring", "30 2 * * *", time.Date(2026, 3, 6, 12, 0, 0, 0, ny),
			[]string{"2026-03-06", "2026-03-07", "2026-03-08", "2026-03-09"},
			time.Date(2026, 3, 8, 3, 30, 0, 0, ny)},
		{"fall", "30 1 * * *", time.Date(2026, 10, 30, 12, 0, 0, 0, ny),
			[]string{"2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02"},
			time.Date(2026, 11, 1, 1, 30, 0, 0, ny)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				now := shiftedNow(tc.from)
				rec := &recorder{now: now}
				d := Def{Name: "nightly", Schedule: tc.spec, Timezone: "America/New_York", Task: TaskSpec{Kind: "func", Name: "nightly"}}
				s := mustNew(t, mustCompile(t, []Def{d}, rec.kinds("nightly")), t.TempDir(), now)
				mustStart(t, s)
				time.Sleep(4 * 24 * time.Hour)
				synctest.Wait()
				s.Close()
				var ds []string
				for _, c := range rec.snapshot() {
					ds = append(ds, c.ds)
				}
				eqStrings(t, "ds per run", ds, tc.wantDS)
				if at := rec.snapshot()[1].at; !at.Equal(tc.gapRun) {
					t.Errorf("run of ds %s fired at %v, want %v", tc.wantDS[1], at.In(ny), tc.gapRun)
				}
			})
		})
	}
}

// Two schedulers on one data dir, both catching up the same 5 days concurrently: each
// ds runs exactly once.
func TestTwoSchedulersNoDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		now := shiftedNow(nov20)
		rec := &recorder{now: now}
		slow := func(ctx context.Context, rc RunContext) (int64, error) {
			rec.task("a")(ctx, rc)
			time.Sleep(10 * time.Minute) // overlap the two schedulers
			return 1, nil
		}
		k := NewKinds()
		k.Register("func", BuiltinKind(map[string]TaskFunc{"a": slow}))
		d := daily("a")
		d.StartDate = "2026-11-15"
		d.MaxActiveRuns = 3
		dag := mustCompile(t, []Def{d}, k)
		s1, s2 := mustNew(t, dag, dir, now), mustNew(t, dag, dir, now)
		mustStart(t, s1)
		mustStart(t, s2)
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		s1.Close()
		s2.Close()
		eqStrings(t, "runs", sortedCopy(rec.seq()), []string{"a 2026-11-15", "a 2026-11-16", "a 2026-11-17", "a 2026-11-18", "a 2026-11-19"})
	})
}

// Stop while a run is in progress: the run is recorded as queued (interrupted) and the
// next start runs it again.
func TestShutdownRequeues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		now := shiftedNow(nov20)
		var calls int
		block := func(ctx context.Context, rc RunContext) (int64, error) {
			calls++
			if calls == 1 {
				<-ctx.Done()
				return 0, ctx.Err()
			}
			return 1, nil
		}
		k := NewKinds()
		k.Register("func", BuiltinKind(map[string]TaskFunc{"a": block}))
		d := daily("a")
		d.StartDate = "2026-11-19"
		dag := mustCompile(t, []Def{d}, k)
		s := mustNew(t, dag, dir, now)
		mustStart(t, s)
		synctest.Wait()
		s.Close()
		l := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
		if r, _ := s.Store().Latest("a", l); r.State != StateQueued || r.Error != errInterrupted.Error() {
			t.Fatalf("after shutdown: %+v", r)
		}
		s = mustNew(t, dag, dir, now)
		mustStart(t, s)
		synctest.Wait()
		s.Close()
		if r, _ := s.Store().Latest("a", l); r.State != StateSuccess || calls != 2 {
			t.Fatalf("after restart: %+v, calls %d", r, calls)
		}
	})
}

func sortedCopy(in []string) []string {
	out := append([]string(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

// A backlog longer than the planning window (5 days of an hourly job = 120 runs) runs
// completely, in order, once each.
func TestCatchupLongBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20)
		rec := &recorder{now: now}
		d := Def{Name: "h", Schedule: "@hourly", StartDate: "2026-11-15", Task: TaskSpec{Kind: "func", Name: "h"}}
		s := mustNew(t, mustCompile(t, []Def{d}, rec.kinds("h")), t.TempDir(), now)
		mustStart(t, s)
		synctest.Wait()
		s.Close()
		calls := rec.snapshot()
		if len(calls) != 120 {
			t.Fatalf("%d runs, want 120", len(calls))
		}
		runs := s.Store().Runs("h")
		for i := 1; i < len(runs); i++ {
			if !runs[i].Logical.After(runs[i-1].Logical) {
				t.Fatal("runs out of order")
			}
		}
		if runs[0].DS != "2026-11-15" || runs[119].Logical.Hour() != 23 || runs[119].DS != "2026-11-19" {
			t.Errorf("first %+v last %+v", runs[0], runs[119])
		}
	})
}

// catchup: false after a year-long outage of a per-second job: only the latest interval
// runs (and planning does not walk 31 million ticks).
func TestCatchupOffPerSecondLongOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20)
		rec := &recorder{now: now}
		off := false
		d := Def{Name: "s", Schedule: "* * * * * *", Catchup: &off, StartDate: "2025-11-01", Task: TaskSpec{Kind: "func", Name: "s"}}
		s := mustNew(t, mustCompile(t, []Def{d}, rec.kinds("s")), t.TempDir(), now)
		mustStart(t, s)
		synctest.Wait()
		s.Close()
		calls := rec.snapshot()
		if len(calls) != 1 || !calls[0].at.Equal(nov20) {
			t.Fatalf("calls %+v", calls)
		}
		r := s.Store().Runs("s")[0]
		if !r.Logical.Equal(nov20.Add(-time.Second)) {
			t.Errorf("ran logical %v, want the interval that just ended", r.Logical)
		}
	})
}

// max_active_runs caps one job's concurrent runs, Parallelism all runs of a scheduler.
func TestConcurrencyLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20)
		var mu sync.Mutex
		cur, peak := map[string]int{}, map[string]int{}
		total, totalPeak := 0, 0
		slow := func(ctx context.Context, rc RunContext) (int64, error) {
			mu.Lock()
			cur[rc.Job]++
			total++
			peak[rc.Job] = max(peak[rc.Job], cur[rc.Job])
			totalPeak = max(totalPeak, total)
			mu.Unlock()
			time.Sleep(time.Hour)
			mu.Lock()
			cur[rc.Job]--
			total--
			mu.Unlock()
			return 1, nil
		}
		k := NewKinds()
		k.Register("func", BuiltinKind(map[string]TaskFunc{"a": slow, "b": slow}))
		a, b := daily("a"), daily("b")
		a.StartDate, b.StartDate = "2026-11-14", "2026-11-14"
		a.MaxActiveRuns, b.MaxActiveRuns = 2, 4
		s, err := New(mustCompile(t, []Def{a, b}, k), Options{Dir: t.TempDir(), Now: now, Parallelism: 5})
		if err != nil {
			t.Fatal(err)
		}
		mustStart(t, s)
		time.Sleep(10 * time.Hour)
		synctest.Wait()
		s.Close()
		if peak["a"] != 2 || totalPeak != 5 {
			t.Errorf("peak a %d (max_active_runs 2), total %d (parallelism 5)", peak["a"], totalPeak)
		}
		for _, r := range s.Store().Runs("") {
			if r.State != StateSuccess && r.State != StateScheduled {
				t.Errorf("%s %s %s", r.Job, r.DS, r.State)
			}
		}
	})
}

// depends_on_past: a failed day holds the days after it (they are not run, however long
// the wait) until it is run again successfully; then they run in order. A job without
// it goes on past its failed day.
func TestDependsOnPast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20)
		rec := &recorder{now: now}
		var mu sync.Mutex
		broken := true
		task := func(name string) TaskFunc {
			return func(ctx context.Context, rc RunContext) (int64, error) {
				mu.Lock()
				fail := broken && rc.DS == "2026-11-18"
				mu.Unlock()
				if fail {
					return rec.task("broken")(ctx, rc)
				}
				return rec.task(name)(ctx, rc)
			}
		}
		rec.fail = map[string]bool{"broken": true}
		k := NewKinds()
		k.Register("func", BuiltinKind(map[string]TaskFunc{"past": task("past"), "free": task("free")}))
		past, free := daily("past"), daily("free")
		past.DependsOnPast = true
		for _, d := range []*Def{&past, &free} {
			d.Retries, d.StartDate = -1, "2026-11-17"
		}
		s := mustNew(t, mustCompile(t, []Def{past, free}, k), t.TempDir(), now)
		mustStart(t, s)
		defer s.Close()
		time.Sleep(48 * time.Hour) // up to 11-22 00:30: 11-17 … 11-21 have ended
		synctest.Wait()
		var pastRuns, freeRuns []string
		for _, c := range rec.snapshot() {
			if c.job == "past" {
				pastRuns = append(pastRuns, c.ds)
			} else if c.job == "free" {
				freeRuns = append(freeRuns, c.ds)
			}
		}
		eqStrings(t, "past before the fix", pastRuns, []string{"2026-11-17", "2026-11-18"})
		eqStrings(t, "free", freeRuns, []string{"2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"})
		l19 := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
		if r, _ := s.Store().Latest("past", l19); r.State != StateQueued {
			t.Errorf("past 11-19 while 11-18 is failed: %+v, want queued", r)
		}

		mu.Lock()
		broken = false
		mu.Unlock()
		if r, err := s.RunNow(context.Background(), "past", "2026-11-18"); err != nil || r.State != StateSuccess {
			t.Fatalf("re-run of 11-18: %+v %v", r, err)
		}
		time.Sleep(time.Minute) // the next poll
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		pastRuns = nil
		for _, c := range rec.snapshot() {
			if c.job == "past" {
				pastRuns = append(pastRuns, c.ds)
			}
		}
		eqStrings(t, "past after the fix", pastRuns, []string{"2026-11-17", "2026-11-18", "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21"})
	})
}
