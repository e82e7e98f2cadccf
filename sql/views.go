package sql

import (
	"context"
	dbsql "database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DirViews is the RegisterFunc for a directory of Hive-partitioned Parquet tables without
// a snapshot manifest: every directory that holds .parquet files (directly or below
// key=value partition folders) becomes a view named after it. Folders starting with "_"
// or "." (staging, manifests) are skipped. It cannot select a snapshot.
func DirViews(dir string) RegisterFunc {
	return func(ctx context.Context, conn *dbsql.Conn, asOf string) error {
		if asOf != "" {
			return fmt.Errorf("snapshot %q: the directory %s has no snapshots", asOf, dir)
		}
		tables, err := scanTables(dir)
		if err != nil {
			return err
		}
		for _, name := range sortedKeys(tables) {
			q := fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT * FROM read_parquet(%s, hive_partitioning=true, union_by_name=true)",
				QuoteIdent(name), quote(filepath.Join(tables[name], "**", "*.parquet")))
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("cannot create view %q: %w", name, err)
			}
		}
		return nil
	}
}

func scanTables(dir string) (map[string]string, error) {
	tables := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == dir {
				return filepath.SkipAll
			}
			return err
		}
		name := d.Name()
		if p != dir && (strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(name, ".parquet") {
			return nil
		}
		t := filepath.Dir(p)
		for strings.Contains(filepath.Base(t), "=") && t != dir {
			t = filepath.Dir(t)
		}
		if t == dir {
			return nil
		}
		tables[filepath.Base(t)] = t
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot scan warehouse %q: %w", dir, err)
	}
	return tables, nil
}

// FileViews is a RegisterFunc for named files or globs: CSV (.csv, .tsv, .txt), JSON lines
// (.json, .jsonl, .ndjson) and Parquet, each read with DuckDB's type detection.
func FileViews(files map[string]string) RegisterFunc {
	return func(ctx context.Context, conn *dbsql.Conn, asOf string) error {
		if asOf != "" {
			return fmt.Errorf("snapshot %q: plain files have no snapshots", asOf)
		}
		for _, name := range sortedKeys(files) {
			q := fmt.Sprintf("CREATE OR REPLACE VIEW %s AS SELECT * FROM %s", QuoteIdent(name), ScanFunction(files[name]))
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("cannot create view %q over %q: %w", name, files[name], err)
			}
		}
		return nil
	}
}

// ScanFunction is the DuckDB table function call that reads path by its extension.
func ScanFunction(path string) string {
	p := strings.ToLower(strings.TrimSuffix(path, ".gz"))
	switch {
	case strings.HasSuffix(p, ".parquet"):
		return "read_parquet(" + quote(path) + ", hive_partitioning=true, union_by_name=true)"
	case strings.HasSuffix(p, ".json"), strings.HasSuffix(p, ".jsonl"), strings.HasSuffix(p, ".ndjson"):
		return "read_json_auto(" + quote(path) + ")"
	}
	return "read_csv_auto(" + quote(path) + ")"
}

// Chain runs several RegisterFuncs in order.
func Chain(fns ...RegisterFunc) RegisterFunc {
	return func(ctx context.Context, conn *dbsql.Conn, asOf string) error {
		for _, f := range fns {
			if f == nil {
				continue
			}
			if err := f(ctx, conn, asOf); err != nil {
				return err
			}
		}
		return nil
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
