package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tagpipe/tagpipe/jobs"
	"github.com/tagpipe/tagpipe/warehouse"
)

// writeJobsConfig writes dir/tagpipe.yaml with data in dir/data, no admin listener,
// retries off and, when defs is not empty, jobs.definitions set to defs (YAML list items
// indented four spaces).
func writeJobsConfig(t *testing.T, dir, defs string) string {
	t.Helper()
	text := "data_dir: " + filepath.Join(dir, "data") + "\nadmin: {listen: \"\"}\nlog: {level: error}\n"
	if defs != "" {
		text += "jobs:\n  retries: 0\n  definitions:" + defs
	}
	cfg := filepath.Join(dir, "tagpipe.yaml")
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func jobsCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errw bytes.Buffer
	root := newRootCmd(&out, &errw)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// The jobs CLI end to end: list, run (shell and sql kinds), history, backfill with its
// progress and summary, and a bad definition refused naming job and field.
func TestJobsCommands(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := writeJobsConfig(t, dir, `
    - name: extract
      schedule: "@daily"
      task: {kind: shell, command: "mkdir -p `+out+` && echo {{ds}} > `+out+`/extract_{{ds}}.txt && echo 3 > $TAGPIPE_ROWS_FILE"}
    - name: summary
      schedule: "0 3 * * *"
      depends_on: [extract]
      priority_weight: 3
      task:
        kind: sql
        script: "COPY (SELECT '{{ds}}' AS ds, 42 AS n) TO '`+out+`/summary_{{ds}}.csv' (HEADER);"
`)
	os.MkdirAll(out, 0o755)
	base := []string{"--config", cfg}
	o, err := jobsCmd(t, append(base, "jobs", "list")...)
	if err != nil || !strings.Contains(o, "extract") || !strings.Contains(o, "0 3 * * *") {
		t.Fatalf("list: %v\n%s", err, o)
	}
	// Effective weights (own, weight_rule): extract counts summary's 3 downstream of it.
	if !regexp.MustCompile(`(?m)^extract +@daily .* 4 \(1, downstream\) `).MatchString(o) ||
		!regexp.MustCompile(`(?m)^summary +0 3 \* \* \* .* 3 \(3, downstream\) `).MatchString(o) {
		t.Errorf("list lacks the effective weights:\n%s", o)
	}
	// extract has not run for the ds: summary's trigger_rule (all_success) does not hold.
	_, err = jobsCmd(t, append(base, "jobs", "run", "--job", "summary", "--ds", "2026-11-20")...)
	if err == nil || err.Error() != `job "summary" ds 2026-11-20 not run: trigger_rule all_success does not hold yet: upstream extract ds 2026-11-20 has no run (--ignore-dependencies runs it anyway)` {
		t.Fatalf("run before its upstream: %v", err)
	}
	o, err = jobsCmd(t, append(base, "jobs", "run", "--job", "summary", "--ds", "2026-11-20", "--ignore-dependencies")...)
	if err != nil || !strings.Contains(o, "summary ds 2026-11-20: success") {
		t.Fatalf("run: %v\n%s", err, o)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "summary_2026-11-20.csv")); string(b) != "ds,n\n2026-11-20,42\n" {
		t.Errorf("sql task wrote %q", b)
	}
	o, err = jobsCmd(t, append(base, "jobs", "backfill", "--job", "summary", "--upstream", "--from", "2026-11-01", "--to", "2026-11-05", "--parallel", "2")...)
	if err != nil || !strings.Contains(o, "ds 5/5  runs 10/10") || !strings.Contains(o, "backfill: 10 runs: 10 succeeded") {
		t.Fatalf("backfill: %v\n%s", err, o)
	}
	o, err = jobsCmd(t, append(base, "jobs", "history", "--job", "extract")...)
	if err != nil || strings.Count(o, "success  backfill") != 5 {
		t.Fatalf("history: %v\n%s", err, o)
	}
	o, err = jobsCmd(t, append(base, "jobs", "run", "--job", "extract", "--ds", "2026-11-06", "--downstream")...)
	if err != nil || !strings.Contains(o, "backfill: 2 runs: 2 succeeded") {
		t.Fatalf("run --downstream: %v\n%s", err, o)
	}
	o, err = jobsCmd(t, append(base, "jobs", "export")...)
	if err != nil || o != "sys_job_runs: 13 runs exported\n" {
		t.Fatalf("export: %v\n%s", err, o)
	}
	o, err = jobsCmd(t, append(base, "sql", "-e", "SELECT dt, count(*) AS n, sum(rows) AS r FROM sys_job_runs WHERE job = 'extract' GROUP BY dt ORDER BY dt LIMIT 2", "--format", "csv")...)
	if err != nil || !strings.Contains(o, "2026-11-01,1,3") {
		t.Fatalf("sys_job_runs via sql: %v\n%s", err, o)
	}
	if o, err = jobsCmd(t, append(base, "jobs", "pause", "--job", "summary")...); err != nil || o != "summary paused\n" {
		t.Fatalf("pause: %v %q", err, o)
	}
	if o, err = jobsCmd(t, append(base, "jobs", "list")...); err != nil || !regexp.MustCompile(`(?m)^summary .* paused `).MatchString(o) {
		t.Fatalf("list after pause: %v\n%s", err, o)
	}
	if o, err = jobsCmd(t, append(base, "jobs", "unpause", "--job", "summary")...); err != nil || o != "summary unpaused\n" {
		t.Fatalf("unpause: %v %q", err, o)
	}
	_, err = jobsCmd(t, append(base, "jobs", "run", "--job", "nope", "--ds", "2026-11-20")...)
	if err == nil || !strings.Contains(err.Error(), `unknown job "nope"`) {
		t.Errorf("unknown job: %v", err)
	}

	os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(`data_dir: `+filepath.Join(dir, "data")+`
jobs:
  definitions:
    - {name: a, schedule: "@daily", depends_on: [b], task: {kind: shell, command: "true"}}
    - {name: b, schedule: "@daily", depends_on: [a], task: {kind: shell, command: "true"}}
    - {name: c, schedule: "every day", task: {kind: shell, command: "true"}}
    - {name: d, schedule: "@daily", sensor_mode: smart, task: {kind: shell, command: "true"}}
    - {name: e, schedule: "@daily", pool: nope, task: {kind: shell, command: "true"}}
`), 0o644)
	_, err = jobsCmd(t, "--config", filepath.Join(dir, "bad.yaml"), "jobs", "list")
	if err == nil || !strings.Contains(err.Error(), `job "a": depends_on: cycle: a -> b -> a`) || !strings.Contains(err.Error(), `job "c": schedule: bad cron spec "every day"`) ||
		!strings.Contains(err.Error(), `job "d": sensor_mode: unknown mode "smart"`) ||
		!strings.Contains(err.Error(), `job "e": pool: unknown pool "nope" (jobs.pools has default_pool)`) {
		t.Errorf("bad definitions: %v", err)
	}
}

// Callbacks set in tagpipe.yaml reach the scheduler: on_failure runs with the error.
func TestJobCallbacksFromConfig(t *testing.T) {
	dir := t.TempDir()
	alert := filepath.Join(dir, "alert.txt")
	cfg := writeJobsConfig(t, dir, `
    - name: load
      schedule: "@daily"
      task: {kind: shell, command: "exit 3"}
      on_failure: {kind: shell, command: "echo {{job}} {{ds}} $TAGPIPE_STATE: $TAGPIPE_ERROR > `+alert+`"}
`)
	o, err := jobsCmd(t, "--config", cfg, "jobs", "run", "--job", "load", "--ds", "2026-11-20")
	if !strings.Contains(o, "load ds 2026-11-20: failed") {
		t.Fatalf("run: %v\n%s", err, o)
	}
	if b, _ := os.ReadFile(alert); string(b) != "load 2026-11-20 failed: command exited with status 3\n" {
		t.Fatalf("on_failure wrote %q", b)
	}
}

// depends_on_past in tagpipe.yaml reaches the scheduler: a backfill stops the job's
// days at the failed one; jobs mark, jobs clear and jobs run see it as the scheduler does.
func TestDependsOnPastFromConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := writeJobsConfig(t, dir, `
    - name: load
      schedule: "@daily"
      depends_on_past: true
      retries: -1
      task: {kind: shell, command: "test {{ds}} != 2026-11-21"}
`)
	o, err := jobsCmd(t, "--config", cfg, "jobs", "backfill", "--job", "load", "--from", "2026-11-20", "--to", "2026-11-22", "--parallel", "3")
	if err == nil || !strings.Contains(o, "load 2026-11-22: depends_on_past: its run for ds 2026-11-21 is failed") {
		t.Fatalf("backfill: %v\n%s", err, o)
	}
	// jobs mark success lets the chain go on; jobs clear lists, then (--yes) queues
	// the runs again.
	o, err = jobsCmd(t, "--config", cfg, "jobs", "mark", "--job", "load", "--ds", "2026-11-21", "--state", "success")
	if err != nil || o != "load ds 2026-11-21 marked success\n" {
		t.Fatalf("mark: %v %q", err, o)
	}
	o, err = jobsCmd(t, "--config", cfg, "jobs", "run", "--job", "load", "--ds", "2026-11-22")
	if err != nil || !strings.Contains(o, "load ds 2026-11-22: success") {
		t.Fatalf("run after the mark: %v\n%s", err, o)
	}
	o, err = jobsCmd(t, "--config", cfg, "jobs", "clear", "--job", "load", "--from", "2026-11-21", "--to", "2026-11-21")
	if err != nil || !strings.Contains(o, "success  mark") || !strings.Contains(o, "1 run would be cleared; run again with --yes") {
		t.Fatalf("clear without --yes: %v\n%s", err, o)
	}
	o, err = jobsCmd(t, "--config", cfg, "jobs", "clear", "--job", "load", "--from", "2026-11-21", "--to", "2026-11-21", "--yes")
	if err != nil || !strings.Contains(o, "1 run cleared: a running scheduler") {
		t.Fatalf("clear: %v\n%s", err, o)
	}
	o, err = jobsCmd(t, "--config", cfg, "jobs", "history", "--job", "load")
	if err != nil || !strings.Contains(o, "queued   clear") || !strings.Contains(o, "cleared by tagpipe jobs clear (was success)") {
		t.Fatalf("history after clear: %v\n%s", err, o)
	}
	// jobs run checks it too, unless told not to: the cleared day is not done.
	_, err = jobsCmd(t, "--config", cfg, "jobs", "run", "--job", "load", "--ds", "2026-11-22")
	if err == nil || err.Error() != `job "load" ds 2026-11-22 not run: depends_on_past: its run for ds 2026-11-21 is queued (--ignore-depends-on-past runs it anyway)` {
		t.Fatalf("run after a cleared day: %v", err)
	}
	if _, err := jobsCmd(t, "--config", cfg, "jobs", "mark", "--job", "load", "--ds", "2026-11-21", "--state", "failed"); err != nil {
		t.Fatal(err)
	}
	_, err = jobsCmd(t, "--config", cfg, "jobs", "run", "--job", "load", "--ds", "2026-11-22")
	if err == nil || err.Error() != `job "load" ds 2026-11-22 not run: depends_on_past: its run for ds 2026-11-21 is failed (--ignore-depends-on-past runs it anyway)` {
		t.Fatalf("run after a failed day: %v", err)
	}
	o, err = jobsCmd(t, "--config", cfg, "jobs", "run", "--job", "load", "--ds", "2026-11-22", "--ignore-depends-on-past")
	if err != nil || !strings.Contains(o, "load ds 2026-11-22: success") {
		t.Fatalf("run --ignore-depends-on-past: %v\n%s", err, o)
	}
}

// jobs.pools and a job's pool in tagpipe.yaml reach the scheduler: two jobs in a 1-slot
// pool never run at once in a backfill with --parallel 4 (each task holds a directory
// that only one can make), and both succeed.
func TestPoolsFromConfig(t *testing.T) {
	dir := t.TempDir()
	held := filepath.Join(dir, "held")
	task := `task: {kind: shell, command: "mkdir ` + held + ` && sleep 0.1 && rmdir ` + held + `"}`
	cfg := filepath.Join(dir, "tagpipe.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+filepath.Join(dir, "data")+`
admin: {listen: ""}
log: {level: error}
jobs:
  retries: 0
  pools: {db: 1}
  definitions:
    - {name: a, schedule: "@daily", pool: db, `+task+`}
    - {name: b, schedule: "@daily", pool: db, `+task+`}
`), 0o644)
	o, err := jobsCmd(t, "--config", cfg, "jobs", "backfill", "--job", "a,b", "--from", "2026-11-20", "--to", "2026-11-21", "--parallel", "4")
	if err != nil || !strings.Contains(o, "backfill: 4 runs: 4 succeeded") {
		t.Fatalf("backfill: %v\n%s", err, o)
	}
}

// trigger_rule in tagpipe.yaml reaches the scheduler: an all_done clean-up runs after
// its upstream's failed day too, where the default all_success job does not; an unknown
// rule is refused naming job and field.
func TestTriggerRuleFromConfig(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	cfg := writeJobsConfig(t, dir, `
    - name: load
      schedule: "@daily"
      retries: -1
      task: {kind: shell, command: "test {{ds}} != 2026-11-21"}
    - name: cleanup
      schedule: "@daily"
      depends_on: [load]
      trigger_rule: all_done
      task: {kind: shell, command: "mkdir -p `+out+` && touch `+out+`/cleanup_{{ds}}"}
    - name: report
      schedule: "@daily"
      depends_on: [load]
      task: {kind: shell, command: "true"}
`)
	o, err := jobsCmd(t, "--config", cfg, "jobs", "backfill", "--job", "cleanup,report", "--upstream", "--from", "2026-11-20", "--to", "2026-11-21")
	if err == nil || !strings.Contains(o, "backfill: 6 runs: 4 succeeded, 1 failed, 1 upstream_failed, 0 skipped") ||
		!strings.Contains(o, "report 2026-11-21: upstream load ds 2026-11-21 is failed") {
		t.Fatalf("backfill: %v\n%s", err, o)
	}
	for _, ds := range []string{"2026-11-20", "2026-11-21"} {
		if _, err := os.Stat(filepath.Join(out, "cleanup_"+ds)); err != nil {
			t.Errorf("all_done cleanup did not run for %s: %v", ds, err)
		}
	}
	os.WriteFile(cfg, bytes.Replace(mustRead(t, cfg), []byte("all_done"), []byte("none_skipped"), 1), 0o644)
	if _, err := jobsCmd(t, "--config", cfg, "jobs", "list"); err == nil || !strings.Contains(err.Error(), `job "cleanup": trigger_rule: unknown rule "none_skipped"`) {
		t.Errorf("unknown rule: %v", err)
	}
}

// Tag definitions and audiences with a schedule of their own are jobs of their own,
// after the nightly job for the same ds; the nightly job keeps the default list.
func TestScheduledTagDefinitionsAreJobs(t *testing.T) {
	cfg := writeJobsConfig(t, t.TempDir(), "")
	o, err := jobsCmd(t, "--config", cfg, "jobs", "list")
	if err != nil {
		t.Fatalf("list: %v\n%s", err, o)
	}
	for _, want := range []string{"tags_nightly", "tag_activity", "30 2 * * *", "tag_rfm", "45 2 * * *", "tag_comedy_fans", "0 4 * * *"} {
		if !strings.Contains(o, want) {
			t.Errorf("jobs list lacks %q:\n%s", want, o)
		}
	}
	if !strings.Contains(o, "tags_nightly,tag_activity,tag_favourite_genre,tag_preferred_hour,tag_rfm") {
		t.Errorf("the audience does not run after every scheduled definition:\n%s", o)
	}
}

// A sql task with table: writes its last query's rows as partition dt = ds of a
// warehouse table, created on the first run; a rerun replaces that partition only.
func TestSQLTaskWritesTablePartition(t *testing.T) {
	dir := t.TempDir()
	cfg := writeJobsConfig(t, dir, `
    - name: daily_counts
      schedule: "@daily"
      task:
        kind: sql
        table: dws_daily_counts
        script: |
          CREATE TEMP TABLE x AS SELECT range AS i FROM range(3);
          SELECT i, '{{ds}}' AS ds, DATE '1999-01-01' AS dt FROM x;
    - name: bad_table
      schedule: "@daily"
      task: {kind: sql, table: counts, script: "SELECT 1"}
`)
	base := []string{"--config", cfg}
	if _, err := jobsCmd(t, append(base, "jobs", "list")...); err == nil || !strings.Contains(err.Error(), `bad table name "counts"`) {
		t.Fatalf("a table name without a layer was accepted: %v", err)
	}
	os.WriteFile(cfg, bytes.Split(mustRead(t, cfg), []byte("    - name: bad_table"))[0], 0o644)
	for _, ds := range []string{"2026-11-20", "2026-11-21", "2026-11-21"} {
		o, err := jobsCmd(t, append(base, "jobs", "run", "--job", "daily_counts", "--ds", ds)...)
		if err != nil || !strings.Contains(o, "success") {
			t.Fatalf("run %s: %v\n%s", ds, err, o)
		}
	}
	o, err := jobsCmd(t, append(base, "sql", "-e", "SELECT dt, count(*), min(ds), max(ds) FROM dws_daily_counts GROUP BY dt ORDER BY dt", "--format", "csv")...)
	if err != nil || !strings.Contains(o, "2026-11-20,3,2026-11-20,2026-11-20\n2026-11-21,3,2026-11-21,2026-11-21\n") {
		t.Fatalf("dws_daily_counts: %v\n%s", err, o)
	}
	o, err = jobsCmd(t, append(base, "jobs", "history", "--job", "daily_counts", "--json")...)
	if err != nil || !strings.Contains(o, `"rows":3`) {
		t.Errorf("history rows: %v\n%s", err, o)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tagpipe jobs pools: a slot of pool db held elsewhere (a flock on its slot file, as a
// run in another process holds it; flock excludes two open files of one process alike)
// shows as used, with what its holder wrote; default_pool, sized by parallelism, is each
// process's own.
func TestJobsPoolsCommand(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "tagpipe.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: "+data+`
admin: {listen: ""}
log: {level: error}
jobs:
  parallelism: 3
  pools: {db: 2}
  definitions:
    - {name: load, schedule: "@daily", pool: db, task: {kind: shell, command: "true"}}
    - {name: sum, schedule: "@daily", task: {kind: shell, command: "true"}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// A run of sum (default_pool) queued by some scheduler: QUEUED counts it from the
	// data dir's history, though the default_pool's slots are each process's own.
	st, err := jobs.OpenStore(filepath.Join(data, "jobs"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	if err := st.Append(jobs.Record{Job: "sum", DS: "2026-11-20", Logical: l, State: jobs.StateQueued,
		Trigger: jobs.TriggerScheduled, Scheduled: true, Owner: "other:1", Updated: l.AddDate(0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	slots := filepath.Join(data, "jobs", "pools", "db")
	if err := os.MkdirAll(slots, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(slots, "slot-0"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	f.WriteString("other:1 load/20261120T000000Z\n")
	// A run of another process waiting for db's slots (its waiter file, locked), and a
	// dead one's (unlocked): only the first is listed.
	w, err := os.Create(filepath.Join(slots, "wait-9223372036854775806-20261121T000000Z-1.2.3-load"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := syscall.Flock(int(w.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	w.WriteString("other:2 load/20261121T000000Z\n")
	if err := os.WriteFile(filepath.Join(slots, "wait-9223372036854775806-20261119T000000Z-1.2.3-load"), []byte("dead:3 load/20261119T000000Z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := jobsCmd(t, "--config", cfg, "jobs", "pools")
	if err != nil || !regexp.MustCompile(`(?m)^default_pool +3 +- +- +1 +slots: each process; queued: data dir +- +-$`).MatchString(o) ||
		!regexp.MustCompile(`(?m)^db +2 +1 +1 +0 +data dir +slot-0: other:1 load/20261120T000000Z +other:2 load/20261121T000000Z$`).MatchString(o) {
		t.Fatalf("pools: %v\n%s", err, o)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	syscall.Flock(int(w.Fd()), syscall.LOCK_UN)
	if o, err = jobsCmd(t, "--config", cfg, "jobs", "pools", "--json"); err != nil {
		t.Fatalf("pools --json after release: %v\n%s", err, o)
	}
	var got []jobs.PoolStatus
	if err := json.Unmarshal([]byte(o), &got); err != nil {
		t.Fatalf("pools --json: %v\n%s", err, o)
	}
	// default_pool: this process's slots (it runs nothing), the data dir's queued runs.
	want := []jobs.PoolStatus{{Name: "default_pool", Slots: 3, Open: 3, Queued: 1}, {Name: "db", Slots: 2, Shared: true, Open: 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("pools --json after release:\n got  %+v\n want %+v", got, want)
	}
}

// TestSysJobRunsMaxTries: the export writes each run's max_tries, and a sys_job_runs
// table made before the column existed evolves to take it (old rows read null).
func TestSysJobRunsMaxTries(t *testing.T) {
	dir := t.TempDir()
	cfg := writeJobsConfig(t, dir, `
    - name: flaky
      schedule: "@daily"
      retries: 2
      task: {kind: shell, command: "echo 1 > $TAGPIPE_ROWS_FILE"}
`)
	base := []string{"--config", cfg}
	// The table as the release before max_tries made it, with one old row.
	var fields []arrow.Field
	for _, f := range sysJobRunsSpec.Schema.Fields() {
		if f.Name != "max_tries" {
			fields = append(fields, f)
		}
	}
	old := sysJobRunsSpec
	old.Schema = arrow.NewSchema(fields, nil)
	w, err := warehouse.Open(filepath.Join(dir, "data", "warehouse"), warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tb, err := w.CreateTable(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, old.Schema)
	for i, f := range old.Schema.Fields() {
		switch bld := b.Field(i).(type) {
		case *array.StringBuilder:
			v := "x"
			if f.Name == "dt" {
				v = "2026-10-01"
			}
			bld.Append(v)
		case *array.Int64Builder:
			bld.Append(1)
		case *array.TimestampBuilder:
			bld.Append(0)
		}
	}
	rec := b.NewRecordBatch()
	b.Release()
	commitRecord(t, tb, rec)
	w.Close()

	if o, err := jobsCmd(t, append(base, "jobs", "run", "--job", "flaky", "--ds", "2026-11-20")...); err != nil {
		t.Fatalf("run: %v\n%s", err, o)
	}
	if o, err := jobsCmd(t, append(base, "jobs", "export")...); err != nil || o != "sys_job_runs: 1 runs exported\n" {
		t.Fatalf("export: %v\n%s", err, o)
	}
	o, err := jobsCmd(t, append(base, "sql", "-e", "SELECT dt, job, attempt, coalesce(max_tries::VARCHAR, 'null') AS m FROM sys_job_runs ORDER BY dt", "--format", "csv")...)
	if err != nil || o != "dt,job,attempt,m\n2026-10-01,x,1,null\n2026-11-20,flaky,1,2\n" {
		t.Fatalf("sys_job_runs: %v\n%q", err, o)
	}
}
