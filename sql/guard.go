package sql

import (
	"regexp"
	"strings"
	"sync"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Read-only sessions run only statements that read: SELECT and everything DuckDB turns
// into one (FROM t, VALUES, WITH, SUMMARIZE, DESCRIBE, SHOW, PRAGMA show_tables) and
// EXPLAIN of those. COPY, ATTACH, INSTALL/LOAD, SET, CALL, CREATE, INSERT … are refused by
// their prepared statement type, which DuckDB's own parser decides — no text matching
// that a comment or odd spacing could fool. File access outside the warehouse is refused
// by DuckDB itself (allowed_directories + enable_external_access=false, then
// lock_configuration so no statement can undo it).

var explainRE = regexp.MustCompile(`(?is)^\s*explain\s+(analyze\s+)?(.*)$`)

var stmtNames = map[duckdb.StmtType]string{
	duckdb.STATEMENT_TYPE_INSERT:       "INSERT",
	duckdb.STATEMENT_TYPE_UPDATE:       "UPDATE",
	duckdb.STATEMENT_TYPE_DELETE:       "DELETE",
	duckdb.STATEMENT_TYPE_PREPARE:      "PREPARE",
	duckdb.STATEMENT_TYPE_CREATE:       "CREATE",
	duckdb.STATEMENT_TYPE_EXECUTE:      "EXECUTE",
	duckdb.STATEMENT_TYPE_ALTER:        "ALTER",
	duckdb.STATEMENT_TYPE_TRANSACTION:  "a transaction statement",
	duckdb.STATEMENT_TYPE_COPY:         "COPY",
	duckdb.STATEMENT_TYPE_ANALYZE:      "ANALYZE",
	duckdb.STATEMENT_TYPE_VARIABLE_SET: "SET VARIABLE",
	duckdb.STATEMENT_TYPE_CREATE_FUNC:  "CREATE FUNCTION",
	duckdb.STATEMENT_TYPE_DROP:         "DROP",
	duckdb.STATEMENT_TYPE_EXPORT:       "EXPORT",
	duckdb.STATEMENT_TYPE_PRAGMA:       "PRAGMA",
	duckdb.STATEMENT_TYPE_VACUUM:       "VACUUM",
	duckdb.STATEMENT_TYPE_CALL:         "CALL",
	duckdb.STATEMENT_TYPE_SET:          "SET",
	duckdb.STATEMENT_TYPE_LOAD:         "INSTALL/LOAD",
	duckdb.STATEMENT_TYPE_EXTENSION:    "an extension statement",
	duckdb.STATEMENT_TYPE_ATTACH:       "ATTACH",
	duckdb.STATEMENT_TYPE_DETACH:       "DETACH",
	duckdb.STATEMENT_TYPE_MULTI:        "a multi-statement",
}

// checkReadOnly prepares query (exactly one statement; preparing never executes) and
// refuses it unless it only reads. EXPLAIN is judged by the statement it explains.
func checkReadOnly(c *duckdb.Conn, query string) error {
	t, nStmts, err := statementType(c, query)
	if err != nil {
		return err
	}
	if nStmts != 1 {
		return refused("remote queries run one statement at a time, got %d (PIVOT with a computed column list also counts as several; name the columns with IN (…))", nStmts)
	}
	switch t {
	case duckdb.STATEMENT_TYPE_SELECT:
		return nil
	case duckdb.STATEMENT_TYPE_EXPLAIN:
		m := explainRE.FindStringSubmatch(query)
		if m == nil {
			return refused("EXPLAIN is allowed only in the form EXPLAIN [ANALYZE] SELECT …")
		}
		inner, _, err := statementType(c, m[2])
		if err != nil {
			return err
		}
		if inner != duckdb.STATEMENT_TYPE_SELECT {
			return refused("EXPLAIN of %s is not allowed: remote queries are read-only", stmtName(inner))
		}
		return nil
	}
	return refused("%s is not allowed: remote queries are read-only (SELECT only)", stmtName(t))
}

func stmtName(t duckdb.StmtType) string {
	if n, ok := stmtNames[t]; ok {
		return n
	}
	return "this statement"
}

// statementType prepares a single statement and says what it is; for several statements
// it returns their count and prepares none (preparing a later statement would need the
// earlier ones executed).
func statementType(c *duckdb.Conn, query string) (duckdb.StmtType, int, error) {
	if strings.TrimSpace(strings.Trim(strings.TrimSpace(query), ";")) == "" {
		return 0, 0, &Error{Kind: KindInvalid, Message: "empty query"}
	}
	st, err := c.Prepare(query)
	if err != nil {
		if strings.Contains(err.Error(), "multi-statement") {
			return duckdb.STATEMENT_TYPE_MULTI, countStatements(query), nil
		}
		return 0, 0, err
	}
	defer st.Close()
	t, err := st.(*duckdb.Stmt).StatementType()
	return t, 1, err
}

// countStatements is only for the error message; DuckDB's parser decided there are
// several.
func countStatements(query string) int {
	n := 0
	for _, s := range strings.Split(query, ";") {
		if strings.TrimSpace(s) != "" {
			n++
		}
	}
	if n < 2 {
		n = 2
	}
	return n
}

// readOnlyCache remembers query texts that passed checkReadOnly, so a repeated query (a
// dashboard, a prepared statement run many times) is prepared once rather than twice.
// A statement's type depends only on its text, never on the catalog, so entries stay
// valid across view refreshes. Bounded: it is emptied when it grows past maxChecked.
type readOnlyCache struct {
	mu sync.Mutex
	ok map[string]struct{}
}

const maxChecked = 4096

func (c *readOnlyCache) has(q string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.ok[q]
	return ok
}

func (c *readOnlyCache) add(q string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok == nil || len(c.ok) >= maxChecked {
		c.ok = make(map[string]struct{})
	}
	c.ok[q] = struct{}{}
}
