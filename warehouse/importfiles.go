package warehouse

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// AddFile stages a Parquet file written by someone else (e.g. DuckDB's COPY … TO)
// for this transaction. Its columns must be table columns with the table's types
// (partition columns excluded: they come from p); table columns it lacks must be
// nullable and read as nulls. At Commit the file is moved (renamed) into the table,
// so it must live on the warehouse's file system (see Warehouse.StagingDir); if the
// transaction aborts, the file stays where it is.
func (tx *Tx) AddFile(path string, p Partition) error {
	if err := tx.usable(); err != nil {
		return err
	}
	p, err := p.normalize(tx.base.PartitionKeys)
	if err != nil {
		return fmt.Errorf("table %s: %s: %w", tx.t.name, path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	sc, rows, err := parquetInfo(abs)
	if err != nil {
		return err
	}
	ds := tx.fileSchema()
	var missing []string
	for _, f := range sc.Fields() {
		idx := ds.FieldIndices(f.Name)
		if len(idx) == 0 {
			return fmt.Errorf("table %s: file %q has column %q that the table does not (partition columns belong in the directory)", tx.t.name, path, f.Name)
		}
		if want := ds.Field(idx[0]).Type; !sameType(f.Type, want) {
			return fmt.Errorf("table %s: file %q column %q has type %s, the table has %s", tx.t.name, path, f.Name, f.Type, want)
		}
	}
	for _, f := range ds.Fields() {
		if len(sc.FieldIndices(f.Name)) == 0 {
			if !f.Nullable {
				return fmt.Errorf("table %s: file %q lacks NOT NULL column %q", tx.t.name, path, f.Name)
			}
			missing = append(missing, f.Name)
		}
	}
	st, err := os.Stat(abs)
	if err != nil {
		return err
	}
	for _, s := range tx.staged {
		if s.src == abs {
			return fmt.Errorf("table %s: file %q added twice", tx.t.name, path)
		}
	}
	tx.seq++
	tx.staged = append(tx.staged, stagedFile{src: abs, name: tx.fileName(tx.seq), imported: true, df: DataFile{Partition: p, Rows: rows, Bytes: st.Size(), Missing: missing}})
	return nil
}

// ImportDir stages every *.parquet file below dir, taking partition values from
// Hive directories (dt=2024-05-01/…), as DuckDB's COPY … TO (PARTITION_BY …) writes
// them. Hidden and _-prefixed entries are skipped. It returns the number of files.
func (tx *Tx) ImportDir(dir string) (int, error) {
	if err := tx.usable(); err != nil {
		return 0, err
	}
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != dir && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(name, dataExt) {
			return nil
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(path))
		p, err := parsePartitionPath(filepath.ToSlash(rel))
		if err != nil {
			return fmt.Errorf("file %q: %w", path, err)
		}
		if err := tx.AddFile(path, p); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cannot import %q: %w", dir, err)
	}
	return n, nil
}
