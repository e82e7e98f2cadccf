package repl

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// session runs input through Run with opts and returns stdout and stderr.
func session(t *testing.T, e *tsql.Engine, opts Options, input string) (string, string, error) {
	t.Helper()
	var out, errw bytes.Buffer
	opts.Out, opts.Err = &out, &errw
	err := New(e, opts).Run(context.Background(), strings.NewReader(input), nil)
	return out.String(), errw.String(), err
}

// TestMaxRowsKeepsBothEnds: table and box show the first and last rows around a "…" row
// and say how many rows there were; a file gets every row.
func TestMaxRowsKeepsBothEnds(t *testing.T) {
	e := movielens(t)
	file := filepath.Join(t.TempDir(), "all.txt")
	out, stderr, err := session(t, e, Options{}, `.maxrows 5
SELECT range AS n, 'r' || range AS s FROM range(100);
.mode box
SELECT range AS n, 'r' || range AS s FROM range(100);
SELECT range AS n FROM range(6);
SELECT range AS n FROM range(5);
SELECT 'x' AS only WHERE false;
.output `+file+`
SELECT range AS n FROM range(100);
`)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	want := ` n  | s
----+-----
  0 | r0
  1 | r1
  2 | r2
  … | …
 98 | r98
 99 | r99
(100 rows, 5 shown)
┌───────┬───────────────────────┐
│   n   │           s           │
│ int64 │        varchar        │
├───────┼───────────────────────┤
│     0 │ r0                    │
│     1 │ r1                    │
│     2 │ r2                    │
│     … │ …                     │
│    98 │ r98                   │
│    99 │ r99                   │
├───────┴───────────────────────┤
│ 100 rows (5 shown)  2 columns │
└───────────────────────────────┘
┌──────────────────┐
│        n         │
│      int64       │
├──────────────────┤
│                0 │
│                1 │
│                2 │
│                … │
│                4 │
│                5 │
├──────────────────┤
│ 6 rows (5 shown) │
└──────────────────┘
┌───────┐
│   n   │
│ int64 │
├───────┤
│     0 │
│     1 │
│     2 │
│     3 │
│     4 │
└───────┘
┌─────────┐
│  only   │
│ varchar │
├─────────┤
│ 0 rows  │
└─────────┘
`
	if out != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 105 || strings.Contains(string(b), "…") {
		t.Fatalf(".output file has %d lines (want every row):\n%s", n, b)
	}
}

// TestWidthFitsTheTerminal: wide tables and boxes narrow their widest columns, cutting
// cells with "…", until every line fits; files are never cut.
func TestWidthFitsTheTerminal(t *testing.T) {
	e := movielens(t)
	q := "SELECT movieId, title, genres FROM movies WHERE movieId IN (1, 2, 3) ORDER BY 1;\n"
	for _, mode := range []string{"table", "box"} {
		out, stderr, err := session(t, e, Options{Format: mode, Width: 40, MaxWidth: 60}, q)
		if err != nil {
			t.Fatalf("%v\n%s", err, stderr)
		}
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if w := displayWidth(l); w > 40 {
				t.Fatalf("%s: line %q is %d columns wide:\n%s", mode, l, w, out)
			}
		}
		if !strings.Contains(out, "…") || !strings.Contains(out, "Toy Story") {
			t.Fatalf("%s: no cut cell:\n%s", mode, out)
		}
	}
	file := filepath.Join(t.TempDir(), "wide.txt")
	if _, stderr, err := session(t, e, Options{Width: 40, MaxWidth: 10}, ".once "+file+"\n"+q); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if b, _ := os.ReadFile(file); !bytes.Contains(b, []byte("Adventure|Animation|Children|Comedy|Fantasy")) {
		t.Fatalf(".once file was cut:\n%s", b)
	}
}

// TestInsertRoundTrip: .mode insert writes statements that load the same values back
// into a table of the same types.
func TestInsertRoundTrip(t *testing.T) {
	e := movielens(t)
	src, err := os.ReadFile(filepath.Join("..", "testdata", "types.sql"))
	if err != nil {
		t.Fatal(err)
	}
	q := "SELECT * FROM (" + strings.TrimSuffix(strings.TrimSpace(string(src)), ";") + "\n)"
	out, stderr, err := session(t, e, Options{}, ".mode insert t_copy\n"+string(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.HasPrefix(out, "INSERT INTO t_copy VALUES(1,'plain',1.5,12.30,'2024-02-29','2024-02-29 23:59:59.123',true,[1, 2, 3],{'k': 'v', 'n': 1});\n") {
		t.Fatalf("insert:\n%s", out)
	}
	db := e.DB()
	if _, err := db.Exec("CREATE TABLE t_copy AS " + q + " LIMIT 0"); err != nil {
		t.Fatal(err)
	}
	stmts, rest := tsql.Split(out)
	if len(stmts) != 4 || rest != "" {
		t.Fatalf("%d statements, rest %q", len(stmts), rest)
	}
	for _, st := range stmts {
		if _, err := db.Exec(st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	var diff int
	if err := db.QueryRow("SELECT count(*) FROM ((SELECT * FROM t_copy EXCEPT ALL " + q + ") UNION ALL (" + q + " EXCEPT ALL SELECT * FROM t_copy))").Scan(&diff); err != nil || diff != 0 {
		t.Fatalf("%d rows differ after the round trip (%v)", diff, err)
	}
	// The default table name is a reserved word, quoted; two names are an error.
	got, stderr, err := session(t, e, Options{}, ".mode insert\nSELECT 1 AS a;\n.mode insert My Table\n.mode insert \"My Table\"\nSELECT 'it''s' AS a;\n")
	if err == nil || !strings.Contains(stderr, "Error: usage: .mode MODE [TABLE]") {
		t.Fatalf("'.mode insert My Table' (two names) passed: %v\n%s", err, stderr)
	}
	if got != "INSERT INTO \"table\" VALUES(1);\nINSERT INTO \"My Table\" VALUES('it''s');\n" {
		t.Fatalf("%s", got)
	}
}

func TestBoxType(t *testing.T) {
	for in, want := range map[string]string{
		"BIGINT":                                 "int64",
		"INTEGER[]":                              "int32[]",
		"DECIMAL(6,2)":                           "decimal(6,2)",
		"STRUCT(k VARCHAR, n INTEGER)":           "struct(k varchar, n int32)",
		`STRUCT("Big K" UBIGINT, u2 HUGEINT[3])`: `struct("Big K" uint64, u2 int128[3])`,
		"TIMESTAMP WITH TIME ZONE":               "timestamp with time zone",
		"MAP(VARCHAR, DOUBLE)":                   "map(varchar, double)",
	} {
		if got := boxType(in); got != want {
			t.Errorf("boxType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStructFields(t *testing.T) {
	names, types := structFields(`STRUCT(a INTEGER, "B ""c""" STRUCT(x VARCHAR, y INTEGER[]), d DECIMAL(6,2))`)
	if strings.Join(names, "|") != `a|B "c"|d` || strings.Join(types, "|") != "INTEGER|STRUCT(x VARCHAR, y INTEGER[])|DECIMAL(6,2)" {
		t.Fatalf("%q %q", names, types)
	}
}
