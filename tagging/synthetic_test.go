package tagging

import (
	"context"
	"testing"
)

// TestSyntheticTaobaoMatchesReference: on Taobao-style events (pv/cart/fav/buy, the
// category carried by the event, Zipf skew) the model equals the Go reference, and the
// shipped RFM definition gives every buyer a segment.
func TestSyntheticTaobaoMatchesReference(t *testing.T) {
	ctx := context.Background()
	db := openDuck(t)
	last := loadSynthetic(t, db, 180_000, 20_000, 30)
	ds := last.Format("2006-01-02")
	tg := newTagger(t, db, nil)
	st, err := tg.RunModel(ctx, ds, true)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("SELECT user_id, item_id, action, event_time, value, category FROM dwd_events")
	if err != nil {
		t.Fatal(err)
	}
	var evs []refEvent
	items := map[string][]string{}
	for rows.Next() {
		var e refEvent
		var v *float64
		var cat string
		if err := rows.Scan(&e.user, &e.item, &e.action, &e.at, &v, &cat); err != nil {
			t.Fatal(err)
		}
		e.at = e.at.UTC()
		if v != nil {
			e.value, e.hasValue = *v, true
		}
		items[e.item] = []string{cat}
		evs = append(evs, e)
	}
	rows.Close()
	o := tg.Options()
	want := refModel(evs, items, last, o.HalfLifeDays, o.TopN, o.MinWeight)
	compareWithRef(t, readInterest(t, db, ds), want)
	t.Logf("%d events, %d duplicates, %d users with tags", st.Events, st.Duplicates, len(want))

	defs, _, err := LoadDefinitions("definitions")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.RunDefinitions(ctx, defs, ds); err != nil {
		t.Fatal(err)
	}
	if err := tg.RunProfile(ctx, ds); err != nil {
		t.Fatal(err)
	}
	var buyers, segmented, segments int
	db.QueryRow(`SELECT count(DISTINCT user_id) FROM dwd_events WHERE action = 'buy'`).Scan(&buyers)
	db.QueryRow(`SELECT count(*), count(DISTINCT rfm_segment) FROM ads_user_profile WHERE rfm_segment IS NOT NULL`).Scan(&segmented, &segments)
	if buyers == 0 || segmented != buyers || segments < 4 {
		t.Errorf("rfm: %d buyers, %d profiles with a segment, %d distinct segments", buyers, segmented, segments)
	}
	var hours int
	db.QueryRow(`SELECT count(DISTINCT value) FROM ads_user_tags WHERE tag = 'preferred_hour'`).Scan(&hours)
	if hours < 12 {
		t.Errorf("preferred_hour takes only %d values", hours)
	}
}
