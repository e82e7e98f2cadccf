package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// outcomeJobs are upstream jobs with a known outcome for every ds, two of each (suffix
// 1, 2) so a downstream can have two upstreams with the same outcome: ok (succeeds),
// bad (fails, no retries), uf (depends on bad: upstream_failed), sk (one_failed on ok:
// skipped).
func outcomeJobs() []Def {
	var defs []Def
	for _, n := range []string{"1", "2"} {
		bad := daily("bad" + n)
		bad.Retries = -1
		sk := daily("sk"+n, "ok"+n)
		sk.TriggerRule = "one_failed"
		defs = append(defs, daily("ok"+n), bad, daily("uf"+n, "bad"+n), sk)
	}
	return defs
}

// outcomeKinds registers every job of defs as a "func" task of rec; bad* fail.
func outcomeKinds(rec *recorder, defs []Def) *Kinds {
	rec.fail = map[string]bool{"bad1": true, "bad2": true}
	var names []string
	for _, d := range defs {
		names = append(names, d.Name)
	}
	return rec.kinds(names...)
}

// triggerCases: per rule, a downstream of two upstreams with the given outcomes, and
// what becomes of it (success = it ran). As in Airflow, some rules decide on the first
// upstream run that settles them (all_success skips on a skipped one, none_failed
// fails on a failed one…); the cases leave out pairs where which upstream finishes
// first would change the outcome.
var triggerCases = []struct {
	rule   TriggerRule
	up1    string
	up2    string
	want   State
	reason string
}{
	{RuleAllSuccess, "ok", "ok", StateSuccess, ""},
	{RuleAllSuccess, "ok", "sk", StateSkipped, "upstream sk2 ds 2026-11-20 is skipped"},
	{RuleAllSuccess, "ok", "bad", StateUpstreamFailed, "upstream bad2 ds 2026-11-20 is failed"},
	{RuleAllSuccess, "ok", "uf", StateUpstreamFailed, "upstream uf2 ds 2026-11-20 is upstream_failed"},
	{RuleAllDone, "ok", "bad", StateSuccess, ""},
	{RuleAllDone, "sk", "uf", StateSuccess, ""},
	{RuleAllFailed, "bad", "uf", StateSuccess, ""},
	{RuleAllFailed, "bad", "ok", StateSkipped, "trigger_rule all_failed: upstream ok2 ds 2026-11-20 is success"},
	{RuleAllFailed, "bad", "sk", StateSkipped, "trigger_rule all_failed: upstream sk2 ds 2026-11-20 is skipped"},
	{RuleOneFailed, "ok", "bad", StateSuccess, ""},
	{RuleOneFailed, "uf", "sk", StateSuccess, ""},
	{RuleOneFailed, "ok", "sk", StateSkipped, "trigger_rule one_failed: no upstream run failed"},
	{RuleOneSuccess, "bad", "ok", StateSuccess, ""},
	{RuleOneSuccess, "bad", "uf", StateUpstreamFailed, "trigger_rule one_success: no upstream run succeeded (upstream bad1 ds 2026-11-20 is failed)"},
	{RuleOneSuccess, "sk", "sk", StateSkipped, "trigger_rule one_success: every upstream run was skipped"},
	{RuleNoneFailed, "ok", "sk", StateSuccess, ""},
	{RuleNoneFailed, "sk", "sk", StateSuccess, ""},
	{RuleNoneFailed, "sk", "uf", StateUpstreamFailed, "trigger_rule none_failed: upstream uf2 ds 2026-11-20 is upstream_failed"},
	{RuleAlways, "bad", "uf", StateSuccess, ""},
}

// Each trigger rule, in the scheduler: a downstream of two upstream jobs runs, is
// skipped or is upstream_failed as Airflow's rule says, and a skipped run passes its
// skip on to an all_success downstream of its own.
func TestTriggerRulesScheduler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20)
		rec := &recorder{now: now}
		defs := outcomeJobs()
		name := func(i int) string {
			c := triggerCases[i]
			return fmt.Sprintf("%s_%s_%s", c.rule, c.up1, c.up2)
		}
		for i, c := range triggerCases {
			d := daily(name(i), c.up1+"1", c.up2+"2")
			d.TriggerRule = string(c.rule)
			defs = append(defs, d)
		}
		defs = append(defs, daily("after_skipped", "one_failed_ok_sk"))
		s, err := New(mustCompile(t, defs, outcomeKinds(rec, defs)), Options{Dir: t.TempDir(), Now: now, Owner: "test", Parallelism: 64})
		if err != nil {
			t.Fatal(err)
		}
		mustStart(t, s)
		time.Sleep(24 * time.Hour) // 11-21 00:30: ds 2026-11-20 has ended
		synctest.Wait()
		st, err := s.Status()
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range st {
			if j.Name == "sk1" && (j.TriggerRule != RuleOneFailed || j.Last == nil || j.Last.State != StateSkipped) {
				t.Errorf("status of sk1: %+v", j)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		ran := map[string]bool{}
		for _, c := range rec.snapshot() {
			ran[c.job] = true
		}
		l := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		for i, c := range triggerCases {
			r, _ := s.Store().Latest(name(i), l)
			if r.State != c.want || r.Error != c.reason || ran[name(i)] != (c.want == StateSuccess) {
				t.Errorf("%s with upstreams %s, %s: state %s (%q), ran %v; want %s (%q)", c.rule, c.up1, c.up2, r.State, r.Error, ran[name(i)], c.want, c.reason)
			}
		}
		if r, _ := s.Store().Latest("after_skipped", l); r.State != StateSkipped || r.Error != "upstream one_failed_ok_sk ds 2026-11-20 is skipped" {
			t.Errorf("all_success after a skipped run: %+v", r)
		}
		if n := counterValue(s.metrics.runs.WithLabelValues("sk1", "skipped")); n != 1 {
			t.Errorf("runs_total{sk1,skipped} = %v", n)
		}
	})
}

// one_failed and one_success start as soon as one upstream run decides them, while the
// other is still running; always starts when its interval ends whatever the upstream
// runs do; all_done waits for the slow one.
func TestTriggerRulesDoNotWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20)
		rec := &recorder{now: now}
		bad := daily("bad")
		bad.Retries = -1
		defs := []Def{daily("ok"), bad, daily("slow")}
		for _, c := range []struct {
			name, rule string
			ups        []string
		}{{"alert", "one_failed", []string{"bad", "slow"}}, {"first", "one_success", []string{"ok", "slow"}},
			{"anyway", "always", []string{"slow", "bad"}}, {"cleanup", "all_done", []string{"ok", "slow"}}} {
			d := daily(c.name, c.ups...)
			d.TriggerRule = c.rule
			defs = append(defs, d)
		}
		k := outcomeKinds(rec, defs)
		slowTask := rec.task("slow")
		k.Register("slow", BuiltinKind(map[string]TaskFunc{"slow": func(ctx context.Context, rc RunContext) (int64, error) {
			time.Sleep(3 * time.Hour)
			return slowTask(ctx, rc)
		}}))
		defs[2].Task.Kind = "slow"
		rec.fail = map[string]bool{"bad": true}
		s := mustNew(t, mustCompile(t, defs, k), t.TempDir(), now)
		mustStart(t, s)
		time.Sleep(24 * time.Hour) // 11-21 00:30
		synctest.Wait()
		end := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
		at := map[string]time.Time{}
		for _, c := range rec.snapshot() {
			at[c.job] = c.at
		}
		for _, j := range []string{"alert", "first", "anyway"} {
			if !at[j].Equal(end) {
				t.Errorf("%s ran at %v, want at the interval's end %v without waiting for slow", j, at[j], end)
			}
		}
		if _, ok := at["cleanup"]; ok {
			t.Errorf("all_done cleanup ran at %v, before slow finished", at["cleanup"])
		}
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		for _, c := range rec.snapshot() {
			at[c.job] = c.at
		}
		if want := end.Add(3 * time.Hour); !at["cleanup"].Equal(want) {
			t.Errorf("cleanup ran at %v, want %v when slow finished", at["cleanup"], want)
		}
	})
}

// Through Backfill: all_done runs after a failed upstream and a good one; one_failed
// runs on the failed days, without waiting for the slow upstream, and is skipped on the
// good day, passing the skip on to an all_success job after it, whose depends_on_past
// lets the day after the skipped one run.
func TestTriggerRulesBackfill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		now := shiftedNow(nov25())
		rec.now = now
		funcs := map[string]TaskFunc{
			"load": func(ctx context.Context, rc RunContext) (int64, error) {
				if rc.DS != "2026-11-23" {
					return rec.task("broken")(ctx, rc)
				}
				return rec.task("load")(ctx, rc)
			},
			"slow": func(ctx context.Context, rc RunContext) (int64, error) {
				time.Sleep(time.Hour)
				return rec.task("slow")(ctx, rc)
			},
		}
		rec.fail = map[string]bool{"broken": true}
		for _, n := range []string{"cleanup", "alert", "page"} {
			funcs[n] = rec.task(n)
		}
		k := NewKinds()
		k.Register("func", BuiltinKind(funcs))
		load := daily("load")
		load.Retries = -1
		cleanup, alert := daily("cleanup", "load", "slow"), daily("alert", "load", "slow")
		cleanup.TriggerRule, alert.TriggerRule = "all_done", "one_failed"
		page := daily("page", "alert")
		page.DependsOnPast = true
		s := mustNew(t, mustCompile(t, []Def{load, daily("slow"), cleanup, alert, page}, k), t.TempDir(), now)
		defer s.Close()
		t0 := now()
		sum, err := s.Backfill(context.Background(), BackfillOptions{Jobs: []string{"cleanup", "page"}, Upstream: true,
			From: "2026-11-22", To: "2026-11-24", Parallel: 4})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]time.Duration{}
		for _, c := range rec.snapshot() {
			got[c.job+" "+c.ds] = c.at.Sub(t0)
		}
		want := map[string]time.Duration{
			"load 2026-11-22": 0, "slow 2026-11-22": time.Hour, "cleanup 2026-11-22": time.Hour,
			"alert 2026-11-22": 0, "page 2026-11-22": 0,
			"load 2026-11-23": 0, "slow 2026-11-23": time.Hour, "cleanup 2026-11-23": time.Hour,
			"load 2026-11-24": 0, "slow 2026-11-24": time.Hour, "cleanup 2026-11-24": time.Hour,
			"alert 2026-11-24": 0, "page 2026-11-24": time.Hour, // after page 11-23 was skipped
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("runs (job ds: when, from the start):\n got  %v\n want %v", got, want)
		}
		if sum.Total != 15 || sum.Succeeded != 11 || sum.Failed != 2 || sum.Skipped != 2 || sum.UpstreamFailed != 0 || sum.NotDue != 0 {
			t.Errorf("summary: %+v", sum)
		}
		if str := sum.String(); !strings.Contains(str, "2 skipped") || strings.Contains(str, "alert 2026-11-23") {
			t.Errorf("summary text:\n%s", str)
		}
		l23 := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
		if r, _ := s.Store().Latest("alert", l23); r.State != StateSkipped || r.Error != "trigger_rule one_failed: no upstream run failed" {
			t.Errorf("alert 11-23: %+v", r)
		}
		if r, _ := s.Store().Latest("page", l23); r.State != StateSkipped || r.Error != "upstream alert ds 2026-11-23 is skipped" {
			t.Errorf("page 11-23: %+v", r)
		}
	})
}

// An unknown trigger_rule is refused, naming the job and the field.
func TestCompileRefusesUnknownTriggerRule(t *testing.T) {
	d := Def{Name: "cleanup", Schedule: "@daily", TriggerRule: "none_skipped", Task: TaskSpec{Kind: "shell", Command: "true"}}
	_, err := Compile([]Def{d}, NewKinds(), DefaultDefaults())
	var de *DefError
	if !errors.As(err, &de) || de.Job != "cleanup" || de.Field != "trigger_rule" ||
		!strings.Contains(err.Error(), `job "cleanup": trigger_rule: unknown rule "none_skipped" (want all_success, all_done, all_failed, one_failed, one_success, none_failed, always)`) {
		t.Fatalf("got %v", err)
	}
	d.TriggerRule = ""
	dag, err := Compile([]Def{d}, NewKinds(), DefaultDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if j, _ := dag.Job("cleanup"); j.Rule() != RuleAllSuccess {
		t.Errorf("default rule %q", j.Rule())
	}
}

// depends_on_past lets a run go on after a skipped run before it, as after a success
// (Airflow's): a one_failed alert runs on the failed days 11-20 and 11-22 though it was
// skipped on 11-21.
func TestDependsOnPastAfterSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20)
		rec := &recorder{now: now, fail: map[string]bool{"broken": true}}
		k := NewKinds()
		k.Register("func", BuiltinKind(map[string]TaskFunc{
			"src": func(ctx context.Context, rc RunContext) (int64, error) {
				if rc.DS != "2026-11-21" {
					return rec.task("broken")(ctx, rc)
				}
				return rec.task("src")(ctx, rc)
			},
			"alert": rec.task("alert"),
		}))
		src, alert := daily("src"), daily("alert", "src")
		src.Retries, src.StartDate = -1, "2026-11-20"
		alert.TriggerRule, alert.DependsOnPast, alert.StartDate = "one_failed", true, "2026-11-20"
		s := mustNew(t, mustCompile(t, []Def{src, alert}, k), t.TempDir(), now)
		mustStart(t, s)
		time.Sleep(72 * time.Hour) // 11-23 00:30: 11-20 … 11-22 have ended
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		var runs []string
		for _, c := range rec.snapshot() {
			if c.job == "alert" {
				runs = append(runs, c.ds)
			}
		}
		eqStrings(t, "alert runs", runs, []string{"2026-11-20", "2026-11-22"})
		if r, _ := s.Store().Latest("alert", time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)); r.State != StateSkipped {
			t.Errorf("alert 11-21: %+v", r)
		}
	})
}

// CheckDeps (what `tagpipe jobs run` asks before a manual run) applies the trigger_rule
// and depends_on_past as the scheduler would, naming the upstream run and its state;
// RunOptions ignore them as Airflow's --ignore-dependencies / --ignore-depends-on-past.
func TestCheckDeps(t *testing.T) {
	r := &recorder{now: time.Now}
	load := daily("load")
	load.DependsOnPast = true
	cleanup := daily("cleanup", "extract")
	cleanup.TriggerRule = string(RuleOneFailed)
	s := mustNew(t, mustCompile(t, []Def{daily("extract"), daily("summary", "extract"), cleanup, load},
		r.kinds("extract", "summary", "cleanup", "load")), t.TempDir(), time.Now)
	defer s.Close()
	put := func(job, ds string, st State) {
		l, _ := time.Parse(time.DateOnly, ds)
		if err := s.Store().Append(Record{Job: job, DS: ds, Logical: l, State: st}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(job, ds string, o RunOptions, want string) {
		t.Helper()
		err := s.CheckDeps(job, ds, o)
		if fmt.Sprint(err) != want {
			t.Errorf("CheckDeps(%s, %s, %+v):\n got  %v\n want %s", job, ds, o, err, want)
		}
		var de *DepsError
		if err != nil && !errors.As(err, &de) {
			t.Errorf("not a *DepsError: %T", err)
		}
	}
	check("summary", "2026-11-20", RunOptions{}, `job "summary" ds 2026-11-20 not run: trigger_rule all_success does not hold yet: upstream extract ds 2026-11-20 has no run (--ignore-dependencies runs it anyway)`)
	put("extract", "2026-11-20", StateRunning)
	check("summary", "2026-11-20", RunOptions{}, `job "summary" ds 2026-11-20 not run: trigger_rule all_success does not hold yet: upstream extract ds 2026-11-20 is running (--ignore-dependencies runs it anyway)`)
	put("extract", "2026-11-20", StateFailed)
	check("summary", "2026-11-20", RunOptions{}, `job "summary" ds 2026-11-20 not run: trigger_rule all_success: upstream extract ds 2026-11-20 is failed (--ignore-dependencies runs it anyway)`)
	check("summary", "2026-11-20", RunOptions{IgnoreDependsOnPast: true}, `job "summary" ds 2026-11-20 not run: trigger_rule all_success: upstream extract ds 2026-11-20 is failed (--ignore-dependencies runs it anyway)`)
	check("summary", "2026-11-20", RunOptions{IgnoreDependencies: true}, "<nil>")
	check("cleanup", "2026-11-20", RunOptions{}, "<nil>") // one_failed holds
	put("extract", "2026-11-21", StateSuccess)
	check("summary", "2026-11-21", RunOptions{}, "<nil>")
	check("cleanup", "2026-11-21", RunOptions{}, `job "cleanup" ds 2026-11-21 not run: trigger_rule one_failed: no upstream run failed (--ignore-dependencies runs it anyway)`)

	check("load", "2026-11-20", RunOptions{}, "<nil>") // its first run
	put("load", "2026-11-20", StateFailed)
	check("load", "2026-11-21", RunOptions{}, `job "load" ds 2026-11-21 not run: depends_on_past: its run for ds 2026-11-20 is failed (--ignore-depends-on-past runs it anyway)`)
	check("load", "2026-11-21", RunOptions{IgnoreDependsOnPast: true}, "<nil>")
	check("load", "2026-11-21", RunOptions{IgnoreDependencies: true}, "<nil>")
	if err := s.CheckDeps("nope", "2026-11-21", RunOptions{}); err == nil || err.Error() != "unknown job \"nope\" (`tagpipe jobs list` lists the jobs)" {
		t.Errorf("unknown job: %v", err)
	}
}
