package jobs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// snapshotTree maps every file below root to its content.
func snapshotTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(root, p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var nov25 = func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }

// Backfilling 30 days twice (serial, then 4 in parallel) leaves identical partitions:
// each run overwrites its ds.
func TestBackfill30DaysIdempotent(t *testing.T) {
	dir := t.TempDir()
	table := filepath.Join(dir, "table")
	// The task (re)writes partition dt=<ds> atomically: tmp file + rename.
	cmd := `set -e; p="` + table + `/dt={{ds}}"; mkdir -p "$p"; ` +
		`printf 'user,day\n1,%s\n2,%s\n' "$TAGPIPE_DS" "$TAGPIPE_DS_NODASH" > "$p/.part.tmp"; ` +
		`mv "$p/.part.tmp" "$p/part-0.csv"; echo 2 > "$TAGPIPE_ROWS_FILE"`
	d := Def{Name: "daily_table", Schedule: "@daily", Task: TaskSpec{Kind: "shell", Command: cmd}}
	s, err := New(mustCompile(t, []Def{d}, NewKinds()), Options{Dir: filepath.Join(dir, "jobs"), Now: nov25})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var bar bytes.Buffer
	sum, err := s.Backfill(context.Background(), BackfillOptions{Jobs: []string{"daily_table"}, From: "2026-10-01", To: "2026-10-30", Progress: &bar})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total != 30 || sum.Succeeded != 30 || sum.Rows != 60 || sum.Failed != 0 {
		t.Fatalf("first backfill: %v", sum)
	}
	first := snapshotTree(t, table)
	if len(first) != 30 || first["dt=2026-10-07/part-0.csv"] != "user,day\n1,2026-10-07\n2,20261007\n" {
		t.Fatalf("partitions after first backfill: %d files: %v", len(first), first["dt=2026-10-07/part-0.csv"])
	}
	lines := strings.Split(strings.TrimSpace(bar.String()), "\n")
	if len(lines) != 30 || !strings.Contains(lines[29], "ds 30/30  runs 30/30") || !strings.Contains(lines[29], "rows 60") || !strings.Contains(lines[0], "ETA") {
		t.Errorf("progress: first %q last %q (%d lines)", lines[0], lines[len(lines)-1], len(lines))
	}

	sum, err = s.Backfill(context.Background(), BackfillOptions{Jobs: []string{"daily_table"}, From: "2026-10-01", To: "2026-10-30", Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Succeeded != 30 {
		t.Fatalf("second backfill: %v", sum)
	}
	second := snapshotTree(t, table)
	if len(second) != len(first) {
		t.Fatalf("second backfill: %d files, first %d", len(second), len(first))
	}
	for k, v := range first {
		if second[k] != v {
			t.Errorf("%s differs after re-run: %q vs %q", k, second[k], v)
		}
	}
	runs := s.Store().Runs("daily_table")
	if len(runs) != 30 || runs[0].DS != "2026-10-01" || runs[0].Trigger != TriggerBackfill {
		t.Errorf("history: %d runs, first %+v", len(runs), runs[0])
	}
}

// Backfill with upstream jobs runs them first for each ds; a failed upstream ds leaves
// its downstream upstream_failed; intervals not over yet are not run (not due).
func TestBackfillUpstreamAndFailures(t *testing.T) {
	rec := &recorder{now: nov25}
	funcs := map[string]TaskFunc{
		"extract": func(ctx context.Context, rc RunContext) (int64, error) {
			if rc.DS == "2026-11-23" {
				return rec.task("broken")(ctx, rc)
			}
			return rec.task("extract")(ctx, rc)
		},
		"tags": rec.task("tags"),
	}
	rec.fail = map[string]bool{"broken": true}
	k := NewKinds()
	k.Register("func", BuiltinKind(funcs))
	ex := daily("extract")
	ex.Retries = -1
	s := mustNew(t, mustCompile(t, []Def{ex, daily("tags", "extract")}, k), t.TempDir(), nov25)
	defer s.Close()
	sum, err := s.Backfill(context.Background(), BackfillOptions{Jobs: []string{"tags"}, Upstream: true, From: "2026-11-22", To: "2026-11-25", Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	eqStrings(t, "runs", sortedCopy(rec.seq()), []string{"extract 2026-11-22", "extract 2026-11-23", "extract 2026-11-24", "tags 2026-11-22", "tags 2026-11-24"})
	if sum.Total != 8 || sum.Succeeded != 4 || sum.Failed != 1 || sum.UpstreamFailed != 1 || sum.NotDue != 2 || sum.Skipped != 0 {
		t.Errorf("summary: %+v", sum)
	}
	if !strings.Contains(sum.String(), "tags 2026-11-23: upstream extract ds 2026-11-23 is failed") {
		t.Errorf("summary text:\n%s", sum)
	}
	for _, c := range rec.snapshot() {
		if c.job == "tags" {
			// tags ran after its extract.
			for _, e := range rec.snapshot() {
				if e.job == "extract" && e.ds == c.ds && e.at.After(c.at) {
					t.Errorf("tags %s before extract", c.ds)
				}
			}
		}
	}
	if _, err := s.Backfill(context.Background(), BackfillOptions{Jobs: []string{"nope"}, From: "2026-11-01", To: "2026-11-02"}); err == nil || !strings.Contains(err.Error(), `unknown job "nope"`) {
		t.Errorf("unknown job: %v", err)
	}
	if _, err := s.Backfill(context.Background(), BackfillOptions{Jobs: []string{"tags"}, From: "2026-11-05", To: "2026-11-02"}); err == nil {
		t.Error("reversed range accepted")
	}
}

// A backfill of a depends_on_past job runs its days one after the other, whatever
// --parallel says, and a failed day leaves the later ones upstream_failed, not run.
func TestBackfillDependsOnPast(t *testing.T) {
	rec := &recorder{now: nov25}
	funcs := map[string]TaskFunc{
		"past": func(ctx context.Context, rc RunContext) (int64, error) {
			if rc.DS == "2026-11-23" {
				return rec.task("broken")(ctx, rc)
			}
			return rec.task("past")(ctx, rc)
		},
	}
	rec.fail = map[string]bool{"broken": true}
	k := NewKinds()
	k.Register("func", BuiltinKind(funcs))
	past := daily("past")
	past.Retries, past.DependsOnPast = -1, true
	s := mustNew(t, mustCompile(t, []Def{past}, k), t.TempDir(), nov25)
	defer s.Close()
	sum, err := s.Backfill(context.Background(), BackfillOptions{Jobs: []string{"past"}, From: "2026-11-20", To: "2026-11-24", Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	eqStrings(t, "runs", rec.seq(), []string{"past 2026-11-20", "past 2026-11-21", "past 2026-11-22", "past 2026-11-23"})
	if sum.Succeeded != 3 || sum.Failed != 1 || sum.UpstreamFailed != 1 {
		t.Errorf("summary: %+v", sum)
	}
	if !strings.Contains(sum.String(), "past 2026-11-24: depends_on_past: its run for ds 2026-11-23 is failed") {
		t.Errorf("summary text:\n%s", sum)
	}
}
