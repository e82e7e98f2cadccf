package storage

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// allocated is the disk space a file's blocks take.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// The active segment is allocated ahead of its appends, a little beyond its data,
// and the reserve is given back when the segment rolls and when the log closes; the file
// size (what readers and recovery see) is the data only.
func TestSegmentSpaceReservedAheadAndGivenBack(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(nil)
	o.SegmentBytes = 3 * reserveStep
	l := mustOpen(t, dir, o)
	b := buildBatch(plain(100, 1000, 1000)) // ~100 KiB
	for range 5 {
		mustAppend(t, l, append([]byte(nil), b...))
	}
	first := filepath.Join(dir, segmentName(0, ".log"))
	st, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 5*int64(len(b)) {
		t.Fatalf("segment size %d, want the data's %d", st.Size(), 5*len(b))
	}
	if noReserve.Load() {
		t.Skip("the file system does not preallocate")
	}
	if got := allocated(t, first); got < reserveStep || got > st.Size()+4*int64(len(b))+reserveStep {
		t.Fatalf("active segment allocates %d bytes for %d of data", got, st.Size())
	}
	// Fill the segment until it rolls.
	for l.HighWatermark() < 5000 {
		mustAppend(t, l, append([]byte(nil), b...))
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	st, _ = os.Stat(first)
	if got := allocated(t, first); got > st.Size()+4096 {
		t.Fatalf("rolled segment still allocates %d bytes for %d of data", got, st.Size())
	}
	active := l.active().path(".log")
	mustAppend(t, l, append([]byte(nil), b...))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st, _ = os.Stat(active)
	if got := allocated(t, active); got > st.Size()+4096 {
		t.Fatalf("closed segment still allocates %d bytes for %d of data", got, st.Size())
	}
	// Reopened, the data is all there and appends go on.
	l = mustOpen(t, dir, o)
	if hwm := l.HighWatermark(); hwm < 5100 {
		t.Fatalf("high watermark %d after reopening", hwm)
	}
	mustAppend(t, l, append([]byte(nil), b...))
}

// On a file system kept in memory nothing is allocated ahead: it would only take memory.
func TestNoReserveInMemory(t *testing.T) {
	dir, err := os.MkdirTemp("/dev/shm", "reserve-")
	if err != nil {
		t.Skip("no /dev/shm")
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Statfs_t
	if err := syscall.Fstatfs(int(f.Fd()), &st); err != nil || uint32(st.Type) != tmpfsMagic {
		t.Skip("/dev/shm is not tmpfs")
	}
	if !inMemoryFS(f) {
		t.Fatal("inMemoryFS is false on tmpfs")
	}
	// noReserve is broker-wide: put it back for the other tests.
	was := noReserve.Load()
	defer noReserve.Store(was)
	noReserve.Store(false)
	newSegmentStruct(dir, 0, f).reserve(1000, 1000)
	if !noReserve.Load() {
		t.Fatal("reserve on tmpfs did not turn reserving off")
	}
	if got := allocated(t, f.Name()); got != 0 {
		t.Fatalf("%d bytes allocated on tmpfs", got)
	}
}
