package jobs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The pool tests run the test binary again as scheduler and backfill processes on one
// data dir (JOBS_MODE=pool). Every run's task appends "start <job> <ds> <slots> <pid>"
// when it begins and "end <job> <ds> <slots> <pid>" when it ends to one file (O_APPEND:
// one write a line, in the order they happen); the parent replays it. A logged run lies
// within the time its slots are held, so a logged overlap beyond the pool's size is a
// real one.

// poolChild says what one child process does.
type poolChild struct {
	mode string // "scheduler" (catch-up from From to 2026-11-19) or "backfill" (From..To)
	size int    // the pool's size in this process's config
	jobs string // "job:slots,…", all in pool "db"
	from string
	to   string
	// task: "go" (in-process, sleeps a little), "hold-go" (in-process, runs until the
	// process dies), "hold-shell" (a shell task that outlives a killed scheduler).
	task string
}

func (c poolChild) start(t *testing.T, dir, out string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "JOBS_MODE=pool", "JOBS_DIR="+filepath.Join(dir, "jobs"), "JOBS_OUT="+out,
		"POOL_RUN="+c.mode, "POOL_SIZE="+strconv.Itoa(c.size), "POOL_JOBS="+c.jobs, "POOL_FROM="+c.from, "POOL_TO="+c.to,
		"POOL_TASK="+c.task)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// note appends one line to the event file.
func note(out, line string) error {
	f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// childPool is one process of the pool tests (see poolChild).
func childPool() int {
	out := os.Getenv("JOBS_OUT")
	size, _ := strconv.Atoi(os.Getenv("POOL_SIZE"))
	task, from, to := os.Getenv("POOL_TASK"), os.Getenv("POOL_FROM"), os.Getenv("POOL_TO")
	slots := map[string]int{}
	gauge := func(ctx context.Context, rc RunContext) (int64, error) {
		tail := fmt.Sprintf("%s %s %d %d", rc.Job, rc.DS, slots[rc.Job], os.Getpid())
		if err := note(out, "start "+tail); err != nil {
			return 0, err
		}
		if task == "hold-go" {
			<-ctx.Done()
			return 0, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
		return 1, note(out, "end "+tail)
	}
	funcs := map[string]TaskFunc{}
	var defs []Def
	var names []string
	for _, js := range strings.Split(os.Getenv("POOL_JOBS"), ",") {
		name, n, _ := strings.Cut(js, ":")
		slots[name], _ = strconv.Atoi(n)
		funcs[name] = gauge
		d := Def{Name: name, Schedule: "@daily", StartDate: from, MaxActiveRuns: 3, Pool: "db", PoolSlots: slots[name],
			Retries: -1, Task: TaskSpec{Kind: "func", Name: name}}
		if task == "hold-shell" {
			tail := fmt.Sprintf(`%s $TAGPIPE_DS %d $$`, name, slots[name])
			d.Task = TaskSpec{Kind: "shell", Command: `echo "start ` + tail + `" >> "` + out + `"; sleep 1; echo "end ` + tail + `" >> "` + out + `"`}
		}
		defs = append(defs, d)
		names = append(names, name)
	}
	k := NewKinds()
	k.Register("func", BuiltinKind(funcs))
	dflt := DefaultDefaults()
	dflt.Pools = map[string]int{"db": size}
	dag, err := Compile(defs, k, dflt)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	s, err := New(dag, Options{Dir: os.Getenv("JOBS_DIR"), Now: shiftedNow(nov20), Parallelism: 8,
		PollInterval: 20 * time.Millisecond, PoolPollInterval: 10 * time.Millisecond})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer s.Close()
	if os.Getenv("POOL_RUN") == "backfill" {
		sum, err := s.Backfill(context.Background(), BackfillOptions{Jobs: names, From: from, To: to, Parallel: 8})
		if err != nil || sum.Succeeded != sum.Total {
			fmt.Fprintln(os.Stderr, "child backfill:", sum, err)
			return 1
		}
		return 0
	}
	if err := s.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	first, _ := time.Parse(time.DateOnly, from)
	want := len(names) * int(nov20.Sub(first)/(24*time.Hour))
	return childAwait(s, names, want, true)
}

// poolEvent is one line of the event file.
type poolEvent struct {
	kind, job, ds string
	slots         int
	pid           string
}

func readPoolEvents(t *testing.T, out string) []poolEvent {
	t.Helper()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var evs []poolEvent
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 { // "killing <pid>"
			evs = append(evs, poolEvent{kind: f[0], pid: f[1]})
			continue
		}
		if len(f) != 5 {
			t.Fatalf("bad event line %q", l)
		}
		n, _ := strconv.Atoi(f[3])
		evs = append(evs, poolEvent{kind: f[0], job: f[1], ds: f[2], slots: n, pid: f[4]})
	}
	return evs
}

// peakSlots replays the events: the most slots in use at once, and the runs that
// started per pid. "killing <pid>" ends that pid's open runs when killEnds is set
// (in-process tasks die with their process).
func peakSlots(t *testing.T, evs []poolEvent, killEnds bool) (peak int, started map[string]int) {
	t.Helper()
	open := map[string]poolEvent{} // job/ds → its start
	started = map[string]int{}
	use := 0
	for _, e := range evs {
		key := e.job + "/" + e.ds
		switch e.kind {
		case "start":
			if _, dup := open[key]; dup {
				t.Fatalf("run %s started twice at once", key)
			}
			open[key] = e
			use += e.slots
			peak = max(peak, use)
			started[e.pid]++
		case "end":
			if _, ok := open[key]; !ok {
				t.Fatalf("run %s ended without starting", key)
			}
			delete(open, key)
			use -= e.slots
		case "killing":
			if !killEnds {
				continue
			}
			for k, s := range open {
				if s.pid == e.pid {
					delete(open, k)
					use -= s.slots
				}
			}
		}
	}
	return peak, started
}

func waitChildren(t *testing.T, cmds ...*exec.Cmd) {
	t.Helper()
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
	}
}

// A scheduler and a backfill in two processes, each with runs taking 1 and 2 slots of
// pool db (2 slots), never use more than 2 slots together; both do all their runs.
func TestPoolSharedAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "events")
	sched := poolChild{mode: "scheduler", size: 2, jobs: "a:1,b:1,c:2", from: "2026-11-14", task: "go"}.start(t, dir, out)
	bf := poolChild{mode: "backfill", size: 2, jobs: "x:1,y:2", from: "2026-11-01", to: "2026-11-08", task: "go"}.start(t, dir, out)
	waitChildren(t, sched, bf)
	evs := readPoolEvents(t, out)
	peak, started := peakSlots(t, evs, false)
	if peak > 2 {
		t.Errorf("pool db (2 slots) had %d slots in use at once", peak)
	}
	total := 0
	for _, n := range started {
		total += n
	}
	if len(started) != 2 || total != 3*6+2*8 {
		t.Errorf("runs per process %v, want 18 + 16 in two processes", started)
	}
	t.Logf("%d runs, peak %d slots", total, peak)
}

// The pool's config edited while a process with the old size runs: a process sized 3
// and one sized 2 (both backfills) together never exceed 3 slots.
func TestPoolResizedAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "events")
	big := poolChild{mode: "backfill", size: 3, jobs: "a:1,b:2,c:3", from: "2026-11-01", to: "2026-11-06", task: "go"}.start(t, dir, out)
	small := poolChild{mode: "backfill", size: 2, jobs: "x:1,y:2", from: "2026-11-01", to: "2026-11-06", task: "go"}.start(t, dir, out)
	waitChildren(t, big, small)
	peak, started := peakSlots(t, readPoolEvents(t, out), false)
	if peak > 3 {
		t.Errorf("%d slots in use at once, more than the larger size 3", peak)
	}
	if len(started) != 2 {
		t.Errorf("runs per process %v", started)
	}
}

// A process killed with SIGKILL while a run holds the only slot of pool db: the other
// process, which queued its runs meanwhile, runs them once the slot is free — at once
// for an in-process task (the kernel drops the dead process's locks), after the orphaned
// shell task exits for a shell task (it inherited the slot as it does the run lock).
func TestPoolSlotsFreedByKill9(t *testing.T) {
	for _, task := range []string{"hold-go", "hold-shell"} {
		t.Run(task, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "events")
			holder := poolChild{mode: "backfill", size: 1, jobs: "held:1", from: "2026-11-01", to: "2026-11-01", task: task}.start(t, dir, out)
			defer func() { holder.Process.Kill(); holder.Wait() }()
			deadline := time.Now().Add(30 * time.Second)
			for b, _ := os.ReadFile(out); !strings.Contains(string(b), "start held"); b, _ = os.ReadFile(out) {
				if time.Now().After(deadline) {
					t.Fatal("holder never started its run")
				}
				time.Sleep(5 * time.Millisecond)
			}
			waiter := poolChild{mode: "scheduler", size: 1, jobs: "after:1", from: "2026-11-18", task: "go"}.start(t, dir, out)
			// The waiter has queued its runs (it plans them before taking slots; without a
			// shared pool it would go on to run them at once).
			st, err := OpenStore(filepath.Join(dir, "jobs"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for {
				if err := st.Refresh(); err != nil {
					t.Fatal(err)
				}
				if r, ok := st.Latest("after", time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC)); ok && r.State != StateScheduled {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("waiter never queued its run")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := note(out, fmt.Sprintf("killing %d", holder.Process.Pid)); err != nil {
				t.Fatal(err)
			}
			holder.Process.Kill() // SIGKILL
			holder.Wait()
			waitChildren(t, waiter)
			evs := readPoolEvents(t, out)
			peak, started := peakSlots(t, evs, task == "hold-go")
			if peak > 1 {
				t.Errorf("pool db (1 slot) had %d in use at once: %v", peak, evs)
			}
			if started[strconv.Itoa(waiter.Process.Pid)] != 2 {
				t.Errorf("waiter ran %d runs, want 2: %v", started[strconv.Itoa(waiter.Process.Pid)], evs)
			}
			for _, e := range evs {
				if e.kind == "killing" {
					break
				}
				if e.job == "after" {
					t.Errorf("waiter started before the holder was killed: %v", evs)
				}
			}
		})
	}
}
