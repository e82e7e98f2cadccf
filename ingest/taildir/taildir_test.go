package taildir

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/channel"
	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
	"github.com/tagpipe/tagpipe/ingest/sink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	dir string
	ch  *channel.Memory
	src *Source
	clk *clock
	c   *ingest.Counters
	got []string
}

func newFixture(t *testing.T, pattern string, mod func(*Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	fx := &fixture{dir: dir, ch: channel.NewMemory("m", channel.MemoryOptions{Capacity: 1 << 20}), clk: &clock{t: time.Unix(1e9, 0)}}
	fx.c = ingest.NewMetrics(nil).Component("a", "source", "t", "taildir")
	o := DefaultOptions()
	o.Groups = []Group{{Name: "g", Pattern: filepath.Join(dir, pattern)}}
	o.PositionFile = filepath.Join(dir, "pos", "taildir_position.json")
	o.PollInterval = 5 * time.Millisecond
	o.IdleTimeout = time.Minute
	o.CloseIdle = time.Minute
	o.now = fx.clk.now
	o.C = fx.c
	if mod != nil {
		mod(&o)
	}
	s, err := New("t", o, &ingest.Processor{Channels: []ingest.Channel{fx.ch}})
	if err != nil {
		t.Fatal(err)
	}
	fx.src = s
	s.Start(context.Background())
	t.Cleanup(func() { s.Stop(context.Background()); fx.ch.Close() })
	return fx
}

// wait collects events until n have arrived.
func (fx *fixture) wait(t *testing.T, n int) []string {
	t.Helper()
	takeBodies(t, fx.ch, &fx.got, n, nil)
	return fx.got
}

// takeBodies takes events from ch, appending their bodies to got, until it holds n;
// check, when set, sees every event.
func takeBodies(t *testing.T, ch ingest.Channel, got *[]string, n int, check func(ingest.Event)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(*got) < n {
		tx, err := ch.Take(ctx, 1000)
		if err != nil {
			t.Fatalf("waiting for %d lines, have %d: %v (%q)", n, len(*got), err, *got)
		}
		for _, e := range tx.Events() {
			if check != nil {
				check(e)
			}
			*got = append(*got, string(e.Body))
		}
		tx.Commit()
	}
}

// startOn starts a source following dir/app.log into ch, its positions in dir/pos.json.
func startOn(t *testing.T, dir string, ch ingest.Channel, poll time.Duration) *Source {
	t.Helper()
	o := DefaultOptions()
	o.Groups = []Group{{Name: "g", Pattern: filepath.Join(dir, `app\.log`)}}
	o.PositionFile = filepath.Join(dir, "pos.json")
	o.PollInterval = poll
	s, err := New("t", o, &ingest.Processor{Channels: []ingest.Channel{ch}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	return s
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}

func TestTaildirFollowsAppendsAndPartialLines(t *testing.T) {
	fx := newFixture(t, `app\.log`, nil)
	path := filepath.Join(fx.dir, "app.log")
	appendTo(t, path, "one\r\ntwo\nthr")
	fx.wait(t, 2)
	appendTo(t, path, "ee\nfour\n")
	if got := fx.wait(t, 4); fmt.Sprint(got) != "[one two three four]" {
		t.Fatalf("got %q", got)
	}
	// A tail without a newline is held until the file has been idle for IdleTimeout.
	appendTo(t, path, "tail")
	time.Sleep(50 * time.Millisecond)
	if n := fx.ch.Stats().Events; n != 0 {
		t.Fatalf("partial line delivered early (%d events)", n)
	}
	fx.clk.add(2 * time.Minute)
	if got := fx.wait(t, 5); got[4] != "tail" {
		t.Fatalf("got %q", got)
	}
}

func TestTaildirRenameRotation(t *testing.T) {
	fx := newFixture(t, `app\.log`, nil)
	path := filepath.Join(fx.dir, "app.log")
	appendTo(t, path, "a1\na2\n")
	fx.wait(t, 2)
	// Lines written just before rotation, then the rename, then the writer reopens.
	appendTo(t, path, "a3\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path+".1", "a4\n") // the writer still had the old file open
	appendTo(t, path, "b1\nb2\n")
	got := fx.wait(t, 6)
	if fmt.Sprint(got) != "[a1 a2 a3 a4 b1 b2]" {
		t.Fatalf("got %q", got)
	}
	time.Sleep(50 * time.Millisecond)
	if n := fx.ch.Stats().Events; n != 0 {
		t.Fatalf("duplicates after rotation: %d more events", n)
	}
}

func TestTaildirCopyTruncate(t *testing.T) {
	fx := newFixture(t, `app\.log`, nil)
	path := filepath.Join(fx.dir, "app.log")
	appendTo(t, path, "a1\na2\na3\n")
	fx.wait(t, 3)
	data, _ := os.ReadFile(path)
	os.WriteFile(path+".1", data, 0o644) // copy (not matched by the group)
	os.Truncate(path, 0)
	appendTo(t, path, "b1\n")
	got := fx.wait(t, 4)
	if fmt.Sprint(got) != "[a1 a2 a3 b1]" {
		t.Fatalf("got %q", got)
	}
	if fx.c.Get("truncations") != 1 {
		t.Fatalf("truncations = %d", fx.c.Get("truncations"))
	}
}

// TestTaildirCopyTruncateRegrown truncates a followed file and writes more than its
// position before the source looks again (logrotate's copytruncate under a busy logger):
// the file's start is no longer the one its position was counted in, so it is read again
// from the start, not from the old position into the middle of a new line.
func TestTaildirCopyTruncateRegrown(t *testing.T) {
	fx := newFixture(t, `app\.log`, func(o *Options) { o.PollInterval = 200 * time.Millisecond })
	path := filepath.Join(fx.dir, "app.log")
	appendTo(t, path, "a1\na2\na3\n")
	fx.wait(t, 3)
	time.Sleep(20 * time.Millisecond) // the source has found nothing more and sleeps
	os.Truncate(path, 0)
	appendTo(t, path, "b1 longer\nb2 longer\n")
	got := fx.wait(t, 5)
	if fmt.Sprint(got) != "[a1 a2 a3 b1 longer b2 longer]" {
		t.Fatalf("got %q", got)
	}
	if fx.c.Get("truncations") != 1 {
		t.Fatalf("truncations = %d", fx.c.Get("truncations"))
	}
}

// TestTaildirCopyTruncateRegrownAfterRestart is TestTaildirCopyTruncateRegrown for a
// file the source opened at a saved position and has not delivered from since: its start
// must be the one the position was saved with, not what the file holds when it next grows.
func TestTaildirCopyTruncateRegrownAfterRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	ch := channel.NewMemory("m", channel.MemoryOptions{Capacity: 1 << 20})
	defer ch.Close()
	start := func() *Source { return startOn(t, dir, ch, 200*time.Millisecond) }
	var got []string
	s := start()
	appendTo(t, path, "a1\na2\na3\n")
	takeBodies(t, ch, &got, 3, nil)
	s.Stop(context.Background())
	s = start() // opens app.log at the saved position, nothing to read
	defer s.Stop(context.Background())
	time.Sleep(50 * time.Millisecond)
	os.Truncate(path, 0)
	appendTo(t, path, "b1 longer\nb2 longer\n")
	takeBodies(t, ch, &got, 5, nil)
	if fmt.Sprint(got) != "[a1 a2 a3 b1 longer b2 longer]" {
		t.Fatalf("got %q", got)
	}
}

// hookChannel runs hook (once) in its first put, before the put itself.
type hookChannel struct {
	ingest.Channel
	once sync.Once
	hook func()
}

func (h *hookChannel) Put(ctx context.Context, evs []ingest.Event) error {
	h.once.Do(h.hook)
	return h.Channel.Put(ctx, evs)
}

// TestTaildirCopyTruncateDuringPut: the file is truncated and written past the position
// while the source puts the lines it read (a file channel's fsync takes long enough).
// The start the position is saved with is the one those lines were read from, so the
// next look sees the file changed and reads the new lines from the start.
func TestTaildirCopyTruncateDuringPut(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	mem := channel.NewMemory("m", channel.MemoryOptions{Capacity: 1 << 20})
	defer mem.Close()
	ch := &hookChannel{Channel: mem, hook: func() {
		os.Truncate(path, 0)
		appendTo(t, path, "b1 longer\nb2 longer\n")
	}}
	appendTo(t, path, "a1\na2\na3\n")
	s := startOn(t, dir, ch, 5*time.Millisecond)
	defer s.Stop(context.Background())
	var got []string
	takeBodies(t, mem, &got, 5, nil)
	if fmt.Sprint(got) != "[a1 a2 a3 b1 longer b2 longer]" {
		t.Fatalf("got %q", got)
	}
}

// TestTaildirCutFirstLineHead: with max_line_bytes below the head's 64 bytes, a cut
// first line's dropped bytes still make the position's head, so the file is not taken
// for a rewritten one and read again.
func TestTaildirCutFirstLineHead(t *testing.T) {
	fx := newFixture(t, `app\.log`, func(o *Options) { o.MaxLineBytes = 10 })
	path := filepath.Join(fx.dir, "app.log")
	appendTo(t, path, strings.Repeat("x", 100)+"\nshort\n")
	fx.wait(t, 2)
	appendTo(t, path, "more\n")
	got := fx.wait(t, 3)
	time.Sleep(50 * time.Millisecond)
	if fmt.Sprint(got) != "[xxxxxxxxxx short more]" || fx.ch.Stats().Events != 0 || fx.c.Get("truncations") != 0 {
		t.Fatalf("got %q (+%d), truncations %d", got, fx.ch.Stats().Events, fx.c.Get("truncations"))
	}
}

// TestTaildirRestartResumes stops the source, appends, rotates while it is down, and
// starts a new one on the same position file: nothing lost, nothing repeated.
func TestTaildirRestartResumes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	pos := filepath.Join(dir, "pos.json")
	ch := channel.NewMemory("m", channel.MemoryOptions{Capacity: 1 << 20})
	defer ch.Close()
	start := func() *Source {
		o := DefaultOptions()
		o.Groups = []Group{{Name: "g", Pattern: filepath.Join(dir, `app\.log`), Headers: map[string]string{"g": "x"}}}
		o.PositionFile = pos
		o.PollInterval = 5 * time.Millisecond
		s, err := New("t", o, &ingest.Processor{Channels: []ingest.Channel{ch}})
		if err != nil {
			t.Fatal(err)
		}
		s.Start(context.Background())
		return s
	}
	var got []string
	take := func(n int) {
		takeBodies(t, ch, &got, n, func(e ingest.Event) {
			if e.Headers.Get("g") != "x" {
				t.Fatalf("group header missing: %v", e.Headers)
			}
		})
	}
	// The successor is made before the file it will replace, so its inode number is the
	// lower one: order by inode alone would read it first.
	spare := filepath.Join(dir, "spare.tmp")
	appendTo(t, spare, "")
	s := start()
	appendTo(t, path, "1\n2\n")
	take(2)
	s.Stop(context.Background())
	appendTo(t, path, "3\n")
	os.Rename(path, path+".1")
	os.Rename(spare, path)
	appendTo(t, path, "4\n")
	// Written and rotated within one tick of the file system's clock: both files have
	// one modification time (this failed once in CI, the new file's inode number being
	// the lower one).
	mt := time.Now().Add(-time.Second)
	for _, p := range []string{path, path + ".1"} {
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	s = start()
	defer s.Stop(context.Background())
	take(4)
	time.Sleep(50 * time.Millisecond)
	if fmt.Sprint(got) != "[1 2 3 4]" || ch.Stats().Events != 0 {
		t.Fatalf("got %q (+%d)", got, ch.Stats().Events)
	}
	data, _ := os.ReadFile(pos)
	if !strings.Contains(string(data), `"inode":`) || !strings.Contains(string(data), `"pos":`) {
		t.Fatalf("position file: %s", data)
	}
}

// A saved position is applied only to a file that starts as the one it was saved for.
// A file deleted while the source is down can give its inode number to a new file
// (ext4 does so readily); here the new content goes into the old inode, which looks
// the same to the source (as a copytruncate while it was down would). The new file is
// read from its start, not from the old file's position with its first lines skipped.
func TestTaildirPositionNotAppliedToAnotherFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	ch := channel.NewMemory("m", channel.MemoryOptions{Capacity: 1 << 20})
	defer ch.Close()
	start := func() *Source { return startOn(t, dir, ch, 5*time.Millisecond) }
	var got []string
	s := start()
	appendTo(t, path, "1\n2\n")
	takeBodies(t, ch, &got, 2, nil)
	s.Stop(context.Background())
	if err := os.WriteFile(path, []byte("new-a\nnew-b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = start()
	defer s.Stop(context.Background())
	takeBodies(t, ch, &got, 4, nil)
	time.Sleep(50 * time.Millisecond)
	if fmt.Sprint(got) != "[1 2 new-a new-b]" || ch.Stats().Events != 0 {
		t.Fatalf("got %q (+%d)", got, ch.Stats().Events)
	}
}

// idleClosedFixture runs a source on app.log with lines 1 and 2 read and the file
// closed while idle (close_idle passed on the fixture's clock).
func idleClosedFixture(t *testing.T) (*fixture, string) {
	t.Helper()
	logged := &syncBuffer{}
	fx := newFixture(t, `app\.log`, func(o *Options) {
		o.CloseIdle = time.Millisecond
		o.Log = slog.New(slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	path := filepath.Join(fx.dir, "app.log")
	appendTo(t, path, "1\n2\n")
	fx.wait(t, 2)
	fx.clk.add(time.Minute)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logged.String(), "closing idle file"); {
		if time.Now().After(deadline) {
			t.Fatalf("the file was not closed while idle: %s", logged.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fx, path
}

// The same while the source runs: a file closed while idle keeps its position (with its
// head) until it grows; new content in its inode is read from the start.
func TestTaildirIdlePositionNotAppliedToAnotherFile(t *testing.T) {
	fx, path := idleClosedFixture(t)
	if err := os.WriteFile(path, []byte("new-a\nnew-b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := fx.wait(t, 4); fmt.Sprint(got) != "[1 2 new-a new-b]" {
		t.Fatalf("got %q", got)
	}
}

// The same when the new content is exactly as long as the old file's position: a file
// closed while idle is left closed only while its size and modification time stay as
// they were.
func TestTaildirIdlePositionSameSizeOtherFile(t *testing.T) {
	fx, path := idleClosedFixture(t)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Overwritten in place: the size never changes, as for a new file of that size.
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("a\nb\n"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A later write than the first (the clock's tick can be coarser than this test).
	later := st.ModTime().Add(time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if got := fx.wait(t, 4); fmt.Sprint(got) != "[1 2 a b]" {
		t.Fatalf("got %q", got)
	}
}

// syncBuffer is a bytes.Buffer for a logger on another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// An unreadable position file (a power cut in the middle of its in-place rewrite) is set
// aside and every file is read from its start, even with SkipToEnd: duplicates, no gaps.
func TestTaildirCorruptPositionFileRereads(t *testing.T) {
	fx := newFixture(t, `app\.log`, func(o *Options) {
		dir := filepath.Dir(o.PositionFile)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(o.PositionFile, []byte(`[{"inode":12,"pos":4`+"\x00\x00garbage"), 0o644)
		appendTo(t, filepath.Join(filepath.Dir(dir), "app.log"), "one\ntwo\n")
		o.SkipToEnd = true
	})
	if got := fx.wait(t, 2); fmt.Sprint(got) != "[one two]" {
		t.Fatalf("got %q", got)
	}
	if _, err := os.Stat(filepath.Join(fx.dir, "pos", "taildir_position.json.corrupt")); err != nil {
		t.Errorf("the bad position file was not kept: %v", err)
	}
}

// TestTaildirToKafka runs taildir → file channel → kafka sink on every backend with long
// UTF-8 lines, CRLF and an over-long line.
func TestTaildirToKafka(t *testing.T) {
	for _, be := range kafkatest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			b := be.Start(t, t.TempDir(), 0, map[string]int32{"logs": 3})
			defer b.Stop()
			dir := t.TempDir()
			fo := channel.DefaultFileOptions(filepath.Join(dir, "ch"))
			fo.MinFreeBytes = -1
			ch, err := channel.OpenFile("c", fo)
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			ko := sink.DefaultKafkaOptions()
			ko.Brokers, ko.Topic = []string{b.Addr()}, "logs"
			k, _ := sink.NewKafka("k", ko)
			defer k.Close()
			o := DefaultOptions()
			// One group per file, keyed, so each file's lines share a partition and stay in order.
			for i := 0; i < 3; i++ {
				o.Groups = append(o.Groups, Group{Name: fmt.Sprint(i), Pattern: filepath.Join(dir, fmt.Sprintf(`f%d\.log`, i)),
					Headers: map[string]string{ingest.HeaderKey: fmt.Sprint("file", i)}})
			}
			o.PositionFile = filepath.Join(dir, "pos.json")
			o.PollInterval = 5 * time.Millisecond
			o.MaxLineBytes = 3000
			o.FileHeader = true
			s, _ := New("t", o, &ingest.Processor{Channels: []ingest.Channel{ch}})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				(&ingest.SinkRunner{Channel: ch, Sink: k}).Run(ctx, context.Background())
			}()
			defer func() { cancel(); <-done }()
			s.Start(ctx)
			defer s.Stop(context.Background())
			long := strings.Repeat("日本", 500) // 3000 bytes
			want := map[string][]string{}
			for i := 0; i < 300; i++ {
				f := fmt.Sprintf("f%d.log", i%3)
				line := fmt.Sprintf("%s line %d %s", f, i, long[:3*(i%100)])
				want[filepath.Join(dir, f)] = append(want[filepath.Join(dir, f)], line)
				appendTo(t, filepath.Join(dir, f), line+"\r\n")
			}
			appendTo(t, filepath.Join(dir, "f0.log"), long+"\n"+long+"x\n")
			want[filepath.Join(dir, "f0.log")] = append(want[filepath.Join(dir, "f0.log")], long, long)
			kafkatest.WaitCount(t, b.Addr(), "logs", 302, 30*time.Second)
			got := map[string][]string{}
			var errs []string
			for _, r := range kafkatest.ReadAll(t, b.Addr(), "logs") {
				got[r.Headers["file"]] = append(got[r.Headers["file"]], r.Value)
				if e := r.Headers["error"]; e != "" {
					errs = append(errs, e)
				}
			}
			for f, lines := range want {
				if fmt.Sprint(got[f]) != fmt.Sprint(lines) {
					t.Fatalf("%s: got %d lines, want %d (first diff)", f, len(got[f]), len(lines))
				}
			}
			if fmt.Sprint(errs) != "[line too long: 3001 bytes, cut at 3000]" {
				t.Fatalf("errors = %q", errs)
			}
		})
	}
}

// TestTaildirRotatedWhileDown: with a pattern that also matches rotated names, a file
// that was created and rotated away entirely while the source was down is still read,
// and files already read are not read again.
func TestTaildirRotatedWhileDown(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	pos := filepath.Join(dir, "pos.json")
	ch := channel.NewMemory("m", channel.MemoryOptions{Capacity: 1 << 20})
	defer ch.Close()
	start := func() *Source {
		o := DefaultOptions()
		o.Groups = []Group{{Name: "g", Pattern: filepath.Join(dir, `app\.log(\.\d+)?`)}}
		o.PositionFile = pos
		o.PollInterval = 5 * time.Millisecond
		o.CloseIdle = time.Millisecond // close idle files at once: they must not be re-read
		s, err := New("t", o, &ingest.Processor{Channels: []ingest.Channel{ch}})
		if err != nil {
			t.Fatal(err)
		}
		s.Start(context.Background())
		return s
	}
	var got []string
	take := func(n int) { takeBodies(t, ch, &got, n, nil) }
	s := start()
	appendTo(t, path, "1\n")
	take(1)
	time.Sleep(30 * time.Millisecond) // idle-closed and re-scanned a few times
	s.Stop(context.Background())
	appendTo(t, path, "2\n")
	os.Rename(path, path+".1")
	appendTo(t, path, "3\n") // created and rotated while down
	os.Rename(path, path+".2")
	appendTo(t, path, "4\n")
	s = start()
	defer s.Stop(context.Background())
	take(4)
	time.Sleep(50 * time.Millisecond)
	sort.Strings(got)
	if fmt.Sprint(got) != "[1 2 3 4]" || ch.Stats().Events != 0 {
		t.Fatalf("got %q (+%d)", got, ch.Stats().Events)
	}
}
