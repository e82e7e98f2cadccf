package main

import (
	"log/slog"
	"testing"
	"time"

	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/jobs"
)

// TestRecentJobRuns: the console's recent runs leave out runs only scheduled (a plan for
// an interval not ended yet), newest first, at most limit.
func TestRecentJobRuns(t *testing.T) {
	st, err := jobs.OpenStore(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	day := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	for i, r := range []jobs.Record{
		{Job: "a", DS: "2026-11-24", Logical: day.AddDate(0, 0, -1), State: jobs.StateSuccess},
		{Job: "a", DS: "2026-11-25", Logical: day, State: jobs.StateFailed},
		{Job: "a", DS: "2026-11-26", Logical: day.AddDate(0, 0, 1), State: jobs.StateScheduled},
		{Job: "b", DS: "2026-11-25", Logical: day, State: jobs.StateRunning},
	} {
		r.Updated = day.Add(time.Duration(i) * time.Minute)
		if err := st.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	got := recentJobRuns(st, 2)
	if len(got) != 2 || got[0].Job != "b" || got[1].DS != "2026-11-25" || got[1].State != "failed" {
		t.Fatalf("recent runs %+v", got)
	}
	if all := recentJobRuns(st, 50); len(all) != 3 {
		t.Fatalf("recent runs %+v, want the three that are not only scheduled", all)
	}
}

func TestAnonymousNotSuper(t *testing.T) {
	for _, c := range []struct {
		over map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"broker.authorizer": "acl"}, true},
		{map[string]string{"broker.authorizer": "acl", "broker.super_users": "[User:admin, User:ANONYMOUS]"}, false},
		{map[string]string{"broker.authorizer": "acl", "broker.allow_everyone_if_no_acl_found": "true"}, false},
	} {
		cfg, err := config.Load(config.LoadOptions{Environ: []string{}, Overrides: c.over})
		if err != nil {
			t.Fatal(err)
		}
		if got := anonymousNotSuper(cfg); got != c.want {
			t.Errorf("%v: anonymousNotSuper = %v, want %v", c.over, got, c.want)
		}
	}
}
