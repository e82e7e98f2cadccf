package tagging

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/tagpipe/tagpipe/warehouse"
)

// loadWarehouseTable writes query's rows as a warehouse table, the way a loading job
// would.
func loadWarehouseTable(t *testing.T, w *warehouse.Warehouse, db *sql.DB, table string, keys []string, query string) {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := (WarehouseStore{W: w}).Load(context.Background(), conn, table, keys, query); err != nil {
		t.Fatal(err)
	}
}

// TestWarehouseStore runs the model, definitions and an audience with the tables in the
// warehouse (Parquet, snapshots, duckbridge views) and checks the results equal the
// DuckDB-table run; a fresh process (new DuckDB, reopened warehouse) sees them, and
// re-running a day overwrites it instead of adding rows.
func TestWarehouseStore(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	w, err := warehouse.Open(root, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ref := openDuck(t)
	loadMovieLens(t, ref)
	db := openDuck(t)
	mustExec(t, db, fmt.Sprintf("ATTACH ':memory:' AS src; CREATE TABLE src.ev AS SELECT * FROM read_csv(%s, header = true)", lit(filepath.Join(movielensDir, "ratings.csv"))))
	loadWarehouseTable(t, w, db, "dwd_events", []string{"dt"}, `SELECT CAST(userId AS VARCHAR) AS user_id, CAST(movieId AS VARCHAR) AS item_id,
  'rate' AS action, make_timestamp(CAST(timestamp AS BIGINT) * 1000000) AS event_time, CAST(rating AS DOUBLE) AS value,
  CAST(make_timestamp(CAST(timestamp AS BIGINT) * 1000000) AS DATE) AS dt
FROM src.ev WHERE timestamp >= 1514764800`) // 2018 only: ~250 daily partitions
	mustExec(t, ref, "DELETE FROM dwd_events WHERE event_time < TIMESTAMP '2018-01-01'")
	items, err := ItemsQuery("movielens", filepath.Join(movielensDir, "movies.csv"))
	if err != nil {
		t.Fatal(err)
	}
	loadWarehouseTable(t, w, db, "dim_item", nil, items)
	loadWarehouseTable(t, w, db, "dim_item", nil, items) // a reload replaces, not appends
	var nItems int
	if err := db.QueryRow("SELECT count(*) FROM dim_item").Scan(&nItems); err != nil || nItems != 9742 {
		t.Fatalf("dim_item: %d rows, %v", nItems, err)
	}

	o := DefaultOptions()
	o.MemoryLimit = ""
	wt, err := New(db, WarehouseStore{W: w}, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt := newTagger(t, ref, nil)
	defs, auds, err := LoadDefinitions("definitions")
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		ds   string
		full bool
	}{{"2018-06-30", true}, {"2018-07-01", false}, {"2018-07-02", false}, {"2018-07-02", false}, {"2018-09-24", false}} {
		for _, tg := range []*Tagger{wt, rt} {
			if _, err := tg.RunModel(ctx, step.ds, step.full); err != nil {
				t.Fatal(err)
			}
			if _, err := tg.RunDefinitions(ctx, defs, step.ds); err != nil {
				t.Fatal(err)
			}
			if err := tg.RunProfile(ctx, step.ds); err != nil {
				t.Fatal(err)
			}
			if _, err := tg.RunAudience(ctx, auds[0], step.ds); err != nil {
				t.Fatal(err)
			}
		}
		compareInterest(t, step.ds, readInterest(t, db, step.ds), readInterest(t, ref, step.ds))
	}
	// Every table has the same rows in both stores (the rerun of 07-02 replaced itself).
	for _, tbl := range []string{TableTagState, TableUserState, TableInterest, TableProfile, TableDefTags, TableAudiences, TableAudRuns} {
		var a, b int64
		if err := db.QueryRow("SELECT count(*) FROM " + tbl).Scan(&a); err != nil {
			t.Fatal(err)
		}
		if err := ref.QueryRow("SELECT count(*) FROM " + tbl).Scan(&b); err != nil {
			t.Fatal(err)
		}
		if a != b || a == 0 {
			t.Errorf("%s: warehouse %d rows, duckdb %d", tbl, a, b)
		}
	}

	// A new process: reopened warehouse, new DuckDB, continues incrementally.
	w2, err := warehouse.Open(root, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	db2 := openDuck(t)
	wt2, err := New(db2, WarehouseStore{W: w2}, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := wt2.RunModel(ctx, "2018-09-25", false)
	if err != nil || st.Full || st.Prev != "2018-09-24" {
		t.Fatalf("continued run: %+v, %v", st, err)
	}
	ex, err := wt2.Explain(ctx, "414", "2018-09-24", 3)
	if err != nil || len(ex.Tags) == 0 || len(ex.Tags[0].Top) == 0 || ex.Attrs["activity"] == "" {
		t.Fatalf("explain from a new process: %+v, %v", ex, err)
	}
	cat, err := wt2.Catalog(ctx)
	if err != nil || len(cat) != 6 {
		t.Fatalf("catalog: %d entries, %v", len(cat), err)
	}
	// A re-run that yields no rows empties its partition (and only it).
	def := &Definition{Name: "flag", Type: "rule", SQL: "SELECT user_id, 'x' AS value FROM dws_user_daily WHERE dt = DATE '{{ ds }}' AND events > {{ half_life }} * 0 - 1"}
	if r, err := wt2.RunDefinition(ctx, def, "2018-09-24"); err != nil || r.Rows == 0 {
		t.Fatalf("flag: %+v, %v", r, err)
	}
	def.SQL = "SELECT user_id, 'x' AS value FROM dws_user_daily WHERE false"
	if r, err := wt2.RunDefinition(ctx, def, "2018-09-24"); err != nil || r.Rows != 0 {
		t.Fatalf("empty re-run: %+v, %v", r, err)
	}
	var flags, others int
	db2.QueryRow("SELECT count(*) FILTER (WHERE tag = 'flag'), count(*) FILTER (WHERE tag <> 'flag') FROM ads_user_tags WHERE dt = DATE '2018-09-24'").Scan(&flags, &others)
	if flags != 0 || others == 0 {
		t.Fatalf("after the empty re-run: %d flag rows, %d other rows", flags, others)
	}
	// An audience materialised empty for a day before its latest run is exported as
	// empty by a new process: its run is in sys_audience_runs, committed after its (no)
	// members. A day never materialised is refused.
	if n, err := wt2.RunAudience(ctx, &Audience{Name: auds[0].Name, Expression: "interest:Comedy > 2"}, "2018-07-01"); err != nil || n != 0 {
		t.Fatalf("empty audience: %d, %v", n, err)
	}
	w3, err := warehouse.Open(root, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	wt3, err := New(openDuck(t), WarehouseStore{W: w3}, o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := wt3.AudienceMembers(ctx, auds[0].Name, "2018-07-01"); err != nil || len(m) != 0 {
		t.Fatalf("members of the empty day: %v, %v", m, err)
	}
	if m, err := wt3.AudienceMembers(ctx, auds[0].Name, "2018-07-02"); err != nil || len(m) == 0 {
		t.Fatalf("members of 2018-07-02: %d, %v", len(m), err)
	}
	if _, err := wt3.AudienceMembers(ctx, auds[0].Name, "2018-07-03"); !errors.Is(err, ErrNotMaterialised) {
		t.Fatalf("a day never materialised: %v", err)
	}
	tb, err := w2.Table(TableInterest)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := tb.Current()
	if len(cur.Partitions()) != 5 {
		t.Errorf("%s partitions: %v", TableInterest, cur.Partitions())
	}
}

// TestWarehouseStoreCompression: files DuckDB writes for the warehouse (Load, Replace,
// partitioned or not) carry the warehouse's codec, as its own writers' do.
func TestWarehouseStoreCompression(t *testing.T) {
	ctx := context.Background()
	for codec, want := range map[string]string{"gzip": "GZIP", "none": "UNCOMPRESSED", "zstd": "ZSTD", "lz4_raw": "LZ4_RAW"} {
		t.Run(codec, func(t *testing.T) {
			o := warehouse.DefaultOptions()
			o.Compression = codec
			w, err := warehouse.Open(t.TempDir(), o)
			if err != nil {
				t.Fatal(err)
			}
			db := openDuck(t)
			loadWarehouseTable(t, w, db, "dim_x", nil, "SELECT range AS id FROM range(10)")
			loadWarehouseTable(t, w, db, "dwd_x", []string{"dt"}, "SELECT range AS id, DATE '2024-05-01' + CAST(range % 2 AS INT) AS dt FROM range(10)")
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := (WarehouseStore{W: w}).Replace(ctx, conn, "ads_x", []KV{{"dt", "2024-05-01"}}, "SELECT 1 AS v, DATE '2024-05-01' AS dt"); err != nil {
				t.Fatal(err)
			}
			var codecs []string
			rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT DISTINCT compression FROM parquet_metadata(%s)", lit(filepath.Join(w.Root(), "*", "*", "**", "*.parquet"))))
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var c string
				rows.Scan(&c)
				codecs = append(codecs, c)
			}
			if len(codecs) != 1 || codecs[0] != want {
				t.Fatalf("codecs of the files: %v, want [%s]", codecs, want)
			}
		})
	}
}
