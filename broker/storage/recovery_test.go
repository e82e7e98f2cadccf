package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeLog appends n batches and closes the log; it returns the batches as stored and
// the path of the (single) segment.
func writeLog(t *testing.T, dir string, n int) ([][]byte, string) {
	t.Helper()
	l := mustOpen(t, dir, testOptions(nil))
	var stored [][]byte
	for i := range n {
		b := buildBatch(plain(1+i%4, 50+i, 1000+int64(i)))
		mustAppend(t, l, b) // rewrites the base offset in place
		stored = append(stored, bytes.Clone(b))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return stored, filepath.Join(dir, segmentName(0, ".log"))
}

// expectPrefix reopens dir and checks that exactly the first keep batches are there, that
// the file was cut to them, and that appending continues at the right offset.
func expectPrefix(t *testing.T, dir string, stored [][]byte, keep int) {
	t.Helper()
	l, err := OpenLog(dir, testOptions(nil))
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l.Close()
	want := bytes.Join(stored[:keep], nil)
	var end int64
	for _, b := range stored[:keep] {
		h := decodeHeader(b)
		end = h.LastOffset() + 1
	}
	if l.HighWatermark() != end || l.Size() != int64(len(want)) {
		t.Fatalf("after recovery: hw %d size %d, want %d %d", l.HighWatermark(), l.Size(), end, len(want))
	}
	if end > 0 {
		r, err := l.Read(0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := r.Bytes()
		r.Close()
		if !bytes.Equal(got, want) {
			t.Fatalf("recovered bytes differ from the intact prefix")
		}
	}
	res, err := l.Append(buildBatch(plain(2, 10, 5000)))
	if err != nil || res.BaseOffset != end {
		t.Fatalf("append after recovery: %+v %v, want base %d", res, err, end)
	}
}

func TestRecoveryTruncatedAtEveryByteOfLastBatch(t *testing.T) {
	noSync(t) // hundreds of reopens: recovery logic, not durability, is under test
	src := t.TempDir()
	stored, seg := writeLog(t, src, 5)
	full, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	last := len(stored[4])
	prefix := len(full) - last
	for cut := prefix; cut < len(full); cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0, ".log")), full[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		expectPrefix(t, dir, stored, 4)
	}
	// And the whole file is intact when nothing is cut.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, segmentName(0, ".log")), full, 0o644)
	expectPrefix(t, dir, stored, 5)
}

func TestRecoveryCorruptByteByByteInLastBatch(t *testing.T) {
	noSync(t) // hundreds of reopens: recovery logic, not durability, is under test
	src := t.TempDir()
	stored, seg := writeLog(t, src, 4)
	full, _ := os.ReadFile(seg)
	start := len(full) - len(stored[3])
	for i := start; i < len(full); i++ {
		if rel := i - start; rel >= offLeaderEpoch && rel < offMagic {
			continue // the leader epoch is outside the CRC by design: any value is legal
		}
		dir := t.TempDir()
		bad := bytes.Clone(full)
		bad[i] ^= 0x5a
		os.WriteFile(filepath.Join(dir, segmentName(0, ".log")), bad, 0o644)
		expectPrefix(t, dir, stored, 3)
	}
}

func TestRecoveryRandomGarbageTails(t *testing.T) {
	noSync(t) // hundreds of reopens: recovery logic, not durability, is under test
	src := t.TempDir()
	stored, seg := writeLog(t, src, 6)
	full, _ := os.ReadFile(seg)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		dir := t.TempDir()
		// Keep a random number of whole batches, then a random chunk: either garbage or
		// a slice of a real batch (a torn write), possibly followed by more garbage.
		keep := rng.IntN(len(stored) + 1)
		n := len(bytes.Join(stored[:keep], nil))
		tail := make([]byte, 1+rng.IntN(300))
		for j := range tail {
			tail[j] = byte(rng.Uint32())
		}
		if rng.IntN(2) == 0 && keep < len(stored) {
			part := stored[keep][:rng.IntN(len(stored[keep]))]
			tail = append(bytes.Clone(part), tail[:rng.IntN(len(tail))]...)
		}
		content := append(bytes.Clone(full[:n]), tail...)
		os.WriteFile(filepath.Join(dir, segmentName(0, ".log")), content, 0o644)
		expectPrefix(t, dir, stored, keep)
	}
}

func TestIndexRebuild(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(nil)
	o.SegmentBytes = 8 << 10
	o.IndexIntervalBytes = 512
	l := mustOpen(t, dir, o)
	for i := range 200 {
		mustAppend(t, l, buildBatch(plain(3, 100, 1000+int64(i))))
	}
	want := readAll(t, l, 0)
	if len(l.segs) < 5 {
		t.Fatalf("want several segments, got %d", len(l.segs))
	}
	l.Close()
	closed := filepath.Join(dir, segmentName(segBase(t, dir, 1), ".index"))
	orig, err := os.ReadFile(closed)
	if err != nil || len(orig) == 0 {
		t.Fatalf("closed segment index: %d bytes, %v", len(orig), err)
	}
	origTime, _ := os.ReadFile(timeOf(closed))

	for name, damage := range map[string]func(){
		"missing":   func() { os.Remove(closed); os.Remove(timeOf(closed)) },
		"truncated": func() { os.WriteFile(closed, orig[:len(orig)-3], 0o644) },
		"garbage":   func() { os.WriteFile(closed, bytes.Repeat([]byte{0xff}, len(orig)), 0o644) },
		"wrong":     func() { b := bytes.Clone(orig); b[len(b)-5]++; os.WriteFile(closed, b, 0o644) },
		"time":      func() { os.WriteFile(timeOf(closed), []byte{1, 2, 3}, 0o644) },
	} {
		damage()
		l2, err := OpenLog(dir, o)
		if err != nil {
			t.Fatalf("%s: reopen: %v", name, err)
		}
		got := readAll(t, l2, 0)
		if len(got) != len(want) {
			t.Fatalf("%s: %d batches after rebuild, want %d", name, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: batch %d differs after rebuild", name, i)
			}
		}
		// Offset lookups go through the rebuilt index.
		for _, h := range want {
			r, err := l2.Read(h.BaseOffset+1, 1)
			if err != nil || r.FirstOffset() != h.BaseOffset {
				t.Fatalf("%s: Read(%d) first %d err %v", name, h.BaseOffset+1, r.FirstOffset(), err)
			}
			r.Close()
		}
		l2.Close()
		rebuilt, _ := os.ReadFile(closed)
		rebuiltTime, _ := os.ReadFile(timeOf(closed))
		if !bytes.Equal(rebuilt, orig) || !bytes.Equal(rebuiltTime, origTime) {
			t.Fatalf("%s: rebuilt index files differ from the originals", name)
		}
	}
}

func timeOf(indexPath string) string {
	return indexPath[:len(indexPath)-len(".index")] + ".timeindex"
}

// segBase returns the base offset of the i-th segment file in dir.
func segBase(t *testing.T, dir string, i int) int64 {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(m) <= i {
		t.Fatalf("only %d segments", len(m))
	}
	b, err := parseBase(filepath.Base(m[i]), ".log")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCleanShutdownTrustsIndexes(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(nil)
	o.IndexIntervalBytes = 300
	l := mustOpen(t, dir, o)
	for i := range 40 {
		mustAppend(t, l, buildBatch(plain(2, 50, 1000+int64(i))))
	}
	want := readAll(t, l, 0)
	l.Close()
	seg := filepath.Join(dir, segmentName(0, ".log"))
	idx, _ := os.ReadFile(filepath.Join(dir, segmentName(0, ".index")))
	full, _ := os.ReadFile(seg)

	// A clean reopen gives the same state, without reading every batch: damage in the
	// first batch (long before the last index entry) is not even looked at...
	bad := bytes.Clone(full)
	bad[70] ^= 1
	os.WriteFile(seg, bad, 0o644)
	l2 := mustOpen(t, dir, o)
	if got := readAll(t, l2, 2); len(got) != len(want)-1 || l2.HighWatermark() != 80 || l2.Size() != int64(len(full)) {
		t.Fatalf("clean reopen: %d batches, hw %d", len(got), l2.HighWatermark())
	}
	if off, ts, ok := l2.OffsetForTimestamp(1039); !ok || off != 77 || ts != 1039 { // batch 38 = offsets 76,77 at 1038,1039
		t.Fatalf("time lookup after clean reopen: %d %d %v", off, ts, ok)
	}
	l2.Close()
	if idx2, _ := os.ReadFile(filepath.Join(dir, segmentName(0, ".index"))); !bytes.Equal(idx, idx2) {
		t.Fatal("index changed across a clean reopen")
	}
	// ...while without the marker (a crash) the full scan finds it and truncates.
	os.Remove(filepath.Join(dir, cleanMarkerFile))
	l3 := mustOpen(t, dir, o)
	if l3.HighWatermark() != 0 {
		t.Fatalf("unclean reopen: hw %d, want 0 (first batch corrupt)", l3.HighWatermark())
	}
	l3.Close()
}

func TestCleanShutdownStillChecksTheTail(t *testing.T) {
	for _, damage := range []string{"corrupt", "torn", "appended", "marker"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			o := testOptions(nil)
			o.IndexIntervalBytes = 300
			l := mustOpen(t, dir, o)
			for i := range 20 {
				mustAppend(t, l, buildBatch(plain(2, 50, 1000+int64(i))))
			}
			l.Close()
			seg := filepath.Join(dir, segmentName(0, ".log"))
			data, _ := os.ReadFile(seg)
			wantHW := int64(38)
			switch damage {
			case "corrupt":
				data[len(data)-5] ^= 0x40
			case "torn":
				data = data[:len(data)-17]
			case "appended":
				data = append(data, buildBatch(plain(2, 50, 1))...) // base offset 0: out of order
				wantHW = 40
			case "marker":
				os.WriteFile(filepath.Join(dir, cleanMarkerFile), []byte("41\n"), 0o644)
				wantHW = 40
			}
			os.WriteFile(seg, data, 0o644)
			l2 := mustOpen(t, dir, o)
			if l2.HighWatermark() != wantHW {
				t.Fatalf("hw %d, want %d", l2.HighWatermark(), wantHW)
			}
			if got := readAll(t, l2, 0); len(got) != int(wantHW/2) {
				t.Fatalf("%d batches", len(got))
			}
		})
	}
}

func TestRecoveryLogsTruncation(t *testing.T) {
	dir := t.TempDir()
	_, seg := writeLog(t, dir, 3)
	os.Remove(filepath.Join(dir, cleanMarkerFile))
	st, _ := os.Stat(seg)
	os.Truncate(seg, st.Size()-1)
	var buf bytes.Buffer
	o := testOptions(nil)
	o.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	l := mustOpen(t, dir, o)
	l.Close()
	if !strings.Contains(buf.String(), "truncating torn or corrupt segment tail") || !strings.Contains(buf.String(), "dropped_bytes=") {
		t.Fatalf("no truncation log line: %q", buf.String())
	}
}

// Damage inside a closed segment whose index still looks right is not rescanned on open;
// it must give errors where it is read, never a hang or a panic.
func TestDamagedClosedSegmentBehindGoodIndex(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions(nil))
	for i := range 4 {
		mustAppend(t, l, idem(1, 0, int32(i), 1))
	}
	l.Roll()
	mustAppend(t, l, idem(1, 0, 4, 1))
	l.Close()
	seg0 := filepath.Join(dir, segmentName(0, ".log"))
	data, _ := os.ReadFile(seg0)
	last := len(data) - len(idem(1, 0, 0, 1))
	binary.BigEndian.PutUint32(data[last+offBatchLength:], 0xfffffff4) // length -12: size 0
	os.WriteFile(seg0, data, 0o644)
	snaps, _ := filepath.Glob(filepath.Join(dir, "*.snapshot"))
	for _, s := range snaps {
		os.Remove(s) // force the header replay through the damage
	}
	l2 := mustOpen(t, dir, testOptions(nil))
	if _, err := l2.Read(3, 100); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("reading the damaged batch: %v", err)
	}
	if r, err := l2.Read(4, 100); err != nil || r.FirstOffset() != 4 {
		t.Fatalf("the next segment is fine: %v", err)
	} else {
		r.Close()
	}
}

// A roll does not wait for the old segment's fsync; Close does, and then records the
// recovery point.
func TestRollSyncsOldSegmentInBackground(t *testing.T) {
	dir := t.TempDir()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	orig := syncFile
	syncFile = func(f *os.File) error {
		if strings.HasSuffix(f.Name(), segmentName(0, ".log")) {
			entered <- struct{}{}
			<-release
		}
		return orig(f)
	}
	t.Cleanup(func() { syncFile = orig })
	l := mustOpen(t, dir, testOptions(nil))
	mustAppend(t, l, buildBatch(plain(5, 10, 1)))
	if err := l.Roll(); err != nil { // returns although segment 0's fsync is blocked
		t.Fatal(err)
	}
	<-entered
	mustAppend(t, l, buildBatch(plain(5, 10, 1)))
	if b, _ := os.ReadFile(filepath.Join(dir, recoveryPointFile)); len(b) != 0 {
		t.Fatalf("recovery point moved before the fsync finished: %q", b)
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
		t.Fatal("Close did not wait for the background fsync")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, recoveryPointFile)); string(b) != "5\n" {
		t.Fatalf("recovery point after close: %q, want 5", b)
	}
}

// After a crash, rolled segments past the recovery point are checked in full: one that
// lost its tail (a power loss before its background fsync) is cut there and the
// segments after it are deleted; undamaged ones are kept as they are.
func TestRecoveryPointRescansRolledSegments(t *testing.T) {
	for _, damaged := range []bool{false, true} {
		t.Run(fmt.Sprint("damaged=", damaged), func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, testOptions(nil))
			for range 3 { // segments [0,10) [10,20) [20,30) and the active [30,40)
				mustAppend(t, l, buildBatch(plain(5, 10, 1)))
				mustAppend(t, l, buildBatch(plain(5, 10, 1)))
				l.Roll()
			}
			mustAppend(t, l, buildBatch(plain(10, 10, 1)))
			l.Close()
			// The crash: no clean marker, recovery point still at segment 10.
			os.Remove(filepath.Join(dir, cleanMarkerFile))
			os.WriteFile(filepath.Join(dir, recoveryPointFile), []byte("10\n"), 0o644)
			seg10 := filepath.Join(dir, segmentName(10, ".log"))
			if damaged {
				st, _ := os.Stat(seg10)
				os.Truncate(seg10, st.Size()-20) // its second batch lost its tail
			}
			// Segment 0 is before the recovery point: damage there is not looked for.
			l2 := mustOpen(t, dir, testOptions(nil))
			wantHW, wantSegs := int64(40), 4
			if damaged {
				wantHW, wantSegs = 15, 2
			}
			if l2.HighWatermark() != wantHW || len(segmentFiles(t, dir)) != wantSegs {
				t.Fatalf("hw %d, %d segments; want %d, %d", l2.HighWatermark(), len(segmentFiles(t, dir)), wantHW, wantSegs)
			}
			if got := readAll(t, l2, 0); got[len(got)-1].LastOffset()+1 != wantHW {
				t.Fatalf("read back up to %d", got[len(got)-1].LastOffset()+1)
			}
			if r, err := l2.Append(buildBatch(plain(1, 1, 1))); err != nil || r.BaseOffset != wantHW {
				t.Fatalf("append after recovery: %+v %v", r, err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, recoveryPointFile)); string(b) != fmt.Sprintf("%d\n", map[bool]int{false: 30, true: 10}[damaged]) {
				t.Fatalf("recovery point after recovery: %q", b)
			}
		})
	}
}

// Opening a cleanly closed log removes its clean shutdown marker and syncs the
// directory before it takes appends: if a power cut brought the marker back, the next
// open would trust it and skip checking the segments rolled after it.
func TestCleanMarkerRemovalSynced(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions(nil))
	mustAppend(t, l, buildBatch(plain(5, 10, 1)))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, cleanMarkerFile)); err != nil {
		t.Fatalf("no clean shutdown marker after Close: %v", err)
	}
	synced := false // the directory, once the marker was gone
	orig := syncFile
	syncFile = func(f *os.File) error {
		if st, err := f.Stat(); err == nil && st.IsDir() && filepath.Clean(f.Name()) == dir {
			if _, err := os.Stat(filepath.Join(dir, cleanMarkerFile)); errors.Is(err, os.ErrNotExist) {
				synced = true
			}
		}
		return orig(f)
	}
	t.Cleanup(func() { syncFile = orig })
	mustOpen(t, dir, testOptions(nil))
	if !synced {
		t.Fatal("the clean shutdown marker's removal was not synced when the log opened")
	}
}
