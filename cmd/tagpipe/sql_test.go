package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/tagpipe/tagpipe/warehouse"
)

func runTagpipeErr(args ...string) (string, error) { return runTagpipeIn("", args...) }

// runTagpipeIn is runTagpipeErr with stdin.
func runTagpipeIn(stdin string, args ...string) (string, error) {
	var out, errw bytes.Buffer
	root := newRootCmd(&out, &errw)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String() + errw.String(), err
}

// sqlWarehouse commits two snapshots of ads_user_interest_tags, a day apart.
func sqlWarehouse(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	opts := warehouse.DefaultOptions()
	opts.Now = func() time.Time { return now }
	w, err := warehouse.Open(filepath.Join(dir, "warehouse"), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{
		warehouse.Field("user_id", arrow.PrimitiveTypes.Int64, "user"),
		warehouse.Field("tag", arrow.BinaryTypes.String, "tag"),
		warehouse.RequiredField("dt", arrow.BinaryTypes.String, "day"),
	}, nil)
	tb, err := w.CreateTable(ctx, warehouse.TableSpec{Name: "ads_user_interest_tags", Schema: schema, PartitionKeys: []string{"dt"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, dt := range []string{"2024-05-01", "2024-05-02"} {
		now = time.Date(2024, 5, 1+i, 12, 0, 0, 0, time.UTC)
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 2}, nil)
		b.Field(1).(*array.StringBuilder).AppendValues([]string{"sci-fi", "drama"}, nil)
		b.Field(2).(*array.StringBuilder).AppendValues([]string{dt, dt}, nil)
		rec := b.NewRecordBatch()
		b.Release()
		commitRecord(t, tb, rec)
	}
	return dir
}

func TestSQLCommandOverWarehouse(t *testing.T) {
	dir := sqlWarehouse(t)
	q := "SELECT count(*) AS n, count(DISTINCT dt) AS days FROM ads_user_interest_tags"
	if out := runTagpipe(t, "--data-dir", dir, "sql", "--format", "csv", "-e", q); out != "n,days\n4,2\n" {
		t.Fatalf("latest: %q", out)
	}
	if out := runTagpipe(t, "--data-dir", dir, "sql", "--format", "csv", "--as-of", "2024-05-01T18:00:00Z", "-e", q); out != "n,days\n2,1\n" {
		t.Fatalf("as of day one: %q", out)
	}
	out, err := runTagpipeErr("--data-dir", dir, "sql", "--as-of", "2024-04-01", "-e", q)
	if err == nil || !strings.Contains(out+err.Error(), "ads_user_interest_tags does not exist") {
		t.Fatalf("before the table existed: %v\n%s", err, out)
	}
	script := filepath.Join(t.TempDir(), "q.sql")
	if err := os.WriteFile(script, []byte("SELECT tag FROM ads_user_interest_tags WHERE user_id = 1 ORDER BY dt;\nSELECT 'done' AS s;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := runTagpipe(t, "--data-dir", dir, "sql", "--format", "json", "-f", script); out != "[{\"tag\":\"sci-fi\"},\n{\"tag\":\"sci-fi\"}]\n[{\"s\":\"done\"}]\n" {
		t.Fatalf("script: %q", out)
	}
	out, err = runTagpipeErr("--data-dir", dir, "sql", "--read-only", "-e", "COPY ads_user_interest_tags TO '"+filepath.Join(dir, "x.csv")+"'")
	if err == nil {
		t.Fatalf("--read-only COPY passed:\n%s", out)
	}
	if out := runTagpipe(t, "--data-dir", dir, "explore", "--no-html", "ads_user_interest_tags"); !strings.Contains(out, "rows: 4") || !strings.Contains(out, "users: user_id: 2 users") {
		t.Fatalf("explore table:\n%s", out)
	}
}

// TestSQLCommandEmptyWarehouse: on a data dir without tables (most often not the one
// tagpipe up writes) the command says so before the query's "does not exist", and
// creates nothing there (a read-only command); where there are tables it says nothing
// more.
func TestSQLCommandEmptyWarehouse(t *testing.T) {
	dir := t.TempDir()
	out, err := runTagpipeErr("--data-dir", dir, "sql", "-e", "SELECT count(*) FROM dwd_events")
	if err == nil || !strings.Contains(out, "the warehouse "+filepath.Join(dir, "warehouse")+" has no tables yet") || !strings.Contains(out, "--data-dir") {
		t.Fatalf("empty warehouse: %v\n%s", err, out)
	}
	if out, err := runTagpipeErr("--data-dir", dir, "sql", "-e", "SELECT 1"); err != nil {
		t.Fatalf("SELECT 1 on an empty data dir: %v\n%s", err, out)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Fatalf("tagpipe sql left %v in an empty data dir (%v)", ents, err)
	}
	if out, err := runTagpipeErr("--data-dir", sqlWarehouse(t), "sql", "-e", "SELECT 1"); err != nil || strings.Contains(out, "no tables") {
		t.Fatalf("warehouse with tables: %v\n%s", err, out)
	}
}

// TestSQLCommandOutputFlags: DuckDB's -csv/-box/… shortcuts are --csv/--box/…, one at
// a time; --no-header, --nullvalue, --separator and --out shape the output; -e runs dot
// commands.
func TestSQLCommandOutputFlags(t *testing.T) {
	dir := sqlWarehouse(t)
	q := "SELECT user_id, NULL::VARCHAR AS note FROM ads_user_interest_tags WHERE dt = '2024-05-01' ORDER BY 1"
	sql := func(args ...string) string {
		return runTagpipe(t, append([]string{"--data-dir", dir, "sql"}, args...)...)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--csv", "--no-header"}, "1,\n2,\n"},
		{[]string{"--list", "--nullvalue", "(null)", "--separator", `\t`}, "user_id\tnote\n1\t(null)\n2\t(null)\n"},
		{[]string{"--jsonlines"}, "{\"user_id\":1,\"note\":null}\n{\"user_id\":2,\"note\":null}\n"},
		{[]string{"--box"}, "┌─────────┬─────────┐\n│ user_id │  note   │\n│  int64  │ varchar │\n├─────────┼─────────┤\n│       1 │ NULL    │\n│       2 │ NULL    │\n└─────────┴─────────┘\n"},
		{[]string{"--format", "insert"}, "INSERT INTO \"table\" VALUES(1,NULL);\nINSERT INTO \"table\" VALUES(2,NULL);\n"},
	} {
		if got := sql(append(tc.args, "-e", q)...); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.args, got, tc.want)
		}
	}
	if got := sql("-e", ".mode line\n.nullvalue -\n"+q+" LIMIT 1"); got != "user_id = 1\n   note = -\n" {
		t.Errorf("dot commands in -e: %q", got)
	}
	out := filepath.Join(t.TempDir(), "tags.md")
	if got := sql("--markdown", "--out", out, "-e", q); got != "" {
		t.Errorf("--out wrote to stdout too: %q", got)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "| user_id | note |\n|--------:|------|\n|       1 |      |\n|       2 |      |\n" {
		t.Errorf("--markdown --out: %q %v", b, err)
	}
	for _, args := range [][]string{{"--csv", "--json"}, {"--format", "csv", "--box"}} {
		got, err := runTagpipeErr(append([]string{"--data-dir", dir, "sql", "-e", "SELECT 1"}, args...)...)
		if err == nil || !strings.Contains(got+err.Error(), "none of the others can be") {
			t.Errorf("%v: %v\n%s", args, err, got)
		}
	}
}

func TestExploreCommandWritesReport(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "UserBehavior.csv")
	if err := os.WriteFile(log, []byte("1,10,100,pv,1511544070\n2,11,100,buy,1511561733\n2,12,101,pv,1511572885\nbroken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(dir, "r.html")
	out := runTagpipe(t, "--data-dir", dir, "explore", log, "--columns", "user_id,item_id,category_id,behavior_type,timestamp", "--out", report)
	for _, want := range []string{"rows: 3 of 4 lines; malformed: 1 (25.00%)", "users: user_id: 2 users", "time: timestamp (unix_s)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("summary lacks %q:\n%s", want, out)
		}
	}
	page, err := os.ReadFile(report)
	if err != nil || !bytes.Contains(page, []byte(`<b id="malformed">1</b>`)) {
		t.Fatalf("report: %v", err)
	}
	js := runTagpipe(t, "--data-dir", dir, "explore", log, "--header", "no", "--json", "--no-html")
	if !strings.Contains(js, `"name": "column3"`) || !strings.Contains(js, `"malformed": 1`) {
		t.Fatalf("json:\n%s", js)
	}
}

// commitRecord writes rec to tb in a transaction of its own, commits it and releases rec.
func commitRecord(t *testing.T, tb *warehouse.Table, rec arrow.RecordBatch) {
	t.Helper()
	ctx := context.Background()
	tx, err := tb.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if err := tx.Write(rec); err != nil {
		tx.Abort()
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx, warehouse.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
}
