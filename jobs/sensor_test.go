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

// sensor_mode reschedule: a run whose conditions do not hold gives its slot back
// (up_for_reschedule) and is poked again after poke_interval, so with parallelism 1
// another due job runs while it waits; it succeeds once its file appears. A second such
// run times out wait_timeout after its first poke, across a scheduler restart, failing
// without retries as in poke mode.
func TestSensorReschedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir, drop := t.TempDir(), t.TempDir()
		now := shiftedNow(nov20)
		r := &recorder{now: now}
		wait, late := daily("a_wait"), daily("c_late")
		wait.WaitFor = []SensorSpec{{Kind: "file", Path: filepath.Join(drop, "{{ds}}.done")}}
		late.WaitFor = []SensorSpec{{Kind: "file", Path: filepath.Join(drop, "never")}}
		late.WaitTimeout = 10 * time.Minute
		for _, d := range []*Def{&wait, &late} {
			d.SensorMode, d.PokeInterval = SensorModeReschedule, time.Minute
		}
		dag := mustCompile(t, []Def{wait, daily("b_other"), late}, r.kinds("a_wait", "b_other", "c_late"))
		open := func() *Scheduler {
			s, err := New(dag, Options{Dir: dir, Now: now, Owner: "test", Parallelism: 1})
			if err != nil {
				t.Fatal(err)
			}
			mustStart(t, s)
			return s
		}
		s := open()
		end := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC) // ds 2026-11-20 is due
		l := end.AddDate(0, 0, -1)
		time.Sleep(end.Add(2*time.Minute + 30*time.Second).Sub(now()))
		synctest.Wait()
		eqStrings(t, "runs while a_wait waits", r.seq(), []string{"b_other 2026-11-20"})
		if c := r.snapshot()[0]; !c.at.Equal(end) {
			t.Errorf("b_other ran at %v, want at once (%v): a_wait held the only slot", c.at, end)
		}
		w, _ := s.Store().Latest("a_wait", l)
		if w.State != StateUpForReschedule || !w.Start.Equal(end) || w.Error != "waiting for file "+filepath.Join(drop, "2026-11-20.done") {
			t.Errorf("a_wait while waiting: %+v", w)
		}
		st, err := s.Status()
		if err != nil || st[0].Name != "a_wait" || st[0].Last == nil || st[0].Last.State != StateUpForReschedule {
			t.Errorf("status while waiting: %+v %v", st, err)
		}

		os.WriteFile(filepath.Join(drop, "2026-11-20.done"), nil, 0o644)
		time.Sleep(3 * time.Minute) // to 00:05:30: a_wait's next poke (00:03) holds
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		calls := r.snapshot()
		if len(calls) != 2 || calls[1].job != "a_wait" || !calls[1].at.Equal(end.Add(3*time.Minute)) {
			t.Fatalf("calls %+v, want a_wait at its poke at 00:03", calls)
		}
		if w, _ := s.Store().Latest("a_wait", l); w.State != StateSuccess || w.Attempt != 1 {
			t.Errorf("a_wait: %+v", w)
		}

		time.Sleep(2 * time.Minute) // down until 00:07:30
		s = open()
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		c, _ := s.Store().Latest("c_late", l)
		if c.State != StateFailed || c.Attempt != 0 || !c.Start.Equal(end) || !c.End.Equal(end.Add(10*time.Minute)) ||
			c.Error != "wait_for timed out after 10m0s: still waiting for file "+filepath.Join(drop, "never") {
			t.Errorf("c_late: %+v, want failed at 00:10, 10m after its first poke", c)
		}
		if n := len(r.snapshot()); n != 2 {
			t.Errorf("%d task calls, want 2 (c_late never ran, nor retried)", n)
		}
	})
}

func TestSensorModeChecked(t *testing.T) {
	def := daily("load")
	def.SensorMode = "smart"
	_, err := Compile([]Def{def}, (&recorder{}).kinds("load"), DefaultDefaults())
	if err == nil || !strings.Contains(err.Error(), `job "load": sensor_mode: unknown mode "smart" (want poke or reschedule)`) {
		t.Errorf("%v", err)
	}
}
