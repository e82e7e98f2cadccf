package storage

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// RecordBatch v2 header layout (all integers big-endian). Only these 61 bytes are ever
// looked at on the hot path; the records behind them stay opaque (and possibly
// compressed).
const (
	offBaseOffset      = 0  // int64, rewritten by the broker
	offBatchLength     = 8  // int32, bytes after this field
	offLeaderEpoch     = 12 // int32, rewritten by the broker (not covered by the CRC)
	offMagic           = 16 // int8, must be 2
	offCRC             = 17 // uint32, CRC32C of bytes [21, end)
	offAttributes      = 21 // int16
	offLastOffsetDelta = 23 // int32
	offBaseTimestamp   = 27 // int64
	offMaxTimestamp    = 35 // int64
	offProducerID      = 43 // int64
	offProducerEpoch   = 51 // int16
	offBaseSequence    = 53 // int32
	offRecordCount     = 57 // int32

	// BatchHeaderSize is the size of a RecordBatch v2 header, records excluded.
	BatchHeaderSize = 61
	// batchLogOverhead is the part of the header not counted by batchLength.
	batchLogOverhead = 12

	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded fixed part of a RecordBatch v2.
type BatchHeader struct {
	BaseOffset      int64
	BatchLength     int32
	LeaderEpoch     int32
	Magic           int8
	CRC             uint32
	Attributes      int16
	LastOffsetDelta int32
	BaseTimestamp   int64
	MaxTimestamp    int64
	ProducerID      int64
	ProducerEpoch   int16
	BaseSequence    int32
	RecordCount     int32
}

// Size is the batch's total size on disk and on the wire.
func (h *BatchHeader) Size() int { return int(h.BatchLength) + batchLogOverhead }

// LastOffset is the offset of the batch's last record.
func (h *BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Compression is the codec id from the attributes (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
func (h *BatchHeader) Compression() int { return int(h.Attributes & attrCompressionMask) }

// Idempotent reports whether the batch carries a producer id.
func (h *BatchHeader) Idempotent() bool { return h.ProducerID >= 0 }

// LastSequence is the sequence number of the batch's last record (wrapping at MaxInt32).
func (h *BatchHeader) LastSequence() int32 { return addSeq(h.BaseSequence, h.LastOffsetDelta) }

func decodeHeader(b []byte) BatchHeader {
	_ = b[BatchHeaderSize-1]
	return BatchHeader{
		BaseOffset:      int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		BatchLength:     int32(binary.BigEndian.Uint32(b[offBatchLength:])),
		LeaderEpoch:     int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:           int8(b[offMagic]),
		CRC:             binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:      int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta: int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:   int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:    int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:      int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:   int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:    int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		RecordCount:     int32(binary.BigEndian.Uint32(b[offRecordCount:])),
	}
}

// ParseBatch checks the RecordBatch v2 at the start of b and returns its header and total
// size. maxSize bounds the batch size (<= 0: no bound beyond int32). Errors wrap
// ErrCorruptMessage (short, torn, bad length or CRC), ErrInvalidRecord (bad magic, record
// count that does not match the offset delta) or ErrBatchTooLarge.
func ParseBatch(b []byte, maxSize int32) (BatchHeader, int, error) {
	return parseBatch(b, maxSize, true, true)
}

// checkBatch is ParseBatch; with denseCount false it accepts fewer records than the
// offset delta spans, as compaction leaves behind.
func checkBatch(b []byte, maxSize int32, denseCount bool) (BatchHeader, int, error) {
	return parseBatch(b, maxSize, denseCount, true)
}

// parseBatch is checkBatch; with checkCRC false it leaves out only the CRC, for batches a
// RecordsCRC has checked already.
func parseBatch(b []byte, maxSize int32, denseCount, checkCRC bool) (BatchHeader, int, error) {
	var h BatchHeader
	if len(b) < BatchHeaderSize {
		return h, 0, fmt.Errorf("%w: %d bytes, shorter than a batch header (%d)", ErrCorruptMessage, len(b), BatchHeaderSize)
	}
	h = decodeHeader(b)
	if h.BatchLength < BatchHeaderSize-batchLogOverhead {
		return h, 0, fmt.Errorf("%w: batch length %d below header size", ErrCorruptMessage, h.BatchLength)
	}
	size := h.Size()
	if maxSize > 0 && size > int(maxSize) {
		return h, 0, fmt.Errorf("%w: batch of %d bytes exceeds max.message.bytes %d", ErrBatchTooLarge, size, maxSize)
	}
	if h.Magic != 2 {
		return h, 0, fmt.Errorf("%w: magic %d, only RecordBatch v2 (magic 2) is accepted", ErrInvalidRecord, h.Magic)
	}
	if size > len(b) {
		return h, 0, fmt.Errorf("%w: batch of %d bytes but only %d present", ErrCorruptMessage, size, len(b))
	}
	if !checkCRC {
		// checked by a RecordsCRC
	} else if crc := crcUpdate(0, b[offAttributes:size]); crc != h.CRC {
		return h, 0, fmt.Errorf("%w: crc32c %08x, header says %08x", ErrCorruptMessage, crc, h.CRC)
	}
	if h.LastOffsetDelta < 0 || h.RecordCount < 0 || int64(h.RecordCount) > int64(h.LastOffsetDelta)+1 ||
		(denseCount && h.Attributes&attrControl == 0 && int64(h.RecordCount) != int64(h.LastOffsetDelta)+1) {
		return h, 0, fmt.Errorf("%w: %d records with last offset delta %d", ErrInvalidRecord, h.RecordCount, h.LastOffsetDelta)
	}
	return h, size, nil
}

// setBaseOffset rewrites the batch's base offset in place (outside the CRC).
func setBaseOffset(b []byte, off int64) { binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off)) }

func setLeaderEpoch(b []byte, e int32) { binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(e)) }

// setLogAppendTime marks the batch as LogAppendTime with max timestamp ts and recomputes
// the CRC, as Kafka does for topics with message.timestamp.type=LogAppendTime.
func setLogAppendTime(b []byte, size int, ts int64) {
	attr := binary.BigEndian.Uint16(b[offAttributes:]) | attrLogAppendTime
	binary.BigEndian.PutUint16(b[offAttributes:], attr)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	binary.BigEndian.PutUint32(b[offCRC:], crcUpdate(0, b[offAttributes:size]))
}

// addSeq adds delta to a producer sequence number, wrapping to 0 after MaxInt32 as Kafka
// does.
func addSeq(seq, delta int32) int32 {
	s := int64(seq) + int64(delta)
	if s > 1<<31-1 {
		s -= 1 << 31
	}
	return int32(s)
}

func crcChecksum(b []byte) uint32 { return crcUpdate(0, b) }

// RecordsCRC checks the CRC-32C of every batch of one record set while its bytes arrive,
// for a caller that reads a request from a socket in pieces: each piece is checked right
// after the read copied it in, while it is still in the CPU cache, instead of after the
// whole request (megabytes) is in memory and the first pieces have long left the cache.
// It only follows the batch lengths and sums the bytes; LogAppendCRCChecked still checks
// everything else about each batch. Positions are offsets into the caller's buffer.
type RecordsCRC struct {
	start, end int    // the record set: buf[start:end]
	batch      int    // start of the batch being summed
	batchEnd   int    // its end, 0 until its header is in
	fed        int    // bytes of the batch summed so far end here
	crc, want  uint32 // running and expected CRC of the batch
	done, ok   bool
}

// Reset starts checking the record set buf[start:end].
func (v *RecordsCRC) Reset(start, end int) {
	*v = RecordsCRC{start: start, end: end, batch: start, done: start == end}
}

// Feed sums the bytes of buf[:got] not summed yet (got grows from call to call; buf's
// contents below got must not change) and reports whether the record set is finished:
// every batch summed, or a batch found whose length or CRC is wrong. OK then tells which.
func (v *RecordsCRC) Feed(buf []byte, got int) (done bool) {
	for !v.done {
		if v.batchEnd == 0 {
			if v.batch+offAttributes > v.end {
				return v.finish(false) // a torn header: left for ParseBatch to report
			}
			if v.batch+offAttributes > got {
				return false
			}
			h := buf[v.batch:]
			length := int(int32FromBytes(h[offBatchLength:]))
			if length < BatchHeaderSize-batchLogOverhead || length > v.end-v.batch-batchLogOverhead {
				return v.finish(false)
			}
			v.batchEnd = v.batch + batchLogOverhead + length
			v.fed, v.crc = v.batch+offAttributes, 0
			v.want = uint32(int32FromBytes(h[offCRC:]))
		}
		upTo := min(got, v.batchEnd)
		if upTo > v.fed {
			v.crc = crcUpdate(v.crc, buf[v.fed:upTo])
			v.fed = upTo
		}
		if v.fed < v.batchEnd {
			return false
		}
		if v.crc != v.want {
			return v.finish(false)
		}
		v.batch, v.batchEnd = v.batchEnd, 0
		if v.batch == v.end {
			return v.finish(true)
		}
	}
	return true
}

func (v *RecordsCRC) finish(ok bool) bool {
	v.done, v.ok = true, ok
	return true
}

// OK reports whether the finished record set is a sequence of batches with the CRCs their
// headers carry.
func (v *RecordsCRC) OK() bool { return v.done && v.ok && v.start < v.end }

// Span is the record set's position in the buffer.
func (v *RecordsCRC) Span() (start, end int) { return v.start, v.end }

// MoreThanOneBatch reports whether a partition's records hold a whole batch after the
// first, which Kafka refuses (ProduceRequest.validateRecords, v3+: INVALID_RECORD) before
// looking at CRCs or anything else. As in Kafka's batch iterator, only a complete second
// batch counts; other bytes after the first batch are left to the append's checks.
func MoreThanOneBatch(records []byte) bool {
	first := declaredSize(records)
	if first <= 0 || first >= len(records) {
		return false
	}
	next := declaredSize(records[first:])
	return next > 0 && next <= len(records)-first
}

// declaredSize is the size the batch at the start of b declares (its length field plus
// the batchLogOverhead bytes before it), or 0 when b is too short to say or the length
// is below any record's (Kafka's batch iterator: a CorruptRecordException,
// CORRUPT_MESSAGE here too).
func declaredSize(b []byte) int {
	if len(b) < batchLogOverhead {
		return 0
	}
	n := int32(binary.BigEndian.Uint32(b[offBatchLength:]))
	if n < 14 {
		return 0
	}
	return int(n) + batchLogOverhead
}
