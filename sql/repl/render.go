package repl

import (
	"fmt"
	"io"
	"strings"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// Modes are the text output modes of .mode and --format, DuckDB's names (duckbox and
// ndjson are accepted as aliases of box and jsonlines).
var Modes = []string{"table", "box", "csv", "json", "jsonlines", "line", "list", "tabs", "markdown", "html", "insert"}

// Formats are what --format takes: every mode, and parquet (written with --out).
var Formats = append(append([]string(nil), Modes...), "parquet")

// renderFunc prints one result in one mode.
type renderFunc func(w io.Writer, res *tsql.Result, st *style) error

var renderers = map[string]renderFunc{
	"table": renderTable, "box": renderBox, "csv": renderCSV, "json": renderJSON,
	"jsonlines": renderJSONLines, "line": renderLine, "list": renderList, "tabs": renderList,
	"markdown": renderMarkdown, "html": renderHTML, "insert": renderInsert,
}

// canonicalMode resolves DuckDB's aliases; ok is false for an unknown mode.
func canonicalMode(m string) (string, bool) {
	switch m {
	case "", "table":
		return "table", true
	case "duckbox":
		return "box", true
	case "ndjson":
		return "jsonlines", true
	}
	_, ok := renderers[m]
	return m, ok
}

func unknownMode(m string) error {
	return fmt.Errorf("unknown mode %q: want one of %s", m, strings.Join(Modes, ", "))
}

// style is everything a renderer needs to know besides the rows.
type style struct {
	mode    string
	table   string // insert: the target table, already quoted
	headers bool
	null    string // the text of NULL in this mode
	colSep  string // csv, list, tabs
	rowSep  string // csv, list, tabs
	// maxRows shows the first and last maxRows/2 rows of a longer result (table, box);
	// 0 = all.
	maxRows int
	// maxWidth cuts cells wider than this (table, box); 0 = never.
	maxWidth int
	// termWidth narrows the widest columns of a table or box until it fits; 0 = no limit.
	termWidth int
}

// defaultSeparators are a mode's column separator, as DuckDB's .mode sets them.
func defaultSeparator(mode string) string {
	switch mode {
	case "csv":
		return ","
	case "tabs":
		return "\t"
	}
	return "|"
}

// defaultNull is how a mode prints NULL until .nullvalue says otherwise: DuckDB's boxes
// spell it out, the separated-value and text modes leave it empty.
func defaultNull(mode string) string {
	if mode == "table" || mode == "box" {
		return "NULL"
	}
	return ""
}

// text is a value's text in the separated and text modes: NULL is st.null.
func (st *style) text(v any, typ string) string {
	if v == nil {
		return st.null
	}
	return tsql.Format(v, typ)
}

func numeric(typ string) bool {
	switch tsql.BaseType(typ) {
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
		"UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL":
		return true
	}
	return false
}

func columnNames(res *tsql.Result) []string {
	names := make([]string, len(res.Columns))
	for i, c := range res.Columns {
		names[i] = c.Name
	}
	return names
}

// displayWidth counts terminal columns: East Asian wide characters take two.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		n += runeWidth(r)
	}
	return n
}

func runeWidth(r rune) int {
	if r >= 0x1100 && (r <= 0x115F || r >= 0x2E80 && r <= 0xA4CF || r >= 0xAC00 && r <= 0xD7A3 ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0xFE30 && r <= 0xFE4F || r >= 0xFF00 && r <= 0xFF60 ||
		r >= 0xFFE0 && r <= 0xFFE6 || r >= 0x20000 && r <= 0x3FFFD) {
		return 2
	}
	return 1
}

// cut shortens s to at most w terminal columns, the last being "…".
func cut(s string, w int) string {
	if displayWidth(s) <= w {
		return s
	}
	if w < 1 {
		return ""
	}
	var sb strings.Builder
	n := 0
	for _, r := range s {
		rw := runeWidth(r)
		if n+rw > w-1 {
			break
		}
		sb.WriteRune(r)
		n += rw
	}
	sb.WriteString("…")
	return sb.String()
}

func pad(s string, n int, right bool) string {
	gap := strings.Repeat(" ", max(0, n-displayWidth(s)))
	if right {
		return gap + s
	}
	return s + gap
}

func center(s string, n int) string {
	gap := max(0, n-displayWidth(s))
	return strings.Repeat(" ", gap/2) + s + strings.Repeat(" ", gap-gap/2)
}
