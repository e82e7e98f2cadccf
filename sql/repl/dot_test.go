package repl

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDotCommands drives every setting through one session: headers, NULL text,
// separators, each text mode, echo, .once, .output, .read and .show.
func TestDotCommands(t *testing.T) {
	e := movielens(t)
	dir := t.TempDir()
	once, output, script := filepath.Join(dir, "once.txt"), filepath.Join(dir, "out.txt"), filepath.Join(dir, "s.sql")
	if err := os.WriteFile(script, []byte("-- a script\n.mode csv\nSELECT 'read' AS r;\n.headers off\nSELECT 2;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := session(t, e, Options{}, `.headers off
.mode list
SELECT 1 AS a, NULL AS b, 'x|y' AS c;
.headers on
.nullvalue (null)
SELECT 1 AS a, NULL AS b;
.mode csv
.separator ;
SELECT 'a;b' AS x, 2 AS y, NULL AS z;
.separator "\t" "\r\n"
SELECT 'a;b' AS x, 2 AS y;
.mode tabs
SELECT 1 AS a, 'two' AS b;
.mode line
SELECT 1 AS a, NULL AS long_name UNION ALL SELECT 2, 'v' ORDER BY 1;
.mode jsonlines
SELECT 1 AS a, NULL AS b UNION ALL SELECT 2, 'v' ORDER BY 1;
.mode ndjson
.mode
.mode duckbox
.mode
.nullvalue ""
SELECT NULL AS n;
.echo on
SELECT 42 AS answer;
.echo off
.mode table
.once `+once+`
SELECT 'once' AS w;
SELECT 'after once' AS w;
.output `+output+`
SELECT 'to file' AS w;
.tables
.output
SELECT 'back' AS w;
.read `+script+`
.show
`)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	want := "1||x|y\n" +
		"a|b\n1|(null)\n" +
		"x;y;z\n\"a;b\";2;(null)\n" +
		"x\ty\r\na;b\t2\r\n" +
		"a\tb\n1\ttwo\n" +
		"        a = 1\nlong_name = (null)\n\n        a = 2\nlong_name = v\n" +
		`{"a":1,"b":null}` + "\n" + `{"a":2,"b":"v"}` + "\n" +
		"current output mode: jsonlines\ncurrent output mode: box\n" +
		"┌───────┐\n│   n   │\n│ int32 │\n├───────┤\n│       │\n└───────┘\n" +
		"SELECT 42 AS answer;\n┌────────┐\n│ answer │\n│ int32  │\n├────────┤\n│     42 │\n└────────┘\n.echo off\n" +
		" w\n------------\n after once\n(1 row)\n" +
		" w\n------\n back\n(1 row)\n" +
		"r\nread\n2\n" +
		`        bail: off
        echo: off
     headers: off
        mode: csv
   nullvalue: ""
      output: stdout
colseparator: ","
rowseparator: "\n"
     maxrows: 0 (all)
      timing: off
`
	if out != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if b, _ := os.ReadFile(once); string(b) != " w\n------\n once\n(1 row)\n" {
		t.Fatalf(".once file: %q", b)
	}
	if b, _ := os.ReadFile(output); string(b) != " w\n---------\n to file\n(1 row)\nmovies\nratings\ntags\n" {
		t.Fatalf(".output file: %q", b)
	}
}

// TestBail: -e and -f (Exec) stop at the first error unless the script turns .bail off;
// the shell (Run) goes on unless it is turned on.
func TestBail(t *testing.T) {
	e := movielens(t)
	ctx := context.Background()
	var out, errw bytes.Buffer
	sh := New(e, Options{Format: "csv", Out: &out, Err: &errw})
	if err := sh.Exec(ctx, "SELECT 1 AS a; SELECT nosuch FROM movies; SELECT 3 AS c;"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("Exec: %v", err)
	}
	if out.String() != "a\n1\n" || errw.Len() != 0 {
		t.Fatalf("Exec went on or reported: %q %q", out.String(), errw.String())
	}
	out.Reset()
	if err := sh.Exec(ctx, ".bail off\nSELECT nosuch FROM movies;\nSELECT 3 AS c;"); err == nil {
		t.Fatal("Exec with .bail off returned no error")
	}
	if out.String() != "c\n3\n" || errorLines(errw.String()) != 1 {
		t.Fatalf(".bail off: %q %q", out.String(), errw.String())
	}
	for _, tc := range []struct {
		opts  Options
		input string
	}{
		{Options{Format: "csv"}, ".bail on\nSELECT nosuch FROM movies;\nSELECT 3 AS c;\n"},
		{Options{Format: "csv", Bail: true}, "SELECT nosuch FROM movies;\nSELECT 3 AS c;\n"},
	} {
		got, stderr, err := session(t, e, tc.opts, tc.input)
		if err == nil || got != "" || errorLines(stderr) != 1 {
			t.Fatalf("Run with bail: %v %q %q", err, got, stderr)
		}
	}
}

// TestReadFiles: .read is relative to the working directory, nests, reports an error
// inside once, and refuses a file that reads itself forever.
func TestReadFiles(t *testing.T) {
	e := movielens(t)
	dir := t.TempDir()
	t.Chdir(dir)
	for name, body := range map[string]string{
		"a.sql":    ".read b.sql\nSELECT 'a' AS a;\n",
		"b.sql":    "SELECT 'b' AS b;\nSELECT nosuch FROM movies;\n",
		"self.sql": ".read self.sql\n",
	} {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, err := session(t, e, Options{Format: "csv"}, ".read a.sql\n.read missing.sql\n")
	if err == nil || out != "b\nb\na\na\n" || errorLines(stderr) != 2 ||
		!strings.Contains(stderr, "nosuch") || !strings.Contains(stderr, `cannot read "missing.sql"`) {
		t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	_, stderr, err = session(t, e, Options{}, ".read self.sql\n")
	if err == nil || !strings.Contains(stderr, "more than 16 deep") {
		t.Fatalf("self-reading file: %v %s", err, stderr)
	}
}

// TestHelpListsEveryCommand: .help is made from the command table, and every name in
// it runs (none is "unknown").
func TestHelpListsEveryCommand(t *testing.T) {
	e := movielens(t)
	out, _, err := session(t, e, Options{}, ".help\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range dotCommands {
		if !strings.Contains(out, "\n"+c.names[0]+" ") {
			t.Errorf(".help lacks %s:\n%s", c.names[0], out)
		}
	}
	for _, want := range []string{".maxrows N", ".output [FILE]", ".once FILE", ".read FILE", ".separator COL [ROW]", ".nullvalue TEXT", ".show", ".bail on|off", ".echo on|off", ".headers on|off"} {
		if !strings.Contains(out, want) {
			t.Errorf(".help lacks %q", want)
		}
	}
	_, stderr, err := session(t, e, Options{}, ".bogus\n.mode bogus\n.maxrows -1\n.headers maybe\n")
	for _, want := range []string{"unknown command .bogus (try .help)", `unknown mode "bogus"`, ".maxrows wants a number", `want on or off, not "maybe"`} {
		if err == nil || !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestExecRunsDotCommands: -e and -f scripts hold dot commands too, one a line.
func TestExecRunsDotCommands(t *testing.T) {
	e := movielens(t)
	var out bytes.Buffer
	sh := New(e, Options{Out: &out})
	if err := sh.Exec(context.Background(), ".mode csv\n.headers off\nSELECT 1 AS a; SELECT 2 AS b;\n-- done\n"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "1\n2\n" {
		t.Fatalf("%q", out.String())
	}
	// Block comments span lines, before a statement and after one; one left open at the
	// end is no statement.
	out.Reset()
	if err := sh.Exec(context.Background(), "/* a\n  .not a command\n*/\nSELECT 1 AS a;\nSELECT 2 AS b; /* open\n c */ SELECT 3 AS c;\n/* never closed\n"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "1\n2\n3\n" {
		t.Fatalf("%q", out.String())
	}
}

func TestSplitArgs(t *testing.T) {
	got := splitArgs(`.separator "\t"  ';' '' "a b" plain`)
	if strings.Join(got, "|") != `.separator|\t|;||a b|plain` {
		t.Fatalf("%q", got)
	}
}

// errorLines counts the errors reported: lines that start with "Error: ".
func errorLines(stderr string) int {
	n := 0
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "Error: ") {
			n++
		}
	}
	return n
}
