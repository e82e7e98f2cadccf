package streaming

// The walker's message sets of magic v0 and v1, written before Kafka 0.11: brokers
// still serve them for topics written in an old message format (and a log upgraded in
// place holds them before its v2 batches). Layout of a message (big endian):
//
//	offset int64 | messageSize int32 (bytes after this field)
//	crc uint32 (CRC-32 IEEE of what follows) | magic int8 (0, 1)
//	attributes int8 (bits 0-2 compression, bit 3 log-append time: v1)
//	timestamp int64 (v1 only; -1 none) | keyLength int32 | key | valueLength int32 | value
//
// A compressed message (a wrapper) holds a message set of uncompressed messages as its
// value, compressed. Its offset is its last inner message's. Inner offsets are
// absolute in v0 (the broker rewrote them) and relative in v1: the first inner message
// is at the wrapper's offset minus the last inner offset (the log cleaner leaves gaps
// in them), or 0 when the wrapper's offset is 0 (produce data of some librdkafka
// versions). With log-append time, v1 inner messages take the wrapper's timestamp.
// These are the rules of Kafka's consumer (AbstractLegacyRecordBatch); kafka-go, which
// read these sets here before, shifts v0 inner offsets as if relative, ignores gaps and
// log-append time, and gives v0 records the time 1970-01-01.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// legacyHeaderSize is a message's bytes before its key (offset, size, CRC, magic,
	// attributes), the timestamp of magic 1 left out.
	legacyHeaderSize = 18
	// legacyMinSize is a message's size field at least, by magic: CRC, magic,
	// attributes, (timestamp,) key and value lengths.
	legacyMinSizeV0, legacyMinSizeV1 = 14, 22
)

// legacyMessage is a decoded message of magic 0 or 1; key and value point into its
// bytes.
type legacyMessage struct {
	offset     int64
	magic      byte
	attrs      byte
	ts         int64 // -1: none (magic 0)
	key, value []byte
}

// legacyMinSize is the smallest size field of a message of magic.
func legacyMinSize(magic byte) int64 {
	if magic == 0 {
		return legacyMinSizeV0
	}
	return legacyMinSizeV1
}

// parseLegacy decodes m, one whole message (12 + its size field bytes, its magic 0 or 1
// and its size at least legacyMinSize, as the caller checked).
func parseLegacy(m []byte) (legacyMessage, error) {
	msg := legacyMessage{offset: int64(binary.BigEndian.Uint64(m)), magic: m[16], attrs: m[17], ts: -1}
	if crc := binary.BigEndian.Uint32(m[12:]); crc32.ChecksumIEEE(m[16:]) != crc {
		return msg, errors.New("CRC mismatch")
	}
	b := m[legacyHeaderSize:]
	if msg.magic == 1 {
		msg.ts = int64(binary.BigEndian.Uint64(b))
		b = b[8:]
	}
	var err error
	if msg.key, b, err = legacyField(b); err != nil {
		return msg, fmt.Errorf("key: %w", err)
	}
	if msg.value, _, err = legacyField(b); err != nil {
		return msg, fmt.Errorf("value: %w", err)
	}
	return msg, nil
}

// legacyField reads an int32 length and that many bytes (nil for length -1) from b.
func legacyField(b []byte) (v, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, errRecordShort
	}
	l := int64(int32(binary.BigEndian.Uint32(b)))
	b = b[4:]
	switch {
	case l == -1:
		return nil, b, nil
	case l < -1 || l > int64(len(b)):
		return nil, nil, fmt.Errorf("field of %d bytes in %d", l, len(b))
	}
	return b[:l:l], b[l:], nil
}

// cutLegacy splits the message at the start of b off the rest; whole is false when b
// ends inside it (or inside its header).
func cutLegacy(b []byte) (m, rest []byte, whole bool, err error) {
	if len(b) < 17 {
		return nil, nil, false, nil
	}
	size := int64(int32(binary.BigEndian.Uint32(b[8:])))
	magic := b[16]
	if magic > 1 {
		return nil, nil, false, fmt.Errorf("magic %d among messages of magic 0/1", magic)
	}
	if size < legacyMinSize(magic) {
		return nil, nil, false, fmt.Errorf("message size %d is below the header's", size)
	}
	if int64(len(b)) < 12+size {
		return nil, nil, false, nil
	}
	return b[:12+size], b[12+size:], true, nil
}

// legacy reads one whole message m of magic 0 or 1, a wrapper's inner messages too.
func (w *batchWalk) legacy(m []byte) error {
	msg, err := parseLegacy(m)
	if err != nil {
		return err
	}
	codec := kgo.CompressionCodecType(msg.attrs & 7)
	if codec == kgo.CodecNone {
		w.legacyRecord(msg.offset, msg.ts, msg.key, msg.value)
		return nil
	}
	if msg.offset < w.next && msg.offset != 0 {
		return nil // its last inner message is before the range's next offset
	}
	if codec == kgo.CodecZstd || codec > kgo.CodecZstd {
		return fmt.Errorf("compression codec %d in a message of magic %d", codec, msg.magic)
	}
	if msg.value == nil {
		return errors.New("compressed message with a null value")
	}
	inner, err := decompressor.Decompress(msg.value, codec)
	if err != nil {
		return fmt.Errorf("cannot decompress (codec %d): %w", codec, err)
	}
	defer decompressed.PutDecompressBytes(inner)
	// A first pass finds the last inner offset (for v1) and checks the set is whole.
	var last int64
	n := 0
	for b := inner; len(b) > 0; n++ {
		im, rest, whole, err := cutLegacy(b)
		if err != nil {
			return fmt.Errorf("inner message %d: %w", n, err)
		}
		if !whole {
			return fmt.Errorf("inner message %d: cut short", n)
		}
		last = int64(binary.BigEndian.Uint64(im))
		b = rest
	}
	if n == 0 {
		return errors.New("compressed message with no inner messages")
	}
	var base int64 // added to inner offsets: v1's are relative
	if msg.magic == 1 && msg.offset != 0 {
		if last > msg.offset {
			return fmt.Errorf("wrapper offset %d is below its last inner offset %d", msg.offset, last)
		}
		base = msg.offset - last
	}
	logAppend := msg.magic == 1 && msg.attrs&0x08 != 0
	for i := 0; len(inner) > 0 && !w.beyond; i++ {
		im, rest, _, _ := cutLegacy(inner)
		inner = rest
		in, err := parseLegacy(im)
		if err != nil {
			return fmt.Errorf("inner message %d: %w", i, err)
		}
		if in.attrs&7 != 0 {
			return fmt.Errorf("inner message %d: compressed inside a compressed message", i)
		}
		if in.magic == 1 && logAppend {
			in.ts = msg.ts
		}
		w.legacyRecord(base+in.offset, in.ts, in.key, in.value)
	}
	return nil
}

// legacyRecord keeps the record at offset if it is in the range past next (ts -1 or
// below: no timestamp).
func (w *batchWalk) legacyRecord(offset, ts int64, key, value []byte) {
	switch {
	case w.beyond:
		return
	case offset >= w.r.Until:
		// Messages come in offset order: none is left in the range.
		w.beyond = true
		return
	case offset < w.next:
		return
	}
	rec := Record{Topic: w.r.Topic, Partition: w.r.Partition, Offset: offset, Key: key, Value: value, Time: msTime(ts)}
	w.next = offset + 1
	w.keep(&rec)
}
