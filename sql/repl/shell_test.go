package repl

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	tsql "github.com/tagpipe/tagpipe/sql"
)

var update = flag.Bool("update", false, "rewrite the golden files in sql/testdata")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func movielens(t *testing.T) *tsql.Engine {
	t.Helper()
	// Absolute, so that tests may change the working directory (.read is relative to it).
	ml, err := filepath.Abs(filepath.Join("..", "..", "testdata", "movielens"))
	if err != nil {
		t.Fatal(err)
	}
	opts := tsql.DefaultOptions()
	opts.Register = tsql.FileViews(map[string]string{
		"ratings": filepath.Join(ml, "ratings.csv"),
		"movies":  filepath.Join(ml, "movies.csv"),
		"tags":    filepath.Join(ml, "tags.csv"),
	})
	e, err := tsql.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// TestGolden runs every sql/testdata/*.sql script in each output mode and compares the
// output with sql/testdata/NAME.MODE.golden; -update rewrites them.
func TestGolden(t *testing.T) {
	e := movielens(t)
	scripts, _ := filepath.Glob(filepath.Join("..", "testdata", "*.sql"))
	if len(scripts) == 0 {
		t.Fatal("no golden scripts")
	}
	for _, script := range scripts {
		src, err := os.ReadFile(script)
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range Modes {
			name := strings.TrimSuffix(filepath.Base(script), ".sql") + "." + format
			t.Run(name, func(t *testing.T) {
				var out, errw bytes.Buffer
				sh := New(e, Options{Format: format, Out: &out, Err: &errw})
				if err := sh.Exec(context.Background(), string(src)); err != nil {
					t.Fatalf("%v\n%s", err, errw.String())
				}
				golden := filepath.Join("..", "testdata", name+".golden")
				if *update {
					if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(out.Bytes(), want) {
					t.Fatalf("output differs from %s (run with -update after checking):\n--- got\n%s\n--- want\n%s", golden, out.String(), want)
				}
			})
		}
	}
}

func TestInteractiveSession(t *testing.T) {
	e := movielens(t)
	in := strings.NewReader(`.tables
SELECT movieId,
       title
FROM movies
WHERE movieId IN (1, 2) ORDER BY 1;
SELECT nosuch FROM movies;
.mode csv
SELECT 1 AS a; SELECT 2 AS b;
.schema movies
.bogus
.quit
SELECT 'not reached';
`)
	var out, errw bytes.Buffer
	sh := New(e, Options{Out: &out, Err: &errw})
	err := sh.Run(context.Background(), in, nil)
	if err == nil {
		t.Fatal("a session with errors returned nil")
	}
	want := `movies
ratings
tags
 movieId | title
---------+------------------
       1 | Toy Story (1995)
       2 | Jumanji (1995)
(2 rows)
a
1
b
2
movies
 column_name | column_type | nullable
-------------+-------------+----------
 movieId     | BIGINT      | YES
 title       | VARCHAR     | YES
 genres      | VARCHAR     | YES
(3 rows)
`
	if out.String() != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", out.String(), want)
	}
	if !strings.Contains(errw.String(), `Error: Binder Error: Referenced column "nosuch" not found in FROM clause!`) ||
		!strings.Contains(errw.String(), "(at character 8)") || !strings.Contains(errw.String(), "unknown command .bogus") {
		t.Fatalf("stderr:\n%s", errw.String())
	}
}

func TestTimingUsesClock(t *testing.T) {
	e := movielens(t)
	var out, errw bytes.Buffer
	sh := New(e, Options{Out: &out, Err: &errw, Timing: true})
	at := time.Unix(0, 0)
	sh.now = func() time.Time { at = at.Add(1500 * time.Microsecond); return at }
	if err := sh.Exec(context.Background(), "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if errw.String() != "Time: 1.500 ms\n" {
		t.Fatalf("%q", errw.String())
	}
}

func TestParquetOutput(t *testing.T) {
	e := movielens(t)
	out := filepath.Join(t.TempDir(), "top.parquet")
	var errw bytes.Buffer
	sh := New(e, Options{Format: "parquet", OutFile: out, Err: &errw})
	if err := sh.Exec(context.Background(), "SELECT movieId, title FROM movies WHERE movieId <= 10"); err != nil {
		t.Fatal(err)
	}
	var n int
	var first string
	if err := e.DB().QueryRow("SELECT count(*), min(title) FILTER (WHERE movieId = 1) FROM read_parquet("+tsql.QuoteString(out)+")").Scan(&n, &first); err != nil {
		t.Fatal(err)
	}
	if n != 10 || first != "Toy Story (1995)" || !strings.Contains(errw.String(), "wrote 10 rows") {
		t.Fatalf("n=%d first=%q stderr=%q", n, first, errw.String())
	}
	if err := New(e, Options{Format: "parquet"}).Exec(context.Background(), "SELECT 1"); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Fatalf("parquet without --out: %v", err)
	}
}

func TestHistoryPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history")
	h, err := OpenHistory(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"SELECT 1;", "SELECT\n2;", "SELECT 2;", "SELECT 3;", "SELECT 4;"} {
		h.Add(l)
	}
	h2, err := OpenHistory(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	if h2.Len() != 3 || h2.At(0) != "SELECT 4;" || h2.At(2) != "SELECT 2;" {
		t.Fatalf("len %d: %q %q", h2.Len(), h2.At(0), h2.At(2))
	}
}

func TestSessionRecordsWholeStatements(t *testing.T) {
	e := movielens(t)
	path := filepath.Join(t.TempDir(), "history")
	h, err := OpenHistory(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	sh := New(e, Options{Out: &out, Err: &out})
	sh.record = h.Add
	if err := sh.Run(context.Background(), strings.NewReader("SELECT 1\n  AS a; SELECT 2;\n.mode csv\n"), nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if string(b) != "SELECT 1   AS a;\nSELECT 2;\n.mode csv\n" {
		t.Fatalf("history file %q", b)
	}
}
