package tagging

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/segmentio/kafka-go"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// Validate checks the audience's name, schedule and expression.
func (a *Audience) Validate() error {
	if !tagName.MatchString(a.Name) {
		return fmt.Errorf("audience name %q: want lower-case letters, digits and _, starting with a letter", a.Name)
	}
	if a.Schedule != "" {
		if _, err := cron.ParseStandard(a.Schedule); err != nil {
			return fmt.Errorf("audience %q: bad schedule %q: %w", a.Name, a.Schedule, err)
		}
	}
	if _, err := ParseExpression(a.Expression); err != nil {
		return fmt.Errorf("audience %q: bad expression %q: %w", a.Name, a.Expression, err)
	}
	return nil
}

// audienceSQL selects the users of ds's profile for whom the expression holds.
func audienceSQL(ctx context.Context, c *sql.Conn, a *Audience, day time.Time) (string, error) {
	e, err := ParseExpression(a.Expression)
	if err != nil {
		return "", fmt.Errorf("audience %q: bad expression %q: %w", a.Name, a.Expression, err)
	}
	interest, defs := map[string]bool{}, map[string]bool{}
	e.refs(interest, defs)
	if ok, err := tableExists(ctx, c, TableProfile); err != nil {
		return "", err
	} else if !ok {
		return "", fmt.Errorf("audience %q: the model has not run (no %s)", a.Name, TableProfile)
	}
	var n int64
	if err := c.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE dt = %s", TableProfile, dateLit(day))).Scan(&n); err != nil {
		return "", fmt.Errorf("audience %q: %w", a.Name, err)
	}
	if n == 0 {
		return "", fmt.Errorf("audience %q: no profiles for %s: run the model for that day first", a.Name, day.Format("2006-01-02"))
	}
	if len(defs) > 0 {
		ok, err := tableExists(ctx, c, TableDefTags)
		if err != nil {
			return "", err
		}
		for _, d := range sortedKeys(defs) {
			var rows int64
			if ok {
				q := fmt.Sprintf("SELECT count(*) FROM %s WHERE dt = %s AND tag = %s", TableDefTags, dateLit(day), lit(d))
				if err := c.QueryRowContext(ctx, q).Scan(&rows); err != nil {
					return "", fmt.Errorf("audience %q: %w", a.Name, err)
				}
			}
			if rows == 0 {
				return "", fmt.Errorf("audience %q: tag %q has no values for %s (has its definition run?)", a.Name, d, day.Format("2006-01-02"))
			}
		}
	}
	icol, dcol := map[string]string{}, map[string]string{}
	joins := ""
	for i, name := range sortedKeys(interest) {
		alias := fmt.Sprintf("i%d", i)
		icol[name] = "COALESCE(" + alias + ".weight, 0.0)"
		joins += fmt.Sprintf("\nLEFT JOIN (SELECT user_id, weight FROM %s WHERE dt = %s AND tag = %s) %s ON %s.user_id = p.user_id",
			TableInterest, dateLit(day), lit(name), alias, alias)
	}
	for i, name := range sortedKeys(defs) {
		alias := fmt.Sprintf("d%d", i)
		dcol[name] = alias + ".value"
		joins += fmt.Sprintf("\nLEFT JOIN (SELECT user_id, value FROM %s WHERE dt = %s AND tag = %s) %s ON %s.user_id = p.user_id",
			TableDefTags, dateLit(day), lit(name), alias, alias)
	}
	return fmt.Sprintf("SELECT %s AS dt, %s AS audience, p.user_id FROM %s p%s\nWHERE p.dt = %s AND %s",
		dateLit(day), lit(a.Name), TableProfile, joins, dateLit(day), e.sql(icol, dcol)), nil
}

// RunAudience materialises the audience for ds into ads_audiences (partition dt ×
// audience), records the run in sys_audience_runs and returns its size.
//
// The members and the run are two commits (the warehouse commits one table at a
// time), members first, then the run. Whatever a crash between them leaves, a reader
// (AudienceMembers) exports a day without members only when it was committed empty:
//   - a run is recorded only after its members are committed, so a run with members = 0
//     means an empty partition was committed for that day;
//   - members committed without their run are evidence of their own: a day with rows is
//     materialised; a day left with neither rows nor a run reads as never materialised
//     (and is refused until re-run);
//   - a re-run that empties a day and stops before recording leaves the earlier run
//     (members > 0) over an empty partition: that reads as "members gone" and is
//     refused, as is a day whose partition retention dropped.
//
// Concurrent runs of one audience and day interleave the same way and stay safe.
func (t *Tagger) RunAudience(ctx context.Context, a *Audience, ds string) (int64, error) {
	day, err := ParseDS(ds)
	if err != nil {
		return 0, err
	}
	c, err := t.conn(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	q, err := audienceSQL(ctx, c, a, day)
	if err != nil {
		return 0, err
	}
	part := []KV{{"dt", ds}, {"audience", a.Name}}
	if err := t.store.Replace(ctx, c, TableAudiences, part, q); err != nil {
		return 0, fmt.Errorf("audience %q: %w", a.Name, err)
	}
	// Unlike the catalog, the run is part of the materialisation (without it an empty
	// day cannot be exported), so failing to record it fails the run; the members are
	// committed and a retry rewrites both. Once the members are committed, a cancelled
	// run still records them.
	rec := context.WithoutCancel(ctx)
	var n int64
	q = fmt.Sprintf("SELECT count(*) FROM %s WHERE dt = %s AND audience = %s", TableAudiences, dateLit(day), lit(a.Name))
	if err := c.QueryRowContext(rec, q).Scan(&n); err != nil {
		return 0, fmt.Errorf("audience %q: %w", a.Name, err)
	}
	now := t.opts.Now().UTC()
	q = fmt.Sprintf("SELECT %s AS dt, %s AS audience, CAST(%d AS BIGINT) AS members, %s AS run_at", dateLit(day), lit(a.Name), n, tsLit(now))
	if err := t.store.Replace(rec, c, TableAudRuns, part, q); err != nil {
		return 0, fmt.Errorf("audience %q: its members are written but the run cannot be recorded: %w", a.Name, err)
	}
	t.upsertCatalog(ctx, c, CatalogEntry{Name: a.Name, Kind: "audience", Type: "rule", Description: a.Description, Owner: a.Owner,
		Schedule: a.Schedule, File: a.File, SQL: a.Expression, Reads: []string{TableProfile, TableInterest, TableDefTags},
		Writes: []string{TableAudiences, TableAudRuns}, LastDS: ds, LastStatus: "ok", LastRows: n, LastRunAt: now})
	t.log.Info("audience run", "audience", a.Name, "ds", ds, "users", n)
	return n, nil
}

// AudienceMembers lists the materialised members of an audience on ds, sorted.
func (t *Tagger) AudienceMembers(ctx context.Context, name, ds string) ([]string, error) {
	day, err := ParseDS(ds)
	if err != nil {
		return nil, err
	}
	c, err := t.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if ok, err := tableExists(ctx, c, TableAudiences); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("audience %q: never materialised: %w", name, ErrNotMaterialised)
	}
	users, err := queryUsers(ctx, c, name, fmt.Sprintf("SELECT user_id FROM %s WHERE dt = %s AND audience = %s ORDER BY user_id",
		TableAudiences, dateLit(day), lit(name)))
	if err != nil || len(users) > 0 {
		return users, err
	}
	// No members: an audience that is empty on ds, or one never materialised for ds. Only
	// the first may be exported: the second would send a tombstone for every member of
	// the earlier days. The run recorded for ds tells them apart.
	members, ok, err := audienceRun(ctx, c, name, day)
	if err != nil {
		return nil, err
	}
	switch {
	case ok && members == 0:
		return nil, nil
	case ok:
		return nil, fmt.Errorf("audience %q: materialised for %s with %d members, but %s has none for that day (dropped by retention, or a re-run did not finish): %w",
			name, ds, members, TableAudiences, ErrNotMaterialised)
	}
	var last sql.NullString
	if ok, err := tableExists(ctx, c, TableCatalog); err != nil {
		return nil, err
	} else if ok {
		q := fmt.Sprintf("SELECT max(last_ds) FROM %s WHERE name = %s AND kind = 'audience' AND last_status = 'ok'", TableCatalog, lit(name))
		if err := c.QueryRowContext(ctx, q).Scan(&last); err != nil {
			return nil, fmt.Errorf("audience %q: %w", name, err)
		}
	}
	if !last.Valid {
		return nil, fmt.Errorf("audience %q: not materialised for %s (never run): %w", name, ds, ErrNotMaterialised)
	}
	return nil, fmt.Errorf("audience %q: not materialised for %s (its last run was for %s): %w", name, ds, last.String, ErrNotMaterialised)
}

// audienceRun looks up the materialisation of the audience for day: the member count
// it committed, and whether there is one. sys_audience_runs answers for every day run
// since it exists. A warehouse written before it (or a day run before it) has only the
// catalog, which keeps the audience's last run alone: that day is answered from it
// and any other day has no run. A run's record is written before its catalog entry,
// so where both exist they agree.
func audienceRun(ctx context.Context, c *sql.Conn, name string, day time.Time) (members int64, ok bool, err error) {
	for _, src := range []struct{ table, query string }{
		{TableAudRuns, fmt.Sprintf("SELECT members FROM %s WHERE dt = %s AND audience = %s ORDER BY run_at DESC LIMIT 1",
			TableAudRuns, dateLit(day), lit(name))},
		{TableCatalog, fmt.Sprintf("SELECT last_rows FROM %s WHERE name = %s AND kind = 'audience' AND last_status = 'ok' AND last_ds = %s LIMIT 1",
			TableCatalog, lit(name), lit(day.Format("2006-01-02")))},
	} {
		exists, err := tableExists(ctx, c, src.table)
		if err != nil {
			return 0, false, err
		}
		if !exists {
			continue
		}
		switch err := c.QueryRowContext(ctx, src.query).Scan(&members); {
		case err == nil:
			return members, true, nil
		case !errors.Is(err, sql.ErrNoRows):
			return 0, false, fmt.Errorf("audience %q: %w", name, err)
		}
	}
	return 0, false, nil
}

// ErrNotMaterialised: the audience has no materialisation for the day asked for (the
// tag job or the audience has not run for it).
var ErrNotMaterialised = errors.New("run the tag job (or the audience) for that day first")

// AudienceLeavers returns, sorted, the users of the audience's materialisations before
// ds who are not members on ds, and the first day it was materialised ("" when never
// before ds): the keys to delete from a compacted topic that holds the audience. Every
// earlier day counts, not only the latest, so a day materialised but never exported
// leaves no stale member behind; a tombstone for a key already deleted is harmless.
// Only materialised days have rows, so a day never run adds no one and an empty day
// keeps everyone before it a leaver; the first day counts runs that were empty too.
func (t *Tagger) AudienceLeavers(ctx context.Context, name, ds string) (since string, leavers []string, err error) {
	day, err := ParseDS(ds)
	if err != nil {
		return "", nil, err
	}
	c, err := t.conn(ctx)
	if err != nil {
		return "", nil, err
	}
	defer c.Close()
	var days []string
	hasMembers := false
	for _, table := range []string{TableAudiences, TableAudRuns} {
		ok, err := tableExists(ctx, c, table)
		if err != nil {
			return "", nil, err
		}
		if ok {
			hasMembers = hasMembers || table == TableAudiences
			days = append(days, fmt.Sprintf("SELECT min(dt) AS dt FROM %s WHERE audience = %s AND dt < %s", table, lit(name), dateLit(day)))
		}
	}
	if len(days) == 0 {
		return "", nil, nil
	}
	var first sql.NullString
	q := fmt.Sprintf("SELECT CAST(min(dt) AS VARCHAR) FROM (%s)", strings.Join(days, " UNION ALL "))
	if err := c.QueryRowContext(ctx, q).Scan(&first); err != nil {
		return "", nil, fmt.Errorf("audience %q: %w", name, err)
	}
	if !first.Valid || !hasMembers {
		return first.String, nil, nil
	}
	leavers, err = queryUsers(ctx, c, name, fmt.Sprintf(
		"SELECT user_id FROM %[1]s WHERE dt < %[2]s AND audience = %[3]s EXCEPT SELECT user_id FROM %[1]s WHERE dt = %[2]s AND audience = %[3]s ORDER BY 1",
		TableAudiences, dateLit(day), lit(name)))
	return first.String, leavers, err
}

// queryUsers runs q, a query of user ids, and returns them in its order.
func queryUsers(ctx context.Context, c *sql.Conn, audience, q string) ([]string, error) {
	rows, err := c.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("audience %q: %w", audience, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// ExportCSV writes the members as CSV (header audience,dt,user_id) to w.
func ExportCSV(w io.Writer, audience, ds string, users []string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"audience", "dt", "user_id"}); err != nil {
		return err
	}
	for _, u := range users {
		if err := cw.Write([]string{audience, ds, u}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ExportCSVFile writes the CSV to path atomically (temp file, fsync, rename).
func ExportCSVFile(path, audience, ds string, users []string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".audience-*.csv")
	if err != nil {
		return fmt.Errorf("cannot export audience %q: %w", audience, err)
	}
	defer os.Remove(tmp.Name())
	if err := ExportCSV(tmp, audience, ds, users); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot export audience %q: %w", audience, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot export audience %q: %w", audience, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot export audience %q: %w", audience, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cannot export audience %q: %w", audience, err)
	}
	return nil
}

// AudienceRecord is the JSON value of one exported member on Kafka (key: user_id).
type AudienceRecord struct {
	Audience string `json:"audience"`
	DT       string `json:"dt"`
	UserID   string `json:"user_id"`
}

// ExportKafka produces one record per member to topic (key user_id, value an
// AudienceRecord) and then a tombstone (key user_id, null value) per user in leavers,
// with acks=all, through any Kafka cluster (the built-in broker or a real one). On a
// compacted topic of its own (cleanup.policy=compact), the newest record per key is the
// audience: members' records stay, leavers' go.
// security is TLS and SASL for the brokers (nil: PLAINTEXT).
func ExportKafka(ctx context.Context, brokers []string, security *kafkasec.Security, topic, audience, ds string, users, leavers []string) error {
	if len(brokers) == 0 || topic == "" {
		return errors.New("cannot export to Kafka: brokers and topic are required")
	}
	// A private transport, so its connections close with the export (the default one is
	// shared by the process and keeps them).
	tr := security.Transport(&kafka.Transport{})
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Transport:              tr,
		Addr:                   kafka.TCP(brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		AllowAutoTopicCreation: true,
		BatchSize:              1000,
		BatchTimeout:           10 * time.Millisecond,
	}
	defer w.Close()
	sorted := append([]string(nil), users...)
	sort.Strings(sorted)
	gone := append([]string(nil), leavers...)
	sort.Strings(gone)
	sorted = append(sorted, gone...) // members first, then the tombstones
	const chunk = 1000
	for i := 0; i < len(sorted); i += chunk {
		j := min(i+chunk, len(sorted))
		msgs := make([]kafka.Message, 0, j-i)
		for k, u := range sorted[i:j] {
			if i+k >= len(users) {
				msgs = append(msgs, kafka.Message{Key: []byte(u)}) // no value: a tombstone
				continue
			}
			v, err := json.Marshal(AudienceRecord{Audience: audience, DT: ds, UserID: u})
			if err != nil {
				return err
			}
			msgs = append(msgs, kafka.Message{Key: []byte(u), Value: v})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("cannot export audience %q to topic %q: %w", audience, topic, err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("cannot export audience %q to topic %q: %w", audience, topic, err)
	}
	return nil
}
