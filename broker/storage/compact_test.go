package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

type kv struct {
	key, value *string // nil key: no key; nil value: tombstone
}

func s(v string) *string { return &v }

// buildKeyed encodes an uncompressed batch of the given records at timestamp ts.
func buildKeyed(ts int64, recs ...kv) []byte {
	var body []byte
	for i, r := range recs {
		var b []byte
		b = append(b, 0)
		b = binary.AppendVarint(b, 0)
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
	binary.BigEndian.PutUint64(h[offBaseTimestamp:], uint64(ts))
	binary.BigEndian.PutUint64(h[offMaxTimestamp:], uint64(ts))
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
			if h.Compression() == 0 {
				if err := parseRecords(b[:n], &h, func(r *recordView) {
					v := "<nil>"
					if !r.tombstone {
						v = "v" // values checked by key below
					}
					out[r.offset] = string(r.key) + "=" + v
				}); err != nil {
					t.Fatal(err)
				}
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
