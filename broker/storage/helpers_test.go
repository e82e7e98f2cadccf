package storage

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

// batchSpec describes a RecordBatch v2 to build in tests.
type batchSpec struct {
	records   int
	valueSize int
	baseTs    int64 // first record's timestamp; record i gets baseTs+i
	pid       int64 // -1: not idempotent
	epoch     int16
	seq       int32
	codec     int16 // compression bits only (the body is not really compressed)
}

func plain(records, valueSize int, ts int64) batchSpec {
	return batchSpec{records: records, valueSize: valueSize, baseTs: ts, pid: -1, epoch: -1, seq: -1}
}

// buildBatch encodes a RecordBatch v2 the way a producer does (base offset 0, CRC32C),
// each record with a key "k<i>" and a value of valueSize bytes.
func buildBatch(s batchSpec) []byte {
	var recs []byte
	for i := 0; i < s.records; i++ {
		var r []byte
		r = append(r, 0) // attributes
		r = binary.AppendVarint(r, int64(i))
		r = binary.AppendVarint(r, int64(i))
		key := []byte{'k', byte('0' + i%10)}
		r = binary.AppendVarint(r, int64(len(key)))
		r = append(r, key...)
		r = binary.AppendVarint(r, int64(s.valueSize))
		for j := 0; j < s.valueSize; j++ {
			r = append(r, byte('a'+(i+j)%26))
		}
		r = binary.AppendVarint(r, 0) // headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+len(recs))
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(BatchHeaderSize-batchLogOverhead+len(recs)))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], 0xffffffff)
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(s.codec))
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(s.records-1))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(s.baseTs))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(s.baseTs+int64(s.records)-1))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(s.pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(s.epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(s.seq))
	binary.BigEndian.PutUint32(b[offRecordCount:], uint32(s.records))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// fakeClock is an injected Now.
type fakeClock struct{ ms int64 }

func (c *fakeClock) Now() time.Time { return time.UnixMilli(c.ms) }

func testOptions(c *fakeClock) Options {
	o := DefaultOptions()
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if c != nil {
		o.Now = c.Now
	}
	return o
}

func mustOpen(t testing.TB, dir string, o Options) *Log {
	t.Helper()
	l, err := OpenLog(dir, o)
	if err != nil {
		t.Fatalf("OpenLog: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustAppend(t testing.TB, l *Log, b []byte) AppendResult {
	t.Helper()
	r, err := l.Append(b)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return r
}

// readAll reads every batch from offset to the end and returns their headers.
func readAll(t testing.TB, l *Log, from int64) []BatchHeader {
	t.Helper()
	var out []BatchHeader
	for off := from; off < l.HighWatermark(); {
		r, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		b, err := r.Bytes()
		r.Close()
		if err != nil {
			t.Fatalf("Bytes: %v", err)
		}
		if len(b) == 0 {
			t.Fatalf("Read(%d) returned nothing below the high watermark %d", off, l.HighWatermark())
		}
		for len(b) > 0 {
			h, n, err := ParseBatch(b, 0)
			if err != nil {
				t.Fatalf("read back a bad batch at offset %d: %v", off, err)
			}
			out = append(out, h)
			b = b[n:]
			off = h.LastOffset() + 1
		}
	}
	return out
}

func crcOf(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// noSync turns fsync off for the rest of the test.
func noSync(t testing.TB) {
	orig := syncFile
	syncFile = func(*os.File) error { return nil }
	t.Cleanup(func() { syncFile = orig })
}
