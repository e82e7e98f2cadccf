package jobs

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Two jobs in a 1-slot pool never run at once, with parallelism 4 and a backfill of both
// in the same process meanwhile (it shares the pool); a job in the default pool runs
// beside them; every run succeeds.
func TestPools(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := shiftedNow(nov20)
		var mu sync.Mutex
		inPool, peakPool, total, peakTotal, runs := 0, 0, 0, 0, 0
		slow := func(ctx context.Context, rc RunContext) (int64, error) {
			pooled := rc.Job != "free"
			mu.Lock()
			if pooled {
				inPool++
				peakPool = max(peakPool, inPool)
			}
			total++
			peakTotal = max(peakTotal, total)
			mu.Unlock()
			time.Sleep(time.Hour)
			mu.Lock()
			if pooled {
				inPool--
			}
			total--
			runs++
			mu.Unlock()
			return 1, nil
		}
		k := NewKinds()
		k.Register("func", BuiltinKind(map[string]TaskFunc{"a": slow, "b": slow, "free": slow}))
		a, b, free := daily("a"), daily("b"), daily("free")
		a.Pool, b.Pool = "db", "db"
		for _, d := range []*Def{&a, &b, &free} {
			d.StartDate, d.MaxActiveRuns = "2026-11-17", 3
		}
		dflt := DefaultDefaults()
		dflt.Pools = map[string]int{"db": 1}
		dag, err := Compile([]Def{a, b, free}, k, dflt)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(dag, Options{Dir: t.TempDir(), Now: now, Parallelism: 4})
		if err != nil {
			t.Fatal(err)
		}
		mustStart(t, s)
		sum, err := s.Backfill(context.Background(), BackfillOptions{Jobs: []string{"a", "b"}, From: "2026-11-10", To: "2026-11-12", Parallel: 4})
		if err != nil || sum.Succeeded != 6 {
			t.Fatalf("backfill: %v %v", sum, err)
		}
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		// Scheduled: 11-17 … 11-20 of each job (the 14 hour-long runs in pool db end
		// before 11-22); backfilled: 3 days of a and b.
		if peakPool != 1 || runs != 18 || peakTotal < 2 {
			t.Errorf("peak in pool db %d (want 1), runs %d (want 18), peak overall %d (want free beside them)", peakPool, runs, peakTotal)
		}
		for _, r := range s.Store().Runs("") {
			if r.State != StateSuccess && r.State != StateScheduled {
				t.Errorf("%s %s %s", r.Job, r.DS, r.State)
			}
		}
	})
}

// An unknown pool is refused at load naming job and field, as are pool_slots a pool
// cannot hold (the default pool's size is the scheduler's parallelism).
func TestPoolsChecked(t *testing.T) {
	k := (&recorder{}).kinds("a")
	dflt := DefaultDefaults()
	dflt.Pools = map[string]int{"db": 2, "api": 1}
	bad := func(pool string, slots int) Def {
		d := daily("a")
		d.Pool, d.PoolSlots = pool, slots
		return d
	}
	for _, c := range []struct {
		def  Def
		want string
	}{
		{bad("nope", 0), `job "a": pool: unknown pool "nope" (jobs.pools has default_pool, api, db)`},
		{bad("db", 3), `job "a": pool_slots: 3 is more than pool "db"'s 2 slots: it could never run`},
		{bad("db", -1), `job "a": pool_slots: must be > 0, got -1`},
	} {
		if _, err := Compile([]Def{c.def}, k, dflt); err == nil || err.Error() != c.want {
			t.Errorf("%s/%d:\n got  %v\n want %s", c.def.Pool, c.def.PoolSlots, err, c.want)
		}
	}
	dag, err := Compile([]Def{bad("", 5)}, k, dflt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(dag, Options{Dir: t.TempDir(), Parallelism: 4}); err == nil ||
		!strings.Contains(err.Error(), `job "a": pool_slots: 5 is more than pool "default_pool"'s 4 slots`) {
		t.Errorf("default pool: %v", err)
	}
	dflt.Pools[DefaultPool] = 8 // sized in jobs.pools
	if dag, err = Compile([]Def{bad("", 5)}, k, dflt); err != nil {
		t.Fatal(err)
	}
	s, err := New(dag, Options{Dir: t.TempDir(), Parallelism: 4})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
