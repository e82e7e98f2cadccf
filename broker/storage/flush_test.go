package storage

import (
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// countSyncs counts segment fsyncs (not those of directories) for the rest of the test.
func countSyncs(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	orig := syncFile
	syncFile = func(f *os.File) error {
		if st, err := f.Stat(); err != nil || !st.IsDir() {
			n.Add(1)
		}
		return orig(f)
	}
	t.Cleanup(func() { syncFile = orig })
	return &n
}

func TestFlushAlwaysSyncsBeforeAppendReturns(t *testing.T) {
	n := countSyncs(t)
	o := testOptions(nil)
	o.Flush = FlushPolicy{Mode: "always"}
	l := mustOpen(t, t.TempDir(), o)
	for i := range 5 {
		mustAppend(t, l, buildBatch(plain(1, 10, 1)))
		if got := n.Load(); got != int64(i+1) {
			t.Fatalf("after append %d: %d fsyncs", i+1, got)
		}
	}
}

func TestFlushOSLeavesItToThePageCache(t *testing.T) {
	n := countSyncs(t)
	l := mustOpen(t, t.TempDir(), testOptions(nil))
	for range 5 {
		mustAppend(t, l, buildBatch(plain(1, 10, 1)))
	}
	if n.Load() != 0 {
		t.Fatalf("flush os: %d fsyncs on append", n.Load())
	}
	if err := l.Flush(); err != nil || n.Load() != 1 {
		t.Fatalf("explicit Flush: %v, %d fsyncs", err, n.Load())
	}
	l.Flush() // nothing new: no fsync
	if n.Load() != 1 {
		t.Fatalf("Flush with nothing dirty synced again")
	}
}

func TestFlushInterval(t *testing.T) {
	n := countSyncs(t)
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		o := testOptions(nil)
		o.Flush = FlushPolicy{Mode: "interval", Interval: time.Second}
		l, err := OpenLog(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, l, buildBatch(plain(1, 10, 1)))
		synctest.Wait()
		if n.Load() != 0 {
			t.Fatal("synced before the interval")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n.Load() != 1 {
			t.Fatalf("after one interval: %d fsyncs", n.Load())
		}
		time.Sleep(5 * time.Second) // nothing appended: no more fsyncs
		synctest.Wait()
		if n.Load() != 1 {
			t.Fatalf("idle intervals synced: %d", n.Load())
		}
		// Changing the policy stops the flusher; Close stops it too (the bubble checks
		// that no goroutine is left behind).
		o.Flush = FlushPolicy{Mode: "interval", Interval: 10 * time.Second}
		l.SetOptions(o)
		mustAppend(t, l, buildBatch(plain(1, 10, 1)))
		time.Sleep(9 * time.Second)
		synctest.Wait()
		if n.Load() != 1 {
			t.Fatalf("new interval not in force: %d", n.Load())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n.Load() != 2 {
			t.Fatalf("after the new interval: %d", n.Load())
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l.Close()
	})
}

func TestUnknownFlushModeRefused(t *testing.T) {
	o := testOptions(nil)
	o.Flush.Mode = "1s"
	if _, err := OpenLog(t.TempDir(), o); err == nil {
		t.Fatal("flush mode 1s accepted")
	}
}

// A new partition's log syncs its directory (the first segment's name) and the parent
// (the partition directory's name) before it takes appends: with flush: always an
// acknowledged record must survive a power cut, and the segment's own fsync does not
// make its name durable.
func TestNewLogSyncsItsDirectories(t *testing.T) {
	var dirs []string
	orig := syncFile
	syncFile = func(f *os.File) error {
		if st, err := f.Stat(); err == nil && st.IsDir() {
			dirs = append(dirs, filepath.Clean(f.Name()))
		}
		return orig(f)
	}
	t.Cleanup(func() { syncFile = orig })
	parent := t.TempDir()
	dir := filepath.Join(parent, "events-0")
	o := testOptions(nil)
	o.Flush = FlushPolicy{Mode: "always"}
	l := mustOpen(t, dir, o)
	if !slices.Contains(dirs, dir) || !slices.Contains(dirs, parent) {
		t.Fatalf("directories synced when the log was created: %q, want %q and %q", dirs, dir, parent)
	}
	// Reopened, it creates nothing: no directory fsync.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	dirs = nil
	mustOpen(t, dir, o)
	if slices.Contains(dirs, parent) {
		t.Fatalf("reopening an existing log synced its parent: %q", dirs)
	}
}
