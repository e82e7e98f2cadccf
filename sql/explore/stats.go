package explore

import (
	"context"
	dbsql "database/sql"
	"fmt"
	"math"
	"strings"
	"time"

	tsql "github.com/tagpipe/tagpipe/sql"
)

var numericTypes = map[string]bool{"TINYINT": true, "SMALLINT": true, "INTEGER": true, "BIGINT": true, "HUGEINT": true,
	"UTINYINT": true, "USMALLINT": true, "UINTEGER": true, "UBIGINT": true, "FLOAT": true, "DOUBLE": true, "DECIMAL": true}

// summarize fills the row count, the column profiles, the time and the user statistics
// from the table "data".
func summarize(ctx context.Context, conn *dbsql.Conn, p *Profile, opts *Options) error {
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM data").Scan(&p.Rows); err != nil {
		return fmt.Errorf("cannot count rows: %w", err)
	}
	if p.Kind != "csv" && p.Kind != "jsonl" {
		p.Lines = p.Rows
	}
	rows, err := conn.QueryContext(ctx, "SELECT * REPLACE (null_percentage::VARCHAR AS null_percentage) FROM (SUMMARIZE data)")
	if err != nil {
		return fmt.Errorf("cannot summarize: %w", err)
	}
	for rows.Next() {
		var c Column
		var nullPct *string
		if err := rows.Scan(&c.Name, &c.Type, &c.Min, &c.Max, &c.ApproxUnique, &c.Avg, &c.Std, &c.Q25, &c.Q50, &c.Q75,
			&c.Count, &nullPct); err != nil {
			rows.Close()
			return fmt.Errorf("cannot read SUMMARIZE: %w", err)
		}
		if nullPct != nil {
			c.NullPercentage = *nullPct
		}
		p.Columns = append(p.Columns, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(p.Columns) == 0 {
		return nil
	}
	// Exact nulls and distinct counts in one pass.
	var sel []string
	for _, c := range p.Columns {
		q := tsql.QuoteIdent(c.Name)
		sel = append(sel, "count(*) - count("+q+")", "count(DISTINCT "+q+")")
	}
	vals := make([]int64, len(sel))
	ptrs := make([]any, len(sel))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := conn.QueryRowContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM data").Scan(ptrs...); err != nil {
		return fmt.Errorf("cannot count nulls and distinct values: %w", err)
	}
	for i := range p.Columns {
		p.Columns[i].Nulls, p.Columns[i].Distinct = vals[2*i], vals[2*i+1]
	}
	for i := range p.Columns {
		c := &p.Columns[i]
		q := tsql.QuoteIdent(c.Name)
		top, err := conn.QueryContext(ctx, fmt.Sprintf(`SELECT CAST(%s AS VARCHAR) AS v, count(*) AS n FROM data
			WHERE %s IS NOT NULL GROUP BY v ORDER BY n DESC, v LIMIT %d`, q, q, opts.Top))
		if err != nil {
			return fmt.Errorf("cannot find top values of %q: %w", c.Name, err)
		}
		for top.Next() {
			var vc ValueCount
			if err := top.Scan(&vc.Value, &vc.Count); err != nil {
				top.Close()
				return err
			}
			c.Top = append(c.Top, vc)
		}
		top.Close()
		if numericTypes[tsql.BaseType(c.Type)] {
			h, err := histogram(ctx, conn, "CAST("+q+" AS DOUBLE)", "data", opts.Bins)
			if err != nil {
				return fmt.Errorf("cannot build the histogram of %q: %w", c.Name, err)
			}
			c.Histogram = h
		}
	}
	if err := timeStats(ctx, conn, p, opts); err != nil {
		return err
	}
	return userStats(ctx, conn, p, opts)
}

// histogram counts expr in equal-width bins over [min, max].
func histogram(ctx context.Context, conn *dbsql.Conn, expr, from string, bins int) ([]Bin, error) {
	var lo, hi dbsql.NullFloat64
	if err := conn.QueryRowContext(ctx, "SELECT min("+expr+"), max("+expr+") FROM "+from).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	if !lo.Valid || math.IsInf(lo.Float64, 0) || math.IsInf(hi.Float64, 0) || math.IsNaN(lo.Float64) || math.IsNaN(hi.Float64) {
		return nil, nil
	}
	if lo.Float64 == hi.Float64 {
		var n int64
		err := conn.QueryRowContext(ctx, "SELECT count("+expr+") FROM "+from).Scan(&n)
		return []Bin{{Lo: lo.Float64, Hi: hi.Float64, Count: n}}, err
	}
	width := (hi.Float64 - lo.Float64) / float64(bins)
	rows, err := conn.QueryContext(ctx, fmt.Sprintf(`SELECT least(floor((%s - %v) / %v)::BIGINT, %d) AS b, count(*)
		FROM %s WHERE %s IS NOT NULL GROUP BY b ORDER BY b`, expr, lo.Float64, width, bins-1, from, expr))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]Bin, bins)
	for i := range out {
		out[i] = Bin{Lo: lo.Float64 + float64(i)*width, Hi: lo.Float64 + float64(i+1)*width}
	}
	out[bins-1].Hi = hi.Float64
	for rows.Next() {
		var b, n int64
		if err := rows.Scan(&b, &n); err != nil {
			return nil, err
		}
		out[b].Count = n
	}
	return out, rows.Err()
}

var timeNames = []string{"event_time", "timestamp", "ts", "time", "event_ts", "datetime", "created_at", "date", "dt"}
var userNames = []string{"user_id", "userid", "uid", "user", "visitor_id", "member_id"}

func findColumn(p *Profile, names []string, ok func(Column) bool) *Column {
	for _, n := range names {
		for i := range p.Columns {
			if strings.EqualFold(p.Columns[i].Name, n) && ok(p.Columns[i]) {
				return &p.Columns[i]
			}
		}
	}
	return nil
}

func named(p *Profile, name string) *Column {
	for i := range p.Columns {
		if p.Columns[i].Name == name {
			return &p.Columns[i]
		}
	}
	return nil
}

// timeStats finds the event time and counts events per day (UTC).
func timeStats(ctx context.Context, conn *dbsql.Conn, p *Profile, opts *Options) error {
	isTime := func(c Column) bool {
		b := tsql.BaseType(c.Type)
		return b == "DATE" || strings.HasPrefix(b, "TIMESTAMP")
	}
	isInt := func(c Column) bool {
		b := tsql.BaseType(c.Type)
		return b == "BIGINT" || b == "INTEGER" || b == "UBIGINT" || b == "UINTEGER"
	}
	var col *Column
	if opts.TimeColumn != "" {
		if col = named(p, opts.TimeColumn); col == nil {
			return fmt.Errorf("no column %q for --time-column", opts.TimeColumn)
		}
	} else {
		for i := range p.Columns {
			if isTime(p.Columns[i]) {
				col = &p.Columns[i]
				break
			}
		}
		if col == nil {
			col = findColumn(p, timeNames, isInt)
		}
	}
	if col == nil || col.Max == nil {
		return nil
	}
	q := tsql.QuoteIdent(col.Name)
	ts := &TimeStats{Column: col.Name}
	var expr string
	switch {
	case isTime(*col):
		ts.Unit, expr = strings.ToLower(tsql.BaseType(col.Type)), "CAST("+q+" AS TIMESTAMP)"
	case isInt(*col):
		var max float64
		fmt.Sscan(*col.Max, &max)
		switch {
		case max < 1e11:
			ts.Unit, expr = "unix_s", "make_timestamp("+q+" * 1000000)"
		case max < 1e14:
			ts.Unit, expr = "unix_ms", "make_timestamp("+q+" * 1000)"
		default:
			ts.Unit, expr = "unix_us", "make_timestamp("+q+")"
		}
	default:
		return fmt.Errorf("column %q (%s) is not a time", col.Name, col.Type)
	}
	var lo, hi time.Time
	if err := conn.QueryRowContext(ctx, "SELECT min("+expr+"), max("+expr+") FROM data").Scan(&lo, &hi); err != nil {
		return fmt.Errorf("cannot read the time range of %q: %w", col.Name, err)
	}
	ts.Min, ts.Max = lo.UTC(), hi.UTC()
	rows, err := conn.QueryContext(ctx, "SELECT strftime(CAST("+expr+" AS DATE), '%Y-%m-%d') AS d, count(*) FROM data WHERE "+q+" IS NOT NULL GROUP BY d ORDER BY d")
	if err != nil {
		return fmt.Errorf("cannot count events per day: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var dc DayCount
		if err := rows.Scan(&dc.Day, &dc.Count); err != nil {
			return err
		}
		ts.PerDay = append(ts.PerDay, dc)
	}
	ts.Days = len(ts.PerDay)
	p.Time = ts
	return rows.Err()
}

// userStats is the distribution of events per user, binned by powers of two.
func userStats(ctx context.Context, conn *dbsql.Conn, p *Profile, opts *Options) error {
	var col *Column
	if opts.UserColumn != "" {
		if col = named(p, opts.UserColumn); col == nil {
			return fmt.Errorf("no column %q for --user-column", opts.UserColumn)
		}
	} else if col = findColumn(p, userNames, func(Column) bool { return true }); col == nil {
		return nil
	}
	q := tsql.QuoteIdent(col.Name)
	us := &UserStats{Column: col.Name}
	per := "(SELECT count(*) AS n FROM data WHERE " + q + " IS NOT NULL GROUP BY " + q + ")"
	var mean dbsql.NullFloat64
	var qs []float64
	row := conn.QueryRowContext(ctx, "SELECT count(*), coalesce(min(n), 0), coalesce(max(n), 0), avg(n), "+
		"quantile_cont(n, [0.25, 0.5, 0.75, 0.9, 0.99]) FROM "+per)
	var qlist []any
	if err := row.Scan(&us.Users, &us.Min, &us.Max, &mean, &qlist); err != nil {
		return fmt.Errorf("cannot compute events per user: %w", err)
	}
	if us.Users == 0 {
		return nil
	}
	for _, v := range qlist {
		f, _ := v.(float64)
		qs = append(qs, f)
	}
	if len(qs) == 5 {
		us.P25, us.Median, us.P75, us.P90, us.P99 = qs[0], qs[1], qs[2], qs[3], qs[4]
	}
	us.Mean = mean.Float64
	rows, err := conn.QueryContext(ctx, "SELECT floor(log2(n))::INTEGER AS b, count(*) FROM "+per+" GROUP BY b ORDER BY b")
	if err != nil {
		return fmt.Errorf("cannot bin events per user: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b int
		var n int64
		if err := rows.Scan(&b, &n); err != nil {
			return err
		}
		// Bars start at the smallest user's bin; empty bins in between stay as gaps.
		for len(us.Histogram) > 0 && us.Histogram[len(us.Histogram)-1].Hi < math.Pow(2, float64(b)) {
			lo := us.Histogram[len(us.Histogram)-1].Hi
			us.Histogram = append(us.Histogram, Bin{Lo: lo, Hi: lo * 2})
		}
		us.Histogram = append(us.Histogram, Bin{Lo: math.Pow(2, float64(b)), Hi: math.Pow(2, float64(b+1)), Count: n})
	}
	p.Users = us
	return rows.Err()
}
