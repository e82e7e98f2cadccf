package jobs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A run waits for its sensors (here a done-file named by the ds) before its first
// attempt, poking every poke_interval; the task runs once they hold.
func TestWaitForFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, drop := t.TempDir(), t.TempDir()
		r := &recorder{now: time.Now}
		def := daily("load")
		def.WaitFor = []SensorSpec{{Kind: "file", Path: filepath.Join(drop, "{{ds_nodash}}-*.done")}}
		def.PokeInterval = time.Minute
		s := mustNew(t, mustCompile(t, []Def{def}, r.kinds("load")), dir, time.Now)
		go func() {
			time.Sleep(3*time.Minute + time.Second)
			os.WriteFile(filepath.Join(drop, "20261124-orders.done"), nil, 0o644)
		}()
		start := time.Now()
		rec, err := s.RunNow(context.Background(), "load", "2026-11-24")
		if err != nil || rec.State != StateSuccess || rec.Attempt != 1 {
			t.Fatalf("run %+v, %v", rec, err)
		}
		if waited := time.Since(start); waited != 4*time.Minute {
			t.Fatalf("the task ran after %v, want at the fourth poke (4m)", waited)
		}
		if calls := r.snapshot(); len(calls) != 1 {
			t.Fatalf("task ran %d times", len(calls))
		}
		log, err := os.ReadFile(filepath.Join(dir, "logs", "load", tsKey(rec.Logical), "wait.log"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(log), "waiting for file "+filepath.Join(drop, "20261124-*.done")) ||
			!strings.Contains(string(log), "all 1 conditions hold") {
			t.Fatalf("wait.log:\n%s", log)
		}
	})
}

// Conditions that do not hold within wait_timeout fail the run without running the task
// and without retries (an Airflow sensor's timeout), saying what was awaited.
func TestWaitForTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{now: time.Now}
		def := daily("load")
		def.WaitFor = []SensorSpec{{Kind: "file", Path: "/nonexistent/{{ds}}.done"}}
		def.WaitTimeout = 10 * time.Minute
		s := mustNew(t, mustCompile(t, []Def{def}, r.kinds("load")), t.TempDir(), time.Now)
		rec, err := s.RunNow(context.Background(), "load", "2026-11-24")
		if err != nil || rec.State != StateFailed {
			t.Fatalf("run %+v, %v", rec, err)
		}
		if !strings.Contains(rec.Error, "wait_for timed out after 10m0s: still waiting for file /nonexistent/2026-11-24.done") {
			t.Fatalf("error %q", rec.Error)
		}
		if len(r.snapshot()) != 0 {
			t.Fatal("the task ran")
		}
	})
}

// Shutdown while waiting leaves the run queued for the next start, as during an attempt.
func TestWaitForInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{now: time.Now}
		def := daily("load")
		def.WaitFor = []SensorSpec{{Kind: "file", Path: "/nonexistent"}}
		s := mustNew(t, mustCompile(t, []Def{def}, r.kinds("load")), t.TempDir(), time.Now)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		rec, err := s.RunNow(ctx, "load", "2026-11-24")
		if !errors.Is(err, errInterrupted) || rec.State != StateQueued {
			t.Fatalf("run %+v, %v", rec, err)
		}
	})
}

func TestSensorSpecsChecked(t *testing.T) {
	r := &recorder{now: time.Now}
	for _, spec := range []SensorSpec{{Kind: "nope"}, {Kind: "file"}, {Kind: "file", Path: "[x"}} {
		def := daily("load")
		def.WaitFor = []SensorSpec{spec}
		if _, err := Compile([]Def{def}, r.kinds("load"), DefaultDefaults()); err == nil || !strings.Contains(err.Error(), "wait_for[0]") {
			t.Errorf("%+v: %v", spec, err)
		}
	}
}

func TestExpandMacros(t *testing.T) {
	loc := time.FixedZone("X", 8*3600)
	rc := RunContext{Job: "j", DS: "2026-11-24", Logical: time.Date(2026, 11, 24, 0, 0, 0, 0, loc),
		IntervalEnd: time.Date(2026, 11, 25, 0, 0, 0, 0, loc), Attempt: 2}
	got := rc.Expand("{{ds}} {{ ds_nodash }} {{ts}} {{next_ds}} {{job}} {{attempt}} {{other}}")
	if want := "2026-11-24 20261124 2026-11-24T00:00:00+08:00 2026-11-25 j 2 {{other}}"; got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}
