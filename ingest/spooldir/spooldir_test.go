package spooldir

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/channel"
	"github.com/tagpipe/tagpipe/ingest/internal/chantest"
	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
	"github.com/tagpipe/tagpipe/ingest/sink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pipeline is spooldir → file channel → kafka sink, wired by hand.
type pipeline struct {
	src    *Source
	ch     *channel.File
	sink   *sink.Kafka
	cancel context.CancelFunc
	done   chan struct{}
	c      *ingest.Counters
}

func startPipeline(t *testing.T, addr, topic string, opts Options) *pipeline {
	t.Helper()
	fo := channel.DefaultFileOptions(t.TempDir())
	fo.MinFreeBytes = -1
	ch, err := channel.OpenFile("ch", fo)
	if err != nil {
		t.Fatal(err)
	}
	ko := sink.DefaultKafkaOptions()
	ko.Brokers, ko.Topic, ko.DeadLetterTopic = []string{addr}, topic, ""
	k, err := sink.NewKafka("k", ko)
	if err != nil {
		t.Fatal(err)
	}
	m := ingest.NewMetrics(nil)
	p := &pipeline{ch: ch, sink: k, done: make(chan struct{}), c: m.Component("a", "source", "spool", "spooldir")}
	opts.C = p.c
	p.src, err = New("spool", opts, &ingest.Processor{Channels: []ingest.Channel{ch}, C: p.c})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() {
		defer close(p.done)
		(&ingest.SinkRunner{Agent: "a", Channel: ch, Sink: k, BatchSize: 500}).Run(ctx, context.Background())
	}()
	p.src.Start(ctx)
	t.Cleanup(p.stop)
	return p
}

func (p *pipeline) stop() {
	p.src.Stop(context.Background())
	p.cancel()
	<-p.done
	p.sink.Close()
	p.ch.Close()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func testOpts(dir string) Options {
	o := DefaultOptions(dir)
	o.MinAge = -1
	o.PollInterval = 10 * time.Millisecond
	o.BatchSize = 100
	o.MaxLineBytes = 4096
	return o
}

// TestSpoolDirDeliversLinesIntact drops files with UTF-8, CRLF, a long line just under
// the limit, an over-long line, invalid UTF-8, binary data and a gzip file, and reads
// the topic back with franz-go.
func TestSpoolDirDeliversLinesIntact(t *testing.T) {
	for _, be := range kafkatest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			b := be.Start(t, t.TempDir(), 0, map[string]int32{"events": 1})
			defer b.Stop()
			dir := t.TempDir()
			o := testOpts(dir)
			o.BasenameHeader = true
			p := startPipeline(t, b.Addr(), "events", o)

			long := strings.Repeat("é", 2048) // 4096 bytes: exactly the limit
			var a []string
			for i := 0; i < 1000; i++ {
				a = append(a, fmt.Sprintf(`{"user_id":"u%d","n":%d,"s":"ünïcødé ✓"}`, i%7, i))
			}
			writeFile(t, filepath.Join(dir, "a.jsonl"), []byte(strings.Join(a, "\n")+"\n"))
			waitFor(t, "a.jsonl completed", func() bool { _, err := os.Stat(filepath.Join(dir, "a.jsonl.COMPLETED")); return err == nil })
			writeFile(t, filepath.Join(dir, "b.csv"), []byte("x,1\r\ny,2\r\n"+long+"\r\nno newline at end"))
			waitFor(t, "b.csv completed", func() bool { _, err := os.Stat(filepath.Join(dir, "b.csv.COMPLETED")); return err == nil })
			over := strings.Repeat("x", 5000)
			writeFile(t, filepath.Join(dir, "c.bad"), []byte("ok\n"+over+"\nbad \xff\xfe utf8\nbin\x00ary\x01\x02\nlast\n"))
			waitFor(t, "c.bad completed", func() bool { _, err := os.Stat(filepath.Join(dir, "c.bad.COMPLETED")); return err == nil })
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write([]byte("g1\ng2\ng3\n"))
			zw.Close()
			writeFile(t, filepath.Join(dir, "d.log.gz"), gz.Bytes())
			waitFor(t, "d.log.gz completed", func() bool { _, err := os.Stat(filepath.Join(dir, "d.log.gz.COMPLETED")); return err == nil })
			kafkatest.WaitCount(t, b.Addr(), "events", 1000+4+5+3, 30*time.Second)

			recs := kafkatest.ReadAll(t, b.Addr(), "events")
			byFile := map[string][]kafkatest.Record{}
			for _, r := range recs {
				byFile[r.Headers["basename"]] = append(byFile[r.Headers["basename"]], r)
			}
			if len(recs) != 1012 {
				t.Fatalf("got %d records, want 1012", len(recs))
			}
			for i, r := range byFile["a.jsonl"] {
				if r.Value != a[i] {
					t.Fatalf("a.jsonl line %d = %q, want %q", i, r.Value, a[i])
				}
				if r.Headers["error"] != "" {
					t.Fatalf("good line marked bad: %v", r.Headers)
				}
			}
			wantB := []string{"x,1", "y,2", long, "no newline at end"}
			for i, r := range byFile["b.csv"] {
				if r.Value != wantB[i] {
					t.Fatalf("b.csv line %d = %q, want %q", i, r.Value, wantB[i])
				}
			}
			c := byFile["c.bad"]
			wantC := []struct{ v, err string }{
				{"ok", ""}, {over[:4096], "line too long: 5000 bytes, cut at 4096"},
				{"bad \xff\xfe utf8", "invalid utf-8"}, {"bin\x00ary\x01\x02", "binary data"}, {"last", ""},
			}
			for i, w := range wantC {
				if c[i].Value != w.v || c[i].Headers["error"] != w.err {
					t.Fatalf("c.bad line %d = %.40q error %q, want %.40q error %q", i, c[i].Value, c[i].Headers["error"], w.v, w.err)
				}
			}
			if g := byFile["d.log.gz"]; len(g) != 3 || g[0].Value != "g1" || g[2].Value != "g3" {
				t.Fatalf("gzip file delivered %v", g)
			}
			if n := p.c.Get("bad_input"); n != 3 {
				t.Fatalf("bad_input counter = %d, want 3", n)
			}
			if n := p.c.Get("files_completed"); n != 4 {
				t.Fatalf("files_completed = %d", n)
			}
		})
	}
}

func TestSpoolDirIncludeIgnoreRecursiveDelete(t *testing.T) {
	b := kafkatest.Backends()[0].Start(t, t.TempDir(), 0, map[string]int32{"events": 1})
	defer b.Stop()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	o := testOpts(dir)
	o.Recursive = true
	o.Delete = true
	o.Include = regexp.MustCompile(`\.log$`)
	o.Ignore = regexp.MustCompile(`^skip`)
	startPipeline(t, b.Addr(), "events", o)
	writeFile(t, filepath.Join(dir, "skip.log"), []byte("no\n"))
	writeFile(t, filepath.Join(dir, "x.txt"), []byte("no\n"))
	writeFile(t, filepath.Join(dir, "sub", "y.log"), []byte("yes\n"))
	waitFor(t, "sub/y.log deleted", func() bool { _, err := os.Stat(filepath.Join(dir, "sub", "y.log")); return os.IsNotExist(err) })
	kafkatest.WaitCount(t, b.Addr(), "events", 1, 30*time.Second)
	recs := kafkatest.ReadAll(t, b.Addr(), "events")
	if len(recs) != 1 || recs[0].Value != "yes" {
		t.Fatalf("got %v", recs)
	}
	for _, f := range []string{"skip.log", "x.txt"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s was touched: %v", f, err)
		}
	}
}

func TestSpoolDirMinAge(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	o := testOpts(dir)
	o.MinAge = time.Minute
	o.now = func() time.Time { return now }
	s, err := New("s", o, &ingest.Processor{})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "fresh.log"), []byte("x\n"))
	if p, ok := s.next(); ok {
		t.Fatalf("fresh file %s picked up", p)
	}
	now = now.Add(2 * time.Minute)
	if _, ok := s.next(); !ok {
		t.Fatal("old enough file not picked up")
	}
}

// TestSpoolDirQuarantine changes a file while it is read: it is quarantined, counted, and
// the next file is still read.
func TestSpoolDirQuarantine(t *testing.T) {
	dir := t.TempDir()
	ch := channel.NewMemory("m", channel.MemoryOptions{Capacity: 1 << 20})
	defer ch.Close()
	c := ingest.NewMetrics(nil).Component("a", "source", "s", "spooldir")
	o := testOpts(dir)
	o.BatchSize = 10
	o.C = c
	path := filepath.Join(dir, "a.log")
	// The processor appends to the file after the first batch, as a misbehaving writer would.
	appended := false
	proc := &ingest.Processor{Channels: []ingest.Channel{ch}, C: c, Interceptors: []ingest.Interceptor{interceptFunc(func(e []ingest.Event) []ingest.Event {
		if !appended {
			appended = true
			f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("sneaky\n")
			f.Close()
		}
		return e
	})}}
	s, err := New("s", o, proc)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, []byte(strings.Repeat("line\n", 100)))
	writeFile(t, filepath.Join(dir, "b.log"), []byte("b\n"))
	os.Chtimes(filepath.Join(dir, "b.log"), time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	s.Start(context.Background())
	defer s.Stop(context.Background())
	waitFor(t, "b.log completed", func() bool { _, err := os.Stat(filepath.Join(dir, "b.log.COMPLETED")); return err == nil })
	if _, err := os.Stat(path + QuarantineSuffix); err != nil {
		t.Fatalf("changed file not quarantined: %v", err)
	}
	if c.Get("files_quarantined") != 1 {
		t.Fatalf("files_quarantined = %d", c.Get("files_quarantined"))
	}
}

type interceptFunc func([]ingest.Event) []ingest.Event

func (f interceptFunc) Intercept(e []ingest.Event) []ingest.Event { return f(e) }

// refusing fails its first puts, like a file channel on a nearly full disk.
type refusing struct {
	ingest.Channel
	left int
}

func (r *refusing) Put(ctx context.Context, evs []ingest.Event) error {
	if r.left > 0 {
		r.left--
		return fmt.Errorf("refusing: %w", channel.ErrDiskFull)
	}
	return r.Channel.Put(ctx, evs)
}

// TestSpoolDirChannelRefuses: while the channel refuses puts the file stays, nothing is
// skipped, and once it accepts again every line arrives exactly once.
func TestSpoolDirChannelRefuses(t *testing.T) {
	dir := t.TempDir()
	mem := channel.NewMemory("m", channel.MemoryOptions{Capacity: 1000})
	defer mem.Close()
	ch := &refusing{Channel: mem, left: 3}
	c := ingest.NewMetrics(nil).Component("a", "source", "s", "spooldir")
	o := testOpts(dir)
	o.BatchSize = 10
	o.C = c
	s, _ := New("s", o, &ingest.Processor{Channels: []ingest.Channel{ch}, C: c})
	var lines []string
	for i := 0; i < 35; i++ {
		lines = append(lines, fmt.Sprint("l", i))
	}
	writeFile(t, filepath.Join(dir, "a.log"), []byte(strings.Join(lines, "\n")+"\n"))
	s.Start(context.Background())
	defer s.Stop(context.Background())
	waitFor(t, "a.log completed", func() bool { _, err := os.Stat(filepath.Join(dir, "a.log.COMPLETED")); return err == nil })
	tx, _ := mem.Take(context.Background(), 100)
	var got []string
	for _, e := range tx.Events() {
		got = append(got, string(e.Body))
	}
	if fmt.Sprint(got) != fmt.Sprint(lines) {
		t.Fatalf("got %v", got)
	}
	if c.Get("put_failures") != 3 || c.Get("file_errors") != 0 {
		t.Fatalf("put_failures %d file_errors %d", c.Get("put_failures"), c.Get("file_errors"))
	}
}

// TestSpoolDirGarbageFiles: a random binary file, a file that only looks like gzip and a
// truncated gzip file are all handled without stopping the source: binary lines are
// delivered marked, the damaged gzip's readable lines are delivered and the file is
// quarantined.
func TestSpoolDirGarbageFiles(t *testing.T) {
	dir := t.TempDir()
	mem := channel.NewMemory("m", channel.MemoryOptions{Capacity: 100000})
	defer mem.Close()
	c := ingest.NewMetrics(nil).Component("a", "source", "s", "spooldir")
	o := testOpts(dir)
	o.C = c
	o.MaxLineBytes = 1000
	s, _ := New("s", o, &ingest.Processor{Channels: []ingest.Channel{mem}, C: c})
	rng := rand.New(rand.NewSource(7))
	junk := make([]byte, 64<<10)
	rng.Read(junk)
	writeFile(t, filepath.Join(dir, "1.bin"), junk)
	writeFile(t, filepath.Join(dir, "2.fakegz"), append([]byte{0x1f, 0x8b, 'n', 'o', '\n'}, "plain\n"...))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(zw, "gz line %d %d\n", i, rng.Int63())
	}
	zw.Close()
	writeFile(t, filepath.Join(dir, "3.gz"), gz.Bytes()[:gz.Len()/2])
	writeFile(t, filepath.Join(dir, "4.log"), []byte("after\n"))
	for i, f := range []string{"1.bin", "2.fakegz", "3.gz", "4.log"} {
		ts := time.Now().Add(time.Duration(i-10) * time.Minute)
		os.Chtimes(filepath.Join(dir, f), ts, ts)
	}
	s.Start(context.Background())
	defer s.Stop(context.Background())
	waitFor(t, "4.log completed", func() bool { _, err := os.Stat(filepath.Join(dir, "4.log.COMPLETED")); return err == nil })
	for _, f := range []string{"1.bin.COMPLETED", "2.fakegz.COMPLETED", "3.gz" + QuarantineSuffix} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	tx, _ := mem.Take(context.Background(), 1<<20)
	var bin, bad, gzLines int
	var total int
	for _, e := range tx.Events() {
		total += len(e.Body)
		if e.Headers.Get("error") != "" {
			bad++
		}
		if strings.HasPrefix(string(e.Body), "gz line ") {
			gzLines++
		}
		if string(e.Body) == "plain" {
			bin++
		}
	}
	if bad == 0 || bin != 1 || gzLines == 0 || gzLines >= 20000 || c.Get("files_quarantined") != 1 || c.Get("bad_input") != int64(bad) {
		t.Fatalf("bad %d plain %d gz %d quarantined %d bad_input %d", bad, bin, gzLines, c.Get("files_quarantined"), c.Get("bad_input"))
	}
	t.Logf("binary file: %d events marked bad; damaged gzip: %d lines delivered before the damage", bad, gzLines)
}

// trackerCopier remembers the tracker file as it is at each put: the position after the
// previous batch, what a collector killed at that moment leaves behind.
type trackerCopier struct {
	ingest.Channel
	path string
	last []byte
}

func (c *trackerCopier) Put(ctx context.Context, evs []ingest.Event) error {
	if b, err := os.ReadFile(c.path); err == nil {
		c.last = b
	}
	return c.Channel.Put(ctx, evs)
}

// TestSpoolDirDeletedFileTrackerLeft: with delete_policy immediate, a collector killed
// after it deleted a completed file but before it removed the file's tracker leaves a
// tracker naming a file that is gone. A new file dropped under the same name can get the
// deleted file's inode number (ext4 hands freed ones out again at once; the test gives
// the tracker the new file's number so as not to depend on the file system's choice).
// It is another file, to be read from its start, not one that changed after pickup.
func TestSpoolDirDeletedFileTrackerLeft(t *testing.T) {
	dir := t.TempDir()
	mem := channel.NewMemory("m", channel.MemoryOptions{Capacity: 1000})
	defer mem.Close()
	o := testOpts(dir)
	o.Delete = true
	o.BatchSize = 10
	tracker := filepath.Join(dir, ".tagpipe-spool", "s.json")
	cp := &trackerCopier{Channel: mem, path: tracker}
	s, err := New("s", o, &ingest.Processor{Channels: []ingest.Channel{cp}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "a.log")
	var old []string
	for i := 0; i < 25; i++ {
		old = append(old, fmt.Sprint("old ", i))
	}
	writeFile(t, path, []byte(strings.Join(old, "\n")+"\n"))
	s.Start(context.Background())
	waitFor(t, "a.log deleted", func() bool { _, err := os.Stat(path); return err != nil })
	s.Stop(context.Background())
	chantest.Take(t, mem, len(old))
	// The tracker as the last put left it, moved to the end of the file, as it was
	// when the collector died.
	var tr map[string]any
	if err := json.Unmarshal(cp.last, &tr); err != nil {
		t.Fatalf("tracker %q: %v", cp.last, err)
	}
	tr["offset"], tr["lines"] = tr["size"], len(old)

	newLines := []string{"new 0", "new 1", "new 2"}
	writeFile(t, path, []byte(strings.Join(newLines, "\n")+"\n"))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	tr["inode"] = fi.Sys().(*syscall.Stat_t).Ino
	data, _ := json.Marshal(tr)
	if err := os.WriteFile(tracker, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := ingest.NewMetrics(nil).Component("a", "source", "s", "spooldir")
	o.C = c
	s, err = New("s", o, &ingest.Processor{Channels: []ingest.Channel{mem}, C: c})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	defer s.Stop(context.Background())
	waitFor(t, "new a.log done", func() bool { _, err := os.Stat(path); return err != nil })
	if c.Get("files_quarantined") != 0 {
		t.Fatalf("the new file was quarantined")
	}
	var got []string
	for _, e := range chantest.Take(t, mem, len(newLines)) {
		got = append(got, string(e.Body))
	}
	if fmt.Sprint(got) != fmt.Sprint(newLines) {
		t.Fatalf("got %q", got)
	}
}
