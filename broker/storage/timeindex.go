package storage

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// timeIndex is a segment's sparse time index: 12-byte entries (largest timestamp seen so
// far in the segment, relative base offset of the batch that carried it), appended next
// to offset index entries whenever the running maximum has grown. Timestamps in it never
// decrease, so "which batch can first hold a timestamp >= ts" is a binary search.
type timeIndex struct {
	base int64
	buf  []byte
}

const timeIndexEntrySize = 12

func (x *timeIndex) len() int { return len(x.buf) / timeIndexEntrySize }

func (x *timeIndex) entry(i int) (ts int64, off int64) {
	e := x.buf[i*timeIndexEntrySize:]
	return int64(binary.BigEndian.Uint64(e)), x.base + int64(binary.BigEndian.Uint32(e[8:]))
}

func (x *timeIndex) lastTimestamp() int64 {
	if x.len() == 0 {
		return -1
	}
	ts, _ := x.entry(x.len() - 1)
	return ts
}

// maybeAppend adds (ts, off) if ts is larger than the last entry's timestamp.
func (x *timeIndex) maybeAppend(ts, off int64) {
	if ts <= x.lastTimestamp() {
		return
	}
	x.buf = binary.BigEndian.AppendUint64(x.buf, uint64(ts))
	x.buf = binary.BigEndian.AppendUint32(x.buf, uint32(off-x.base))
}

// lookup returns the base offset of the last indexed batch up to which every timestamp
// is < ts, or -1 when the search must start at the segment's first batch.
func (x *timeIndex) lookup(ts int64) int64 {
	n := x.len()
	i := sort.Search(n, func(i int) bool { t, _ := x.entry(i); return t >= ts })
	if i == 0 {
		return -1
	}
	_, off := x.entry(i - 1)
	return off
}

func (x *timeIndex) check(nextOffset int64) error {
	if len(x.buf)%timeIndexEntrySize != 0 {
		return fmt.Errorf("time index size %d is not a multiple of %d", len(x.buf), timeIndexEntrySize)
	}
	prevTs, prevOff := int64(-1<<63), int64(-1)
	for i := range x.len() {
		ts, off := x.entry(i)
		if ts <= prevTs || off < prevOff || off >= nextOffset {
			return fmt.Errorf("time index entry %d (timestamp %d, offset %d) out of order or past the log", i, ts, off)
		}
		prevTs, prevOff = ts, off
	}
	return nil
}
