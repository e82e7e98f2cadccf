package storage

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"net"
	"sort"
	"sync"
)

// ReadResult is a run of whole batches in one segment file. It holds the segment open
// (even if retention deletes it meanwhile) until Close.
type ReadResult struct {
	seg      *segment
	pos, n   int64
	first    int64 // base offset of the first batch
	next     int64 // offset after the last batch
	released bool
}

// Len is the number of bytes.
func (r *ReadResult) Len() int { return int(r.n) }

// FirstOffset is the base offset of the first batch (<= the offset asked for); -1 if empty.
func (r *ReadResult) FirstOffset() int64 {
	if r.n == 0 {
		return -1
	}
	return r.first
}

// NextOffset is the offset after the last batch returned; -1 if empty.
func (r *ReadResult) NextOffset() int64 {
	if r.n == 0 {
		return -1
	}
	return r.next
}

// WriteTo copies the batches to w straight from the segment file: with sendfile(2) when
// w is a TCP or Unix socket, otherwise through io.Copy.
func (r *ReadResult) WriteTo(w io.Writer) (int64, error) {
	if r.n == 0 {
		return 0, nil
	}
	if r.released {
		return 0, fmt.Errorf("read result already closed")
	}
	switch c := w.(type) {
	case *net.TCPConn:
		if n, ok, err := sendfile(c, r.seg.f, r.pos, r.n); ok {
			return n, err
		}
	case *net.UnixConn:
		if n, ok, err := sendfile(c, r.seg.f, r.pos, r.n); ok {
			return n, err
		}
	}
	return io.Copy(w, io.NewSectionReader(r.seg.f, r.pos, r.n))
}

// Bytes reads the batches into a new slice.
func (r *ReadResult) Bytes() ([]byte, error) { return r.AppendTo(nil) }

// AppendTo appends the batches to dst.
func (r *ReadResult) AppendTo(dst []byte) ([]byte, error) {
	if r.n == 0 {
		return dst, nil
	}
	if r.released {
		return dst, fmt.Errorf("read result already closed")
	}
	l := len(dst)
	dst = append(dst, make([]byte, r.n)...)
	if _, err := r.seg.f.ReadAt(dst[l:], r.pos); err != nil {
		return dst[:l], fmt.Errorf("cannot read segment %q: %w", r.seg.path(".log"), err)
	}
	return dst, nil
}

// Close releases the segment. Safe twice.
func (r *ReadResult) Close() error {
	if !r.released && r.seg != nil {
		r.released = true
		r.seg.release()
	}
	return nil
}

// readHdrSize covers baseOffset, batchLength and lastOffsetDelta.
const readHdrSize = offLastOffsetDelta + 4

// hdrChunk is how much a header walk reads at once: small batches' headers then come
// out of one pread instead of one each.
const hdrChunk = 4096

var hdrBufPool = sync.Pool{New: func() any { return new([hdrChunk]byte) }}

// hdrReader reads batch headers of one segment's committed bytes [0, size) through a
// chunk buffer.
type hdrReader struct {
	seg    *segment
	size   int64
	buf    *[hdrChunk]byte
	bufPos int64 // file position of buf[0]
	bufLen int64
}

// read returns the base offset, total size and last offset of the batch at p.
func (r *hdrReader) read(p int64) (base int64, bsize int64, last int64, err error) {
	if r.size-p < readHdrSize {
		return 0, 0, 0, fmt.Errorf("%w: segment %q: %d stray bytes at %d", ErrCorruptMessage, r.seg.path(".log"), r.size-p, p)
	}
	if p < r.bufPos || p+readHdrSize > r.bufPos+r.bufLen {
		n := min(int64(hdrChunk), r.size-p)
		if _, err := r.seg.f.ReadAt(r.buf[:n], p); err != nil {
			r.bufLen = 0
			return 0, 0, 0, fmt.Errorf("cannot read segment %q at %d: %w", r.seg.path(".log"), p, err)
		}
		r.bufPos, r.bufLen = p, n
	}
	h := r.buf[p-r.bufPos:]
	base = int64(binary.BigEndian.Uint64(h[offBaseOffset:]))
	bsize = int64(int32(binary.BigEndian.Uint32(h[offBatchLength:]))) + batchLogOverhead
	last = base + int64(int32(binary.BigEndian.Uint32(h[offLastOffsetDelta:])))
	if bsize < BatchHeaderSize || p+bsize > r.size {
		return 0, 0, 0, fmt.Errorf("%w: segment %q: bad batch length at %d", ErrCorruptMessage, r.seg.path(".log"), p)
	}
	return base, bsize, last, nil
}

// Read returns whole batches starting with the batch that holds offset, up to maxBytes
// but at least one batch. offset == HighWatermark gives an empty result; offsets outside
// [LogStartOffset, HighWatermark] give ErrOffsetOutOfRange.
func (l *Log) Read(offset int64, maxBytes int32) (*ReadResult, error) {
	return l.ReadUpTo(offset, maxBytes, math.MaxInt64)
}

// ReadUpTo is Read of the batches whose base offset is below upTo only: a
// read_committed fetch reads up to the last stable offset, which is always a batch's
// base offset or the end.
func (l *Log) ReadUpTo(offset int64, maxBytes int32, upTo int64) (*ReadResult, error) {
	l.mu.RLock()
	if l.isClosed.Load() {
		l.mu.RUnlock()
		return nil, ErrClosed
	}
	start, end := l.startOffset.Load(), l.endOffset.Load()
	if offset < start || offset > end {
		l.mu.RUnlock()
		return nil, fmt.Errorf("%w: offset %d, log has [%d, %d)", ErrOffsetOutOfRange, offset, start, end)
	}
	if offset == end || offset >= upTo {
		l.mu.RUnlock()
		return &ReadResult{}, nil
	}
	i := max(sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })-1, 0)
	for i < len(l.segs) {
		seg := l.segs[i]
		size, idx := seg.size, seg.idx
		seg.acquire()
		l.mu.RUnlock()
		r, err := scanRead(seg, idx, size, offset, maxBytes, upTo)
		if err != nil || r != nil {
			if r == nil || r.seg == nil {
				seg.release()
			}
			return r, err
		}
		seg.release()
		// offset lies past this segment's batches (a gap): continue in the next segment.
		l.mu.RLock()
		if l.isClosed.Load() {
			l.mu.RUnlock()
			return nil, ErrClosed
		}
		i = sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > seg.base })
	}
	l.mu.RUnlock()
	return &ReadResult{}, nil
}

// scanRead finds the batch holding offset in seg (bytes [0, size)) and extends the run
// with following batches while it stays within maxBytes. nil, nil means offset is past
// the segment's last batch.
func scanRead(seg *segment, idx offsetIndex, size, offset int64, maxBytes int32, upTo int64) (*ReadResult, error) {
	hr := hdrReader{seg: seg, size: size, buf: hdrBufPool.Get().(*[hdrChunk]byte)}
	defer hdrBufPool.Put(hr.buf)
	readHdr := hr.read
	p := int64(0)
	if offset > seg.base {
		p = idx.lookup(offset)
	}
	// Find the batch holding offset.
	var startPos, first, next int64
	for {
		if p >= size {
			return nil, nil
		}
		base, bsize, last, err := readHdr(p)
		if err != nil {
			return nil, err
		}
		if last >= offset {
			if base >= upTo {
				return &ReadResult{}, nil
			}
			startPos, first, next = p, base, last+1
			p += bsize
			break
		}
		p += bsize
	}
	// Extend by whole batches within maxBytes. Index entries mark batch starts, so jump
	// to the last indexed start inside the budget, then walk headers one by one.
	limit := min(startPos+int64(maxBytes), size)
	if n := idx.len(); n > 0 && limit > p {
		j := sort.Search(n, func(i int) bool { _, pos := idx.entry(i); return pos > limit }) - 1
		if j >= 0 {
			if off, pos := idx.entry(j); pos > p && off <= upTo {
				p, next = pos, off
			}
		}
	}
	for p < limit {
		base, bsize, last, err := readHdr(p)
		if err != nil {
			return nil, err
		}
		if p+bsize > limit || base >= upTo {
			break
		}
		p, next = p+bsize, last+1
	}
	return &ReadResult{seg: seg, pos: startPos, n: p - startPos, first: first, next: next}, nil
}

// OffsetForTimestamp finds the first offset whose record timestamp is >= ts (ListOffsets
// by time) and that record's timestamp, record by record as Kafka's
// LogSegment.findOffsetByTimestamp: the time index finds the batch, and its records are
// searched (a compressed batch is decompressed for it). A LogAppendTime batch's records
// all have its max timestamp: the answer is its base offset.
func (l *Log) OffsetForTimestamp(ts int64) (offset int64, batchTimestamp int64, found bool) {
	l.mu.RLock()
	if l.isClosed.Load() {
		l.mu.RUnlock()
		return -1, -1, false
	}
	start := l.startOffset.Load()
	for i, seg := range l.segs {
		if seg.maxTs < ts || seg.nextOffset <= start {
			continue
		}
		size, idx, tidx := seg.size, seg.idx, seg.tidx
		seg.acquire()
		l.mu.RUnlock()
		off, bts, ok, err := scanTimestamp(seg, idx, tidx, size, ts, start)
		seg.release()
		if err != nil {
			return -1, -1, false
		}
		if ok {
			return off, bts, true
		}
		l.mu.RLock()
		if l.isClosed.Load() || i >= len(l.segs) || l.segs[i] != seg {
			break // the segment list changed under us; give up rather than guess
		}
	}
	l.mu.RUnlock()
	return -1, -1, false
}

func scanTimestamp(seg *segment, idx offsetIndex, tidx timeIndex, size, ts, start int64) (int64, int64, bool, error) {
	p := int64(0)
	if off := tidx.lookup(ts); off >= 0 {
		p = idx.lookup(off)
	}
	var hdr [BatchHeaderSize]byte
	for p+BatchHeaderSize <= size {
		if _, err := seg.f.ReadAt(hdr[:], p); err != nil {
			return 0, 0, false, err
		}
		h := decodeHeader(hdr[:])
		bsize := int64(h.Size())
		if bsize < BatchHeaderSize || p+bsize > size {
			return 0, 0, false, fmt.Errorf("%w: bad batch length at %d", ErrCorruptMessage, p)
		}
		if h.MaxTimestamp >= ts && h.LastOffset() >= start {
			if h.Attributes&attrLogAppendTime != 0 {
				return max(h.BaseOffset, start), h.MaxTimestamp, true, nil
			}
			body := make([]byte, bsize-BatchHeaderSize)
			if _, err := seg.f.ReadAt(body, p+BatchHeaderSize); err != nil {
				return 0, 0, false, err
			}
			recs, _, err := decompressRecords(h.Compression(), body)
			if err != nil {
				// Stored batches passed the CRC check; answer with the batch as before.
				return max(h.BaseOffset, start), h.MaxTimestamp, true, nil
			}
			if off, rts, ok := firstRecordAtOrAfter(recs, &h, ts, start); ok {
				return off, rts, true, nil
			}
			return max(h.BaseOffset, start), h.MaxTimestamp, true, nil
		}
		p += bsize
	}
	return 0, 0, false, nil
}

// firstRecordAtOrAfter walks an uncompressed batch's records (length, attributes,
// timestampDelta, offsetDelta, …) for the first record with timestamp >= ts and offset >=
// start.
func firstRecordAtOrAfter(body []byte, h *BatchHeader, ts, start int64) (int64, int64, bool) {
	for len(body) > 0 {
		length, n := binary.Varint(body)
		if n <= 0 || length < 0 || int64(len(body)-n) < length {
			return 0, 0, false
		}
		rec := body[n : n+int(length)]
		body = body[n+int(length):]
		if len(rec) < 1 {
			return 0, 0, false
		}
		tsDelta, n1 := binary.Varint(rec[1:])
		if n1 <= 0 {
			return 0, 0, false
		}
		offDelta, n2 := binary.Varint(rec[1+n1:])
		if n2 <= 0 {
			return 0, 0, false
		}
		off, rts := h.BaseOffset+offDelta, h.BaseTimestamp+tsDelta
		if rts >= ts && off >= start {
			return off, rts, true
		}
	}
	return 0, 0, false
}

// MaxTimestamp answers ListOffsets' MAX_TIMESTAMP (-3, KIP-734): the first record with
// the largest timestamp in the log and that timestamp (found is false for an empty log).
func (l *Log) MaxTimestamp() (offset int64, timestamp int64, found bool) {
	l.mu.RLock()
	maxTs := int64(-1)
	start := l.startOffset.Load()
	for _, s := range l.segs {
		if s.nextOffset > start && s.maxTs > maxTs {
			maxTs = s.maxTs
		}
	}
	l.mu.RUnlock()
	if maxTs < 0 {
		return -1, -1, false
	}
	return l.OffsetForTimestamp(maxTs)
}
