package tagging

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/tagpipe/tagpipe/warehouse"
	"github.com/tagpipe/tagpipe/warehouse/duckbridge"
)

// WarehouseStore keeps tagging's tables in the warehouse: a run's rows are computed by
// DuckDB, written with COPY … TO (PARTITION_BY …) into a staging directory, and
// published with one overwrite-partitions commit per table, so readers see a day's
// partition either before or after the run, never half of it. Every warehouse table is
// visible to the run's SQL through duckbridge views.
type WarehouseStore struct {
	W *warehouse.Warehouse
}

// Attach registers a view per warehouse table (its current snapshot).
func (s WarehouseStore) Attach(ctx context.Context, conn *sql.Conn) error {
	_, err := duckbridge.Register(ctx, conn, s.W)
	return err
}

// tableDocs describe the tables tagging creates.
var tableDocs = map[string]string{
	TableTagState:  "interest model state: per dt, user and tag, the raw decayed score as of the end of dt (before IDF and normalisation)",
	TableUserState: "interest model state: per dt and user, events, first/last seen, decayed activity, purchases, spend",
	TableInterest:  "user interest tags per dt: weight (IDF, normalised), rank, events, last seen",
	TableProfile:   "one row per user per dt: top tags, activity, first/last seen, RFM segment, definition tags",
	TableDefTags:   "values of tag definitions (tagging/definitions) per dt and tag",
	TableAudiences: "audience members per dt and audience",
	TableAudRuns:   "audience materialisations per dt and audience (member count, run time): an empty audience has a run and no members",
	TableCatalog:   "tag catalog: definitions, model and audiences with lineage and last run",
}

var columnDocs = map[string]string{
	"dt": "day (UTC) the row is computed for", "user_id": "user", "tag": "tag name",
	"score": "raw decayed score: Σ action weight · 2^(−age/half_life)", "day_score": "contribution of dt's own events",
	"events": "events counted", "first_seen": "first event time", "last_seen": "last event time",
	"weight": "final weight (IDF, normalised)", "rank": "1 = strongest", "raw": "IDF · score before normalisation",
	"params":   "model parameter fingerprint; an incremental run only continues a state with the same one",
	"activity": "activity", "value": "tag value", "audience": "audience name",
	"members": "members the run materialised", "run_at": "when the run committed its members (UTC)",
}

// Replace computes query into Parquet files and commits them as the new content of the
// partition.
func (s WarehouseStore) Replace(ctx context.Context, conn *sql.Conn, table string, part []KV, query string) error {
	if len(part) == 0 {
		return fmt.Errorf("BUG: WarehouseStore.Replace of %s without partition", table)
	}
	keys := make([]string, len(part))
	wp := make([]string, 0, 2*len(part))
	for i, kv := range part {
		keys[i] = kv.Col
		wp = append(wp, kv.Col, kv.Val)
	}
	stage, err := s.W.StagingDir("tagging")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	t, err := s.W.Table(table)
	if errors.Is(err, warehouse.ErrNotFound) {
		t, err = s.create(ctx, conn, table, keys, query, stage)
	}
	if err != nil {
		return fmt.Errorf("cannot open table %s: %w", table, err)
	}
	// One partition: write one file (DuckDB writes its row groups in parallel) and name
	// the partition ourselves; the query's partition columns hold part's values.
	out := filepath.Join(stage, "part.parquet")
	var idents []string
	for _, k := range keys {
		idents = append(idents, ident(k))
	}
	res, err := conn.ExecContext(ctx, fmt.Sprintf("COPY (SELECT * EXCLUDE (%s) FROM (%s)) TO %s (%s)",
		strings.Join(idents, ", "), query, lit(out), duckbridge.CopyOptions(s.W)))
	if err != nil {
		return fmt.Errorf("cannot compute %s: %w", table, err)
	}
	rows, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("cannot compute %s: %w", table, err)
	}
	tx, err := t.Begin(ctx)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", table, err)
	}
	defer tx.Abort()
	if rows > 0 {
		if err := tx.AddFile(out, warehouse.P(wp...)); err != nil {
			return fmt.Errorf("cannot write %s: %w", table, err)
		}
	}
	snap, err := tx.Commit(ctx, warehouse.CommitOptions{
		Operation:  warehouse.OpOverwritePartitions,
		Partitions: []warehouse.Partition{warehouse.P(wp...)},
		Properties: map[string]string{"writer": "tagging"},
	})
	if err != nil {
		return fmt.Errorf("cannot commit %s: %w", table, err)
	}
	return duckbridge.RegisterSnapshot(ctx, conn, snap, table)
}

// create makes the table with the query's column types (as DuckDB writes them to
// Parquet) and the given partition keys.
func (s WarehouseStore) create(ctx context.Context, conn *sql.Conn, table string, keys []string, query, stage string) (*warehouse.Table, error) {
	probe := filepath.Join(stage, "schema.parquet")
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("COPY (SELECT * FROM (%s) LIMIT 0) TO %s (FORMAT parquet)", query, lit(probe))); err != nil {
		return nil, fmt.Errorf("cannot compute the schema of %s: %w", table, err)
	}
	sc, err := parquetSchema(probe)
	if err != nil {
		return nil, err
	}
	isKey := map[string]bool{}
	for _, k := range keys {
		isKey[k] = true
	}
	var fields []arrow.Field
	for _, f := range sc.Fields() {
		typ := f.Type
		if isKey[f.Name] {
			if f.Name == "dt" {
				typ = arrow.FixedWidthTypes.Date32
			} else {
				typ = arrow.BinaryTypes.String
			}
			fields = append(fields, warehouse.RequiredField(f.Name, typ, columnDocs[f.Name]))
			continue
		}
		fields = append(fields, warehouse.Field(f.Name, typ, columnDocs[f.Name]))
	}
	return s.W.CreateTable(ctx, warehouse.TableSpec{Name: table, Schema: arrow.NewSchema(fields, nil), PartitionKeys: keys, Doc: tableDocs[table]})
}

func parquetSchema(path string) (*arrow.Schema, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("cannot open %q: %w", path, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", path, err)
	}
	return fr.Schema()
}

// Load replaces a table's content with the rows of query: the whole table when keys is
// empty, else every partition (by keys) the rows fall in. It creates the table with the
// query's types when missing, and returns the rows loaded. Use it for inputs such as
// dim_item.
func (s WarehouseStore) Load(ctx context.Context, conn *sql.Conn, table string, keys []string, query string) (int64, error) {
	stage, err := s.W.StagingDir("tagging-load")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(stage)
	t, err := s.W.Table(table)
	if errors.Is(err, warehouse.ErrNotFound) {
		t, err = s.create(ctx, conn, table, keys, query, stage)
	}
	if err != nil {
		return 0, fmt.Errorf("cannot open table %s: %w", table, err)
	}
	tx, err := t.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("cannot write %s: %w", table, err)
	}
	defer tx.Abort()
	out := filepath.Join(stage, "out")
	if len(keys) > 0 {
		var idents []string
		for _, k := range keys {
			idents = append(idents, ident(k))
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("COPY (%s) TO %s (%s, PARTITION_BY (%s))", query, lit(out), duckbridge.CopyOptions(s.W), strings.Join(idents, ", "))); err != nil {
			return 0, fmt.Errorf("cannot compute %s: %w", table, err)
		}
		if _, err := os.Stat(out); err == nil {
			if _, err := tx.ImportDir(out); err != nil {
				return 0, fmt.Errorf("cannot write %s: %w", table, err)
			}
		}
	} else {
		out += ".parquet"
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("COPY (%s) TO %s (%s)", query, lit(out), duckbridge.CopyOptions(s.W))); err != nil {
			return 0, fmt.Errorf("cannot compute %s: %w", table, err)
		}
		if err := tx.AddFile(out, nil); err != nil {
			return 0, fmt.Errorf("cannot write %s: %w", table, err)
		}
	}
	snap, err := tx.Commit(ctx, warehouse.CommitOptions{Operation: warehouse.OpOverwritePartitions, Properties: map[string]string{"writer": "tagging-load"}})
	if err != nil {
		return 0, fmt.Errorf("cannot commit %s: %w", table, err)
	}
	return snap.Summary.AddedRows, duckbridge.RegisterSnapshot(ctx, conn, snap, table)
}

// ItemsQuery reads an item file into dim_item's columns (item_id, category, tags):
// "movielens" is movies.csv (genres split on '|', "(no genres listed)" kept as a tag
// the model ignores), "csv" a headered CSV with columns item_id, category, tags
// ('|'-separated; empty fields are NULL), "json" newline-delimited JSON with the same fields (tags a list).
func ItemsQuery(format, path string) (string, error) {
	switch format {
	case "movielens":
		return fmt.Sprintf(`SELECT CAST(movieId AS VARCHAR) AS item_id, CAST(NULL AS VARCHAR) AS category,
  string_split(genres, '|') AS tags, title FROM read_csv(%s, header = true, quote = '"')`, lit(path)), nil
	case "csv":
		return fmt.Sprintf(`SELECT item_id, NULLIF(category, '') AS category, string_split(NULLIF(tags, ''), '|') AS tags
FROM read_csv(%s, header = true, all_varchar = true)`, lit(path)), nil
	case "json":
		return fmt.Sprintf(`SELECT CAST(item_id AS VARCHAR) AS item_id, CAST(category AS VARCHAR) AS category,
  CAST(tags AS VARCHAR[]) AS tags FROM read_json(%s, format = 'newline_delimited')`, lit(path)), nil
	}
	return "", fmt.Errorf("unknown item file format %q: want movielens, csv or json", format)
}
