package sql

import (
	"context"
	dbsql "database/sql"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// fileListViews registers "tags" over the files present now, listed one by one, as
// warehouse/duckbridge does for a snapshot: new files change the view's definition.
func fileListViews(dir string) RegisterFunc {
	return func(ctx context.Context, conn *dbsql.Conn, _ string) error {
		files, err := filepath.Glob(filepath.Join(dir, "tags", "*", "*.parquet"))
		if err != nil {
			return err
		}
		sort.Strings(files)
		for i, f := range files {
			files[i] = quote(f)
		}
		_, err = conn.ExecContext(ctx, "CREATE OR REPLACE VIEW tags AS SELECT * FROM read_parquet(["+strings.Join(files, ", ")+"], hive_partitioning = true)")
		return err
	}
}

func cacheTables(t *testing.T, e *Engine) []string {
	t.Helper()
	rows, err := e.DB().Query("SELECT table_name FROM duckdb_tables() WHERE database_name = $1 ORDER BY 1", CacheDatabase)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

// TestCacheServesSnapshotThroughIndex: a cached table answers exactly as its Parquet
// view does, point queries use the index, a refresh over the same snapshot keeps the
// copy, and a new snapshot replaces it (the old copy dropped).
func TestCacheServesSnapshotThroughIndex(t *testing.T) {
	dir := warehouse(t)
	// DuckDB scans a table this small rather than use its index; one more partition
	// of 200k users makes it pick the index as it does for the real table.
	addTagsPartition(t, dir, "SELECT i AS user_id, 'tag' || (i % 7) AS tag, i / 1000.0 AS weight FROM range(200000) t(i)")
	mod := func(o *Options) { o.Register = fileListViews(dir) }
	plain := remote(t, dir, mod)
	cached := remote(t, dir, func(o *Options) {
		mod(o)
		o.Cache = []CacheTable{{Table: "tags", Key: "user_id"}, {Table: "not_there_yet", Key: "user_id"}}
	})
	same := func(q string, args ...any) {
		t.Helper()
		_, want, _, err := collect(plain, q, args...)
		if err != nil {
			t.Fatal(err)
		}
		_, got, _, err := collect(cached, q, args...)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %v: cached %v, Parquet %v", q, args, got, want)
		}
	}
	point := "SELECT dt, tag, weight FROM tags WHERE user_id = $1 ORDER BY dt, tag"
	for u := range 6 {
		same(point, u)
	}
	same(point, 123456)
	same("SELECT tag, count(*), round(sum(weight), 3) FROM tags GROUP BY tag ORDER BY tag") // summation order differs
	_, plan, _, err := collect(cached, "EXPLAIN ANALYZE SELECT tag FROM tags WHERE user_id = 3")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(plan[0], " "), "Index Scan") {
		t.Fatalf("point query does not use the index:\n%s", plan[0][1])
	}
	if got := cacheTables(t, cached); !reflect.DeepEqual(got, []string{"tags_1"}) {
		t.Fatalf("copies = %v, want [tags_1]", got)
	}
	if _, _, _, err := collect(cached, "DELETE FROM "+CacheDatabase+".tags_1"); err == nil {
		t.Fatal("a remote query deleted from the copy")
	}

	// Same snapshot: the copy stays.
	if err := cached.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := cacheTables(t, cached); !reflect.DeepEqual(got, []string{"tags_1"}) {
		t.Fatalf("after a refresh over the same files: copies = %v, want [tags_1]", got)
	}
	same(point, 2)

	// A new partition lands: the next refresh copies the new snapshot.
	p := filepath.Join(dir, "tags", "dt=2024-01-03")
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.DB().Exec("COPY (SELECT 2 AS user_id, 'new' AS tag, 9.5 AS weight) TO " + quote(filepath.Join(p, "part-0.parquet")) + " (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Engine{plain, cached} {
		if err := e.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := cacheTables(t, cached); !reflect.DeepEqual(got, []string{"tags_2"}) {
		t.Fatalf("after a new snapshot: copies = %v, want [tags_2]", got)
	}
	same(point, 2)
	_, rows, _, err := collect(cached, "SELECT tag FROM tags WHERE user_id = 2 AND dt = '2024-01-03'")
	if err != nil || len(rows) != 1 || rows[0][0] != "new" {
		t.Fatalf("new partition through the copy: %v, %v", rows, err)
	}
}

// TestCacheFallsBackToParquet: a copy that does not fit memory_limit leaves the view
// reading the Parquet files, with the same answers.
func TestCacheFallsBackToParquet(t *testing.T) {
	dir := warehouse(t)
	addTagsPartition(t, dir, "SELECT i AS user_id, 'tag' || i AS tag, i / 1000.0 AS weight FROM range(2000000) t(i)")
	e := remote(t, dir, func(o *Options) {
		o.Register = fileListViews(dir)
		o.MemoryLimit = "8MB"
		o.Cache = []CacheTable{{Table: "tags", Key: "user_id"}}
	})
	if got := cacheTables(t, e); len(got) != 0 {
		t.Fatalf("copies = %v, want none within 8MB", got)
	}
	_, rows, _, err := collect(e, "SELECT tag FROM tags WHERE user_id = 1234567")
	if err != nil || len(rows) != 1 || rows[0][0] != "tag1234567" {
		t.Fatalf("point query over Parquet: %v, %v", rows, err)
	}
	if err := e.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := cacheTables(t, e); len(got) != 0 {
		t.Fatalf("after refresh: copies = %v, want none", got)
	}
}

// TestRefreshNeverShowsParquetViewOfCopiedSnapshot: refreshing over the same snapshot
// re-registers every view, but other connections keep seeing the view over the copy.
func TestRefreshNeverShowsParquetViewOfCopiedSnapshot(t *testing.T) {
	dir := warehouse(t)
	e := remote(t, dir, func(o *Options) {
		o.Register = fileListViews(dir)
		o.Cache = []CacheTable{{Table: "tags", Key: "user_id"}}
	})
	ctx := context.Background()
	watch, err := e.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	want, err := viewDef(ctx, watch, "tags")
	if err != nil || !strings.Contains(want, CacheDatabase) {
		t.Fatalf("view before refreshing: %q, %v", want, err)
	}
	done := make(chan struct{})
	seen := make(chan string, 1)
	go func() {
		defer close(seen)
		for {
			select {
			case <-done:
				return
			default:
			}
			if def, err := viewDef(ctx, watch, "tags"); err != nil || def != want {
				seen <- def
				return
			}
		}
	}()
	for range 20 {
		if err := e.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if def, ok := <-seen; ok {
		t.Fatalf("during a refresh another connection saw the view as %q", def)
	}
}

// addTagsPartition writes the rows of query as partition dt=2023-12-31 of the test
// warehouse's tags table.
func addTagsPartition(t *testing.T, dir, query string) {
	t.Helper()
	part := filepath.Join(dir, "tags", "dt=2023-12-31")
	if err := os.MkdirAll(part, 0o755); err != nil {
		t.Fatal(err)
	}
	local, err := Open(context.Background(), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if _, err := local.DB().Exec("COPY (" + query + ") TO " + quote(filepath.Join(part, "part-0.parquet")) + " (FORMAT parquet)"); err != nil {
		t.Fatal(err)
	}
}
