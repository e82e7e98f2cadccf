package duckbridge

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/tagpipe/tagpipe/warehouse"
)

// Execer is what Register needs: *sql.DB, *sql.Conn and *sql.Tx all fit. Views are
// catalog objects, so registering on one connection of a *sql.DB shows them to all
// of its connections.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Register creates or replaces one view per table, named like the table, over
// the table's current snapshot. It returns the view names. Call it again after
// commits to move the views forward.
func Register(ctx context.Context, db Execer, w *warehouse.Warehouse) ([]string, error) {
	tables, err := w.Tables()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(tables))
	for _, t := range tables {
		s, err := t.Current()
		if err != nil {
			return names, err
		}
		if err := RegisterSnapshot(ctx, db, s, t.Name()); err != nil {
			return names, err
		}
		names = append(names, t.Name())
	}
	return names, nil
}

// RegisterAsOf creates or replaces a view named view over table as it was at ts
// (time travel).
func RegisterAsOf(ctx context.Context, db Execer, w *warehouse.Warehouse, table string, ts time.Time, view string) (*warehouse.Snapshot, error) {
	t, err := w.Table(table)
	if err != nil {
		return nil, err
	}
	s, err := t.AsOf(ts)
	if err != nil {
		return nil, err
	}
	return s, RegisterSnapshot(ctx, db, s, view)
}

// RegisterSnapshot creates or replaces a view named view over exactly snapshot s
// (e.g. `ods_events_v42` for t.Snapshot(42)).
func RegisterSnapshot(ctx context.Context, db Execer, s *warehouse.Snapshot, view string) error {
	q := "CREATE OR REPLACE VIEW " + Ident(view) + " AS " + SelectSQL(s)
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("cannot create view %s for %s snapshot %d: %w", view, s.Table().Name(), s.ID, err)
	}
	return nil
}

// SelectSQL is a SELECT that returns snapshot s's rows with the table's columns in
// schema order: partition keys from the Hive directories (typed as in the schema),
// nulls for columns no file stores yet.
func SelectSQL(s *warehouse.Snapshot) string {
	var cols []string
	if len(s.Files) == 0 {
		for _, f := range s.Schema.Fields() {
			cols = append(cols, "CAST(NULL AS "+SQLType(f.Type)+") AS "+Ident(f.Name))
		}
		return "SELECT " + strings.Join(cols, ", ") + " WHERE false"
	}
	isKey := map[string]bool{}
	for _, k := range s.PartitionKeys {
		isKey[k] = true
	}
	// A column is absent from the union only if every file lacks it.
	absent := map[string]int{}
	for _, f := range s.Files {
		for _, m := range f.Missing {
			absent[m]++
		}
	}
	for _, f := range s.Schema.Fields() {
		if !isKey[f.Name] && absent[f.Name] == len(s.Files) {
			cols = append(cols, "CAST(NULL AS "+SQLType(f.Type)+") AS "+Ident(f.Name))
			continue
		}
		cols = append(cols, Ident(f.Name))
	}
	files := make([]string, len(s.Files))
	for i, f := range s.Files {
		files[i] = Literal(s.AbsPath(f))
	}
	args := []string{"[" + strings.Join(files, ", ") + "]"}
	if len(s.PartitionKeys) > 0 {
		var types []string
		for _, k := range s.PartitionKeys {
			f, _ := s.Schema.FieldsByName(k)
			types = append(types, Literal(k)+": "+Literal(SQLType(f[0].Type)))
		}
		args = append(args, "hive_partitioning = true", "hive_types = {"+strings.Join(types, ", ")+"}")
	} else {
		args = append(args, "hive_partitioning = false")
	}
	// DuckDB matches columns by name across files; union_by_name (which reads every
	// footer when the query binds) is needed only when some file lacks columns.
	if len(absent) > 0 {
		args = append(args, "union_by_name = true")
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM read_parquet(" + strings.Join(args, ", ") + ")"
}

// SQLType is the DuckDB type of an Arrow type the warehouse supports.
func SQLType(dt arrow.DataType) string {
	switch t := dt.(type) {
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return "TIMESTAMPTZ"
		}
		switch t.Unit {
		case arrow.Second:
			return "TIMESTAMP_S"
		case arrow.Millisecond:
			return "TIMESTAMP_MS"
		case arrow.Nanosecond:
			return "TIMESTAMP_NS"
		}
		return "TIMESTAMP"
	case *arrow.MapType:
		return "MAP(" + SQLType(t.KeyType()) + ", " + SQLType(t.ItemType()) + ")"
	case *arrow.ListType:
		return SQLType(t.Elem()) + "[]"
	case *arrow.StructType:
		var fs []string
		for _, f := range t.Fields() {
			fs = append(fs, Ident(f.Name)+" "+SQLType(f.Type))
		}
		return "STRUCT(" + strings.Join(fs, ", ") + ")"
	}
	switch dt.ID() {
	case arrow.STRING:
		return "VARCHAR"
	case arrow.BINARY:
		return "BLOB"
	case arrow.BOOL:
		return "BOOLEAN"
	case arrow.INT8:
		return "TINYINT"
	case arrow.INT16:
		return "SMALLINT"
	case arrow.INT32:
		return "INTEGER"
	case arrow.INT64:
		return "BIGINT"
	case arrow.UINT8:
		return "UTINYINT"
	case arrow.UINT16:
		return "USMALLINT"
	case arrow.UINT32:
		return "UINTEGER"
	case arrow.UINT64:
		return "UBIGINT"
	case arrow.FLOAT32:
		return "FLOAT"
	case arrow.FLOAT64:
		return "DOUBLE"
	case arrow.DATE32:
		return "DATE"
	}
	panic("BUG: duckbridge.SQLType of unsupported type " + dt.String())
}

// CopyOptions are the options of a DuckDB `COPY … TO … (FORMAT parquet …)` that writes
// files for w, so they carry the codec the warehouse writes its own with
// (warehouse.compression: DuckDB takes the same names, "uncompressed" for none, and a
// level for zstd only).
func CopyOptions(w *warehouse.Warehouse) string {
	codec, level := w.Compression()
	switch codec {
	case "none":
		codec = "uncompressed"
	case "zstd":
		return fmt.Sprintf("FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL %d", level)
	}
	return "FORMAT parquet, COMPRESSION " + codec
}

// Ident quotes a SQL identifier.
func Ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Literal quotes a SQL string literal.
func Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
