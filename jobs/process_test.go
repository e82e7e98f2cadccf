package jobs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

const childEnv = "TAGPIPE_JOBS_TEST_CHILD"

// childMain is one scheduler process of TestTwoProcessesNoDuplicate: it catches up a
// week of a daily job on the shared data dir and exits once every run is finished.
func childMain() int {
	switch os.Getenv("JOBS_MODE") {
	case "kill":
		return childKilled()
	case "pool":
		return childPool()
	case "wake":
		return childWake()
	}
	out := os.Getenv("JOBS_OUT")
	d := Def{Name: "nightly", Schedule: "@daily", StartDate: "2026-11-13", MaxActiveRuns: 3,
		Task: TaskSpec{Kind: "shell", Command: `echo "$TAGPIPE_DS $PPID" >> "` + out + `"; sleep 0.05`}}
	// Start together: wait for the parent's go file.
	for i := 0; i < 1000; i++ {
		if _, err := os.Stat(out + ".go"); err == nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s := childScheduler(Compile([]Def{d}, NewKinds(), DefaultDefaults()))(Options{PollInterval: 20 * time.Millisecond})
	if s == nil {
		return 2
	}
	if err := s.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer s.Close()
	return childAwait(s, []string{"nightly"}, 7, false)
}

// childScheduler opens a child process's scheduler for a compiled DAG (or prints its
// error: nil), on JOBS_DIR with the children's clock (2026-11-20 00:30 when it starts)
// and o's other options.
func childScheduler(dag *DAG, err error) func(o Options) *Scheduler {
	return func(o Options) *Scheduler {
		if err == nil {
			o.Dir, o.Now = os.Getenv("JOBS_DIR"), shiftedNow(nov20)
			var s *Scheduler
			if s, err = New(dag, o); err == nil {
				return s
			}
		}
		fmt.Fprintln(os.Stderr, err)
		return nil
	}
}

// childAwait waits (a minute at most) until want runs of jobs are finished, then says
// the child's exit code: 0, 1 if they did not finish or (needSuccess) one did not
// succeed, 2 if the history cannot be read.
func childAwait(s *Scheduler, jobs []string, want int, needSuccess bool) int {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := s.Store().Refresh(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		done := 0
		for _, n := range jobs {
			for _, r := range s.Store().Runs(n) {
				if !r.State.Terminal() {
					continue
				}
				if needSuccess && r.State != StateSuccess {
					fmt.Fprintln(os.Stderr, "child: run", r.Job, r.DS, r.State, r.Error)
					return 1
				}
				done++
			}
		}
		if done == want {
			return 0
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "child: runs did not finish")
	return 1
}

// Three scheduler processes (the test binary re-executed) on one data dir catch up the
// same 7 days at the same time: every ds runs exactly once.
func TestTwoProcessesNoDuplicate(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.txt")
	var cmds []*exec.Cmd
	for i := 0; i < 3; i++ {
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), childEnv+"=1", "JOBS_DIR="+filepath.Join(dir, "jobs"), "JOBS_OUT="+out)
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	if err := os.WriteFile(out+".go", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var ds []string
	pids := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		ds = append(ds, f[0])
		pids[f[1]] = true
	}
	sort.Strings(ds)
	eqStrings(t, "ds run", ds, []string{"2026-11-13", "2026-11-14", "2026-11-15", "2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19"})
	t.Logf("runs spread over %d processes", len(pids))
}

func slowDef(out string) Def {
	return Def{Name: "slow", Schedule: "@daily", StartDate: "2026-11-19",
		Task: TaskSpec{Kind: "shell", Command: `echo start >> "` + out + `"; sleep 1; echo end >> "` + out + `"`}}
}

// childKilled runs a scheduler until the parent kills it with SIGKILL.
func childKilled() int {
	s := childScheduler(Compile([]Def{slowDef(os.Getenv("JOBS_OUT"))}, NewKinds(), DefaultDefaults()))(Options{})
	if s == nil {
		return 2
	}
	if err := s.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	time.Sleep(time.Minute)
	return 1
}

// A scheduler killed with SIGKILL in the middle of a run: a new scheduler on the same
// dir finds the run unfinished and runs it again — but only after the orphaned task
// processes are gone (they hold the run lock), so the two never overlap.
func TestKill9MidRunRerunsWithoutOverlap(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.txt")
	c := exec.Command(os.Args[0], "-test.run=^$")
	c.Env = append(os.Environ(), childEnv+"=1", "JOBS_MODE=kill", "JOBS_DIR="+filepath.Join(dir, "jobs"), "JOBS_OUT="+out)
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, _ := os.ReadFile(out); strings.Contains(string(b), "start") {
			break
		}
		if time.Now().After(deadline) {
			c.Process.Kill()
			c.Wait()
			t.Fatal("child never started the run")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Process.Kill() // SIGKILL
	c.Wait()

	dag := mustCompile(t, []Def{slowDef(out)}, NewKinds())
	s, err := New(dag, Options{Dir: filepath.Join(dir, "jobs"), Now: shiftedNow(nov20), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
	if r, _ := s.Store().Latest("slow", l); r.State != StateRunning {
		t.Fatalf("after kill -9 the run should be left running, is %+v", r)
	}
	mustStart(t, s)
	defer s.Close()
	for {
		s.Store().Refresh()
		if r, _ := s.Store().Latest("slow", l); r.State == StateSuccess {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("run not redone after restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(out)
	eqStrings(t, "task output", strings.Fields(string(b)), []string{"start", "end", "start", "end"})
}
