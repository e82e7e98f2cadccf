package pgwire

import (
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// psql's \dt, \d and \d NAME read pg_catalog tables with PostgreSQL-only syntax
// (OPERATOR(pg_catalog.~), COLLATE pg_catalog.default, ::regclass) and expect warehouse
// tables — which are DuckDB views — to be tables (relkind 'r'). Those queries are
// recognised here and answered from DuckDB's catalog (duckdb_tables, duckdb_views,
// duckdb_columns): the select list is evaluated item by item, so the answer has exactly
// the columns the asking psql version expects. Other pg_catalog queries run on DuckDB's
// own pg_catalog emulation; where that fails they answer no rows (psql's footers for
// indexes, constraints, policies … loop over rows, and there are none).

// resultSet is an answer computed here rather than by the engine; values are strings
// (PostgreSQL's text form: "t"/"f" for booleans) or nil.
type resultSet struct {
	cols []tsql.Column
	rows [][]any
	tag  string
}

func (c *conn) sendResultSet(rs *resultSet, formats []int16, describe bool) error {
	if describe {
		c.be.Send(c.rowDescription(rs.cols, formats))
	}
	enc := c.encoders(rs.cols, formats)
	for _, r := range rs.rows {
		vals, err := encodeRow(enc, r)
		if err != nil {
			return err
		}
		c.be.Send(&pgproto3.DataRow{Values: vals})
	}
	tag := rs.tag
	if tag == "" {
		tag = "SELECT " + strconv.Itoa(len(rs.rows))
	}
	c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	return nil
}

// encodeRow encodes one computed row's values for a DataRow (nil stays NULL).
func encodeRow(enc []encoder, r []any) ([][]byte, error) {
	vals := make([][]byte, len(r))
	for i, v := range r {
		if v == nil {
			continue
		}
		b, err := enc[i](v, make([]byte, 0, 16))
		if err != nil {
			return nil, err
		}
		vals[i] = b
	}
	return vals, nil
}

// collectResultSet encodes a computed answer's rows for a suspended portal.
func (c *conn) collectResultSet(rs *resultSet, formats []int16, collect func([][]byte) error) error {
	enc := c.encoders(rs.cols, formats)
	for _, r := range rs.rows {
		vals, err := encodeRow(enc, r)
		if err != nil {
			return err
		}
		if err := collect(vals); err != nil {
			return err
		}
	}
	return nil
}

// relation is one table or view as pg_class shows it.
type relation struct {
	oid    string
	schema string
	name   string
}

type column struct {
	name     string
	duckType string
	nullable bool
}

var (
	oidLiteralRE = regexp.MustCompile(`(?i)\b(?:c\.oid|a\.attrelid)\s*=\s*'(\d+)'`)
	anyOidRE     = regexp.MustCompile(`'\d+'`)
	relnameRE    = regexp.MustCompile(`(?i)\bc\.relname\s+(?:OPERATOR\(pg_catalog\.~\)|~)\s+(?:'((?:[^']|'')*)'|\$(\d+))`)
	nspnameRE    = regexp.MustCompile(`(?i)\bn\.nspname\s+(?:OPERATOR\(pg_catalog\.~\)|~)\s+(?:'((?:[^']|'')*)'|\$(\d+))`)
	relkindRE    = regexp.MustCompile(`(?i)\bc\.relkind\s+IN\s*\(([^)]*)\)`)
	fromTablesRE = regexp.MustCompile(`(?i)pg_catalog\.(pg_\w+)`)
)

// isCatalog reports a query about pg_catalog (answered by catalog).
func isCatalog(query string) bool {
	lq := strings.ToLower(query)
	return strings.Contains(lq, "pg_catalog.") || strings.Contains(lq, "pg_class") || strings.Contains(lq, "pg_attribute")
}

var paramRE = regexp.MustCompile(`\$(\d+)`)

// catalogStatement describes a catalog query DuckDB cannot prepare (PostgreSQL-only
// syntax) for the extended protocol: its select list as text columns and its $n
// parameters as text.
func catalogStatement(query string) ([]tsql.Column, []string, bool) {
	items, _ := selectList(query)
	if items == nil || !isCatalog(query) {
		return nil, nil, false
	}
	cols := make([]tsql.Column, len(items))
	for i, it := range items {
		cols[i] = tsql.Column{Name: it.name, Type: "VARCHAR"}
	}
	n := 0
	for _, m := range paramRE.FindAllStringSubmatch(query, -1) {
		if k, err := strconv.Atoi(m[1]); err == nil && k > n {
			n = k
		}
	}
	return cols, make([]string, n), true
}

// catalog answers a psql catalog query; ok=false means the query is not one.
func (c *conn) catalog(query string, args []any) (*resultSet, bool) {
	if !isCatalog(query) {
		return nil, false
	}
	lq := strings.ToLower(query)
	items, from := selectList(query)
	if items == nil {
		return nil, false
	}
	lfrom := strings.ToLower(from)
	oid := ""
	if m := oidLiteralRE.FindStringSubmatch(query); m != nil {
		oid = m[1]
	}
	switch {
	case strings.Contains(lfrom, "pg_catalog.pg_attribute a") && oid != "":
		rel, ok := c.relationByOID(oid)
		if !ok {
			return evalRows(items, nil), true
		}
		var rows []map[string]string
		for i, col := range c.columns(rel) {
			rows = append(rows, map[string]string{"attname": col.name, "type": pgTypeName(col.duckType),
				"attnum": strconv.Itoa(i + 1), "attnotnull": boolText(!col.nullable)})
		}
		return evalRows(items, rows), true
	case strings.Contains(lq, "c.relchecks") && oid != "":
		rel, ok := c.relationByOID(oid)
		if !ok {
			return evalRows(items, nil), true
		}
		return evalRows(items, []map[string]string{relRow(rel, c.srv.opts.User)}), true
	case strings.HasPrefix(strings.TrimSpace(lfrom), "pg_catalog.pg_class c") && onlyClassJoins(lfrom) && oid == "":
		var kinds string
		if m := relkindRE.FindStringSubmatch(query); m != nil {
			kinds = m[1]
		}
		if kinds != "" && !strings.Contains(kinds, "'r'") {
			return evalRows(items, nil), true // \dv, \di, \ds …: everything here is a table
		}
		nameRE, schemaRE := patternOf(relnameRE, query, args), patternOf(nspnameRE, query, args)
		var rows []map[string]string
		for _, rel := range c.relations() {
			if nameRE != nil && !nameRE.MatchString(rel.name) || schemaRE != nil && !schemaRE.MatchString(rel.schema) {
				continue
			}
			rows = append(rows, relRow(rel, c.srv.opts.User))
		}
		return evalRows(items, rows), true
	case strings.HasPrefix(strings.TrimSpace(lfrom), "pg_catalog.pg_database d"):
		db := c.database
		if db == "" {
			db = c.user
		}
		return evalRows(items, []map[string]string{{"datname": db, "owner": c.srv.opts.User}}), true
	case strings.HasPrefix(strings.TrimSpace(lfrom), "pg_catalog.pg_namespace n") && !strings.Contains(lfrom, ","):
		schemas := map[string]bool{}
		var rows []map[string]string
		nameRE := patternOf(nspnameRE, query, args)
		for _, r := range c.relations() {
			if !schemas[r.schema] && (nameRE == nil || nameRE.MatchString(r.schema)) {
				schemas[r.schema] = true
				rows = append(rows, map[string]string{"nspname": r.schema, "owner": c.srv.opts.User})
			}
		}
		if len(rows) == 0 && (nameRE == nil || nameRE.MatchString("main")) {
			rows = append(rows, map[string]string{"nspname": "main", "owner": c.srv.opts.User})
		}
		return evalRows(items, rows), true
	case anyOidRE.MatchString(query) && strings.Contains(lq, "pg_catalog."):
		// psql's footers about one table (indexes, constraints, policies, publications,
		// inheritance …): there are none.
		return evalRows(items, nil), true
	}
	// Anything else runs on DuckDB's pg_catalog emulation; a failure answers no rows.
	rs, err := c.collect(query, args)
	if err != nil {
		return evalRows(items, nil), true
	}
	return rs, true
}

func onlyClassJoins(from string) bool {
	for _, m := range fromTablesRE.FindAllStringSubmatch(from, -1) {
		switch m[1] {
		case "pg_class", "pg_namespace", "pg_am":
		default:
			return false
		}
	}
	return !strings.Contains(from, ",")
}

// patternOf compiles the regular expression a catalog query matches names with: a
// literal, or a $n parameter.
func patternOf(re *regexp.Regexp, q string, args []any) *regexp.Regexp {
	m := re.FindStringSubmatch(q)
	if m == nil {
		return nil
	}
	text := strings.ReplaceAll(m[1], "''", "'")
	if m[2] != "" {
		k, _ := strconv.Atoi(m[2])
		if k < 1 || k > len(args) {
			return regexp.MustCompile(`^$`)
		}
		text = fmt.Sprint(args[k-1])
	}
	p, err := regexp.Compile(text)
	if err != nil {
		return regexp.MustCompile(`^$`)
	}
	return p
}

func relRow(rel relation, owner string) map[string]string {
	return map[string]string{"oid": rel.oid, "relname": rel.name, "nspname": rel.schema, "owner": owner,
		"relkind": "r", "type": "table"}
}

func boolText(b bool) string {
	if b {
		return "t"
	}
	return "f"
}

// relations lists the user's tables and views (trusted catalog query, not a client's).
// The engine's in-memory copies (tsql.CacheDatabase) are left out: their views are listed.
func (c *conn) relations() []relation {
	return catalogRows(c, "relations", `
		SELECT table_oid::VARCHAR, schema_name, table_name FROM duckdb_tables() WHERE NOT internal AND NOT temporary AND database_name <> $1
		UNION ALL
		SELECT view_oid::VARCHAR, schema_name, view_name FROM duckdb_views() WHERE NOT internal AND NOT temporary
		ORDER BY 2, 3`, func(rows *sql.Rows, r *relation) error { return rows.Scan(&r.oid, &r.schema, &r.name) }, tsql.CacheDatabase)
}

// catalogRows runs a query over DuckDB's catalog and scans each row into a T; a query
// that fails is logged and lists nothing, a row that does not scan is skipped.
func catalogRows[T any](c *conn, what, query string, scan func(*sql.Rows, *T) error, args ...any) []T {
	rows, err := c.srv.engine.DB().QueryContext(c.ctx, query, args...)
	if err != nil {
		c.srv.log.Warn("cannot list "+what, "err", err)
		return nil
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err == nil {
			out = append(out, v)
		}
	}
	return out
}

func (c *conn) relationByOID(oid string) (relation, bool) {
	for _, r := range c.relations() {
		if r.oid == oid {
			return r, true
		}
	}
	return relation{}, false
}

func (c *conn) columns(rel relation) []column {
	return catalogRows(c, "columns", `SELECT column_name, data_type, is_nullable
		FROM duckdb_columns() WHERE schema_name = $1 AND table_name = $2 ORDER BY column_index`,
		func(rows *sql.Rows, col *column) error { return rows.Scan(&col.name, &col.duckType, &col.nullable) }, rel.schema, rel.name)
}

func pgTypeName(duck string) string {
	t := typeOf(duck)
	if t.oid == textType.oid && duck != "VARCHAR" && duck != "ENUM" {
		return strings.ToLower(duck) // DuckDB's own name for types PostgreSQL lacks
	}
	return t.name
}

// collect runs a (read-only checked) query on the engine into a resultSet.
func (c *conn) collect(query string, args []any) (*resultSet, error) {
	rs := &resultSet{}
	err := c.srv.engine.Query(c.ctx, query, args, func(res *tsql.Result) error {
		rs.cols = res.Columns
		for res.Next() {
			rs.rows = append(rs.rows, append([]any(nil), res.Values()...))
		}
		return nil
	})
	return rs, err
}

// selectItem is one expression of a select list and the name of its column.
type selectItem struct {
	expr string // lower case, spaces collapsed
	name string
}

// selectList splits the top-level select list of query and returns the FROM clause text
// (up to WHERE/ORDER/GROUP); nil when query is not a plain SELECT.
func selectList(query string) ([]selectItem, string) {
	q := strings.TrimSpace(query)
	if len(q) < 7 || !strings.EqualFold(q[:6], "select") {
		return nil, ""
	}
	body := q[6:]
	depth, start := 0, 0
	var parts []string
	from := ""
	for i := 0; i < len(body); i++ {
		ch := body[i]
		switch {
		case ch == '\'' || ch == '"':
			j := strings.IndexByte(body[i+1:], ch)
			if j < 0 {
				i = len(body)
			} else {
				i += j + 1
			}
			continue
		case ch == '(':
			depth++
		case ch == ')':
			depth--
		case ch == ',' && depth == 0:
			parts = append(parts, body[start:i])
			start = i + 1
		case depth == 0 && (ch == 'F' || ch == 'f') && i > 0 && isSpace(body[i-1]) && len(body) >= i+5 &&
			strings.EqualFold(body[i:i+4], "from") && isSpace(body[i+4]):
			parts = append(parts, body[start:i])
			from = body[i+4:]
			i = len(body)
			start = -1
		}
	}
	if start >= 0 {
		parts = append(parts, body[start:])
	}
	if loc := clauseEndRE.FindStringIndex(from); loc != nil {
		from = from[:loc[0]]
	}
	items := make([]selectItem, 0, len(parts))
	for _, p := range parts {
		items = append(items, parseItem(strings.TrimSpace(p)))
	}
	return items, from
}

func isSpace(b byte) bool { return b == ' ' || b == '\n' || b == '\t' || b == '\r' }

// clauseEndRE finds where a FROM clause ends.
var clauseEndRE = regexp.MustCompile(`(?is)(\s(where|order\s+by|group\s+by|limit|having|union)\s)|;`)

var aliasRE = regexp.MustCompile(`(?is)^(.*?)\s+as\s+("(?:[^"]|"")*"|[a-z_][a-z0-9_]*)$`)

func parseItem(p string) selectItem {
	expr, name := p, ""
	if m := aliasRE.FindStringSubmatch(p); m != nil {
		expr, name = m[1], strings.ReplaceAll(strings.Trim(m[2], `"`), `""`, `"`)
	}
	e := strings.ToLower(strings.Join(strings.Fields(expr), " "))
	if name == "" {
		name = e
		if i := strings.IndexByte(name, '('); i > 0 {
			name = name[:i]
		}
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		if strings.ContainsAny(name, " '()") || name == "" {
			name = "?column?"
		}
	}
	return selectItem{expr: e, name: name}
}

// itemValues maps select-list expressions psql uses to row fields (or constants); nil is
// NULL. Order matters: the first match wins.
var itemValues = []struct {
	match string
	field string // row field, or "=value" for a constant
}{
	{"case c.relkind", "type"},
	{"case c.relpersistence", "=permanent"},
	{"datlocprovider", "=libc"},
	{"datname", "datname"},
	{"pg_encoding_to_char", "=UTF8"},
	{"datcollate", "=C"},
	{"datctype", "=C"},
	{"daticulocale", "=NULL"},
	{"daticurules", "=NULL"},
	{"pg_get_userbyid", "owner"},
	{"format_type(", "type"},
	{"pg_get_expr(", "=NULL"},
	{"collname", "=NULL"},
	{"description(", "=NULL"},
	{"pg_size_pretty", "=0 bytes"},
	{"array_to_string", "="},
	{"c.reloftype", "="},
	{"c.relname", "relname"},
	{"n.nspname", "nspname"},
	{"c.oid", "oid"},
	{"c.relkind", "relkind"},
	{"c.relchecks", "=0"},
	{"c.reltablespace", "=0"},
	{"c.relpersistence", "=p"},
	{"c.relreplident", "=d"},
	{"c.relhas", "=f"},
	{"c.relrowsecurity", "=f"},
	{"c.relforcerowsecurity", "=f"},
	{"c.relispartition", "=f"},
	{"a.attname", "attname"},
	{"a.attnum", "attnum"},
	{"a.attnotnull", "attnotnull"},
	{"a.attidentity", "="},
	{"a.attgenerated", "="},
	{"a.attstorage", "=p"},
	{"a.attcompression", "="},
	{"attstattarget", "=-1"},
	{"am.amname", "=NULL"},
	{"false", "=f"},
	{"true", "=t"},
	{"''", "="},
}

func evalRows(items []selectItem, rows []map[string]string) *resultSet {
	rs := &resultSet{cols: make([]tsql.Column, len(items))}
	for i, it := range items {
		rs.cols[i] = tsql.Column{Name: it.name, Type: "VARCHAR"}
	}
	for _, row := range rows {
		vals := make([]any, len(items))
		for i, it := range items {
			vals[i] = evalItem(it.expr, row)
		}
		rs.rows = append(rs.rows, vals)
	}
	return rs
}

func evalItem(expr string, row map[string]string) any {
	for _, iv := range itemValues {
		if !strings.Contains(expr, iv.match) {
			continue
		}
		if strings.HasPrefix(iv.field, "=") {
			if iv.field == "=NULL" {
				return nil
			}
			return iv.field[1:]
		}
		if v, ok := row[iv.field]; ok {
			return v
		}
		return nil
	}
	if strings.HasPrefix(expr, "'") && strings.HasSuffix(expr, "'") {
		return strings.Trim(expr, "'")
	}
	return nil
}
