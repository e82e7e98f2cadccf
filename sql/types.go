package sql

import (
	"fmt"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// typeNames are DuckDB's own spellings, as result columns report them.
var typeNames = map[duckdb.Type]string{
	duckdb.TYPE_BOOLEAN: "BOOLEAN", duckdb.TYPE_TINYINT: "TINYINT", duckdb.TYPE_SMALLINT: "SMALLINT",
	duckdb.TYPE_INTEGER: "INTEGER", duckdb.TYPE_BIGINT: "BIGINT", duckdb.TYPE_UTINYINT: "UTINYINT",
	duckdb.TYPE_USMALLINT: "USMALLINT", duckdb.TYPE_UINTEGER: "UINTEGER", duckdb.TYPE_UBIGINT: "UBIGINT",
	duckdb.TYPE_FLOAT: "FLOAT", duckdb.TYPE_DOUBLE: "DOUBLE", duckdb.TYPE_TIMESTAMP: "TIMESTAMP",
	duckdb.TYPE_DATE: "DATE", duckdb.TYPE_TIME: "TIME", duckdb.TYPE_INTERVAL: "INTERVAL",
	duckdb.TYPE_HUGEINT: "HUGEINT", duckdb.TYPE_UHUGEINT: "UHUGEINT", duckdb.TYPE_VARCHAR: "VARCHAR",
	duckdb.TYPE_BLOB: "BLOB", duckdb.TYPE_DECIMAL: "DECIMAL", duckdb.TYPE_TIMESTAMP_S: "TIMESTAMP_S",
	duckdb.TYPE_TIMESTAMP_MS: "TIMESTAMP_MS", duckdb.TYPE_TIMESTAMP_NS: "TIMESTAMP_NS",
	duckdb.TYPE_ENUM: "ENUM", duckdb.TYPE_LIST: "LIST", duckdb.TYPE_STRUCT: "STRUCT", duckdb.TYPE_MAP: "MAP",
	duckdb.TYPE_ARRAY: "ARRAY", duckdb.TYPE_UUID: "UUID", duckdb.TYPE_UNION: "UNION", duckdb.TYPE_BIT: "BIT",
	duckdb.TYPE_TIME_TZ: "TIMETZ", duckdb.TYPE_TIMESTAMP_TZ: "TIMESTAMPTZ", duckdb.TYPE_SQLNULL: "NULL",
}

// typeInfoName spells a full type the way result columns do ("DECIMAL(18,3)", "INTEGER[]").
func typeInfoName(info duckdb.TypeInfo) string {
	if info.Alias() != "" {
		return strings.ToUpper(info.Alias())
	}
	switch d := info.Details().(type) {
	case *duckdb.DecimalDetails:
		return fmt.Sprintf("DECIMAL(%d,%d)", d.Width, d.Scale)
	case *duckdb.ListDetails:
		return typeInfoName(d.Child) + "[]"
	case *duckdb.ArrayDetails:
		return fmt.Sprintf("%s[%d]", typeInfoName(d.Child), d.Size)
	case *duckdb.MapDetails:
		return fmt.Sprintf("MAP(%s, %s)", typeInfoName(d.Key), typeInfoName(d.Value))
	case *duckdb.StructDetails:
		parts := make([]string, len(d.Entries))
		for i, e := range d.Entries {
			parts[i] = QuoteIdentIfNeeded(e.Name()) + " " + typeInfoName(e.Info())
		}
		return "STRUCT(" + strings.Join(parts, ", ") + ")"
	}
	return typeName(info.InternalType())
}

// QuoteIdentIfNeeded quotes an identifier unless it is a plain lower-case word.
func QuoteIdentIfNeeded(s string) string {
	if s == "" {
		return `""`
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return QuoteIdent(s)
		}
	}
	return s
}

// BaseType is a type name without its parameters: "DECIMAL(18,3)" → "DECIMAL"; lists,
// arrays, structs and maps → "LIST", "ARRAY", "STRUCT", "MAP".
func BaseType(t string) string {
	switch {
	case strings.HasSuffix(t, "[]"):
		return "LIST"
	case strings.HasSuffix(t, "]"):
		return "ARRAY"
	}
	if i := strings.IndexByte(t, '('); i > 0 {
		return t[:i]
	}
	return t
}
