package sql

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzSplit: splitting never panics, and statements joined again split the same way.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"", ";", "SELECT 1; SELECT 2", "SELECT ';' -- x;\n;", "/* ; */ SELECT $$;$$;",
		"SELECT \"a;b\" FROM t; SELECT 'it''s'", "$tag$ ; $tag$;", "SELECT 1 /* unterminated", "'", "$$", "--"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		stmts, _ := Split(script)
		for _, s := range stmts {
			if strings.TrimSpace(s) == "" {
				t.Fatalf("empty statement from %q", script)
			}
		}
		if len(stmts) == 0 {
			return
		}
		again, rest := Split(strings.Join(stmts, "\n;\n") + "\n;")
		if !reflect.DeepEqual(again, stmts) || rest != "" {
			t.Fatalf("re-split of %q: %q (rest %q), want %q", script, again, rest, stmts)
		}
	})
}

// FuzzPosition: mapping DuckDB's excerpt and caret to an offset never panics and stays
// inside the query.
func FuzzPosition(f *testing.F) {
	f.Add("SELECT * FROM nosuch", 1, "SELECT * FROM nosuch", 14)
	f.Add("SELECT 'é', x", 1, "...'é', x", 9)
	f.Fuzz(func(t *testing.T, query string, line int, excerpt string, caret int) {
		p := position(query, line, excerpt, caret)
		if p < 0 || p > len([]rune(query))+1 {
			t.Fatalf("position %d outside %q", p, query)
		}
	})
}

// TestPositionCutCharacter: an excerpt cut inside a multi-byte character never matches
// the middle of one, and a caret past a cut character points at the character, not past
// the query (found by FuzzPosition, seed 0c63f9d4621f10d3).
func TestPositionCutCharacter(t *testing.T) {
	for _, c := range []struct {
		query, excerpt string
		caret, want    int
	}{
		{"＼", "\xbc", 49, 0},                  // excerpt starts inside the character: no match
		{"x＼", "x\xef\xbc", 5, 2},             // excerpt ends inside it: the caret lands on it
		{"SELECT 'é', x", "...'é', x", 9, 14}, // whole characters: unchanged
	} {
		if got := position(c.query, 1, c.excerpt, c.caret); got != c.want {
			t.Errorf("position(%q, 1, %q, %d) = %d, want %d", c.query, c.excerpt, c.caret, got, c.want)
		}
	}
}

// TestSplitOpen: a script ending inside a /* comment says so (rest, comments only, is
// empty either way); a closed comment, an open quote (rest holds it) and no comment do not.
func TestSplitOpen(t *testing.T) {
	for _, c := range []struct {
		script string
		n      int
		rest   string
		open   bool
	}{
		{"SELECT 1; /* still", 1, "", true},
		{"/* all\nof it", 0, "", true},
		{"SELECT 1; /* done */", 1, "", false},
		{"SELECT '/* not a comment", 0, "SELECT '/* not a comment", false},
		{"SELECT 1 /* open", 0, "SELECT 1 /* open", true},
		{"SELECT 1; -- /* in a line comment\n", 1, "", false},
	} {
		stmts, rest, open := SplitOpen(c.script)
		if len(stmts) != c.n || rest != c.rest || open != c.open {
			t.Errorf("SplitOpen(%q) = %q, %q, %v; want %d statements, %q, %v", c.script, stmts, rest, open, c.n, c.rest, c.open)
		}
	}
}
