package pgwire

import (
	"context"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestSelectList(t *testing.T) {
	items, from := selectList(`SELECT n.nspname as "Schema",
  c.relname as "Name",
  CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' END as "Type",
  pg_catalog.pg_get_userbyid(c.relowner) as "Owner"
FROM pg_catalog.pg_class c
     LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r','p','')
ORDER BY 1,2;`)
	var names []string
	for _, it := range items {
		names = append(names, it.name)
	}
	if !reflect.DeepEqual(names, []string{"Schema", "Name", "Type", "Owner"}) {
		t.Fatalf("names %q", names)
	}
	if !onlyClassJoins(from) {
		t.Fatalf("from %q", from)
	}
	row := map[string]string{"nspname": "main", "relname": "t", "type": "table", "owner": "tagpipe"}
	rs := evalRows(items, []map[string]string{row})
	if !reflect.DeepEqual(rs.rows[0], []any{"main", "t", "table", "tagpipe"}) {
		t.Fatalf("row %v", rs.rows[0])
	}
}

// FuzzCatalogParsing: the select-list parser and the session-statement classifier never
// panic on any text a client sends.
func FuzzCatalogParsing(f *testing.F) {
	for _, s := range []string{"SELECT a, (b, c) AS \"x\" FROM pg_catalog.pg_class c WHERE c.oid = '1'", "SELECT", "select 'unterminated",
		"SET application_name = 'x'", "SHOW server_version", "RESET ALL", "SELECT (((", "SELECT a FROM"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		items, _ := selectList(q)
		_ = evalRows(items, []map[string]string{{"relname": "t"}})
		_ = classify(q)
	})
}

func TestCatalogQueriesOverExtendedProtocol(t *testing.T) {
	f := start(t, nil)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.url("", "sslmode=disable"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// PostgreSQL-only syntax DuckDB cannot prepare, with a parameter, as BI tools send it.
	var name, schema string
	err = conn.QueryRow(ctx, `SELECT c.relname, n.nspname FROM pg_catalog.pg_class c
		LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname OPERATOR(pg_catalog.~) $1 AND c.relkind IN ('r','v')`, "^(ads_user_interest_tags)$").Scan(&name, &schema)
	if err != nil || name != "ads_user_interest_tags" || schema != "main" {
		t.Fatalf("%q %q %v", name, schema, err)
	}
	// Plain pg_catalog queries run on DuckDB's emulation, parameters included.
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1", "main").Scan(&n); err != nil || n != 1 {
		t.Fatalf("pg_namespace: %d %v", n, err)
	}
}
