package jobs

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A `jobs run` or a backfill in one process leaves its run waiting up_for_retry for an
// hour; another process clears or marks it (tagpipe jobs clear / mark). The waiting
// process notices at its next look at the history (PollInterval) instead of sleeping
// to the old retry time: a cleared run runs its next attempt at once, a marked one ends
// with the marked state.

// wakeDAG is job w (daily, retries 1, retry_delay 1h) whose task notes "attempt <n>
// <pid>" in out and fails its first attempt.
func wakeDAG(out string) (*DAG, error) {
	k := NewKinds()
	k.Register("func", BuiltinKind(map[string]TaskFunc{"w": func(ctx context.Context, rc RunContext) (int64, error) {
		if err := note(out, fmt.Sprintf("attempt %d %d", rc.Attempt, os.Getpid())); err != nil {
			return 0, err
		}
		if rc.Attempt == 1 {
			return 0, fmt.Errorf("attempt 1 fails")
		}
		return 1, nil
	}}))
	d := daily("w")
	d.Retries, d.RetryDelay = 1, time.Hour
	return Compile([]Def{d}, k, DefaultDefaults())
}

// childWake runs w for 2026-11-19 with RunNow (WAKE_RUN=run) or a backfill
// (WAKE_RUN=backfill) and notes "result <state> <trigger> <attempt>" of the run's last
// record.
func childWake() int {
	out := os.Getenv("JOBS_OUT")
	s := childScheduler(wakeDAG(out))(Options{PollInterval: 20 * time.Millisecond})
	if s == nil {
		return 2
	}
	defer s.Close()
	ctx := context.Background()
	var err error
	if os.Getenv("WAKE_RUN") == "backfill" {
		_, err = s.Backfill(ctx, BackfillOptions{Jobs: []string{"w"}, From: "2026-11-19", To: "2026-11-19"})
	} else {
		_, err = s.RunNow(ctx, "w", "2026-11-19")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	if err := s.Store().Refresh(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r, _ := s.Store().Latest("w", time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC))
	if err := note(out, fmt.Sprintf("result %s %s %d", r.State, r.Trigger, r.Attempt)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}

func TestRunAndBackfillWakeOnClearOrMark(t *testing.T) {
	l19 := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		run, change string
		want        []string // the event file's lines, pids dropped
	}{
		{"run", "clear", []string{"attempt 1", "attempt 2", "result success manual 2"}},
		{"run", "mark", []string{"attempt 1", "result success mark 1"}},
		{"backfill", "clear", []string{"attempt 1", "attempt 2", "result success backfill 2"}},
		{"backfill", "mark", []string{"attempt 1", "result success mark 1"}},
	} {
		t.Run(tc.run+"-"+tc.change, func(t *testing.T) {
			dir := t.TempDir()
			jdir, out := filepath.Join(dir, "jobs"), filepath.Join(dir, "events")
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"=1", "JOBS_MODE=wake", "JOBS_DIR="+jdir, "JOBS_OUT="+out, "WAKE_RUN="+tc.run)
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			var waitErr error
			done := false
			defer func() {
				if !done {
					cmd.Process.Kill()
					<-exited
				}
			}()

			// This process is the other one: a scheduler on the same data dir, as
			// `tagpipe jobs clear` / `jobs mark` open.
			dag, err := wakeDAG(out)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(dag, Options{Dir: jdir, Now: shiftedNow(nov20), Owner: "other"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			deadline := time.Now().Add(30 * time.Second)
			for {
				if err := s.Store().Refresh(); err != nil {
					t.Fatal(err)
				}
				if r, _ := s.Store().Latest("w", l19); r.State == StateUpForRetry {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the child's run never became up_for_retry")
				}
				time.Sleep(5 * time.Millisecond)
			}
			// The record is written before the attempt's lock is released: try again while
			// the run is still said to be running.
			for {
				var err error
				if tc.change == "clear" {
					var was []Record
					if was, err = s.Clear(ClearOptions{Job: "w", From: "2026-11-19", To: "2026-11-19"}); err == nil && len(was) != 1 {
						t.Fatalf("clear: %+v", was)
					}
				} else {
					_, err = s.Mark("w", "2026-11-19", StateSuccess)
				}
				if err == nil {
					break
				}
				if !strings.Contains(err.Error(), "its run lock is held") || time.Now().After(deadline) {
					t.Fatalf("%s: %v", tc.change, err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			// Its retry is an hour away: a child that sleeps to it is killed here.
			select {
			case waitErr = <-exited:
				done = true
				if waitErr != nil {
					t.Fatalf("child: %v", waitErr)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the child did not notice the change; it still waits for its retry")
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if strings.HasPrefix(l, "attempt ") {
					l = l[:strings.LastIndexByte(l, ' ')]
				}
				got = append(got, l)
			}
			eqStrings(t, "events", got, tc.want)
		})
	}
}
