package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupsResetOffsetsScenarios: kafka-consumer-groups.sh's --to-offset (clamped),
// --to-current with --export, --from-file, --by-duration, TOPIC:P selection and
// --delete-offsets, each checked against the offsets the broker then holds.
func TestGroupsResetOffsetsScenarios(t *testing.T) {
	dir, addr, cl, ctx := partitionedTopic(t, 3)
	old := time.Now().Add(-3 * time.Hour)
	for p := range int32(3) {
		for i := range 10 {
			ts := old
			if i >= 6 {
				ts = time.Now() // records 6..9 are recent
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("v"), Timestamp: ts}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	adm := kadm.NewClient(cl)
	offs := kadm.Offsets{}
	for p := range int32(3) {
		offs.Add(kadm.Offset{Topic: "t", Partition: p, At: 2, LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(ctx, "g", offs); err != nil {
		t.Fatal(err)
	}
	committed := func() string {
		t.Helper()
		got, err := adm.FetchOffsets(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, o := range got.Offsets().Sorted() {
			fmt.Fprintf(&b, "%s:%d=%d ", o.Topic, o.Partition, o.At)
		}
		return strings.TrimSpace(b.String())
	}
	reset := func(args ...string) string {
		t.Helper()
		return runTagpipe(t, append([]string{"--data-dir", dir, "groups", "reset-offsets", "--bootstrap-server", addr, "--group", "g"}, args...)...)
	}

	reset("--topic", "t:1", "--to-offset", "99", "--execute") // clamped to the end
	if got := committed(); got != "t:0=2 t:1=10 t:2=2" {
		t.Fatalf("after --to-offset 99 on t:1: %s", got)
	}
	csv := reset("--to-current", "--export")
	if csv != "t,0,2\nt,1,10\nt,2,2\n" {
		t.Fatalf("--to-current --export printed %q", csv)
	}
	file := filepath.Join(dir, "offsets.csv")
	os.WriteFile(file, []byte("t,0,5\nt,2,7\n"), 0o644)
	reset("--from-file", file, "--execute")
	if got := committed(); got != "t:0=5 t:1=10 t:2=7" {
		t.Fatalf("after --from-file: %s", got)
	}
	reset("--topic", "t", "--by-duration", "PT1H", "--execute") // the first record of the last hour
	if got := committed(); got != "t:0=6 t:1=6 t:2=6" {
		t.Fatalf("after --by-duration PT1H: %s", got)
	}
	// --to-datetime as kafka-consumer-groups.sh takes it: milliseconds, a zone or UTC.
	reset("--to-datetime", old.Add(-time.Minute).In(time.FixedZone("", 8*3600)).Format("2006-01-02T15:04:05.000-07:00"), "--execute")
	if got := committed(); got != "t:0=0 t:1=0 t:2=0" {
		t.Fatalf("after --to-datetime before the first record: %s", got)
	}
	reset("--to-datetime", old.Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000"), "--execute")
	if got := committed(); got != "t:0=6 t:1=6 t:2=6" {
		t.Fatalf("after --to-datetime an hour after the old records: %s", got)
	}
	if out, err := runTagpipeErr("--data-dir", dir, "groups", "reset-offsets", "--bootstrap-server", addr, "--group", "g", "--to-earliest", "--to-offset", "1"); err == nil {
		t.Fatalf("two scenarios accepted: %s", out)
	}
	if out, err := runTagpipeErr("--data-dir", dir, "groups", "reset-offsets", "--bootstrap-server", addr, "--group", "g", "--topic", "t:7", "--to-earliest"); err == nil || !strings.Contains(err.Error(), "no such partition: t:7") {
		t.Fatalf("unknown partition: %v %s", err, out)
	}
	out := runTagpipe(t, "--data-dir", dir, "groups", "delete-offsets", "--bootstrap-server", addr, "--group", "g", "--topic", "t:0,2")
	if strings.Count(out, "Successful") != 2 {
		t.Fatalf("delete-offsets printed:\n%s", out)
	}
	if got := committed(); got != "t:1=6" {
		t.Fatalf("after delete-offsets t:0,2: %s", got)
	}
}

func TestParseKafkaDatetime(t *testing.T) {
	want := time.Date(2026, 11, 25, 10, 30, 0, 123e6, time.UTC)
	for _, in := range []string{"2026-11-25T10:30:00.123", "2026-11-25T10:30:00.123Z", "2026-11-25T18:30:00.123+08:00",
		"2026-11-25T18:30:00.123+0800", "2026-11-25T18:30:00.123+08", "2026-11-25T05:30:00.123-05:00"} {
		if got, err := parseKafkaDatetime(in); err != nil || !got.Equal(want) {
			t.Errorf("parseKafkaDatetime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if got, err := parseKafkaDatetime("2026-11-25T10:30:00"); err != nil || !got.Equal(want.Truncate(time.Second)) {
		t.Errorf("no fraction: %v, %v", got, err)
	}
	for _, bad := range []string{"", "yesterday", "2026-11-25", "2026-11-25 10:30:00.000", "25-11-2026T10:30:00.000"} {
		if _, err := parseKafkaDatetime(bad); err == nil {
			t.Errorf("parseKafkaDatetime(%q) accepted", bad)
		}
	}
}

func TestParseResetDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"P1DT2H": 26 * time.Hour, "PT30M": 30 * time.Minute, "PT1.5S": 1500 * time.Millisecond, "P2D": 48 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseResetDuration(in); err != nil || got != want {
			t.Errorf("parseResetDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"P", "PT", "1d", "-1h", "P1H"} {
		if _, err := parseResetDuration(bad); err == nil {
			t.Errorf("parseResetDuration(%q) accepted", bad)
		}
	}
}

// TestGroupsResetOffsetsGroups: kafka-consumer-groups.sh's repeatable --group and
// --all-groups reset each group in turn, printed with a GROUP column; --export of several
// groups writes group,topic,partition,offset and --from-file reads it back per group; a
// group that fails does not stop the others.
func TestGroupsResetOffsetsGroups(t *testing.T) {
	dir, addr, cl, ctx := partitionedTopic(t, 2)
	for p := range int32(2) {
		for range 5 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	adm := kadm.NewClient(cl)
	for i, g := range []string{"a", "b", "c"} {
		offs := kadm.Offsets{}
		for p := range int32(2) {
			offs.Add(kadm.Offset{Topic: "t", Partition: p, At: int64(i + 1), LeaderEpoch: -1})
		}
		if err := adm.CommitAllOffsets(ctx, g, offs); err != nil {
			t.Fatal(err)
		}
	}
	committed := func() string {
		t.Helper()
		var b strings.Builder
		for _, g := range []string{"a", "b", "c"} {
			got, err := adm.FetchOffsets(ctx, g)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range got.Offsets().Sorted() {
				fmt.Fprintf(&b, "%s/%s:%d=%d ", g, o.Topic, o.Partition, o.At)
			}
		}
		return strings.TrimSpace(b.String())
	}
	groups := func(args ...string) string {
		t.Helper()
		return runTagpipe(t, append([]string{"--data-dir", dir, "groups", "reset-offsets", "--bootstrap-server", addr}, args...)...)
	}

	out := groups("--group", "a", "--group", "c", "--to-latest", "--execute")
	var rows []string
	for l := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(l); len(f) == 5 && f[1] == "t" {
			rows = append(rows, strings.Join(f, " "))
		}
	}
	if !strings.HasPrefix(out, "GROUP") || strings.Join(rows, "|") != "a t 0 1 5|a t 1 1 5|c t 0 3 5|c t 1 3 5" ||
		!strings.Contains(out, "Reset offsets of group a.") || !strings.Contains(out, "Reset offsets of group c.") {
		t.Fatalf("--group a --group c printed:\n%s", out)
	}
	if got := committed(); got != "a/t:0=5 a/t:1=5 b/t:0=2 b/t:1=2 c/t:0=5 c/t:1=5" {
		t.Fatalf("after --group a --group c --to-latest: %s", got)
	}

	out = groups("--all-groups", "--topic", "t:1", "--to-earliest")
	if strings.Count(out, " t ") != 3 || !strings.Contains(out, "Dry run") {
		t.Fatalf("--all-groups dry run printed:\n%s", out)
	}
	if got := committed(); got != "a/t:0=5 a/t:1=5 b/t:0=2 b/t:1=2 c/t:0=5 c/t:1=5" {
		t.Fatalf("a dry run changed offsets: %s", got)
	}

	csv := groups("--all-groups", "--to-current", "--export")
	if csv != "a,t,0,5\na,t,1,5\nb,t,0,2\nb,t,1,2\nc,t,0,5\nc,t,1,5\n" {
		t.Fatalf("--all-groups --export printed %q", csv)
	}
	if one := groups("--group", "b", "--to-current", "--export"); one != "t,0,2\nt,1,2\n" {
		t.Fatalf("one --group --export printed %q", one)
	}
	file := filepath.Join(dir, "groups.csv")
	os.WriteFile(file, []byte("a,t,0,1\nb,t,1,4\n"), 0o644)
	groups("--group", "a", "--group", "b", "--from-file", file, "--execute")
	if got := committed(); got != "a/t:0=1 a/t:1=5 b/t:0=2 b/t:1=4 c/t:0=5 c/t:1=5" {
		t.Fatalf("after --from-file of two groups: %s", got)
	}
	if out, err := runTagpipeErr("--data-dir", dir, "groups", "reset-offsets", "--bootstrap-server", addr, "--group", "a", "--group", "b", "--from-file", filepath.Join(dir, "offsets.csv")); err == nil {
		t.Fatalf("missing file accepted: %s", out)
	}

	// A group with no committed offsets fails; the one after it is still reset.
	out, err := runTagpipeErr("--data-dir", dir, "groups", "reset-offsets", "--bootstrap-server", addr, "--group", "none", "--group", "b", "--to-earliest", "--execute")
	if err == nil || !strings.Contains(err.Error(), `group "none" has no committed offsets`) || !strings.Contains(out, "Reset offsets of group b.") {
		t.Fatalf("--group none --group b: %v\n%s", err, out)
	}
	if got := committed(); got != "a/t:0=1 a/t:1=5 b/t:0=0 b/t:1=0 c/t:0=5 c/t:1=5" {
		t.Fatalf("after --group none --group b --to-earliest: %s", got)
	}
	if out, err := runTagpipeErr("--data-dir", dir, "groups", "reset-offsets", "--bootstrap-server", addr, "--group", "a", "--all-groups", "--to-earliest"); err == nil {
		t.Fatalf("--group with --all-groups accepted: %s", out)
	}
}
