package jobs

import (
	"context"
	"path/filepath"
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

// Shared slots between pool users that stand for processes with their own configs (flock
// excludes two open files in one process as it does two processes): pool_slots 2 is
// all-or-nothing; after the pool shrinks from 3 to 2, slots still held above the new
// size count against it; after it grows to 4 the new slots are used.
func TestPoolSlotsShrinkGrow(t *testing.T) {
	dir := t.TempDir()
	proc := func(size int) *pools {
		return newPools(dir, map[string]int{"db": size}, map[string]bool{"db": true})
	}
	take := func(p *pools, n int) *poolHold {
		t.Helper()
		h, _, err := p.tryAcquire("db", n, "test")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	slotsOf := func(h *poolHold) (s []string) {
		for _, f := range h.files {
			s = append(s, filepath.Base(f.Name()))
		}
		return s
	}
	old, edited := proc(3), proc(2)
	a, b, c := take(old, 1), take(old, 1), take(old, 1)
	if a == nil || b == nil || c == nil || take(old, 1) != nil {
		t.Fatal("a 3-slot pool should hold exactly 3 runs")
	}
	eqStrings(t, "slots", slotsOf(c), []string{"slot-2"})
	if take(edited, 1) != nil {
		t.Fatal("edited (2 slots) took a slot while 3 are held")
	}
	old.release(a)
	if take(edited, 1) != nil {
		t.Fatal("edited (2 slots) took a slot while 2 are held (slot-2 above its size counts)")
	}
	old.release(b)
	d := take(edited, 1)
	if d == nil || take(edited, 1) != nil {
		t.Fatal("edited should take exactly one slot beside the held slot-2")
	}
	eqStrings(t, "slots", slotsOf(d), []string{"slot-0"})
	// The old process sees the pool as its own 3 slots: one left.
	if e := take(old, 1); e == nil {
		t.Fatal("old (3 slots) should take slot-1")
	} else {
		old.release(e)
	}
	grown := proc(4)
	two := take(grown, 2)
	if two == nil {
		t.Fatal("grown (4 slots) should take 2 of slots 1 and 3")
	}
	eqStrings(t, "slots", slotsOf(two), []string{"slot-1", "slot-3"})
	old.release(c)
	if take(grown, 2) != nil {
		t.Fatal("grown took 2 slots with 1 free")
	}
	// All or nothing: the refused 2-slot take left slot-2 free.
	one := take(grown, 1)
	if one == nil {
		t.Fatal("the slot a refused 2-slot take tried must be free again")
	}
	st, err := poolUsage(filepath.Join(dir, "pools", "db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Used != 4 || len(st.Holders) != 4 {
		t.Errorf("usage %+v, want 4 used", st)
	}
	edited.release(d)
	grown.release(two)
	grown.release(one)
	if st, _ := poolUsage(filepath.Join(dir, "pools", "db"), 0); st.Used != 0 {
		t.Errorf("usage after release %+v", st)
	}
}

// A waiter file's name says its run's rank (job names may hold '-' and '.'), and
// waitsBefore orders waiters as rank.before does, then by registration; a run not
// registered yet comes after every waiter of its own rank.
func TestWaiterFileNames(t *testing.T) {
	l := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
	for _, rk := range []rank{{weight: 0, logical: l, job: "a"}, {weight: 1<<31 - 1, logical: l, job: "load-x.v2"},
		{weight: 7, logical: l.Add(90 * time.Second), job: "_b"}} {
		name := waitName(rk, "0000000000000000042.7.1")
		got, reg, ok := parseWaitName(name)
		if !ok || got != rk || reg != "0000000000000000042.7.1" {
			t.Errorf("%s: %+v %q %v, want %+v", name, got, reg, ok, rk)
		}
	}
	for _, bad := range []string{"slot-0", "wait-x-20261119T000000Z-1-a", "wait-1-2026-1-a", "wait-1-20261119T000000Z-1-"} {
		if _, _, ok := parseWaitName(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	hi, lo := rank{weight: 5, logical: l, job: "z"}, rank{weight: 1, logical: l.AddDate(0, 0, -1), job: "a"}
	switch {
	case !waitsBefore(hi, "2", lo, "1"), waitsBefore(lo, "1", hi, "2"):
		t.Error("weight first")
	case !waitsBefore(lo, "2", lo, "3"), waitsBefore(lo, "3", lo, "2"), waitsBefore(lo, "2", lo, "2"):
		t.Error("same run: earlier registration first")
	case !waitsBefore(lo, "9", lo, ""):
		t.Error("an unregistered run is behind its own rank's waiters")
	}
}
