package jobs

import (
	"context"
	"errors"
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

// weightDAG is extract → {clean, audit} → report, and side alone, with own weights
// extract 6, clean 2, audit 3, report 4, side 5, all with weight_rule rule.
func weightDAG(rule string) []Def {
	defs := []Def{daily("extract"), daily("clean", "extract"), daily("audit", "extract"), daily("report", "clean", "audit"), daily("side")}
	for i, w := range []int{6, 2, 3, 4, 5} {
		defs[i].PriorityWeight, defs[i].WeightRule = &w, rule
		defs[i].StartDate = "2026-11-18"
	}
	return defs
}

// Effective weights per weight_rule (each related job counted once, though report is
// reached from extract by two paths), the queue order they give runs of two days
// (weight, then logical date, then name), and the order a scheduler with parallelism 1
// runs two days of catch-up in: the highest-weighted run whose dependencies hold starts
// first.
func TestWeightRules(t *testing.T) {
	for _, c := range []struct {
		rule    string
		weights map[string]int
		queue   []string
		runs    []string
	}{
		{
			rule:    "", // downstream
			weights: map[string]int{"extract": 15, "clean": 6, "audit": 7, "report": 4, "side": 5},
			queue:   []string{"extract 1", "extract 2", "audit 1", "audit 2", "clean 1", "clean 2", "side 1", "side 2", "report 1", "report 2"},
			runs:    []string{"extract 1", "extract 2", "audit 1", "audit 2", "clean 1", "clean 2", "side 1", "side 2", "report 1", "report 2"},
		},
		{
			rule:    WeightUpstream,
			weights: map[string]int{"extract": 6, "clean": 8, "audit": 9, "report": 15, "side": 5},
			queue:   []string{"report 1", "report 2", "audit 1", "audit 2", "clean 1", "clean 2", "extract 1", "extract 2", "side 1", "side 2"},
			// Each day's DAG is finished before the next one's starts.
			runs: []string{"extract 1", "audit 1", "clean 1", "report 1", "extract 2", "audit 2", "clean 2", "report 2", "side 1", "side 2"},
		},
		{
			rule:    WeightAbsolute,
			weights: map[string]int{"extract": 6, "clean": 2, "audit": 3, "report": 4, "side": 5},
			queue:   []string{"extract 1", "extract 2", "side 1", "side 2", "report 1", "report 2", "audit 1", "audit 2", "clean 1", "clean 2"},
			runs:    []string{"extract 1", "extract 2", "side 1", "side 2", "audit 1", "audit 2", "clean 1", "report 1", "clean 2", "report 2"},
		},
	} {
		t.Run("rule="+c.rule, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				now := shiftedNow(nov20)
				r := &recorder{now: now}
				dag := mustCompile(t, weightDAG(c.rule), r.kinds("extract", "clean", "audit", "report", "side"))
				for name, want := range c.weights {
					if j, _ := dag.Job(name); j.Weight() != want {
						t.Errorf("%s: effective weight %d, want %d", name, j.Weight(), want)
					}
				}
				d1, d2 := time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
				day := map[string]string{"2026-11-18": "1", "2026-11-19": "2"}
				var ranks []rank
				for _, n := range []string{"side", "report", "clean", "audit", "extract"} {
					j, _ := dag.Job(n)
					ranks = append(ranks, rankOf(j, d2), rankOf(j, d1))
				}
				sort.Slice(ranks, func(a, b int) bool { return ranks[a].before(ranks[b]) })
				var queue []string
				for _, rk := range ranks {
					queue = append(queue, rk.job+" "+day[rk.logical.Format(time.DateOnly)])
				}
				eqStrings(t, "queue order", queue, c.queue)

				s, err := New(dag, Options{Dir: t.TempDir(), Now: now, Owner: "test", Parallelism: 1})
				if err != nil {
					t.Fatal(err)
				}
				mustStart(t, s)
				time.Sleep(time.Minute)
				synctest.Wait()
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				var runs []string
				for _, cl := range r.snapshot() {
					runs = append(runs, cl.job+" "+day[cl.ds])
				}
				eqStrings(t, "run order", runs, c.runs)
			})
		})
	}
}

// A bad weight_rule and a negative priority_weight are refused at load, naming job and
// key; priority_weight 0 is allowed (the lowest).
func TestWeightChecked(t *testing.T) {
	k := (&recorder{}).kinds("a", "b")
	neg, zero := -2, 0
	a, b := daily("a"), daily("b")
	a.WeightRule, b.PriorityWeight = "sideways", &neg
	_, err := Compile([]Def{a, b}, k, DefaultDefaults())
	for _, want := range []string{
		`job "a": weight_rule: unknown rule "sideways" (want downstream, upstream or absolute)`,
		`job "b": priority_weight: must be >= 0, got -2`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v\nwant it to contain %s", err, want)
		}
	}
	a, b = daily("a"), daily("b", "a")
	a.PriorityWeight = &zero
	dag, err := Compile([]Def{a, b}, k, DefaultDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if ja, _ := dag.Job("a"); ja.Weight() != 1 || ja.PriorityWeight() != 0 || ja.WeightRule() != WeightDownstream {
		t.Errorf("a: weight %d own %d rule %s, want 1 (0 + b's 1), 0, downstream", ja.Weight(), ja.PriorityWeight(), ja.WeightRule())
	}
	// The same keys in a job file.
	_, err = ParseDefs([]byte("jobs:\n  - {name: c, schedule: '@daily', priority_weight: 7, weight_rule: upstream, task: {kind: func, name: a}}\n"), "f.yaml")
	if err != nil {
		t.Fatal(err)
	}
}

// slotTimes is a set of in-process tasks that log "job HH:MM" when they start (on the
// injected clock) and then take the time their job is given.
type slotTimes struct {
	mu     sync.Mutex
	now    func() time.Time
	starts []string
	at     map[string][]time.Time
}

func (st *slotTimes) kinds(takes map[string]time.Duration) *Kinds {
	funcs := map[string]TaskFunc{}
	for name, d := range takes {
		funcs[name] = func(ctx context.Context, rc RunContext) (int64, error) {
			st.mu.Lock()
			at := st.now()
			st.starts = append(st.starts, fmt.Sprintf("%s %s", rc.Job, at.Format("15:04")))
			if st.at == nil {
				st.at = map[string][]time.Time{}
			}
			st.at[rc.Job] = append(st.at[rc.Job], at)
			st.mu.Unlock()
			select {
			case <-time.After(d):
				return 1, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}
	k := NewKinds()
	k.Register("func", BuiltinKind(funcs))
	return k
}

// In a 2-slot pool busy with a stream of 1-slot runs (two hourly jobs with a long
// catch-up backlog, runs of 40m and 60m), a 2-slot run of weight 10 that becomes due at
// 01:00 is not overtaken: when the 40m run ends at 01:10 its slot stays free (no 1-slot
// run behind it in the queue may take it), and the 2-slot run starts at 01:30 when the
// 60m run ends. Nothing else in the pool starts in between.
func TestPriorityNotOvertakenInPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20) // 00:30
		st := &slotTimes{now: now}
		k := st.kinds(map[string]time.Duration{"low_a": 40 * time.Minute, "low_b": time.Hour, "big": 10 * time.Minute})
		lowA, lowB := daily("low_a"), daily("low_b")
		for _, d := range []*Def{&lowA, &lowB} {
			d.Schedule, d.StartDate, d.Pool = "@hourly", "2026-11-19", "db"
		}
		ten := 10
		big := Def{Name: "big", Schedule: "0 1 * * *", StartDate: "2026-11-19", Pool: "db", PoolSlots: 2, PriorityWeight: &ten,
			Task: TaskSpec{Kind: "func", Name: "big"}}
		dflt := DefaultDefaults()
		dflt.Pools = map[string]int{"db": 2}
		dag, err := Compile([]Def{lowA, lowB, big}, k, dflt)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		s, err := New(dag, Options{Dir: dir, Now: now, Owner: "test", Parallelism: 4})
		if err != nil {
			t.Fatal(err)
		}
		mustStart(t, s)
		time.Sleep(time.Hour) // to 01:30
		synctest.Wait()
		if u, _ := poolUsage(filepath.Join(dir, "pools", "db"), 0); u.Used != 2 || !strings.Contains(strings.Join(u.Holders, " "), "test big/") {
			t.Errorf("at 01:30 pool db: %+v, want both slots held by big", u)
		}
		time.Sleep(10 * time.Minute) // to 01:40
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		st.mu.Lock()
		starts := append([]string(nil), st.starts...)
		st.mu.Unlock()
		// Runs starting at one instant log in either order: by time, then job.
		sort.SliceStable(starts, func(a, b int) bool {
			ja, ta, _ := strings.Cut(starts[a], " ")
			jb, tb, _ := strings.Cut(starts[b], " ")
			return ta < tb || ta == tb && ja < jb
		})
		eqStrings(t, "starts", starts, []string{"low_a 00:30", "low_b 00:30", "big 01:30", "low_a 01:40", "low_b 01:40"})
	})
}

// Two parties of one process (the scheduler's queue and a backfill's, say) share each
// pool's queue: a 2-slot run refused while one slot is free keeps a 1-slot run of the
// other party ranked after it from taking that slot; once it starts, the party behind it
// is woken; a run that stops waiting (its round ends without it) frees its place.
func TestSlotQueueAcrossParties(t *testing.T) {
	p := newPools(t.TempDir(), map[string]int{"db": 2}, map[string]bool{"db": true})
	sched, bf := p.queue(), p.queue()
	l := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	big, low := rank{weight: 10, logical: l, job: "big"}, rank{weight: 1, logical: l, job: "low"}
	other, _, _ := p.tryAcquire("db", 1, "other run")
	if other == nil {
		t.Fatal("the pool is empty")
	}
	take := func(q *slotQueue, rk rank, n int) *poolHold {
		t.Helper()
		q.begin()
		defer q.end()
		h, others, err := q.take(rk, "db", n, rk.job)
		if err != nil || others {
			t.Fatalf("take %s: %v, others %v", rk, err, others)
		}
		return h
	}
	if take(sched, big, 2) != nil {
		t.Fatal("big took 2 slots with 1 free")
	}
	woken := p.changed()
	if take(bf, low, 1) != nil {
		t.Fatal("low, ranked after the waiting big, took the free slot")
	}
	p.release(other)
	<-woken
	woken = p.changed()
	h := take(sched, big, 2)
	if h == nil {
		t.Fatal("big did not get the 2 free slots")
	}
	select {
	case <-woken:
	default:
		t.Fatal("big's start did not wake the party behind it")
	}
	p.release(h)
	// big waits again behind a held slot, then its round ends without it (it is held
	// back by something else now): low may go.
	other, _, _ = p.tryAcquire("db", 1, "other run")
	if take(sched, big, 2) != nil || take(bf, low, 1) != nil {
		t.Fatal("big or low started while big waits")
	}
	woken = p.changed()
	sched.begin()
	sched.end()
	<-woken
	lh := take(bf, low, 1)
	if lh == nil {
		t.Fatal("low did not start after big left the queue")
	}
	p.release(lh)
	p.release(other)
	sched.close()
	bf.close()
	if len(p.waiting) != 0 {
		t.Errorf("waiters left: %v", p.waiting)
	}
}

// retryGap is two daily jobs in a 1-slot pool "db": flaky (weight 2, one retry after
// 10m) fails its attempt 1 and succeeds its attempt 2 (calling atAttempt2 first, if
// set), other takes 15m. Calls are logged as "flaky#1 HH:MM", "other HH:MM".
type retryGap struct {
	dag   *DAG
	mu    sync.Mutex
	calls []string
}

func newRetryGap(t *testing.T, now func() time.Time, atAttempt2 func()) *retryGap {
	t.Helper()
	g := &retryGap{}
	log := func(s string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		g.calls = append(g.calls, s+" "+now().Format("15:04"))
	}
	k := NewKinds()
	k.Register("func", BuiltinKind(map[string]TaskFunc{
		"flaky": func(ctx context.Context, rc RunContext) (int64, error) {
			log(fmt.Sprintf("flaky#%d", rc.Attempt))
			if rc.Attempt == 1 {
				return 0, errors.New("flaky is broken once")
			}
			if atAttempt2 != nil {
				atAttempt2()
			}
			return 1, nil
		},
		"other": func(ctx context.Context, rc RunContext) (int64, error) {
			log("other")
			time.Sleep(15 * time.Minute)
			return 1, nil
		},
	}))
	two := 2
	flaky, other := daily("flaky"), daily("other")
	flaky.Pool, other.Pool = "db", "db"
	flaky.PriorityWeight, flaky.Retries, flaky.RetryDelay = &two, 1, 10*time.Minute
	dflt := DefaultDefaults()
	dflt.Pools = map[string]int{"db": 1}
	dag, err := Compile([]Def{other, flaky}, k, dflt)
	if err != nil {
		t.Fatal(err)
	}
	g.dag = dag
	return g
}

func (g *retryGap) seq() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.calls...)
}

// A run waiting for its retry holds no pool slot (Airflow's up_for_retry): in a 1-slot
// pool, flaky's attempt 1 fails at 00:00, other (15m) runs in the gap, and flaky's
// retry, due at 00:10, takes the slot again once other has given it back at 00:15,
// holding it through attempt 2. The run keeps its start and counts its attempts on.
func TestRetryFreesPoolSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20)
		dir := t.TempDir()
		var holdersAt2 slotUsage
		g := newRetryGap(t, now, func() { holdersAt2, _ = poolUsage(filepath.Join(dir, "pools", "db"), 0) })
		s, err := New(g.dag, Options{Dir: dir, Now: now, Owner: "test", Parallelism: 4})
		if err != nil {
			t.Fatal(err)
		}
		mustStart(t, s)
		end := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC) // ds 2026-11-20 is due
		time.Sleep(end.Add(5 * time.Minute).Sub(now()))
		synctest.Wait()
		l := end.AddDate(0, 0, -1)
		if r, _ := s.Store().Latest("flaky", l); r.State != StateUpForRetry || r.Attempt != 1 {
			t.Errorf("flaky at 00:05: %+v, want up_for_retry after attempt 1", r)
		}
		pools, err := s.Pools()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pools {
			if p.Name == "db" && (p.Used != 1 || len(p.Holders) != 1 || !strings.Contains(p.Holders[0], "other/")) {
				t.Errorf("pool db at 00:05: %+v, want its slot held by other only", p)
			}
		}
		time.Sleep(15 * time.Minute) // to 00:20
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		eqStrings(t, "calls", g.seq(), []string{"flaky#1 00:00", "other 00:00", "flaky#2 00:15"})
		if holdersAt2.Used != 1 || !strings.Contains(holdersAt2.Holders[0], "flaky/") {
			t.Errorf("pool db during attempt 2: %+v, want flaky's", holdersAt2)
		}
		r, _ := s.Store().Latest("flaky", l)
		if r.State != StateSuccess || r.Attempt != 2 || !r.Start.Equal(end) || !r.End.Equal(end.Add(15*time.Minute)) {
			t.Errorf("flaky: %+v, want success at attempt 2, started 00:00, ended 00:15", r)
		}
	})
}

// A run left up_for_retry by a scheduler that stopped goes on after a restart with its
// next attempt once its backoff (from the failed attempt's end) is over, not afresh.
func TestRetryResumesAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		now := shiftedNow(nov20)
		r := &recorder{now: now, fail: map[string]bool{"flaky": true}}
		flaky := daily("flaky")
		flaky.Retries, flaky.RetryDelay, flaky.StartDate = 2, 10*time.Minute, "2026-11-19"
		dag := mustCompile(t, []Def{flaky}, r.kinds("flaky"))
		s := mustNew(t, dag, dir, now)
		mustStart(t, s)
		time.Sleep(time.Minute) // attempt 1 at 00:30, failed
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Minute) // down until 00:34
		s = mustNew(t, dag, dir, now)
		mustStart(t, s)
		time.Sleep(time.Hour)
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range r.snapshot() {
			got = append(got, fmt.Sprintf("#%d %s", c.attempt, c.at.Format("15:04")))
		}
		// Backoff 10m after attempt 1, 20m after attempt 2.
		eqStrings(t, "attempts", got, []string{"#1 00:30", "#2 00:40", "#3 01:00"})
		l := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
		if rec, _ := s.Store().Latest("flaky", l); rec.State != StateFailed || rec.Attempt != 3 {
			t.Errorf("flaky: %+v", rec)
		}
	})
}

// sensor_mode reschedule gives the pool slot back between pokes, poke mode keeps it: in
// a 1-slot pool, other (ranked after waiter) runs at once while a rescheduling waiter
// waits for its file, and only after a poking one has run.
func TestSensorModesAndPoolSlots(t *testing.T) {
	for _, c := range []struct {
		mode     string
		usedAt3  int
		otherRan string
	}{
		{SensorModeReschedule, 0, "00:00"},
		{SensorModePoke, 1, "00:06"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				dir, drop := t.TempDir(), t.TempDir()
				now := shiftedNow(nov20)
				r := &recorder{now: now}
				two := 2
				waiter, other := daily("waiter"), daily("other")
				waiter.Pool, other.Pool = "db", "db"
				waiter.PriorityWeight, waiter.SensorMode, waiter.PokeInterval = &two, c.mode, time.Minute
				waiter.WaitFor = []SensorSpec{{Kind: "file", Path: filepath.Join(drop, "{{ds}}.done")}}
				dflt := DefaultDefaults()
				dflt.Pools = map[string]int{"db": 1}
				dag, err := Compile([]Def{waiter, other}, r.kinds("waiter", "other"), dflt)
				if err != nil {
					t.Fatal(err)
				}
				s, err := New(dag, Options{Dir: dir, Now: now, Owner: "test", Parallelism: 4})
				if err != nil {
					t.Fatal(err)
				}
				mustStart(t, s)
				end := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
				time.Sleep(end.Add(3*time.Minute + 30*time.Second).Sub(now()))
				synctest.Wait()
				if u, _ := poolUsage(filepath.Join(dir, "pools", "db"), 0); u.Used != c.usedAt3 {
					t.Errorf("pool db used %d while waiter waits, want %d", u.Used, c.usedAt3)
				}
				time.Sleep(2 * time.Minute) // 00:05:30
				os.WriteFile(filepath.Join(drop, "2026-11-20.done"), nil, 0o644)
				time.Sleep(5 * time.Minute)
				synctest.Wait()
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, cl := range r.snapshot() {
					got = append(got, cl.job+" "+cl.at.Format("15:04"))
				}
				want := []string{"other " + c.otherRan, "waiter 00:06"}
				if c.mode == SensorModePoke {
					want = []string{"waiter 00:06", "other 00:06"}
				}
				eqStrings(t, "runs", got, want)
			})
		})
	}
}

// A backfill's run gives its pool slot back while it waits for its retry as a scheduled
// run does, and goes on with attempt 2 (not afresh): with --parallel 2 in a 1-slot
// pool, other (15m) runs in flaky's 10m retry gap and flaky's attempt 2 follows it.
func TestBackfillRetryFreesPoolSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20) // 00:30
		g := newRetryGap(t, now, nil)
		s, err := New(g.dag, Options{Dir: t.TempDir(), Now: now, Owner: "test"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sum, err := s.Backfill(context.Background(), BackfillOptions{Jobs: []string{"other", "flaky"}, From: "2026-11-18", To: "2026-11-18", Parallel: 2})
		if err != nil || sum.Succeeded != 2 {
			t.Fatalf("backfill: %v %v", sum, err)
		}
		eqStrings(t, "calls", g.seq(), []string{"flaky#1 00:30", "other 00:30", "flaky#2 00:45"})
		r, _ := s.Store().Latest("flaky", time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC))
		if r.State != StateSuccess || r.Attempt != 2 || r.Trigger != TriggerBackfill {
			t.Errorf("flaky: %+v", r)
		}
	})
}
