// Package execsrc is the exec source (Flume's ExecSource): it runs a command and turns
// each line of its standard output into an event, put into the channel in batches of
// BatchSize lines or after BatchTimeout, whichever comes first.
//
// The command runs through Shell when one is set ("/bin/sh -c": the command is its last
// argument), else it is split at white space into argv and run without a shell, as Flume
// does. It runs in its own process group; Stop terminates the group (SIGTERM, then
// SIGKILL after a grace) and puts the lines already read before returning. When the
// channel is full the put waits and the source stops reading, so the command blocks on
// its stdout pipe: nothing is dropped while it runs. A collector that dies takes the
// command (a parent-death signal) and its process group (a reaper, reaper.go) with it.
// When the command exits it is started again after RestartThrottle with Restart, else
// the source ends (Done).
//
// There is no delivery guarantee, as Flume warns: the command cannot be told that a line
// did not reach the channel, nor asked for it again. Lines the command wrote that were
// not read yet when the collector dies (or when its process group is killed) are lost,
// and a restarted command starts its output over (tail -F sends its last lines again).
package execsrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

// Options configure a Source.
type Options struct {
	// Command is the command line to run.
	Command string
	// Shell, when set, runs Command through it: its words, then Command as one argument
	// ("/bin/sh -c"). Empty: Command is split at white space and run without a shell.
	Shell string
	// Restart runs the command again when it exits, after RestartThrottle.
	Restart bool
	// RestartThrottle is the wait before a restart; 0 = 10s (Flume's default).
	RestartThrottle time.Duration
	// LogStderr logs the command's stderr at info level, line by line; else it is
	// discarded.
	LogStderr bool
	// BatchSize is the most lines of one put; 0 = 20 (Flume's default).
	BatchSize int
	// BatchTimeout puts a batch that is not full this long after its first line;
	// 0 = 3s (Flume's default).
	BatchTimeout time.Duration
	// MaxLineBytes cuts longer lines (with an error header); 0 = 1 MiB.
	MaxLineBytes int
	// KillGrace is how long Stop waits after SIGTERM before SIGKILL; 0 = 2s.
	KillGrace time.Duration
	Log       *slog.Logger
	// C counts runs (command starts), failed_runs (start errors, non-zero exits,
	// deaths by signal other than Stop's), put_failures (retried puts), lost (lines read
	// but not put: the channel closed or Stop's deadline passed) and stderr_lines.
	C *ingest.Counters
}

// DefaultOptions returns Flume's defaults for command.
func DefaultOptions(command string) Options {
	return Options{Command: command, RestartThrottle: 10 * time.Second, BatchSize: 20,
		BatchTimeout: 3 * time.Second, MaxLineBytes: 1 << 20, KillGrace: 2 * time.Second}
}

// Source is an exec source.
type Source struct {
	name string
	opts Options
	out  *ingest.Processor
	argv []string

	// drain: Soft ends at Stop (the command is terminated, its output read and put);
	// Hard, the context of puts, ends when Stop's ctx does: a put waiting for room gives
	// up, the group is killed, reads are cut.
	drain ingest.Drain
}

// drainIdle: after Stop terminated the command, the rest of its output is read; a
// reader still waiting in a read after this long with no line (a process that left the
// group holds the pipe) is cut off.
const drainIdle = 200 * time.Millisecond

// New checks options; Start runs the command.
func New(name string, opts Options, out *ingest.Processor) (*Source, error) {
	d := DefaultOptions(opts.Command)
	if opts.RestartThrottle <= 0 {
		opts.RestartThrottle = d.RestartThrottle
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = d.BatchSize
	}
	if opts.BatchTimeout <= 0 {
		opts.BatchTimeout = d.BatchTimeout
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = d.MaxLineBytes
	}
	if opts.KillGrace <= 0 {
		opts.KillGrace = d.KillGrace
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	var argv []string
	if strings.TrimSpace(opts.Command) == "" {
		return nil, fmt.Errorf("exec source %s: no command", name)
	}
	if opts.Shell != "" {
		argv = append(strings.Fields(opts.Shell), opts.Command)
	} else {
		argv = strings.Fields(opts.Command)
	}
	return &Source{name: name, opts: opts, out: out, argv: argv}, nil
}

func (s *Source) Name() string { return s.name }

// Done is closed when the source has ended: the command exited and Restart is off, or
// Stop.
func (s *Source) Done() <-chan struct{} { return s.drain.Done() }

// Start checks that the program exists and runs it.
func (s *Source) Start(context.Context) error {
	if _, err := exec.LookPath(s.argv[0]); err != nil {
		return fmt.Errorf("exec source %s: %w", s.name, err)
	}
	s.drain.Go(s.run)
	return nil
}

// Stop terminates the command's process group, puts the lines already read (waiting for
// room until ctx ends) and returns once the source has ended. Safe twice and without
// Start.
func (s *Source) Stop(ctx context.Context) error {
	if err := s.drain.Stop(ctx); err != nil {
		return fmt.Errorf("exec source %s: %w", s.name, err)
	}
	return nil
}

func (s *Source) isStopping() bool { return s.drain.Soft().Err() != nil }

func (s *Source) run() {
	for {
		status, err := s.runOnce()
		if s.isStopping() {
			s.opts.Log.Info("exec source stopped", "source", s.name, "command", s.opts.Command)
			return
		}
		if err == nil && !s.opts.Restart {
			s.opts.Log.Info("exec source command exited, the source has ended (restart is off)",
				"source", s.name, "command", s.opts.Command, "status", status)
			return
		}
		if !s.opts.Restart {
			s.opts.Log.Error("exec source command failed, the source has ended (restart is off)",
				"source", s.name, "command", s.opts.Command, "status", status, "err", err)
			return
		}
		s.opts.Log.Warn("exec source command exited, restarting", "source", s.name, "command", s.opts.Command,
			"status", status, "err", err, "restart_throttle", s.opts.RestartThrottle)
		t := time.NewTimer(s.opts.RestartThrottle)
		select {
		case <-s.drain.Soft().Done():
			t.Stop()
			s.opts.Log.Info("exec source stopped", "source", s.name, "command", s.opts.Command)
			return
		case <-t.C:
		}
	}
}

// runOnce runs the command once, putting its lines, until it exited and its output was
// read. status is its exit status; err is set when it could not start or failed.
func (s *Source) runOnce() (status string, err error) {
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	// Pdeathsig: the command is killed when the collector dies (kill -9 included), not
	// left running with nobody reading its output. Linux sends it when the thread that
	// started the command exits, so the command is started, and waited for, on a thread
	// of its own (startLocked).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Pipes of our own (not StdoutPipe): the read ends are pollable files, so a reader
	// can be cut off with a deadline, and no copying goroutine is involved.
	r, w, err := os.Pipe()
	if err != nil {
		s.opts.C.Add("failed_runs", 1)
		return "not started", fmt.Errorf("cannot create a pipe: %w", err)
	}
	defer r.Close()
	cmd.Stdout = w
	var er, ew *os.File
	if s.opts.LogStderr {
		if er, ew, err = os.Pipe(); err != nil {
			w.Close()
			s.opts.C.Add("failed_runs", 1)
			return "not started", fmt.Errorf("cannot create a pipe: %w", err)
		}
		defer er.Close()
		cmd.Stderr = ew
	}
	exited := make(chan struct{})
	var waitErr error
	err = startLocked(cmd, exited, &waitErr)
	w.Close()
	if ew != nil {
		ew.Close()
	}
	if err != nil {
		s.opts.C.Add("failed_runs", 1)
		return "not started", err
	}
	s.opts.C.Add("runs", 1)
	pid := cmd.Process.Pid
	s.opts.Log.Info("exec source command started", "source", s.name, "command", s.opts.Command, "pid", pid)
	if rp, err := startReaper(pid); err != nil {
		s.opts.Log.Warn("exec source: what the command starts may outlive a collector that dies", "source", s.name, "err", err)
	} else {
		defer func() {
			if err := rp.release(); err != nil {
				s.opts.Log.Warn("exec source: process-group reaper", "source", s.name, "err", err)
			}
		}()
	}
	var stderrDone chan struct{}
	if er != nil {
		stderrDone = make(chan struct{})
		go s.logStderr(er, pid, stderrDone)
	}
	lines := make(chan ingest.Event)
	readerDone := make(chan struct{})
	var prog progress
	go s.read(r, lines, readerDone, &prog)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		s.watch(pid, r, er, exited, readerDone, &prog)
	}()

	s.batch(lines)

	// The output ended; the command may still run (it closed stdout).
	select {
	case <-exited:
	case <-s.drain.Soft().Done():
		s.terminate(pid, exited)
	}
	<-watchDone
	if stderrDone != nil {
		t := time.NewTimer(drainIdle)
		select {
		case <-stderrDone:
		case <-t.C:
			er.SetReadDeadline(time.Now()) // a process outside the group holds stderr
			<-stderrDone
		}
		t.Stop()
	}
	status = cmd.ProcessState.String()
	if waitErr != nil && !s.isStopping() {
		s.opts.C.Add("failed_runs", 1)
		return status, waitErr
	}
	return status, nil
}

// startLocked starts cmd on a goroutine locked to its OS thread, which then waits for
// the command and sets *waitErr and closes exited: the thread lives as long as the
// command, so the command's parent-death signal fires when the collector dies, not when
// the Go runtime retires the thread that happened to start it.
func startLocked(cmd *exec.Cmd, exited chan<- struct{}, waitErr *error) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		*waitErr = cmd.Wait()
		close(exited)
	}()
	return <-started
}

// progress is what the watcher sees of the reader.
type progress struct {
	lines   atomic.Int64
	reading atomic.Bool // in a read of the pipe (not handing a line over)
}

// read turns stdout into line events until EOF (or a read cut by watch).
func (s *Source) read(r *os.File, lines chan<- ingest.Event, done chan<- struct{}, prog *progress) {
	defer close(done)
	defer close(lines)
	lr := ingest.NewLineReader(r, s.opts.MaxLineBytes)
	for {
		prog.reading.Store(true)
		ln, err := lr.Next()
		prog.reading.Store(false)
		if err != nil {
			if last, ok := lr.Flush(); ok {
				lines <- ingest.LineEvent(last)
			}
			switch {
			case errors.Is(err, io.EOF):
			case errors.Is(err, os.ErrDeadlineExceeded):
				s.opts.Log.Warn("exec source stopped reading: a process outside the command's group keeps its stdout open",
					"source", s.name, "command", s.opts.Command)
			default:
				s.opts.Log.Error("exec source cannot read the command's output", "source", s.name, "err", err)
			}
			return
		}
		lines <- ingest.LineEvent(ln)
		prog.lines.Add(1)
	}
}

// watch terminates the command when Stop comes while its output is read, then cuts the
// reader off once it idles in a read (the rest of the output was read; only a process
// outside the group can still hold the pipe) or Stop's deadline passed.
func (s *Source) watch(pid int, r, er *os.File, exited, readerDone <-chan struct{}, prog *progress) {
	select {
	case <-readerDone:
		return
	case <-s.drain.Soft().Done():
	}
	s.terminate(pid, exited)
	cut := func() {
		r.SetReadDeadline(time.Now())
		if er != nil {
			er.SetReadDeadline(time.Now())
		}
	}
	tick := time.NewTicker(drainIdle)
	defer tick.Stop()
	last := int64(-1)
	for {
		select {
		case <-readerDone:
			return
		case <-s.drain.Hard().Done():
			cut()
			return
		case <-tick.C:
			n := prog.lines.Load()
			if prog.reading.Load() && n == last {
				cut()
				return
			}
			last = n
		}
	}
}

// terminate sends SIGTERM to the command's process group and SIGKILL when the command
// has not exited after KillGrace (or Stop's deadline passed); it returns once the
// command exited.
func (s *Source) terminate(pid int, exited <-chan struct{}) {
	// The group outlives its leader while other members run, and its id is not reused
	// meanwhile; ESRCH when it is gone.
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	t := time.NewTimer(s.opts.KillGrace)
	defer t.Stop()
	select {
	case <-exited:
		return
	case <-t.C:
	case <-s.drain.Hard().Done():
	}
	s.opts.Log.Warn("exec source command did not exit on SIGTERM, killing it", "source", s.name, "pid", pid)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-exited
}

// batch puts lines in batches of BatchSize, or when BatchTimeout passed since the first
// line of a batch, until lines is closed; then it puts what is left.
func (s *Source) batch(lines <-chan ingest.Event) {
	batch := make([]ingest.Event, 0, s.opts.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var due <-chan time.Time
	lost := false // a put gave up: the rest is counted and dropped
	flush := func() {
		if len(batch) > 0 {
			if lost || !s.put(batch) {
				lost = true
				s.opts.C.Add("lost", int64(len(batch)))
			}
			clear(batch)
			batch = batch[:0]
		}
		timer.Stop()
		due = nil
	}
	for {
		select {
		case ev, ok := <-lines:
			if !ok {
				flush()
				return
			}
			batch = append(batch, ev)
			if len(batch) == 1 {
				timer.Reset(s.opts.BatchTimeout)
				due = timer.C
			}
			if len(batch) >= s.opts.BatchSize {
				flush()
			}
		case <-due:
			flush()
		}
	}
}

// put hands a batch to the channels, waiting for room (the command blocks on its pipe
// meanwhile) and retrying refused puts (a file channel on a nearly full disk); it gives
// up only when a channel is closed or Stop's deadline passed. A retry puts the batch
// again into every channel, so with several required channels one that took it before
// holds it twice (at-least-once, as the other sources).
func (s *Source) put(batch []ingest.Event) bool {
	if err := s.out.PutRetrying(s.drain.Hard(), batch, s.opts.Log, "source", s.name); err != nil {
		s.opts.Log.Error("exec source cannot put lines into the channel, they are lost", "source", s.name,
			"lines", len(batch), "err", err)
		return false
	}
	return true
}

// logStderr logs stderr line by line until EOF.
func (s *Source) logStderr(er *os.File, pid int, done chan<- struct{}) {
	defer close(done)
	lr := ingest.NewLineReader(er, s.opts.MaxLineBytes)
	for {
		ln, err := lr.Next()
		if err != nil {
			if last, ok := lr.Flush(); ok {
				s.logLine(last, pid)
			}
			return
		}
		s.logLine(ln, pid)
	}
}

func (s *Source) logLine(ln ingest.Line, pid int) {
	s.opts.C.Add("stderr_lines", 1)
	s.opts.Log.Info("exec source stderr", "source", s.name, "pid", pid, "line", string(ln.Text))
}
