package main

import (
	"strings"
	"testing"
)

// TestTopicsKafkaFlags: kafka-topics.sh's --if-not-exists, --if-exists, --topic as a
// regular expression for list/describe/alter/delete, --exclude-internal,
// --topics-with-overrides and the partition reports against the built-in broker.
func TestTopicsKafkaFlags(t *testing.T) {
	dir, addr := t.TempDir(), startTestBroker(t).Addr()
	topics := func(args ...string) (string, error) {
		return runTagpipeErr(append([]string{"--data-dir", dir, "topics"}, append(args, "--bootstrap-server", addr)...)...)
	}
	must := func(want string, args ...string) {
		t.Helper()
		out, err := topics(args...)
		if err != nil || out != want {
			t.Fatalf("topics %v: %v, printed %q; want %q", args, err, out, want)
		}
	}
	mustFail := func(want string, args ...string) {
		t.Helper()
		out, err := topics(args...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("topics %v: %v (printed %q); want an error with %q", args, err, out, want)
		}
	}

	must("Created topic t1.\n", "create", "--topic", "t1", "--partitions", "1", "--config", "retention.ms=1000")
	must("", "create", "--topic", "t1", "--partitions", "1", "--if-not-exists")
	mustFail("TOPIC_ALREADY_EXISTS", "create", "--topic", "t1", "--partitions", "1")
	for _, n := range []string{"orders.eu", "orders.us", "logs"} {
		must("Created topic "+n+".\n", "create", "--topic", n, "--partitions", "2")
	}

	must("orders.eu\norders.us\n", "list", "--topic", "orders.*")
	must("logs\norders.eu\n", "list", "--topic", "logs,orders.eu")
	must("logs\norders.eu\norders.us\nt1\n", "list", "--exclude-internal")
	must("orders.eu\n", "list", "--topic", "orders.eu") // a name, not a regex: orders.eu only
	must("", "list", "--topic", "nosuch")               // list never fails on a missing topic, as Kafka's
	mustFail("bad --topic", "list", "--topic", "orders(")

	// __consumer_offsets has overrides (Kafka's cleanup.policy=compact, …) as in Kafka.
	out, err := topics("describe", "--topics-with-overrides")
	if err != nil || !strings.HasPrefix(out, "Topic: __consumer_offsets\t") || !strings.Contains(out, "cleanup.policy=compact") || strings.Count(out, "\n") != 2 {
		t.Fatalf("describe --topics-with-overrides: %v\n%s", err, out)
	}
	out, err = topics("describe", "--topics-with-overrides", "--exclude-internal")
	if err != nil || !strings.HasPrefix(out, "Topic: t1\t") || !strings.HasSuffix(out, "\tConfigs: retention.ms=1000\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("describe --topics-with-overrides --exclude-internal: %v\n%s", err, out)
	}
	// The internal topic refuses deletion with the broker's reason, not
	// INVALID_TOPIC_EXCEPTION's "an invalid topic"; writes say it is internal.
	mustFail("INVALID_TOPIC_EXCEPTION: Topic __consumer_offsets is a kafka internal topic and is not allowed to be marked for deletion.", "delete", "--topic", "__consumer_offsets")
	mustFail("(__consumer_offsets is an internal topic: only the broker writes it)", "delete-records", "--topic", "__consumer_offsets", "--partition", "0", "--offset", "-1")
	pout, perr := runTagpipeIn("x\n", "--data-dir", dir, "produce", "--topic", "__consumer_offsets", "--bootstrap-server", addr)
	if perr == nil || !strings.Contains(perr.Error(), "(__consumer_offsets is an internal topic: only the broker writes it)") {
		t.Fatalf("produce to __consumer_offsets: %v\n%s", perr, pout)
	}
	// One node, every partition led by it with a full ISR: nothing under-replicated or
	// unavailable; with min.insync.replicas 1 and one replica, every partition is at the
	// minimum.
	must("", "describe", "--under-replicated-partitions")
	must("", "describe", "--unavailable-partitions")
	must("", "describe", "--under-min-isr-partitions")
	must("\tTopic: logs\tPartition: 0\tLeader: 0\tReplicas: 0\tIsr: 0\n\tTopic: logs\tPartition: 1\tLeader: 0\tReplicas: 0\tIsr: 0\n",
		"describe", "--topic", "logs", "--at-min-isr-partitions")
	out, err = topics("describe", "--topic", "orders.*")
	if err != nil || strings.Count(out, "Topic: orders.") != 2 || strings.Contains(out, "Topic: logs") {
		t.Fatalf("describe --topic orders.*: %v\n%s", err, out)
	}

	must("", "describe", "--topic", "nosuch", "--if-exists")
	mustFail(`topic "nosuch" does not exist`, "describe", "--topic", "nosuch")
	mustFail(`no topic matches --topic "nosuch.*"`, "alter", "--topic", "nosuch.*", "--partitions", "3")
	must("", "alter", "--topic", "nosuch.*", "--partitions", "3", "--if-exists")
	must("", "delete", "--topic", "nosuch", "--if-exists")

	must("Altered topic orders.eu.\nAltered topic orders.us.\n", "alter", "--topic", "orders.*", "--partitions", "3")
	out, err = topics("describe", "--topic", "orders.*")
	if err != nil || strings.Count(out, "PartitionCount: 3\t") != 2 {
		t.Fatalf("after alter --topic orders.*: %v\n%s", err, out)
	}
	must("Deleted topic orders.eu.\nDeleted topic orders.us.\n", "delete", "--topic", "orders.*")
	must("__consumer_offsets\nlogs\nt1\n", "list")
}
