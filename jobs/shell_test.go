package jobs

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procGone reports whether pid has exited (a zombie counts as gone).
func procGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// A stuck shell task is killed at its timeout — the shell and the sleep it started (the
// whole process group) — and the run ends failed with the timeout named.
func TestTimeoutKillsStuckShell(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "sleep.pid")
	d := Def{Name: "stuck", Schedule: "@daily", Timeout: 300 * time.Millisecond, Retries: -1,
		Task: TaskSpec{Kind: "shell", Command: "sleep 60 & echo $! > " + pidFile + "; wait"}}
	s := mustNew(t, mustCompile(t, []Def{d}, NewKinds()), filepath.Join(dir, "jobs"), time.Now)
	defer s.Close()
	rec, err := s.RunNow(context.Background(), "stuck", "2026-11-24")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != StateFailed || rec.Attempt != 1 || !strings.Contains(rec.Error, "timed out after 300ms") {
		t.Fatalf("record: %+v", rec)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(10 * time.Second)
	for !procGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("sleep (pid %d) still alive after the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The shell kind passes the logical date in the environment and in {{ds}} macros,
// reports rows through TAGPIPE_ROWS_FILE, and keeps each attempt's output in a log file.
func TestShellEnvRowsAndLog(t *testing.T) {
	dir := t.TempDir()
	d := Def{Name: "echo", Schedule: "0 2 * * *", Timezone: "Asia/Shanghai", Retries: -1,
		Task: TaskSpec{Kind: "shell", Command: `echo "ds={{ds}} env=$TAGPIPE_DS nodash=$TAGPIPE_DS_NODASH attempt=$TAGPIPE_ATTEMPT x=$X"; echo 42 > "$TAGPIPE_ROWS_FILE"`,
			Env: map[string]string{"X": "y"}}}
	s := mustNew(t, mustCompile(t, []Def{d}, NewKinds()), dir, time.Now)
	defer s.Close()
	rec, err := s.RunNow(context.Background(), "echo", "2026-11-24")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != StateSuccess || rec.Rows != 42 {
		t.Fatalf("record: %+v", rec)
	}
	if want := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC); !rec.Logical.Equal(want) {
		t.Errorf("logical %v, want 02:00 Shanghai = %v", rec.Logical, want)
	}
	out, err := os.ReadFile(s.LogPath("echo", rec.Logical, 1))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "ds=2026-11-24 env=2026-11-24 nodash=20261124 attempt=1 x=y" {
		t.Errorf("output %q", got)
	}
	// A failing command names its exit status.
	d2 := Def{Name: "bad", Schedule: "@daily", Retries: -1, Task: TaskSpec{Kind: "shell", Command: "exit 3"}}
	s2 := mustNew(t, mustCompile(t, []Def{d2}, NewKinds()), filepath.Join(dir, "2"), time.Now)
	defer s2.Close()
	rec, _ = s2.RunNow(context.Background(), "bad", "2026-11-24")
	if rec.State != StateFailed || rec.Error != "command exited with status 3" {
		t.Errorf("failing command: %+v", rec)
	}
}
