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
	return checkBatch(b, maxSize, true)
}

// checkBatch is ParseBatch; with denseCount false it accepts fewer records than the
// offset delta spans, as compaction leaves behind.
func checkBatch(b []byte, maxSize int32, denseCount bool) (BatchHeader, int, error) {
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
	if crc := crc32.Checksum(b[offAttributes:size], castagnoli); crc != h.CRC {
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
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:size], castagnoli))
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

func crcChecksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
