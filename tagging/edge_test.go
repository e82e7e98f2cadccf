package tagging

import (
	"context"
	"errors"
	"math"
	"testing"
)

// edgeData is a small event set with one row per edge case (ds = 2024-05-10).
func edgeData(t *testing.T) *Tagger {
	db := openDuck(t)
	mustExec(t, db, `CREATE TABLE dim_item (item_id VARCHAR, category VARCHAR, tags VARCHAR[])`)
	mustExec(t, db, `INSERT INTO dim_item VALUES
  ('i1', NULL, ['A', 'B']),
  ('i2', NULL, ['A']),
  ('i3', NULL, []),                      -- an item with no tags
  ('i4', NULL, ['(no genres listed)']),  -- MovieLens' "no tags"
  ('i5', 'C', NULL)`)
	mustExec(t, db, `CREATE TABLE dwd_events (user_id VARCHAR, item_id VARCHAR, action VARCHAR, event_time TIMESTAMP, value DOUBLE)`)
	mustExec(t, db, `INSERT INTO dwd_events VALUES
  ('u1', 'i1', 'pv',   TIMESTAMP '2024-05-09 12:00:00', NULL),
  ('u1', 'i1', 'pv',   TIMESTAMP '2024-05-09 12:00:00', NULL),  -- duplicate of the row above
  ('u1', 'i2', 'fav',  TIMESTAMP '2024-05-10 08:00:00', NULL),
  ('u1', 'i3', 'buy',  TIMESTAMP '2024-05-10 09:00:00', 20.0),  -- item without tags
  ('u1', 'i9', 'pv',   TIMESTAMP '2024-05-10 09:30:00', NULL),  -- item not in dim_item
  ('u1', 'i5', 'cart', TIMESTAMP '2024-05-10 10:00:00', NULL),  -- category as the tag
  ('u2', 'i1', 'share', TIMESTAMP '2024-05-10 11:00:00', NULL), -- unknown action only
  ('u3', 'i1', 'buy',  TIMESTAMP '2024-05-20 00:00:00', NULL),  -- future timestamp
  ('u4', 'i4', 'pv',   TIMESTAMP '2024-05-08 00:00:00', NULL),  -- only untagged items
  ('u6', 'i2', 'rate', TIMESTAMP '2024-05-01 00:00:00', 1.0),   -- a low rating: negative
  (NULL, 'i1', 'pv',   TIMESTAMP '2024-05-10 00:00:00', NULL)   -- no user: invalid`)
	return newTagger(t, db, nil)
}

func TestEdgeCases(t *testing.T) {
	ctx := context.Background()
	tg := edgeData(t)
	st, err := tg.RunModel(ctx, "2024-05-10", true)
	if err != nil {
		t.Fatal(err)
	}
	// Duplicates are counted once; unknown actions, future events and rows without a
	// user are left out and counted; events on items without tags count for activity only.
	if st.Duplicates != 1 || st.UnknownActions["share"] != 1 || st.FutureEvents != 1 || st.InvalidRows != 1 || st.UntaggedEvents != 3 {
		t.Fatalf("stats: %+v", st)
	}
	if st.Events != 8 {
		t.Fatalf("distinct events in scope: got %d, want 8", st.Events)
	}

	// u1: A from pv(i1) and fav(i2), B from pv(i1), C from the cart on i5; the duplicate
	// pv is one event.
	ex, err := tg.Explain(ctx, "u1", "2024-05-10", 5)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Events != 5 {
		t.Errorf("u1 events (known actions, tagged or not): got %d, want 5", ex.Events)
	}
	got := map[string]ExplainedTag{}
	for _, et := range ex.Tags {
		got[et.Tag] = et
	}
	if got["A"].Events != 2 || got["B"].Events != 1 || got["C"].Events != 1 || len(got) != 3 {
		t.Fatalf("u1 tags: %+v", ex.Tags)
	}
	decay := func(hours float64) float64 { return math.Pow(2, -hours/24/30) }
	wantA := 1*decay(36) + 3*decay(16)
	if math.Abs(got["A"].Score-wantA) > 1e-12 {
		t.Errorf("u1 A score: got %.15f, want %.15f", got["A"].Score, wantA)
	}
	if len(got["A"].Top) != 2 || got["A"].Top[0].ItemID != "i2" || math.Abs(got["A"].Top[0].Contribution-3*decay(16)) > 1e-12 {
		t.Errorf("u1 A top events: %+v", got["A"].Top)
	}
	var share float64
	for _, c := range got["A"].Top {
		share += c.Share
	}
	if math.Abs(share-1) > 1e-12 {
		t.Errorf("shares of A's events sum to %v, want 1", share)
	}

	// u2 (unknown action only) and u5 (no events at all) are unknown to the model.
	for _, u := range []string{"u2", "u5", "u3"} {
		if _, err := tg.Explain(ctx, u, "2024-05-10", 3); !errors.Is(err, ErrUnknownUser) {
			t.Errorf("user %s: want ErrUnknownUser, got %v", u, err)
		}
	}
	// u4 has activity but no interest tags.
	ex, err = tg.Explain(ctx, "u4", "2024-05-10", 3)
	if err != nil || ex.Events != 1 || len(ex.Tags) != 0 {
		t.Errorf("u4: %+v, %v", ex, err)
	}
	// u6's only tag is negative: kept in the state, not among the interest tags.
	ex, err = tg.Explain(ctx, "u6", "2024-05-10", 3)
	if err != nil || len(ex.Tags) != 0 {
		t.Errorf("u6: %+v, %v", ex, err)
	}
	var neg float64
	if err := tg.db.QueryRow(`SELECT score FROM dws_user_tag_daily WHERE user_id = 'u6' AND tag = 'A'`).Scan(&neg); err != nil || neg >= 0 {
		t.Errorf("u6 state: score %v, %v", neg, err)
	}
	// Every user with a known action has exactly one profile row.
	var n int
	if err := tg.db.QueryRow(`SELECT count(*) FROM ads_user_profile WHERE dt = DATE '2024-05-10'`).Scan(&n); err != nil || n != 3 {
		t.Errorf("profiles: %d, %v (want u1, u4, u6)", n, err)
	}

	// The future event is counted on its own day, incrementally.
	st, err = tg.RunModel(ctx, "2024-05-20", false)
	if err != nil || st.Full || st.Events != 1 || st.FutureEvents != 0 {
		t.Fatalf("run of the future day: %+v, %v", st, err)
	}
	ex, err = tg.Explain(ctx, "u3", "", 3)
	if err != nil || ex.DS != "2024-05-20" || len(ex.Tags) != 2 {
		t.Fatalf("u3 on its day: %+v, %v", ex, err)
	}
}

// TestParamsChangeForcesFull: a state made under other parameters is not continued.
func TestParamsChangeForcesFull(t *testing.T) {
	ctx := context.Background()
	tg := edgeData(t)
	if _, err := tg.RunModel(ctx, "2024-05-10", true); err != nil {
		t.Fatal(err)
	}
	st, err := tg.RunModel(ctx, "2024-05-11", false)
	if err != nil || st.Full || st.Prev != "2024-05-10" {
		t.Fatalf("same parameters: %+v, %v", st, err)
	}
	tg2 := newTagger(t, tg.db, func(o *Options) { o.HalfLifeDays = 7 })
	st, err = tg2.RunModel(ctx, "2024-05-12", false)
	if err != nil || !st.Full {
		t.Fatalf("changed half-life must recompute fully: %+v, %v", st, err)
	}
}

func TestBadOptions(t *testing.T) {
	db := openDuck(t)
	for name, mod := range map[string]func(*Options){
		"half-life":  func(o *Options) { o.HalfLifeDays = 0 },
		"top-n":      func(o *Options) { o.TopN = 0 },
		"normalize":  func(o *Options) { o.Normalize = "l2" },
		"expression": func(o *Options) { o.ActionExpressions = map[string]string{"rate": "valu - 3"} },
		"action":     func(o *Options) { o.ActionWeights = map[string]float64{"p'v": 1} },
	} {
		o := DefaultOptions()
		o.MemoryLimit = ""
		mod(&o)
		if _, err := New(db, DuckStore{}, o, nil); err == nil {
			t.Errorf("%s: bad options accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestTimestampWithZone: event_time stored as TIMESTAMPTZ (Parquet timestamps adjusted to
// UTC) is cut into days in UTC whatever the database's time zone.
func TestTimestampWithZone(t *testing.T) {
	db := openDuck(t)
	mustExec(t, db, `SET GLOBAL TimeZone = 'Asia/Shanghai'`)
	mustExec(t, db, `CREATE TABLE dim_item AS SELECT 'i1' AS item_id, ['A'] AS tags`)
	mustExec(t, db, `CREATE TABLE dwd_events (user_id VARCHAR, item_id VARCHAR, action VARCHAR, event_time TIMESTAMPTZ)`)
	mustExec(t, db, `INSERT INTO dwd_events VALUES
  ('u1', 'i1', 'pv', TIMESTAMPTZ '2024-05-11 07:30:00+08'),  -- 2024-05-10 23:30 UTC: in ds
  ('u1', 'i1', 'buy', TIMESTAMPTZ '2024-05-11 08:30:00+08')  -- 2024-05-11 00:30 UTC: the next day`)
	tg := newTagger(t, db, nil)
	st, err := tg.RunModel(context.Background(), "2024-05-10", true)
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 1 || st.FutureEvents != 1 {
		t.Fatalf("stats: %+v", st)
	}
	ex, err := tg.Explain(context.Background(), "u1", "2024-05-10", 1)
	if err != nil || len(ex.Tags) != 1 || ex.Tags[0].Top[0].Action != "pv" {
		t.Fatalf("%+v %v", ex, err)
	}
	// Half an hour before the end of the day: weight 1 · 2^(−0.5/24/30).
	if want := math.Pow(2, -0.5/24/30); math.Abs(ex.Tags[0].Score-want) > 1e-12 {
		t.Fatalf("score %.15f, want %.15f", ex.Tags[0].Score, want)
	}
}
