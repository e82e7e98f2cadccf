package tagging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const mlDay = "2018-09-24" // the last day of the MovieLens sample

func runShipped(t *testing.T) (*Tagger, []*Definition, []*Audience) {
	t.Helper()
	db := openDuck(t)
	loadMovieLens(t, db)
	tg := newTagger(t, db, nil)
	defs, auds, err := LoadDefinitions("definitions")
	if err != nil {
		t.Fatal(err)
	}
	if len(defs) != 4 || len(auds) != 1 {
		t.Fatalf("shipped: %d definitions, %d audiences", len(defs), len(auds))
	}
	if _, err := tg.RunModel(context.Background(), mlDay, true); err != nil {
		t.Fatal(err)
	}
	return tg, defs, auds
}

// TestShippedDefinitions runs the shipped examples on MovieLens and checks their values
// against straightforward queries, and the catalog's lineage.
func TestShippedDefinitions(t *testing.T) {
	ctx := context.Background()
	tg, defs, _ := runShipped(t)
	res, err := tg.RunDefinitions(ctx, defs, mlDay)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{}
	for _, r := range res {
		rows[r.Name] = r.Rows
	}
	var users, buyers int64
	tg.db.QueryRow(`SELECT count(*) FROM dws_user_daily WHERE dt = DATE '2018-09-24'`).Scan(&users)
	if rows["activity"] != users || rows["rfm"] != buyers || rows["favourite_genre"] != 610-9 || rows["preferred_hour"] == 0 {
		t.Fatalf("rows: %v (users %d)", rows, users)
	}
	// favourite_genre equals the model's rank-1 tag; activity matches a hand count.
	var mismatch int
	tg.db.QueryRow(`SELECT count(*) FROM ads_user_tags d JOIN ads_user_interest_tags i ON i.user_id = d.user_id AND i.dt = d.dt AND i.rank = 1
WHERE d.tag = 'favourite_genre' AND d.value <> i.tag`).Scan(&mismatch)
	if mismatch != 0 {
		t.Errorf("favourite_genre differs from the top interest tag for %d users", mismatch)
	}
	var high, want int
	tg.db.QueryRow(`SELECT count(*) FROM ads_user_tags WHERE tag = 'activity' AND value = 'high'`).Scan(&high)
	tg.db.QueryRow(`SELECT count(*) FROM (SELECT user_id FROM dwd_events WHERE event_time >= TIMESTAMP '2018-08-26' AND event_time < TIMESTAMP '2018-09-25' GROUP BY 1 HAVING count(*) >= 20)`).Scan(&want)
	if high != want || want == 0 {
		t.Errorf("activity high: %d users, want %d", high, want)
	}
	// The profile picks up the definition tags once rebuilt.
	if err := tg.RunProfile(ctx, mlDay); err != nil {
		t.Fatal(err)
	}
	var withActivity int
	tg.db.QueryRow(`SELECT count(*) FROM ads_user_profile WHERE dt = DATE '2018-09-24' AND activity IS NOT NULL AND attrs['favourite_genre'] = top_tag`).Scan(&withActivity)
	if withActivity != 610-9 {
		t.Errorf("profiles with activity and favourite_genre = top_tag: %d", withActivity)
	}
	cat, err := tg.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lineage := map[string][]string{}
	for _, e := range cat {
		lineage[e.Name] = e.Reads
		if e.LastStatus != "ok" || e.LastDS != mlDay {
			t.Errorf("catalog %s: %+v", e.Name, e)
		}
	}
	wantLineage := map[string][]string{
		"activity":        {"dwd_events", "dws_user_daily"},
		"rfm":             {"dwd_events"},
		"preferred_hour":  {"dwd_events"},
		"favourite_genre": {"ads_user_interest_tags"},
		"interest":        {"dwd_events", "dim_item"},
	}
	if !reflect.DeepEqual(lineage, wantLineage) {
		t.Errorf("lineage: got %v, want %v", lineage, wantLineage)
	}
}

// TestDefinitionErrors: a definition with bad SQL, one with a missing column and one
// returning two rows per user each fail with the tag name and the SQL error; the
// good one still runs, and the catalog records each outcome.
func TestDefinitionErrors(t *testing.T) {
	ctx := context.Background()
	tg, defs, _ := runShipped(t)
	bad := []*Definition{
		{Name: "bad_sql", Type: "rule", SQL: "SELEC user_id, 'x' AS value FROM dwd_events"},
		{Name: "no_value", Type: "rule", SQL: "SELECT user_id, count(*) AS n FROM dwd_events GROUP BY 1"},
		{Name: "no_table", Type: "rule", SQL: "SELECT user_id, 'x' AS value FROM dwd_nothing"},
		{Name: "dup_users", Type: "rule", SQL: "SELECT user_id, action AS value FROM dwd_events"},
	}
	var good *Definition
	for _, d := range defs {
		if d.Name == "activity" {
			good = d
		}
	}
	all := append(append([]*Definition{}, bad[:2]...), good)
	all = append(all, bad[2:]...)
	res, err := tg.RunDefinitions(ctx, all, mlDay)
	if err == nil {
		t.Fatal("want an error")
	}
	wantMsg := map[string]string{
		"bad_sql":   `tag "bad_sql": Parser Error: syntax error at or near "SELEC"`,
		"no_value":  `tag "no_value": the sql returns no column "value"`,
		"no_table":  `tag "no_table": Catalog Error: Table with name dwd_nothing does not exist`,
		"dup_users": `tag "dup_users": the sql returns 232 rows for user "1"`,
	}
	for _, r := range res {
		if r.Name == "activity" {
			if r.Err != nil || r.Rows == 0 {
				t.Errorf("the good definition: %+v", r)
			}
			continue
		}
		if r.Err == nil || !strings.Contains(r.Err.Error(), wantMsg[r.Name]) {
			t.Errorf("%s: got %v, want it to contain %q", r.Name, r.Err, wantMsg[r.Name])
		}
		if !strings.Contains(err.Error(), wantMsg[r.Name]) {
			t.Errorf("joined error lacks %s: %v", r.Name, err)
		}
	}
	var n int
	tg.db.QueryRow(`SELECT count(*) FROM ads_user_tags WHERE tag IN ('bad_sql', 'no_value', 'no_table', 'dup_users')`).Scan(&n)
	if n != 0 {
		t.Errorf("failed definitions wrote %d rows", n)
	}
	cat, _ := tg.Catalog(ctx)
	status := map[string]string{}
	for _, e := range cat {
		status[e.Name] = e.LastStatus
	}
	if status["bad_sql"] != "failed" || status["dup_users"] != "failed" || status["activity"] != "ok" {
		t.Errorf("catalog status: %v", status)
	}
}

func TestLoadDefinitionsBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "name: good\ntype: rule\nsql: SELECT 1 AS user_id, 'x' AS value\n")
	write("b.yaml", "name: Bad Name\ntype: rule\nsql: SELECT 1\n")
	write("c.yaml", "name: typo\ntype: rule\nsqll: SELECT 1\n")
	write("d.yaml", "name: sched\ntype: rule\nschedule: every day\nsql: SELECT 1\n")
	write("e.yaml", "kind: audience\nname: aud\nexpression: interest:Comedy >\n")
	write("f.yaml", "name: good\ntype: rule\nsql: SELECT 2\n")
	write("g.yaml", "name: tpl\ntype: rule\nsql: SELECT {{ nope }}\n")
	defs, auds, err := LoadDefinitions(dir)
	if len(defs) != 1 || defs[0].Name != "good" || len(auds) != 0 {
		t.Fatalf("loaded %d defs, %d audiences", len(defs), len(auds))
	}
	for _, want := range []string{"b.yaml", "c.yaml", "d.yaml", "e.yaml", `f.yaml: name "good" is already defined`, "g.yaml"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error should name %s: %v", want, err)
		}
	}
	t.Log(err)
}

func TestRenderMacros(t *testing.T) {
	d := &Definition{Name: "m", Type: "rule", SQL: "{{ ds }} {{ next_ds }} {{ prev_ds }} {{ ds_nodash }} {{ ds_add -29 }} {{ half_life }};"}
	got, err := d.Render("2024-03-01", 30)
	if err != nil {
		t.Fatal(err)
	}
	if want := "2024-03-01 2024-03-02 2024-02-29 20240301 2024-02-01 30"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestAudienceOnMovieLens materialises the shipped audience and compares it with the
// same filter written in Go over the tag tables, then exports it to CSV and to Kafka.
func TestAudienceOnMovieLens(t *testing.T) {
	ctx := context.Background()
	tg, defs, auds := runShipped(t)
	if _, err := tg.RunDefinitions(ctx, defs, mlDay); err != nil {
		t.Fatal(err)
	}
	n, err := tg.RunAudience(ctx, auds[0], mlDay)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tg.AudienceMembers(ctx, "comedy_fans", mlDay)
	if err != nil || int64(len(got)) != n {
		t.Fatalf("members: %d, %v (run said %d)", len(got), err, n)
	}
	comedy := map[string]float64{}
	rows, _ := tg.db.Query(`SELECT user_id, weight FROM ads_user_interest_tags WHERE tag = 'Comedy'`)
	for rows.Next() {
		var u string
		var w float64
		rows.Scan(&u, &w)
		comedy[u] = w
	}
	rows.Close()
	var want []string
	rows, _ = tg.db.Query(`SELECT user_id, value FROM ads_user_tags WHERE tag = 'activity'`)
	for rows.Next() {
		var u, v string
		rows.Scan(&u, &v)
		if comedy[u] > 0.3 && (v == "high" || v == "medium" || v == "low") {
			want = append(want, u)
		}
	}
	rows.Close()
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) || len(want) == 0 {
		t.Fatalf("audience: got %v, want %v", got, want)
	}
	t.Logf("comedy_fans on %s: %d users", mlDay, len(got))

	// Expressions that reference a tag that never ran, or use bad syntax, fail clearly.
	if _, err := tg.RunAudience(ctx, &Audience{Name: "x", Expression: "nosuch = 'a'"}, mlDay); err == nil || !strings.Contains(err.Error(), `tag "nosuch" has no values`) {
		t.Errorf("unknown tag: %v", err)
	}
	// A wider expression: NOT, OR, quoted names, numeric comparison of a definition tag.
	wide := &Audience{Name: "night_scifi", Expression: `(interest:"Sci-Fi" >= 0.5 OR interest:Horror) AND NOT preferred_hour < 18`}
	if _, err := tg.RunAudience(ctx, wide, mlDay); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	if err := ExportCSV(&buf, "comedy_fans", mlDay, got); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(buf.String()), "\n"); len(lines) != len(got)+1 || lines[0] != "audience,dt,user_id" {
		t.Fatalf("csv: %q", buf.String())
	}
	path := filepath.Join(t.TempDir(), "out.csv")
	if err := ExportCSVFile(path, "comedy_fans", mlDay, got); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, buf.Bytes()) {
		t.Fatal("file export differs")
	}

	// Kafka: produce through kfake (franz-go's in-process Kafka) and read back with kgo.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "audiences", "audience-comedy"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	if err := ExportKafka(ctx, cluster.ListenAddrs(), nil, "audiences", "comedy_fans", mlDay, got, nil); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	consumeTopic(t, cluster.ListenAddrs(), "audiences", func(r *kgo.Record) {
		var rec AudienceRecord
		if err := json.Unmarshal(r.Value, &rec); err != nil || rec.UserID != string(r.Key) || rec.Audience != "comedy_fans" || rec.DT != mlDay {
			t.Errorf("record %q: %v %+v", r.Value, err, rec)
		}
		seen[rec.UserID] = true
	}, func() bool { return len(seen) >= len(got) })
	if len(seen) != len(got) {
		t.Fatalf("kafka: %d distinct users, want %d", len(seen), len(got))
	}

	// The next day, under a narrower definition, some users leave: their tombstones
	// follow the members, so a compacted topic keyed by user holds the new audience.
	// (With one earlier day, its members are the ones who can have left.)
	const day2 = "2018-09-25"
	if prev, leavers, err := tg.AudienceLeavers(ctx, "comedy_fans", mlDay); err != nil || prev != "" || leavers != nil {
		t.Fatalf("leavers before the first materialisation: %q %v %v", prev, leavers, err)
	}
	if _, err := tg.RunModel(ctx, day2, false); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.RunAudience(ctx, &Audience{Name: "comedy_fans", Expression: "interest:Comedy > 0.6"}, day2); err != nil {
		t.Fatal(err)
	}
	members2, err := tg.AudienceMembers(ctx, "comedy_fans", day2)
	if err != nil {
		t.Fatal(err)
	}
	prev, leavers, err := tg.AudienceLeavers(ctx, "comedy_fans", day2)
	if err != nil || prev != mlDay {
		t.Fatalf("leavers on %s: earlier materialisations since %q, %v", day2, prev, err)
	}
	in2 := map[string]bool{}
	for _, u := range members2 {
		in2[u] = true
	}
	var left []string
	for _, u := range got {
		if !in2[u] {
			left = append(left, u)
		}
	}
	if len(members2) == 0 || len(left) == 0 || !reflect.DeepEqual(leavers, left) {
		t.Fatalf("leavers %v, want %v (%d members on %s)", leavers, left, len(members2), day2)
	}
	if err := ExportKafka(ctx, cluster.ListenAddrs(), nil, "audience-comedy", "comedy_fans", day2, members2, leavers); err != nil {
		t.Fatal(err)
	}
	valued, tombstoned := map[string]bool{}, map[string]bool{}
	consumeTopic(t, cluster.ListenAddrs(), "audience-comedy", func(r *kgo.Record) {
		if r.Value == nil {
			tombstoned[string(r.Key)] = true
		} else {
			valued[string(r.Key)] = true
		}
	}, func() bool { return len(valued)+len(tombstoned) >= len(members2)+len(leavers) })
	for _, u := range leavers {
		if !tombstoned[u] || valued[u] {
			t.Fatalf("leaver %s: tombstone %v, value %v", u, tombstoned[u], valued[u])
		}
	}
	for _, u := range members2 {
		if !valued[u] {
			t.Fatalf("member %s has no record", u)
		}
	}

	// Every earlier day counts, not only the latest: a user of day 1 who is in neither
	// day 2 nor day 3 is deleted on day 3 too (day 2 may never have been exported).
	const day3 = "2018-09-26"
	if _, err := tg.RunModel(ctx, day3, false); err != nil {
		t.Fatal(err)
	}
	if _, err := tg.RunAudience(ctx, &Audience{Name: "comedy_fans", Expression: "interest:Comedy > 0.9"}, day3); err != nil {
		t.Fatal(err)
	}
	members3, err := tg.AudienceMembers(ctx, "comedy_fans", day3)
	if err != nil {
		t.Fatal(err)
	}
	in3, earlier := map[string]bool{}, map[string]bool{}
	for _, u := range members3 {
		in3[u] = true
	}
	for _, u := range append(append([]string(nil), got...), members2...) {
		earlier[u] = true
	}
	left = nil
	for u := range earlier {
		if !in3[u] {
			left = append(left, u)
		}
	}
	sort.Strings(left)
	since, leavers3, err := tg.AudienceLeavers(ctx, "comedy_fans", day3)
	if err != nil || since != mlDay || !reflect.DeepEqual(leavers3, left) {
		t.Fatalf("leavers on %s since %q: %v, want %v (%v)", day3, since, leavers3, left, err)
	}

	// A day the audience was not materialised for has no members to export: exporting
	// it as empty would tombstone every earlier member. An audience materialised empty
	// is exported as empty.
	const day4 = "2018-09-27"
	if m, err := tg.AudienceMembers(ctx, "comedy_fans", day4); !errors.Is(err, ErrNotMaterialised) || m != nil {
		t.Fatalf("members on %s, not materialised: %v, %v; want ErrNotMaterialised", day4, m, err)
	}
	if _, err := tg.RunModel(ctx, day4, false); err != nil {
		t.Fatal(err)
	}
	if n, err := tg.RunAudience(ctx, &Audience{Name: "comedy_fans", Expression: "interest:Comedy > 2"}, day4); err != nil || n != 0 {
		t.Fatalf("empty audience on %s: %d users, %v", day4, n, err)
	}
	if m, err := tg.AudienceMembers(ctx, "comedy_fans", day4); err != nil || len(m) != 0 {
		t.Fatalf("members on %s, materialised empty: %v, %v", day4, m, err)
	}
	if m, err := tg.AudienceMembers(ctx, "no_such_audience", day4); !errors.Is(err, ErrNotMaterialised) {
		t.Fatalf("members of an audience never run: %v, %v; want ErrNotMaterialised", m, err)
	}
}

func TestParseExpression(t *testing.T) {
	good := []string{
		"interest:Comedy > 0.3 AND activity = 'high'",
		`interest:"Film-Noir" AND NOT (rfm IN ('lost', 'hibernating') OR rfm IS NULL)`,
		"interest:Sci-Fi>=0.5 or activity != 'dormant'",
		"preferred_hour NOT IN (1, 2, 3)",
	}
	for _, s := range good {
		if _, err := ParseExpression(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	bad := []string{"", "activity", "interest:", "interest:A >", "(interest:A", "'a' = 'b'", "a = 'x", "a IN ()", "a ! b", "interest:A AND AND"}
	for _, s := range bad {
		if _, err := ParseExpression(s); err == nil {
			t.Errorf("%q: accepted", s)
		}
	}
}

// TestParseExpressionCharacters: tag names are read by character, not by byte (传 ends in
// byte 0xA0, which read alone is a no-break space and cut the name), and numbers take a
// signed exponent.
func TestParseExpressionCharacters(t *testing.T) {
	for _, c := range []struct {
		expr, interest string
		num            float64
	}{
		{"interest:传 > 0.5", "传", 0.5}, // was read as interest:"\xe4\xbc" > 0.5: a tag nobody has
		{"interest:传记 > 0.5", "传记", 0.5},
		{"interest:Ñandú>0.5", "Ñandú", 0.5},
		{"interest:A > 1e-5", "A", 1e-5},
		{"interest:A >= 2.5E+2", "A", 250},
	} {
		e, err := ParseExpression(c.expr)
		if err != nil {
			t.Errorf("%q: %v", c.expr, err)
			continue
		}
		if e.kind != exCompare || e.args[0].kind != exInterest || e.args[0].name != c.interest || e.args[1].num != c.num {
			t.Errorf("%q: parsed as %s %q %v, want interest %q and %v", c.expr, e.name, e.args[0].name, e.args[1].num, c.interest, c.num)
		}
	}
}
