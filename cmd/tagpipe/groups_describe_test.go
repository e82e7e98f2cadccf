package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupsKafkaFlags: kafka-consumer-groups.sh's list --state, describe with repeated
// --group, --all-groups, --members [--verbose] and --state, and delete of several groups
// (a group with members refused with the broker's reason, the others deleted).
func TestGroupsKafkaFlags(t *testing.T) {
	dir, addr, prod, ctx := twoPartitions(t)
	for p := range int32(2) {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(prod)
	for _, g := range []string{"idle1", "idle2"} {
		offs := kadm.Offsets{}
		offs.Add(kadm.Offset{Topic: "t", Partition: 0, At: 1, LeaderEpoch: -1})
		if err := adm.CommitAllOffsets(ctx, g, offs); err != nil {
			t.Fatal(err)
		}
	}
	live, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("live"), kgo.ConsumeTopics("t"), kgo.ClientID("live-client"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// Consumed records mean the member joined and was assigned; the group is Stable.
	for got := 0; got < 2; {
		fs := live.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("live consumer: %v", err)
		}
		got += fs.NumRecords()
	}

	groups := func(args ...string) (string, error) {
		return runTagpipeErr(append([]string{"--data-dir", dir, "groups"}, append(args, "--bootstrap-server", addr)...)...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := groups(args...)
		if err != nil {
			t.Fatalf("groups %v: %v\n%s", args, err, out)
		}
		return out
	}
	rows := func(out string) []string {
		var names []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			names = append(names, strings.Fields(l)[0])
		}
		return names
	}

	if got := rows(must("list", "--state", "empty")); strings.Join(got, ",") != "idle1,idle2" {
		t.Errorf("list --state empty: %v", got)
	}
	if got := rows(must("list", "--state", "Stable,Dead")); strings.Join(got, ",") != "live" {
		t.Errorf("list --state Stable,Dead: %v", got)
	}
	if got := rows(must("list", "--state")); strings.Join(got, ",") != "idle1,idle2,live" {
		t.Errorf("list --state: %v", got)
	}
	if out, err := groups("list", "--state", "Sleeping"); err == nil || !strings.Contains(err.Error(), "valid states are") {
		t.Errorf("list --state Sleeping: %v\n%s", err, out)
	}

	out := must("describe", "--group", "idle1", "--group", "idle2")
	if !strings.Contains(out, "Group: idle1\tState: Empty") || !strings.Contains(out, "Group: idle2\tState: Empty") {
		t.Errorf("describe two groups:\n%s", out)
	}
	out = must("describe", "--group", "live", "--members", "--verbose")
	if !regexp.MustCompile(`(?m)^GROUP\s+CONSUMER-ID\s+HOST\s+CLIENT-ID\s+#PARTITIONS\s+ASSIGNMENT\nlive\s+\S+\s+\S+\s+live-client\s+2\s+t:0,1$`).MatchString(out) {
		t.Errorf("describe --members --verbose:\n%s", out)
	}
	out = must("describe", "--group", "live", "--members")
	if strings.Contains(out, "ASSIGNMENT") || !regexp.MustCompile(`(?m)^live\s+\S+\s+\S+\s+live-client\s+2$`).MatchString(out) {
		t.Errorf("describe --members:\n%s", out)
	}
	out = must("describe", "--all-groups", "--state")
	for _, want := range []string{`(?m)^idle1\s+\S+\s+\(\d+\)\s+-\s+Empty\s+0$`, `(?m)^live\s+\S+\s+\(\d+\)\s+\S+\s+Stable\s+1$`, `(?m)^idle2\s`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe --all-groups --state lacks %s:\n%s", want, out)
		}
	}
	if out, err := groups("describe", "--group", "nosuch", "--state"); err == nil || !strings.Contains(err.Error(), `group "nosuch" does not exist`) {
		t.Errorf("describe --state of a missing group: %v\n%s", err, out)
	}
	if out, err := groups("describe", "--group", "live", "--all-groups"); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("--group with --all-groups: %v\n%s", err, out)
	}

	out, err = groups("delete", "--group", "idle1", "--group", "live")
	if err == nil || !strings.Contains(err.Error(), "* Group 'live' could not be deleted due to: NON_EMPTY_GROUP") ||
		!strings.Contains(out, "These consumer groups were deleted successfully: 'idle1'") {
		t.Errorf("delete idle1 and live: %v\n%s", err, out)
	}
	live.Close() // leaves the group: Empty
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(must("list", "--state", "Empty"), "live") {
		if time.Now().After(deadline) {
			t.Fatal("live never became Empty after its member left")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := must("delete", "--all-groups"); out != "Deletion of requested consumer groups ('idle2', 'live') was successful.\n" {
		t.Errorf("delete --all-groups printed %q", out)
	}
	if got := rows(must("list")); len(got) != 0 {
		t.Errorf("groups left after delete --all-groups: %v", got)
	}
}

// TestGroupsConsumerProtocol: a KIP-848 consumer group (franz-go's server-side
// balancer) in groups list (type consumer, --type) and groups describe: members with
// their epochs and current/target assignments, the assignor and epochs, and the lag
// per partition with the owning member.
func TestGroupsConsumerProtocol(t *testing.T) {
	dir, addr, prod, ctx := twoPartitions(t)
	for p := range int32(2) {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	next, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("next"), kgo.ConsumeTopics("t"), kgo.ClientID("next-client"),
		kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	for got := 0; got < 2; {
		fs := next.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumer: %v", err)
		}
		got += fs.NumRecords()
	}
	if err := next.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(prod)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "t", Partition: 0, At: 1, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "old", offs); err != nil {
		t.Fatal(err)
	}
	groups := func(args ...string) string {
		t.Helper()
		out, err := runTagpipeErr(append([]string{"--data-dir", dir, "groups"}, append(args, "--bootstrap-server", addr)...)...)
		if err != nil {
			t.Fatalf("groups %v: %v\n%s", args, err, out)
		}
		return out
	}
	out := groups("list")
	if !regexp.MustCompile(`(?m)^next\s+Stable\s+consumer\s+consumer$`).MatchString(out) || !regexp.MustCompile(`(?m)^old\s+Empty\s+classic\s*$`).MatchString(out) {
		t.Errorf("list:\n%s", out)
	}
	if out := groups("list", "--type", "consumer"); strings.Contains(out, "old") || !strings.Contains(out, "next") {
		t.Errorf("list --type consumer:\n%s", out)
	}
	out = groups("describe", "--group", "next", "--members", "--verbose")
	if !regexp.MustCompile(`(?m)^GROUP\s+CONSUMER-ID\s+HOST\s+CLIENT-ID\s+#PARTITIONS\s+CURRENT-EPOCH\s+CURRENT-ASSIGNMENT\s+TARGET-EPOCH\s+TARGET-ASSIGNMENT\nnext\s+\S+\s+\S+\s+next-client\s+2\s+1\s+t:0,1\s+1\s+t:0,1$`).MatchString(out) {
		t.Errorf("describe --members --verbose:\n%s", out)
	}
	out = groups("describe", "--group", "next", "--state")
	if !regexp.MustCompile(`(?m)^next\s+\S+\s+\(\d+\)\s+range\s+Stable\s+1\s+1\s+1$`).MatchString(out) {
		t.Errorf("describe --state:\n%s", out)
	}
	out = groups("describe", "--group", "next")
	if !strings.Contains(out, "Group: next\tState: Stable\tProtocol: range\tMembers: 1") ||
		!regexp.MustCompile(`(?m)^t\s+0\s+1\s+1\s+0\s+0\s+\S+\s+next-client\s+/127.0.0.1$`).MatchString(out) {
		t.Errorf("describe:\n%s", out)
	}
}

// TestGroupsDescribeUncommittedPartition: a member's partition with no committed offset
// shows "-" for CURRENT-OFFSET, LAG and LAG-SECONDS (as kafka-consumer-groups.sh), not
// a lag of the whole log or 0; a committed partition beside it keeps its numbers.
func TestGroupsDescribeUncommittedPartition(t *testing.T) {
	dir, addr, prod, ctx := partitionedTopic(t, 3)
	// p0: one record, committed; p1: two records, none committed; p2: empty.
	for _, p := range []int32{0, 1, 1} {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	live, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	var first *kgo.Record
	for got := 0; got < 3; {
		fs := live.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumer: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Partition == 0 {
				first = r
			}
			got++
		})
	}
	if err := live.CommitRecords(ctx, first); err != nil {
		t.Fatal(err)
	}

	out := runTagpipe(t, "--data-dir", dir, "groups", "describe", "--group", "g", "--bootstrap-server", addr)
	for _, want := range []string{
		`(?m)^TOPIC\s+PARTITION\s+CURRENT-OFFSET\s+LOG-END-OFFSET\s+LAG\s+LAG-SECONDS\s+MEMBER`,
		`(?m)^t\s+0\s+1\s+1\s+0\s+0\s+\S+`,
		`(?m)^t\s+1\s+-\s+2\s+-\s+-\s+\S+`,
		`(?m)^t\s+2\s+-\s+0\s+-\s+-\s+\S+`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("describe lacks %s:\n%s", want, out)
		}
	}
}
