package sql

import (
	"context"
	dbsql "database/sql"
	"errors"
	"fmt"
	"time"
)

// CacheDatabase is the in-memory database that holds the copies of cached tables
// (Options.Cache). It is attached with COMPRESS: 1M users' tags (5M rows, 8 columns)
// take 67 MB there against 467 MB uncompressed, plus 71 MB for the index.
const CacheDatabase = "tagpipe_cache"

// CacheTable is a table the engine holds in memory with an index on Key, for point
// queries (one user's tags). Measured on 1M users × 5 tags (sql/internal/sqlbench):
// every query over the Parquet view binds read_parquet, turns the statistics of every
// row group into DuckDB statistics, checks the bloom filters, and decodes the dictionary
// and pages of the row group holding the user — about 2.5 ms of CPU however the file is
// sorted or its row groups sized (smaller groups add per-group statistics work, larger
// ones add decoding). The same query through an ART index on an in-memory copy costs
// about 0.5 ms, most of it parsing and planning.
type CacheTable struct {
	// Table is the view to cache (a warehouse table).
	Table string
	// Key is the column point queries filter on (user_id); "" = no index.
	Key string
}

// cached is what the engine holds for one CacheTable.
type cached struct {
	source string // the view's definition as registered (the snapshot's files)
	own    string // the view's definition once it reads the copy
	table  string // CacheDatabase.main.<table>_<gen>
	gen    int
}

// register runs the RegisterFunc and keeps the cached tables' views on their copies.
// The RegisterFunc replaces every view (over the snapshot's files), so it runs in one
// transaction with pointing the views of unchanged snapshots back at their copies:
// other connections see each view move from one state to the next and never the
// Parquet view of a snapshot that is held in memory. A new snapshot is copied after the
// commit; while it loads, its view reads the Parquet files, so readers see the same rows
// either way. A copy that cannot be made (memory_limit) leaves the Parquet view in
// place. Callers hold e.mu or run before the engine is shared.
func (e *Engine) register(ctx context.Context, conn *dbsql.Conn) error {
	if len(e.opts.Cache) == 0 {
		return e.opts.Register(ctx, conn, e.opts.AsOf)
	}
	if e.cache == nil {
		if _, err := conn.ExecContext(ctx, "ATTACH IF NOT EXISTS ':memory:' AS "+QuoteIdent(CacheDatabase)+" (COMPRESS)"); err != nil {
			return fmt.Errorf("cannot attach the in-memory cache database: %w", err)
		}
		e.cache, e.cacheFailed = map[string]*cached{}, map[string]string{}
	}
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return err
	}
	pending, err := func() ([]pendingCopy, error) {
		if err := e.opts.Register(ctx, conn, e.opts.AsOf); err != nil {
			return nil, err
		}
		return e.restoreCopies(ctx, conn)
	}()
	if err == nil {
		_, err = conn.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	// DuckDB writes one database per transaction: copies (in CacheDatabase) come after.
	for _, p := range pending {
		if err := e.applyPending(ctx, conn, p); err != nil {
			if ctx.Err() != nil {
				return err
			}
			e.log.Warn("cannot cache table in memory; queries read its Parquet files", "table", p.ct.Table, "err", err)
		}
	}
	return nil
}

// pendingCopy is a cached table whose view shows a snapshot without a copy (def), or
// whose table went away (def == "").
type pendingCopy struct {
	ct  CacheTable
	def string
}

// restoreCopies points each cached table's view back at its copy when the view was
// re-registered over the copied snapshot, and returns the tables that need a new copy.
func (e *Engine) restoreCopies(ctx context.Context, conn *dbsql.Conn) ([]pendingCopy, error) {
	var pending []pendingCopy
	for _, ct := range e.opts.Cache {
		def, err := viewDef(ctx, conn, ct.Table)
		if errors.Is(err, dbsql.ErrNoRows) {
			if e.cache[ct.Table] != nil {
				pending = append(pending, pendingCopy{ct: ct}) // drop the copy of a table that went away
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		old := e.cache[ct.Table]
		switch {
		case old != nil && def == old.own:
			// Nobody re-registered the view: it still reads the copy.
		case old != nil && def == old.source:
			// Re-registered over the same snapshot: the copy still holds its rows.
			if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE VIEW "+QuoteIdent(ct.Table)+" AS SELECT * FROM "+old.table); err != nil {
				return nil, fmt.Errorf("cannot point view %s at its copy: %w", ct.Table, err)
			}
		case e.cacheFailed[ct.Table] == def:
			// This snapshot could not be copied (memory_limit): wait for the next one
			// rather than paying for a failing copy at every refresh.
		default:
			pending = append(pending, pendingCopy{ct: ct, def: def})
		}
	}
	return pending, nil
}

func (e *Engine) applyPending(ctx context.Context, conn *dbsql.Conn, p pendingCopy) error {
	if p.def == "" {
		return e.dropCached(ctx, conn, p.ct.Table)
	}
	if err := e.copyTable(ctx, conn, p.ct, p.def, e.cache[p.ct.Table]); err != nil {
		if ctx.Err() == nil {
			e.cacheFailed[p.ct.Table] = p.def
		}
		return err
	}
	delete(e.cacheFailed, p.ct.Table)
	return nil
}

// copyTable copies the view's rows (definition def) into a new table of CacheDatabase,
// indexes it and points the view at it, then drops the previous copy.
func (e *Engine) copyTable(ctx context.Context, conn *dbsql.Conn, ct CacheTable, def string, old *cached) error {
	view := QuoteIdent(ct.Table)
	gen := 1
	if old != nil {
		gen = old.gen + 1
	}
	var err error
	c := &cached{source: def, gen: gen, table: QuoteIdent(CacheDatabase) + ".main." + QuoteIdent(fmt.Sprintf("%s_%d", ct.Table, gen))}
	start := time.Now()
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE TABLE "+c.table+" AS SELECT * FROM "+view); err != nil {
		return fmt.Errorf("cannot copy %s: %w", ct.Table, err)
	}
	if ct.Key != "" {
		idx := QuoteIdent(fmt.Sprintf("%s_%d_%s", ct.Table, gen, ct.Key))
		if _, err := conn.ExecContext(ctx, "CREATE INDEX "+idx+" ON "+c.table+" ("+QuoteIdent(ct.Key)+")"); err != nil {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+c.table)
			return fmt.Errorf("cannot index %s on %s: %w", ct.Table, ct.Key, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "CREATE OR REPLACE VIEW "+view+" AS SELECT * FROM "+c.table); err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+c.table)
		return fmt.Errorf("cannot point view %s at its copy: %w", ct.Table, err)
	}
	e.cache[ct.Table] = c
	if old != nil {
		// Queries that bound the old copy hold it until they end; DuckDB frees it then.
		if _, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+old.table); err != nil {
			e.log.Warn("cannot drop old copy", "table", ct.Table, "err", err)
		}
	}
	e.log.Debug("table cached in memory", "table", ct.Table, "key", ct.Key, "took", time.Since(start))
	// Unknown (""), the next refresh compares the view with the copy's source instead.
	c.own, err = viewDef(ctx, conn, ct.Table)
	return err
}

func (e *Engine) dropCached(ctx context.Context, conn *dbsql.Conn, table string) error {
	old := e.cache[table]
	if old == nil {
		return nil
	}
	delete(e.cache, table)
	_, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+old.table)
	return err
}

// viewDef is the definition DuckDB reports for a view of the main schema;
// sql.ErrNoRows when there is none.
func viewDef(ctx context.Context, conn *dbsql.Conn, name string) (string, error) {
	var def string
	err := conn.QueryRowContext(ctx, "SELECT sql FROM duckdb_views() WHERE database_name = current_database() AND schema_name = 'main' AND view_name = $1", name).Scan(&def)
	if err != nil && !errors.Is(err, dbsql.ErrNoRows) {
		return "", fmt.Errorf("cannot read view %s: %w", name, err)
	}
	return def, err
}
