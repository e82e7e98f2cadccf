//go:build e2e

package e2e

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStopSignalDuringStart: a tagpipe started in the background by a script (sh's `&`:
// SIGINT ignored from the start, as POSIX shells without job control do) and sent SIGINT
// while it is still starting stops its start and exits 0, where the signal used to be lost
// and the server came up anyway.
//
// sql serve: a --view over a named pipe holds the start-up in DuckDB's open of the pipe
// until the test writes to it, after the SIGINT, so the signal lands during the start.
// up: SIGINT as soon as the process catches it (somewhere in its start-up).
func TestStopSignalDuringStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		args func(root string) []string
		// unblock, when set, lets the held start-up go on after the signal.
		unblock func(t *testing.T, root string, exited func() bool)
	}{
		{"sql serve", func(root string) []string {
			return []string{"sql", "serve", "--view", "v=" + filepath.Join(root, "hold.csv")}
		}, writeFIFO},
		{"up", func(string) []string { return []string{"up"} }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			if tc.unblock != nil {
				if err := syscall.Mkfifo(filepath.Join(root, "hold.csv"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			logPath := filepath.Join(root, "tagpipe.log")
			args := append([]string{"--data-dir", filepath.Join(root, "data")}, tc.args(root)...)
			for i, a := range args {
				args[i] = "'" + a + "'"
			}
			// The script starts tagpipe in the background, prints its pid and waits for it:
			// sh's exit status is tagpipe's.
			script := "'" + binary + "' " + strings.Join(args, " ") + " >'" + logPath + "' 2>&1 &\necho $!\nwait $!\n"
			sh := exec.Command("/bin/sh", "-c", script)
			sh.Dir = root
			sh.Env = append(baseEnv(), "TAGPIPE_BROKER_LISTEN="+freeAddr(t), "TAGPIPE_ADMIN_LISTEN="+freeAddr(t),
				"TAGPIPE_SQL_PG_LISTEN="+freeAddr(t), "TAGPIPE_LOG_LEVEL=info")
			stdout, err := sh.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := sh.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			pid, perr := strconv.Atoi(strings.TrimSpace(line))
			if err != nil || perr != nil {
				_ = sh.Process.Kill()
				_ = sh.Wait()
				t.Fatalf("no pid from the script: %q %v %v", line, err, perr)
			}
			done := make(chan error, 1)
			go func() { done <- sh.Wait() }()
			exited := func() bool {
				select {
				case err := <-done:
					done <- err
					return true
				default:
					return false
				}
			}
			t.Cleanup(func() {
				if !exited() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				<-done
				if t.Failed() {
					t.Log(tail(logPath, 30))
				}
			})

			// The handler is there once /proc shows SIGINT caught (it starts ignored).
			deadline := time.Now().Add(60 * time.Second)
			for !catches(t, pid, syscall.SIGINT) {
				if exited() || time.Now().After(deadline) {
					t.Fatalf("tagpipe never caught SIGINT during its start (exited: %v)", exited())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if tc.unblock != nil {
				tc.unblock(t, root, exited)
			}
			select {
			case err := <-done:
				done <- err
				if err != nil {
					t.Fatalf("exit after SIGINT during start: %v, want status 0", err)
				}
			case <-time.After(90 * time.Second):
				t.Fatal("still running 90s after SIGINT during start")
			}
			log, _ := os.ReadFile(logPath)
			if !strings.Contains(string(log), "reason=\"interrupt signal received\"") {
				t.Errorf("no stop by the signal in the log")
			}
			if tc.unblock != nil && (strings.Contains(string(log), "msg=started") || !strings.Contains(string(log), "stopped during start-up")) {
				t.Errorf("the start went on after SIGINT, or was not said to have stopped")
			}
		})
	}
}

// catches reports whether process pid runs tagpipe (the shell's fork has exec'd it) and
// has a handler for sig (its SigCgt mask in /proc).
func catches(t *testing.T, pid int, sig syscall.Signal) bool {
	proc := "/proc/" + strconv.Itoa(pid)
	if exe, err := os.Readlink(proc + "/exe"); err != nil || exe != binary {
		return false
	}
	b, err := os.ReadFile(proc + "/status")
	if err != nil {
		return false
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigCgt:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("SigCgt %q: %v", v, err)
			}
			return mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}

// writeFIFO writes a small CSV into root/hold.csv once tagpipe has it open for reading,
// so that its held view registration goes on; it gives up when tagpipe has exited.
func writeFIFO(t *testing.T, root string, exited func() bool) {
	path := filepath.Join(root, "hold.csv")
	deadline := time.Now().Add(60 * time.Second)
	for {
		f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			_, err = f.WriteString("a\n1\n")
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		if !errors.Is(err, syscall.ENXIO) {
			t.Fatal(err)
		}
		if exited() || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
