package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRollBySize(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(nil)
	b := buildBatch(plain(10, 100, 1))
	o.SegmentBytes = int64(3*len(b) + 10) // three batches fit, the fourth rolls
	l := mustOpen(t, dir, o)
	for range 10 {
		mustAppend(t, l, buildBatch(plain(10, 100, 1)))
	}
	files := segmentFiles(t, dir)
	if len(files) != 4 {
		t.Fatalf("10 batches, 3 per segment: want 4 segments, got %v", files)
	}
	for i, want := range []int64{0, 30, 60, 90} {
		if filepath.Base(files[i]) != segmentName(want, ".log") {
			t.Fatalf("segment %d is %s, want base %d", i, files[i], want)
		}
		st, _ := os.Stat(files[i])
		if i < 3 && st.Size() != int64(3*len(b)) {
			t.Fatalf("closed segment %s has %d bytes, want %d", files[i], st.Size(), 3*len(b))
		}
	}
	// A batch larger than segment.bytes still goes in (alone), as in Kafka.
	big := buildBatch(plain(100, 100, 1))
	mustAppend(t, l, big)
	if got := readAll(t, l, 0); len(got) != 11 {
		t.Fatalf("read back %d batches, want 11", len(got))
	}
}

func TestRollByTime(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{ms: 1_000_000}
	o := testOptions(clk)
	o.SegmentMS = 60_000
	l := mustOpen(t, dir, o)
	mustAppend(t, l, buildBatch(plain(1, 10, clk.ms)))
	clk.ms += 59_999
	mustAppend(t, l, buildBatch(plain(1, 10, clk.ms)))
	if n := len(segmentFiles(t, dir)); n != 1 {
		t.Fatalf("before segment.ms: %d segments", n)
	}
	clk.ms += 1
	mustAppend(t, l, buildBatch(plain(1, 10, clk.ms)))
	if n := len(segmentFiles(t, dir)); n != 2 {
		t.Fatalf("after segment.ms: %d segments, want 2", n)
	}
	// An idle empty active segment never rolls.
	clk.ms += 10 * 60_000
	l.Roll()
	clk.ms += 10 * 60_000
	mustAppend(t, l, buildBatch(plain(1, 10, clk.ms)))
	if n := len(segmentFiles(t, dir)); n != 3 {
		t.Fatalf("after Roll and an append: %d segments, want 3", n)
	}
}

func TestRetentionByTime(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{ms: 10_000_000}
	o := testOptions(clk)
	o.RetentionMS = 10_000
	l := mustOpen(t, dir, o)
	// Three closed segments written at t, t+5s, t+10s, and an active one.
	for i := range 3 {
		mustAppend(t, l, buildBatch(plain(5, 10, clk.ms)))
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
		clk.ms += 5_000
		_ = i
	}
	mustAppend(t, l, buildBatch(plain(5, 10, clk.ms-1))) // active, old timestamps
	// now = t+15s: the first segment (newest record t+4ms) is past 10s; the second
	// (t+5s+4ms) is not.
	n, err := l.EnforceRetention()
	if err != nil || n != 1 {
		t.Fatalf("EnforceRetention: %d %v, want 1", n, err)
	}
	if l.LogStartOffset() != 5 {
		t.Fatalf("log start %d, want 5", l.LogStartOffset())
	}
	if _, err := l.Read(0, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("reading deleted data: %v", err)
	}
	clk.ms += 1_000_000 // everything expired; the active segment stays
	n, err = l.EnforceRetention()
	if err != nil || n != 2 {
		t.Fatalf("EnforceRetention: %d %v, want 2", n, err)
	}
	if got := len(segmentFiles(t, dir)); got != 1 {
		t.Fatalf("%d segments left, want only the active one", got)
	}
	if got := readAll(t, l, l.LogStartOffset()); len(got) != 1 || got[0].BaseOffset != 15 {
		t.Fatalf("active segment data: %+v", got)
	}
	// Unlimited retention deletes nothing.
	o.RetentionMS = -1
	l.SetOptions(o)
	l.Roll()
	mustAppend(t, l, buildBatch(plain(5, 10, 1)))
	clk.ms += 1 << 40
	if n, _ := l.EnforceRetention(); n != 0 {
		t.Fatalf("retention.ms=-1 deleted %d segments", n)
	}
}

func TestRetentionByBytes(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(nil)
	o.RetentionMS = -1
	b := buildBatch(plain(10, 100, 1))
	o.SegmentBytes = int64(2 * len(b)) // two batches per segment
	o.RetentionBytes = int64(5 * len(b))
	l := mustOpen(t, dir, o)
	for range 9 { // segments of 2,2,2,2,1 batches
		mustAppend(t, l, buildBatch(plain(10, 100, 1)))
	}
	if l.Size() != int64(9*len(b)) {
		t.Fatalf("size %d", l.Size())
	}
	n, err := l.EnforceRetention()
	// Kafka: delete while size - segment >= retention.bytes: 9-2=7>=5, 7-2=5>=5, 5-2=3 stop.
	if err != nil || n != 2 {
		t.Fatalf("EnforceRetention: %d %v, want 2", n, err)
	}
	if l.Size() != int64(5*len(b)) || l.LogStartOffset() != 40 {
		t.Fatalf("after retention: size %d start %d", l.Size(), l.LogStartOffset())
	}
	// Retention never deletes the active segment even when it alone is over the limit.
	o.RetentionBytes = 1
	l.SetOptions(o)
	l.EnforceRetention()
	if files := segmentFiles(t, dir); len(files) != 1 || l.HighWatermark() != 90 {
		t.Fatalf("files %v hw %d", files, l.HighWatermark())
	}
}

func TestReadSurvivesSegmentDeletion(t *testing.T) {
	o := testOptions(nil)
	o.RetentionMS = -1
	l := mustOpen(t, t.TempDir(), o)
	want := buildBatch(plain(3, 100, 1))
	mustAppend(t, l, want)
	l.Roll()
	mustAppend(t, l, buildBatch(plain(3, 100, 1)))
	r, err := l.Read(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.DeleteRecordsBefore(3); err != nil {
		t.Fatal(err)
	}
	if len(segmentFiles(t, l.Dir())) != 1 {
		t.Fatal("first segment not deleted")
	}
	got, err := r.Bytes() // the open result still reads the unlinked file
	r.Close()
	if err != nil || string(got) != string(want) {
		t.Fatalf("read after delete: %v", err)
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions(nil))
	for range 3 {
		mustAppend(t, l, buildBatch(plain(10, 10, 1)))
		l.Roll()
	}
	mustAppend(t, l, buildBatch(plain(10, 10, 1)))
	start, err := l.DeleteRecordsBefore(15) // inside the second segment
	if err != nil || start != 15 || l.LogStartOffset() != 15 {
		t.Fatalf("DeleteRecordsBefore(15): %d %v", start, err)
	}
	if files := segmentFiles(t, dir); len(files) != 3 {
		t.Fatalf("want the first segment gone, have %v", files)
	}
	if _, err := l.Read(14, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read(14): %v", err)
	}
	if r, err := l.Read(15, 100); err != nil || r.FirstOffset() != 10 {
		t.Fatalf("Read(15) gives the batch holding it: %v", err)
	} else {
		r.Close()
	}
	if s, _ := l.DeleteRecordsBefore(3); s != 15 {
		t.Fatalf("moving the start back: %d", s)
	}
	if _, err := l.DeleteRecordsBefore(41); !errors.Is(err, ErrInvalidOffset) {
		t.Fatalf("past the high watermark: %v", err)
	}
	// The start offset survives a restart even inside a segment.
	l.Close()
	l2 := mustOpen(t, dir, testOptions(nil))
	if l2.LogStartOffset() != 15 {
		t.Fatalf("after reopen log start %d", l2.LogStartOffset())
	}
	// -1 means the high watermark: everything goes, appends continue.
	if s, err := l2.DeleteRecordsBefore(-1); err != nil || s != 40 {
		t.Fatalf("DeleteRecordsBefore(-1): %d %v", s, err)
	}
	if files := segmentFiles(t, dir); len(files) != 1 {
		t.Fatalf("files after deleting all: %v", files)
	}
	if r := mustAppend(t, l2, buildBatch(plain(1, 1, 1))); r.BaseOffset != 40 || r.LogStartOffset != 40 {
		t.Fatalf("append after delete-all: %+v", r)
	}
}
