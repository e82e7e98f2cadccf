package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/jobs"
	"github.com/tagpipe/tagpipe/tagging"
	"github.com/tagpipe/tagpipe/warehouse"
)

// TestTagsItemsMissingFile: a mistyped items path is named, absolute, before DuckDB runs.
func TestTagsItemsMissingFile(t *testing.T) {
	dir := t.TempDir()
	out, err := runTagpipeErr("--data-dir", dir, "tags", "items", filepath.Join(dir, "nosuch", "movies.csv"))
	if err == nil || !strings.Contains(err.Error(), "cannot load items: no such file: "+filepath.Join(dir, "nosuch", "movies.csv")) ||
		strings.Contains(err.Error(), "IO Error") {
		t.Fatalf("missing items file: %v\n%s", err, out)
	}
}

// TestTagsCommands drives `tagpipe tags …` end to end on MovieLens: items loaded with
// `tags items`, ratings put into dwd_events the way the streaming job would, then run,
// show, list and audience export.
func TestTagsCommands(t *testing.T) {
	dir := t.TempDir()
	ml := filepath.Join("..", "..", "testdata", "movielens")
	out := runTagpipe(t, "--data-dir", dir, "tags", "items", "--format", "movielens", filepath.Join(ml, "movies.csv"))
	if !strings.Contains(out, "loaded 9742 items") {
		t.Fatalf("items: %s", out)
	}
	w, err := warehouse.Open(filepath.Join(dir, "warehouse"), warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = tagging.WarehouseStore{W: w}.Load(context.Background(), conn, "dwd_events", []string{"dt"},
		`SELECT CAST(userId AS VARCHAR) AS user_id, CAST(movieId AS VARCHAR) AS item_id, 'rate' AS action,
  make_timestamp(CAST(timestamp AS BIGINT) * 1000000) AS event_time, CAST(rating AS DOUBLE) AS value,
  CAST(make_timestamp(CAST(timestamp AS BIGINT) * 1000000) AS DATE) AS dt
FROM read_csv('`+filepath.Join(ml, "ratings.csv")+`', header = true) WHERE timestamp >= 1527811200`) // June 2018 on
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}

	out = runTagpipe(t, "--data-dir", dir, "tags", "run", "--ds", "2018-09-24", "--full")
	for _, want := range []string{"model 2018-09-24 (full)", "tag activity", "tag favourite_genre", "audience comedy_fans"} {
		if !strings.Contains(out, want) {
			t.Errorf("run output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAILED") {
		t.Errorf("run: %s", out)
	}
	out = runTagpipe(t, "--data-dir", dir, "tags", "run", "--ds", "2018-09-25", "--model-only")
	if !strings.Contains(out, "incremental from 2018-09-24") {
		t.Errorf("second run: %s", out)
	}
	out = runTagpipe(t, "--data-dir", dir, "tags", "show", "--user", "414", "--ds", "2018-09-24")
	for _, want := range []string{"user 414 on 2018-09-24", "#1", "rate item", "% of score", "activity = "} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	var ex tagging.Explanation
	if err := json.Unmarshal([]byte(runTagpipe(t, "--data-dir", dir, "tags", "show", "--user", "414", "--ds", "2018-09-24", "--json")), &ex); err != nil ||
		ex.User != "414" || len(ex.Tags) == 0 || len(ex.Tags[0].Top) == 0 || ex.Tags[0].Top[0].Value == nil {
		t.Errorf("show --json: %+v, %v", ex, err)
	}
	out = runTagpipe(t, "--data-dir", dir, "tags", "list")
	for _, want := range []string{"interest", "activity", "dwd_events,dws_user_daily", "comedy_fans"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	path := filepath.Join(dir, "aud.csv")
	runTagpipe(t, "--data-dir", dir, "tags", "audience", "export", "comedy_fans", "--ds", "2018-09-24", "--csv", path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) < 2 || recs[0][0] != "audience" {
		t.Fatalf("csv: %v %v", recs, err)
	}
	// To Kafka, with the flag every Kafka command takes: a record per member.
	addr := startTestBroker(t).Addr()
	runTagpipe(t, "--data-dir", dir, "tags", "audience", "export", "comedy_fans", "--ds", "2018-09-24",
		"--topic", "fans", "--bootstrap-server", addr)
	if got := runTagpipe(t, "--data-dir", dir, "consume", "--bootstrap-server", addr, "--topic", "fans", "--from-beginning",
		"--max-messages", strconv.Itoa(len(recs)-1)); strings.Count(got, "\n") != len(recs)-1 {
		t.Errorf("export to Kafka: consumed %q, want %d members", got, len(recs)-1)
	}
	// The job kind runs one tag per job: the model, a definition, an audience.
	cfg, err := config.Load(config.LoadOptions{Environ: []string{}, Overrides: map[string]string{"data_dir": dir}})
	if err != nil {
		t.Fatal(err)
	}
	a := &app{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	if _, err := tagJobKind(a)(jobs.TaskSpec{Kind: "tag"}); err == nil {
		t.Error("kind tag without a name accepted")
	}
	for _, c := range []struct {
		name string
		min  int64
	}{{"interest", 1}, {"activity", 1}, {"preferred_hour", 1}, {"comedy_fans", 0}, {"nosuch", -1}} {
		name, min := c.name, c.min
		task, err := tagJobKind(a)(jobs.TaskSpec{Kind: "tag", Name: name})
		if err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		rows, err := task.Run(context.Background(), jobs.RunContext{Job: "j", DS: "2018-09-26", Output: &log})
		if min < 0 {
			if err == nil || !strings.Contains(err.Error(), `no tag definition or audience "nosuch"`) {
				t.Errorf("unknown tag: %v", err)
			}
			continue
		}
		if err != nil || rows < min {
			t.Errorf("job tag %s: %d rows, %v\n%s", name, rows, err, log.String())
		}
	}

	// The nightly job with its downstream: the model, then each scheduled definition and
	// audience as its own job (the shipped examples all have schedules).
	out = runTagpipe(t, "--data-dir", dir, "jobs", "run", "--job", "tags_nightly", "--downstream", "--ds", "2018-09-27")
	if !strings.Contains(out, "backfill: 6 runs: 6 succeeded") {
		t.Errorf("jobs run tags_nightly --downstream: %s", out)
	}
	out = runTagpipe(t, "--data-dir", dir, "sql", "-e", "SELECT string_agg(DISTINCT tag, ',' ORDER BY tag) FROM ads_user_tags WHERE dt = '2018-09-27'", "--format", "csv")
	if !strings.Contains(out, "activity,favourite_genre,preferred_hour") { // rfm: MovieLens has no purchases
		t.Errorf("definition tags for 2018-09-27: %s", out)
	}

	out = runTagpipe(t, "--data-dir", dir, "tags", "audience", "run", "adhoc", "--ds", "2018-09-24", "--expr", "interest:Drama >= 0.5")
	if !strings.Contains(out, "audience adhoc on 2018-09-24:") {
		t.Errorf("adhoc audience: %s", out)
	}

	// A day materialised empty before a later run exports as empty: a CSV with the
	// header only; to a topic with --tombstones, a tombstone per earlier member. A day
	// never materialised is refused.
	runTagpipe(t, "--data-dir", dir, "tags", "audience", "run", "adhoc", "--ds", "2018-09-25", "--expr", "interest:Drama > 2")
	runTagpipe(t, "--data-dir", dir, "tags", "audience", "run", "adhoc", "--ds", "2018-09-26", "--expr", "interest:Drama >= 0.5")
	if got := runTagpipe(t, "--data-dir", dir, "tags", "audience", "export", "adhoc", "--ds", "2018-09-25", "--csv", "-"); got != "audience,dt,user_id\n" {
		t.Errorf("csv of the empty day: %q", got)
	}
	earlier := strings.Count(runTagpipe(t, "--data-dir", dir, "tags", "audience", "export", "adhoc", "--ds", "2018-09-24", "--csv", "-"), "\n") - 1
	out, err = runTagpipeErr("--data-dir", dir, "tags", "audience", "export", "adhoc", "--ds", "2018-09-25",
		"--topic", "adhoc", "--bootstrap-server", addr, "--tombstones")
	if want := fmt.Sprintf("exported 0 users of audience adhoc on 2018-09-25\nand %d tombstones for users of earlier days (since 2018-09-24)", earlier); err != nil || earlier < 1 || !strings.Contains(out, want) {
		t.Errorf("export of the empty day: %v\n%s\nwant %q", err, out, want)
	}
	// The first day has no earlier members to send tombstones for, and says so.
	out, err = runTagpipeErr("--data-dir", dir, "tags", "audience", "export", "adhoc", "--ds", "2018-09-24",
		"--topic", "adhoc-first", "--bootstrap-server", addr, "--tombstones")
	if want := "and no tombstones: the audience has no materialisation before 2018-09-24\n"; err != nil || !strings.Contains(out, want) {
		t.Errorf("export of the first day with --tombstones: %v\n%s\nwant %q", err, out, want)
	}
	got := runTagpipe(t, "--data-dir", dir, "consume", "--bootstrap-server", addr, "--topic", "adhoc", "--from-beginning",
		"--print-key", "--max-messages", strconv.Itoa(earlier))
	if strings.Count(got, "\tnull\n") != earlier {
		t.Errorf("tombstones on the topic: %q, want %d", got, earlier)
	}
	if _, err := runTagpipeErr("--data-dir", dir, "tags", "audience", "export", "adhoc", "--ds", "2018-09-27", "--csv", "-"); !errors.Is(err, tagging.ErrNotMaterialised) {
		t.Errorf("export of a day never materialised: %v", err)
	}
}
