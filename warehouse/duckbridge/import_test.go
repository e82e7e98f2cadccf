package duckbridge

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/tagpipe/tagpipe/warehouse"
	"github.com/tagpipe/tagpipe/warehouse/internal/benchdata"
)

func tagsSchema() *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		warehouse.RequiredField("user_id", arrow.BinaryTypes.String, "user"),
		warehouse.RequiredField("tag", arrow.BinaryTypes.String, "interest tag"),
		warehouse.Field("weight", arrow.PrimitiveTypes.Float64, "normalised weight"),
		warehouse.Field("rank", arrow.PrimitiveTypes.Int64, "1 = strongest"),
		warehouse.RequiredField("dt", arrow.FixedWidthTypes.Date32, "day"),
	}, nil)
}

// A tag job computes in DuckDB, COPYs into a staging dir, and publishes the files
// atomically with ImportDir + an overwrite-partitions commit.
func TestImportDuckDBCopy(t *testing.T) {
	ctx := context.Background()
	w := openWarehouse(t)
	db := openDuck(t)
	tb, err := w.CreateTable(ctx, warehouse.TableSpec{Name: "ads_user_interest_tags", Schema: tagsSchema(), PartitionKeys: []string{"dt"}})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(query string) (*warehouse.Snapshot, error) {
		stage, err := w.StagingDir("tags")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(stage)
		if _, err := db.ExecContext(ctx, fmt.Sprintf("COPY (%s) TO %s (FORMAT parquet, PARTITION_BY (dt), OVERWRITE_OR_IGNORE)", query, Literal(stage))); err != nil {
			t.Fatal(err)
		}
		tx, err := tb.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Abort()
		if _, err := tx.ImportDir(stage); err != nil {
			return nil, err
		}
		return tx.Commit(ctx, warehouse.CommitOptions{Operation: warehouse.OpOverwritePartitions, Properties: map[string]string{"job": "tags"}})
	}
	good := `SELECT 'u' || i AS user_id, 'tag' || (i % 5) AS tag, (i * 0.5)::DOUBLE AS weight, i AS rank, DATE '2024-05-01' + (i % 2)::INT AS dt FROM range(100) t(i)`
	for range 2 { // idempotent re-run
		s, err := publish(good)
		if err != nil {
			t.Fatal(err)
		}
		if s.Rows() != 100 || len(s.Partitions()) != 2 {
			t.Fatalf("imported %d rows in %d partitions", s.Rows(), len(s.Partitions()))
		}
	}
	if _, err := Register(ctx, db, w); err != nil {
		t.Fatal(err)
	}
	var n int64
	var sum float64
	if err := db.QueryRow(`SELECT count(*), sum(weight) FROM ads_user_interest_tags WHERE dt = DATE '2024-05-02'`).Scan(&n, &sum); err != nil {
		t.Fatal(err)
	}
	if n != 50 || sum != 1250 {
		t.Fatalf("view: %d rows sum %v", n, sum)
	}
	// A wrong type is refused and nothing changes.
	_, err = publish(`SELECT 'u' AS user_id, 't' AS tag, 1.0::DOUBLE AS weight, 1::INTEGER AS rank, DATE '2024-05-03' AS dt`)
	if err == nil || !strings.Contains(err.Error(), `column "rank" has type int32, the table has int64`) {
		t.Fatalf("bad import: %v", err)
	}
	if cur, _ := tb.Current(); cur.Rows() != 100 {
		t.Fatalf("failed import changed the table: %d rows", cur.Rows())
	}
}

// Views follow schema evolution (old files read with nulls), show empty tables
// with their types, and can pin an older snapshot (time travel).
func TestViewsEvolutionEmptyAndAsOf(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	o := warehouse.DefaultOptions()
	o.Now = func() time.Time { return clock }
	w, err := warehouse.Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	db := openDuck(t)
	if _, err := w.CreateTable(ctx, warehouse.TableSpec{Name: "dim_empty", Schema: tagsSchema(), PartitionKeys: []string{"dt"}}); err != nil {
		t.Fatal(err)
	}
	tb := createAllTypes(t, w, sampleRows()) // snapshot 2 at clock
	clock = clock.Add(time.Hour)
	evolved := arrow.NewSchema(append(allTypesSchema().Fields(), warehouse.Field("extra", arrow.PrimitiveTypes.Int64, "added later")), nil)
	if _, err := w.CreateTable(ctx, warehouse.TableSpec{Name: "dim_types", Schema: evolved, PartitionKeys: []string{"dt"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Register(ctx, db, w); err != nil {
		t.Fatal(err)
	}
	var n, nulls int64
	if err := db.QueryRow(`SELECT count(*), count(*) FILTER (WHERE extra IS NULL) FROM dim_types`).Scan(&n, &nulls); err != nil {
		t.Fatal(err)
	}
	if n != 20 || nulls != 20 {
		t.Fatalf("evolved view: %d rows, %d null extras", n, nulls)
	}
	var typ string
	if err := db.QueryRow(`SELECT count(*), (SELECT data_type FROM information_schema.columns WHERE table_name = 'dim_empty' AND column_name = 'dt') FROM dim_empty`).Scan(&n, &typ); err != nil {
		t.Fatal(err)
	}
	if n != 0 || typ != "DATE" {
		t.Fatalf("empty view: %d rows, dt %s", n, typ)
	}
	// Add rows, then look at the table as of before that.
	clock = clock.Add(time.Hour)
	tx, _ := tb.Begin(ctx)
	rec := buildRecord(sampleRows()[:5])
	defer rec.Release()
	if err := tx.Write(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx, warehouse.CommitOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Register(ctx, db, w); err != nil {
		t.Fatal(err)
	}
	s, err := RegisterAsOf(ctx, db, w, "dim_types", clock.Add(-time.Minute), "dim_types_before")
	if err != nil {
		t.Fatal(err)
	}
	var now, before int64
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM dim_types), (SELECT count(*) FROM dim_types_before)`).Scan(&now, &before); err != nil {
		t.Fatal(err)
	}
	if now != 25 || before != 20 || s.ID != 3 {
		t.Fatalf("now %d, as of %d (snapshot %d)", now, before, s.ID)
	}
}

// Our files are what the issue asks for, as DuckDB sees them: zstd, min/max
// statistics on every column chunk, dictionary-encoded strings where values repeat
// (action) and plain ones where nearly all differ (user_id), row groups of
// Options.RowGroupRows.
func TestFileLayoutAsDuckDBSeesIt(t *testing.T) {
	ctx := context.Background()
	o := warehouse.DefaultOptions()
	o.RowGroupRows = 1000
	w, err := warehouse.Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := w.CreateTable(ctx, warehouse.TableSpec{Name: "ods_events", Schema: benchdata.Schema(), PartitionKeys: []string{"dt"}})
	if err != nil {
		t.Fatal(err)
	}
	tx, _ := tb.Begin(ctx)
	rec := benchdata.Events(0, 5000, 5000, 1)
	if err := tx.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	s, err := tx.Commit(ctx, warehouse.CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db := openDuck(t)
	var groups, maxRows, chunks, zstd, withStats, dictStrings, plainIDs int64
	q := `SELECT count(DISTINCT row_group_id), max(row_group_num_rows), count(*),
		count(*) FILTER (WHERE compression = 'ZSTD'),
		count(*) FILTER (WHERE coalesce(stats_min_value, stats_min) IS NOT NULL AND coalesce(stats_max_value, stats_max) IS NOT NULL),
		count(*) FILTER (WHERE path_in_schema = 'action' AND encodings LIKE '%DICTIONARY%'),
		count(*) FILTER (WHERE path_in_schema = 'user_id' AND encodings NOT LIKE '%DICTIONARY%')
		FROM parquet_metadata(` + Literal(s.AbsPath(s.Files[0])) + `)`
	if err := db.QueryRow(q).Scan(&groups, &maxRows, &chunks, &zstd, &withStats, &dictStrings, &plainIDs); err != nil {
		t.Fatal(err)
	}
	if groups != 5 || maxRows != 1000 || zstd != chunks || withStats != chunks || dictStrings != groups || plainIDs != groups {
		t.Fatalf("row groups %d (max %d rows), chunks %d, zstd %d, with stats %d, dictionary actions %d, plain user ids %d", groups, maxRows, chunks, zstd, withStats, dictStrings, plainIDs)
	}
}
