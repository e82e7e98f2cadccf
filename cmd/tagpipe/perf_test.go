package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPerfCommands: perf produce sends every record (random letters, or lines of a
// payload file) and prints kafka-producer-perf-test.sh's summary; perf consume reads them
// back and prints kafka-consumer-perf-test.sh's line, and fails when fewer arrive.
func TestPerfCommands(t *testing.T) {
	dir, addr := t.TempDir(), startTestBroker(t).Addr()
	out := runTagpipe(t, "--data-dir", dir, "perf", "produce", "--bootstrap-server", addr, "--topic", "p",
		"--num-records", "3000", "--record-size", "50", "--compression", "lz4")
	if !regexp.MustCompile(`^3000 records sent, [0-9.]+ records/sec \([0-9.]+ MB/sec\), [0-9.]+ ms avg latency, [0-9.]+ ms max latency, \d+ ms 50th, \d+ ms 95th, \d+ ms 99th, \d+ ms 99.9th.\n$`).MatchString(lastLine(out)) {
		t.Fatalf("perf produce printed:\n%s", out)
	}
	payload := filepath.Join(dir, "lines.txt")
	os.WriteFile(payload, []byte("one\n\ntwo\r\n"), 0o644)
	runTagpipe(t, "--data-dir", dir, "perf", "produce", "--bootstrap-server", addr, "--topic", "p", "--num-records", "1000",
		"--payload-file", payload, "--throughput", "1000000")

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("p"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != 4000 {
		t.Fatalf("topic holds %d records, want 4000", total)
	}
	values := map[string]int{}
	for n := 0; n < 4000; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			if len(r.Value) == 50 {
				values["letters"]++
			} else {
				values[string(r.Value)]++
			}
		})
	}
	if values["letters"] != 3000 || values["one"]+values["two"] != 1000 || values["one"] == 0 || values["two"] == 0 {
		t.Fatalf("values: %v", values)
	}

	out = runTagpipe(t, "--data-dir", dir, "perf", "consume", "--bootstrap-server", addr, "--topic", "p", "--messages", "4000", "--group", "perf-g")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "start.time, end.time, data.consumed.in.MB") ||
		!regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:\d{3}, \S+ \S+, 0\.1\d+, [0-9.]+, 4000, [0-9.]+, \d+, \d+, [0-9.]+, [0-9.]+$`).MatchString(lines[1]) {
		t.Fatalf("perf consume printed:\n%s", out)
	}
	var errw bytes.Buffer
	root := newRootCmd(&bytes.Buffer{}, &errw)
	root.SetArgs([]string{"--data-dir", dir, "perf", "consume", "--bootstrap-server", addr, "--topic", "p", "--messages", "4001", "--timeout", "300ms", "--hide-header"})
	if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "4000 of 4001") {
		t.Fatalf("perf consume of more records than the topic holds: %v", err)
	}
}

// TestPerfConsumeThrottled: a consumer held back by a client quota that gives up says
// the broker throttled it, instead of only that no record came.
func TestPerfConsumeThrottled(t *testing.T) {
	dir, addr := t.TempDir(), startTestBroker(t).Addr()
	runTagpipe(t, "--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", "q", "--partitions", "1")
	// Two batches at least: a throttled client's fetch is capped to the quota's worth but
	// returns its first batch whole (KIP-74), so the first fetch cannot bring all of them.
	for range 2 {
		runTagpipe(t, "--data-dir", dir, "perf", "produce", "--bootstrap-server", addr, "--topic", "q", "--num-records", "500", "--record-size", "100")
	}
	runTagpipe(t, "--data-dir", dir, "quotas", "alter", "--bootstrap-server", addr, "--default-user", "--add", "consumer_byte_rate=100")
	_, err := runTagpipeErr("--data-dir", dir, "perf", "consume", "--bootstrap-server", addr, "--topic", "q", "--messages", "1000", "--timeout", "300ms")
	if err == nil || !strings.Contains(err.Error(), "of 1000, then no record") || !strings.Contains(err.Error(), "the broker throttled this client for") {
		t.Fatalf("perf consume over a quota: %v", err)
	}
}

func lastLine(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return s[strings.LastIndex(s, "\n")+1:] + "\n"
}

// TestThrottler: records are held back to the rate, counted from the start, and never
// for less than a millisecond.
func TestThrottler(t *testing.T) {
	start := time.Unix(0, 0)
	now := start
	var slept []time.Duration
	th := throttler{rate: 100, now: func() time.Time { return now }, sleep: func(d time.Duration) { slept = append(slept, d); now = now.Add(d) }}
	for i := range int64(5) {
		th.wait(i, start)
	}
	if want := []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}; !slices.Equal(slept, want) {
		t.Fatalf("slept %v, want %v", slept, want)
	}
	now = now.Add(time.Second) // the sender fell behind: no sleep until it is ahead again
	slept = nil
	th.wait(50, start)
	th.wait(140, start)
	if want := []time.Duration{1*time.Second + 400*time.Millisecond - 1*time.Second - 40*time.Millisecond}; !slices.Equal(slept, want) {
		t.Fatalf("slept %v, want %v", slept, want)
	}
	slept = nil
	throttler{rate: -1, now: th.now, sleep: th.sleep}.wait(1e6, start)
	if len(slept) != 0 {
		t.Fatalf("no limit slept %v", slept)
	}
}

// TestPerfStats: a line per reporting interval about that window only, and a final line
// over everything with percentiles of the latencies.
func TestPerfStats(t *testing.T) {
	now := time.Unix(0, 0)
	var out bytes.Buffer
	s := newPerfStats(100, time.Second, &out, func() time.Time { return now })
	for i := range 100 {
		now = now.Add(20 * time.Millisecond)
		s.record(time.Duration(i+1)*time.Millisecond, 1024)
	}
	s.final()
	want := "50 records sent, 50.0 records/sec (0.05 MB/sec), 25.5 ms avg latency, 50.0 ms max latency.\n" +
		"50 records sent, 50.0 records/sec (0.05 MB/sec), 75.5 ms avg latency, 100.0 ms max latency.\n" +
		"100 records sent, 50.0 records/sec (0.05 MB/sec), 50.50 ms avg latency, 100.00 ms max latency, 51 ms 50th, 96 ms 95th, 100 ms 99th, 100 ms 99.9th.\n"
	if out.String() != want {
		t.Fatalf("printed\n%s\nwant\n%s", out.String(), want)
	}
}
