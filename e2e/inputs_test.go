//go:build e2e

package e2e

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ev is one input event as the test knows it from the input files, independently of
// tagpipe's parsers.
type ev struct {
	user, item, action, category string
	unix                         int64
	value                        float64
	hasValue                     bool
}

// key is what "the same event" means for exactly-once: (user_id, item_id, event_time,
// action) — the columns the suite compares between the inputs and dwd_events.
func (e ev) key() string { return fmt.Sprintf("%s|%s|%d|%s", e.user, e.item, e.unix, e.action) }

// inputs are the files the suite drops: MovieLens ratings.csv (with its header line) and a
// generated Taobao-style log with "tb"/"cat" prefixes (as scripts/demo.sh does).
type inputs struct {
	ratings      []byte // the file as dropped
	taobao       []byte
	ratingLines  int // lines in ratings.csv, header included
	events       []ev
	nRatings     int
	nTaobao      int
	itemTags     map[string][]string // movies.csv genres
	itemsInMovie int
}

const ratingsHeader = "userId,movieId,rating,timestamp"

func loadInputs(t *testing.T, c *cluster, taobaoEvents int) *inputs {
	t.Helper()
	in := &inputs{itemTags: map[string][]string{}}
	var err error
	in.ratings, err = os.ReadFile(filepath.Join(repoRoot, "testdata", "movielens", "ratings.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// The file has CRLF line ends (as distributed); the collector strips them.
	lines := strings.Split(strings.TrimRight(string(in.ratings), "\r\n"), "\n")
	in.ratingLines = len(lines)
	for i := range lines {
		lines[i] = strings.TrimSuffix(lines[i], "\r")
	}
	if lines[0] != ratingsHeader {
		t.Fatalf("ratings.csv header %q", lines[0])
	}
	for i, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) != 4 {
			t.Fatalf("ratings.csv line %d: %q", i+2, l)
		}
		v, err1 := strconv.ParseFloat(f[2], 64)
		ts, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("ratings.csv line %d: %q", i+2, l)
		}
		in.events = append(in.events, ev{user: f[0], item: f[1], action: "rate", unix: ts, value: v, hasValue: true})
	}
	in.nRatings = len(in.events)

	// The Taobao-style log from `tagpipe gen`, prefixed so ids never collide with MovieLens.
	out, err := c.tagpipe(2*time.Minute, "gen", "--events", strconv.Itoa(taobaoEvents), "--users", "2000", "--items", "20000",
		"--categories", "50", "--days", "7", "--start", "2018-09-18", "--seed", "7")
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	for i, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		f := strings.Split(l, ",")
		if len(f) != 5 {
			t.Fatalf("gen line %d: %q", i+1, l)
		}
		ts, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			t.Fatalf("gen line %d: %q", i+1, l)
		}
		e := ev{user: "tb" + f[0], item: "tb" + f[1], category: "cat" + f[2], action: f[3], unix: ts}
		fmt.Fprintf(&tb, "%s,%s,%s,%s,%d\n", e.user, e.item, e.category, e.action, e.unix)
		in.events = append(in.events, e)
	}
	in.taobao = tb.Bytes()
	in.nTaobao = len(in.events) - in.nRatings
	if in.nTaobao != taobaoEvents {
		t.Fatalf("gen wrote %d events, want %d", in.nTaobao, taobaoEvents)
	}

	mf, err := os.Open(filepath.Join(repoRoot, "testdata", "movielens", "movies.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	recs, err := csv.NewReader(mf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[1:] {
		in.itemsInMovie++
		for _, g := range strings.Split(r[2], "|") {
			if g != "" && g != "(no genres listed)" {
				in.itemTags[r[0]] = append(in.itemTags[r[0]], g)
			}
		}
	}
	return in
}

// multiset counts events by key.
func multiset(evs []ev) map[string]int {
	m := make(map[string]int, len(evs))
	for _, e := range evs {
		m[e.key()]++
	}
	return m
}

// dwdMultiset reads dwd_events' (user_id, item_id, event_time, action) as keys.
func dwdMultiset(t *testing.T, c *cluster) (map[string]int, int) {
	t.Helper()
	rows := c.mustQuery("SELECT user_id, coalesce(item_id, ''), epoch(event_time)::BIGINT, action FROM dwd_events")
	m := make(map[string]int, len(rows))
	for _, r := range rows {
		m[strings.Join(r, "|")]++
	}
	return m, len(rows)
}

// compareMultisets reports missing and extra events, with a few examples of each.
func compareMultisets(t *testing.T, what string, want, got map[string]int) {
	t.Helper()
	var missing, extra []string
	nMissing, nExtra := 0, 0
	for k, n := range want {
		if g := got[k]; g < n {
			nMissing += n - g
			missing = append(missing, fmt.Sprintf("%s (want %d, have %d)", k, n, g))
		}
	}
	for k, g := range got {
		if n := want[k]; g > n {
			nExtra += g - n
			extra = append(extra, fmt.Sprintf("%s (want %d, have %d)", k, n, g))
		}
	}
	if nMissing == 0 && nExtra == 0 {
		return
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 5 {
		missing = missing[:5]
	}
	if len(extra) > 5 {
		extra = extra[:5]
	}
	t.Errorf("%s: %d events lost, %d duplicated; lost e.g. %v; duplicated e.g. %v", what, nMissing, nExtra, missing, extra)
}

// tagWeight is one row of the interest model's output.
type tagWeight struct {
	tag    string
	weight float64
	rank   int
}

// modelTags is an independent Go evaluation of DESIGN.md's interest model with the
// shipped defaults (config/defaults/60_tagging.yaml), for the full run of ds:
//
//	w(u,t) = IDF(t) · Σ_e actionWeight(e) · 2^(−age_days(e)/30), over distinct events
//	before end(ds) on items tagged t (MovieLens genres) or carrying category t (Taobao),
//	IDF(t) = ln((1+N)/(1+df(t))) + 1, N = users with a tag score, df(t) = users with a
//	positive score on t; normalised by the user's max |w|; top 10, weight >= 0.01.
func modelTags(in *inputs, ds time.Time) map[string][]tagWeight {
	end := ds.AddDate(0, 0, 1)
	actionWeight := map[string]float64{"pv": 1, "click": 1, "fav": 3, "cart": 4, "buy": 5}
	const halfLifeUS = 30 * 86400e6
	type ut struct{ u, t string }
	score := map[ut]float64{}
	seen := map[ev]bool{}
	for _, e := range in.events {
		if e.unix >= end.Unix() || seen[e] {
			continue
		}
		seen[e] = true
		aw := actionWeight[e.action]
		if e.action == "rate" {
			aw = e.value - 3
		}
		ageUS := float64(end.Unix()-e.unix) * 1e6
		contrib := aw * math.Pow(2, -ageUS/halfLifeUS)
		tags := in.itemTags[e.item]
		for _, tg := range tags {
			score[ut{e.user, tg}] += contrib
		}
		if e.category != "" {
			dup := false
			for _, tg := range tags {
				dup = dup || tg == e.category
			}
			if !dup {
				score[ut{e.user, e.category}] += contrib
			}
		}
	}
	users := map[string]bool{}
	df := map[string]int{}
	for k, s := range score {
		users[k.u] = true
		if s > 0 {
			df[k.t]++
		}
	}
	n := float64(len(users))
	raw := map[string][]tagWeight{}
	for k, s := range score {
		idf := math.Log((1+n)/(1+float64(df[k.t]))) + 1
		raw[k.u] = append(raw[k.u], tagWeight{tag: k.t, weight: idf * s})
	}
	out := map[string][]tagWeight{}
	for u, ws := range raw {
		sort.Slice(ws, func(i, j int) bool {
			if ws[i].weight != ws[j].weight {
				return ws[i].weight > ws[j].weight
			}
			return ws[i].tag < ws[j].tag
		})
		maxAbs := 0.0
		for _, w := range ws {
			maxAbs = math.Max(maxAbs, math.Abs(w.weight))
		}
		if maxAbs == 0 {
			continue
		}
		for i, w := range ws {
			w.weight /= maxAbs
			w.rank = i + 1
			if w.rank <= 10 && w.weight >= 0.01 {
				out[u] = append(out[u], w)
			}
		}
	}
	return out
}
