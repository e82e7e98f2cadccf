package main

import (
	"context"
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
	dir, addr := t.TempDir(), startTestBroker(t).Addr()
	runTagpipe(t, "--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", "t", "--partitions", "3")
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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
