package streaming

// The record batch walker of the Fetch path (fetch.go): it reads the record batches
// (magic v2, Kafka 0.11+) of Fetch responses straight from the response bytes, as
// Kafka's consumer does, and the message sets of magic v0/v1 before them
// (batches_legacy.go). Layout of a batch (big endian; varints are zigzag, as in
// protobuf):
//
//	baseOffset int64 | batchLength int32 (bytes after this field)
//	partitionLeaderEpoch int32 | magic int8 (2) | crc uint32 (CRC-32C of what follows)
//	attributes int16 (bits 0-2 compression, 3 log-append time, 4 transactional, 5 control)
//	lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64
//	producerId int64 | producerEpoch int16 | baseSequence int32 | recordCount int32
//	records (compressed as a whole when the attributes say so), each:
//	  length varint | attributes int8 | timestampDelta varlong | offsetDelta varint
//	  keyLength varint | key | valueLength varint | value
//	  headerCount varint | per header: keyLength varint | key | valueLength varint | value

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	batchHeaderSize = 61 // a v2 batch's bytes before its records
	// arenaChunk is the size of the blocks the walker copies keys and values into: one
	// allocation per ~arenaChunk bytes of records, and a record kept (a window of
	// records) keeps at most its block alive, not the whole response.
	arenaChunk = 128 << 10
)

var (
	crc32c = crc32.MakeTable(crc32.Castagnoli)
	// decompressor decompresses into buffers of decompressed, which the walker hands
	// back once it has read a batch: it copies what it keeps (keep).
	decompressed = &decompressBufs{}
	decompressor = kgo.DefaultDecompressor(decompressed)
	// emptyBytes is every empty key, value and header value kept (capacity 0: an
	// append to it copies).
	emptyBytes = []byte{}
)

// abortedTxn is an entry of a Fetch response's aborted transactions: producer
// ProducerID's transaction that starts at FirstOffset was aborted.
type abortedTxn struct{ ProducerID, FirstOffset int64 }

// batchWalk reads one offset range's records out of the record batches of its Fetch
// responses, one response at a time (add).
type batchWalk struct {
	r OffsetRange
	// committed drops the batches of aborted transactions (read_committed).
	committed bool
	// next is the offset after the last one passed: records, control batches and
	// aborted batches all move it.
	next int64
	out  []Record
	// bytes counts the keys and values in out.
	bytes int64
	// beyond: an offset at or past r.Until was seen (nothing of the range is left).
	beyond bool
	// partial: the response ended inside a batch (the broker fills up to MaxBytes).
	partial bool

	arena []byte
	// abortedPIDs are the producers whose current transaction is aborted, at the
	// batch being read (one response's state).
	abortedPIDs map[int64]struct{}
}

// add reads the batches of one response (raw: its records field) whose aborted
// transactions are aborted (used only when committed). A batch cut short by the end of
// raw ends the walk (partial); one that is corrupt fails it.
func (w *batchWalk) add(raw []byte, aborted []abortedTxn) error {
	w.partial = false
	if !w.committed {
		aborted = nil
	} else {
		sort.Slice(aborted, func(i, j int) bool { return aborted[i].FirstOffset < aborted[j].FirstOffset })
	}
	clear(w.abortedPIDs)
	for len(raw) > 0 && !w.beyond {
		if len(raw) < 17 {
			w.partial = true
			return nil
		}
		base := int64(binary.BigEndian.Uint64(raw))
		length := int64(int32(binary.BigEndian.Uint32(raw[8:])))
		if magic := raw[16]; magic != 2 {
			if magic > 2 {
				return fmt.Errorf("batch at offset %d: unknown magic %d", base, magic)
			}
			// A message set of magic 0 or 1 (batches_legacy.go).
			m, rest, whole, err := cutLegacy(raw)
			if err != nil {
				return fmt.Errorf("message at offset %d: %w", base, err)
			}
			if !whole {
				w.partial = true
				return nil
			}
			raw = rest
			if err := w.legacy(m); err != nil {
				return fmt.Errorf("message at offset %d: %w", base, err)
			}
			continue
		}
		if length < batchHeaderSize-12 {
			return fmt.Errorf("batch at offset %d: length %d is below the header's", base, length)
		}
		if int64(len(raw)) < 12+length {
			w.partial = true
			return nil
		}
		b := raw[:12+length]
		raw = raw[12+length:]
		if err := w.batch(base, b, &aborted); err != nil {
			return fmt.Errorf("batch at offset %d: %w", base, err)
		}
	}
	return nil
}

// batch reads one whole batch b (based at base).
func (w *batchWalk) batch(base int64, b []byte, aborted *[]abortedTxn) error {
	if crc := binary.BigEndian.Uint32(b[17:]); crc32.Checksum(b[21:], crc32c) != crc {
		return errors.New("CRC mismatch")
	}
	attrs := binary.BigEndian.Uint16(b[21:])
	last := base + int64(int32(binary.BigEndian.Uint32(b[23:])))
	if last < base {
		return fmt.Errorf("last offset delta %d is negative", last-base)
	}
	producerID := int64(binary.BigEndian.Uint64(b[43:]))
	control, transactional := attrs&0x20 != 0, attrs&0x10 != 0
	for len(*aborted) > 0 && (*aborted)[0].FirstOffset <= last {
		if w.abortedPIDs == nil {
			w.abortedPIDs = map[int64]struct{}{}
		}
		w.abortedPIDs[(*aborted)[0].ProducerID] = struct{}{}
		*aborted = (*aborted)[1:]
	}
	_, isAborted := w.abortedPIDs[producerID]
	switch {
	case control:
		// A marker ends its producer's transaction: later batches of that producer
		// belong to another one. Kafka's consumer only drops the producer at an abort
		// marker; a commit marker cannot follow an aborted transaction's data.
		delete(w.abortedPIDs, producerID)
		w.skip(last)
		return nil
	case transactional && isAborted:
		w.skip(last)
		return nil
	}
	if last < w.next {
		return nil // all before the range's next offset
	}
	records := b[batchHeaderSize:]
	if codec := kgo.CompressionCodecType(attrs & 7); codec != kgo.CodecNone {
		var err error
		if records, err = decompressor.Decompress(records, codec); err != nil {
			return fmt.Errorf("cannot decompress (codec %d): %w", codec, err)
		}
		defer decompressed.PutDecompressBytes(records)
	}
	baseTime := int64(binary.BigEndian.Uint64(b[27:]))
	logAppend := attrs&0x08 != 0
	maxTime := int64(binary.BigEndian.Uint64(b[35:]))
	count := int32(binary.BigEndian.Uint32(b[57:]))
	if count < 0 {
		return fmt.Errorf("record count %d", count)
	}
	for i := int32(0); i < count; i++ {
		if len(records) == 0 {
			return fmt.Errorf("%d records, want %d", i, count)
		}
		rec, n, err := w.record(records, base, baseTime)
		if err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
		records = records[n:]
		switch {
		case rec.Offset >= w.r.Until:
			// Records come in offset order: none is left in the range.
			w.beyond = true
			return nil
		case rec.Offset < w.next:
			continue
		}
		if logAppend {
			rec.Time = msTime(maxTime)
		}
		w.next = rec.Offset + 1
		w.keep(&rec)
	}
	return nil
}

// skip moves next past a batch that holds no records to read, up to last.
func (w *batchWalk) skip(last int64) {
	if last >= w.r.Until {
		w.beyond = true
		last = w.r.Until - 1
	}
	w.next = max(w.next, last+1)
}

// keep appends rec to out, its key, value and header values copied into the arena.
func (w *batchWalk) keep(rec *Record) {
	rec.Key = w.copy(rec.Key)
	rec.Value = w.copy(rec.Value)
	for i := range rec.Headers {
		rec.Headers[i].Value = w.copy(rec.Headers[i].Value)
	}
	w.bytes += int64(len(rec.Key) + len(rec.Value))
	w.out = append(w.out, *rec)
}

// copy returns b copied into the arena (nil stays nil); the copy's capacity ends with
// it, so an append to it cannot write over its neighbour.
func (w *batchWalk) copy(b []byte) []byte {
	switch {
	case b == nil:
		return nil
	case len(b) == 0:
		// Not the arena: appending nothing to a nil arena gives nil, and an empty
		// value is not a null one (a tombstone).
		return emptyBytes
	}
	if cap(w.arena)-len(w.arena) < len(b) {
		w.arena = make([]byte, 0, max(arenaChunk, len(b)))
	}
	i := len(w.arena)
	w.arena = append(w.arena, b...)
	return w.arena[i:len(w.arena):len(w.arena)]
}

// record decodes the record at the start of b (of a batch based at base, baseTime) and
// returns it, its key, value and header values pointing into b, and its size.
func (w *batchWalk) record(b []byte, base, baseTime int64) (rec Record, n int, err error) {
	length, k := binary.Varint(b)
	if k <= 0 || length < 0 || int64(len(b)-k) < length {
		return rec, 0, fmt.Errorf("bad length (%d of %d bytes)", length, len(b)-max(k, 0))
	}
	n = k + int(length)
	d := decoder{b: b[k:n]}
	d.byte() // attributes: unused
	tsDelta := d.varint()
	offDelta := d.varint()
	rec.Topic, rec.Partition = w.r.Topic, w.r.Partition
	rec.Offset = base + offDelta
	rec.Time = msTime(baseTime + tsDelta)
	rec.Key = d.bytes()
	rec.Value = d.bytes()
	if nh := d.varint(); nh > 0 && d.err == nil {
		if nh > int64(len(d.b)) {
			return rec, 0, fmt.Errorf("%d headers in %d bytes", nh, len(d.b))
		}
		rec.Headers = make([]Header, nh)
		for i := range rec.Headers {
			rec.Headers[i] = Header{Key: string(d.bytes()), Value: d.bytes()}
		}
	}
	if d.err != nil {
		return rec, 0, d.err
	}
	if offDelta < 0 {
		return rec, 0, fmt.Errorf("offset delta %d", offDelta)
	}
	return rec, n, nil
}

// decompressBufs lends the decompressor (kgo.PoolDecompressBytes) the buffers it
// decompresses into, and keeps those handed back (GC-bounded, as a sync.Pool): a walk
// decompresses batch after batch into the same few buffers.
type decompressBufs struct{ p sync.Pool }

func (d *decompressBufs) GetDecompressBytes([]byte, kgo.CompressionCodecType) []byte {
	if b, ok := d.p.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil // the codec allocates
}

func (d *decompressBufs) PutDecompressBytes(b []byte) { d.p.Put(&b) }

// decoder reads a record's fields; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

var errRecordShort = errors.New("record cut short")

func (d *decoder) byte() {
	if len(d.b) < 1 {
		d.fail(errRecordShort)
		return
	}
	d.b = d.b[1:]
}

func (d *decoder) varint() int64 {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.fail(errRecordShort)
		return 0
	}
	d.b = d.b[k:]
	return v
}

// bytes reads a varint length and that many bytes (nil for length -1).
func (d *decoder) bytes() []byte {
	l := d.varint()
	switch {
	case d.err != nil || l == -1:
		return nil
	case l < -1 || l > int64(len(d.b)):
		d.fail(fmt.Errorf("field of %d bytes in %d", l, len(d.b)))
		return nil
	}
	v := d.b[:l:l]
	d.b = d.b[l:]
	return v
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
		d.b = nil
	}
}

// msTime is a record timestamp in ms; a negative one (Kafka's NO_TIMESTAMP, -1, in a
// batch a producer wrote without timestamps) is none: the zero Time, as for messages
// of magic 0.
func msTime(ms int64) time.Time {
	if ms < 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
