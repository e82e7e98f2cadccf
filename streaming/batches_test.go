package streaming

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// testRec is a record of a test batch, at offset base+delta.
type testRec struct {
	delta      int64
	key, value []byte
	headers    []Header
}

// testBatch describes a v2 record batch to encode.
type testBatch struct {
	base     int64
	attrs    uint16 // transactional 0x10, control 0x20, log-append time 0x08
	codec    kgo.CompressionCodec
	producer int64
	time     int64 // base timestamp (ms); records are at base+delta ms
	maxTime  int64
	recs     []testRec
	magic    byte // 0 means 2
}

// encode lays b out as a broker sends it.
func (b testBatch) encode(t testing.TB) []byte {
	var recs []byte
	for _, r := range b.recs {
		var body []byte
		body = append(body, 0)
		body = binary.AppendVarint(body, r.delta) // timestamp delta
		body = binary.AppendVarint(body, r.delta)
		body = appendField(body, r.key)
		body = appendField(body, r.value)
		body = binary.AppendVarint(body, int64(len(r.headers)))
		for _, h := range r.headers {
			body = appendField(body, []byte(h.Key))
			body = appendField(body, h.Value)
		}
		recs = binary.AppendVarint(recs, int64(len(body)))
		recs = append(recs, body...)
	}
	attrs := b.attrs
	if b.codec != (kgo.CompressionCodec{}) {
		c, err := kgo.DefaultCompressor(b.codec)
		if err != nil {
			t.Fatal(err)
		}
		var codec kgo.CompressionCodecType
		recs, codec = c.Compress(new(bytes.Buffer), recs)
		recs = bytes.Clone(recs)
		attrs |= uint16(codec)
	}
	magic := b.magic
	if magic == 0 {
		magic = 2
	}
	var last int64
	if n := len(b.recs); n > 0 {
		last = b.recs[n-1].delta
	}
	out := binary.BigEndian.AppendUint64(nil, uint64(b.base))
	out = binary.BigEndian.AppendUint32(out, uint32(batchHeaderSize-12+len(recs)))
	out = binary.BigEndian.AppendUint32(out, 0) // leader epoch
	out = append(out, magic)
	out = binary.BigEndian.AppendUint32(out, 0) // CRC, below
	out = binary.BigEndian.AppendUint16(out, attrs)
	out = binary.BigEndian.AppendUint32(out, uint32(last))
	out = binary.BigEndian.AppendUint64(out, uint64(b.time))
	out = binary.BigEndian.AppendUint64(out, uint64(b.maxTime))
	out = binary.BigEndian.AppendUint64(out, uint64(b.producer))
	out = binary.BigEndian.AppendUint16(out, 0) // producer epoch
	out = binary.BigEndian.AppendUint32(out, 0) // base sequence
	out = binary.BigEndian.AppendUint32(out, uint32(len(b.recs)))
	out = append(out, recs...)
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32c))
	return out
}

func appendField(b, v []byte) []byte {
	if v == nil {
		return binary.AppendVarint(b, -1)
	}
	return append(binary.AppendVarint(b, int64(len(v))), v...)
}

// marker is a control batch (a commit or abort marker) of producer at offset.
func marker(producer, offset int64, commit bool) testBatch {
	typ := byte(0)
	if commit {
		typ = 1
	}
	return testBatch{base: offset, attrs: 0x30, producer: producer,
		recs: []testRec{{key: []byte{0, 0, 0, typ}, value: []byte{0, 0, 0, 0, 0, 1}}}}
}

// data is a batch of producer at base holding values vals (offsets base, base+1, ...).
func data(producer, base int64, transactional bool, vals ...string) testBatch {
	b := testBatch{base: base, producer: producer, time: 1_700_000_000_000}
	if transactional {
		b.attrs = 0x10
	}
	for i, v := range vals {
		b.recs = append(b.recs, testRec{delta: int64(i), value: []byte(v)})
	}
	return b
}

func encodeAll(t testing.TB, bs ...testBatch) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b.encode(t)...)
	}
	return out
}

// walked describes what a walk read: values with offsets, and where it stopped.
func walked(w *batchWalk) string {
	var s []string
	for _, r := range w.out {
		s = append(s, fmt.Sprintf("%d:%s", r.Offset, r.Value))
	}
	return fmt.Sprintf("[%s] next=%d beyond=%v partial=%v", strings.Join(s, " "), w.next, w.beyond, w.partial)
}

func TestBatchWalk(t *testing.T) {
	gz, snappy, lz4, zstd := kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()
	compressed := func(b testBatch, c kgo.CompressionCodec) testBatch { b.codec = c; return b }
	for _, c := range []struct {
		name      string
		r         [2]int64 // From, Until
		committed bool
		responses [][]testBatch
		aborted   []abortedTxn // listed in every response
		want      string
	}{
		{name: "plain", r: [2]int64{0, 10}, responses: [][]testBatch{{data(-1, 0, false, "a", "b"), data(-1, 2, false, "c")}},
			want: "[0:a 1:b 2:c] next=3 beyond=false partial=false"},
		{name: "range cuts batches", r: [2]int64{1, 3}, responses: [][]testBatch{{data(-1, 0, false, "a", "b"), data(-1, 2, false, "c", "d")}},
			want: "[1:b 2:c] next=3 beyond=true partial=false"},
		{name: "markers skipped", r: [2]int64{0, 10}, responses: [][]testBatch{{data(7, 0, true, "a", "b"), marker(7, 2, true), data(7, 3, true, "c"), marker(7, 4, false)}},
			want: "[0:a 1:b 3:c] next=5 beyond=false partial=false"},
		{name: "compressed markers skipped", r: [2]int64{0, 10}, responses: [][]testBatch{{data(7, 0, true, "a"), compressed(marker(7, 1, true), gz), compressed(marker(7, 2, false), zstd)}},
			want: "[0:a] next=3 beyond=false partial=false"},
		{name: "marker at the end of the range", r: [2]int64{0, 2}, responses: [][]testBatch{{data(7, 0, true, "a", "b"), marker(7, 2, true)}},
			want: "[0:a 1:b] next=2 beyond=true partial=false"},
		{name: "codecs", r: [2]int64{0, 10}, responses: [][]testBatch{{
			compressed(data(-1, 0, false, "a", "b"), gz), compressed(data(-1, 2, false, "c"), snappy),
			compressed(data(-1, 3, false, "d"), lz4), compressed(data(-1, 4, false, "e", "f"), zstd)}},
			want: "[0:a 1:b 2:c 3:d 4:e 5:f] next=6 beyond=false partial=false"},
		{name: "read_committed drops aborted", r: [2]int64{0, 20}, committed: true,
			responses: [][]testBatch{{data(7, 0, true, "c1"), data(8, 1, true, "a1", "a2"), data(7, 3, true, "c2"), marker(7, 4, true),
				data(8, 5, true, "a3"), marker(8, 6, false), data(8, 7, true, "c3"), marker(8, 8, true), data(-1, 9, false, "n")}},
			aborted: []abortedTxn{{8, 1}},
			want:    "[0:c1 3:c2 7:c3 9:n] next=10 beyond=false partial=false"},
		{name: "read_uncommitted keeps aborted", r: [2]int64{0, 20},
			responses: [][]testBatch{{data(8, 0, true, "a1"), marker(8, 1, false)}},
			aborted:   []abortedTxn{{8, 0}},
			want:      "[0:a1] next=2 beyond=false partial=false"},
		{name: "aborted transaction spanning fetches", r: [2]int64{0, 20}, committed: true,
			responses: [][]testBatch{{data(8, 0, true, "a1"), data(7, 1, true, "c1")}, {data(8, 2, true, "a2"), compressed(data(8, 3, true, "a3"), snappy), marker(8, 4, false), marker(7, 5, true)}},
			aborted:   []abortedTxn{{8, 0}},
			want:      "[1:c1] next=6 beyond=false partial=false"},
		{name: "aborted batch past the range", r: [2]int64{0, 2}, committed: true,
			responses: [][]testBatch{{data(7, 0, true, "c1"), data(8, 1, true, "a1", "a2", "a3")}},
			aborted:   []abortedTxn{{8, 1}},
			want:      "[0:c1] next=2 beyond=true partial=false"},
		{name: "batch before the range", r: [2]int64{5, 10}, responses: [][]testBatch{{data(-1, 0, false, "a", "b"), data(-1, 5, false, "c")}},
			want: "[5:c] next=6 beyond=false partial=false"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := batchWalk{r: OffsetRange{"t", 0, c.r[0], c.r[1]}, committed: c.committed, next: c.r[0]}
			for _, resp := range c.responses {
				if err := w.add(encodeAll(t, resp...), append([]abortedTxn(nil), c.aborted...)); err != nil {
					t.Fatal(err)
				}
			}
			if got := walked(&w); got != c.want {
				t.Fatalf("walked %s\nwant   %s", got, c.want)
			}
		})
	}
}

// A record's fields: key, value (null and empty), headers, timestamps (create time, or
// the batch's max timestamp with log-append time); appending to a value leaves the
// next record alone.
func TestBatchWalkRecordFields(t *testing.T) {
	b := testBatch{base: 10, time: 1_700_000_000_000, recs: []testRec{
		{delta: 0, key: []byte("k"), value: []byte("v"), headers: []Header{{"h1", []byte("x")}, {"h2", nil}}},
		{delta: 2, key: nil, value: []byte{}},
		{delta: 3, value: nil},
	}}
	logAppend := b
	logAppend.base, logAppend.attrs, logAppend.maxTime = 20, 0x08, 1_800_000_000_000
	w := batchWalk{r: OffsetRange{"t", 3, 0, 100}}
	if err := w.add(encodeAll(t, b, logAppend), nil); err != nil {
		t.Fatal(err)
	}
	if len(w.out) != 6 {
		t.Fatalf("read %d records, want 6", len(w.out))
	}
	r := w.out[0]
	if r.Topic != "t" || r.Partition != 3 || r.Offset != 10 || string(r.Key) != "k" || string(r.Value) != "v" ||
		!r.Time.Equal(time.UnixMilli(1_700_000_000_000)) || fmt.Sprintf("%q", r.Headers) != `[{"h1" "x"} {"h2" ""}]` || r.Headers[1].Value != nil {
		t.Fatalf("first record %+v", r)
	}
	if r := w.out[1]; r.Offset != 12 || r.Key != nil || r.Value == nil || len(r.Value) != 0 || !r.Time.Equal(time.UnixMilli(1_700_000_000_002)) {
		t.Fatalf("second record %+v", r)
	}
	if r := w.out[2]; r.Value != nil {
		t.Fatalf("a null value read as %q", r.Value)
	}
	if r := w.out[3]; r.Offset != 20 || !r.Time.Equal(time.UnixMilli(1_800_000_000_000)) {
		t.Fatalf("log-append record %+v, want the batch's max timestamp", r)
	}
	_ = append(w.out[0].Value, "XXXX"...)
	if string(w.out[0].Key) != "k" || string(w.out[1].Value) != "" || string(w.out[0].Headers[0].Value) != "x" {
		t.Fatal("an append to a value wrote over another field")
	}
	if w.bytes != 4 { // "k", "v" in each batch
		t.Fatalf("counted %d bytes of keys and values, want 4", w.bytes)
	}
	// A batch without timestamps (base -1, Kafka's NO_TIMESTAMP) gives records with none.
	none := testBatch{base: 30, time: -1, maxTime: -1, recs: []testRec{{delta: 0, value: []byte("a")}}}
	noneLogAppend := none
	noneLogAppend.base, noneLogAppend.attrs = 31, 0x08
	w = batchWalk{r: OffsetRange{"t", 3, 30, 100}}
	if err := w.add(encodeAll(t, none, noneLogAppend), nil); err != nil {
		t.Fatal(err)
	}
	if len(w.out) != 2 || !w.out[0].Time.IsZero() || !w.out[1].Time.IsZero() {
		t.Fatalf("records of batches without timestamps: %+v", w.out)
	}
}

// A response cut anywhere reads the whole batches (or v0/v1 messages) before the cut
// and says partial; fed again from where it stopped (the broker's answer at w.next),
// the walk reads the rest, as if whole.
func TestBatchWalkTruncated(t *testing.T) {
	v2 := &testLog{}
	for _, b := range []testBatch{data(-1, 0, false, "a", "b"), marker(-1, 2, true), lz4Batch(data(-1, 3, false, "c", "d", "e"))} {
		v2.add(b.base+int64(len(b.recs))-1, b.encode(t))
	}
	for name, l := range map[string]*testLog{"v2": v2, "v0/v1": oldLog(t)} {
		raw := l.read(0, 1<<30)
		ends := map[int]bool{0: true} // cuts between entries
		n := 0
		for _, e := range l.entries {
			n += len(e.raw)
			ends[n] = true
		}
		whole := batchWalk{r: OffsetRange{"t", 0, 0, 100}}
		if err := whole.add(raw, nil); err != nil {
			t.Fatal(err)
		}
		for cut := range len(raw) {
			w := batchWalk{r: OffsetRange{"t", 0, 0, 100}}
			if err := w.add(raw[:cut], nil); err != nil {
				t.Fatalf("%s cut at %d: %v", name, cut, err)
			}
			if w.partial == ends[cut] {
				t.Fatalf("%s cut at %d: %s", name, cut, walked(&w))
			}
			if err := w.add(l.read(w.next, 1<<30), nil); err != nil {
				t.Fatalf("%s cut at %d, rest: %v", name, cut, err)
			}
			if got, want := walked(&w), walked(&whole); got != want {
				t.Fatalf("%s cut at %d: walked %s, want %s", name, cut, got, want)
			}
		}
	}
}

func lz4Batch(b testBatch) testBatch { b.codec = kgo.Lz4Compression(); return b }

func TestBatchWalkErrors(t *testing.T) {
	good := data(-1, 0, false, "a", "b").encode(t)
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	v3 := data(-1, 0, false, "a").encode(t)
	v3[16] = 3
	shortLen := bytes.Clone(good)
	binary.BigEndian.PutUint32(shortLen[8:], 10)
	// A record whose length runs past the batch, with a good CRC.
	longRec := bytes.Clone(good)
	longRec[batchHeaderSize] = 0x7e
	binary.BigEndian.PutUint32(longRec[17:], crc32.Checksum(longRec[21:], crc32c))
	// More records counted than the batch holds.
	moreRecs := bytes.Clone(good)
	binary.BigEndian.PutUint32(moreRecs[57:], 3)
	binary.BigEndian.PutUint32(moreRecs[17:], crc32.Checksum(moreRecs[21:], crc32c))
	badCodec := bytes.Clone(good)
	badCodec[22] |= 2 // snappy, but the records are not
	binary.BigEndian.PutUint32(badCodec[17:], crc32.Checksum(badCodec[21:], crc32c))
	for _, c := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"bad CRC", badCRC, "CRC mismatch"},
		{"magic 3", v3, "unknown magic 3"},
		{"length below the header", shortLen, "below the header"},
		{"record past the batch", longRec, "bad length"},
		{"records missing", moreRecs, "2 records, want 3"},
		{"bad compressed data", badCodec, "cannot decompress"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := batchWalk{r: OffsetRange{"t", 0, 0, 100}}
			err := w.add(c.raw, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one with %q", err, c.want)
			}
		})
	}
}

// FuzzBatchWalk feeds the walker any bytes (with fix, the first batch's or v0/v1
// message's CRC made right so the records get decoded; seeds of both formats): it never panics, and what it reads stays in the range, in
// offset order, behind next.
func FuzzBatchWalk(f *testing.F) {
	f.Add([]byte{}, false, false)
	f.Add(make([]byte, 61), true, false)
	f.Add(encodeAll(f, data(-1, 0, false, "a", "b"), marker(-1, 2, true)), false, true)
	f.Add(encodeAll(f, data(8, 0, true, "a"), data(7, 1, true, "b"), marker(8, 2, false)), false, true)
	f.Add(encodeAll(f, lz4Batch(data(-1, 0, false, "a", "b"))), false, false)
	rec := testBatch{base: 3, recs: []testRec{{delta: 1, key: []byte("k"), value: []byte("v"), headers: []Header{{"h", []byte("x")}}}}}
	f.Add(rec.encode(f), true, false)
	for _, raw := range legacySeeds(f) {
		f.Add(raw, true, false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, fix, committed bool) {
		if fix && len(raw) >= 17 && raw[16] < 2 {
			// A message of magic 0/1: its CRC.
			if l := int(int32(binary.BigEndian.Uint32(raw[8:]))); l >= 4 && l+12 <= len(raw) {
				binary.BigEndian.PutUint32(raw[12:], crc32.ChecksumIEEE(raw[16:12+l]))
			}
		} else if fix && len(raw) >= batchHeaderSize {
			if l := int(int32(binary.BigEndian.Uint32(raw[8:]))); l >= batchHeaderSize-12 && l+12 <= len(raw) {
				binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:12+l], crc32c))
			}
		}
		w := batchWalk{r: OffsetRange{"t", 0, 1, 1000}, committed: committed, next: 1}
		_ = w.add(raw, []abortedTxn{{8, 0}})
		prev := int64(0)
		for _, r := range w.out {
			if r.Offset <= prev || r.Offset >= w.r.Until || r.Offset >= w.next {
				t.Fatalf("record at %d after %d (next %d)", r.Offset, prev, w.next)
			}
			prev = r.Offset
		}
		if w.next < w.r.From || w.next > w.r.Until {
			t.Fatalf("next %d out of the range", w.next)
		}
	})
}

// An empty value (or key) first in a walk, before anything is in the arena, stays empty:
// not null, which would make it a tombstone.
func TestBatchWalkEmptyFirstValue(t *testing.T) {
	w := batchWalk{r: OffsetRange{"t", 0, 0, 100}}
	b := testBatch{recs: []testRec{{key: []byte{}, value: []byte{}}}}
	if err := w.add(b.encode(t), nil); err != nil {
		t.Fatal(err)
	}
	if r := w.out[0]; r.Key == nil || r.Value == nil {
		t.Fatalf("empty key and value read as key %v value %v", r.Key == nil, r.Value == nil)
	}
}
