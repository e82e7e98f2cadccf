package jobs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// on_retry runs after each failed attempt that will be retried, on_failure once the run
// has failed for good, on_success after a success; they see the state and the error, and
// a failing callback changes nothing.
func TestCallbacks(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "callbacks.txt")
	cb := func() *TaskSpec {
		return &TaskSpec{Kind: "shell", Command: `echo "{{ds}} $TAGPIPE_STATE $TAGPIPE_ATTEMPT $TAGPIPE_ERROR" >> ` + out}
	}
	bad := Def{Name: "bad", Schedule: "@daily", Retries: 1, RetryDelay: time.Millisecond,
		Task: TaskSpec{Kind: "shell", Command: "echo boom >&2; exit 4"}, OnRetry: cb(), OnFailure: cb(), OnSuccess: cb()}
	good := Def{Name: "good", Schedule: "@daily", Task: TaskSpec{Kind: "shell", Command: "true"},
		OnSuccess: cb(), OnFailure: &TaskSpec{Kind: "shell", Command: "exit 1"}}
	broken := Def{Name: "broken", Schedule: "@daily", Task: TaskSpec{Kind: "shell", Command: "true"},
		OnSuccess: &TaskSpec{Kind: "shell", Command: "exit 7"}}
	s := mustNew(t, mustCompile(t, []Def{bad, good, broken}, NewKinds()), filepath.Join(dir, "jobs"), time.Now)
	ctx := context.Background()
	if rec, err := s.RunNow(ctx, "bad", "2026-11-24"); err != nil || rec.State != StateFailed || rec.Attempt != 2 {
		t.Fatalf("bad: %+v %v", rec, err)
	}
	if rec, err := s.RunNow(ctx, "good", "2026-11-24"); err != nil || rec.State != StateSuccess {
		t.Fatalf("good: %+v %v", rec, err)
	}
	if rec, err := s.RunNow(ctx, "broken", "2026-11-24"); err != nil || rec.State != StateSuccess {
		t.Fatalf("a failing callback changed the run: %+v %v", rec, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "2026-11-24 up_for_retry 1 command exited with status 4\n" +
		"2026-11-24 failed 2 command exited with status 4\n" +
		"2026-11-24 success 1 \n"
	if string(b) != want {
		t.Fatalf("callbacks wrote:\n%s\nwant:\n%s", b, want)
	}
}

func TestCallbackSpecsChecked(t *testing.T) {
	def := Def{Name: "j", Schedule: "@daily", Task: TaskSpec{Kind: "shell", Command: "true"}, OnFailure: &TaskSpec{Kind: "nope"}}
	if _, err := Compile([]Def{def}, NewKinds(), DefaultDefaults()); err == nil || !strings.Contains(err.Error(), "on_failure") {
		t.Fatalf("err = %v", err)
	}
}
