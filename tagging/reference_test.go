package tagging

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The independent check: the model computed with plain Go loops over the CSV files,
// sharing no code with the SQL.

type refEvent struct {
	user, item, action string
	at                 time.Time
	value              float64
	hasValue           bool
}

type refTag struct {
	tag           string
	score, weight float64
	events        int64
	lastSeen      time.Time
	rank          int
}

func readMovieLensRef(t testing.TB) ([]refEvent, map[string][]string) {
	t.Helper()
	read := func(name string) [][]string {
		f, err := os.Open(filepath.Join(movielensDir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		recs, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return recs[1:]
	}
	var evs []refEvent
	for _, r := range read("ratings.csv") {
		v, err := strconv.ParseFloat(r[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		sec, err := strconv.ParseInt(r[3], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, refEvent{user: r[0], item: r[1], action: "rate", at: time.Unix(sec, 0).UTC(), value: v, hasValue: true})
	}
	items := map[string][]string{}
	for _, r := range read("movies.csv") {
		for _, g := range strings.Split(r[2], "|") {
			if g != "(no genres listed)" {
				items[r[0]] = append(items[r[0]], g)
			}
		}
	}
	return evs, items
}

// refWeight is the default options' action weight, written out by hand.
func refWeight(e refEvent) (float64, bool) {
	switch e.action {
	case "pv", "click":
		return 1, true
	case "fav":
		return 3, true
	case "cart":
		return 4, true
	case "buy":
		return 5, true
	case "rate":
		if !e.hasValue {
			return 0, true
		}
		return e.value - 3, true
	}
	return 0, false
}

// refModel computes ads_user_interest_tags for ds with the default options.
func refModel(evs []refEvent, items map[string][]string, ds time.Time, halfLife float64, topN int, minWeight float64) map[string][]refTag {
	end := ds.AddDate(0, 0, 1)
	type key struct{ user, tag string }
	score := map[key]float64{}
	count := map[key]int64{}
	last := map[key]time.Time{}
	seen := map[refEvent]bool{}
	for _, e := range evs {
		if !e.at.Before(end) || seen[e] {
			continue
		}
		seen[e] = true
		w, ok := refWeight(e)
		if !ok {
			continue
		}
		ageDays := float64(end.Sub(e.at).Microseconds()) / 86400e6
		for _, tag := range items[e.item] {
			k := key{e.user, tag}
			score[k] += w * math.Pow(2, -ageDays/halfLife)
			count[k]++
			if e.at.After(last[k]) {
				last[k] = e.at
			}
		}
	}
	users := map[string]bool{}
	df := map[string]int{}
	for k, s := range score {
		users[k.user] = true
		if s > 0 {
			df[k.tag]++
		}
	}
	n := float64(len(users))
	byUser := map[string][]refTag{}
	for k, s := range score {
		idf := math.Log((1+n)/(1+float64(df[k.tag]))) + 1
		byUser[k.user] = append(byUser[k.user], refTag{tag: k.tag, score: s, weight: idf * s, events: count[k], lastSeen: last[k]})
	}
	out := map[string][]refTag{}
	for u, tags := range byUser {
		maxAbs := 0.0
		for _, tg := range tags {
			maxAbs = math.Max(maxAbs, math.Abs(tg.weight))
		}
		var kept []refTag
		for _, tg := range tags {
			if maxAbs == 0 {
				continue
			}
			tg.weight /= maxAbs
			if tg.weight >= minWeight {
				kept = append(kept, tg)
			}
		}
		sort.Slice(kept, func(i, j int) bool {
			if kept[i].weight != kept[j].weight {
				return kept[i].weight > kept[j].weight
			}
			return kept[i].tag < kept[j].tag
		})
		if len(kept) > topN {
			kept = kept[:topN]
		}
		for i := range kept {
			kept[i].rank = i + 1
		}
		if len(kept) > 0 {
			out[u] = kept
		}
	}
	return out
}
