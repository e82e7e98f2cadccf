package storage

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// offsetIndex is a segment's sparse offset index: one 8-byte entry (relative base offset
// of a batch, byte position of that batch in the .log) roughly every IndexIntervalBytes.
// The entries live in memory exactly as they are stored in the .index file, so writing
// the file is one write of buf, and a closed segment's buf can be the mapped file. Only the writer appends; readers call lookup under
// Log.mu held for reading while the writer appends under Log.mu held for writing.
type offsetIndex struct {
	base int64
	buf  []byte
}

const offsetIndexEntrySize = 8

func (x *offsetIndex) len() int { return len(x.buf) / offsetIndexEntrySize }

func (x *offsetIndex) entry(i int) (off int64, pos int64) {
	e := x.buf[i*offsetIndexEntrySize:]
	return x.base + int64(binary.BigEndian.Uint32(e)), int64(binary.BigEndian.Uint32(e[4:]))
}

func (x *offsetIndex) append(off, pos int64) {
	x.buf = binary.BigEndian.AppendUint32(x.buf, uint32(off-x.base))
	x.buf = binary.BigEndian.AppendUint32(x.buf, uint32(pos))
}

// lookup returns the position of the last indexed batch whose base offset is <= off
// (0 when there is none): a scan from there finds the batch holding off.
func (x *offsetIndex) lookup(off int64) int64 {
	n := x.len()
	i := sort.Search(n, func(i int) bool { o, _ := x.entry(i); return o > off })
	if i == 0 {
		return 0
	}
	_, pos := x.entry(i - 1)
	return pos
}

// check validates an index read from disk against its segment's size: a whole number
// of entries, offsets and positions strictly increasing, positions inside the log.
func (x *offsetIndex) check(logSize int64) error {
	if len(x.buf)%offsetIndexEntrySize != 0 {
		return fmt.Errorf("index size %d is not a multiple of %d", len(x.buf), offsetIndexEntrySize)
	}
	prevOff, prevPos := int64(-1), int64(-1)
	for i := range x.len() {
		off, pos := x.entry(i)
		if off <= prevOff || pos <= prevPos || pos >= logSize {
			return fmt.Errorf("index entry %d (offset %d, position %d) out of order or past the log (%d bytes)", i, off, pos, logSize)
		}
		prevOff, prevPos = off, pos
	}
	return nil
}
