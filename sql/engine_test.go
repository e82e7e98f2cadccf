package sql

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// warehouse writes a small Hive-partitioned table below dir/tags with DuckDB itself.
func warehouse(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	e, err := Open(context.Background(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, dt := range []string{"2024-01-01", "2024-01-02"} {
		p := filepath.Join(dir, "tags", "dt="+dt)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		q := "COPY (SELECT i AS user_id, 'tag' || (i % 3) AS tag, i / 10.0 AS weight FROM range(5) t(i)) TO " +
			quote(filepath.Join(p, "part-0.parquet")) + " (FORMAT parquet)"
		if _, err := e.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	// Debris of an unfinished commit must not show up.
	if err := os.MkdirAll(filepath.Join(dir, "_staging", "tags"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "_staging", "tags", "x.parquet"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func remote(t *testing.T, dir string, mod func(*Options)) *Engine {
	t.Helper()
	opts := DefaultOptions()
	opts.ReadOnly = true
	opts.Register = DirViews(dir)
	opts.AllowedDirs = []string{dir}
	opts.QueryTimeout = 30 * time.Second
	if mod != nil {
		mod(&opts)
	}
	e, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// collect runs q and returns its rows as formatted text.
func collect(e *Engine, q string, args ...any) ([]Column, [][]string, bool, error) {
	var cols []Column
	var rows [][]string
	var truncated bool
	err := e.Query(context.Background(), q, args, func(r *Result) error {
		cols = r.Columns
		for r.Next() {
			row := make([]string, len(r.Values()))
			for i, v := range r.Values() {
				row[i] = Format(v, r.Columns[i].Type)
			}
			rows = append(rows, row)
		}
		truncated = r.Truncated()
		return nil
	})
	return cols, rows, truncated, err
}

func TestReadOnlyReadsWarehouseViews(t *testing.T) {
	dir := warehouse(t)
	e := remote(t, dir, nil)
	cols, rows, _, err := collect(e, "SELECT dt, count(*) AS n, sum(weight) AS w FROM tags WHERE user_id >= $1 GROUP BY dt ORDER BY dt", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"2024-01-01", "4", "1.0"}, {"2024-01-02", "4", "1.0"}}
	if !reflect.DeepEqual(rows, want) {
		t.Fatalf("rows = %v, want %v", rows, want)
	}
	if cols[0].Type != "DATE" || cols[1].Type != "BIGINT" {
		t.Fatalf("column types = %+v", cols)
	}
	for _, q := range []string{"FROM tags LIMIT 1", "SUMMARIZE tags", "DESCRIBE tags", "SHOW TABLES",
		"EXPLAIN SELECT * FROM tags", "WITH x AS (SELECT 1) SELECT * FROM x", "SELECT 1;"} {
		if _, _, _, err := collect(e, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}

func TestReadOnlyRefusesWritesAndForeignFiles(t *testing.T) {
	dir := warehouse(t)
	e := remote(t, dir, nil)
	inside := filepath.Join(dir, "tags", "evil.csv")
	for _, q := range []string{
		"COPY tags TO '/tmp/x'",
		"COPY (SELECT 1) TO " + quote(inside),
		"SELECT 1; COPY tags TO " + quote(inside),
		"EXPLAIN ANALYZE COPY tags TO " + quote(inside),
		"EXPORT DATABASE " + quote(filepath.Join(dir, "exp")),
		"ATTACH " + quote(filepath.Join(dir, "x.db")) + " AS x",
		"INSTALL httpfs", "LOAD httpfs",
		"SET enable_external_access=true", "SET allowed_directories=['/']", "RESET lock_configuration",
		"CREATE TABLE t AS SELECT 1", "CREATE OR REPLACE VIEW tags AS SELECT 1", "DROP VIEW tags",
		"CALL pragma_version()", "PRAGMA threads=1",
		"SELECT * FROM read_csv('/etc/passwd')",
		"SELECT * FROM read_text('/etc/hostname')",
		"SELECT * FROM read_blob('/etc/hostname')",
		"SELECT * FROM glob('/etc/*')",
		"SELECT * FROM parquet_metadata('/etc/passwd')",
		"USE memory",
		"SELECT * FROM read_parquet('/etc/../etc/passwd')",
		"SELECT * FROM read_csv(" + quote(dir+strings.Repeat("/..", 12)+"/etc/passwd") + ")",
	} {
		_, _, _, err := collect(e, q)
		var qe *Error
		if !errors.As(err, &qe) || qe.Kind != KindRefused {
			t.Errorf("%s: want a refusal, got %v", q, err)
		}
	}
	// query() runs a nested statement: DuckDB takes only a SELECT there.
	if _, _, _, err := collect(e, "SELECT * FROM query('COPY (SELECT 1) TO "+strings.ReplaceAll(quote(inside), "'", "''")+"')"); err == nil {
		t.Fatal("COPY through query() passed")
	}
	if _, err := os.Stat(inside); !os.IsNotExist(err) {
		t.Fatalf("COPY wrote inside the warehouse: %v", err)
	}
	// The views still answer after the refusals.
	if _, rows, _, err := collect(e, "SELECT count(*) FROM tags"); err != nil || rows[0][0] != "10" {
		t.Fatalf("after refusals: %v %v", rows, err)
	}
}

func TestLocalSessionIsUnrestricted(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(context.Background(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	out := filepath.Join(dir, "x.csv")
	if _, _, _, err := collect(e, "COPY (SELECT 42 AS a) TO "+quote(out)); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "a\n42\n" {
		t.Fatalf("COPY output %q %v", b, err)
	}
}

func TestRowLimitCutsAndFlags(t *testing.T) {
	e := remote(t, t.TempDir(), func(o *Options) { o.MaxRows = 3 })
	_, rows, truncated, err := collect(e, "SELECT * FROM range(10)")
	if err != nil || len(rows) != 3 || !truncated {
		t.Fatalf("rows=%d truncated=%v err=%v", len(rows), truncated, err)
	}
	_, rows, truncated, err = collect(e, "SELECT * FROM range(3)")
	if err != nil || len(rows) != 3 || truncated {
		t.Fatalf("exactly max rows: rows=%d truncated=%v err=%v", len(rows), truncated, err)
	}
}

func TestQueryTimeout(t *testing.T) {
	e := remote(t, t.TempDir(), func(o *Options) { o.QueryTimeout = 200 * time.Millisecond })
	// Ten billion row pairs: minutes of work, cut by the timeout.
	_, _, _, err := collect(e, "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b")
	var qe *Error
	if !errors.As(err, &qe) || qe.Kind != KindTimeout {
		t.Fatalf("want timeout, got %v", err)
	}
	if !strings.Contains(qe.Message, "timed out after 200ms") {
		t.Fatalf("message %q", qe.Message)
	}
	// The engine still works afterwards.
	if _, rows, _, err := collect(e, "SELECT 1"); err != nil || rows[0][0] != "1" {
		t.Fatalf("after timeout: %v %v", rows, err)
	}
}

func TestCancelWhenCallerGoesAway(t *testing.T) {
	e := remote(t, t.TempDir(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- e.Query(ctx, "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b", nil, func(r *Result) error {
			for r.Next() {
			}
			return nil
		})
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		var qe *Error
		if !errors.As(err, &qe) || qe.Kind != KindCanceled {
			t.Fatalf("want canceled, got %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("query did not stop after cancel")
	}
}

func TestErrorsCarryPosition(t *testing.T) {
	e := remote(t, t.TempDir(), nil)
	cases := []struct {
		q    string
		pos  int
		kind ErrorKind
		msg  string
	}{
		{"SELECT * FROM nosuch", 15, KindInvalid, "Table with name nosuch does not exist"},
		{"SELEC 1", 1, KindInvalid, "syntax error at or near \"SELEC\""},
		{"SELECT 1,\n  2,\n  nocol", 18, KindInvalid, "nocol"},
		{"SELECT 'é', nocol", 13, KindInvalid, "nocol"},
		{"SELECT 1 +", 0, KindInvalid, "syntax error at end of input"},
		{"", 0, KindInvalid, "empty query"},
	}
	for _, c := range cases {
		_, _, _, err := collect(e, c.q)
		var qe *Error
		if !errors.As(err, &qe) {
			t.Fatalf("%q: %v", c.q, err)
		}
		if qe.Kind != c.kind || qe.Position != c.pos || !strings.Contains(qe.Message, c.msg) || strings.Contains(qe.Message, "LINE") {
			t.Errorf("%q: kind=%v pos=%d msg=%q; want kind=%v pos=%d msg~%q", c.q, qe.Kind, qe.Position, qe.Message, c.kind, c.pos, c.msg)
		}
	}
}

func TestDescribe(t *testing.T) {
	dir := warehouse(t)
	e := remote(t, dir, nil)
	st, err := e.Describe(context.Background(), "SELECT user_id, tag, weight, dt FROM tags WHERE user_id = $1 AND tag = $2")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st.Params, []string{"BIGINT", "VARCHAR"}) {
		t.Fatalf("params %v", st.Params)
	}
	want := []Column{{"user_id", "BIGINT"}, {"tag", "VARCHAR"}, {"weight", "DOUBLE"}, {"dt", "DATE"}}
	if !reflect.DeepEqual(st.Columns, want) {
		t.Fatalf("columns %+v", st.Columns)
	}
	if _, err := e.Describe(context.Background(), "COPY tags TO '/tmp/x'"); err == nil {
		t.Fatal("Describe of COPY in read-only mode passed")
	}
}

func TestFormatMatchesDuckDBText(t *testing.T) {
	e := remote(t, t.TempDir(), nil)
	exprs := []string{"1::TINYINT", "3.5::DOUBLE", "123456789.0::DOUBLE", "0.1::FLOAT", "1.50::DECIMAL(5,2)",
		"-0.05::DECIMAL(5,2)", "12345678901234567890::HUGEINT", "DATE '2024-02-29'", "TIMESTAMP '2024-02-29 10:11:12.5'",
		"TIME '10:11:12'", "INTERVAL 3 DAY + INTERVAL 2 HOUR", "[1, 2, 3]", "['a', 'b']", "true", "'x'",
		"'550e8400-e29b-41d4-a716-446655440000'::UUID", "{'a': 1, 'b': 'x'}"}
	for _, x := range exprs {
		_, rows, _, err := collect(e, "SELECT "+x+", CAST("+x+" AS VARCHAR)")
		if err != nil {
			t.Fatalf("%s: %v", x, err)
		}
		if rows[0][0] != rows[0][1] {
			t.Errorf("%s: Format = %q, DuckDB = %q", x, rows[0][0], rows[0][1])
		}
	}
}

func TestSplit(t *testing.T) {
	stmts, rest := Split("SELECT 1; SELECT ';' -- a;b\n; /* ; */ SELECT $$;$$;\n-- only a comment;\n SELECT 2")
	want := []string{"SELECT 1", "SELECT ';' -- a;b", "/* ; */ SELECT $$;$$"}
	if !reflect.DeepEqual(stmts, want) || rest != "-- only a comment;\n SELECT 2" {
		t.Fatalf("stmts=%q rest=%q", stmts, rest)
	}
	if stmts, rest := Split("-- nothing\n"); len(stmts) != 0 || rest != "" {
		t.Fatalf("comment only: %q %q", stmts, rest)
	}
}

func TestFileViewsAndAsOf(t *testing.T) {
	ml := filepath.Join("..", "testdata", "movielens", "movies.csv")
	opts := DefaultOptions()
	opts.Register = FileViews(map[string]string{"movies": ml})
	e, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, rows, _, err := collect(e, "SELECT count(*) > 9000 FROM movies")
	if err != nil || rows[0][0] != "true" {
		t.Fatalf("%v %v", rows, err)
	}
	opts.AsOf = "3"
	if _, err := Open(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "no snapshots") {
		t.Fatalf("AsOf on plain files: %v", err)
	}
}

func TestRefresherMovesViewsForward(t *testing.T) {
	dir := warehouse(t)
	e := remote(t, dir, nil)
	if _, _, _, err := collect(e, "SELECT * FROM later"); err == nil {
		t.Fatal("view exists before its table")
	}
	// A new table lands (a commit by another process).
	if err := os.MkdirAll(filepath.Join(dir, "later"), 0o755); err != nil {
		t.Fatal(err)
	}
	local, err := Open(context.Background(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	_, err = local.DB().Exec("COPY (SELECT 7 AS x) TO " + quote(filepath.Join(dir, "later", "p.parquet")) + " (FORMAT parquet)")
	local.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := NewRefresher(e, 10*time.Millisecond, nil)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, rows, _, err := collect(e, "SELECT x FROM later"); err == nil && rows[0][0] == "7" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refresher did not register the new table")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := NewRefresher(e, time.Second, nil).Stop(context.Background()); err != nil {
		t.Fatal("Stop without Start:", err)
	}
}

func TestResourceLimitsApplied(t *testing.T) {
	spill := t.TempDir()
	e := remote(t, t.TempDir(), func(o *Options) { o.MemoryLimit = "512MB"; o.Threads = 1; o.TempDir = spill })
	_, rows, _, err := collect(e, "SELECT current_setting('memory_limit'), current_setting('threads'), current_setting('lock_configuration'), current_setting('temp_directory')")
	if err != nil {
		t.Fatal(err)
	}
	if rows[0][0] != "488.2 MiB" || rows[0][1] != "1" || rows[0][2] != "true" || rows[0][3] != spill {
		t.Fatalf("settings %v", rows[0])
	}
	if _, err := Open(context.Background(), Options{MemoryLimit: "lots"}); err == nil {
		t.Fatal("a bad memory_limit was accepted")
	}
}

// TestUnknownTableHint: an unknown table's error points at SHOW TABLES and keeps
// DuckDB's "Did you mean" only when it names a table of the session, not one of DuckDB's
// catalog views (it suggested pg_sequences for a misspelt warehouse table).
func TestUnknownTableHint(t *testing.T) {
	e := remote(t, warehouse(t), nil)
	for _, c := range []struct{ q, want, not string }{
		{"SELECT * FROM nosuch", "SHOW TABLES lists the tables", "Did you mean"},
		{"SELECT * FROM pg_sequencez", "SHOW TABLES lists the tables", "Did you mean"},
		{"SELECT * FROM tagz", `Did you mean "tags"?`, "pg_"},
	} {
		_, _, _, err := collect(e, c.q)
		var qe *Error
		if !errors.As(err, &qe) || qe.Kind != KindInvalid || qe.Position != 15 {
			t.Fatalf("%q: %#v", c.q, err)
		}
		if text := qe.Message + "\n" + qe.Hint; !strings.Contains(text, c.want) || strings.Contains(text, c.not) {
			t.Errorf("%q: message %q, hint %q; want %q and no %q", c.q, qe.Message, qe.Hint, c.want, c.not)
		}
		if qe.Hint == "" || !strings.HasSuffix(qe.Error(), "(at character 15)\n"+qe.Hint) {
			t.Errorf("%q: Error() = %q: want the position, then the hint", c.q, qe.Error())
		}
	}
	msg, hint, ok := unknownTableHint("Catalog Error: Table with name dwd_events does not exist!\nDid you mean \"duckdb_indexes\"?", "2024-05-01 12:00:00")
	if !ok || msg != "Catalog Error: Table with name dwd_events does not exist!" ||
		hint != "As of 2024-05-01 12:00:00 there are only the tables that existed then; SHOW TABLES lists them." {
		t.Errorf("as of: %q, %q, %v", msg, hint, ok)
	}
	if _, _, ok := unknownTableHint("Binder Error: column x", ""); ok {
		t.Error("another error was rewritten")
	}
}
