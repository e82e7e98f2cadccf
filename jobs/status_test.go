package jobs

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestStatusHandler(t *testing.T) {
	rec := &recorder{now: nov25, fail: map[string]bool{"b": true}}
	b := daily("b", "a")
	b.Retries = -1
	s := mustNew(t, mustCompile(t, []Def{daily("a"), b}, rec.kinds("a", "b")), t.TempDir(), nov25)
	defer s.Close()
	ctx := context.Background()
	s.RunNow(ctx, "a", "2026-11-23")
	s.RunNow(ctx, "b", "2026-11-23")
	s.RunNow(ctx, "a", "2026-11-24")
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/jobs?job=a")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Jobs []JobStatus
		Runs []Record
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if len(got.Jobs) != 2 || got.Jobs[0].Name != "a" || got.Jobs[1].DependsOn[0] != "a" {
		t.Fatalf("jobs: %+v", got.Jobs)
	}
	a, bb := got.Jobs[0], got.Jobs[1]
	if a.NextDS != "2026-11-25" || !a.NextRun.Equal(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)) || a.Last.DS != "2026-11-24" || a.LastSuccess.DS != "2026-11-24" {
		t.Errorf("a: %+v", a)
	}
	if a.Weight != 2 || a.PriorityWeight != 1 || a.WeightRule != WeightDownstream || bb.Weight != 1 {
		t.Errorf("weights: a %d (%d, %s), b %d; want 2 (1, downstream: b's 1 added), 1", a.Weight, a.PriorityWeight, a.WeightRule, bb.Weight)
	}
	if bb.Last.State != StateFailed || bb.LastSuccess != nil {
		t.Errorf("b: %+v", bb)
	}
	if len(got.Runs) != 2 || got.Runs[0].Job != "a" {
		t.Errorf("runs: %+v", got.Runs)
	}
}

// /v1/jobs lists the pools: a run in progress in one scheduler shows as a used slot of
// the shared pool db to another scheduler on the same dir (as to another process), with
// its holder; queued runs of the pool's jobs are counted; default_pool (parallelism) is
// per process.
func TestPoolStatus(t *testing.T) {
	dir := t.TempDir()
	started, finish := make(chan struct{}), make(chan struct{})
	k := NewKinds()
	k.Register("func", BuiltinKind(map[string]TaskFunc{
		"a": func(ctx context.Context, rc RunContext) (int64, error) {
			close(started)
			<-finish
			return 1, nil
		},
		"b": (&recorder{now: nov25}).task("b"),
	}))
	a, b := daily("a"), daily("b")
	a.Pool, b.Pool, b.PoolSlots = "db", "db", 2
	dflt := DefaultDefaults()
	dflt.Pools = map[string]int{"db": 3}
	dag, err := Compile([]Def{a, b}, k, dflt)
	if err != nil {
		t.Fatal(err)
	}
	runner := mustNew(t, dag, dir, nov25)
	defer runner.Close()
	done := make(chan error)
	go func() { _, err := runner.RunNow(context.Background(), "a", "2026-11-23"); done <- err }()
	<-started
	other := mustNew(t, dag, dir, nov25)
	defer other.Close()
	l := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	if err := other.Store().Append(Record{Job: "b", DS: "2026-11-24", Logical: l, State: StateQueued, Trigger: TriggerScheduled, Updated: nov25()}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(other.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Pools []PoolStatus }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	close(finish)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got.Pools) != 2 {
		t.Fatalf("pools: %+v", got.Pools)
	}
	dp, db := got.Pools[0], got.Pools[1]
	if dp.Name != DefaultPool || dp.Shared || dp.Slots != 4 || dp.Used != 0 || dp.Open != 4 {
		t.Errorf("default_pool: %+v", dp)
	}
	if db.Name != "db" || !db.Shared || db.Slots != 3 || db.Used != 1 || db.Open != 2 || db.Queued != 1 ||
		len(db.Holders) != 1 || !strings.HasSuffix(db.Holders[0], " a/20261123T000000Z") || !strings.HasPrefix(db.Holders[0], "slot-0: test ") {
		t.Errorf("db: %+v", db)
	}
	if st, err := other.Pools(); err != nil || st[1].Used != 0 {
		t.Errorf("after the run: %+v %v", st, err)
	}
}
