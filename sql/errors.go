package sql

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// ErrorKind sorts query errors for the endpoints (HTTP status, SQLSTATE).
type ErrorKind int

const (
	// KindInvalid is bad SQL: syntax, unknown table or column, wrong types.
	KindInvalid ErrorKind = iota + 1
	// KindRefused is a statement a read-only session may not run, or a file it may not read.
	KindRefused
	// KindTimeout is a query that ran past the query timeout.
	KindTimeout
	// KindCanceled is a query whose caller went away.
	KindCanceled
	// KindExecution is a failure while running (out of memory, conversion, I/O).
	KindExecution
)

func (k ErrorKind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindRefused:
		return "refused"
	case KindTimeout:
		return "timeout"
	case KindCanceled:
		return "canceled"
	case KindExecution:
		return "execution"
	}
	return "unknown"
}

// Error is a failed query, with the position of the fault in the query text when DuckDB
// reports one.
type Error struct {
	Kind ErrorKind
	// Type is DuckDB's error class ("Parser Error", "Catalog Error", …) when known.
	Type string
	// Message is the error without DuckDB's "LINE n:" excerpt.
	Message string
	// Position is the 1-based character offset of the fault in the query; 0 = unknown.
	Position int
	// Hint says what to do about it, when there is something to say (PostgreSQL's HINT).
	Hint string
	Err  error
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Position > 0 {
		msg = fmt.Sprintf("%s (at character %d)", e.Message, e.Position)
	}
	if e.Hint != "" {
		msg += "\n" + e.Hint
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// refused builds a KindRefused error.
func refused(format string, args ...any) *Error {
	return &Error{Kind: KindRefused, Type: "Permission Error", Message: fmt.Sprintf(format, args...)}
}

var lineRE = regexp.MustCompile(`\n\s*LINE (\d+): ([^\n]*)\n( *)\^\s*$`)

// classify turns a driver error into an *Error, taking the position out of DuckDB's
// "LINE n: …" excerpt.
func classify(ctx context.Context, query string, err error, timeout time.Duration) *Error {
	var qe *Error
	if errors.As(err, &qe) {
		return qe
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "INTERRUPT Error") || strings.Contains(err.Error(), "Interrupted") {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
			msg := "query timed out"
			if timeout > 0 {
				msg = fmt.Sprintf("query timed out after %s (sql.query_timeout)", timeout)
			}
			return &Error{Kind: KindTimeout, Message: msg, Err: err}
		}
		return &Error{Kind: KindCanceled, Message: "query canceled", Err: err}
	}
	out := &Error{Kind: KindExecution, Message: err.Error(), Err: err}
	var de *duckdb.Error
	if errors.As(err, &de) {
		switch de.Type {
		case duckdb.ErrorTypeParser, duckdb.ErrorTypeCatalog, duckdb.ErrorTypeBinder, duckdb.ErrorTypeSyntax,
			duckdb.ErrorTypeInvalidType, duckdb.ErrorTypeMismatchType, duckdb.ErrorTypeParameterNotResolved,
			duckdb.ErrorTypeParameterNotAllowed, duckdb.ErrorTypeNotImplemented, duckdb.ErrorTypeInvalidInput:
			out.Kind = KindInvalid
		case duckdb.ErrorTypePermission:
			out.Kind = KindRefused
		}
		out.Message = de.Msg
	}
	if i := strings.Index(out.Message, ": "); i > 0 && strings.HasSuffix(out.Message[:i], "Error") {
		out.Type = out.Message[:i]
	}
	if m := lineRE.FindStringSubmatchIndex(out.Message); m != nil {
		lineNo, _ := strconv.Atoi(out.Message[m[2]:m[3]])
		excerpt := out.Message[m[4]:m[5]]
		caret := m[7] - m[6] - len("LINE : ") - (m[3] - m[2])
		out.Position = position(query, lineNo, excerpt, caret)
		out.Message = strings.TrimRight(out.Message[:m[0]], "\n ")
	}
	return out
}

// classify is the package's classify plus what the engine knows: an unknown table's
// message names how to list the tables (and, with AsOf, that only the tables that
// existed then are there) instead of DuckDB's guess among its own catalog views.
func (e *Engine) classify(ctx context.Context, query string, err error, timeout time.Duration) *Error {
	out := classify(ctx, query, err, timeout)
	if msg, hint, ok := unknownTableHint(out.Message, e.opts.AsOf); ok && out.Hint == "" {
		out.Message, out.Hint = msg, hint
	}
	return out
}

var unknownTableRE = regexp.MustCompile(`^(Catalog Error: Table with name .+? does not exist!)(?:\nDid you mean "([^"\n]+)"\?)?$`)

// unknownTableHint rewrites DuckDB's unknown-table message (ok false for any other):
// its "Did you mean" is kept when it names a table of the session, dropped when it names
// one of DuckDB's own catalog views (pg_sequences, duckdb_indexes, …: never what a
// warehouse user meant), and the hint points at SHOW TABLES.
func unknownTableHint(msg, asOf string) (newMsg, hint string, ok bool) {
	m := unknownTableRE.FindStringSubmatch(msg)
	if m == nil {
		return msg, "", false
	}
	newMsg = m[1]
	if s := m[2]; s != "" && !systemView(s) {
		newMsg += "\nDid you mean \"" + s + "\"?"
	}
	if asOf != "" {
		return newMsg, "As of " + asOf + " there are only the tables that existed then; SHOW TABLES lists them.", true
	}
	return newMsg, "SHOW TABLES lists the tables.", true
}

// systemView reports whether name is one of DuckDB's catalog views or functions.
func systemView(name string) bool {
	name = strings.ToLower(name)
	if i := strings.LastIndexByte(name, '.'); i >= 0 && systemView(name[:i]) {
		return true
	}
	for _, p := range []string{"pg_", "duckdb_", "sqlite_", "pragma_", "information_schema"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// position maps DuckDB's excerpt of line lineNo, with the caret under byte caret of the
// excerpt, to a 1-based character offset in query; 0 when it cannot.
func position(query string, lineNo int, excerpt string, caret int) int {
	lines := strings.SplitAfter(query, "\n")
	if lineNo < 1 || lineNo > len(lines) || caret < 0 {
		return 0
	}
	start := 0
	for _, l := range lines[:lineNo-1] {
		start += len(l)
	}
	line := lines[lineNo-1]
	// Long lines are shown as "...middle...": find the shown part in the line.
	skip := 0
	if strings.HasPrefix(excerpt, "...") {
		excerpt, skip = excerpt[3:], 3
	}
	shown := strings.TrimSuffix(excerpt, "...")
	at := indexAtRuneStart(line, shown)
	if at < 0 || caret < skip {
		return 0
	}
	// DuckDB pads the caret line by characters, not bytes.
	k := 0
	for n := caret - skip; n > 0 && k < len(shown); n-- {
		_, size := utf8.DecodeRuneInString(shown[k:])
		k += size
	}
	off := start + at + k
	if off > len(query) {
		return 0
	}
	// An excerpt cut inside a character ends inside one of the query's characters too:
	// count up to that character's start, or the cut rune's bytes would count as
	// characters of their own.
	for off > 0 && off < len(query) && !utf8.RuneStart(query[off]) {
		off--
	}
	return utf8.RuneCountInString(query[:off]) + 1
}

// indexAtRuneStart is strings.Index(s, sub) restricted to matches that begin a character
// of s: an excerpt starting with a continuation byte must not match the middle of one.
func indexAtRuneStart(s, sub string) int {
	for from := 0; from <= len(s); {
		i := strings.Index(s[from:], sub)
		if i < 0 {
			return -1
		}
		if at := from + i; at == len(s) || utf8.RuneStart(s[at]) {
			return at
		}
		from += i + 1
	}
	return -1
}
