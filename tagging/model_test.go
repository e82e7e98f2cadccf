package tagging

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"testing"
	"time"
)

type interestRow struct {
	tag      string
	weight   float64
	rank     int
	events   int64
	lastSeen time.Time
	score    float64
}

func readInterest(t testing.TB, db *sql.DB, ds string) map[string][]interestRow {
	t.Helper()
	rows, err := db.Query(`SELECT user_id, tag, weight, rank, events, last_seen, score FROM ads_user_interest_tags
WHERE dt = CAST(? AS DATE) ORDER BY user_id, rank`, ds)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]interestRow{}
	for rows.Next() {
		var u string
		var r interestRow
		if err := rows.Scan(&u, &r.tag, &r.weight, &r.rank, &r.events, &r.lastSeen, &r.score); err != nil {
			t.Fatal(err)
		}
		out[u] = append(out[u], r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

const eps = 1e-9

// compareWithRef checks every user's top tags, weights, ranks, event counts and
// last-seen against the Go reference. Tags whose weights tie within eps may swap places.
func compareWithRef(t *testing.T, got map[string][]interestRow, want map[string][]refTag) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("users with interest tags: got %d, want %d", len(got), len(want))
	}
	bad := 0
	for u, w := range want {
		g := got[u]
		if len(g) != len(w) {
			t.Errorf("user %s: got %d tags, want %d", u, len(g), len(w))
			bad++
			continue
		}
		byTag := map[string]refTag{}
		for _, r := range w {
			byTag[r.tag] = r
		}
		for i := range w {
			if math.Abs(g[i].weight-w[i].weight) > eps || g[i].rank != i+1 {
				t.Errorf("user %s rank %d: got %s=%.12f (rank %d), want %s=%.12f", u, i+1, g[i].tag, g[i].weight, g[i].rank, w[i].tag, w[i].weight)
				bad++
				continue
			}
			r, ok := byTag[g[i].tag]
			if !ok || math.Abs(r.weight-g[i].weight) > eps {
				t.Errorf("user %s rank %d: got tag %s, want %s (not a tie)", u, i+1, g[i].tag, w[i].tag)
				bad++
				continue
			}
			if g[i].events != r.events || !g[i].lastSeen.Equal(r.lastSeen) {
				t.Errorf("user %s tag %s: events/last_seen got %d/%v, want %d/%v", u, r.tag, g[i].events, g[i].lastSeen, r.events, r.lastSeen)
				bad++
			}
			if math.Abs(g[i].score-r.score) > eps*math.Max(1, math.Abs(r.score)) {
				t.Errorf("user %s tag %s: score got %.15g want %.15g", u, r.tag, g[i].score, r.score)
				bad++
			}
		}
		if bad > 20 {
			t.Fatal("too many differences")
		}
	}
}

// TestMovieLensMatchesReference: on the real MovieLens ratings and genres, every user's
// top genres, weights, ranks, event counts and last-seen equal the independent Go
// computation, both after all data and at a day in the middle (later ratings excluded).
func TestMovieLensMatchesReference(t *testing.T) {
	db := openDuck(t)
	loadMovieLens(t, db)
	tg := newTagger(t, db, nil)
	evs, items := readMovieLensRef(t)
	o := tg.Options()
	for _, ds := range []string{"2018-09-30", "2009-06-15"} {
		st, err := tg.RunModel(context.Background(), ds, true)
		if err != nil {
			t.Fatal(err)
		}
		day, _ := ParseDS(ds)
		want := refModel(evs, items, day, o.HalfLifeDays, o.TopN, o.MinWeight)
		got := readInterest(t, db, ds)
		compareWithRef(t, got, want)
		topAgree := 0
		for u, w := range want {
			if got[u][0].tag == w[0].tag {
				topAgree++
			}
		}
		t.Logf("ds %s: %d events, %d users with tags, top genre identical for %d users, future events %d", ds, st.Events, len(want), topAgree, st.FutureEvents)
		if len(want) < 100 {
			t.Fatalf("reference has only %d users: the data did not load", len(want))
		}
	}
}

type stateRow struct {
	score       float64
	events      int64
	first, last time.Time
}

func readState(t testing.TB, db *sql.DB, ds string) map[[2]string]stateRow {
	t.Helper()
	rows, err := db.Query(`SELECT user_id, tag, score, events, first_seen, last_seen FROM dws_user_tag_daily WHERE dt = CAST(? AS DATE)`, ds)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[[2]string]stateRow{}
	for rows.Next() {
		var u, tag string
		var r stateRow
		if err := rows.Scan(&u, &tag, &r.score, &r.events, &r.first, &r.last); err != nil {
			t.Fatal(err)
		}
		out[[2]string{u, tag}] = r
	}
	return out
}

func compareStates(t *testing.T, ds string, inc, full map[[2]string]stateRow) {
	t.Helper()
	if len(inc) != len(full) {
		t.Fatalf("%s: incremental state has %d user×tag pairs, full %d", ds, len(inc), len(full))
	}
	for k, f := range full {
		i, ok := inc[k]
		if !ok {
			t.Fatalf("%s: pair %v missing from incremental state", ds, k)
		}
		if math.Abs(i.score-f.score) > eps*math.Max(1, math.Abs(f.score)) || i.events != f.events || !i.first.Equal(f.first) || !i.last.Equal(f.last) {
			t.Fatalf("%s: pair %v: incremental %+v, full %+v", ds, k, i, f)
		}
	}
}

func compareInterest(t *testing.T, ds string, inc, full map[string][]interestRow) {
	t.Helper()
	if len(inc) != len(full) {
		t.Fatalf("%s: incremental has %d users with tags, full %d", ds, len(inc), len(full))
	}
	for u, f := range full {
		i := inc[u]
		if len(i) != len(f) {
			t.Fatalf("%s: user %s: incremental %d tags, full %d", ds, u, len(i), len(f))
		}
		for r := range f {
			if math.Abs(i[r].weight-f[r].weight) > eps || (i[r].tag != f[r].tag && math.Abs(i[r].weight-f[r].weight) > 0) && !tied(f, i[r].tag, i[r].weight) {
				t.Fatalf("%s: user %s rank %d: incremental %s=%.15f, full %s=%.15f", ds, u, r+1, i[r].tag, i[r].weight, f[r].tag, f[r].weight)
			}
		}
	}
}

func tied(rows []interestRow, tag string, w float64) bool {
	for _, r := range rows {
		if r.tag == tag {
			return math.Abs(r.weight-w) <= eps
		}
	}
	return false
}

// TestIncrementalDayByDayEqualsFull: 30 consecutive daily incremental runs over real
// MovieLens data (days with and without ratings) give, every day, the same state and the
// same interest tags as a full recompute of that day, within 1e-9.
func TestIncrementalDayByDayEqualsFull(t *testing.T) {
	ctx := context.Background()
	incDB, fullDB := openDuck(t), openDuck(t)
	loadMovieLens(t, incDB)
	loadMovieLens(t, fullDB)
	inc, full := newTagger(t, incDB, nil), newTagger(t, fullDB, nil)
	start, _ := ParseDS("2017-11-30")
	if _, err := inc.RunModel(ctx, "2017-11-30", true); err != nil {
		t.Fatal(err)
	}
	const days = 30
	var withEvents int
	for d := 1; d <= days; d++ {
		ds := start.AddDate(0, 0, d).Format("2006-01-02")
		st, err := inc.RunModel(ctx, ds, false)
		if err != nil {
			t.Fatal(err)
		}
		if st.Full || st.Prev != start.AddDate(0, 0, d-1).Format("2006-01-02") {
			t.Fatalf("%s: want an incremental run from the previous day, got full=%v prev=%s", ds, st.Full, st.Prev)
		}
		if st.Events > 0 {
			withEvents++
		}
		if _, err := full.RunModel(ctx, ds, true); err != nil {
			t.Fatal(err)
		}
		compareStates(t, ds, readState(t, incDB, ds), readState(t, fullDB, ds))
		compareInterest(t, ds, readInterest(t, incDB, ds), readInterest(t, fullDB, ds))
	}
	if withEvents < 10 {
		t.Fatalf("only %d of %d days had events: the window tests little", withEvents, days)
	}
	t.Logf("%d incremental days (%d with ratings) equal full recomputes", days, withEvents)
}

// TestIncrementalWholeHistoryEqualsFull walks all 22 years of MovieLens incrementally in
// 120-day steps (the gap-aware form decays by 2^(-gap/half_life)) and compares the end
// state with a full recompute.
func TestIncrementalWholeHistoryEqualsFull(t *testing.T) {
	ctx := context.Background()
	incDB, fullDB := openDuck(t), openDuck(t)
	loadMovieLens(t, incDB)
	loadMovieLens(t, fullDB)
	inc, full := newTagger(t, incDB, nil), newTagger(t, fullDB, nil)
	day, _ := ParseDS("1996-03-01")
	end, _ := ParseDS("2018-10-01")
	if _, err := inc.RunModel(ctx, day.Format("2006-01-02"), true); err != nil {
		t.Fatal(err)
	}
	runs := 0
	for day.Before(end) {
		day = day.AddDate(0, 0, 120)
		if _, err := inc.RunModel(ctx, day.Format("2006-01-02"), false); err != nil {
			t.Fatal(err)
		}
		runs++
	}
	ds := day.Format("2006-01-02")
	if _, err := full.RunModel(ctx, ds, true); err != nil {
		t.Fatal(err)
	}
	compareStates(t, ds, readState(t, incDB, ds), readState(t, fullDB, ds))
	compareInterest(t, ds, readInterest(t, incDB, ds), readInterest(t, fullDB, ds))
	t.Logf("%d incremental runs to %s equal the full recompute", runs, ds)
	_ = fmt.Sprint()
}
