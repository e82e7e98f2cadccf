package storage

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelperAppender is the child process of TestKill9DuringAppend: it appends batches
// forever and prints each acknowledged (returned) base offset.
func TestHelperAppender(t *testing.T) {
	dir := os.Getenv("TAGPIPE_STORAGE_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process for TestKill9DuringAppend")
	}
	o := testOptions(nil)
	o.Flush = FlushPolicy{Mode: os.Getenv("TAGPIPE_STORAGE_CRASH_FLUSH")}
	o.SegmentBytes = 256 << 10 // rolls happen while we are killed, too
	l, err := OpenLog(dir, o)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		r, err := l.Append(buildBatch(plain(1+i%5, 200, int64(i))))
		if err != nil {
			fmt.Fprintln(w, "ERR", err)
			w.Flush()
			os.Exit(2)
		}
		fmt.Fprintln(w, r.BaseOffset, r.LastOffset)
		w.Flush()
	}
}

// TestKill9DuringAppend kills a process appending to a log (SIGKILL, so nothing is
// flushed or closed) and checks that every append it acknowledged is there after
// recovery, in order, with valid CRCs, and that the log takes appends again. With flush
// "os" the page cache survives a process kill; "always" is what survives power loss.
func TestKill9DuringAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, flush := range []string{"os", "always"} {
		t.Run(flush, func(t *testing.T) {
			dir := t.TempDir()
			for round := range 3 { // kill, recover, append more, kill again
				cmd := exec.Command(os.Args[0], "-test.run=^TestHelperAppender$", "-test.count=1")
				cmd.Env = append(os.Environ(), "TAGPIPE_STORAGE_CRASH_DIR="+dir, "TAGPIPE_STORAGE_CRASH_FLUSH="+flush)
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				sc := bufio.NewScanner(out)
				var acked int64 = -1
				lines := 0
				deadline := time.Now().Add(30 * time.Second)
				for sc.Scan() && lines < 300+round*100 && time.Now().Before(deadline) {
					f := strings.Fields(sc.Text())
					if len(f) != 2 || f[0] == "ERR" {
						t.Fatalf("helper: %s", sc.Text())
					}
					last, _ := strconv.ParseInt(f[1], 10, 64)
					acked = last
					lines++
				}
				cmd.Process.Signal(syscall.SIGKILL)
				// Acknowledgements printed after the kill decision count too.
				for sc.Scan() {
					if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] != "ERR" {
						acked, _ = strconv.ParseInt(f[1], 10, 64)
					}
				}
				cmd.Wait()
				if lines == 0 {
					t.Fatal("helper acknowledged nothing")
				}
				l, err := OpenLog(dir, testOptions(nil))
				if err != nil {
					t.Fatal(err)
				}
				if l.HighWatermark() <= acked {
					t.Fatalf("round %d: acknowledged up to offset %d, recovered high watermark %d", round, acked, l.HighWatermark())
				}
				got := readAll(t, l, 0) // checks CRCs and contiguous offsets
				if len(got) == 0 || got[len(got)-1].LastOffset()+1 != l.HighWatermark() {
					t.Fatalf("round %d: read back %d batches, hw %d", round, len(got), l.HighWatermark())
				}
				hw := l.HighWatermark()
				if r, err := l.Append(buildBatch(plain(1, 1, 1))); err != nil || r.BaseOffset != hw {
					t.Fatalf("append after recovery: %+v %v", r, err)
				}
				l.Close()
				os.Remove(dir + "/" + cleanMarkerFile) // next round starts as after a crash too
			}
		})
	}
}
