package tagging

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// RunProfile rebuilds ads_user_profile for ds from the model's state and outputs and the
// definition tags that ran for ds. RunModel calls it; run it again after the definitions
// so the profile carries their values.
func (t *Tagger) RunProfile(ctx context.Context, ds string) error {
	day, err := ParseDS(ds)
	if err != nil {
		return err
	}
	c, err := t.conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return t.runProfile(ctx, c, day)
}

// profileSQL: one row per user known to the model as of ds. Columns activity and
// rfm_segment come from the definition tags named "activity" and "rfm" when they ran for
// ds; attrs holds every definition tag's value.
func profileSQL(day time.Time, hasDefs bool) string {
	defs := "SELECT CAST(NULL AS VARCHAR) AS user_id, CAST(NULL AS MAP(VARCHAR, VARCHAR)) AS attrs WHERE false"
	if hasDefs {
		defs = fmt.Sprintf(`SELECT user_id, map_from_entries(list(struct_pack(k := tag, v := value) ORDER BY tag)) AS attrs
FROM %s WHERE dt = %s GROUP BY user_id`, TableDefTags, dateLit(day))
	}
	return fmt.Sprintf(`WITH i AS (
  SELECT user_id, list(tag ORDER BY rank) AS top_tags, list(weight ORDER BY rank) AS top_weights
  FROM %[1]s WHERE dt = %[2]s GROUP BY user_id),
d AS (%[4]s)
SELECT %[2]s AS dt, u.user_id, i.top_tags[1] AS top_tag, COALESCE(i.top_tags, []) AS top_tags,
  COALESCE(i.top_weights, CAST([] AS DOUBLE[])) AS top_weights, u.events, u.first_seen, u.last_seen,
  u.activity AS activity_score, d.attrs['activity'] AS activity, u.purchases, u.spend,
  date_diff('day', CAST(u.last_seen AS DATE), %[2]s) AS recency_days, d.attrs['rfm'] AS rfm_segment,
  COALESCE(d.attrs, MAP()) AS attrs
FROM %[3]s u LEFT JOIN i ON i.user_id = u.user_id LEFT JOIN d ON d.user_id = u.user_id
WHERE u.dt = %[2]s`, TableInterest, dateLit(day), TableUserState, defs)
}

func (t *Tagger) runProfile(ctx context.Context, c *sql.Conn, day time.Time) error {
	hasDefs, err := tableExists(ctx, c, TableDefTags)
	if err != nil {
		return err
	}
	ok, err := tableExists(ctx, c, TableUserState)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("cannot build profiles for %s: the model has not run (no %s)", day.Format("2006-01-02"), TableUserState)
	}
	return t.store.Replace(ctx, c, TableProfile, []KV{{"dt", day.Format("2006-01-02")}}, profileSQL(day, hasDefs))
}
