package jobs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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
	jobs string // "job:slots[:priority_weight],…", all in pool "db"
	from string
	to   string
	// task: "go" (in-process, sleeps a little), "hold-go" (in-process, runs until the
	// process dies), "hold-shell" (a shell task that outlives a killed scheduler),
	// "gate" (in-process, runs until the file <out>.release exists).
	task string
	// poll is the process's PoolPollInterval (default 10ms).
	poll time.Duration
}

func (c poolChild) start(t *testing.T, dir, out string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "JOBS_MODE=pool", "JOBS_DIR="+filepath.Join(dir, "jobs"), "JOBS_OUT="+out,
		"POOL_RUN="+c.mode, "POOL_SIZE="+strconv.Itoa(c.size), "POOL_JOBS="+c.jobs, "POOL_FROM="+c.from, "POOL_TO="+c.to,
		"POOL_TASK="+c.task, "POOL_POLL="+max(c.poll, 10*time.Millisecond).String())
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
		if task == "gate" {
			for i := 0; ; i++ {
				if _, err := os.Stat(out + ".release"); err == nil {
					break
				}
				if i == 12000 {
					return 0, fmt.Errorf("never released")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		time.Sleep(20 * time.Millisecond)
		return 1, note(out, "end "+tail)
	}
	funcs := map[string]TaskFunc{}
	var defs []Def
	var names []string
	for _, js := range strings.Split(os.Getenv("POOL_JOBS"), ",") {
		f := strings.Split(js, ":")
		name := f[0]
		slots[name], _ = strconv.Atoi(f[1])
		funcs[name] = gauge
		d := Def{Name: name, Schedule: "@daily", StartDate: from, MaxActiveRuns: 3, Pool: "db", PoolSlots: slots[name],
			Retries: -1, Task: TaskSpec{Kind: "func", Name: name}}
		if len(f) > 2 {
			w, _ := strconv.Atoi(f[2])
			d.PriorityWeight = &w
		}
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
	poll, _ := time.ParseDuration(os.Getenv("POOL_POLL"))
	s := childScheduler(Compile(defs, k, dflt))(Options{Parallelism: 8, PollInterval: 20 * time.Millisecond, PoolPollInterval: poll})
	if s == nil {
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

// awaitEvents polls (30 s at most) until cond holds for the events file's text.
func awaitEvents(t *testing.T, out, what string, cond func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for b, _ := os.ReadFile(out); !cond(string(b)); b, _ = os.ReadFile(out) {
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// awaitWaiters polls (30 s at most) until pool db's waiter files are those of jobs.
func awaitWaiters(t *testing.T, dir string, jobs ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _ := filepath.Glob(filepath.Join(dir, "jobs", "pools", "db", "wait-*"))
		var names []string
		for _, p := range got {
			names = append(names, p[strings.LastIndexByte(p, '-')+1:])
		}
		sort.Strings(names)
		if fmt.Sprint(names) == fmt.Sprint(jobs) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool db has waiter files %q, want those of %q", got, jobs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The runs waiting for a shared pool's slots form one queue over every process: while
// a process holds pool db's only slot, a low-priority run queues in a second process
// (which looks for free slots every 5ms) and a high-priority run in a third (every
// 200ms); when the slot is freed, the high-priority run takes it first. A waiter killed
// with SIGKILL blocks no one: its file's lock died with it, and the run behind it
// removes the file.
func TestPoolQueueAcrossProcesses(t *testing.T) {
	for _, kill := range []bool{false, true} {
		t.Run(map[bool]string{false: "priority", true: "killed-waiter"}[kill], func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "events")
			holder := poolChild{mode: "backfill", size: 1, jobs: "held:1", from: "2026-11-01", to: "2026-11-01", task: "gate"}.start(t, dir, out)
			var low, high *exec.Cmd
			defer func() {
				for _, c := range []*exec.Cmd{holder, low, high} {
					if c != nil && c.ProcessState == nil {
						c.Process.Kill()
						c.Wait()
					}
				}
			}()
			awaitEvents(t, out, "the holder's run", func(s string) bool { return strings.Contains(s, "start held") })
			startHigh := func() {
				high = poolChild{mode: "backfill", size: 1, jobs: "high:1:10", from: "2026-11-03", to: "2026-11-03", task: "go",
					poll: 200 * time.Millisecond}.start(t, dir, out)
			}
			startLow := func() {
				low = poolChild{mode: "backfill", size: 1, jobs: "low:1:1", from: "2026-11-02", to: "2026-11-02", task: "go",
					poll: 5 * time.Millisecond}.start(t, dir, out)
			}
			if kill {
				startHigh()
				awaitWaiters(t, dir, "high")
				if err := note(out, fmt.Sprintf("killing %d", high.Process.Pid)); err != nil {
					t.Fatal(err)
				}
				high.Process.Kill() // SIGKILL: its waiter file stays, unlocked
				high.Wait()
				// The dead waiter ranks before low: low, looking, removes its file.
				startLow()
				awaitWaiters(t, dir, "low")
			} else {
				startLow()
				awaitWaiters(t, dir, "low")
				startHigh()
				awaitWaiters(t, dir, "high", "low")
			}
			if err := os.WriteFile(out+".release", nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if kill {
				waitChildren(t, holder, low)
			} else {
				waitChildren(t, holder, low, high)
			}
			evs := readPoolEvents(t, out)
			var order []string
			for _, e := range evs {
				if e.kind == "start" {
					order = append(order, e.job)
				}
			}
			want := []string{"held", "high", "low"}
			if kill {
				want = []string{"held", "low"}
			}
			eqStrings(t, "runs in the order they took the slot", order, want)
			if peak, _ := peakSlots(t, evs, false); peak > 1 {
				t.Errorf("pool db (1 slot) had %d in use at once: %v", peak, evs)
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "jobs", "pools", "db", "wait-*")); len(left) != 0 {
				t.Errorf("waiter files left behind: %q", left)
			}
		})
	}
}
