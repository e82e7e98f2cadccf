package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m)
}

func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

func build(t *testing.T, spec Spec, env Env) *Agent {
	t.Helper()
	if env.Log == nil {
		env.Log = testLog(t)
	}
	if env.Metrics == nil {
		env.Metrics = ingest.NewMetrics(nil)
	}
	a, err := Build(spec, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return a
}

func fastSpool(spec Spec) Spec {
	for _, s := range spec.Sources {
		if s["type"] == "spooldir" {
			s["min_age"] = "-1ms"
			s["poll_interval"] = "10ms"
		}
	}
	for _, c := range spec.Channels {
		if c["type"] == "file" {
			c["min_free_bytes"] = "-1"
		}
	}
	return spec
}

func dropFile(t testing.TB, dir, name string, lines []string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name)
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func headLines(t testing.TB, path string, n int) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(out) < n {
		out = append(out, sc.Text())
	}
	return out
}

// TestDefaultAgent drops MovieLens ratings and a JSON-lines file into the default agent's
// spool directory and reads the topic back: every line, keyed by user id, one user per
// partition; a bad line goes to the dead-letter topic.
func TestDefaultAgent(t *testing.T) {
	for _, be := range kafkatest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			b := be.Start(t, t.TempDir(), 0, map[string]int32{"events": 6, "events_dlq": 1})
			defer b.Stop()
			data := t.TempDir()
			spool := filepath.Join(data, "spool", "events")
			os.MkdirAll(spool, 0o755)
			a := build(t, fastSpool(DefaultSpec(spool, "events", "events_dlq")), Env{DataDir: data, Brokers: []string{b.Addr()}})
			ratings := headLines(t, "../../testdata/movielens/ratings.csv", 3001)
			dropFile(t, spool, "ratings.csv", ratings)
			var js []string
			for i := 0; i < 500; i++ {
				js = append(js, fmt.Sprintf(`{"user_id":"u%d","item_id":"i%d","action":"view"}`, i%13, i))
			}
			js = append(js, "bad \xff line")
			dropFile(t, spool, "views.jsonl", js)
			kafkatest.WaitCount(t, b.Addr(), "events", int64(len(ratings)+500), 30*time.Second)
			kafkatest.WaitCount(t, b.Addr(), "events_dlq", 1, 30*time.Second)
			recs := kafkatest.ReadAll(t, b.Addr(), "events")
			if len(recs) != len(ratings)+500 {
				t.Fatalf("got %d records", len(recs))
			}
			part := map[string]int32{}
			seen := map[string]int{}
			for _, r := range recs {
				seen[r.Value]++
				if r.Key == "" {
					if r.Value != ratings[0] { // the CSV header line has no user
						t.Fatalf("record without key: %q", r.Value)
					}
					continue
				}
				if p, ok := part[r.Key]; ok && p != r.Partition {
					t.Fatalf("user %s in partitions %d and %d", r.Key, p, r.Partition)
				}
				part[r.Key] = r.Partition
				if r.Headers["ingest_time"] == "" || r.Headers["basename"] == "" {
					t.Fatalf("headers missing: %v", r.Headers)
				}
				if strings.HasPrefix(r.Value, "{") && !strings.Contains(r.Value, `"user_id":"`+r.Key+`"`) {
					t.Fatalf("key %q for %q", r.Key, r.Value)
				}
			}
			for _, l := range append(ratings, js[:500]...) {
				if seen[l] != 1 {
					t.Fatalf("line %q delivered %d times", l, seen[l])
				}
			}
			dlq := kafkatest.ReadAll(t, b.Addr(), "events_dlq")
			if len(dlq) != 1 || dlq[0].Value != "bad \xff line" || dlq[0].Headers["error"] != "invalid utf-8" {
				t.Fatalf("dead letters: %+v", dlq)
			}
			waitFor(t, "sink counters", func() bool {
				return a.env.Metrics.Component("default", "sink", "kafka", "").Get("success") == int64(len(recs)+1)
			})
		})
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBuildErrorsNameTheKey(t *testing.T) {
	spec := Spec{Name: "a1", Where: "ingest.agents.a1",
		Sources: map[string]map[string]string{
			"r1": {"type": "spooldir", "dir": t.TempDir(), "channels": "c1 nope", "spool_dri": "x", "interceptors": "i1", "interceptors.i1.type": "morse"},
			"r2": {"type": "exec", "channels": "c1", "restart_throttle": "soon"},
			"r3": {"type": "jms", "channels": "c1"},
			"r4": {"type": "exec", "command": "true", "channels": "c1", "interceptors": "i1 i2",
				"interceptors.i1.type": "remove_header", "interceptors.i2.type": "search_replace", "interceptors.i2.replace_string": "x"},
		},
		Channels: map[string]map[string]string{"c1": {"type": "memory", "capacity": "ten", "capacity_byte": "1"}},
		Sinks:    map[string]map[string]string{"k1": {"type": "kafka", "channel": "c2", "brokers": "127.0.0.1:1", "topic": "t", "acks": "1"}},
	}
	_, err := Build(spec, Env{DataDir: t.TempDir()})
	if err == nil {
		t.Fatal("bad spec accepted")
	}
	for _, want := range []string{
		`ingest.agents.a1.channels.c1.capacity: bad value "ten"`,
		`ingest.agents.a1.channels.c1.capacity_byte: unknown key for memory channel (did you mean "capacity_bytes"?)`,
		`ingest.agents.a1.sinks.k1.channel: no channel "c2"`,
		`ingest.agents.a1.sinks.k1.acks: unknown key for kafka sink`,
		`ingest.agents.a1.sources.r1.channels: no channel "nope"`,
		`ingest.agents.a1.sources.r1.spool_dri: unknown key for spooldir source`,
		`ingest.agents.a1.sources.r1.interceptors.i1.type: unsupported interceptor type "morse"`,
		`ingest.agents.a1.sources.r2.command: is required`,
		`ingest.agents.a1.sources.r2.restart_throttle: bad value "soon"`,
		`ingest.agents.a1.sources.r3.type: unsupported source type "jms" (want spooldir, taildir, exec, kafka, tcp, syslog or http)`,
		`ingest.agents.a1.sources.r4.interceptors.i1.with_name: with_name, from_list or matching is required`,
		`ingest.agents.a1.sources.r4.interceptors.i2.search_pattern: is required`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestSelectorsAndFailover routes by header into two channels and fails a kafka sink over
// to a file_roll sink.
func TestSelectorsAndFailover(t *testing.T) {
	data := t.TempDir()
	spool := filepath.Join(data, "spool")
	os.MkdirAll(spool, 0o755)
	spec := fastSpool(Spec{Name: "a1", Where: "a1",
		Sources: map[string]map[string]string{"r1": {
			"type": "spooldir", "dir": spool, "channels": "good bad",
			"interceptors": "x", "interceptors.x.type": "regex_extractor", "interceptors.x.regex": `^(\w+):`,
			"interceptors.x.serializers": "s1", "interceptors.x.serializers.s1.name": "kind",
			"selector.type": "multiplexing", "selector.header": "kind",
			"selector.mapping.ok": "good", "selector.default": "bad",
		}},
		Channels: map[string]map[string]string{"good": {"type": "memory"}, "bad": {"type": "file"}},
		Sinks: map[string]map[string]string{
			"dead":   {"type": "kafka", "channel": "good", "brokers": "127.0.0.1:1", "topic": "t", "write_timeout": "200ms", "max_attempts": "1"},
			"backup": {"type": "file_roll", "channel": "good", "dir": filepath.Join(data, "good")},
			"other":  {"type": "file_roll", "channel": "bad", "dir": filepath.Join(data, "bad")},
		},
		SinkGroups: map[string]map[string]string{"g": {"sinks": "dead backup", "processor.type": "failover",
			"processor.priority.dead": "10", "processor.priority.backup": "5"}},
	})
	build(t, spec, Env{DataDir: data})
	dropFile(t, spool, "x.log", []string{"ok: 1", "no: 2", "ok: 3", "junk"})
	read := func(dir string) string {
		var all []string
		files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			all = append(all, strings.TrimSpace(string(b)))
		}
		return strings.Join(all, "|")
	}
	waitFor(t, "file_roll output", func() bool {
		return read(filepath.Join(data, "good")) == "ok: 1\nok: 3" && read(filepath.Join(data, "bad")) == "no: 2\njunk"
	})
}

// TestLoadBalanceGroup spreads a channel's batches over two file_roll sinks in turn
// (processor.type load_balance): every line lands once, on both sinks.
func TestLoadBalanceGroup(t *testing.T) {
	data := t.TempDir()
	spool := filepath.Join(data, "spool")
	os.MkdirAll(spool, 0o755)
	spec := fastSpool(Spec{Name: "a1", Where: "a1",
		Sources:  map[string]map[string]string{"r1": {"type": "spooldir", "dir": spool, "channels": "c", "batch_size": "1"}},
		Channels: map[string]map[string]string{"c": {"type": "memory"}},
		Sinks: map[string]map[string]string{
			"s1": {"type": "file_roll", "channel": "c", "dir": filepath.Join(data, "s1"), "batch_size": "1"},
			"s2": {"type": "file_roll", "channel": "c", "dir": filepath.Join(data, "s2"), "batch_size": "1"},
		},
		SinkGroups: map[string]map[string]string{"g": {"sinks": "s1 s2", "processor.type": "load_balance",
			"processor.selector": "round_robin", "processor.backoff": "true"}},
	})
	build(t, spec, Env{DataDir: data})
	var lines []string
	for i := range 10 {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	dropFile(t, spool, "x.log", lines)
	read := func(dir string) []string {
		var all []string
		files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			all = append(all, strings.Fields(strings.ReplaceAll(string(b), "line ", "line_"))...)
		}
		return all
	}
	waitFor(t, "both sinks", func() bool { return len(read(filepath.Join(data, "s1")))+len(read(filepath.Join(data, "s2"))) == 10 })
	s1, s2 := read(filepath.Join(data, "s1")), read(filepath.Join(data, "s2"))
	if len(s1) == 0 || len(s2) == 0 {
		t.Fatalf("s1 %v, s2 %v: want batches on both", s1, s2)
	}
	all := append(s1, s2...)
	slices.Sort(all)
	if len(slices.Compact(all)) != 10 {
		t.Fatalf("lines %v: want each of the 10 once", all)
	}
}

// TestDeadLetterFile routes bad input (any "error" header) to a file_roll sink, the rest
// to the broker.
func TestDeadLetterFile(t *testing.T) {
	b := kafkatest.Backends()[0].Start(t, t.TempDir(), 0, map[string]int32{"events": 1})
	defer b.Stop()
	data := t.TempDir()
	spool := filepath.Join(data, "spool")
	os.MkdirAll(spool, 0o755)
	spec := fastSpool(Spec{Name: "a1", Where: "a1",
		Sources: map[string]map[string]string{"r1": {"type": "spooldir", "dir": spool, "channels": "main dead", "max_line_bytes": "10",
			"selector.type": "multiplexing", "selector.header": "error", "selector.mapping.*": "dead", "selector.default": "main"}},
		Channels: map[string]map[string]string{"main": {"type": "file"}, "dead": {"type": "file"}},
		Sinks: map[string]map[string]string{
			"k":   {"type": "kafka", "channel": "main"},
			"dlq": {"type": "file_roll", "channel": "dead", "dir": filepath.Join(data, "dlq")},
		}})
	build(t, spec, Env{DataDir: data, Brokers: []string{b.Addr()}, Topic: "events"})
	dropFile(t, spool, "x.log", []string{"good", "much too long line", "bad\xff", "bin\x00", "fine"})
	kafkatest.WaitCount(t, b.Addr(), "events", 2, 30*time.Second)
	waitFor(t, "dead letters", func() bool {
		files, _ := filepath.Glob(filepath.Join(data, "dlq", "*.log"))
		if len(files) == 0 {
			return false
		}
		got, _ := os.ReadFile(files[0])
		return string(got) == "much too l\nbad\xff\nbin\x00\n"
	})
	var got []string
	for _, r := range kafkatest.ReadAll(t, b.Addr(), "events") {
		got = append(got, r.Value)
	}
	if fmt.Sprint(got) != "[good fine]" {
		t.Fatalf("topic got %q", got)
	}
}

// TestBuildBrokenChannelReportedOnce: a channel that cannot be opened (here its
// directory would be under a regular file, as with a data dir that is not writable) is
// reported once, with its reason; the source and sink that name it are not also told
// there is no such channel.
func TestBuildBrokenChannelReportedOnce(t *testing.T) {
	file := filepath.Join(t.TempDir(), "afile")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := Spec{Name: "a1", Where: "ingest.agents.a1",
		Sources: map[string]map[string]string{
			"r1": {"type": "spooldir", "dir": t.TempDir(), "channels": "c1", "selector.type": "multiplexing",
				"selector.header": "error", "selector.mapping.x": "c1", "selector.default": "c1"},
		},
		Channels: map[string]map[string]string{"c1": {"type": "file", "dir": filepath.Join(file, "c1")}},
		Sinks:    map[string]map[string]string{"k1": {"type": "logger", "channel": "c1"}},
	}
	_, err := Build(spec, Env{DataDir: t.TempDir()})
	if err == nil {
		t.Fatal("a channel under a regular file was opened")
	}
	msg := err.Error()
	if !strings.Contains(msg, "ingest.agents.a1.channels.c1: ") || strings.Count(msg, "\n") != 0 {
		t.Fatalf("want the channel's own error alone, got:\n%s", msg)
	}
}

// TestCheckOpensNothing: Check reports what Build would (every bad key) without opening a
// file channel, a position file, a sink's directory or a listener; on a good spec it
// passes and still creates nothing, where Build then opens them.
func TestCheckOpensNothing(t *testing.T) {
	data := t.TempDir()
	spool := filepath.Join(data, "spool")
	if err := os.MkdirAll(spool, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	taken := l.Addr().String() // taken: a source that listened at Check would fail
	defer l.Close()
	good := func() Spec {
		return Spec{Name: "a1", Where: "ingest.agents.a1",
			Sources: map[string]map[string]string{
				"r1": {"type": "spooldir", "dir": spool, "channels": "c1"},
				"r2": {"type": "tcp", "listen": taken, "channels": "c1"},
				"r3": {"type": "taildir", "filegroups": "f", "filegroups.f": filepath.Join(spool, `.*\.log`), "channels": "c1"},
			},
			Channels: map[string]map[string]string{"c1": {"type": "file"}},
			Sinks:    map[string]map[string]string{"k1": {"type": "file_roll", "channel": "c1"}},
		}
	}
	env := Env{DataDir: data, Log: testLog(t)}
	nothingBelowIngest := func(when string) {
		t.Helper()
		if ents, err := os.ReadDir(filepath.Join(data, "ingest")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: %s/ingest holds %v (%v)", when, data, ents, err)
		}
	}

	bad := good()
	bad.Sources["r1"]["spool_dri"] = "x"
	bad.Sources["r3"]["filegroups.f"] = filepath.Join(spool, "*.log")
	err = Check(bad, env)
	for _, want := range []string{"ingest.agents.a1.sources.r1.spool_dri: unknown key for spooldir source",
		`ingest.agents.a1.sources.r3.filegroups.f: bad file name regexp "*.log"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Check of a bad spec: %v, want %s", err, want)
		}
	}
	nothingBelowIngest("Check of a bad spec")

	if err := Check(good(), env); err != nil {
		t.Fatalf("Check of a good spec: %v", err)
	}
	nothingBelowIngest("Check of a good spec")

	// Build opens what Check did not: the file channel below ingest/a1.
	a, err := Build(good(), env)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	if _, err := os.Stat(filepath.Join(data, "ingest", "a1", "c1")); err != nil {
		t.Fatalf("Build did not open the file channel: %v", err)
	}
}
