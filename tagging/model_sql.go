package tagging

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The model's SQL. Everything the model computes is in these statements, written in the
// SQL subset DuckDB, Spark SQL and Trino share where practical (pow, date_diff, window
// functions); the Go code around them only chooses partitions and moves rows.
//
// Time: ds is a UTC day. The model is evaluated at the end of ds (ds+1 00:00 UTC), so an
// event's age is end(ds) − event_time, in days, fractional. An event belongs to the run of
// the day its event_time falls in: the full run of ds reads every event before end(ds);
// an incremental run reads [end(prev), end(ds)) and decays the prev state by
// 2^(−(ds−prev)/half_life), which is exactly the full sum regrouped.

const dayUS = 86400e6

// sqlModel holds one run's parameters as SQL literals.
type sqlModel struct {
	o        *Options
	ds       time.Time
	hasValue bool   // dwd_events has a value column
	hasCat   bool   // dwd_events has a category column
	itemTags string // SELECT item_id, tag … (empty: no dim_item)
	user     string // non-empty: only this user's events (explanations)
}

func flt(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return "CAST(" + s + " AS DOUBLE)"
}

func tsLit(t time.Time) string { return "TIMESTAMP '" + t.UTC().Format("2006-01-02 15:04:05") + "'" }

func dateLit(t time.Time) string { return "DATE '" + t.Format("2006-01-02") + "'" }

func (m *sqlModel) end() time.Time { return m.ds.AddDate(0, 0, 1) }

// halfLifeUS is the half-life in microseconds, the unit of ages.
func (m *sqlModel) halfLifeUS() string { return flt(m.o.HalfLifeDays * dayUS) }

// actionWeight is the weight of one event, NULL for an action the model does not know.
func (m *sqlModel) actionWeight() string {
	var b strings.Builder
	b.WriteString("CASE action")
	for _, a := range sortedKeys(m.o.ActionExpressions) {
		fmt.Fprintf(&b, " WHEN %s THEN COALESCE(CAST((%s) AS DOUBLE), 0.0)", lit(a), m.o.ActionExpressions[a])
	}
	for _, a := range sortedKeys(m.o.ActionWeights) {
		if _, ok := m.o.ActionExpressions[a]; ok {
			continue
		}
		fmt.Fprintf(&b, " WHEN %s THEN %s", lit(a), flt(m.o.ActionWeights[a]))
	}
	b.WriteString(" END")
	return b.String()
}

func (m *sqlModel) ignoreList() string {
	if len(m.o.IgnoreTags) == 0 {
		return "''"
	}
	var q []string
	for _, t := range m.o.IgnoreTags {
		q = append(q, lit(t))
	}
	return "'', " + strings.Join(q, ", ")
}

// itemTagsSQL reads dim_item's tags: a list<string> column or a '|'-separated string, plus
// category.
func itemTagsSQL(cols map[string]string, ignore string) string {
	var parts []string
	if t, ok := cols["tags"]; ok {
		if strings.HasSuffix(t, "[]") {
			parts = append(parts, fmt.Sprintf("SELECT CAST(item_id AS VARCHAR) AS item_id, CAST(unnest(tags) AS VARCHAR) AS tag FROM %s", TableItems))
		} else {
			parts = append(parts, fmt.Sprintf("SELECT CAST(item_id AS VARCHAR) AS item_id, unnest(string_split(CAST(tags AS VARCHAR), '|')) AS tag FROM %s", TableItems))
		}
	}
	if _, ok := cols["category"]; ok {
		parts = append(parts, fmt.Sprintf("SELECT CAST(item_id AS VARCHAR) AS item_id, CAST(category AS VARCHAR) AS tag FROM %s", TableItems))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("SELECT DISTINCT item_id, tag FROM (%s) WHERE tag IS NOT NULL AND tag NOT IN (%s)", strings.Join(parts, " UNION ALL "), ignore)
}

// eventsSQL selects the scope's events, deduplicated: rows equal in every model column
// are one event, `copies` counts them. lo may be zero (from the beginning).
func (m *sqlModel) eventsSQL(lo time.Time) string {
	cols := "CAST(user_id AS VARCHAR) AS user_id, CAST(item_id AS VARCHAR) AS item_id, CAST(action AS VARCHAR) AS action, CAST(event_time AS TIMESTAMP) AS event_time"
	if m.hasValue {
		cols += ", CAST(value AS DOUBLE) AS value"
	} else {
		cols += ", CAST(NULL AS DOUBLE) AS value"
	}
	if m.hasCat {
		cols += ", CAST(category AS VARCHAR) AS category"
	} else {
		cols += ", CAST(NULL AS VARCHAR) AS category"
	}
	where := fmt.Sprintf("event_time < %s AND user_id IS NOT NULL AND item_id IS NOT NULL AND action IS NOT NULL", tsLit(m.end()))
	if !lo.IsZero() {
		where = fmt.Sprintf("event_time >= %s AND ", tsLit(lo)) + where
	}
	if m.user != "" {
		where += " AND CAST(user_id AS VARCHAR) = " + lit(m.user)
	}
	return fmt.Sprintf(`SELECT *, %s AS aw, CAST(date_diff('microsecond', event_time, %s) AS DOUBLE) AS age_us
FROM (SELECT %s, count(*) AS copies FROM %s WHERE %s GROUP BY ALL)`,
		m.actionWeight(), tsLit(m.end()), cols, TableEvents, where)
}

// eventTagsSQL pairs each weighted event (tp_ev) with each of its tags: its item's tags,
// and the category the event carries when the item does not already have it.
func (m *sqlModel) eventTagsSQL() string {
	var parts []string
	if m.itemTags != "" {
		parts = append(parts, "SELECT e.user_id, e.item_id, e.action, e.value, t.tag, e.aw, e.age_us, e.event_time FROM tp_ev e JOIN tp_item_tags t ON t.item_id = e.item_id WHERE e.aw IS NOT NULL")
	}
	if m.hasCat {
		anti := ""
		if m.itemTags != "" {
			anti = " AND NOT EXISTS (SELECT 1 FROM tp_item_tags t WHERE t.item_id = e.item_id AND t.tag = e.category)"
		}
		parts = append(parts, fmt.Sprintf("SELECT e.user_id, e.item_id, e.action, e.value, e.category AS tag, e.aw, e.age_us, e.event_time FROM tp_ev e WHERE e.aw IS NOT NULL AND e.category IS NOT NULL AND e.category NOT IN (%s)%s", m.ignoreList(), anti))
	}
	if len(parts) == 0 {
		return "SELECT CAST(NULL AS VARCHAR) AS user_id, CAST(NULL AS VARCHAR) AS item_id, CAST(NULL AS VARCHAR) AS action, CAST(NULL AS DOUBLE) AS value, CAST(NULL AS VARCHAR) AS tag, 0.0 AS aw, 0.0 AS age_us, CAST(NULL AS TIMESTAMP) AS event_time WHERE false"
	}
	return strings.Join(parts, " UNION ALL ")
}

// tagStateSQL is dws_user_tag_daily for ds: the previous state decayed by gap days plus
// the scope's contributions (prev zero: contributions alone, the full recompute).
func (m *sqlModel) tagStateSQL(prev time.Time, gapDays int) string {
	contrib := fmt.Sprintf(`SELECT user_id, tag, sum(aw * pow(2.0, -age_us / %s)) AS score, count(*) AS events,
  min(event_time) AS first_seen, max(event_time) AS last_seen
FROM (%s) GROUP BY user_id, tag`, m.halfLifeUS(), m.eventTagsSQL())
	if prev.IsZero() { // full: contributions are already one row per user × tag
		return fmt.Sprintf(`SELECT %s AS dt, user_id, tag, score, score AS day_score, CAST(events AS BIGINT) AS events,
  first_seen, last_seen, %s AS params FROM (%s)`, dateLit(m.ds), lit(m.o.fingerprint()), contrib)
	}
	// Incremental: a full outer join of yesterday's state with the new contributions on
	// (user, tag) — cheaper than aggregating their union.
	return fmt.Sprintf(`SELECT %[1]s AS dt, COALESCE(p.user_id, c.user_id) AS user_id, COALESCE(p.tag, c.tag) AS tag,
  COALESCE(p.score * pow(2.0, -%[2]s / %[3]s), 0.0) + COALESCE(c.score, 0.0) AS score, COALESCE(c.score, 0.0) AS day_score,
  CAST(COALESCE(p.events, 0) + COALESCE(c.events, 0) AS BIGINT) AS events,
  least(COALESCE(p.first_seen, c.first_seen), COALESCE(c.first_seen, p.first_seen)) AS first_seen,
  greatest(COALESCE(p.last_seen, c.last_seen), COALESCE(c.last_seen, p.last_seen)) AS last_seen, %[4]s AS params
FROM (SELECT user_id, tag, score, events, first_seen, last_seen FROM %[5]s WHERE dt = %[6]s) p
FULL OUTER JOIN (%[7]s) c ON c.user_id = p.user_id AND c.tag = p.tag`,
		dateLit(m.ds), flt(float64(gapDays)), flt(m.o.HalfLifeDays), lit(m.o.fingerprint()), TableTagState, dateLit(prev), contrib)
}

// userStateSQL is dws_user_daily for ds: per user, events with a known action (tagged or
// not), first/last seen, decayed activity, purchases and spend.
func (m *sqlModel) userStateSQL(prev time.Time, gapDays int, purchase []string) string {
	pa := "''"
	if len(purchase) > 0 {
		var q []string
		for _, p := range purchase {
			q = append(q, lit(p))
		}
		pa = strings.Join(q, ", ")
	}
	body := fmt.Sprintf(`SELECT user_id, count(*) AS events, min(event_time) AS first_seen, max(event_time) AS last_seen,
  sum(pow(2.0, -age_us / %s)) AS activity, count(*) FILTER (WHERE action IN (%s)) AS purchases,
  COALESCE(sum(value) FILTER (WHERE action IN (%s)), 0.0) AS spend
FROM tp_ev WHERE aw IS NOT NULL GROUP BY user_id`, m.halfLifeUS(), pa, pa)
	if prev.IsZero() { // full: one row per user already
		return fmt.Sprintf(`SELECT %s AS dt, user_id, CAST(events AS BIGINT) AS events, first_seen, last_seen, activity,
  CAST(purchases AS BIGINT) AS purchases, spend, %s AS params FROM (%s)`, dateLit(m.ds), lit(m.o.fingerprint()), body)
	}
	return fmt.Sprintf(`SELECT %[1]s AS dt, COALESCE(p.user_id, c.user_id) AS user_id,
  CAST(COALESCE(p.events, 0) + COALESCE(c.events, 0) AS BIGINT) AS events,
  least(COALESCE(p.first_seen, c.first_seen), COALESCE(c.first_seen, p.first_seen)) AS first_seen,
  greatest(COALESCE(p.last_seen, c.last_seen), COALESCE(c.last_seen, p.last_seen)) AS last_seen,
  COALESCE(p.activity * pow(2.0, -%[2]s / %[3]s), 0.0) + COALESCE(c.activity, 0.0) AS activity,
  CAST(COALESCE(p.purchases, 0) + COALESCE(c.purchases, 0) AS BIGINT) AS purchases,
  COALESCE(p.spend, 0.0) + COALESCE(c.spend, 0.0) AS spend, %[4]s AS params
FROM (SELECT user_id, events, first_seen, last_seen, activity, purchases, spend FROM %[5]s WHERE dt = %[6]s) p
FULL OUTER JOIN (%[7]s) c ON c.user_id = p.user_id`,
		dateLit(m.ds), flt(float64(gapDays)), flt(m.o.HalfLifeDays), lit(m.o.fingerprint()), TableUserState, dateLit(prev), body)
}

// interestSQL is ads_user_interest_tags for ds from the state: IDF, per-user
// normalisation, minimum weight and top-N are applied here, never to the state.
func (m *sqlModel) interestSQL() string {
	idf := "1.0"
	if m.o.IDF {
		idf = "ln((1.0 + n.n) / (1.0 + COALESCE(df.df, 0))) + 1.0"
	}
	// Normalising divides by a positive per-user constant, so ranking by raw is ranking
	// by weight, and tags below min_weight sort last: one window pass (one sort) gives
	// the denominator and the rank together.
	var denom string
	switch m.o.Normalize {
	case "max":
		denom = "max(abs(raw)) OVER u"
	case "sum":
		denom = "sum(CASE WHEN raw > 0 THEN raw ELSE 0.0 END) OVER u"
	default:
		denom = "1.0"
	}
	return fmt.Sprintf(`WITH s AS (SELECT user_id, tag, score, events, last_seen FROM %[1]s WHERE dt = %[2]s),
n AS (SELECT count(DISTINCT user_id) AS n FROM s),
df AS (SELECT tag, count(*) FILTER (WHERE score > 0) AS df FROM s GROUP BY tag),
w AS (SELECT s.user_id, s.tag, s.score, s.events, s.last_seen, (%[3]s) * s.score AS raw
      FROM s CROSS JOIN n LEFT JOIN df ON df.tag = s.tag),
r AS (SELECT *, raw / NULLIF(%[4]s, 0.0) AS weight, row_number() OVER u AS rank FROM w
      WINDOW u AS (PARTITION BY user_id ORDER BY raw DESC, tag ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))
SELECT %[2]s AS dt, user_id, tag, weight, CAST(rank AS INTEGER) AS rank, events, last_seen, score, raw
FROM r WHERE rank <= %[6]d AND weight >= %[5]s`, TableTagState, dateLit(m.ds), idf, denom, flt(m.o.MinWeight), m.o.TopN)
}
