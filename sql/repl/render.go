package repl

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// Formats the shell prints.
var Formats = []string{"table", "csv", "json", "parquet"}

// renderer prints one result.
type renderer interface {
	render(w io.Writer, res *tsql.Result) error
}

func rendererFor(format string, maxWidth int) (renderer, error) {
	switch format {
	case "table", "":
		return tableRenderer{maxWidth: maxWidth}, nil
	case "csv":
		return csvRenderer{}, nil
	case "json":
		return jsonRenderer{}, nil
	}
	return nil, fmt.Errorf("unknown format %q: want one of %s", format, strings.Join(Formats, ", "))
}

// tableRenderer is psql's aligned format: a header, a rule, numbers right-aligned, NULL
// spelled out, and a row count.
type tableRenderer struct{ maxWidth int }

func numeric(typ string) bool {
	switch tsql.BaseType(typ) {
	case "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
		"UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL":
		return true
	}
	return false
}

func (t tableRenderer) cell(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r", `\r`), "\n", `\n`)
	if t.maxWidth > 1 && utf8.RuneCountInString(s) > t.maxWidth {
		r := []rune(s)
		s = string(r[:t.maxWidth-1]) + "…"
	}
	return s
}

func (t tableRenderer) render(w io.Writer, res *tsql.Result) error {
	cols := res.Columns
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = displayWidth(c.Name)
	}
	var rows [][]string
	for res.Next() {
		row := make([]string, len(cols))
		for i, v := range res.Values() {
			row[i] = t.cell(tsql.Format(v, cols[i].Type))
			widths[i] = max(widths[i], displayWidth(row[i]))
		}
		rows = append(rows, row)
	}
	if res.Err() != nil {
		return nil
	}
	bw := bufio.NewWriter(w)
	pad := func(s string, n int, right bool) string {
		gap := strings.Repeat(" ", n-displayWidth(s))
		if right {
			return gap + s
		}
		return s + gap
	}
	var sb strings.Builder
	line := func(cells []string, header bool) {
		sb.Reset()
		for i, c := range cells {
			if i > 0 {
				sb.WriteString(" |")
			}
			sb.WriteString(" ")
			sb.WriteString(pad(c, widths[i], !header && numeric(cols[i].Type)))
		}
		bw.WriteString(strings.TrimRight(sb.String(), " "))
		bw.WriteString("\n")
	}
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	line(names, true)
	for i := range cols {
		if i > 0 {
			bw.WriteString("+")
		}
		bw.WriteString(strings.Repeat("-", widths[i]+2))
	}
	bw.WriteString("\n")
	for _, r := range rows {
		line(r, false)
	}
	n := len(rows)
	switch {
	case res.Truncated():
		fmt.Fprintf(bw, "(%d rows shown; result cut at the row limit)\n", n)
	case n == 1:
		bw.WriteString("(1 row)\n")
	default:
		fmt.Fprintf(bw, "(%d rows)\n", n)
	}
	return bw.Flush()
}

// csvRenderer is RFC 4180 with a header; NULL is an empty field.
type csvRenderer struct{}

func (csvRenderer) render(w io.Writer, res *tsql.Result) error {
	cw := csv.NewWriter(w)
	rec := make([]string, len(res.Columns))
	for i, c := range res.Columns {
		rec[i] = c.Name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for res.Next() {
		for i, v := range res.Values() {
			if v == nil {
				rec[i] = ""
			} else {
				rec[i] = tsql.Format(v, res.Columns[i].Type)
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// jsonRenderer is DuckDB's .mode json: an array of objects, one per line, keys in column
// order.
type jsonRenderer struct{}

func (jsonRenderer) render(w io.Writer, res *tsql.Result) error {
	bw := bufio.NewWriter(w)
	keys := make([]string, len(res.Columns))
	for i, c := range res.Columns {
		k, _ := json.Marshal(c.Name)
		keys[i] = string(k)
	}
	bw.WriteString("[")
	n := 0
	for res.Next() {
		if n > 0 {
			bw.WriteString(",\n")
		}
		n++
		bw.WriteString("{")
		for i, v := range res.Values() {
			if i > 0 {
				bw.WriteString(",")
			}
			b, err := json.Marshal(tsql.JSONValue(v, res.Columns[i].Type))
			if err != nil {
				return err
			}
			bw.WriteString(keys[i])
			bw.WriteString(":")
			bw.Write(b)
		}
		bw.WriteString("}")
	}
	bw.WriteString("]\n")
	return bw.Flush()
}

// displayWidth counts terminal columns: East Asian wide characters take two.
func displayWidth(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r >= 0x1100 && (r <= 0x115F || r >= 0x2E80 && r <= 0xA4CF || r >= 0xAC00 && r <= 0xD7A3 ||
			r >= 0xF900 && r <= 0xFAFF || r >= 0xFE30 && r <= 0xFE4F || r >= 0xFF00 && r <= 0xFF60 ||
			r >= 0xFFE0 && r <= 0xFFE6 || r >= 0x20000 && r <= 0x3FFFD) {
			n++
		}
	}
	return n
}
