package tagging

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// The tag catalog, sys_tags: one row per tag (the model's interest tags, each
// definition, each audience) with its metadata, lineage (tables read and written) and
// its last run. It is partitioned by name so each run rewrites only its own row.

// CatalogEntry is one row of sys_tags.
type CatalogEntry struct {
	Name, Kind, Type, Description, Owner, Schedule, File, SQL string
	Reads, Writes                                             []string
	LastDS, LastStatus, LastError                             string
	LastRows                                                  int64
	LastRunAt                                                 time.Time
}

func strList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = lit(x)
	}
	return "CAST([" + strings.Join(q, ", ") + "] AS VARCHAR[])"
}

// upsertCatalog writes one entry; failures are logged, never returned: the catalog
// must not fail a run that otherwise succeeded.
func (t *Tagger) upsertCatalog(ctx context.Context, c *sql.Conn, e CatalogEntry) {
	q := fmt.Sprintf(`SELECT %s AS name, %s AS kind, %s AS type, %s AS description, %s AS owner, %s AS schedule,
  %s AS file, %s AS sql, %s AS reads, %s AS writes, %s AS last_ds, %s AS last_status, %s AS last_error,
  CAST(%d AS BIGINT) AS last_rows, %s AS last_run_at`,
		lit(e.Name), lit(e.Kind), lit(e.Type), lit(e.Description), lit(e.Owner), lit(e.Schedule), lit(e.File), lit(e.SQL),
		strList(e.Reads), strList(e.Writes), lit(e.LastDS), lit(e.LastStatus), lit(e.LastError), e.LastRows, tsLit(e.LastRunAt))
	if err := t.store.Replace(ctx, c, TableCatalog, []KV{{"name", e.Name}}, q); err != nil {
		t.log.Warn("cannot update the tag catalog", "tag", e.Name, "err", err)
	}
}

func (t *Tagger) recordRun(ctx context.Context, def *Definition, res *DefinitionResult) {
	c, err := t.conn(context.WithoutCancel(ctx))
	if err != nil {
		t.log.Warn("cannot update the tag catalog", "tag", def.Name, "err", err)
		return
	}
	defer c.Close()
	e := CatalogEntry{Name: def.Name, Kind: "definition", Type: def.Type, Description: def.Description, Owner: def.Owner,
		Schedule: def.Schedule, File: def.File, SQL: def.SQL, Reads: res.Reads, Writes: []string{TableDefTags},
		LastDS: res.DS, LastStatus: "ok", LastRows: res.Rows, LastRunAt: t.opts.Now().UTC()}
	if res.Err != nil {
		e.LastStatus, e.LastError = "failed", res.Err.Error()
	}
	t.upsertCatalog(context.WithoutCancel(ctx), c, e)
}

func (t *Tagger) recordModel(ctx context.Context, c *sql.Conn, st *RunStats) {
	desc := fmt.Sprintf("interest tags: IDF · Σ action weight · 2^(−age/%v d), normalised (%s), top %d, min weight %v",
		t.opts.HalfLifeDays, t.opts.Normalize, t.opts.TopN, t.opts.MinWeight)
	t.upsertCatalog(ctx, c, CatalogEntry{Name: "interest", Kind: "model", Type: "model", Description: desc, Owner: "tagging",
		Reads: []string{TableEvents, TableItems}, Writes: []string{TableTagState, TableUserState, TableInterest, TableProfile},
		LastDS: st.DS, LastStatus: "ok", LastRows: st.InterestRows, LastRunAt: t.opts.Now().UTC()})
}

// Catalog reads sys_tags, ordered by kind and name.
func (t *Tagger) Catalog(ctx context.Context) ([]CatalogEntry, error) {
	c, err := t.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if ok, err := tableExists(ctx, c, TableCatalog); err != nil || !ok {
		return nil, err
	}
	rows, err := c.QueryContext(ctx, `SELECT name, kind, type, description, owner, schedule, file, sql,
  array_to_string(reads, ','), array_to_string(writes, ','), last_ds, last_status, last_error, last_rows, last_run_at
FROM `+TableCatalog+` ORDER BY kind, name`)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", TableCatalog, err)
	}
	defer rows.Close()
	var out []CatalogEntry
	for rows.Next() {
		var e CatalogEntry
		var reads, writes string
		if err := rows.Scan(&e.Name, &e.Kind, &e.Type, &e.Description, &e.Owner, &e.Schedule, &e.File, &e.SQL,
			&reads, &writes, &e.LastDS, &e.LastStatus, &e.LastError, &e.LastRows, &e.LastRunAt); err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", TableCatalog, err)
		}
		e.Reads, e.Writes = splitList(reads), splitList(writes)
		out = append(out, e)
	}
	return out, rows.Err()
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
