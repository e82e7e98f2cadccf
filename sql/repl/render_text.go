package repl

import (
	"bufio"
	"html"
	"io"
	"math"
	"math/big"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// renderCSV is RFC 4180 with the mode's separators: a field is quoted when it holds the
// separator, a quote or a line break, or starts with a space; NULL is st.null, unquoted.
func renderCSV(w io.Writer, res *tsql.Result, st *style) error {
	bw := bufio.NewWriter(w)
	quote := func(s string) string {
		r, _ := utf8.DecodeRuneInString(s)
		if s != "" && (unicode.IsSpace(r) || strings.ContainsAny(s, "\"\r\n") || strings.Contains(s, st.colSep)) {
			return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
		}
		return s
	}
	rec := make([]string, len(res.Columns))
	if st.headers {
		for i, c := range res.Columns {
			rec[i] = quote(c.Name)
		}
		bw.WriteString(strings.Join(rec, st.colSep) + st.rowSep)
	}
	for res.Next() {
		for i, v := range res.Values() {
			if v == nil {
				rec[i] = st.null
			} else {
				rec[i] = quote(tsql.Format(v, res.Columns[i].Type))
			}
		}
		bw.WriteString(strings.Join(rec, st.colSep) + st.rowSep)
	}
	return bw.Flush()
}

// renderList is DuckDB's list and tabs modes: values as they are, joined by the column
// separator ('|' or a tab).
func renderList(w io.Writer, res *tsql.Result, st *style) error {
	bw := bufio.NewWriter(w)
	if st.headers {
		bw.WriteString(strings.Join(columnNames(res), st.colSep) + st.rowSep)
	}
	rec := make([]string, len(res.Columns))
	for res.Next() {
		for i, v := range res.Values() {
			rec[i] = st.text(v, res.Columns[i].Type)
		}
		bw.WriteString(strings.Join(rec, st.colSep) + st.rowSep)
	}
	return bw.Flush()
}

// renderLine is DuckDB's line mode: one "column = value" per line, names right-aligned,
// a blank line between rows.
func renderLine(w io.Writer, res *tsql.Result, st *style) error {
	bw := bufio.NewWriter(w)
	names := columnNames(res)
	width := 0
	for _, n := range names {
		width = max(width, displayWidth(n))
	}
	first := true
	for res.Next() {
		if !first {
			bw.WriteString("\n")
		}
		first = false
		for i, v := range res.Values() {
			bw.WriteString(pad(names[i], width, true) + " = " + st.text(v, res.Columns[i].Type) + "\n")
		}
	}
	return bw.Flush()
}

// renderMarkdown is a GitHub table: names centered, numbers right-aligned (and marked
// so in the alignment row), '|' escaped and line breaks as \n inside cells.
func renderMarkdown(w io.Writer, res *tsql.Result, st *style) error {
	esc := strings.NewReplacer("|", `\|`, "\r", `\r`, "\n", `\n`)
	names := columnNames(res)
	widths := make([]int, len(names))
	right := make([]bool, len(names))
	for i, c := range res.Columns {
		names[i] = esc.Replace(names[i])
		widths[i] = max(3, displayWidth(names[i]))
		right[i] = numeric(c.Type)
	}
	var rows [][]string
	for res.Next() {
		row := make([]string, len(names))
		for i, v := range res.Values() {
			row[i] = esc.Replace(st.text(v, res.Columns[i].Type))
			widths[i] = max(widths[i], displayWidth(row[i]))
		}
		rows = append(rows, row)
	}
	if err := res.Err(); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	line := func(cells []string, align func(i int, s string) string) {
		bw.WriteString("|")
		for i, c := range cells {
			bw.WriteString(" " + align(i, c) + " |")
		}
		bw.WriteString("\n")
	}
	if st.headers {
		line(names, func(i int, s string) string { return center(s, widths[i]) })
		bw.WriteString("|")
		for i, x := range widths {
			if right[i] {
				bw.WriteString(strings.Repeat("-", x+1) + ":|")
			} else {
				bw.WriteString(strings.Repeat("-", x+2) + "|")
			}
		}
		bw.WriteString("\n")
	}
	for _, r := range rows {
		line(r, func(i int, s string) string { return pad(s, widths[i], right[i]) })
	}
	return bw.Flush()
}

// renderHTML is DuckDB's html mode: <TR> rows of <TH> names and <TD> values, one cell a
// line, to paste inside a <TABLE>.
func renderHTML(w io.Writer, res *tsql.Result, st *style) error {
	bw := bufio.NewWriter(w)
	if st.headers {
		bw.WriteString("<TR>")
		for _, c := range res.Columns {
			bw.WriteString("<TH>" + html.EscapeString(c.Name) + "</TH>\n")
		}
		bw.WriteString("</TR>\n")
	}
	for res.Next() {
		bw.WriteString("<TR>")
		for i, v := range res.Values() {
			bw.WriteString("<TD>" + html.EscapeString(st.text(v, res.Columns[i].Type)) + "</TD>\n")
		}
		bw.WriteString("</TR>\n")
	}
	return bw.Flush()
}

// renderInsert is DuckDB's insert mode: one INSERT statement per row, values as SQL
// literals DuckDB reads back into the same types.
func renderInsert(w io.Writer, res *tsql.Result, st *style) error {
	bw := bufio.NewWriter(w)
	lits := make([]string, len(res.Columns))
	for res.Next() {
		for i, v := range res.Values() {
			lits[i] = literal(v, res.Columns[i].Type)
		}
		bw.WriteString("INSERT INTO " + st.table + " VALUES(" + strings.Join(lits, ",") + ");\n")
	}
	return bw.Flush()
}

// literal is v as a DuckDB SQL literal: numbers and booleans bare, lists and structs in
// DuckDB's [..] and {'k': ..} syntax, maps as MAP {..}, everything else a quoted string
// that an INSERT casts to the column's type.
func literal(v any, typ string) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case bool, int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint, *big.Int, duckdb.Decimal:
		return tsql.Format(x, typ)
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return tsql.QuoteString(tsql.Format(x, typ))
		}
		return tsql.Format(x, typ)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return tsql.QuoteString(tsql.Format(x, typ))
		}
		return tsql.Format(x, typ)
	case string:
		return tsql.QuoteString(x)
	case []any:
		elem := strings.TrimSuffix(typ, "[]")
		if i := strings.LastIndexByte(typ, '['); i > 0 && !strings.HasSuffix(typ, "[]") {
			elem = typ[:i]
		}
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = literal(e, elem)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		names, types := structFields(typ)
		var parts []string
		for i, k := range names {
			if e, ok := x[k]; ok {
				parts = append(parts, tsql.QuoteString(k)+": "+literal(e, types[i]))
			}
		}
		if len(parts) != len(x) { // a type we could not read: every field, by name
			parts = parts[:0]
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				parts = append(parts, tsql.QuoteString(k)+": "+literal(x[k], ""))
			}
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case duckdb.Map:
		parts := make([]string, 0, len(x))
		for k, e := range x {
			parts = append(parts, literal(k, "")+": "+literal(e, ""))
		}
		sort.Strings(parts)
		return "MAP {" + strings.Join(parts, ", ") + "}"
	case duckdb.Union:
		return literal(x.Value, "")
	case time.Time, duckdb.Interval, []byte, duckdb.UUID:
		return tsql.QuoteString(tsql.Format(x, typ))
	}
	return tsql.QuoteString(tsql.Format(v, typ))
}

// structFields reads "STRUCT(a INTEGER, \"B c\" VARCHAR[])" into field names and types,
// in declared order; nil for any other type.
func structFields(typ string) (names, types []string) {
	if !strings.HasPrefix(typ, "STRUCT(") || !strings.HasSuffix(typ, ")") {
		return nil, nil
	}
	body := typ[len("STRUCT(") : len(typ)-1]
	depth, start, quoted := 0, 0, false
	for i := 0; i <= len(body); i++ {
		if i < len(body) {
			switch c := body[i]; {
			case c == '"':
				quoted = !quoted
				continue
			case quoted:
				continue
			case c == '(':
				depth++
				continue
			case c == ')':
				depth--
				continue
			case c != ',' || depth > 0:
				continue
			}
		}
		field := strings.TrimSpace(body[start:i])
		start = i + 1
		var name, t string
		if strings.HasPrefix(field, `"`) {
			var end int
			name, end = quotedIdent(field, 0)
			t = strings.TrimSpace(field[min(end+1, len(field)):])
		} else {
			name, t, _ = strings.Cut(field, " ")
		}
		names, types = append(names, name), append(types, t)
	}
	return names, types
}
