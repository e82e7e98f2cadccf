package main

import (
	"strings"
	"testing"
)

// consume --formatter decodes __consumer_offsets as kafka-console-consumer.sh's
// OffsetsMessageFormatter and GroupMetadataMessageFormatter print it; Kafka's class
// names work too.
func TestConsumeOffsetsFormatter(t *testing.T) {
	dir, addr := t.TempDir(), startTestBroker(t).Addr()
	runTagpipe(t, "--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", "f", "--partitions", "1")
	printf := func(args ...string) string {
		t.Helper()
		out, err := runTagpipeErr(append([]string{"--data-dir", dir, "consume", "--bootstrap-server", addr,
			"--topic", "__consumer_offsets", "--from-beginning", "--max-messages", "1"}, args...)...)
		if err != nil {
			t.Fatalf("consume %v: %v\n%s", args, err, out)
		}
		return out
	}
	runTagpipeIn("a\nb\n", "--data-dir", dir, "produce", "--bootstrap-server", addr, "--topic", "f")
	if out, err := runTagpipeErr("--data-dir", dir, "consume", "--bootstrap-server", addr, "--topic", "f", "--from-beginning", "--group", "fg", "--max-messages", "2"); err != nil {
		t.Fatalf("consume in a group: %v\n%s", err, out)
	}
	const commit = `{"key":{"type":1,"data":{"group":"fg","topic":"f","partition":0}},"value":{"version":3,"data":{"offset":2,`
	for _, name := range []string{"offsets", "org.apache.kafka.tools.consumer.OffsetsMessageFormatter", "kafka.coordinator.group.GroupMetadataManager$OffsetsMessageFormatter"} {
		if out := printf("--formatter", name); !strings.HasPrefix(out, commit) {
			t.Errorf("--formatter %s:\n%s", name, out)
		}
	}
	if out := printf("--formatter", "group-metadata"); !strings.HasPrefix(out, `{"key":{"type":2,"data":{"group":"fg"}},"value":{"version":3,"data":{"protocolType":"consumer","generation":1,`) {
		t.Errorf("--formatter group-metadata:\n%s", out)
	}
	if out, err := runTagpipeErr("--data-dir", dir, "consume", "--bootstrap-server", addr, "--topic", "f", "--formatter", "x"); err == nil || !strings.Contains(err.Error(), `unknown --formatter "x"`) {
		t.Errorf("--formatter x: %v\n%s", err, out)
	}
}

// TestConsumeMissingPartition: --partition beyond the topic's partitions is an error
// naming the ones it has, not a silent wait.
func TestConsumeMissingPartition(t *testing.T) {
	dir, addr, _, _ := partitionedTopic(t, 3)
	out, err := runTagpipeErr("--data-dir", dir, "consume", "--bootstrap-server", addr, "--topic", "t", "--partition", "7", "--offset", "0", "--timeout-ms", "2000")
	if err == nil || !strings.Contains(err.Error(), `topic "t" has no partition 7: its partitions are 0 to 2`) {
		t.Fatalf("consume --partition 7 of 3: %v\n%s", err, out)
	}
	runTagpipe(t, "--data-dir", dir, "consume", "--bootstrap-server", addr, "--topic", "t", "--partition", "2", "--offset", "0", "--timeout-ms", "200")
}
