//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const demoDS = "2018-09-24" // the last day of the MovieLens sample

// TestDemoFlow is `make demo` asserted step by step, with the parts as separate processes.
func TestDemoFlow(t *testing.T) {
	c := newCluster(t)
	in := loadInputs(t, c, 20000)
	total := int64(in.nRatings + in.nTaobao)

	// 1. broker, collector, streaming: three processes, each ready on its own admin port.
	c.startAll()

	// 2. MovieLens genres -> dim_item.
	out, err := c.tagpipe(3*time.Minute, "tags", "items", "--format", "movielens", filepath.Join(repoRoot, "testdata", "movielens", "movies.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("loaded %d items into dim_item", in.itemsInMovie); !strings.Contains(out, want) {
		t.Fatalf("tags items said %q, want %q", out, want)
	}
	if n := c.mustCount("SELECT count(*) FROM dim_item"); n != int64(in.itemsInMovie) {
		t.Fatalf("dim_item holds %d items, want %d", n, in.itemsInMovie)
	}

	// 3. Drop the inputs.
	c.drop("movielens-ratings.csv", in.ratings)
	c.drop("taobao-behaviour.log", in.taobao)

	// 4. Wait until streaming has stored every line.
	waitFor(t, "every line in dwd_events", 10*time.Minute, 2*time.Second, func() (bool, string, error) {
		n, err := c.count("SELECT count(*) FROM dwd_events")
		if err != nil {
			return false, err.Error(), nil // tables may not exist before the first batch
		}
		return n >= total, fmt.Sprintf("%d of %d", n, total), nil
	})
	// Let one more batch pass so a duplicate would show.
	time.Sleep(3 * time.Second)

	// 5. Counts in each table. The topic holds every line of both files (header
	// included); ods_events every record exactly once; the header is a header (parsed =
	// false in ods_events, not a dead letter); dwd_events every event exactly once.
	lines := int64(in.ratingLines + in.nTaobao)
	end, err := c.endOffsets("events")
	if err != nil {
		t.Fatal(err)
	}
	if end != lines {
		t.Errorf("topic events holds %d records, want %d lines", end, lines)
	}
	row := c.mustQuery(`SELECT count(*), count(DISTINCT (partition, "offset")), count(*) FILTER (WHERE NOT parsed),
	  count(*) FILTER (WHERE NOT parsed AND raw LIKE '` + ratingsHeader + `%') FROM ods_events`)[0]
	if want := []string{itoa(lines), itoa(lines), "1", "1"}; strings.Join(row, ",") != strings.Join(want, ",") {
		t.Errorf("ods_events count, distinct offsets, unparsed, unparsed header = %v, want %v", row, want)
	}
	if n := c.mustCount("SELECT count(*) FROM dlq_events"); n != 0 {
		t.Errorf("dlq_events holds %d rows, want 0: %v", n, c.mustQuery("SELECT raw, reason FROM dlq_events LIMIT 5"))
	}
	got, n := dwdMultiset(t, c)
	if int64(n) != total {
		t.Errorf("dwd_events holds %d rows, want %d (%d ratings + %d behaviour events)", n, total, in.nRatings, in.nTaobao)
	}
	compareMultisets(t, "dwd_events", multiset(in.events), got)
	byAction := map[string]int{}
	for _, e := range in.events {
		byAction[e.action]++
	}
	for _, r := range c.mustQuery("SELECT action, count(*) FROM dwd_events GROUP BY action ORDER BY action") {
		if r[1] != strconv.Itoa(byAction[r[0]]) {
			t.Errorf("dwd_events action %s: %s rows, want %d", r[0], r[1], byAction[r[0]])
		}
		delete(byAction, r[0])
	}
	if len(byAction) > 0 {
		t.Errorf("dwd_events lacks actions %v", byAction)
	}
	// Typed columns: ratings keep their value, behaviour events their category, and dt is
	// the event's UTC date.
	if n := c.mustCount(`SELECT count(*) FROM dwd_events WHERE dt <> strftime(event_time, '%Y-%m-%d')
	  OR (action = 'rate' AND value IS NULL) OR (action <> 'rate' AND category IS NULL)`); n != 0 {
		t.Errorf("%d dwd_events rows with a wrong dt, a missing rating value or a missing category", n)
	}
	if n := c.mustCount("SELECT round(sum(value) * 2)::BIGINT FROM dwd_events WHERE action = 'rate'"); n != int64(math.Round(sumRatings(in)*2)) {
		t.Errorf("sum of ratings ×2 in dwd_events = %d, want %v", n, sumRatings(in)*2)
	}
	if t.Failed() {
		t.FailNow()
	}

	// 6. The nightly tag job for the data's last day.
	if out, err := c.tagpipe(10*time.Minute, "jobs", "run", "--job", "tags_nightly", "--downstream", "--ds", demoDS); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	hist, err := c.tagpipe(time.Minute, "jobs", "history", "--job", "tags_nightly", "--json")
	if err != nil {
		t.Fatal(err)
	}
	if !jobSucceeded(hist, "tags_nightly", demoDS) {
		t.Errorf("jobs history has no successful tags_nightly run for %s:\n%s", demoDS, hist)
	}

	// 7. Tags: every user's ranks are 1..N and weights in (0, 1] (max |w| normalisation:
	// a user whose strongest tag is a disliked genre has no weight 1), and every user's
	// tags equal an independent Go computation of the model.
	if bad := c.mustQuery(`SELECT user_id, count(*), min(rank), max(rank), min(weight), max(weight), count(DISTINCT rank)
	  FROM ads_user_interest_tags WHERE dt = '` + demoDS + `' GROUP BY user_id
	  HAVING min(rank) <> 1 OR max(rank) <> count(*) OR count(DISTINCT rank) <> count(*) OR max(rank) > 10
	     OR min(weight) <= 0 OR max(weight) > 1 + 1e-12 LIMIT 5`); len(bad) > 0 {
		t.Errorf("users with bad ranks or weights (user, n, min rank, max rank, min w, max w, distinct ranks): %v", bad)
	}
	ds, _ := time.Parse("2006-01-02", demoDS)
	want := modelTags(in, ds)
	gotTags := map[string][]tagWeight{}
	for _, r := range c.mustQuery("SELECT user_id, rank, tag, weight FROM ads_user_interest_tags WHERE dt = '" + demoDS + "' ORDER BY user_id, rank") {
		rk, _ := strconv.Atoi(r[1])
		w, _ := strconv.ParseFloat(r[3], 64)
		gotTags[r[0]] = append(gotTags[r[0]], tagWeight{tag: r[2], weight: w, rank: rk})
	}
	if len(gotTags) != len(want) {
		t.Errorf("ads_user_interest_tags has %d users for %s, the independent model %d", len(gotTags), demoDS, len(want))
	}
	wrong := 0
	for u, w := range want {
		g := gotTags[u]
		same := len(g) == len(w)
		for i := 0; same && i < len(w); i++ {
			same = g[i].tag == w[i].tag && g[i].rank == w[i].rank && math.Abs(g[i].weight-w[i].weight) <= 1e-9
		}
		if !same {
			if wrong++; wrong <= 5 {
				t.Errorf("user %s: tags %v, the independent model %v", u, g, w)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d users' tags differ from the independent model", wrong, len(want))
	}
	// MovieLens users 1, 2, 414 and the most active Taobao user, for the log.
	for _, u := range []string{"1", "2", "414", topTaobaoUser(in)} {
		if len(want[u]) == 0 {
			t.Errorf("user %s: the independent model has no tags", u)
			continue
		}
		t.Logf("user %s: top tags %v", u, gotTags[u][:min(3, len(gotTags[u]))])
	}
	out, err = c.tagpipe(2*time.Minute, "tags", "show", "--user", "1", "--ds", demoDS)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, want["1"][0].tag) {
		t.Errorf("tags show --user 1 does not mention the top tag %s:\n%s", want["1"][0].tag, out)
	}

	// 8. Every process stops cleanly on SIGTERM.
	c.stopAll()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func sumRatings(in *inputs) float64 {
	s := 0.0
	for _, e := range in.events[:in.nRatings] {
		s += e.value
	}
	return s
}

// topTaobaoUser is the Taobao user with the most events (ties: smallest id).
func topTaobaoUser(in *inputs) string {
	n := map[string]int{}
	for _, e := range in.events[in.nRatings:] {
		n[e.user]++
	}
	best := ""
	for u, c := range n {
		if best == "" || c > n[best] || (c == n[best] && u < best) {
			best = u
		}
	}
	return best
}

// jobSucceeded reads `jobs history --json` lines: is there a successful run of job for ds?
func jobSucceeded(hist, job, ds string) bool {
	for _, l := range strings.Split(hist, "\n") {
		var r struct{ Job, DS, State string }
		if json.Unmarshal([]byte(l), &r) == nil && r.Job == job && r.DS == ds && r.State == "success" {
			return true
		}
	}
	return false
}
