package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

type kv struct {
	key, value *string // nil key: no key; nil value: tombstone
}

func s(v string) *string { return &v }

// buildKeyed encodes an uncompressed batch of the given records at timestamp ts.
func buildKeyed(ts int64, recs ...kv) []byte {
	trs := make([]testRecord, len(recs))
	for i, r := range recs {
		trs[i] = testRecord{key: r.key, value: r.value}
	}
	return buildRecords(ts, trs)
}

// testRecord is one record of buildRecords: its timestamp delta, key and value (nil: null).
type testRecord struct {
	delta      int64
	key, value *string
}

// buildRecords encodes an uncompressed batch with base timestamp base (max timestamp
// from the deltas) holding recs.
func buildRecords(base int64, recs []testRecord) []byte {
	var body []byte
	maxTs := base
	for i, r := range recs {
		maxTs = max(maxTs, base+r.delta)
		var b []byte
		b = append(b, 0)
		b = binary.AppendVarint(b, r.delta)
		b = binary.AppendVarint(b, int64(i))
		for _, f := range []*string{r.key, r.value} {
			if f == nil {
				b = binary.AppendVarint(b, -1)
			} else {
				b = binary.AppendVarint(b, int64(len(*f)))
				b = append(b, *f...)
			}
		}
		b = binary.AppendVarint(b, 0)
		body = binary.AppendVarint(body, int64(len(b)))
		body = append(body, b...)
	}
	h := make([]byte, BatchHeaderSize)
	binary.BigEndian.PutUint32(h[offBatchLength:], uint32(BatchHeaderSize-batchLogOverhead+len(body)))
	h[offMagic] = 2
	binary.BigEndian.PutUint32(h[offLastOffsetDelta:], uint32(len(recs)-1))
	binary.BigEndian.PutUint64(h[offBaseTimestamp:], uint64(base))
	binary.BigEndian.PutUint64(h[offMaxTimestamp:], uint64(maxTs))
	binary.BigEndian.PutUint64(h[offProducerID:], ^uint64(0))
	binary.BigEndian.PutUint16(h[offProducerEpoch:], 0xffff)
	binary.BigEndian.PutUint32(h[offBaseSequence:], 0xffffffff)
	binary.BigEndian.PutUint32(h[offRecordCount:], uint32(len(recs)))
	b := append(h, body...)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// liveRecords reads the log and returns offset -> "key=value" ("key=<nil>" for tombstones).
func liveRecords(t *testing.T, l *Log) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	for off := l.LogStartOffset(); off < l.HighWatermark(); {
		r, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Bytes()
		r.Close()
		if len(b) == 0 {
			break
		}
		for len(b) > 0 {
			h, n, err := checkBatch(b, 0, false)
			if err != nil {
				t.Fatalf("bad batch after compaction: %v", err)
			}
			recs, _, err := decompressRecords(h.Compression(), b[BatchHeaderSize:n])
			if err != nil {
				t.Fatal(err)
			}
			if err := parseRecords(recs, &h, func(r *recordView) {
				v := "<nil>"
				if !r.tombstone {
					v = "v" // values checked by key below
				}
				out[r.offset] = string(r.key) + "=" + v
			}); err != nil {
				t.Fatal(err)
			}
			off = h.LastOffset() + 1
			b = b[n:]
		}
	}
	return out
}

func TestCompactKeepsLatestPerKey(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{ms: 1_000_000_000}
	o := testOptions(clk)
	o.DeleteRetentionMS = 1000
	l := mustOpen(t, dir, o)
	// Segment 0: offsets 0-3; segment 1: 4-6; active: 7-8.
	mustAppend(t, l, buildKeyed(clk.ms, kv{s("a"), s("1")}, kv{s("b"), s("1")}, kv{nil, s("nokey")}, kv{s("c"), s("1")}))
	l.Roll()
	mustAppend(t, l, buildKeyed(clk.ms, kv{s("a"), s("2")}, kv{s("c"), nil}, kv{s("d"), s("1")}))
	l.Roll()
	mustAppend(t, l, buildKeyed(clk.ms, kv{s("b"), s("2")}, kv{s("d"), s("2")})) // active: not cleaned, not in the map
	hw, start := l.HighWatermark(), l.LogStartOffset()

	res, err := l.Compact()
	if err != nil {
		t.Fatal(err)
	}
	// Dropped: a@0 (a@4 newer) and c@3 (tombstone c@5 newer). b@1 stays: its newer
	// copy is in the active segment; the tombstone is younger than delete.retention.ms.
	if res.RecordsRemoved != 2 || res.Segments != 1 || res.BytesAfter >= res.BytesBefore {
		t.Fatalf("Compact: %+v", res)
	}
	want := map[int64]string{1: "b=v", 2: "=v", 4: "a=v", 5: "c=<nil>", 6: "d=v", 7: "b=v", 8: "d=v"}
	check := func(l *Log) {
		t.Helper()
		got := liveRecords(t, l)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after compaction:\n got %v\nwant %v", got, want)
		}
		if l.HighWatermark() != hw || l.LogStartOffset() != start {
			t.Fatalf("offsets moved: hw %d start %d", l.HighWatermark(), l.LogStartOffset())
		}
		// A fetch from a removed offset gets the next batch holding a later offset.
		r, err := l.Read(0, 1)
		if err != nil || r.FirstOffset() != 0 || r.NextOffset() != 4 {
			t.Fatalf("Read(0) after compaction: first %d next %d %v", r.FirstOffset(), r.NextOffset(), err)
		}
		r.Close()
	}
	check(l)

	// Once the tombstone is old enough, it goes too; the segments roll on.
	clk.ms += 2000
	l.Roll()
	if res, err = l.Compact(); err != nil || res.RecordsRemoved != 3 { // c tombstone, b@1, d@6
		t.Fatalf("second Compact: %+v %v", res, err)
	}
	want = map[int64]string{2: "=v", 4: "a=v", 7: "b=v", 8: "d=v"}
	check2 := func(l *Log) {
		t.Helper()
		if got := liveRecords(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after second compaction:\n got %v\nwant %v", got, want)
		}
	}
	check2(l)
	if res, _ := l.Compact(); res.RecordsRemoved != 0 {
		t.Fatalf("compacting a clean log removed %d", res.RecordsRemoved)
	}

	// Everything survives a restart (indexes of the rewritten segments included).
	l.Close()
	if m, _ := filepath.Glob(filepath.Join(dir, "*.cleaned")); len(m) != 0 {
		t.Fatalf("left behind %v", m)
	}
	l2 := mustOpen(t, dir, o)
	check2(l2)
	mustAppend(t, l2, buildKeyed(clk.ms, kv{s("z"), s("1")}))
}

func TestCompactLeftoverIsIgnored(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions(nil))
	mustAppend(t, l, buildKeyed(1, kv{s("a"), s("1")}))
	l.Close()
	// A crash in the middle of cleaning leaves a .cleaned file: the old log wins.
	junk := filepath.Join(dir, segmentName(0, ".log.cleaned"))
	os.WriteFile(junk, []byte("partial"), 0o644)
	l2 := mustOpen(t, dir, testOptions(nil))
	if l2.HighWatermark() != 1 {
		t.Fatalf("hw %d", l2.HighWatermark())
	}
	if _, err := os.Stat(junk); !os.IsNotExist(err) {
		t.Fatal(".cleaned leftover not removed")
	}
}

// Compaction runs while appends, rolls and reads go on (run with -race).
func TestCompactConcurrentWithAppendAndRead(t *testing.T) {
	noSync(t)
	o := testOptions(nil)
	o.SegmentBytes = 4 << 10
	l := mustOpen(t, t.TempDir(), o)
	done := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			for off := l.LogStartOffset(); off < l.HighWatermark(); {
				r, err := l.Read(off, 8<<10)
				if err != nil {
					readErr <- err
					return
				}
				b, err := r.Bytes()
				r.Close()
				if err != nil {
					readErr <- err
					return
				}
				if len(b) == 0 {
					break
				}
				for len(b) > 0 {
					h, n, err := checkBatch(b, 0, false)
					if err != nil {
						readErr <- err
						return
					}
					off, b = h.LastOffset()+1, b[n:]
				}
			}
		}
	}()
	for i := range 600 {
		k := fmt.Sprintf("key%d", i%20)
		mustAppend(t, l, buildKeyed(1, kv{s(k), s(fmt.Sprint(i))}, kv{s("hot"), s(fmt.Sprint(i))}))
		if i%50 == 49 {
			if _, err := l.Compact(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	l.Roll()
	if _, err := l.Compact(); err != nil {
		t.Fatal(err)
	}
	// Exactly the newest record per key is left: 20 keys + "hot".
	if got := liveRecords(t, l); len(got) != 21 {
		t.Fatalf("%d live records after full compaction, want 21: %v", len(got), got)
	}
}

// compressBatch is buildKeyed's batch with its records compressed by codec (xerial: the
// snappy framing).
func compressBatch(t testing.TB, b []byte, codec int, xerial bool) []byte {
	t.Helper()
	body, err := compressRecords(codec, b[BatchHeaderSize:], xerial)
	if err != nil {
		t.Fatal(err)
	}
	out := append(append([]byte(nil), b[:BatchHeaderSize]...), body...)
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(codec))
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-batchLogOverhead))
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return out
}

// TestCompactCompressedBatches: a compressed batch that loses records is written again
// with its own codec (snappy in the framing it came in), one that loses none is kept
// byte for byte, and a compacted log refuses records without a key in any codec.
func TestCompactCompressedBatches(t *testing.T) {
	for _, c := range []struct {
		name   string
		codec  int
		xerial bool
	}{{"gzip", codecGzip, false}, {"snappy", codecSnappy, false}, {"snappy-xerial", codecSnappy, true},
		{"lz4", codecLZ4, false}, {"zstd", codecZstd, false}} {
		t.Run(c.name, func(t *testing.T) {
			o := testOptions(nil)
			o.Compact = true
			l := mustOpen(t, t.TempDir(), o)
			batch := func(recs ...kv) []byte { return compressBatch(t, buildKeyed(1, recs...), c.codec, c.xerial) }
			// Segment 0: a@0 b@1 c@2; segment 1: a@3 d@4 (loses nothing); active: b@5.
			mustAppend(t, l, batch(kv{s("a"), s("1")}, kv{s("b"), s("1")}, kv{s("c"), s("1")}))
			l.Roll()
			kept := batch(kv{s("a"), s("2")}, kv{s("d"), s("1")})
			mustAppend(t, l, kept)
			l.Roll()
			mustAppend(t, l, batch(kv{s("b"), s("2")}))
			if _, err := l.Append(batch(kv{s("e"), s("1")}, kv{nil, s("keyless")})); !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("keyless record in a compacted log: %v, want ErrInvalidRecord", err)
			}
			res, err := l.Compact()
			if err != nil {
				t.Fatal(err)
			}
			if res.RecordsRemoved != 1 || res.Segments != 1 {
				t.Fatalf("Compact: %+v", res)
			}
			want := map[int64]string{1: "b=v", 2: "c=v", 3: "a=v", 4: "d=v", 5: "b=v"}
			if got := liveRecords(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("after compaction:\n got %v\nwant %v", got, want)
			}
			r, err := l.Read(0, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := r.Bytes()
			r.Close()
			h, n, err := checkBatch(b, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			if h.Compression() != c.codec || h.RecordCount != 2 || h.LastOffsetDelta != 2 {
				t.Fatalf("cleaned batch: codec %d, %d records, last offset delta %d", h.Compression(), h.RecordCount, h.LastOffsetDelta)
			}
			if got := bytes.HasPrefix(b[BatchHeaderSize:n], xerialMagic); got != c.xerial {
				t.Fatalf("cleaned batch in xerial framing: %v, want %v", got, c.xerial)
			}
			// The batch that lost nothing is as it was appended (offsets assigned).
			if r, err = l.Read(3, 1<<20); err != nil {
				t.Fatal(err)
			}
			b, _ = r.Bytes()
			r.Close()
			h1, n1, err := checkBatch(b, 0, true)
			if err != nil || h1.BaseOffset != 3 || !bytes.Equal(b[BatchHeaderSize:n1], kept[BatchHeaderSize:]) {
				t.Fatalf("untouched batch at %d changed (%v)", h1.BaseOffset, err)
			}
		})
	}
}

// TestCodecsRoundTrip: every codec gives back what it compressed, a large xerial
// stream spans several chunks, and a snappy bomb's declared size is refused before it is
// allocated.
func TestCodecsRoundTrip(t *testing.T) {
	src := bytes.Repeat([]byte("record payload 0123456789 "), 10000) // 260 KB: 8 xerial chunks
	for _, codec := range []int{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
		for _, xerial := range []bool{false, true} {
			c, err := compressRecords(codec, src, xerial)
			if err != nil {
				t.Fatal(err)
			}
			got, gotXerial, err := decompressRecords(codec, c)
			if err != nil || !bytes.Equal(got, src) {
				t.Fatalf("codec %d xerial %v: %v, %d bytes back", codec, xerial, err, len(got))
			}
			if want := xerial && codec == codecSnappy; gotXerial != want {
				t.Fatalf("codec %d: xerial %v, want %v", codec, gotXerial, want)
			}
		}
	}
	bomb := binary.AppendUvarint(nil, maxInflated+1) // a snappy block's declared length
	if _, _, err := decompressRecords(codecSnappy, append(bomb, 0)); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("snappy bomb: %v", err)
	}
	if _, _, err := decompressRecords(7, nil); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("codec 7: %v", err)
	}
}

// TestCompactIfDirty: a compacted log is cleaned when the closed bytes appended since the
// last pass reach min.cleanable.dirty.ratio, not before; segments younger than
// min.compaction.lag.ms are left alone; a log that is not compacted is never cleaned.
func TestCompactIfDirty(t *testing.T) {
	clk := &fakeClock{ms: 1_000_000_000}
	o := testOptions(clk)
	o.Compact, o.MinCleanableDirtyRatio = true, 0.6
	l := mustOpen(t, t.TempDir(), o)
	put := func(v string) {
		mustAppend(t, l, buildKeyed(clk.ms, kv{s("k"), s(v)}))
		l.Roll()
	}
	put("1")
	put("2")
	if res, ran, err := l.CompactIfDirty(); err != nil || !ran || res.RecordsRemoved != 1 {
		t.Fatalf("first pass (all dirty): %+v ran %v %v", res, ran, err)
	}
	put("3") // dirty: one segment of the two non-empty ones
	if _, ran, err := l.CompactIfDirty(); err != nil || ran {
		t.Fatalf("ran at a dirty ratio of 0.5 < 0.6 (%v)", err)
	}
	o.MinCleanableDirtyRatio = 0.5
	o.MinCompactionLagMS = 10_000
	l.SetOptions(o)
	if res, ran, err := l.CompactIfDirty(); err != nil || !ran || res.RecordsRemoved != 0 {
		t.Fatalf("within min.compaction.lag.ms: %+v ran %v %v", res, ran, err)
	}
	clk.ms += 20_000
	if res, ran, err := l.CompactIfDirty(); err != nil || !ran || res.RecordsRemoved != 1 {
		t.Fatalf("past min.compaction.lag.ms: %+v ran %v %v", res, ran, err)
	}
	if got := liveRecords(t, l); len(got) != 1 || got[2] != "k=v" {
		t.Fatalf("live records %v, want only k@2", got)
	}
	o.Compact = false
	l.SetOptions(o)
	put("4")
	put("5")
	if _, ran, _ := l.CompactIfDirty(); ran {
		t.Fatal("a log that is not compacted was cleaned")
	}
}

// TestCompactIfDirtyClosed: the broker's cleaner loop may reach a log whose topic is
// being deleted; CompactIfDirty on a closed log reports ErrClosed (it panicked slicing
// the segments Close had dropped: found by TestChaos).
func TestCompactIfDirtyClosed(t *testing.T) {
	clk := &fakeClock{ms: 1_000_000_000}
	o := testOptions(clk)
	o.Compact = true
	l := mustOpen(t, t.TempDir(), o)
	mustAppend(t, l, buildKeyed(clk.ms, kv{s("k"), s("v")}))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ran, err := l.CompactIfDirty(); ran || !errors.Is(err, ErrClosed) {
		t.Fatalf("CompactIfDirty on a closed log: ran %v, err %v; want ErrClosed", ran, err)
	}
}

// TestCompactLockOrder: Compact must not hold the segments lock (mu) while it waits for
// writeMu. An append holds writeMu and takes mu to roll a segment; with Compact reading
// the options under mu, the two waited for each other for ever and the partition froze:
// its produces, and the broker's retention and cleaner loops behind it (found by
// TestChaos). Here the test holds writeMu as an append does, waits until Compact is
// blocked on it, and then must be able to take mu.
func TestCompactLockOrder(t *testing.T) {
	clk := &fakeClock{ms: 1_000_000_000}
	o := testOptions(clk)
	o.Compact = true
	l := mustOpen(t, t.TempDir(), o)
	for _, v := range []string{"1", "2"} {
		mustAppend(t, l, buildKeyed(clk.ms, kv{s("k"), s(v)}))
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
	}
	l.writeMu.Lock() // an append in progress
	done := make(chan error, 1)
	go func() {
		_, err := l.Compact()
		done <- err
	}()
	waitMutexBlocked(t, "storage.(*Log).Compact(")
	if !l.mu.TryLock() { // as roll does, under writeMu
		l.writeMu.Unlock()
		<-done
		t.Fatal("Compact holds mu while it waits for writeMu: an append rolling a segment deadlocks with it")
	}
	l.mu.Unlock()
	l.writeMu.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitMutexBlocked waits until a goroutine whose stack holds frame is blocked on a
// sync.Mutex.
func waitMutexBlocked(t *testing.T, frame string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for range 10000 {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "[sync.Mutex.Lock") && strings.Contains(g, frame) {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no goroutine blocked on a mutex in %s", frame)
}

// FuzzDecompressRecords: any bytes under any codec give records or an error, never a
// panic or more than maxInflated bytes (a compacted topic's appends decompress what
// clients send).
func FuzzDecompressRecords(f *testing.F) {
	for codec := range 5 {
		for _, xerial := range []bool{false, true} {
			c, err := compressRecords(codec, []byte("seed records seed records"), xerial)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(codec), c)
		}
	}
	f.Fuzz(func(t *testing.T, codec uint8, data []byte) {
		out, _, err := decompressRecords(int(codec%8), data)
		if err == nil && len(out) > maxInflated {
			t.Fatalf("%d bytes out", len(out))
		}
	})
}

// TestCompactBoundedKeyMap: with more dirty keys than CleanerMaxKeys a pass cleans up to
// the last segment it mapped and the next passes go on from there, ending where one
// unbounded pass would.
func TestCompactBoundedKeyMap(t *testing.T) {
	o := testOptions(nil)
	o.Compact, o.CleanerMaxKeys = true, 2
	l := mustOpen(t, t.TempDir(), o)
	for _, seg := range [][2]string{{"a", "b"}, {"c", "d"}, {"a", "c"}} {
		mustAppend(t, l, buildKeyed(1, kv{s(seg[0]), s("v")}, kv{s(seg[1]), s("v")}))
		l.Roll()
	}
	var removed []int64
	for range 3 {
		res, err := l.Compact()
		if err != nil {
			t.Fatal(err)
		}
		removed = append(removed, res.RecordsRemoved)
	}
	// Pass 1 maps {a, b} and cleans segment 0; pass 2 maps {c, d} and cleans up to
	// segment 1; pass 3 maps {a, c} and drops a@0 and c@2.
	if fmt.Sprint(removed) != "[0 0 2]" {
		t.Fatalf("records removed per pass %v, want [0 0 2]", removed)
	}
	want := map[int64]string{1: "b=v", 3: "d=v", 4: "a=v", 5: "c=v"}
	if got := liveRecords(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the passes:\n got %v\nwant %v", got, want)
	}
}

// TestCompactDeletesEmptiedSegments: segments whose records were all superseded are
// deleted, but the first (the log start offset stays) and the active one; reads step
// over their offsets, and a reopened log is the same.
func TestCompactDeletesEmptiedSegments(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(nil)
	o.Compact = true
	l := mustOpen(t, dir, o)
	for _, k := range []string{"a", "a", "a", "b"} { // segments 0–3: a@0 a@1 a@2 b@3
		mustAppend(t, l, buildKeyed(1, kv{s(k), s("v")}))
		l.Roll()
	}
	res, err := l.Compact()
	if err != nil || res.RecordsRemoved != 2 || res.SegmentsDeleted != 1 {
		t.Fatalf("Compact: %+v %v", res, err)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) != 4 { // 0 (empty, first), 2, 3, active 4
		t.Fatalf("segment files %v", logs)
	}
	want := map[int64]string{2: "a=v", 3: "b=v"}
	if got := liveRecords(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("live records %v, want %v", got, want)
	}
	if r, err := l.Read(1, 1<<20); err != nil || r.FirstOffset() != 2 {
		t.Fatalf("Read(1): first %d, %v", r.FirstOffset(), err)
	}
	start, hw := l.LogStartOffset(), l.HighWatermark()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, o)
	if got := liveRecords(t, l); fmt.Sprint(got) != fmt.Sprint(want) || l.LogStartOffset() != start || l.HighWatermark() != hw {
		t.Fatalf("reopened: %v, start %d hw %d (was %d, %d)", got, l.LogStartOffset(), l.HighWatermark(), start, hw)
	}
}

// FuzzCheckKeys: a compacted log's key check takes any records section (what a client
// sends, decompressed) without a panic.
func FuzzCheckKeys(f *testing.F) {
	b := buildKeyed(1, kv{s("k"), s("v")}, kv{nil, s("v")}, kv{s("t"), nil})
	f.Add(b[BatchHeaderSize:], int32(3))
	f.Fuzz(func(t *testing.T, body []byte, count int32) {
		h := BatchHeader{RecordCount: count}
		_ = parseRecords(body, &h, func(r *recordView) {
			if r.hasKey && len(r.raw) < len(r.key) {
				t.Fatalf("key of %d bytes in a record of %d", len(r.key), len(r.raw))
			}
		})
	})
}

// TestCleanerCheckpointSurvivesRestart: where the cleaner's last pass ended is kept in
// cleaner-offset-checkpoint ("N\n"), so a reopened log is not all dirty again; a
// checkpoint past the log's end (segments a power cut took back) is capped at the end.
func TestCleanerCheckpointSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(nil)
	o.Compact, o.MinCleanableDirtyRatio = true, 0.1
	l := mustOpen(t, dir, o)
	for _, k := range []string{"a", "a", "b"} {
		mustAppend(t, l, buildKeyed(1, kv{s(k), s("v")}))
		l.Roll()
	}
	if _, ran, err := l.CompactIfDirty(); err != nil || !ran {
		t.Fatalf("first pass: ran %v, %v", ran, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cleaner-offset-checkpoint")); err != nil || string(b) != "3\n" {
		t.Fatalf("checkpoint %q, %v", b, err)
	}
	l.Close()
	l = mustOpen(t, dir, o)
	if _, ran, err := l.CompactIfDirty(); err != nil || ran {
		t.Fatalf("after a restart the cleaned log was cleaned again (%v)", err)
	}
	mustAppend(t, l, buildKeyed(1, kv{s("b"), s("v")}))
	l.Roll()
	if res, ran, err := l.CompactIfDirty(); err != nil || !ran || res.RecordsRemoved != 1 {
		t.Fatalf("new data after the restart: %+v ran %v %v", res, ran, err)
	}
	l.Close()

	if err := os.WriteFile(filepath.Join(dir, "cleaner-offset-checkpoint"), []byte("1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, o)
	defer l.Close()
	if got, end := l.cleanedTo.Load(), l.HighWatermark(); got != end {
		t.Fatalf("checkpoint past the end read as %d, log end %d", got, end)
	}
}

// TestMaxCompactionLag: a log whose dirty part is below min.cleanable.dirty.ratio is
// cleaned anyway once its first dirty batch is max.compaction.lag.ms old.
func TestMaxCompactionLag(t *testing.T) {
	clk := &fakeClock{ms: 1_000_000_000}
	o := testOptions(clk)
	o.Compact, o.MinCleanableDirtyRatio = true, 0.9
	l := mustOpen(t, t.TempDir(), o)
	for _, k := range []string{"a", "b", "c", "d"} {
		mustAppend(t, l, buildKeyed(clk.ms, kv{s(k), s("v")}))
		l.Roll()
	}
	if _, ran, err := l.CompactIfDirty(); err != nil || !ran { // all dirty: ratio 1
		t.Fatalf("first pass: ran %v, %v", ran, err)
	}
	mustAppend(t, l, buildKeyed(clk.ms, kv{s("a"), s("w")}))
	l.Roll()
	if _, ran, _ := l.CompactIfDirty(); ran {
		t.Fatal("cleaned at a dirty ratio of 0.2 < 0.9")
	}
	o.MaxCompactionLagMS = 60_000
	l.SetOptions(o)
	if _, ran, _ := l.CompactIfDirty(); ran {
		t.Fatal("cleaned before max.compaction.lag.ms")
	}
	clk.ms += 61_000
	if res, ran, err := l.CompactIfDirty(); err != nil || !ran || res.RecordsRemoved != 1 {
		t.Fatalf("past max.compaction.lag.ms: %+v ran %v %v", res, ran, err)
	}
}
