package warehouse

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// TestHelperProcess is not a test: the kill -9 and two-process tests re-exec the
// test binary into it. WAREHOUSE_CHILD says what to do, WAREHOUSE_ROOT where.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("WAREHOUSE_CHILD")
	if mode == "" {
		t.Skip("helper process for other tests")
	}
	root := os.Getenv("WAREHOUSE_ROOT")
	w, err := Open(root, DefaultOptions())
	if err != nil {
		panic(err)
	}
	tb, err := w.Table("ods_events")
	if err != nil {
		panic(err)
	}
	ready := func() {
		os.Stdout.WriteString("READY\n")
		select {} // wait for SIGKILL
	}
	if mode == "append-loop" { // a second writer process, racing the parent
		os.Stdout.WriteString("READY\n")
		for i := range 20 {
			rec := events(50, 2, 100000+i*50)
			tx, err := tb.Begin(context.Background())
			if err != nil {
				panic(err)
			}
			if err := tx.Write(rec); err != nil {
				panic(err)
			}
			if _, err := tx.Commit(context.Background(), CommitOptions{ExpectedParent: Parent(tx.Base().ID), Properties: map[string]string{"writer": "child"}}); err != nil {
				panic(err)
			}
			rec.Release()
		}
		os.Exit(0)
	}
	tx, err := tb.Begin(context.Background())
	if err != nil {
		panic(err)
	}
	rec := events(5000, 3, 777)
	if err := tx.Write(rec); err != nil {
		panic(err)
	}
	switch mode {
	case "hold-lock":
		ready()
	case "after-write": // files durable as temp files, no commit yet
		if err := tx.Flush(); err != nil {
			panic(err)
		}
		ready()
	case "before-manifest": // files at their pending names, manifest not yet linked
		testHookBeforeManifest = ready
		_, err := tx.Commit(context.Background(), CommitOptions{})
		panic(err)
	case "after-manifest": // committed, files not yet at their final names
		testHookAfterManifest = ready
		_, err := tx.Commit(context.Background(), CommitOptions{})
		panic(err)
	}
	panic("unknown mode " + mode)
}

// startChild runs TestHelperProcess in mode and returns once it printed READY.
func startChild(t *testing.T, root, mode string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "WAREHOUSE_CHILD="+mode, "WAREHOUSE_ROOT="+root)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) != "READY" {
			t.Fatalf("child %s said %q", mode, s)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("child %s never got ready", mode)
	}
	return cmd
}

func kill9(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// listFiles lists every regular file below dir (relative, slash separated).
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func dataFiles(t *testing.T, dir string) []string {
	var out []string
	for _, f := range listFiles(t, dir) {
		if !strings.HasPrefix(f, metaDir+"/") {
			out = append(out, f)
		}
	}
	return out
}

// Acceptance: a writer killed (kill -9) between writing files and committing
// leaves the table exactly at the previous snapshot, and its debris is cleaned on
// the next Open.
func TestKill9BetweenWriteAndCommit(t *testing.T) {
	for _, mode := range []string{"after-write", "before-manifest"} {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			w := openTest(t, root)
			tb := createEvents(t, w, "ods_events")
			rec := events(1200, 3, 0)
			defer rec.Release()
			prev := appendRec(t, tb, rec, CommitOptions{Properties: map[string]string{"batch": "7"}})
			prevRows := rowsOf(t, prev)
			prevFiles := dataFiles(t, tb.Dir())

			child := startChild(t, root, mode)
			debris := dataFiles(t, tb.Dir())
			if len(debris) <= len(prevFiles) {
				t.Fatalf("child wrote nothing on disk: %v", debris)
			}
			kill9(t, child)
			// Directory globs (*.parquet, no hidden names) see nothing of it either.
			if got := globbable(t, tb.Dir()); !slices.Equal(got, prevFiles) {
				t.Fatalf("globs see %v, want %v", got, prevFiles)
			}

			// Before any cleanup, readers already see exactly the previous snapshot.
			cur, err := tb.Current()
			if err != nil {
				t.Fatal(err)
			}
			if cur.ID != prev.ID || cur.Properties["batch"] != "7" || !slices.Equal(rowsOf(t, cur), prevRows) {
				t.Fatalf("after kill: snapshot %d, want %d", cur.ID, prev.ID)
			}
			// The next Open removes the dead writer's files, and only those.
			w2 := openTest(t, root)
			if got := dataFiles(t, tb.Dir()); !slices.Equal(got, prevFiles) {
				t.Fatalf("after recovery files\n%v\nwant\n%v", got, prevFiles)
			}
			tb2, _ := w2.Table("ods_events")
			cur2, _ := tb2.Current()
			if cur2.ID != prev.ID || !slices.Equal(rowsOf(t, cur2), prevRows) {
				t.Fatalf("after recovery: snapshot %d", cur2.ID)
			}
			// And the table takes new commits.
			more := events(10, 1, 5)
			defer more.Release()
			if s := appendRec(t, tb2, more, CommitOptions{}); s.ID != prev.ID+1 || s.Rows() != 1210 {
				t.Fatalf("next commit: %d rows %d", s.ID, s.Rows())
			}
		})
	}
}

// One writer per table, across processes: a second process waits for the lock and
// gives up with ErrLocked; the lock dies with its holder.
func TestWriterLockAcrossProcesses(t *testing.T) {
	root := t.TempDir()
	o := DefaultOptions()
	o.LockTimeout = 200 * time.Millisecond
	w, err := Open(root, o)
	if err != nil {
		t.Fatal(err)
	}
	tb := createEvents(t, w, "ods_events")
	child := startChild(t, root, "hold-lock")
	if _, err := tb.Begin(context.Background()); !errors.Is(err, ErrLocked) {
		t.Fatalf("Begin while another process writes: %v", err)
	}
	// Open skips cleanup of a table being written (the child's temp files survive).
	if _, err := Open(root, o); err != nil {
		t.Fatal(err)
	}
	kill9(t, child)
	tx, err := tb.Begin(context.Background())
	if err != nil {
		t.Fatalf("lock not released by the dead process: %v", err)
	}
	tx.Abort()
}

// Two transactions in one process exclude each other too, and a commit that lost a
// race (ExpectedParent) fails clearly and changes nothing.
func TestLockAndExpectedParent(t *testing.T) {
	ctx := context.Background()
	o := DefaultOptions()
	o.LockTimeout = 50 * time.Millisecond
	w, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	tb := createEvents(t, w, "ods_events")
	tx1, err := tb.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Begin(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Begin: %v", err)
	}
	o2 := o
	o2.LockTimeout = -1
	w2, err := Open(w.Root(), o2)
	if err != nil {
		t.Fatal(err)
	}
	t2, _ := w2.Table("ods_events")
	if _, err := t2.Begin(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("Begin with LockTimeout -1: %v", err)
	}
	tx1.Abort()
	tx1.Abort() // twice is fine

	rec := events(10, 1, 0)
	defer rec.Release()
	s2 := appendRec(t, tb, rec, CommitOptions{ExpectedParent: Parent(1)})
	tx, _ := tb.Begin(ctx)
	if err := tx.Write(rec); err != nil {
		t.Fatal(err)
	}
	_, err = tx.Commit(ctx, CommitOptions{ExpectedParent: Parent(1)})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "expected parent 1") {
		t.Fatalf("stale parent: %v", err)
	}
	if _, err := tx.Commit(ctx, CommitOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after failed commit: %v", err)
	}
	cur, _ := tb.Current()
	if cur.ID != s2.ID || len(dataFiles(t, tb.Dir())) != len(cur.Files) {
		t.Fatalf("failed commit left traces: snapshot %d, files %v", cur.ID, dataFiles(t, tb.Dir()))
	}
}

// Acceptance: readers running during commits never see a partial set. Every
// commit adds 3 files (one per day) of 300 rows; a reader loop checks that each
// snapshot it pins has a multiple of 300 rows, that all of them are readable, and
// that the row count never goes down. Readers open the warehouse on their own,
// like other processes would.
func TestReadersNeverSeePartialCommit(t *testing.T) {
	w := openTest(t, t.TempDir())
	tb := createEvents(t, w, "ods_events")
	const commits = 15
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	errs := make(chan error, 4)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				// A second handle from its own Open: like another process.
				w2, err := Open(w.Root(), Options{ReadOnly: true})
				if err != nil {
					errs <- err
					return
				}
				t2, err := w2.Table("ods_events")
				if err != nil {
					errs <- err
					return
				}
				s, err := t2.Current()
				if err != nil {
					errs <- err
					return
				}
				var n int64
				if err := s.Scan(context.Background(), func(_ DataFile, rec arrow.RecordBatch) error { n += rec.NumRows(); return nil }); err != nil {
					errs <- err
					return
				}
				if n != s.Rows() || n%300 != 0 || n < last {
					errs <- errors.New("reader saw a partial snapshot")
					return
				}
				last = n
				reads.Add(1)
			}
		}()
	}
	for i := range commits {
		rec := events(300, 3, i*300)
		tx, err := tb.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		if _, err := tx.Commit(context.Background(), CommitOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Let the readers observe the final state at least a few times.
	deadline := time.After(30 * time.Second)
	for start := reads.Load(); reads.Load() < start+4; {
		select {
		case err := <-errs:
			t.Fatal(err)
		case <-deadline:
			t.Fatal("readers made no progress")
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	cur, _ := tb.Current()
	if cur.Rows() != 300*commits {
		t.Fatalf("final rows %d", cur.Rows())
	}
}

// CURRENT is only a hint: stale, garbage or missing, readers still find the latest
// manifest.
func TestCurrentHintIsOnlyAHint(t *testing.T) {
	w := openTest(t, t.TempDir())
	tb := createEvents(t, w, "ods_events")
	rec := events(10, 1, 0)
	defer rec.Release()
	for range 3 {
		appendRec(t, tb, rec, CommitOptions{})
	}
	hint := filepath.Join(tb.Dir(), "_tagpipe", "CURRENT")
	if b, _ := os.ReadFile(hint); string(b) != "4\n" {
		t.Fatalf("CURRENT = %q", b)
	}
	for _, content := range []string{"2\n", "garbage", "99\n", ""} {
		if content == "" {
			os.Remove(hint)
		} else if err := os.WriteFile(hint, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := tb.Current()
		if err != nil || s.ID != 4 {
			t.Fatalf("hint %q: snapshot %v, %v", content, s, err)
		}
	}
	// A commit on a stale hint still knows its parent.
	if s := appendRec(t, tb, rec, CommitOptions{ExpectedParent: Parent(4)}); s.ID != 5 {
		t.Fatalf("commit after stale hint: %d", s.ID)
	}
}

// Two processes appending to one table at once: the lock serializes them, every
// commit lands exactly once, and the snapshot chain has no gaps.
func TestTwoProcessesAppend(t *testing.T) {
	root := t.TempDir()
	w := openTest(t, root)
	tb := createEvents(t, w, "ods_events")
	child := startChild(t, root, "append-loop")
	for i := range 20 {
		rec := events(50, 2, i*50)
		appendRec(t, tb, rec, CommitOptions{Properties: map[string]string{"writer": "parent"}})
		rec.Release()
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("child writer: %v", err)
	}
	hist, err := tb.History()
	if err != nil {
		t.Fatal(err)
	}
	writers := map[string]int{}
	for i, s := range hist {
		if s.ID != int64(i+1) || s.ParentID != int64(i) {
			t.Fatalf("snapshot chain broken at %d: id %d parent %d", i, s.ID, s.ParentID)
		}
		writers[s.Properties["writer"]]++
	}
	cur := hist[len(hist)-1]
	if len(hist) != 41 || writers["parent"] != 20 || writers["child"] != 20 || cur.Rows() != 2000 || len(rowsOf(t, cur)) != 2000 {
		t.Fatalf("snapshots %d, by writer %v, rows %d", len(hist), writers, cur.Rows())
	}
}

// A busy table's handle keeps a bounded number of parsed manifests.
func TestSnapshotCacheBounded(t *testing.T) {
	w := openTest(t, t.TempDir())
	tb := createEvents(t, w, "ods_events")
	rec := events(1, 1, 0)
	defer rec.Release()
	for range snapshotCacheSize + 10 {
		appendRec(t, tb, rec, CommitOptions{})
	}
	if _, err := tb.History(); err != nil {
		t.Fatal(err)
	}
	tb.mu.Lock()
	n := len(tb.cache)
	tb.mu.Unlock()
	if n > snapshotCacheSize {
		t.Fatalf("cache holds %d snapshots", n)
	}
	if s, err := tb.Snapshot(1); err != nil || s.ID != 1 {
		t.Fatalf("evicted snapshot not re-read: %v", err)
	}
}

// globbable lists the data files a *.parquet glob sees.
func globbable(t *testing.T, dir string) []string {
	var out []string
	for _, f := range dataFiles(t, dir) {
		if strings.HasSuffix(f, ".parquet") && !strings.Contains("/"+f, "/.") {
			out = append(out, f)
		}
	}
	return out
}

// A writer killed right after its commit point: the snapshot is committed and
// fully readable at once; the next Open gives its files their final names.
func TestKill9AfterCommitPoint(t *testing.T) {
	root := t.TempDir()
	w := openTest(t, root)
	tb := createEvents(t, w, "ods_events")
	rec := events(1200, 3, 0)
	defer rec.Release()
	prev := appendRec(t, tb, rec, CommitOptions{})
	prevRows := len(rowsOf(t, prev))

	kill9(t, startChild(t, root, "after-manifest"))
	cur, err := tb.Current()
	if err != nil || cur.ID != prev.ID+1 || cur.Rows() != int64(prevRows+5000) {
		t.Fatalf("after kill: %v, %v", cur, err)
	}
	if n := len(rowsOf(t, cur)); n != prevRows+5000 {
		t.Fatalf("committed snapshot reads %d rows", n)
	}
	openTest(t, root)
	want := []string{}
	for _, f := range cur.Files {
		want = append(want, f.Path)
	}
	if got := globbable(t, tb.Dir()); !slices.Equal(got, want) {
		t.Fatalf("after recovery globs see\n%v\nwant\n%v", got, want)
	}
	for _, f := range dataFiles(t, tb.Dir()) {
		if strings.HasSuffix(f, ".tmp") {
			t.Fatalf("left %s", f)
		}
	}
}

// A commit whose manifest was linked but whose directory fsync failed is not a commit:
// the manifest is taken back before the commit deletes its new files, so the table's
// current snapshot never names files that are gone, and the next commit goes through.
func TestCommitDirSyncFailureTakesManifestBack(t *testing.T) {
	ctx := context.Background()
	w := openTest(t, t.TempDir())
	tb := createEvents(t, w, "ods_events")
	rec := events(10, 1, 0)
	defer rec.Release()
	s1 := appendRec(t, tb, rec, CommitOptions{})
	orig := syncDir
	syncDir = func(dir string) error {
		if dir == tb.snapDir() {
			return errors.New("input/output error")
		}
		return orig(dir)
	}
	t.Cleanup(func() { syncDir = orig })
	tx, err := tb.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Write(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx, CommitOptions{}); err == nil {
		t.Fatal("a commit whose manifest could not be made durable succeeded")
	}
	tx.Abort()
	syncDir = orig
	// Another process opening the table sees the snapshot before, whole.
	w2 := openTest(t, w.Root())
	t2, err := w2.Table("ods_events")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := t2.Current()
	if err != nil {
		t.Fatal(err)
	}
	if cur.ID != s1.ID {
		t.Fatalf("current snapshot %d after the failed commit, want %d", cur.ID, s1.ID)
	}
	for _, p := range cur.AbsPaths() {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("snapshot %d names a missing file: %v", cur.ID, err)
		}
	}
	if s := appendRec(t, tb, rec, CommitOptions{ExpectedParent: Parent(s1.ID)}); s.ID != s1.ID+1 {
		t.Fatalf("next commit: snapshot %d, want %d", s.ID, s1.ID+1)
	}
}

// Creating a table syncs the parent of every directory it makes (the table's, its
// _tagpipe and snapshots directories): the manifest's directory fsync covers only
// snapshots/, so a power cut could otherwise take the new table away, and with it the
// commits acknowledged on it since.
func TestCreateTableSyncsNewDirectories(t *testing.T) {
	w := openTest(t, t.TempDir())
	var mu sync.Mutex
	var synced []string
	orig := syncDir
	syncDir = func(dir string) error {
		mu.Lock()
		synced = append(synced, dir)
		mu.Unlock()
		return orig(dir)
	}
	t.Cleanup(func() { syncDir = orig })
	tb := createEvents(t, w, "ods_events")
	meta := filepath.Join(tb.Dir(), "_tagpipe")
	for _, d := range []string{filepath.Dir(tb.Dir()), tb.Dir(), meta, filepath.Join(meta, "snapshots")} {
		if !slices.Contains(synced, d) {
			t.Errorf("%q not synced when the table was created (synced %q)", d, synced)
		}
	}
}

// TestOpenReadOnlyCreatesNothing: a reader opening a warehouse that does not exist yet
// sees no tables and leaves no directory behind; a writer creates it.
func TestOpenReadOnlyCreatesNothing(t *testing.T) {
	root := filepath.Join(t.TempDir(), "warehouse")
	w, err := Open(root, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if names, err := w.TableNames(); err != nil || len(names) != 0 {
		t.Fatalf("tables of a missing warehouse: %v, %v", names, err)
	}
	if _, err := w.Table("ods_events"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("table of a missing warehouse: %v", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read-only Open created %s: %v", root, err)
	}
	if _, err := Open(root, Options{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("writable Open did not create %s: %v", root, err)
	}
}
