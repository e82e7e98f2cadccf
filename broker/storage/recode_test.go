package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"
)

// richBatch is an uncompressed producer batch of n records with everything a record
// can carry: keys (one null), values (one null), headers (one with a null value) and
// timestamp deltas that go back and forth around base.
func richBatch(base int64, n int) []byte {
	var body []byte
	maxTs := base
	for i := 0; i < n; i++ {
		delta := int64((i*37)%11) - 3
		maxTs = max(maxTs, base+delta)
		r := []byte{0}
		r = binary.AppendVarint(r, delta)
		r = binary.AppendVarint(r, int64(i))
		appendField := func(r []byte, f []byte, null bool) []byte {
			if null {
				return binary.AppendVarint(r, -1)
			}
			return append(binary.AppendVarint(r, int64(len(f))), f...)
		}
		r = appendField(r, fmt.Appendf(nil, "key-%d", i), i == 3)
		r = appendField(r, bytes.Repeat(fmt.Appendf(nil, "value %d ", i), 1+i%5), i == 5)
		r = binary.AppendVarint(r, 2) // headers
		r = appendField(r, []byte("h1"), false)
		r = appendField(r, fmt.Appendf(nil, "hv-%d", i), false)
		r = appendField(r, []byte("h2"), false)
		r = appendField(r, nil, true)
		body = binary.AppendVarint(body, int64(len(r)))
		body = append(body, r...)
	}
	h := make([]byte, BatchHeaderSize)
	binary.BigEndian.PutUint32(h[offBatchLength:], uint32(BatchHeaderSize-batchLogOverhead+len(body)))
	binary.BigEndian.PutUint32(h[offLeaderEpoch:], 0xffffffff)
	h[offMagic] = 2
	binary.BigEndian.PutUint32(h[offLastOffsetDelta:], uint32(n-1))
	binary.BigEndian.PutUint64(h[offBaseTimestamp:], uint64(base))
	binary.BigEndian.PutUint64(h[offMaxTimestamp:], uint64(maxTs))
	binary.BigEndian.PutUint64(h[offProducerID:], ^uint64(0))
	binary.BigEndian.PutUint16(h[offProducerEpoch:], 0xffff)
	binary.BigEndian.PutUint32(h[offBaseSequence:], 0xffffffff)
	binary.BigEndian.PutUint32(h[offRecordCount:], uint32(n))
	b := append(h, body...)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// withProducer sets a batch's producer id, epoch, base sequence and extra attribute bits
// (transactional) and recomputes its CRC.
func withProducer(b []byte, pid int64, epoch int16, seq int32, attrs int16) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(seq))
	binary.BigEndian.PutUint16(b[offAttributes:], binary.BigEndian.Uint16(b[offAttributes:])|uint16(attrs))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

type codecCase struct {
	name   string
	codec  int
	xerial bool
}

var sourceCodecs = []codecCase{{"none", codecNone, false}, {"gzip", codecGzip, false}, {"snappy", codecSnappy, false},
	{"snappy-xerial", codecSnappy, true}, {"lz4", codecLZ4, false}, {"zstd", codecZstd, false}}

// encode is an uncompressed batch with its records compressed by c, its other
// attribute bits kept.
func (c codecCase) encode(t testing.TB, plainBatch []byte) []byte {
	t.Helper()
	out := bytes.Clone(plainBatch[:BatchHeaderSize])
	out, err := appendCompressed(out, c.codec, plainBatch[BatchHeaderSize:], c.xerial)
	if err != nil {
		t.Fatal(err)
	}
	attrs := binary.BigEndian.Uint16(out[offAttributes:])&^attrCompressionMask | uint16(c.codec)
	binary.BigEndian.PutUint16(out[offAttributes:], attrs)
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-batchLogOverhead))
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	return out
}

// storedBatches reads every stored batch of l as the network gets it, checking each.
func storedBatches(t *testing.T, l *Log) [][]byte {
	t.Helper()
	r, err := l.Read(0, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Bytes()
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for len(b) > 0 {
		_, n, err := ParseBatch(b, 0) // CRC, length, magic, record count
		if err != nil {
			t.Fatalf("stored batch %d: %v", len(out), err)
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// sameExceptCodec fails unless stored is sent (an uncompressed batch) re-encoded: every
// header field but the base offset, leader epoch, codec bits, length and CRC as sent, and
// the records, decompressed, byte for byte those sent, at dense offsets from base
// (base < 0: at the base offset 0, offsets not checked).
func sameExceptCodec(t *testing.T, stored, sent []byte, wantCodec int, base int64) {
	t.Helper()
	hs, hp := decodeHeader(stored), decodeHeader(sent)
	if hs.Compression() != wantCodec {
		t.Fatalf("stored codec %d, want %d", hs.Compression(), wantCodec)
	}
	if hs.BaseOffset != max(base, 0) {
		t.Fatalf("base offset %d, want %d", hs.BaseOffset, base)
	}
	if hs.Attributes&^attrCompressionMask != hp.Attributes&^attrCompressionMask {
		t.Fatalf("attributes %#x, sent %#x", hs.Attributes, hp.Attributes)
	}
	if !bytes.Equal(stored[offLastOffsetDelta:BatchHeaderSize], sent[offLastOffsetDelta:BatchHeaderSize]) {
		t.Fatalf("header after the attributes changed:\nstored %x\n  sent %x", stored[offLastOffsetDelta:BatchHeaderSize], sent[offLastOffsetDelta:BatchHeaderSize])
	}
	recs, xerial, err := decompressRecords(hs.Compression(), stored[BatchHeaderSize:])
	if err != nil {
		t.Fatal(err)
	}
	if wantCodec == codecSnappy && !xerial {
		t.Fatal("snappy stored without the xerial framing")
	}
	if !bytes.Equal(recs, sent[BatchHeaderSize:]) {
		t.Fatalf("records changed (%d bytes stored, %d sent)", len(recs), len(sent)-BatchHeaderSize)
	}
	if base < 0 { // records with any offset deltas (fuzzed)
		return
	}
	var offsets []int64
	if err := parseRecords(recs, &hs, func(r *recordView) { offsets = append(offsets, r.offset) }); err != nil {
		t.Fatal(err)
	}
	for i, o := range offsets {
		if o != base+int64(i) {
			t.Fatalf("record %d at offset %d, want %d", i, o, base+int64(i))
		}
	}
}

// TestAppendCompressionType: every codec appended to a log with every compression.type
// is stored in that codec (CRC valid, records and header as sent, offsets assigned),
// also after a restart; a batch already in the codec is stored as sent; producer
// stores every batch as sent.
func TestAppendCompressionType(t *testing.T) {
	for target := CompressionProducer; target <= CompressionZstd; target++ {
		for _, src := range sourceCodecs {
			t.Run(target.String()+"/"+src.name, func(t *testing.T) {
				o := testOptions(nil)
				o.Compression = target
				dir := t.TempDir()
				l, err := OpenLog(dir, o)
				if err != nil {
					t.Fatal(err)
				}
				plains := [][]byte{richBatch(1_000, 7), richBatch(2_000, 40), richBatch(3_000, 1)}
				var sent [][]byte
				for _, p := range plains {
					b := src.encode(t, p)
					sent = append(sent, bytes.Clone(b))
					mustAppend(t, l, b)
				}
				check := func(l *Log) {
					t.Helper()
					stored := storedBatches(t, l)
					if len(stored) != len(plains) {
						t.Fatalf("%d batches stored, want %d", len(stored), len(plains))
					}
					base := int64(0)
					for i, s := range stored {
						if target == CompressionProducer || src.codec == target.codec() {
							// as sent, but for the base offset and leader epoch the broker sets
							if decodeHeader(s).BaseOffset != base || !bytes.Equal(s[offBatchLength:offLeaderEpoch], sent[i][offBatchLength:offLeaderEpoch]) ||
								!bytes.Equal(s[offMagic:], sent[i][offMagic:]) {
								t.Fatalf("batch %d: not stored as sent", i)
							}
						} else {
							sameExceptCodec(t, s, plains[i], target.codec(), base)
						}
						base += int64(decodeHeader(s).LastOffsetDelta) + 1
					}
				}
				check(l)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = mustOpen(t, dir, o)
				check(l)
				if hw := l.HighWatermark(); hw != 48 {
					t.Fatalf("high watermark %d after restart, want 48", hw)
				}
			})
		}
	}
}

// TestAppendCompressionLevel: compression.gzip.level, compression.lz4.level and
// compression.zstd.level (KIP-390) change what a re-encoded batch is stored as — a low
// and a high level give different bytes, the high one no larger — and every level's
// batch reads back as the records sent; out-of-range levels fall back to the default.
// gzip's default (0, and Kafka's -1) is level 6, as Kafka's Deflater.
func TestAppendCompressionLevel(t *testing.T) {
	plain := richBatch(1_000, 200)
	for _, c := range []struct {
		target    Compression
		low, high int
	}{{CompressionGzip, 1, 9}, {CompressionLZ4, 1, 17}, {CompressionZstd, 1, 19}} {
		t.Run(c.target.String(), func(t *testing.T) {
			stored := map[int][]byte{}
			levels := []int{0, c.low, c.high}
			if c.target == CompressionGzip {
				levels = append(levels, -1, 6)
			}
			for _, level := range levels {
				o := testOptions(nil)
				o.Compression, o.CompressionLevel = c.target, level
				l := mustOpen(t, t.TempDir(), o)
				mustAppend(t, l, bytes.Clone(plain))
				bs := storedBatches(t, l)
				if len(bs) != 1 {
					t.Fatalf("level %d: %d batches stored", level, len(bs))
				}
				sameExceptCodec(t, bs[0], plain, c.target.codec(), 0)
				stored[level] = bs[0]
			}
			lo, hi := stored[c.low], stored[c.high]
			if bytes.Equal(lo, hi) || len(hi) > len(lo) {
				t.Fatalf("level %d: %d bytes, level %d: %d bytes: want different bytes, the high level no larger", c.low, len(lo), c.high, len(hi))
			}
			if c.target == CompressionGzip && (!bytes.Equal(stored[-1], stored[6]) || !bytes.Equal(stored[0], stored[6])) {
				t.Fatal("gzip's default level (-1 and 0) is not level 6")
			}
		})
	}
	if lz4Level(1) != 0 || lz4Level(9) != 5 || lz4Level(17) != 9 || lz4Level(0) != 0 {
		t.Fatalf("lz4 level mapping: 1→%d 9→%d 17→%d", lz4Level(1), lz4Level(9), lz4Level(17))
	}
}

// TestAppendCompressionTypeRecordSets: a record set of several batches (storage accepts
// them; Produce sends one) keeps the batches already in the codec as they were and
// re-encodes the others in place, offsets dense.
func TestAppendCompressionTypeRecordSets(t *testing.T) {
	o := testOptions(nil)
	o.Compression = CompressionZstd
	l := mustOpen(t, t.TempDir(), o)
	zstdC, gzipC := codecCase{"zstd", codecZstd, false}, codecCase{"gzip", codecGzip, false}
	p0, p1, p2 := richBatch(1, 3), richBatch(2, 4), richBatch(3, 5)
	b0, b1, b2 := zstdC.encode(t, p0), gzipC.encode(t, p1), zstdC.encode(t, p2)
	set := append(append(bytes.Clone(b0), b1...), b2...)
	res := mustAppend(t, l, set)
	if res.BaseOffset != 0 || res.LastOffset != 11 {
		t.Fatalf("offsets %d-%d, want 0-11", res.BaseOffset, res.LastOffset)
	}
	stored := storedBatches(t, l)
	if len(stored) != 3 {
		t.Fatalf("%d batches", len(stored))
	}
	if !bytes.Equal(stored[0][offMagic:], b0[offMagic:]) || !bytes.Equal(stored[2][offMagic:], b2[offMagic:]) {
		t.Fatal("a zstd batch of the set was not stored as sent")
	}
	sameExceptCodec(t, stored[1], p1, codecZstd, 3)
	if decodeHeader(stored[2]).BaseOffset != 7 {
		t.Fatalf("third batch at %d, want 7", decodeHeader(stored[2]).BaseOffset)
	}
	// Producer first, then zstd (AlterConfigs): the next append is re-encoded.
	l2 := mustOpen(t, t.TempDir(), testOptions(nil))
	mustAppend(t, l2, gzipC.encode(t, p0))
	o2 := l2.Options()
	o2.Compression = CompressionNone
	l2.SetOptions(o2)
	mustAppend(t, l2, gzipC.encode(t, p1))
	s2 := storedBatches(t, l2)
	if h := decodeHeader(s2[0]); h.Compression() != codecGzip {
		t.Fatal("the batch appended before SetOptions changed")
	}
	sameExceptCodec(t, s2[1], p1, codecNone, 3)
}

// TestAppendCompressionTypeProducerState: a re-encoded idempotent batch keeps its
// producer id, epoch and sequence, so its retry is a duplicate (answered with the first
// offsets), the next sequence goes on and a gap is out of order; a transactional batch
// keeps its bit and holds the last stable offset; LogAppendTime stamps the new batch.
func TestAppendCompressionTypeProducerState(t *testing.T) {
	clk := &fakeClock{ms: 5_000_000}
	o := testOptions(clk)
	o.Compression = CompressionZstd
	l := mustOpen(t, t.TempDir(), o)
	snappyC := codecCase{"snappy", codecSnappy, false}
	mustAppend(t, l, buildBatch(plain(2, 3, 1))) // 0-1, uncompressed → zstd
	first := snappyC.encode(t, withProducer(richBatch(10, 5), 42, 3, 0, 0))
	res := mustAppend(t, l, bytes.Clone(first)) // 2-6
	retry, err := l.Append(bytes.Clone(first))
	if !errors.Is(err, ErrDuplicateSequence) || retry.BaseOffset != res.BaseOffset || retry.LastOffset != res.LastOffset {
		t.Fatalf("retry: %+v %v, want the offsets %d-%d with ErrDuplicateSequence", retry, err, res.BaseOffset, res.LastOffset)
	}
	next := withProducer(richBatch(11, 2), 42, 3, 5, 0)
	mustAppend(t, l, snappyC.encode(t, next)) // 7-8
	if _, err := l.Append(snappyC.encode(t, withProducer(richBatch(12, 2), 42, 3, 9, 0))); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("sequence gap: %v, want ErrOutOfOrderSequence", err)
	}
	stored := storedBatches(t, l)
	h := decodeHeader(stored[1])
	if h.ProducerID != 42 || h.ProducerEpoch != 3 || h.BaseSequence != 0 || h.Compression() != codecZstd {
		t.Fatalf("stored idempotent batch: %+v", h)
	}
	sameExceptCodec(t, stored[2], next, codecZstd, 7)
	ps := l.Producers()
	if len(ps) != 1 || ps[0].ProducerID != 42 || ps[0].LastSequence != 6 {
		t.Fatalf("producers: %+v", ps)
	}

	txn := withProducer(richBatch(13, 3), 43, 0, 0, attrTransactional)
	lz4C := codecCase{"lz4", codecLZ4, false}
	mustAppend(t, l, lz4C.encode(t, txn)) // 9-11
	if lso := l.LastStableOffset(); lso != 9 {
		t.Fatalf("last stable offset %d with an open transaction at 9", lso)
	}
	sameExceptCodec(t, storedBatches(t, l)[3], txn, codecZstd, 9)

	o.LogAppendTime = true
	l.SetOptions(o)
	res = mustAppend(t, l, compressBatch(t, richBatch(14, 2), codecGzip, false))
	s := storedBatches(t, l)[4]
	h = decodeHeader(s)
	if h.Compression() != codecZstd || h.Attributes&attrLogAppendTime == 0 || h.MaxTimestamp != clk.ms || res.LogAppendTimeMs != clk.ms {
		t.Fatalf("LogAppendTime batch: %+v, result %+v", h, res)
	}
}

// TestAppendCompressionTypeRefusals: the re-encoded batch is held to max.message.bytes;
// the record checks of compacted topics and timestamp bounds apply to re-encoded batches;
// undecodable records or bytes after the last record are refused; nothing is written.
func TestAppendCompressionTypeRefusals(t *testing.T) {
	clk := &fakeClock{ms: 1_000_000}
	zstdC := codecCase{"zstd", codecZstd, false}
	bigPlain := buildBatch(plain(50, 1000, clk.ms)) // ~51 KB, compresses well
	t.Run("max.message.bytes", func(t *testing.T) {
		o := testOptions(clk)
		o.Compression, o.MaxMessageBytes = CompressionNone, 20_000
		l := mustOpen(t, t.TempDir(), o)
		b := zstdC.encode(t, bigPlain)
		if len(b) > 20_000 {
			t.Fatalf("test batch of %d bytes does not fit as sent", len(b))
		}
		if _, err := l.Append(b); !errors.Is(err, ErrBatchTooLarge) {
			t.Fatalf("append: %v, want ErrBatchTooLarge", err)
		}
		o.Compression = CompressionGzip
		l.SetOptions(o)
		mustAppend(t, l, zstdC.encode(t, bigPlain))
		if l.HighWatermark() != 50 {
			t.Fatalf("high watermark %d", l.HighWatermark())
		}
	})
	t.Run("compacted", func(t *testing.T) {
		o := testOptions(clk)
		o.Compression, o.Compact = CompressionSnappy, true
		l := mustOpen(t, t.TempDir(), o)
		keyless := buildKeyed(1, kv{s("a"), s("1")}, kv{nil, s("2")})
		for _, b := range [][]byte{keyless, compressBatch(t, keyless, codecGzip, false), compressBatch(t, keyless, codecSnappy, true)} {
			if _, err := l.Append(b); !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("keyless record: %v, want ErrInvalidRecord", err)
			}
		}
		mustAppend(t, l, compressBatch(t, buildKeyed(1, kv{s("a"), s("1")}), codecLZ4, false))
		if got := liveRecords(t, l); fmt.Sprint(got) != "map[0:a=v]" {
			t.Fatalf("records %v", got)
		}
	})
	t.Run("timestamp bounds", func(t *testing.T) {
		o := testOptions(clk)
		o.Compression = CompressionLZ4
		o.TimestampBounds = &TimestampBounds{BeforeMS: 1000, AfterMS: 1000}
		l := mustOpen(t, t.TempDir(), o)
		old := buildRecords(clk.ms, []testRecord{{0, s("a"), s("1")}, {-5000, s("b"), s("2")}})
		var re *RecordsError
		if _, err := l.Append(compressBatch(t, old, codecZstd, false)); !errors.As(err, &re) || len(re.Records) != 1 || re.Records[0].Index != 1 {
			t.Fatalf("old timestamp: %v", err)
		}
		mustAppend(t, l, compressBatch(t, buildRecords(clk.ms, []testRecord{{0, s("a"), s("1")}}), codecZstd, false))
	})
	t.Run("bad records", func(t *testing.T) {
		o := testOptions(clk)
		o.Compression = CompressionZstd
		l := mustOpen(t, t.TempDir(), o)
		p := buildBatch(plain(3, 10, 1))
		trailing := append(bytes.Clone(p), 1, 2, 3)
		binary.BigEndian.PutUint32(trailing[offBatchLength:], uint32(len(trailing)-batchLogOverhead))
		binary.BigEndian.PutUint32(trailing[offCRC:], crcOf(trailing[offAttributes:]))
		if _, err := l.Append(trailing); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("bytes after the records: %v, want ErrInvalidRecord", err)
		}
		torn := bytes.Clone(p[:len(p)-4])
		binary.BigEndian.PutUint32(torn[offBatchLength:], uint32(len(torn)-batchLogOverhead))
		binary.BigEndian.PutUint32(torn[offCRC:], crcOf(torn[offAttributes:]))
		if _, err := l.Append(torn); !errors.Is(err, ErrCorruptMessage) {
			t.Fatalf("torn record: %v, want ErrCorruptMessage", err)
		}
		garbage := bytes.Clone(p)
		binary.BigEndian.PutUint16(garbage[offAttributes:], codecGzip) // records are not gzip
		binary.BigEndian.PutUint32(garbage[offCRC:], crcOf(garbage[offAttributes:]))
		if _, err := l.Append(garbage); !errors.Is(err, ErrCorruptMessage) {
			t.Fatalf("undecodable gzip: %v, want ErrCorruptMessage", err)
		}
		if l.HighWatermark() != 0 || l.Size() != 0 {
			t.Fatalf("refused appends wrote: hw %d size %d", l.HighWatermark(), l.Size())
		}
	})
	t.Run("unknown compression", func(t *testing.T) {
		o := testOptions(clk)
		o.Compression = CompressionZstd + 1
		if _, err := OpenLog(t.TempDir(), o); err == nil {
			t.Fatal("OpenLog with an unknown compression succeeded")
		}
	})
}

// TestParseCompression: Kafka's names, case-sensitive, round trip through String.
func TestParseCompression(t *testing.T) {
	for _, n := range CompressionNames() {
		c, ok := ParseCompression(n)
		if !ok || c.String() != n {
			t.Fatalf("%q: %v %v", n, c, ok)
		}
	}
	for _, n := range []string{"", "none", "ZSTD", "brotli"} {
		if _, ok := ParseCompression(n); ok {
			t.Fatalf("%q accepted", n)
		}
	}
}

// TestAppendCompressionTypeSameCodecAllocs: a batch already in the log's codec costs an
// append no more allocations than compression.type=producer does.
func TestAppendCompressionTypeSameCodecAllocs(t *testing.T) {
	noSync(t)
	batch := codecCase{"zstd", codecZstd, false}.encode(t, richBatch(1, 20))
	allocs := func(c Compression) float64 {
		o := testOptions(nil)
		o.Compression = c
		l := mustOpen(t, t.TempDir(), o)
		return testing.AllocsPerRun(200, func() {
			if _, err := l.Append(batch); err != nil {
				t.Fatal(err)
			}
		})
	}
	if p, z := allocs(CompressionProducer), allocs(CompressionZstd); z > p {
		t.Fatalf("%v allocations per append of a zstd batch to a zstd log, %v with producer", z, p)
	}
}

// FuzzRecode: any records under any codec, appended to a log with any compression.type,
// are stored (a valid batch in the log's codec holding the same records) or refused with
// a classified error, never half-written.
func FuzzRecode(f *testing.F) {
	p := richBatch(1, 4)
	for _, c := range sourceCodecs {
		f.Add(c.encode(f, p)[BatchHeaderSize:], uint8(c.codec), uint8(CompressionZstd))
	}
	f.Add(p[BatchHeaderSize:], uint8(codecNone), uint8(CompressionSnappy))
	f.Add([]byte{1, 2, 3}, uint8(7), uint8(CompressionNone))
	// Records whose offset deltas are not 0, 1, …: kept as sent (Kafka would renumber).
	odd := []byte{0, 0, 14, 1, 2, 'x', 0} // attributes, timestamp delta 0, offset delta 7, null key, value "x", no headers
	odd = append(binary.AppendVarint(nil, int64(len(odd))), odd...)
	f.Add(bytes.Repeat(odd, 4), uint8(codecNone), uint8(CompressionLZ4))
	noSync(f)
	f.Fuzz(func(t *testing.T, body []byte, codec, target uint8) {
		o := testOptions(nil)
		o.Compression = Compression(target % uint8(CompressionZstd+1))
		l := mustOpen(t, t.TempDir(), o)
		b := append(bytes.Clone(p[:BatchHeaderSize]), body...)
		binary.BigEndian.PutUint16(b[offAttributes:], uint16(codec%8))
		binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-batchLogOverhead))
		binary.BigEndian.PutUint32(b[offCRC:], crcOf(b[offAttributes:]))
		sent := bytes.Clone(b)
		if _, err := l.Append(b); err != nil {
			if !errors.Is(err, ErrCorruptMessage) && !errors.Is(err, ErrInvalidRecord) && !errors.Is(err, ErrBatchTooLarge) {
				t.Fatalf("unclassified error %v", err)
			}
			if l.HighWatermark() != 0 || l.Size() != 0 {
				t.Fatalf("refused append wrote: hw %d size %d", l.HighWatermark(), l.Size())
			}
			return
		}
		stored := storedBatches(t, l)
		if len(stored) != 1 {
			t.Fatalf("%d batches stored", len(stored))
		}
		if o.Compression == CompressionProducer || int(codec%8) == o.Compression.codec() {
			if !bytes.Equal(stored[0][offMagic:], sent[offMagic:]) {
				t.Fatal("not stored as sent")
			}
			return
		}
		want, _, err := decompressRecords(int(codec%8), body)
		if err != nil {
			t.Fatalf("stored records the append could not have decompressed: %v", err)
		}
		plainSent := append(bytes.Clone(sent[:BatchHeaderSize]), want...)
		sameExceptCodec(t, stored[0], plainSent, o.Compression.codec(), -1)
	})
}
