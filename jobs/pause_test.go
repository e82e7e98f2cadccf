package jobs

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Pausing a job at run time stops the running scheduler from starting its runs (its
// upstream goes on); unpausing catches up the missed intervals, as after downtime.
func TestPauseAtRunTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		now := shiftedNow(nov20)
		rec.now = now
		dag := mustCompile(t, []Def{daily("load"), daily("other")}, rec.kinds("load", "other"))
		dir := t.TempDir()
		s := mustNew(t, dag, dir, now)
		if err := s.SetPaused("load", true); err != nil {
			t.Fatal(err)
		}
		mustStart(t, s)
		time.Sleep(48*time.Hour + 30*time.Minute) // to 2026-11-22 01:00
		synctest.Wait()
		eqStrings(t, "runs while load is paused", rec.seq(), []string{"other 2026-11-20", "other 2026-11-21"})
		st, err := s.Status()
		if err != nil || !st[0].Paused || !st[0].NextRun.IsZero() {
			t.Fatalf("status of a paused job: %+v %v", st[0], err)
		}
		// Another process (the CLI) unpauses it: the next poll catches up.
		other := mustNew(t, dag, dir, now)
		if err := other.SetPaused("load", false); err != nil {
			t.Fatal(err)
		}
		other.Close()
		time.Sleep(time.Minute)
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		eqStrings(t, "after unpausing", rec.seq(), []string{"other 2026-11-20", "other 2026-11-21", "load 2026-11-20", "load 2026-11-21"})
	})
}

func TestPauseChecked(t *testing.T) {
	def := daily("fixed")
	def.Paused = true
	s := mustNew(t, mustCompile(t, []Def{def}, (&recorder{now: time.Now}).kinds("fixed")), t.TempDir(), time.Now)
	defer s.Close()
	if err := s.SetPaused("nope", true); err == nil || !strings.Contains(err.Error(), `unknown job "nope"`) || !strings.Contains(err.Error(), "jobs list") {
		t.Errorf("unknown job: %v", err)
	}
	if err := s.SetPaused("fixed", false); err == nil || !strings.Contains(err.Error(), "paused in its definition") {
		t.Errorf("unpausing a job paused in its definition: %v", err)
	}
}
