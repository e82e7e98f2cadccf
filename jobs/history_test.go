package jobs

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHistorySurvivesTornWriteAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	l1 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	l2 := l1.AddDate(0, 0, 1)
	for _, r := range []Record{
		{Job: "a", DS: "2026-11-01", Logical: l1, State: StateRunning, Attempt: 1},
		{Job: "a", DS: "2026-11-01", Logical: l1, State: StateSuccess, Attempt: 1, Rows: 5},
		{Job: "a", DS: "2026-11-02", Logical: l2, State: StateQueued, Scheduled: true},
	} {
		if err := s.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s.Close() // twice is fine
	// kill -9 in the middle of a write leaves half a line.
	f, _ := os.OpenFile(filepath.Join(dir, "history.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"job":"a","ds":"2026-11-02","logi`)
	f.Close()

	s, err = OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Latest("a", l1); r.State != StateSuccess || r.Rows != 5 {
		t.Errorf("l1 after reopen: %+v", r)
	}
	if r, _ := s.Latest("a", l2); r.State != StateQueued {
		t.Errorf("l2 after reopen: %+v", r)
	}
	// The next append starts a fresh line; the torn one is skipped, and the Scheduled
	// flag sticks through a manual run.
	if err := s.Append(Record{Job: "a", DS: "2026-11-02", Logical: l2, State: StateSuccess, Trigger: TriggerManual}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, _ = OpenStore(dir, nil)
	defer s.Close()
	r, _ := s.Latest("a", l2)
	if r.State != StateSuccess || !r.Scheduled {
		t.Errorf("l2: %+v", r)
	}
	if wm, _ := s.Watermark("a"); !wm.Equal(l2) {
		t.Errorf("watermark %v", wm)
	}
	if s.bad != 1 || len(s.Runs("")) != 2 {
		t.Errorf("bad lines %d, runs %d", s.bad, len(s.Runs("")))
	}
}

// Many superseded records get compacted to one per run; a second reader (another
// process) sees the same state after the file is replaced.
func TestHistoryCompaction(t *testing.T) {
	defer func(n int) { compactMin = n }(compactMin)
	compactMin = 300
	dir := t.TempDir()
	w, _ := OpenStore(dir, nil)
	defer w.Close()
	r2, _ := OpenStore(dir, nil)
	defer r2.Close()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < compactMin+100; i++ {
		l := base.AddDate(0, 0, i%10)
		st := StateRunning
		if i >= compactMin {
			st = StateSuccess
		}
		if err := w.Append(Record{Job: "j", DS: l.Format(time.DateOnly), Logical: l, State: st, Attempt: i}); err != nil {
			t.Fatal(err)
		}
		if i == 50 {
			r2.Refresh()
		}
	}
	if w.records > 2*10+100 {
		t.Errorf("not compacted: %d records in file", w.records)
	}
	if err := r2.Refresh(); err != nil {
		t.Fatal(err)
	}
	runs := r2.Runs("j")
	if len(runs) != 10 {
		t.Fatalf("reader sees %d runs", len(runs))
	}
	for _, r := range runs {
		if r.State != StateSuccess {
			t.Errorf("reader: %+v", r)
		}
	}
	exp, err := w.Export()
	if err != nil || len(exp) != 10 {
		t.Errorf("export: %d rows, %v", len(exp), err)
	}
}

// The on-disk line format of FORMAT.md.
func TestHistoryFormatFrozen(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenStore(dir, nil)
	l := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	s.Append(Record{Job: "tags", DS: "2026-11-24", Logical: l, State: StateSuccess, Trigger: TriggerScheduled,
		Scheduled: true, Attempt: 2, Start: l.Add(24 * time.Hour), End: l.Add(24*time.Hour + time.Minute),
		Rows: 7, Error: "", Owner: "h:1", Updated: l.Add(24*time.Hour + time.Minute)})
	s.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "history.jsonl"))
	want := `{"job":"tags","ds":"2026-11-24","logical":"2026-11-24T00:00:00Z","state":"success","trigger":"scheduled",` +
		`"scheduled":true,"attempt":2,"start":"2026-11-25T00:00:00Z","end":"2026-11-25T00:01:00Z","rows":7,` +
		`"owner":"h:1","updated":"2026-11-25T00:01:00Z"}` + "\n"
	if string(b) != want {
		t.Errorf("line:\n got  %s\n want %s", b, want)
	}
	// A clear (tagpipe jobs clear) is a record of the same shape: queued, trigger clear,
	// the scheduled flag kept; a store reads it back as a cleared run.
	s, _ = OpenStore(dir, nil)
	defer s.Close()
	s.Append(Record{Job: "tags", DS: "2026-11-24", Logical: l, State: StateQueued, Trigger: TriggerClear,
		Error: "cleared by tagpipe jobs clear (was success)", Owner: "h:2", Updated: l.Add(48 * time.Hour)})
	b, _ = os.ReadFile(filepath.Join(dir, "history.jsonl"))
	want += `{"job":"tags","ds":"2026-11-24","logical":"2026-11-24T00:00:00Z","state":"queued","trigger":"clear",` +
		`"scheduled":true,"attempt":0,"rows":0,"error":"cleared by tagpipe jobs clear (was success)","owner":"h:2",` +
		`"updated":"2026-11-26T00:00:00Z"}` + "\n"
	if string(b) != want {
		t.Errorf("lines:\n got  %s\n want %s", b, want)
	}
	if c := s.Cleared("tags"); len(c) != 1 || !c[0].Logical.Equal(l) {
		t.Errorf("cleared: %+v", c)
	}
}

// Compaction with retention drops old finished runs but keeps each job's newest
// scheduled run (catch-up resumes after it) and unfinished ones.
func TestHistoryRetention(t *testing.T) {
	defer func(n int) { compactMin = n }(compactMin)
	compactMin = 50
	s, _ := OpenStore(t.TempDir(), nil)
	defer s.Close()
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	s.SetRetention(30*24*time.Hour, func() time.Time { return now })
	old := now.AddDate(0, 0, -100)
	s.Append(Record{Job: "sched", DS: "old", Logical: old, State: StateSuccess, Scheduled: true})
	s.Append(Record{Job: "x", DS: "stuck", Logical: old, State: StateQueued})
	for i := 0; i < 5; i++ {
		l := old.AddDate(0, 0, i+1)
		s.Append(Record{Job: "x", DS: l.Format(time.DateOnly), Logical: l, State: StateSuccess})
	}
	for i := 0; i < 60; i++ {
		s.Append(Record{Job: "x", DS: "new", Logical: now.AddDate(0, 0, -1), State: StateSuccess})
	}
	var got []string
	for _, r := range s.Runs("") {
		got = append(got, r.Job+" "+r.DS)
	}
	eqStrings(t, "kept", got, []string{"sched old", "x stuck", "x new"})
}

// A warning about an unreadable line gives the byte offset where that line starts.
func TestHistoryBadLineOffset(t *testing.T) {
	dir := t.TempDir()
	good := `{"job":"a","ds":"2026-11-01","logical":"2026-11-01T00:00:00Z","state":"success","trigger":"manual","attempt":1,"rows":0,"updated":"2026-11-01T00:00:00Z"}` + "\n"
	bad := "  not a record \r\n"
	if err := os.WriteFile(filepath.Join(dir, "history.jsonl"), []byte(good+bad+good), 0o644); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	s, err := OpenStore(dir, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.bad != 1 || s.records != 2 {
		t.Fatalf("%d records, %d bad lines", s.records, s.bad)
	}
	if want := fmt.Sprintf("offset=%d\n", len(good)); !strings.Contains(logged.String(), want) {
		t.Fatalf("warning %q does not say %s", logged.String(), want)
	}
}

// A reader notices a compaction by another process even when the compacted file has
// the old file's inode number (ext4 hands a freed inode to the next file created; here
// every file gets the same number) and has grown past the offset the reader had read
// to: it reads the new file from its start, not from that stale offset.
func TestHistoryCompactionSeenDespiteInodeReuse(t *testing.T) {
	defer func(n int, ino func(os.FileInfo) uint64) { compactMin, fileIno = n, ino }(compactMin, fileIno)
	compactMin = 50
	fileIno = func(os.FileInfo) uint64 { return 7 }
	dir := t.TempDir()
	w, err := OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r, err := OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	appendRun := func(job string, day, attempt int) {
		t.Helper()
		l := base.AddDate(0, 0, day)
		if err := w.Append(Record{Job: job, DS: l.Format(time.DateOnly), Logical: l, State: StateRunning, Attempt: attempt}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		appendRun("j", i%5, i)
	}
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	for i := 30; i <= compactMin; i++ { // the 51st record compacts the file to 5
		appendRun("j", i%5, i)
	}
	if w.records != 5 {
		t.Fatalf("test setup: %d records in the file, want 5 (compacted)", w.records)
	}
	appendRun("k", 0, 1) // only in the compacted file, before the reader's old offset
	for i := range 40 {
		appendRun("j", i%5, 100+i)
	}
	if st, _ := os.Stat(filepath.Join(dir, "history.jsonl")); st.Size() < r.off {
		t.Fatalf("test setup: the compacted file (%d bytes) did not grow past the reader's offset %d", st.Size(), r.off)
	}
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	got, want := fmt.Sprint(r.Runs("")), fmt.Sprint(w.Runs(""))
	if got != want || r.bad != 0 {
		t.Fatalf("reader after the compaction (%d bad lines):\n got  %s\n want %s", r.bad, got, want)
	}
}

// An append whose fsync (or write) fails is cut off the file again: a record Append
// reported as not written never turns up for a reader, or after a restart.
func TestHistoryFailedAppendLeavesNothing(t *testing.T) {
	defer func(f func(*os.File) error) { syncFile = f }(syncFile)
	dir := t.TempDir()
	s, err := OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rec := func(st State) Record { return Record{Job: "a", DS: "2026-11-01", Logical: l, State: st} }
	if err := s.Append(rec(StateRunning)); err != nil {
		t.Fatal(err)
	}
	orig := syncFile
	syncFile = func(*os.File) error { return errors.New("input/output error") }
	if err := s.Append(rec(StateFailed)); err == nil {
		t.Fatal("an append whose fsync failed succeeded")
	}
	syncFile = orig
	r, err := OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, _ := r.Latest("a", l); got.State != StateRunning {
		t.Fatalf("after a failed append a reader sees state %q, want %q", got.State, StateRunning)
	}
	if err := s.Append(rec(StateSuccess)); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Latest("a", l); got.State != StateSuccess || r.bad != 0 || r.records != 2 {
		t.Fatalf("after the next append: %+v, %d records, %d bad lines", got, r.records, r.bad)
	}
}

// The append that creates history.jsonl fsyncs the file, then its directory and the
// directory above (OpenStore may have just made the jobs directory): a record is
// acknowledged as durable only once its file's name is. Later appends fsync the file only.
func TestHistoryCreationSyncsDirectories(t *testing.T) {
	var synced []string
	defer func(f func(*os.File) error) { syncFile = f }(syncFile)
	syncFile = func(f *os.File) error {
		synced = append(synced, filepath.Clean(f.Name()))
		return f.Sync()
	}
	dir := filepath.Join(t.TempDir(), "jobs")
	s, err := OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, st := range []State{StateRunning, StateSuccess} {
		if err := s.Append(Record{Job: "a", DS: "2026-11-01", Logical: l, State: st}); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "history.jsonl")
	eqStrings(t, "fsyncs", synced, []string{file, dir, filepath.Dir(dir), file})
}

// A compaction that fails (a full disk) removes its temporary file: left behind, it
// would hold the space it got until the next attempt, on a disk that is full already.
func TestHistoryFailedCompactionLeavesNoTemp(t *testing.T) {
	defer func(n int, f func(*os.File) error) { compactMin, syncFile = n, f }(compactMin, syncFile)
	compactMin = 20
	orig := syncFile
	syncFile = func(f *os.File) error {
		if strings.HasSuffix(f.Name(), ".tmp") {
			return syscall.ENOSPC
		}
		return orig(f)
	}
	dir := t.TempDir()
	s, err := OpenStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range 25 {
		if err := s.Append(Record{Job: "a", DS: "2026-11-01", Logical: l, State: StateRunning, Attempt: i}); err != nil {
			t.Fatal(err)
		}
	}
	if s.records != 25 {
		t.Fatalf("test setup: %d records in the file, want 25 (compaction failed)", s.records)
	}
	if _, err := os.Stat(filepath.Join(dir, "history.jsonl.tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed compaction left its temporary file: %v", err)
	}
}
