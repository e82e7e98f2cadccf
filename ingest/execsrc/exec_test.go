package execsrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/channel"
	"github.com/tagpipe/tagpipe/ingest/interceptor"
	"github.com/tagpipe/tagpipe/ingest/internal/chantest"
)

// childEnv makes the test binary a collector process of TestCommandDiesWithCollector:
// an exec source running the command in childCmdEnv, until it is killed.
const childEnv, childCmdEnv = "EXECSRC_TEST_CHILD", "EXECSRC_TEST_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		o := DefaultOptions(os.Getenv(childCmdEnv))
		o.Shell = "/bin/sh -c"
		ch := channel.NewMemory("m", channel.MemoryOptions{Capacity: 100})
		src, err := New("e", o, &ingest.Processor{Channels: []ingest.Channel{ch}, C: ingest.NewMetrics(nil).Component("a", "source", "e", "exec")})
		if err == nil {
			err = src.Start(context.Background())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		select {} // until killed
	}
	goleak.VerifyTestMain(m)
}

// A collector killed with kill -9 takes its command with it (the parent-death signal),
// and what the command started itself (the process-group reaper), instead of leaving
// them running with nobody reading their output.
func TestCommandDiesWithCollector(t *testing.T) {
	for name, script := range map[string]string{
		"command":         "echo $$ > %s; exec sleep 1000",
		"what it started": "sleep 1000 & echo $! > %s; wait",
	} {
		t.Run(name, func(t *testing.T) { commandDiesWithCollector(t, script) })
	}
}

func commandDiesWithCollector(t *testing.T, script string) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), childEnv+"=1", childCmdEnv+"="+fmt.Sprintf(script, pidFile))
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	var pid int
	deadline := time.Now().Add(30 * time.Second)
	for pid == 0 {
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the command (pid %d) survived its collector", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone says whether process pid has ended: no such process, or a zombie nobody reaped
// yet (its state in /proc is Z).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// logBuf is a log sink tests read.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// batchSizes records the size of every batch the source puts.
type batchSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (b *batchSizes) Intercept(evs []ingest.Event) []ingest.Event {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(evs))
	b.mu.Unlock()
	return evs
}

func (b *batchSizes) get() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.sizes...)
}

type fixture struct {
	src   *Source
	ch    ingest.Channel
	c     *ingest.Counters
	log   *logBuf
	sizes *batchSizes
}

func start(t *testing.T, opts Options, ch ingest.Channel, ics ...ingest.Interceptor) *fixture {
	t.Helper()
	if ch == nil {
		ch = channel.NewMemory("m", channel.MemoryOptions{Capacity: 100000})
	}
	t.Cleanup(func() { ch.Close() })
	f := &fixture{ch: ch, log: &logBuf{}, sizes: &batchSizes{},
		c: ingest.NewMetrics(nil).Component("a", "source", "e", "exec")}
	opts.Log = slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts.C = f.c
	proc := &ingest.Processor{Channels: []ingest.Channel{ch}, C: f.c, Interceptors: append([]ingest.Interceptor{f.sizes}, ics...)}
	src, err := New("e", opts, proc)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.src = src
	// Registered after the channel's Close, so it runs first.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := src.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return f
}

func waitDone(t *testing.T, s *Source, within time.Duration) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(within):
		t.Fatalf("source did not end within %v", within)
	}
}

func bodies(evs []ingest.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = string(e.Body)
	}
	return out
}

// A command printing N lines gives N events in order, in batches of batch_size (the
// rest at the end of the output), each with its own event id; then the source ends.
func TestLinesInBatches(t *testing.T) {
	o := DefaultOptions("seq 1 50") // no shell: argv
	o.BatchSize, o.BatchTimeout = 7, time.Hour
	f := start(t, o, nil)
	evs := chantest.Take(t, f.ch, 50)
	waitDone(t, f.src, 10*time.Second)
	ids := map[string]bool{}
	for i, e := range evs {
		if string(e.Body) != strconv.Itoa(i+1) {
			t.Fatalf("event %d = %q", i, e.Body)
		}
		ids[e.Headers.Get(ingest.HeaderEventID)] = true
	}
	if len(ids) != 50 || ids[""] {
		t.Fatalf("event ids: %d distinct", len(ids))
	}
	if got, want := fmt.Sprint(f.sizes.get()), "[7 7 7 7 7 7 7 1]"; got != want {
		t.Fatalf("batches %s, want %s", got, want)
	}
	if f.c.Get("received") != 50 || f.c.Get("accepted") != 50 || f.c.Get("runs") != 1 || f.c.Get("failed_runs") != 0 {
		t.Fatalf("counters received %d accepted %d runs %d failed %d", f.c.Get("received"), f.c.Get("accepted"), f.c.Get("runs"), f.c.Get("failed_runs"))
	}
	if !strings.Contains(f.log.String(), "the source has ended") || !strings.Contains(f.log.String(), "exit status 0") {
		t.Fatalf("log:\n%s", f.log)
	}
}

// Through the shell: CRLF, an unterminated last line, and an over-long line, which is
// cut at max_line_bytes and marked, as the other line sources do.
func TestShellAndLongLines(t *testing.T) {
	o := DefaultOptions(`printf 'one\r\n0123456789abcdef\nlast'`)
	o.Shell, o.MaxLineBytes = "/bin/sh -c", 10
	f := start(t, o, nil)
	evs := chantest.Take(t, f.ch, 3)
	if got := fmt.Sprint(bodies(evs)); got != "[one 0123456789 last]" {
		t.Fatalf("bodies %s", got)
	}
	if e := evs[1].Headers.Get(ingest.HeaderError); e != "line too long: 16 bytes, cut at 10" {
		t.Fatalf("error header %q", e)
	}
	// The processor counts a batch after the channel took it: the count may trail
	// the events taken by a moment.
	for deadline := time.Now().Add(10 * time.Second); f.c.Get("bad_input") == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if evs[0].Headers.Get(ingest.HeaderError) != "" || f.c.Get("bad_input") != 1 {
		t.Fatalf("headers %v, bad_input %d", evs[0].Headers, f.c.Get("bad_input"))
	}
}

// A batch that is not full goes to the channel after batch_timeout while the command
// runs on.
func TestBatchTimeout(t *testing.T) {
	o := DefaultOptions("echo a; echo b; exec sleep 1000")
	o.Shell, o.BatchSize, o.BatchTimeout = "/bin/sh -c", 100, 50*time.Millisecond
	f := start(t, o, nil)
	if got := fmt.Sprint(bodies(chantest.Take(t, f.ch, 2))); got != "[a b]" {
		t.Fatalf("bodies %s", got)
	}
	select {
	case <-f.src.Done():
		t.Fatal("source ended while its command runs")
	default:
	}
}

// With restart the command runs again after restart_throttle, its exit status logged.
func TestRestart(t *testing.T) {
	o := DefaultOptions("echo run; exit 3")
	o.Shell, o.Restart, o.RestartThrottle, o.BatchTimeout = "/bin/sh -c", true, 20*time.Millisecond, time.Hour
	f := start(t, o, nil)
	if got := fmt.Sprint(bodies(chantest.Take(t, f.ch, 3))); got != "[run run run]" {
		t.Fatalf("bodies %s", got)
	}
	if f.c.Get("runs") < 3 || f.c.Get("failed_runs") < 2 {
		t.Fatalf("runs %d failed %d", f.c.Get("runs"), f.c.Get("failed_runs"))
	}
	if l := f.log.String(); !strings.Contains(l, "command exited, restarting") || !strings.Contains(l, "exit status 3") {
		t.Fatalf("log:\n%s", l)
	}
}

// Without restart the command runs once and the source reports it ended (a failure too).
func TestNoRestartEnds(t *testing.T) {
	o := DefaultOptions("echo once; exit 3")
	o.Shell, o.RestartThrottle = "/bin/sh -c", time.Millisecond
	f := start(t, o, nil)
	waitDone(t, f.src, 10*time.Second)
	time.Sleep(50 * time.Millisecond) // a restart (wrongly) would run now
	if got := fmt.Sprint(bodies(chantest.Take(t, f.ch, 1))); got != "[once]" || f.ch.Stats().Events != 0 {
		t.Fatalf("bodies %s, %d left", got, f.ch.Stats().Events)
	}
	if f.c.Get("runs") != 1 || f.c.Get("failed_runs") != 1 {
		t.Fatalf("runs %d failed %d", f.c.Get("runs"), f.c.Get("failed_runs"))
	}
	if l := f.log.String(); !strings.Contains(l, "the source has ended (restart is off)") || !strings.Contains(l, "exit status 3") {
		t.Fatalf("log:\n%s", l)
	}
	// Stop after the end is a no-op.
	if err := f.src.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A full channel blocks the command on its stdout pipe; once drained, every line
// arrives exactly once, in order.
func TestFullChannelBlocksCommand(t *testing.T) {
	const n = 200000 // 1.3 MB: far more than the pipe and the reader's buffer hold
	ch := channel.NewMemory("tiny", channel.MemoryOptions{Capacity: 10})
	o := DefaultOptions("seq 1 " + strconv.Itoa(n))
	o.BatchSize, o.BatchTimeout = 5, 10*time.Millisecond
	f := start(t, o, ch)
	deadline := time.Now().Add(10 * time.Second)
	for ch.Stats().Events < 10 {
		if time.Now().After(deadline) {
			t.Fatal("channel never filled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // seq writes 1.3 MB in a few ms when nothing blocks it
	select {
	case <-f.src.Done():
		t.Fatal("the command ran to its end while the channel was full")
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	next := 1
	for next <= n {
		tx, err := ch.Take(ctx, 10)
		if err != nil {
			t.Fatalf("at line %d: %v", next, err)
		}
		for _, e := range tx.Events() {
			if string(e.Body) != strconv.Itoa(next) {
				t.Fatalf("line %d: got %q", next, e.Body)
			}
			next++
		}
		tx.Commit()
	}
	waitDone(t, f.src, 10*time.Second)
	if ch.Stats().Events != 0 || f.c.Get("accepted") != n || f.c.Get("lost") != 0 {
		t.Fatalf("left %d, accepted %d, lost %d", ch.Stats().Events, f.c.Get("accepted"), f.c.Get("lost"))
	}
}

// Stop terminates a long-running command (and what it started in its group) promptly
// and puts the line already read; goleak (TestMain) checks no goroutine is left.
func TestStopKillsCommand(t *testing.T) {
	for _, tc := range []struct{ name, shell, cmd string }{
		{"argv", "", "sleep 1000"},
		{"group", "/bin/sh -c", "sleep 1000 & echo started; touch {{ready}}; wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ready := filepath.Join(t.TempDir(), "ready")
			o := DefaultOptions(strings.ReplaceAll(tc.cmd, "{{ready}}", ready))
			o.Shell, o.BatchTimeout = tc.shell, time.Hour
			f := start(t, o, nil)
			if tc.shell != "" {
				for _, err := os.Stat(ready); err != nil; _, err = os.Stat(ready) {
					time.Sleep(5 * time.Millisecond)
				}
			} else {
				time.Sleep(50 * time.Millisecond)
			}
			// Stop returns once the group is gone: not after sleep 1000 (the bound is
			// for a hang, not a timing).
			stopped := make(chan error, 1)
			go func() { stopped <- f.src.Stop(context.Background()) }()
			select {
			case err := <-stopped:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Stop did not return: the command was not terminated")
			}
			waitDone(t, f.src, 10*time.Second)
			if tc.shell != "" {
				if got := fmt.Sprint(bodies(chantest.Take(t, f.ch, 1))); got != "[started]" {
					t.Fatalf("bodies %s", got)
				}
			}
			if f.c.Get("failed_runs") != 0 || !strings.Contains(f.log.String(), "exec source stopped") {
				t.Fatalf("failed_runs %d, log:\n%s", f.c.Get("failed_runs"), f.log)
			}
		})
	}
}

// Stop waits for room for the lines already read until its ctx ends; then they are
// counted as lost and Stop says why.
func TestStopDeadlineWithFullChannel(t *testing.T) {
	ch := channel.NewMemory("tiny", channel.MemoryOptions{Capacity: 1})
	o := DefaultOptions("seq 1 10; exec sleep 1000")
	o.Shell, o.BatchSize, o.BatchTimeout = "/bin/sh -c", 1, time.Hour
	f := start(t, o, ch)
	for ch.Stats().Events < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.src.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v", err)
	}
	if f.c.Get("accepted") != 1 || f.c.Get("lost") != 9 {
		t.Fatalf("accepted %d lost %d", f.c.Get("accepted"), f.c.Get("lost"))
	}
}

// stderr is logged line by line with LogStderr, else discarded.
func TestStderr(t *testing.T) {
	for _, logIt := range []bool{true, false} {
		o := DefaultOptions("echo out; echo oops >&2")
		o.Shell, o.LogStderr, o.BatchTimeout = "/bin/sh -c", logIt, time.Hour
		f := start(t, o, nil)
		waitDone(t, f.src, 10*time.Second)
		if got := fmt.Sprint(bodies(chantest.Take(t, f.ch, 1))); got != "[out]" {
			t.Fatalf("bodies %s", got)
		}
		if logged := strings.Contains(f.log.String(), "line=oops"); logged != logIt || f.c.Get("stderr_lines") != map[bool]int64{true: 1}[logIt] {
			t.Fatalf("log_stderr %v: logged %v, stderr_lines %d:\n%s", logIt, logged, f.c.Get("stderr_lines"), f.log)
		}
	}
}

// refusing fails its first puts as a file channel on a full disk does.
type refusing struct {
	ingest.Channel
	left atomic.Int32
}

func (r *refusing) Put(ctx context.Context, evs []ingest.Event) error {
	if r.left.Add(-1) >= 0 {
		return errors.New("disk nearly full")
	}
	return r.Channel.Put(ctx, evs)
}

// A refused put is retried with the batch as read (an interceptor that filters in place
// does not change it), so nothing is dropped while the command runs.
func TestPutRetried(t *testing.T) {
	ch := &refusing{Channel: channel.NewMemory("m", channel.MemoryOptions{})}
	ch.left.Store(2)
	o := DefaultOptions("seq 1 6")
	o.BatchSize, o.BatchTimeout = 6, time.Hour
	f := start(t, o, ch, &interceptor.RegexFilter{Re: regexp.MustCompile(`[135]`), Exclude: true})
	waitDone(t, f.src, 10*time.Second)
	if got := fmt.Sprint(bodies(chantest.Take(t, ch, 3))); got != "[2 4 6]" || ch.Stats().Events != 0 {
		t.Fatalf("bodies %s", got)
	}
	if f.c.Get("put_failures") != 2 || f.c.Get("lost") != 0 {
		t.Fatalf("put_failures %d lost %d", f.c.Get("put_failures"), f.c.Get("lost"))
	}
}

func TestBadOptions(t *testing.T) {
	if _, err := New("e", Options{}, &ingest.Processor{}); err == nil || !strings.Contains(err.Error(), "no command") {
		t.Fatalf("empty command: %v", err)
	}
	s, err := New("e", DefaultOptions("/no/such/program -x"), &ingest.Processor{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "/no/such/program") {
		t.Fatalf("Start = %v", err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
}
