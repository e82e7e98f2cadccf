package repl

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// grid is a result laid out for the table and box modes: the rows kept for display (all,
// or the first and last of a result longer than maxRows) and column widths.
type grid struct {
	cols      []tsql.Column
	head      [][]string // the first rows
	tail      [][]string // the last rows (after a gap when omitted)
	total     int        // rows in the result
	omitted   bool       // rows between head and tail are not shown
	truncated bool       // the engine's row limit cut the result
	right     []bool     // numeric columns are right-aligned
}

func (g *grid) shown() int { return len(g.head) + len(g.tail) }

// cell is a value's one-line text: NULL as st.null, line breaks escaped, cut at maxWidth.
func (st *style) cell(v any, typ string) string {
	s := st.text(v, typ)
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r", `\r`), "\n", `\n`)
	if st.maxWidth > 1 {
		s = cut(s, st.maxWidth)
	}
	return s
}

// collect reads the result, keeping at most maxRows rows (half from each end) in memory.
func collect(res *tsql.Result, st *style) (*grid, error) {
	g := &grid{cols: res.Columns, right: make([]bool, len(res.Columns))}
	for i, c := range res.Columns {
		g.right[i] = numeric(c.Type)
	}
	headCap, tailCap := -1, 0
	if st.maxRows > 0 {
		headCap, tailCap = (st.maxRows+1)/2, st.maxRows/2
	}
	var ring [][]string
	next := 0 // where the ring writes next once full
	for res.Next() {
		g.total++
		row := make([]string, len(res.Columns))
		for i, v := range res.Values() {
			row[i] = st.cell(v, res.Columns[i].Type)
		}
		switch {
		case headCap < 0 || len(g.head) < headCap:
			g.head = append(g.head, row)
		case tailCap == 0:
		case len(ring) < tailCap:
			ring = append(ring, row)
		default:
			ring[next] = row
			next = (next + 1) % tailCap
		}
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	g.tail = append(ring[next:], ring[:next]...)
	g.omitted = g.total > g.shown()
	g.truncated = res.Truncated()
	return g, nil
}

// widths are the columns' widths to fit header (and extra header lines), cells, and the
// terminal: overhead is the border and padding a row adds to its cells.
func (g *grid) widths(st *style, overhead int, headers ...[]string) []int {
	w := make([]int, len(g.cols))
	for _, h := range headers {
		for i, s := range h {
			w[i] = max(w[i], displayWidth(s))
		}
	}
	for _, rows := range [][][]string{g.head, g.tail} {
		for _, r := range rows {
			for i, s := range r {
				w[i] = max(w[i], displayWidth(s))
			}
		}
	}
	if g.omitted {
		for i := range w {
			w[i] = max(w[i], 1)
		}
	}
	if st.termWidth <= 0 {
		return w
	}
	// Narrow the widest column, one column of text at a time, until the table fits;
	// three columns ("ab…") is as narrow as a column gets.
	total := overhead
	for _, x := range w {
		total += x
	}
	for total > st.termWidth {
		widest := 0
		for i := range w {
			if w[i] > w[widest] {
				widest = i
			}
		}
		if w[widest] <= 3 {
			break
		}
		w[widest]--
		total--
	}
	return w
}

// lines calls fn with every shown row, and with gap (one "…" per column) where rows
// were left out.
func (g *grid) lines(fn func(cells []string, gap bool)) {
	for _, r := range g.head {
		fn(r, false)
	}
	if g.omitted {
		gap := make([]string, len(g.cols))
		for i := range gap {
			gap[i] = "…"
		}
		fn(gap, true)
	}
	for _, r := range g.tail {
		fn(r, false)
	}
}

// renderTable is psql's aligned format: a header, a rule, numbers right-aligned, NULL
// spelled out, and a row count.
func renderTable(w io.Writer, res *tsql.Result, st *style) error {
	g, err := collect(res, st)
	if err != nil {
		return err
	}
	names := columnNames(res)
	var widths []int
	n := len(g.cols)
	if st.headers {
		widths = g.widths(st, 3*n-1, names)
	} else {
		widths = g.widths(st, 3*n-1)
	}
	bw := bufio.NewWriter(w)
	var sb strings.Builder
	line := func(cells []string, header bool) {
		sb.Reset()
		for i, c := range cells {
			if i > 0 {
				sb.WriteString(" |")
			}
			sb.WriteString(" ")
			sb.WriteString(pad(cut(c, widths[i]), widths[i], !header && g.right[i]))
		}
		bw.WriteString(strings.TrimRight(sb.String(), " "))
		bw.WriteString("\n")
	}
	if st.headers {
		line(names, true)
		for i := range g.cols {
			if i > 0 {
				bw.WriteString("+")
			}
			bw.WriteString(strings.Repeat("-", widths[i]+2))
		}
		bw.WriteString("\n")
	}
	g.lines(func(cells []string, _ bool) { line(cells, false) })
	switch {
	case g.truncated && g.omitted:
		fmt.Fprintf(bw, "(%d rows, %d shown; result cut at the row limit)\n", g.total, g.shown())
	case g.truncated:
		fmt.Fprintf(bw, "(%d rows shown; result cut at the row limit)\n", g.total)
	case g.omitted:
		fmt.Fprintf(bw, "(%d rows, %d shown)\n", g.total, g.shown())
	case g.total == 1:
		bw.WriteString("(1 row)\n")
	default:
		fmt.Fprintf(bw, "(%d rows)\n", g.total)
	}
	return bw.Flush()
}

// renderBox is DuckDB's default look (duckbox): Unicode box drawing, names and types
// centered over the columns, numbers right-aligned, NULL spelled out, and a footer
// only when rows are left out (or there are none).
func renderBox(w io.Writer, res *tsql.Result, st *style) error {
	g, err := collect(res, st)
	if err != nil {
		return err
	}
	names := columnNames(res)
	types := make([]string, len(g.cols))
	for i, c := range g.cols {
		types[i] = boxType(c.Type)
	}
	n := len(g.cols)
	var widths []int
	if st.headers {
		widths = g.widths(st, 3*n+1, names, types)
	} else {
		widths = g.widths(st, 3*n+1)
	}
	var footL, footR string
	switch {
	case g.truncated:
		footL = fmt.Sprintf("%d rows shown (result cut at the row limit)", g.total)
	case g.omitted:
		footL = fmt.Sprintf("%d rows (%d shown)", g.total, g.shown())
	case g.total == 0:
		footL = "0 rows"
	}
	if footL != "" && n > 1 {
		footR = fmt.Sprintf("%d columns", n)
	}
	inner := 3*n - 3 // between "│ " and " │": the cells and the " │ " between them
	for _, x := range widths {
		inner += x
	}
	if footL != "" {
		need := displayWidth(footL)
		if footR != "" {
			need += 2 + displayWidth(footR)
		}
		if need > inner {
			widths[n-1] += need - inner
			inner = need
		}
	}
	bw := bufio.NewWriter(w)
	rule := func(l, mid, r string) {
		bw.WriteString(l)
		for i, x := range widths {
			if i > 0 {
				bw.WriteString(mid)
			}
			bw.WriteString(strings.Repeat("─", x+2))
		}
		bw.WriteString(r + "\n")
	}
	row := func(cells []string, align func(i int, s string) string) {
		bw.WriteString("│")
		for i, c := range cells {
			bw.WriteString(" " + align(i, cut(c, widths[i])) + " │")
		}
		bw.WriteString("\n")
	}
	centered := func(i int, s string) string { return center(s, widths[i]) }
	rule("┌", "┬", "┐")
	closed := false // the columns already end above the footer
	if st.headers {
		row(names, centered)
		row(types, centered)
		if g.total == 0 && footL != "" {
			rule("├", "┴", "┤")
			closed = true
		} else {
			rule("├", "┼", "┤")
		}
	}
	g.lines(func(cells []string, _ bool) {
		row(cells, func(i int, s string) string { return pad(s, widths[i], g.right[i]) })
	})
	if footL == "" {
		rule("└", "┴", "┘")
		return bw.Flush()
	}
	if !closed {
		rule("├", "┴", "┤")
	}
	var foot string
	if footR == "" {
		foot = center(footL, inner)
	} else {
		foot = footL + strings.Repeat(" ", inner-displayWidth(footL)-displayWidth(footR)) + footR
	}
	bw.WriteString("│ " + foot + " │\n")
	bw.WriteString("└" + strings.Repeat("─", inner+2) + "┘\n")
	return bw.Flush()
}

// boxType is a column type as DuckDB's box prints it: lower case, integers by size
// ("BIGINT" → "int64", "INTEGER[]" → "int32[]"); quoted struct field names are kept.
func boxType(typ string) string {
	var sb strings.Builder
	word := func(s string) {
		switch s {
		case "TINYINT":
			s = "int8"
		case "SMALLINT":
			s = "int16"
		case "INTEGER":
			s = "int32"
		case "BIGINT":
			s = "int64"
		case "HUGEINT":
			s = "int128"
		case "UTINYINT":
			s = "uint8"
		case "USMALLINT":
			s = "uint16"
		case "UINTEGER":
			s = "uint32"
		case "UBIGINT":
			s = "uint64"
		case "UHUGEINT":
			s = "uint128"
		}
		sb.WriteString(strings.ToLower(s))
	}
	start := -1
	for i := 0; i <= len(typ); i++ {
		var c byte
		if i < len(typ) {
			c = typ[i]
		}
		isWord := c >= 'A' && c <= 'Z' || c == '_' || start >= 0 && c >= '0' && c <= '9'
		if isWord {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			word(typ[start:i])
			start = -1
		}
		if i == len(typ) {
			break
		}
		if c == '"' {
			// A quoted struct field name: plain words lose their quotes, as DuckDB prints them.
			name, end := quotedIdent(typ, i)
			sb.WriteString(tsql.QuoteIdentIfNeeded(name))
			i = end
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// quotedIdent reads the "…" identifier that starts at s[i]: its name ("" for a doubled
// quote) and the index of its closing quote (len(s) when it has none).
func quotedIdent(s string, i int) (name string, end int) {
	end = i + 1
	for end < len(s) && (s[end] != '"' || end+1 < len(s) && s[end+1] == '"') {
		if s[end] == '"' {
			end++
		}
		end++
	}
	return strings.ReplaceAll(s[i+1:min(end, len(s))], `""`, `"`), end
}
