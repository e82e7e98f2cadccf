package pgwire

import (
	"reflect"
	"testing"
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
