package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseBatch feeds arbitrary bytes to the batch parser Append relies on: it must
// never panic, and whatever it accepts must be a self-consistent batch.
func FuzzParseBatch(f *testing.F) {
	good := buildBatch(plain(3, 10, 1))
	f.Add([]byte{})                 // zero length
	f.Add(good[:BatchHeaderSize-1]) // one byte short of a header
	f.Add(good)
	maxLen := bytes.Clone(good) // max length field
	binary.BigEndian.PutUint32(maxLen[offBatchLength:], math.MaxInt32)
	f.Add(maxLen)
	negLen := bytes.Clone(good)
	binary.BigEndian.PutUint32(negLen[offBatchLength:], 0x80000000)
	f.Add(negLen)
	badCRC := bytes.Clone(good)
	badCRC[offCRC] ^= 0xff
	f.Add(badCRC)
	f.Add(append(bytes.Clone(good), good...))
	f.Add(idem(1, 0, 0, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, limit := range []int32{0, 100, 1048588} {
			h, n, err := ParseBatch(b, limit)
			if err != nil {
				if !errors.Is(err, ErrCorruptMessage) && !errors.Is(err, ErrInvalidRecord) && !errors.Is(err, ErrBatchTooLarge) {
					t.Fatalf("unclassified error %v", err)
				}
				continue
			}
			if n != h.Size() || n > len(b) || n < BatchHeaderSize || (limit > 0 && n > int(limit)) {
				t.Fatalf("accepted size %d of %d bytes (header %+v)", n, len(b), h)
			}
			if h.Magic != 2 || crcOf(b[offAttributes:n]) != h.CRC || int64(h.RecordCount) != int64(h.LastOffsetDelta)+1 {
				t.Fatalf("accepted a bad batch %+v", h)
			}
		}
	})
}

// FuzzRecoverTail appends arbitrary bytes to a valid segment and reopens it: recovery
// must keep every good batch, drop only what follows the last good one, and leave a log
// that takes appends at the right offset.
func FuzzRecoverTail(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Add(buildBatch(plain(2, 5, 1)))
	g := buildBatch(plain(2, 5, 1))
	binary.BigEndian.PutUint64(g, 6) // a good batch continuing the log
	f.Add(g)
	f.Add(g[:40])
	var base []byte
	for i := range 3 {
		b := buildBatch(plain(2, 5, 1))
		binary.BigEndian.PutUint64(b, uint64(2*i))
		base = append(base, b...)
	}
	orig := syncFile // fsync latency on a shared disk would stall the fuzzer
	syncFile = func(*os.File) error { return nil }
	defer func() { syncFile = orig }()
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(0, ".log")), append(bytes.Clone(base), tail...), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := OpenLog(dir, testOptions(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if l.HighWatermark() < 6 || l.Size() < int64(len(base)) || l.Size() > int64(len(base)+len(tail)) {
			t.Fatalf("recovery lost good data: hw %d size %d", l.HighWatermark(), l.Size())
		}
		got := readAll(t, l, 0)
		if len(got) < 3 {
			t.Fatalf("%d batches", len(got))
		}
		hw := l.HighWatermark()
		if r, err := l.Append(buildBatch(plain(1, 1, 1))); err != nil || r.BaseOffset != hw {
			t.Fatalf("append after recovery: %+v %v", r, err)
		}
	})
}

// FuzzDecodeSnapshot: a damaged producer snapshot is refused, never a panic or a huge
// allocation; an accepted one round-trips.
func FuzzDecodeSnapshot(f *testing.F) {
	ps := newProducerState()
	for i := range 3 {
		h := decodeHeader(idem(int64(i), 1, 0, 2))
		ps.update(&h, 5, 6)
	}
	good := ps.encode()
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte("TPPS"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, open, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		again := (&producerState{m: m, open: open}).encode()
		m2, open2, err := decodeSnapshot(again)
		if err != nil || len(m2) != len(m) || len(open2) != len(open) {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
	})
}
