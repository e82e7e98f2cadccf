package tagging

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// movielensDir holds MovieLens ml-latest-small: the shared data set next to the
// checkout (../shared/data) when present, else the identical copy in testdata/.
var movielensDir = func() string {
	shared := filepath.Join("..", "..", "shared", "data", "movielens-ml-latest-small")
	if _, err := os.Stat(filepath.Join(shared, "ratings.csv")); err == nil {
		return shared
	}
	return filepath.Join("..", "testdata", "movielens")
}()

// openDuck opens a private in-memory DuckDB database.
func openDuck(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(4)
	t.Cleanup(func() { db.Close() })
	mustExec(t, db, "SET TimeZone = 'UTC'")
	return db
}

func mustExec(t testing.TB, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// loadMovieLens creates dwd_events (ratings as action "rate", value = rating) and
// dim_item (genres as tags) from the shipped CSV files.
func loadMovieLens(t testing.TB, db *sql.DB) {
	t.Helper()
	mustExec(t, db, `CREATE TABLE dwd_events AS
SELECT CAST(userId AS VARCHAR) AS user_id, CAST(movieId AS VARCHAR) AS item_id, 'rate' AS action,
  make_timestamp(CAST(timestamp AS BIGINT) * 1000000) AS event_time, CAST(rating AS DOUBLE) AS value
FROM read_csv(?, header = true)`, filepath.Join(movielensDir, "ratings.csv"))
	mustExec(t, db, `CREATE TABLE dim_item AS
SELECT CAST(movieId AS VARCHAR) AS item_id, CAST(NULL AS VARCHAR) AS category, string_split(genres, '|') AS tags
FROM read_csv(?, header = true, quote = '"')`, filepath.Join(movielensDir, "movies.csv"))
}

func newTagger(t testing.TB, db *sql.DB, mod func(*Options)) *Tagger {
	t.Helper()
	o := DefaultOptions()
	o.MemoryLimit = ""
	if mod != nil {
		mod(&o)
	}
	tg, err := New(db, DuckStore{}, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}
