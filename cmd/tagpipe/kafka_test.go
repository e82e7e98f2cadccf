package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/tagpipe/tagpipe/broker"
)

// startTestBroker runs the built-in broker on 127.0.0.1 (retention and the cleaner left
// alone) until the test ends.
func startTestBroker(t *testing.T) *broker.Broker { return startTestBrokerWith(t, nil) }

// startTestBrokerWith is startTestBroker with the options changed by edit first.
func startTestBrokerWith(t *testing.T, edit func(*broker.Options)) *broker.Broker {
	t.Helper()
	o := broker.DefaultOptions()
	o.Dir, o.Listen, o.Logger = t.TempDir(), "127.0.0.1:0", slog.New(slog.DiscardHandler)
	o.RetentionCheckInterval, o.CleanerBackoff = -1, -1
	o.OffsetsTopicPartitions = 1 // not 50: each partition's log costs a broker start and stop time
	if edit != nil {
		edit(&o)
	}
	b, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Stop(ctx)
	})
	return b
}

// TestProduceConsumeCommands: tagpipe produce and consume against a broker, as
// kafka-console-producer.sh and kafka-console-consumer.sh: keys split at the separator,
// an empty value stays empty, and a null key or value (a tombstone) prints as "null".
func TestProduceConsumeCommands(t *testing.T) {
	dir, addr := t.TempDir(), startTestBroker(t).Addr()
	runTagpipe(t, "--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", "t", "--partitions", "1")

	if out, err := runTagpipeIn("k1:hello\nk2:\n", "--data-dir", dir, "produce", "--bootstrap-server", addr, "--topic", "t", "--key-separator", ":"); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k1")}, &kgo.Record{Value: []byte("no key")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := runTagpipe(t, "--data-dir", dir, "consume", "--bootstrap-server", addr, "--topic", "t", "--from-beginning",
		"--print-key", "--separator", ":", "--max-messages", "4")
	if want := "k1:hello\nk2:\nk1:null\nnull:no key\n"; got != want {
		t.Fatalf("consume printed %q, want %q", got, want)
	}
}

// twoPartitions is partitionedTopic with two partitions.
func twoPartitions(t *testing.T) (dir, addr string, cl *kgo.Client, ctx context.Context) {
	t.Helper()
	return partitionedTopic(t, 2)
}

// partitionedTopic starts a broker with a topic "t" of n partitions (made with tagpipe
// topics create) and returns the data dir, the broker's address, a client producing to
// t with explicit partitions, and a context bounding the test.
func partitionedTopic(t *testing.T, n int) (dir, addr string, cl *kgo.Client, ctx context.Context) {
	t.Helper()
	dir, addr = t.TempDir(), startTestBroker(t).Addr()
	runTagpipe(t, "--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", "t", "--partitions", strconv.Itoa(n))
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return dir, addr, cl, ctx
}

// TestDeleteRecordsCommand: tagpipe topics delete-records moves the log start of every
// partition, or of those named, as kafka-delete-records.sh; -1 deletes every record; a
// partition the topic does not have is an error.
func TestDeleteRecordsCommand(t *testing.T) {
	dir, addr, cl, ctx := twoPartitions(t)
	for i := range 20 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: int32(i % 2), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	out := runTagpipe(t, "--data-dir", dir, "topics", "delete-records", "--bootstrap-server", addr, "--topic", "t", "--offset", "4")
	if want := "partition: t-0\tlow_watermark: 4\npartition: t-1\tlow_watermark: 4\n"; out != want {
		t.Fatalf("delete-records printed %q, want %q", out, want)
	}
	out = runTagpipe(t, "--data-dir", dir, "topics", "delete-records", "--bootstrap-server", addr, "--topic", "t", "--partition", "1", "--offset", "-1")
	if want := "partition: t-1\tlow_watermark: 10\n"; out != want {
		t.Fatalf("delete-records -1 printed %q, want %q", out, want)
	}
	if out, err := runTagpipeErr("--data-dir", dir, "topics", "delete-records", "--bootstrap-server", addr, "--topic", "t", "--partition", "5", "--offset", "1"); err == nil || !strings.Contains(out+err.Error(), "no partition 5") {
		t.Fatalf("partition 5: %v\n%s", err, out)
	}
}

// TestGetOffsetsCommand: tagpipe topics get-offsets prints topic:partition:offset as
// kafka-get-offsets.sh: the end, the start, and the first offset at or after a time
// (the end when no record is that late).
func TestGetOffsetsCommand(t *testing.T) {
	dir, addr, cl, ctx := twoPartitions(t)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10 {
		r := &kgo.Record{Partition: int32(i % 2), Value: []byte("v"), Timestamp: t0.Add(time.Duration(i) * time.Minute)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	get := func(at string) string {
		return runTagpipe(t, "--data-dir", dir, "topics", "get-offsets", "--bootstrap-server", addr, "--topic", "t", "--time", at)
	}
	for at, want := range map[string]string{
		"latest":               "t:0:5\nt:1:5\n",
		"-2":                   "t:0:0\nt:1:0\n",
		"2026-11-01T00:04:00Z": "t:0:2\nt:1:2\n", // partition 0 holds minutes 0,2,4,…; 1 holds 1,3,5,…
		strconv.FormatInt(t0.Add(time.Hour).UnixMilli(), 10): "t:0:5\nt:1:5\n",
	} {
		if got := get(at); got != want {
			t.Errorf("--time %s: %q, want %q", at, got, want)
		}
	}
	if _, err := runTagpipeErr("--data-dir", dir, "topics", "get-offsets", "--bootstrap-server", addr, "--topic", "t", "--time", "soon"); err == nil {
		t.Error("a bad --time was accepted")
	}
}

// TestTransactionsCommands: tagpipe transactions list and describe show an open
// transaction with its partitions, then its completed state, as kafka-transactions.sh;
// describe-producers shows the partition's producer with the transaction's first offset,
// then with none and the commit marker's coordinator epoch; an unknown partition is an
// error.
func TestTransactionsCommands(t *testing.T) {
	dir, addr := t.TempDir(), startTestBroker(t).Addr()
	runTagpipe(t, "--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", "t", "--partitions", "2")
	p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("orders-1"), kgo.DefaultProduceTopic("t"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Partition: 1, Value: []byte("x"), Timestamp: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}
	if err := p.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	out := runTagpipe(t, "--data-dir", dir, "transactions", "list", "--bootstrap-server", addr)
	if !regexp.MustCompile(`(?m)^orders-1 +\d+ +\d+ +Ongoing$`).MatchString(out) {
		t.Fatalf("list:\n%s", out)
	}
	out = runTagpipe(t, "--data-dir", dir, "transactions", "describe", "--bootstrap-server", addr, "--transactional-id", "orders-1")
	if !regexp.MustCompile(`(?m)^orders-1 .* Ongoing +\d+ +\S+ +t-1$`).MatchString(out) {
		t.Fatalf("describe:\n%s", out)
	}
	producers := []string{"--data-dir", dir, "transactions", "describe-producers", "--bootstrap-server", addr, "--topic", "t", "--partition", "1"}
	pid := strconv.FormatInt(rec.ProducerID, 10)
	// Epoch 0, no marker yet (coordinator epoch -1), sequence 0, the record's
	// timestamp, the transaction starting at offset 0.
	out = runTagpipe(t, producers...)
	if !regexp.MustCompile(`(?m)\APRODUCER-ID +PRODUCER-EPOCH +LATEST-COORDINATOR-EPOCH +LAST-SEQUENCE +LAST-TIMESTAMP +CURRENT-TRANSACTION-START-OFFSET\n` +
		pid + ` +0 +-1 +0 +2024-05-01T10:00:00Z +0\n\z`).MatchString(out) {
		t.Fatalf("describe-producers, open transaction:\n%s", out)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	out = runTagpipe(t, "--data-dir", dir, "transactions", "list", "--bootstrap-server", addr, "--state", "CompleteCommit")
	if !strings.Contains(out, "CompleteCommit") {
		t.Fatalf("list --state CompleteCommit:\n%s", out)
	}
	out = runTagpipe(t, producers...)
	if !regexp.MustCompile(`(?m)^` + pid + ` +0 +0 +0 +\S+Z +-$`).MatchString(out) {
		t.Fatalf("describe-producers, after the commit:\n%s", out)
	}
	producers[len(producers)-1] = "5"
	if out, err := runTagpipeErr(producers...); err == nil || !strings.Contains(err.Error(), "has no partition 5") {
		t.Fatalf("describe-producers of partition 5: %v\n%s", err, out)
	}
}

// TestTopicsCreateBrokerDefaults: topics create without --partitions and
// --replication-factor asks for the broker's defaults (-1), as its help says; alter's
// own --partitions (default 0) must not leak into create's.
func TestTopicsCreateBrokerDefaults(t *testing.T) {
	dir, b := t.TempDir(), startTestBroker(t)
	addr := b.Addr()
	if out, err := runTagpipeErr("--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", "d"); err != nil {
		t.Fatalf("topics create without --partitions: %v\n%s", err, out)
	}
	want := broker.DefaultOptions().DefaultPartitions
	got := runTagpipe(t, "--data-dir", dir, "topics", "describe", "--bootstrap-server", addr, "--topic", "d")
	if !strings.Contains(got, "PartitionCount: "+strconv.Itoa(int(want))+"\t") {
		t.Fatalf("topic d should have the broker's %d partitions:\n%s", want, got)
	}
	runTagpipe(t, "--data-dir", dir, "topics", "alter", "--bootstrap-server", addr, "--topic", "d", "--partitions", strconv.Itoa(int(want)+1))
	got = runTagpipe(t, "--data-dir", dir, "topics", "describe", "--bootstrap-server", addr, "--topic", "d")
	if !strings.Contains(got, "PartitionCount: "+strconv.Itoa(int(want)+1)+"\t") {
		t.Fatalf("topics alter --partitions %d did not grow d:\n%s", want+1, got)
	}
}

// TestMissingTopicErrors: a topic that does not exist is named as such (not the broker's
// "This server does not host this topic-partition"); consume says it waits for it, and
// does not create it; delete-records past the end says where the end is.
func TestMissingTopicErrors(t *testing.T) {
	dir, addr, _, _ := twoPartitions(t)
	const missing = `topic "nosuch" does not exist (tagpipe topics list shows the topics)`
	for _, args := range [][]string{
		{"topics", "describe", "--topic", "nosuch"},
		{"topics", "delete", "--topic", "nosuch"},
		{"topics", "alter", "--topic", "nosuch", "--config", "retention.ms=1000"},
		{"topics", "get-offsets", "--topic", "nosuch"},
		{"topics", "delete-records", "--topic", "nosuch", "--offset", "0"},
		{"transactions", "describe-producers", "--topic", "nosuch", "--partition", "0"},
	} {
		args = append([]string{"--data-dir", dir}, append(args, "--bootstrap-server", addr)...)
		if out, err := runTagpipeErr(args...); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("%v: %v (output %q); want %q", args[2:], err, out, missing)
		}
	}
	out, err := runTagpipeErr("--data-dir", dir, "transactions", "describe-producers", "--bootstrap-server", addr, "--topic", "t", "--partition", "5")
	if want := `topic "t" has no partition 5 (it has 2)`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("describe-producers of a partition t lacks: %v (output %q); want %q", err, out, want)
	}
	out, err = runTagpipeErr("--data-dir", dir, "topics", "delete-records", "--bootstrap-server", addr, "--topic", "t", "--offset", "100")
	if want := "partition 0: offset 100 is past its end offset 0 (-1 deletes every record)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("delete-records past the end: %v (output %q); want %q", err, out, want)
	}
	out, err = runTagpipeErr("--data-dir", dir, "consume", "--bootstrap-server", addr, "--topic", "nosuch", "--idle-timeout", "300ms")
	if want := `topic "nosuch" does not exist (yet): waiting for it`; err != nil || !strings.Contains(out, want) {
		t.Errorf("consume of a missing topic: %v, output %q; want %q", err, out, want)
	}
	if list := runTagpipe(t, "--data-dir", dir, "topics", "list", "--bootstrap-server", addr); strings.Contains(list, "nosuch") {
		t.Errorf("consume created the topic it waited for: %q", list)
	}
}

// TestGroupsResetOffsetsSorted: reset-offsets lists partitions in order (it printed
// them in map order), as describe does.
func TestGroupsResetOffsetsSorted(t *testing.T) {
	dir, addr := t.TempDir(), startTestBroker(t).Addr()
	runTagpipe(t, "--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", "t", "--partitions", "8")
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs := kadm.Offsets{}
	for p := range int32(8) {
		offs.Add(kadm.Offset{Topic: "t", Partition: p, At: 0, LeaderEpoch: -1})
	}
	if err := kadm.NewClient(cl).CommitAllOffsets(ctx, "g", offs); err != nil {
		t.Fatal(err)
	}
	out := runTagpipe(t, "--data-dir", dir, "groups", "reset-offsets", "--bootstrap-server", addr, "--group", "g", "--to-latest")
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 5 && f[0] == "g" && f[1] == "t" {
			got = append(got, f[2])
		}
	}
	if strings.Join(got, ",") != "0,1,2,3,4,5,6,7" {
		t.Fatalf("reset-offsets printed partitions %v:\n%s", got, out)
	}
}

// TestGroupsDescribeMissingGroup: a group the broker does not know is said not to exist
// (it printed "State: Dead" and an empty table, exit 0).
func TestGroupsDescribeMissingGroup(t *testing.T) {
	dir, addr := t.TempDir(), startTestBroker(t).Addr()
	out, err := runTagpipeErr("--data-dir", dir, "groups", "describe", "--bootstrap-server", addr, "--group", "nosuch")
	if want := `group "nosuch" does not exist`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("groups describe of a missing group: %v, %q; want %q", err, out, want)
	}
}

// TestNoBrokerFailsClearly: with no broker at the address, the Kafka commands fail
// within --request-timeout and say what to check (produce retried for ever; consume
// waited silently and printed "consumed 0 records").
func TestNoBrokerFailsClearly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	dir := t.TempDir()
	for _, args := range [][]string{
		{"produce", "--topic", "t"},
		{"consume", "--topic", "t", "--idle-timeout", "1s"},
		{"topics", "list"},
		{"groups", "list"},
	} {
		var out, errw bytes.Buffer
		root := newRootCmd(&out, &errw)
		root.SetIn(strings.NewReader("x\n"))
		root.SetArgs(append([]string{"--data-dir", dir}, append(args, "--bootstrap-server", addr, "--request-timeout", "2s")...))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		start := time.Now()
		err := root.ExecuteContext(ctx)
		cancel()
		if want := "cannot reach a Kafka broker at " + addr; err == nil || !strings.Contains(err.Error(), want) || time.Since(start) > 15*time.Second {
			t.Errorf("%v: %v after %v (output %q); want %q", args, err, time.Since(start), out.String()+errw.String(), want)
		}
	}
}

// TestUsersCommands: tagpipe users scram --add / --delete and users list against a
// broker with a SASL_PLAINTEXT listener: the password from stdin authenticates a SCRAM
// client at once; after the deletion it no longer does; errors are the broker's.
func TestUsersCommands(t *testing.T) {
	b := startTestBrokerWith(t, func(o *broker.Options) {
		o.Listeners = []broker.Listener{{Name: "INTERNAL", Listen: "127.0.0.1:0"}, {Name: "SASL_PLAINTEXT", Listen: "127.0.0.1:0"}}
		o.SASL = broker.SASLOptions{Mechanisms: []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}, Users: map[string]string{"admin": "admin-secret"}}
	})
	addr, dir := b.ListenerAddr("INTERNAL"), t.TempDir()
	run := func(stdin string, args ...string) (string, error) {
		var out, errw bytes.Buffer
		root := newRootCmd(&out, &errw)
		root.SetIn(strings.NewReader(stdin))
		root.SetArgs(append([]string{"--data-dir", dir, "users"}, append(args, "--bootstrap-server", addr)...))
		err := root.ExecuteContext(context.Background())
		return out.String() + errw.String(), err
	}
	ping := func(pass string) error { return scramPing(t, b.ListenerAddr("SASL_PLAINTEXT"), "carol", pass) }
	if out, err := run("carol-secret\n", "scram", "--add", "carol", "--mechanism", "SCRAM-SHA-512", "--iterations", "8192", "--password-stdin"); err != nil ||
		!strings.Contains(out, "SCRAM-SHA-512 credential of user carol set") {
		t.Fatalf("add: %v\n%s", err, out)
	}
	if err := ping("carol-secret"); err != nil {
		t.Fatalf("carol after add: %v", err)
	}
	out, err := run("", "list")
	if err != nil || !regexp.MustCompile(`(?m)^admin\s+SCRAM-SHA-256\s+4096\n.*\ncarol\s+SCRAM-SHA-512\s+8192$`).MatchString(out) {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err := run("", "scram", "--delete", "carol", "--mechanism", "SCRAM-SHA-512"); err != nil || !strings.Contains(out, "deleted") {
		t.Fatalf("delete: %v\n%s", err, out)
	}
	if err := ping("carol-secret"); err == nil {
		t.Fatal("carol authenticated after delete")
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"scram", "--delete", "carol", "--mechanism", "SCRAM-SHA-512"}, "RESOURCE_NOT_FOUND"},
		{"x\n", []string{"scram", "--add", "carol", "--mechanism", "SCRAM-SHA-256", "--iterations", "100", "--password-stdin"}, "4096 to 16384"}, // kadm refuses it before sending,
		{"x\n", []string{"scram", "--add", "admin", "--mechanism", "SCRAM-SHA-256", "--password-stdin"}, "broker.sasl_users"},
		{"x\n", []string{"scram", "--add", "carol", "--mechanism", "SCRAM-SHA-256"}, "--password-stdin"},
		{"\n", []string{"scram", "--add", "carol", "--mechanism", "SCRAM-SHA-256", "--password-stdin"}, "no password"},
		{"", []string{"scram", "--delete", "carol", "--mechanism", "MD5"}, "want SCRAM-SHA-256 or SCRAM-SHA-512"},
		{"", []string{"list", "nobody"}, "RESOURCE_NOT_FOUND"},
	} {
		if out, err := run(tc.stdin, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q\n%s", tc.args, err, tc.want, out)
		}
	}
}

// scramPing connects to a SASL_PLAINTEXT listener as user with SCRAM-SHA-512 and
// returns whether it authenticated.
func scramPing(t *testing.T, addr, user, pass string) error {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0),
		kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

// TestGlobalConfigBeforeTopicsConfig: in `tagpipe --config FILE topics create --config
// k=v` the first --config is the config file (its broker.listen is where the command
// connects) and the second a topic config, as kafka-topics.sh's; the file given after the
// subcommand is refused as a topic config with a hint, before any connection.
func TestGlobalConfigBeforeTopicsConfig(t *testing.T) {
	addr := startTestBroker(t).Addr()
	dir := t.TempDir()
	file := writeTestFile(t, "tagpipe.yaml", "data_dir: "+dir+"\nbroker:\n  listen: "+addr+"\n")
	runTagpipe(t, "--config", file, "topics", "create", "--topic", "c", "--partitions", "1", "--config", "retention.ms=1000")
	runTagpipe(t, "--config", file, "topics", "alter", "--topic", "c", "--config", "segment.ms=2000")
	got := runTagpipe(t, "--config", file, "topics", "describe", "--topic", "c")
	for _, want := range []string{"retention.ms=1000 (dynamic_topic)", "segment.ms=2000 (dynamic_topic)"} {
		if !strings.Contains(got, want) {
			t.Errorf("describe lacks %q:\n%s", want, got)
		}
	}
	for _, sub := range []string{"create", "alter"} {
		out, err := runTagpipeErr("--data-dir", dir, "topics", sub, "--topic", "c", "--config", file, "--bootstrap-server", "127.0.0.1:1")
		if err == nil || !strings.Contains(err.Error(), "the config file goes before the command") {
			t.Errorf("topics %s --config FILE: %v\n%s", sub, err, out)
		}
	}
}

// TestConsoleProduceConsumeProperties: the console producer's null.marker and the
// console consumer's print.timestamp, print.headers and --timeout-ms.
func TestConsoleProduceConsumeProperties(t *testing.T) {
	dir, addr := t.TempDir(), startTestBroker(t).Addr()
	runTagpipe(t, "--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", "t", "--partitions", "1")
	if out, err := runTagpipeIn("k1:NULL\nNULL:v2\nk3:\n", "--data-dir", dir, "produce", "--bootstrap-server", addr, "--topic", "t", "--key-separator", ":", "--null-marker", "NULL"); err != nil {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts := time.UnixMilli(1_700_000_000_123)
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("k4"), Value: []byte("v4"), Timestamp: ts,
		Headers: []kgo.RecordHeader{{Key: "src", Value: []byte("web")}, {Key: "n"}}}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := runTagpipe(t, "--data-dir", dir, "consume", "--bootstrap-server", addr, "--topic", "t", "--from-beginning",
		"--print-key", "--print-headers", "--print-timestamp", "--separator", "|", "--timeout-ms", "2000")
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("consumed %q", got)
	}
	for i, want := range []string{`^CreateTime:\d+\|NO_HEADERS\|k1\|null$`, `^CreateTime:\d+\|NO_HEADERS\|null\|v2$`,
		`^CreateTime:\d+\|NO_HEADERS\|k3\|$`, `^CreateTime:1700000000123\|src:web,n:null\|k4\|v4$`} {
		if !regexp.MustCompile(want).MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i, lines[i], want)
		}
	}
	// The same through --property, as Kafka's console tools take them.
	runTagpipe(t, "--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", "p", "--partitions", "1")
	if out, err := runTagpipeIn("a:1\nb\t2\nNULL:3\n", "--data-dir", dir, "produce", "--bootstrap-server", addr, "--topic", "p",
		"--property", "parse.key=true", "--property", "key.separator=:", "--property", "null.marker=NULL"); err != nil || !strings.Contains(out, "produced 3 records") {
		t.Fatalf("produce --property: %v\n%s", err, out)
	}
	if out, err := runTagpipeIn("c\t4\n", "--data-dir", dir, "produce", "--bootstrap-server", addr, "--topic", "p", "--property", "parse.key=TRUE"); err != nil || !strings.Contains(out, "produced 1 record to p") {
		t.Fatalf("produce parse.key with the default tab: %v\n%s", err, out)
	}
	got = runTagpipe(t, "--data-dir", dir, "consume", "--bootstrap-server", addr, "--topic", "p", "--from-beginning", "--timeout-ms", "2000",
		"--property", "print.key=true", "--property", "print.offset=true", "--property", "key.separator=|")
	if want := "0|0|a|1\n0|1|null|b\t2\n0|2|null|3\n0|3|c|4\n"; got != want { // a line without the separator: no key
		t.Errorf("consume --property: %q, want %q", got, want)
	}
	for _, args := range [][]string{{"produce", "--property", "parse.headers=true"}, {"consume", "--property", "print.partition=true"},
		{"consume", "--property", "print.key=yes"}, {"consume", "--property", "print.key"}} {
		out, err := runTagpipeErr(append([]string{"--data-dir", dir}, append(args, "--bootstrap-server", addr, "--topic", "p")...)...)
		if err == nil || !strings.Contains(err.Error(), "--property") {
			t.Errorf("%v accepted: %v\n%s", args, err, out)
		}
	}
}
