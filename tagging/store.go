package tagging

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Tables the tagging room reads and writes. Inputs come from the warehouse's streaming
// and loading jobs; outputs are replaced per partition by each run, so re-running a day
// overwrites it.
const (
	TableEvents    = "dwd_events"             // input: user_id, item_id, action, event_time[, value][, category]
	TableItems     = "dim_item"               // input: item_id[, category][, tags list<string>]
	TableTagState  = "dws_user_tag_daily"     // per dt × user × tag: raw decayed score as of dt
	TableUserState = "dws_user_daily"         // per dt × user: events, first/last seen, activity, purchases
	TableInterest  = "ads_user_interest_tags" // per dt: user, tag, weight, rank, events, last_seen
	TableProfile   = "ads_user_profile"       // per dt: one row per user
	TableDefTags   = "ads_user_tags"          // per dt × tag: definition tags (user_id, value, weight)
	TableAudiences = "ads_audiences"          // per dt × audience: members
	TableAudRuns   = "sys_audience_runs"      // per dt × audience: the materialisation (member count, run time)
	TableCatalog   = "sys_tags"               // the tag catalog (partition name)
)

// KV is one partition column and its value, e.g. {"dt", "2024-05-01"}.
type KV struct{ Col, Val string }

// Store is where tagging's tables live. A DuckStore keeps them in a DuckDB database; the
// warehouse store keeps them as Parquet tables with atomic snapshots.
type Store interface {
	// Attach makes every table the store holds readable by its name on conn.
	Attach(ctx context.Context, conn *sql.Conn) error
	// Replace atomically replaces the rows of table whose partition columns equal part
	// (all rows when part is empty) with the rows of query, run on conn. The query's
	// columns include the partition columns. Afterwards the new rows are readable on conn.
	Replace(ctx context.Context, conn *sql.Conn, table string, part []KV, query string) error
}

// DuckStore keeps tables inside the DuckDB database of the connection (in memory or a
// .duckdb file).
type DuckStore struct{}

// Attach is a no-op: the tables are already in the database.
func (DuckStore) Attach(context.Context, *sql.Conn) error { return nil }

// Replace deletes the partition and inserts the query's rows in one transaction. The
// query may read other partitions of the same table (the model reads yesterday's state).
func (DuckStore) Replace(ctx context.Context, conn *sql.Conn, table string, part []KV, query string) error {
	exists, err := tableExists(ctx, conn, table)
	if err != nil {
		return err
	}
	if !exists {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE TABLE %s AS %s", ident(table), query)); err != nil {
			return fmt.Errorf("cannot compute %s: %w", table, err)
		}
		return nil
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot replace %s: %w", table, err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	del := "DELETE FROM " + ident(table)
	if len(part) > 0 {
		var conds []string
		for _, kv := range part {
			// The literal takes the column's type (DATE for dt), so no per-row cast.
			conds = append(conds, fmt.Sprintf("%s = %s", ident(kv.Col), lit(kv.Val)))
		}
		del += " WHERE " + strings.Join(conds, " AND ")
	}
	if _, err := tx.ExecContext(ctx, del); err != nil {
		return fmt.Errorf("cannot clear partition of %s: %w", table, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s BY NAME %s", ident(table), query)); err != nil {
		return fmt.Errorf("cannot compute %s: %w", table, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot commit %s: %w", table, err)
	}
	return nil
}

// ident quotes a SQL identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// lit quotes a SQL string literal.
func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// tableExists says whether name is a table or view visible on conn.
func tableExists(ctx context.Context, conn *sql.Conn, name string) (bool, error) {
	var n int
	err := conn.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", name).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("cannot look up table %s: %w", name, err)
	}
	return n > 0, nil
}

// columns lists the lower-cased column names of a table or view.
func columns(ctx context.Context, conn *sql.Conn, name string) (map[string]string, error) {
	rows, err := conn.QueryContext(ctx, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?", name)
	if err != nil {
		return nil, fmt.Errorf("cannot read columns of %s: %w", name, err)
	}
	defer rows.Close()
	cols := map[string]string{}
	for rows.Next() {
		var c, t string
		if err := rows.Scan(&c, &t); err != nil {
			return nil, fmt.Errorf("cannot read columns of %s: %w", name, err)
		}
		cols[strings.ToLower(c)] = t
	}
	return cols, rows.Err()
}
