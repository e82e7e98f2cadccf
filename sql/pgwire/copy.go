package pgwire

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// COPY … TO STDOUT: what psql's `\copy (query) TO 'file' CSV HEADER` and pgx's CopyTo
// send. The query (or `table [(columns)]`) runs as any other — the read-only guard
// applies — and its rows go back as CopyData lines in PostgreSQL's text or CSV format.
// COPY FROM STDIN and COPY to a server file are refused: the endpoint writes nothing.

// copyOut is a parsed COPY … TO STDOUT.
type copyOut struct {
	query  string
	csv    bool
	header bool
	delim  byte
	quote  byte
	null   string
}

// parseCopy recognises a COPY statement: ok is false for anything else; err says why a
// COPY cannot run here.
func parseCopy(q string) (c *copyOut, ok bool, err error) {
	q = strings.TrimSpace(q)
	if len(q) < 5 || !strings.EqualFold(q[:4], "copy") || !isSpace(q[4]) {
		return nil, false, nil
	}
	refuse := func(format string, args ...any) (*copyOut, bool, error) {
		return nil, true, &tsql.Error{Kind: tsql.KindRefused, Message: fmt.Sprintf(format, args...)}
	}
	rest := strings.TrimSpace(q[4:])
	c = &copyOut{}
	if strings.HasPrefix(rest, "(") {
		end := closingParen(rest)
		if end < 0 {
			return refuse("COPY: unbalanced parentheses around the query")
		}
		c.query, rest = rest[1:end], strings.TrimSpace(rest[end+1:])
	} else {
		toks := tokenize(rest)
		i := 0
		if i >= len(toks) {
			return refuse("COPY: no table or query")
		}
		table := toks[i]
		i++
		cols := "*"
		if i < len(toks) && toks[i] == "(" {
			var names []string
			for i++; i < len(toks) && toks[i] != ")"; i++ {
				if toks[i] != "," {
					names = append(names, toks[i])
				}
			}
			i++
			cols = strings.Join(names, ", ")
		}
		c.query = "SELECT " + cols + " FROM " + table
		rest = strings.Join(toks[i:], " ")
	}
	toks := tokenize(rest)
	switch {
	case len(toks) >= 2 && strings.EqualFold(toks[0], "from") && strings.EqualFold(toks[1], "stdin"):
		return refuse("COPY FROM STDIN is not supported: this endpoint is read-only")
	case len(toks) < 2 || !strings.EqualFold(toks[0], "to") || !strings.EqualFold(toks[1], "stdout"):
		return refuse("COPY can only write TO STDOUT here (psql: \\copy … TO 'file'); the server writes no files")
	}
	c.delim, c.quote, c.null = '\t', '"', `\N`
	delimSet, nullSet := false, false
	opts := toks[2:]
	if len(opts) > 0 && strings.EqualFold(opts[0], "with") {
		opts = opts[1:]
	}
	if len(opts) > 0 && opts[0] == "(" {
		opts = opts[1:] // WITH (FORMAT csv, HEADER, …): names and values, commas ignored
	}
	for i := 0; i < len(opts); i++ {
		name := strings.ToLower(opts[i])
		value := func() string {
			if i+1 < len(opts) && strings.EqualFold(opts[i+1], "as") {
				i++
			}
			if i+1 < len(opts) && opts[i+1] != "," && opts[i+1] != ")" {
				i++
				return unquote(opts[i])
			}
			return ""
		}
		switch name {
		case ",", ")":
		case "csv":
			c.csv = true
		case "binary":
			return refuse("COPY: the binary format is not supported; use text or csv")
		case "format":
			switch f := strings.ToLower(value()); f {
			case "csv":
				c.csv = true
			case "text":
			default:
				return refuse("COPY: format %q is not supported; use text or csv", f)
			}
		case "header":
			c.header = true
			if i+1 < len(opts) {
				switch strings.ToLower(opts[i+1]) {
				case "true", "on", "1":
					i++
				case "false", "off", "0":
					i++
					c.header = false
				}
			}
		case "delimiter":
			v := value()
			if len(v) != 1 {
				return refuse("COPY: the delimiter must be one character, got %q", v)
			}
			c.delim, delimSet = v[0], true
		case "null":
			c.null, nullSet = value(), true
		case "quote":
			v := value()
			if len(v) != 1 {
				return refuse("COPY: the quote must be one character, got %q", v)
			}
			c.quote = v[0]
		default:
			return refuse("COPY: option %q is not supported (format, header, delimiter, null, quote)", opts[i])
		}
	}
	if c.csv {
		if !delimSet {
			c.delim = ','
		}
		if !nullSet {
			c.null = ""
		}
	}
	return c, true, nil
}

// copyOut runs cp and sends its rows in the COPY sub-protocol.
func (c *conn) copyOut(cp *copyOut) error {
	var line []byte
	n, truncated, err := c.queryRows(cp.query, nil, nil, func(cols []tsql.Column) {
		c.be.Send(&pgproto3.CopyOutResponse{OverallFormat: 0, ColumnFormatCodes: make([]uint16, len(cols))})
		if cp.header {
			names := make([][]byte, len(cols))
			for i, col := range cols {
				names[i] = []byte(col.Name)
			}
			line = cp.appendLine(line[:0], names, false)
			c.be.Send(&pgproto3.CopyData{Data: line})
		}
	}, func(row [][]byte) error {
		line = cp.appendLine(line[:0], row, true)
		c.be.Send(&pgproto3.CopyData{Data: line})
		return nil
	})
	if err != nil {
		return err // an ErrorResponse ends a COPY in progress, as in PostgreSQL
	}
	c.truncationNotice(truncated, n)
	c.be.Send(&pgproto3.CopyDone{})
	c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("COPY " + strconv.FormatInt(n, 10))})
	return nil
}

// appendLine formats one row (nil = NULL when nulls) as a line of the COPY format.
func (cp *copyOut) appendLine(dst []byte, vals [][]byte, nulls bool) []byte {
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, cp.delim)
		}
		switch {
		case v == nil && nulls:
			dst = append(dst, cp.null...)
		case cp.csv:
			dst = cp.appendCSV(dst, v)
		default:
			dst = cp.appendText(dst, v)
		}
	}
	return append(dst, '\n')
}

// appendCSV quotes a value that holds the delimiter, the quote, a line break or a
// leading/trailing space, or that reads as the NULL string (an empty string is "").
func (cp *copyOut) appendCSV(dst, v []byte) []byte {
	if !bytes.ContainsAny(v, string([]byte{cp.delim, cp.quote, '\n', '\r'})) && string(v) != cp.null &&
		(len(v) == 0 || (v[0] != ' ' && v[len(v)-1] != ' ')) {
		return append(dst, v...)
	}
	dst = append(dst, cp.quote)
	for _, b := range v {
		if b == cp.quote {
			dst = append(dst, cp.quote)
		}
		dst = append(dst, b)
	}
	return append(dst, cp.quote)
}

// appendText escapes backslash, the delimiter and control characters as PostgreSQL's
// text format does.
func (cp *copyOut) appendText(dst, v []byte) []byte {
	for _, b := range v {
		switch b {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			if b == cp.delim {
				dst = append(dst, '\\')
			}
			dst = append(dst, b)
		}
	}
	return dst
}

// closingParen is the index of the parenthesis closing s[0] ('('), skipping quoted
// strings and identifiers; -1 if there is none.
func closingParen(s string) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'', '"':
			q := s[i]
			for i++; i < len(s) && s[i] != q; i++ {
			}
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// tokenize splits COPY's tail into words, quoted strings (kept with their quotes) and
// the punctuation ( ) , as tokens of their own.
func tokenize(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		switch b := s[i]; {
		case isSpace(b) || b == ';':
			i++
		case b == '(' || b == ')' || b == ',':
			out = append(out, s[i:i+1])
			i++
		case b == '\'' || b == '"':
			j := i + 1
			for j < len(s) && !(s[j] == b && (j+1 >= len(s) || s[j+1] != b)) {
				if s[j] == b { // a doubled quote
					j++
				}
				j++
			}
			out = append(out, s[i:min(j+1, len(s))])
			i = j + 1
		default:
			j := i
			for j < len(s) && !isSpace(s[j]) && !strings.ContainsRune("(),;", rune(s[j])) {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out
}

// unquote strips a single-quoted string's quotes (and undoubles its inner quotes); E'…'
// escapes are not interpreted.
func unquote(tok string) string {
	tok = strings.TrimPrefix(strings.TrimPrefix(tok, "E"), "e")
	if len(tok) >= 2 && tok[0] == '\'' && tok[len(tok)-1] == '\'' {
		return strings.ReplaceAll(tok[1:len(tok)-1], "''", "'")
	}
	return tok
}
