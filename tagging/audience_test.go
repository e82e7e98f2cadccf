package tagging

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAudienceEmptyDay: a day the audience was materialised empty is exported as empty
// even when the audience ran for a later day (an empty day leaves no rows in
// ads_audiences; sys_audience_runs records it), and with --tombstones every earlier
// member is deleted. A day never materialised is still refused, before, between and
// after the days run, and a day whose members are gone is refused, not taken for empty.
func TestAudienceEmptyDay(t *testing.T) {
	ctx := context.Background()
	tg := edgeData(t)
	const d1, d2, d3, d4, d5 = "2024-05-10", "2024-05-11", "2024-05-12", "2024-05-13", "2024-05-14"
	for i, ds := range []string{d1, d2, d3, d4} {
		if _, err := tg.RunModel(ctx, ds, i == 0); err != nil {
			t.Fatal(err)
		}
	}
	run := func(ds, expr string) int64 {
		t.Helper()
		n, err := tg.RunAudience(ctx, &Audience{Name: "a", Expression: expr}, ds)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// d1: every user with a profile; d2: no one (weights are at most 1); d3: not run;
	// d4: u1 only.
	if n := run(d1, "NOT interest:A > 5"); n < 2 {
		t.Fatalf("%s: %d members, want every profiled user", d1, n)
	}
	if n := run(d2, "interest:A > 5"); n != 0 {
		t.Fatalf("%s: %d members, want 0", d2, n)
	}
	if n := run(d4, "interest:A > 0"); n != 1 {
		t.Fatalf("%s: %d members, want 1", d4, n)
	}
	members1, err := tg.AudienceMembers(ctx, "a", d1)
	if err != nil {
		t.Fatal(err)
	}

	got, err := tg.AudienceMembers(ctx, "a", d2)
	if err != nil || len(got) != 0 {
		t.Fatalf("%s, materialised empty before a later run: %v, %v", d2, got, err)
	}
	var buf bytes.Buffer
	if err := ExportCSV(&buf, "a", d2, got); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "audience,dt,user_id\n" {
		t.Fatalf("csv of the empty day: %q", buf.String())
	}
	since, leavers2, err := tg.AudienceLeavers(ctx, "a", d2)
	if err != nil || since != d1 || !reflect.DeepEqual(leavers2, members1) {
		t.Fatalf("leavers on %s: since %q, %v, %v; want %s, %v", d2, since, leavers2, err, d1, members1)
	}
	for _, ds := range []string{"2024-05-09", d3, d5} {
		if m, err := tg.AudienceMembers(ctx, "a", ds); !errors.Is(err, ErrNotMaterialised) || m != nil {
			t.Errorf("%s, never materialised: %v, %v; want ErrNotMaterialised", ds, m, err)
		}
	}
	// The day after the empty one counts it as materialised, and its members as earlier.
	since, leavers, err := tg.AudienceLeavers(ctx, "a", d4)
	if err != nil || since != d1 || len(leavers) != len(members1)-1 {
		t.Fatalf("leavers on %s: since %q, %v, %v", d4, since, leavers, err)
	}
	// A first day materialised empty is the first day, though it has no members.
	if _, err := tg.RunAudience(ctx, &Audience{Name: "b", Expression: "interest:A > 5"}, d1); err != nil {
		t.Fatal(err)
	}
	if since, leavers, err := tg.AudienceLeavers(ctx, "b", d2); err != nil || since != d1 || leavers != nil {
		t.Fatalf("leavers of b on %s: since %q, %v, %v", d2, since, leavers, err)
	}

	// The export of the empty day to a compacted topic: a tombstone per earlier member.
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audience-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	if err := ExportKafka(ctx, cluster.ListenAddrs(), nil, "audience-a", "a", d2, got, leavers2); err != nil {
		t.Fatal(err)
	}
	var keys []string
	consumeTopic(t, cluster.ListenAddrs(), "audience-a", func(r *kgo.Record) {
		if r.Value != nil {
			t.Errorf("record %s = %q on an empty day, want a tombstone", r.Key, r.Value)
		}
		keys = append(keys, string(r.Key))
	}, func() bool { return len(keys) >= len(members1) })
	if !reflect.DeepEqual(keys, members1) {
		t.Fatalf("tombstones for %v, want %v", keys, members1)
	}

	// Members whose partition is gone (retention, or a re-run that emptied the day and
	// stopped before recording it) are not an empty audience.
	mustExec(t, tg.db, "DELETE FROM ads_audiences WHERE dt = DATE '"+d1+"'")
	if m, err := tg.AudienceMembers(ctx, "a", d1); !errors.Is(err, ErrNotMaterialised) || !strings.Contains(err.Error(), "has none for that day") {
		t.Fatalf("%s without its members: %v, %v; want ErrNotMaterialised", d1, m, err)
	}
	// Members committed without their run (a crash between the two commits) are a
	// materialisation of their own.
	mustExec(t, tg.db, "DELETE FROM sys_audience_runs WHERE dt = DATE '"+d4+"'")
	if m, err := tg.AudienceMembers(ctx, "a", d4); err != nil || !reflect.DeepEqual(m, []string{"u1"}) {
		t.Fatalf("%s without its run: %v, %v", d4, m, err)
	}
}

// TestAudienceWithoutRunTable: a warehouse written before sys_audience_runs keeps the
// catalog's rule: the audience's last run, if empty, is exported empty; an earlier
// empty day is refused (there is nothing to tell it from a day never run).
func TestAudienceWithoutRunTable(t *testing.T) {
	ctx := context.Background()
	tg := edgeData(t)
	const d1, d2, d3 = "2024-05-10", "2024-05-11", "2024-05-12"
	for i, ds := range []string{d1, d2, d3} {
		if _, err := tg.RunModel(ctx, ds, i == 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []struct{ ds, expr string }{{d1, "interest:A > 0"}, {d2, "interest:A > 5"}, {d3, "interest:A > 5"}} {
		if _, err := tg.RunAudience(ctx, &Audience{Name: "a", Expression: r.expr}, r.ds); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(t, tg.db, "DROP TABLE sys_audience_runs")
	if m, err := tg.AudienceMembers(ctx, "a", d1); err != nil || !reflect.DeepEqual(m, []string{"u1"}) {
		t.Fatalf("%s: %v, %v", d1, m, err)
	}
	if m, err := tg.AudienceMembers(ctx, "a", d3); err != nil || len(m) != 0 {
		t.Fatalf("%s, the last run, empty: %v, %v", d3, m, err)
	}
	if m, err := tg.AudienceMembers(ctx, "a", d2); !errors.Is(err, ErrNotMaterialised) || !strings.Contains(err.Error(), "its last run was for "+d3) {
		t.Fatalf("%s, an earlier empty day, no run table: %v, %v; want ErrNotMaterialised", d2, m, err)
	}
	if since, leavers, err := tg.AudienceLeavers(ctx, "a", d3); err != nil || since != d1 || !reflect.DeepEqual(leavers, []string{"u1"}) {
		t.Fatalf("leavers on %s: since %q, %v, %v", d3, since, leavers, err)
	}
}

// consumeTopic reads topic from its start with kgo, handing each record to fn, until
// done says so; it fails the test when the records have not come within 20 s.
func consumeTopic(t *testing.T, brokers []string, topic string, fn func(*kgo.Record), done func() bool) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("topic %s: timed out reading its records", topic)
		}
		fs.EachRecord(fn)
	}
}
