package tagging

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// Tagger runs the model, tag definitions, profiles and audiences against one DuckDB
// database and one Store. It holds no goroutines; concurrent runs are serialised by the
// caller (jobs runs one task per job at a time).
type Tagger struct {
	opts  Options
	db    *sql.DB
	store Store
	log   *slog.Logger
	// PurchaseActions count as purchases (RFM frequency and monetary).
	purchase []string
}

// New checks the options (action expressions are compiled by DuckDB) and returns a Tagger
// over db, a DuckDB database. log may be nil.
func New(db *sql.DB, store Store, opts Options, log *slog.Logger) (*Tagger, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("bad tagging options: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	t := &Tagger{opts: opts, db: db, store: store, log: log, purchase: []string{"buy"}}
	ctx := context.Background()
	if opts.MemoryLimit != "" {
		if _, err := db.ExecContext(ctx, "SET memory_limit = "+lit(opts.MemoryLimit)); err != nil {
			return nil, fmt.Errorf("bad memory_limit %q: %w", opts.MemoryLimit, err)
		}
	}
	if opts.Threads > 0 {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("SET threads = %d", opts.Threads)); err != nil {
			return nil, fmt.Errorf("bad threads %d: %w", opts.Threads, err)
		}
	}
	for _, a := range sortedKeys(opts.ActionExpressions) {
		q := fmt.Sprintf("SELECT CAST((%s) AS DOUBLE) FROM (SELECT CAST(4.0 AS DOUBLE) AS value)", opts.ActionExpressions[a])
		var v sql.NullFloat64
		if err := db.QueryRowContext(ctx, q).Scan(&v); err != nil {
			return nil, fmt.Errorf("bad weight expression for action %q (%s): %w", a, opts.ActionExpressions[a], err)
		}
	}
	return t, nil
}

// Options returns the options in use.
func (t *Tagger) Options() Options { return t.opts }

// RunStats describe one model run: what was read and what each edge case did.
type RunStats struct {
	DS   string
	Full bool
	// Prev is the state partition the incremental run continued from ("" for full).
	Prev string
	// Rows is the number of input rows in scope; Events the distinct events among them.
	Rows, Events int64
	// Duplicates are rows equal to another row in every model column (counted once).
	Duplicates int64
	// UnknownActions are events whose action has no weight: ignored, by action.
	UnknownActions map[string]int64
	// UntaggedEvents have a known action but an item with no tags: they count for the
	// user's activity, not for any tag.
	UntaggedEvents int64
	// FutureEvents have event_time at or after the end of ds: not in this run (they are
	// counted by the run of their own day).
	FutureEvents int64
	// InvalidRows lack user_id, item_id or action: ignored.
	InvalidRows int64
	// Users and Pairs are the state's size (users, user × tag pairs); InterestRows the
	// output rows.
	Users, Pairs, InterestRows int64
	Took                       time.Duration
}

// ParseDS parses a YYYY-MM-DD day.
func ParseDS(ds string) (time.Time, error) {
	d, err := time.Parse("2006-01-02", ds)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad ds %q: want YYYY-MM-DD", ds)
	}
	return d, nil
}

// conn opens a connection with the session settings every run relies on and the store's
// tables attached.
func (t *Tagger) conn(ctx context.Context) (*sql.Conn, error) {
	c, err := t.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot open DuckDB connection: %w", err)
	}
	// UTC: ds is a UTC day. Insertion order is meaningless for every table here, and
	// not preserving it lets DuckDB write large results in parallel with less memory.
	if _, err := c.ExecContext(ctx, "SET TimeZone = 'UTC'; SET preserve_insertion_order = false"); err != nil {
		c.Close()
		return nil, fmt.Errorf("cannot set session options: %w", err)
	}
	if err := t.store.Attach(ctx, c); err != nil {
		c.Close()
		return nil, fmt.Errorf("cannot attach tables: %w", err)
	}
	return c, nil
}

// RunModel computes dws_user_tag_daily, dws_user_daily, ads_user_interest_tags and
// ads_user_profile for ds. With full, it recomputes from every event before the end of
// ds; otherwise it continues from the latest state before ds made with the same
// parameters, and falls back to a full run when there is none.
func (t *Tagger) RunModel(ctx context.Context, ds string, full bool) (*RunStats, error) {
	day, err := ParseDS(ds)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := t.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	m, err := t.prepare(ctx, c, day)
	if err != nil {
		return nil, err
	}
	st := &RunStats{DS: ds, Full: true, UnknownActions: map[string]int64{}}
	var prev time.Time
	if !full {
		prev, err = t.latestState(ctx, c, day)
		if err != nil {
			return nil, err
		}
		if prev.IsZero() {
			t.log.Info("no earlier model state with these parameters: running a full recompute", "ds", ds)
		} else {
			st.Full = false
			st.Prev = prev.Format("2006-01-02")
		}
	}
	var lo time.Time
	gap := 0
	if !prev.IsZero() {
		lo = prev.AddDate(0, 0, 1)
		gap = int(day.Sub(prev).Hours()/24 + 0.5)
	}
	// The connection goes back to the pool: drop the run's temp tables (best effort).
	defer c.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS tp_ev; DROP TABLE IF EXISTS tp_item_tags") //nolint:errcheck
	lap := time.Now()
	step := func(name string) {
		t.log.Debug("tag model step", "ds", ds, "step", name, "took", time.Since(lap))
		lap = time.Now()
	}
	if _, err := c.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE tp_ev AS "+m.eventsSQL(lo)); err != nil {
		return nil, fmt.Errorf("cannot read events for %s: %w", ds, err)
	}
	step("events")
	if err := t.scopeStats(ctx, c, m, lo, st); err != nil {
		return nil, err
	}
	step("stats")
	if err := t.store.Replace(ctx, c, TableTagState, []KV{{"dt", ds}}, m.tagStateSQL(prev, gap)); err != nil {
		return nil, err
	}
	step(TableTagState)
	if err := t.store.Replace(ctx, c, TableUserState, []KV{{"dt", ds}}, m.userStateSQL(prev, gap, t.purchase)); err != nil {
		return nil, err
	}
	step(TableUserState)
	if err := t.store.Replace(ctx, c, TableInterest, []KV{{"dt", ds}}, m.interestSQL()); err != nil {
		return nil, err
	}
	step(TableInterest)
	q := fmt.Sprintf(`SELECT (SELECT count(*) FROM %s WHERE dt = %s), (SELECT count(*) FROM %s WHERE dt = %s), (SELECT count(*) FROM %s WHERE dt = %s)`,
		TableUserState, dateLit(day), TableTagState, dateLit(day), TableInterest, dateLit(day))
	if err := c.QueryRowContext(ctx, q).Scan(&st.Users, &st.Pairs, &st.InterestRows); err != nil {
		return nil, fmt.Errorf("cannot count outputs of %s: %w", ds, err)
	}
	if err := t.runProfile(ctx, c, day); err != nil {
		return nil, err
	}
	step(TableProfile)
	st.Took = time.Since(start)
	t.recordModel(ctx, c, st)
	t.log.Info("tag model run", "ds", ds, "full", st.Full, "prev", st.Prev, "events", st.Events,
		"duplicates", st.Duplicates, "unknown_actions", st.UnknownActions, "untagged", st.UntaggedEvents,
		"future", st.FutureEvents, "users", st.Users, "pairs", st.Pairs, "took", st.Took)
	return st, nil
}

// prepare checks the input tables and builds the run's SQL parameters.
func (t *Tagger) prepare(ctx context.Context, c *sql.Conn, day time.Time) (*sqlModel, error) {
	m := &sqlModel{o: &t.opts, ds: day}
	ok, err := tableExists(ctx, c, TableEvents)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("cannot run the tag model: no table %s", TableEvents)
	}
	cols, err := columns(ctx, c, TableEvents)
	if err != nil {
		return nil, err
	}
	for _, need := range []string{"user_id", "item_id", "action", "event_time"} {
		if _, ok := cols[need]; !ok {
			return nil, fmt.Errorf("cannot run the tag model: %s has no column %s", TableEvents, need)
		}
	}
	_, m.hasValue = cols["value"]
	_, m.hasCat = cols["category"]
	if ok, err = tableExists(ctx, c, TableItems); err != nil {
		return nil, err
	}
	if ok {
		icols, err := columns(ctx, c, TableItems)
		if err != nil {
			return nil, err
		}
		if _, ok := icols["item_id"]; !ok {
			return nil, fmt.Errorf("cannot run the tag model: %s has no column item_id", TableItems)
		}
		m.itemTags = itemTagsSQL(icols, m.ignoreList())
	}
	if m.itemTags == "" && !m.hasCat {
		t.log.Warn("no item tags: dim_item is missing or has neither tags nor category, and events carry no category")
	}
	if m.itemTags != "" {
		if _, err := c.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE tp_item_tags AS "+m.itemTags); err != nil {
			return nil, fmt.Errorf("cannot read item tags from %s: %w", TableItems, err)
		}
	}
	return m, nil
}

// latestState is the newest dws partition before day made with the current parameters;
// zero when there is none.
func (t *Tagger) latestState(ctx context.Context, c *sql.Conn, day time.Time) (time.Time, error) {
	for _, tbl := range []string{TableTagState, TableUserState} {
		ok, err := tableExists(ctx, c, tbl)
		if err != nil || !ok {
			return time.Time{}, err
		}
	}
	// Both states are written by the same run; take the newest day present in both.
	// The parameters are checked on the small per-user state; of the big per-tag state
	// only the partition column is read (file paths, for warehouse views).
	q := fmt.Sprintf(`SELECT max(dt) FROM (SELECT DISTINCT dt FROM %s WHERE dt < %s AND params = %s)
WHERE dt IN (SELECT DISTINCT dt FROM %s WHERE dt < %s)`,
		TableUserState, dateLit(day), lit(t.opts.fingerprint()), TableTagState, dateLit(day))
	var d sql.NullTime
	if err := c.QueryRowContext(ctx, q).Scan(&d); err != nil {
		return time.Time{}, fmt.Errorf("cannot find the previous model state: %w", err)
	}
	if !d.Valid {
		return time.Time{}, nil
	}
	var params string
	// The tag state of that day must have been made with the same parameters too (a run
	// that crashed between the two writes could have left an older one).
	q = fmt.Sprintf("SELECT COALESCE((SELECT params FROM %s WHERE dt = %s LIMIT 1), '')", TableTagState, dateLit(d.Time))
	if err := c.QueryRowContext(ctx, q).Scan(&params); err != nil {
		return time.Time{}, fmt.Errorf("cannot read the previous model state: %w", err)
	}
	if params != "" && params != t.opts.fingerprint() {
		return time.Time{}, nil
	}
	return d.Time.UTC(), nil
}

func (t *Tagger) scopeStats(ctx context.Context, c *sql.Conn, m *sqlModel, lo time.Time, st *RunStats) error {
	q := `SELECT COALESCE(sum(copies), 0), count(*), COALESCE(sum(copies - 1), 0) FROM tp_ev`
	if err := c.QueryRowContext(ctx, q).Scan(&st.Rows, &st.Events, &st.Duplicates); err != nil {
		return fmt.Errorf("cannot count events: %w", err)
	}
	rows, err := c.QueryContext(ctx, "SELECT action, count(*) FROM tp_ev WHERE aw IS NULL GROUP BY action")
	if err != nil {
		return fmt.Errorf("cannot count unknown actions: %w", err)
	}
	for rows.Next() {
		var a string
		var n int64
		if err := rows.Scan(&a, &n); err != nil {
			rows.Close()
			return fmt.Errorf("cannot count unknown actions: %w", err)
		}
		st.UnknownActions[a] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot count unknown actions: %w", err)
	}
	q = fmt.Sprintf(`SELECT count(*) FROM tp_ev e WHERE e.aw IS NOT NULL %s %s`,
		ifElse(m.itemTags != "", "AND NOT EXISTS (SELECT 1 FROM tp_item_tags t WHERE t.item_id = e.item_id)", ""),
		ifElse(m.hasCat, fmt.Sprintf("AND (e.category IS NULL OR e.category IN (%s))", m.ignoreList()), ""))
	if err := c.QueryRowContext(ctx, q).Scan(&st.UntaggedEvents); err != nil {
		return fmt.Errorf("cannot count untagged events: %w", err)
	}
	q = fmt.Sprintf("SELECT count(*) FROM %s WHERE event_time >= %s", TableEvents, tsLit(m.end()))
	if err := c.QueryRowContext(ctx, q).Scan(&st.FutureEvents); err != nil {
		return fmt.Errorf("cannot count future events: %w", err)
	}
	where := fmt.Sprintf("event_time < %s", tsLit(m.end()))
	if !lo.IsZero() {
		where += fmt.Sprintf(" AND event_time >= %s", tsLit(lo))
	}
	q = fmt.Sprintf("SELECT count(*) FROM %s WHERE %s AND (user_id IS NULL OR item_id IS NULL OR action IS NULL)", TableEvents, where)
	if err := c.QueryRowContext(ctx, q).Scan(&st.InvalidRows); err != nil {
		return fmt.Errorf("cannot count invalid events: %w", err)
	}
	return nil
}

func ifElse(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}
