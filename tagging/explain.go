package tagging

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrUnknownUser: the model has no events of the user up to ds.
var ErrUnknownUser = errors.New("no events for this user")

// Explanation is why a user has the tags they have on ds.
type Explanation struct {
	User string `json:"user_id"`
	DS   string `json:"dt"`
	// Events, FirstSeen, LastSeen, Activity come from the user's model state.
	Events    int64     `json:"events"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Activity  float64   `json:"activity_score"`
	// Attrs are the definition tags' values for ds (activity, rfm, …).
	Attrs map[string]string `json:"attrs"`
	Tags  []ExplainedTag    `json:"tags"`
}

// ExplainedTag is one output tag and the events that contributed most to it.
type ExplainedTag struct {
	Tag      string         `json:"tag"`
	Weight   float64        `json:"weight"`
	Rank     int            `json:"rank"`
	Score    float64        `json:"score"` // raw decayed sum before IDF and normalisation
	Events   int64          `json:"events"`
	LastSeen time.Time      `json:"last_seen"`
	Top      []Contribution `json:"top_events"`
}

// Contribution is one event's part of a tag's raw score as of the end of ds.
type Contribution struct {
	ItemID       string    `json:"item_id"`
	Action       string    `json:"action"`
	Value        *float64  `json:"value,omitempty"`
	EventTime    time.Time `json:"event_time"`
	Weight       float64   `json:"weight"`       // action weight before decay
	Contribution float64   `json:"contribution"` // weight · 2^(−age/half_life)
	Share        float64   `json:"share"`        // Contribution / Score
}

// Explain returns the user's interest tags on ds (the latest computed day when ds is
// empty) with the topK events that contributed most to each, recomputed from dwd_events
// with the model's own SQL.
func (t *Tagger) Explain(ctx context.Context, user, ds string, topK int) (*Explanation, error) {
	c, err := t.conn(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if ds == "" {
		var d sql.NullTime
		if ok, err := tableExists(ctx, c, TableUserState); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("cannot explain user %q: the model has not run yet", user)
		}
		if err := c.QueryRowContext(ctx, "SELECT max(dt) FROM "+TableUserState).Scan(&d); err != nil || !d.Valid {
			return nil, fmt.Errorf("cannot explain user %q: the model has not run yet", user)
		}
		ds = d.Time.UTC().Format("2006-01-02")
	}
	day, err := ParseDS(ds)
	if err != nil {
		return nil, err
	}
	ex := &Explanation{User: user, DS: ds, Attrs: map[string]string{}}
	q := fmt.Sprintf("SELECT events, first_seen, last_seen, activity FROM %s WHERE dt = %s AND user_id = ?", TableUserState, dateLit(day))
	err = c.QueryRowContext(ctx, q, user).Scan(&ex.Events, &ex.FirstSeen, &ex.LastSeen, &ex.Activity)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("cannot explain user %q on %s: %w", user, ds, ErrUnknownUser)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the state of user %q: %w", user, err)
	}
	if ok, err := tableExists(ctx, c, TableDefTags); err != nil {
		return nil, err
	} else if ok {
		rows, err := c.QueryContext(ctx, fmt.Sprintf("SELECT tag, value FROM %s WHERE dt = %s AND user_id = ? ORDER BY tag", TableDefTags, dateLit(day)), user)
		if err != nil {
			return nil, fmt.Errorf("cannot read definition tags of user %q: %w", user, err)
		}
		for rows.Next() {
			var k string
			var v sql.NullString
			if err := rows.Scan(&k, &v); err != nil {
				rows.Close()
				return nil, err
			}
			ex.Attrs[k] = v.String
		}
		rows.Close()
	}
	q = fmt.Sprintf("SELECT tag, weight, rank, score, events, last_seen FROM %s WHERE dt = %s AND user_id = ? ORDER BY rank", TableInterest, dateLit(day))
	rows, err := c.QueryContext(ctx, q, user)
	if err != nil {
		return nil, fmt.Errorf("cannot read tags of user %q: %w", user, err)
	}
	for rows.Next() {
		var et ExplainedTag
		if err := rows.Scan(&et.Tag, &et.Weight, &et.Rank, &et.Score, &et.Events, &et.LastSeen); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot read tags of user %q: %w", user, err)
		}
		ex.Tags = append(ex.Tags, et)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ex.Tags) == 0 || topK <= 0 {
		return ex, nil
	}
	m, err := t.prepare(ctx, c, day)
	if err != nil {
		return nil, err
	}
	m.user = user
	defer c.ExecContext(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS tp_item_tags") //nolint:errcheck // best effort
	q = fmt.Sprintf(`WITH tp_ev AS (%s), et AS (SELECT item_id, action, value, event_time, aw, tag,
  aw * pow(2.0, -age_us / %s) AS contribution FROM (%s))
SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY tag ORDER BY abs(contribution) DESC, event_time DESC, item_id) AS k FROM et) WHERE k <= %d`,
		m.eventsSQL(time.Time{}), m.halfLifeUS(), m.eventTagsSQL(), topK)
	rows, err = c.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("cannot find the events behind user %q's tags: %w", user, err)
	}
	defer rows.Close()
	byTag := map[string]*ExplainedTag{}
	for i := range ex.Tags {
		byTag[ex.Tags[i].Tag] = &ex.Tags[i]
	}
	for rows.Next() {
		var cb Contribution
		var tag string
		var k int64
		if err := rows.Scan(&cb.ItemID, &cb.Action, &cb.Value, &cb.EventTime, &cb.Weight, &tag, &cb.Contribution, &k); err != nil {
			return nil, fmt.Errorf("cannot read contributions: %w", err)
		}
		if et := byTag[tag]; et != nil {
			if et.Score != 0 {
				cb.Share = cb.Contribution / et.Score
			}
			et.Top = append(et.Top, cb)
		}
	}
	return ex, rows.Err()
}
