package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLogDirsCommand: tagpipe log-dirs --describe prints kafka-log-dirs.sh's two lines
// and JSON document: the broker's log dir (an absolute path) with each partition's size,
// only the topics of --topic-list when given; a broker not in the cluster is refused.
func TestLogDirsCommand(t *testing.T) {
	dir, addr, cl, ctx := twoPartitions(t)
	runTagpipe(t, "--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", "u", "--partitions", "1")
	for range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("some value")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	logDirs := func(args ...string) (string, error) {
		return runTagpipeErr(append([]string{"--data-dir", dir, "log-dirs"}, append(args, "--bootstrap-server", addr)...)...)
	}
	parse := func(out string) logDirsDoc {
		t.Helper()
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 3 || lines[0] != "Querying brokers for log directories information" || lines[1] != "Received log directory information from brokers 0" {
			t.Fatalf("log-dirs printed:\n%s", out)
		}
		var doc logDirsDoc
		if err := json.Unmarshal([]byte(lines[2]), &doc); err != nil {
			t.Fatalf("%v: %s", err, lines[2])
		}
		if doc.Version != 1 || len(doc.Brokers) != 1 || doc.Brokers[0].Broker != 0 || len(doc.Brokers[0].LogDirs) != 1 {
			t.Fatalf("log-dirs document: %s", lines[2])
		}
		return doc
	}
	partitions := func(doc logDirsDoc) (names []string) {
		for _, p := range doc.Brokers[0].LogDirs[0].Partitions {
			names = append(names, p.Partition)
		}
		return names
	}

	out, err := logDirs("--describe", "--topic-list", "t")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `{"version":1,"brokers":[{"broker":0,"logDirs":[{"logDir":"`) || !strings.Contains(out, `"error":null,"partitions":[{"partition":"t-0","size":`) {
		t.Errorf("not kafka-log-dirs.sh's document:\n%s", out)
	}
	doc := parse(out)
	d := doc.Brokers[0].LogDirs[0]
	if !filepath.IsAbs(d.LogDir) || strings.Join(partitions(doc), ",") != "t-0,t-1" || d.Partitions[0].Size <= d.Partitions[1].Size {
		t.Errorf("log-dirs --topic-list t:\n%s", out)
	}
	out, err = logDirs("--describe", "--broker-list", "0")
	if err != nil {
		t.Fatal(err)
	}
	// The internal __consumer_offsets is a topic on the log dir too, as in Kafka.
	if got := strings.Join(partitions(parse(out)), ","); got != "__consumer_offsets-0,t-0,t-1,u-0" {
		t.Errorf("log-dirs without --topic-list: partitions %s", got)
	}
	if out, err := logDirs("--describe", "--broker-list", "0,7"); err == nil || !strings.Contains(err.Error(), "do not exist from --broker-list: 7. Current existent brokers: 0") {
		t.Errorf("--broker-list 0,7: %v\n%s", err, out)
	}
	if out, err := logDirs(); err == nil || !strings.Contains(err.Error(), "give --describe") {
		t.Errorf("without --describe: %v\n%s", err, out)
	}
}
