package jobs

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
	if bb.Last.State != StateFailed || bb.LastSuccess != nil {
		t.Errorf("b: %+v", bb)
	}
	if len(got.Runs) != 2 || got.Runs[0].Job != "a" {
		t.Errorf("runs: %+v", got.Runs)
	}
}
