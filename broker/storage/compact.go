package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"os"
)

// CompactResult says what one Compact pass did.
type CompactResult struct {
	Segments        int   // closed segments rewritten
	SegmentsDeleted int   // of those, left empty and deleted
	RecordsRemoved  int64 // superseded records and expired tombstones dropped
	BytesBefore     int64
	BytesAfter      int64
}

// Compact is Kafka's log cleaner for cleanup.policy=compact, on closed segments only
// (and, with MinCompactionLagMS, only those whose newest record is at least that old):
// a record is kept when it is the newest record for its key among those segments; a
// tombstone (null value) is kept until its batch is older than DeleteRetentionMS.
// Offsets never change: a cleaned batch keeps its base offset and lastOffsetDelta with
// fewer records (so fetches see offset gaps, as with Kafka), and a batch left empty is
// dropped. Records without a key are kept. A compressed batch that loses records is
// decompressed and written again with its codec (snappy in the framing it came in); one
// that loses none is kept as it is. Appends continue while the cleaned copies are
// written; each segment is swapped in atomically (a .cleaned file renamed over the .log).
func (l *Log) Compact() (CompactResult, error) {
	var res CompactResult
	l.compactMu.Lock()
	defer l.compactMu.Unlock()

	// The closed segments at the start of the pass; only Compact, retention and
	// DeleteRecords change closed segments, and the latter two are checked at the swap.
	o := l.Options() // takes writeMu: before mu, in the lock order (locks.md)
	l.mu.RLock()
	if l.isClosed.Load() {
		l.mu.RUnlock()
		return res, ErrClosed
	}
	lagHorizon := o.Now().UnixMilli() - o.MinCompactionLagMS
	var closed []*segment
	for _, s := range l.segs[:len(l.segs)-1] {
		if o.MinCompactionLagMS > 0 && s.largestTimestamp() > lagHorizon {
			break // this one and the later ones are too recent to compact
		}
		s.acquire()
		closed = append(closed, s)
	}
	l.mu.RUnlock()
	defer func() {
		for _, s := range closed {
			s.release()
		}
	}()
	if len(closed) == 0 {
		return res, nil
	}

	// Pass 1: the newest offset of every key in the dirty segments, those appended since
	// the last pass (the segments before them hold each key at most once already). As in
	// Kafka's offset map, a key is held as a 128-bit hash, and the map is bounded: once it
	// holds CleanerMaxKeys keys, the pass cleans up to the last segment it mapped and
	// leaves the later ones dirty for the next pass (one segment may overshoot the bound).
	from := l.cleanedTo.Load()
	latest := map[keyHash]int64{}
	end, mapped := len(closed), 0
	for i, s := range closed {
		if s.nextOffset <= from {
			continue
		}
		if mapped > 0 && len(latest) >= o.CleanerMaxKeys {
			end = i
			break
		}
		err := forEachRecord(s, func(h *BatchHeader, r *recordView) {
			if r.hasKey && h.Attributes&attrTransactional == 0 {
				latest[hashKey(r.key)] = r.offset
			}
		})
		if err != nil {
			return res, err
		}
		mapped++
	}

	// Pass 2: rewrite each segment up to there that loses records.
	tombstoneHorizon := o.Now().UnixMilli() - o.DeleteRetentionMS
	for _, s := range closed[:end] {
		n, before, after, err := l.cleanSegment(s, latest, tombstoneHorizon, o)
		if err != nil {
			return res, err
		}
		if n > 0 {
			res.Segments++
			res.RecordsRemoved += n
			res.BytesBefore += before
			res.BytesAfter += after
		}
	}
	l.cleanedTo.Store(closed[end-1].nextOffset)
	// Kept across restarts, so a restart does not make the whole log dirty again. Every
	// swap above synced its directory first, so the checkpoint never vouches for a
	// cleaning a power cut could undo; a checkpoint lost costs one full pass.
	if err := l.writeOffsetFile(cleanerFile, closed[end-1].nextOffset); err != nil {
		o.Logger.Warn("cannot save the log cleaner's checkpoint", "dir", l.dir, "err", err)
	}
	res.SegmentsDeleted = l.dropEmpty(closed[end-1].base)
	return res, nil
}

// dropEmpty deletes the closed segments up to the one at lastBase that compaction left
// without a batch, but
// the log's first (its start offset stays where it is, as compaction never moves it) and
// the active one: a compacted log whose old keys are all superseded would otherwise keep
// three files per rolled segment for ever. Reads step over the offsets they spanned as
// over any compaction gap. A power cut that undoes a removal only brings back an empty
// segment.
func (l *Log) dropEmpty(lastBase int64) (deleted int) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return 0
	}
	l.mu.Lock()
	var gone []*segment
	kept := l.segs[:1]
	for i, s := range l.segs[1:] {
		if s.size == 0 && s.base <= lastBase && i+1 < len(l.segs)-1 {
			gone = append(gone, s)
			continue
		}
		kept = append(kept, s)
	}
	l.segs = kept
	l.mu.Unlock()
	for _, s := range gone {
		if err := s.remove(); err != nil {
			l.opts.Logger.Warn("cannot delete an emptied segment", "segment", s.path(".log"), "err", err)
		}
	}
	return len(gone)
}

// firstBatchMaxTimestamp is the max timestamp of a segment's first batch (as Kafka's
// cleaner dates the dirty part); math.MaxInt64 if it cannot be read.
func firstBatchMaxTimestamp(s *segment) int64 {
	var hdr [BatchHeaderSize]byte
	if _, err := s.f.ReadAt(hdr[:], 0); err != nil {
		return math.MaxInt64
	}
	h := decodeHeader(hdr[:])
	return h.MaxTimestamp
}

// keyHash is a record key in the cleaner's offset map: two 64-bit hashes of it under
// seeds drawn at start (hash/maphash), so the map's size does not depend on the keys'
// and, the seeds being secret, colliding keys cannot be made on purpose. (A SHA-256
// prefix took half of a pass's CPU.)
type keyHash [2]uint64

var keySeeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}

func hashKey(k []byte) keyHash {
	return keyHash{maphash.Bytes(keySeeds[0], k), maphash.Bytes(keySeeds[1], k)}
}

// CompactIfDirty runs Compact on a compacted log (Options.Compact) when the closed
// segments appended since the last pass (the dirty part) are at least
// MinCleanableDirtyRatio of all closed segments' bytes, as Kafka's cleaner picks logs by
// min.cleanable.dirty.ratio, or when the first dirty batch is MaxCompactionLagMS old
// (max.compaction.lag.ms). Where the last pass ended is kept in the partition directory
// (cleaner-offset-checkpoint), as Kafka keeps it.
func (l *Log) CompactIfDirty() (res CompactResult, ran bool, err error) {
	o := l.Options()
	if !o.Compact {
		return res, false, nil
	}
	l.mu.RLock()
	if l.isClosed.Load() { // its topic is being deleted: Close dropped the segments
		l.mu.RUnlock()
		return res, false, ErrClosed
	}
	var total, dirty int64
	var firstDirty *segment
	from := l.cleanedTo.Load()
	for _, s := range l.segs[:len(l.segs)-1] {
		total += s.size
		if s.nextOffset > from {
			dirty += s.size
			if firstDirty == nil && s.size > 0 {
				firstDirty = s
				s.acquire()
			}
		}
	}
	l.mu.RUnlock()
	overdue := false
	if firstDirty != nil {
		overdue = o.MaxCompactionLagMS > 0 && firstBatchMaxTimestamp(firstDirty) < o.Now().UnixMilli()-o.MaxCompactionLagMS
		firstDirty.release()
	}
	if dirty == 0 || float64(dirty) < o.MinCleanableDirtyRatio*float64(total) && !overdue {
		return res, false, nil
	}
	res, err = l.Compact()
	return res, err == nil, err
}

// recordView is one record of an uncompressed batch, pointing into the batch bytes.
type recordView struct {
	offset    int64
	delta     int32  // offset delta: the record's index in a batch as produced
	timestamp int64  // the batch's base timestamp plus the record's delta
	raw       []byte // the whole record, length prefix included
	key       []byte
	hasKey    bool
	value     []byte // nil for a null value
	tombstone bool
	headers   []byte // the header count and headers, unparsed
}

// parseRecords walks a batch's records (body: the records after the batch header,
// decompressed). fn must not keep the recordView: it is reused for the next record (one
// allocation a batch, not one a record).
func parseRecords(body []byte, h *BatchHeader, fn func(*recordView)) error {
	var r recordView
	for i := int32(0); i < h.RecordCount; i++ {
		length, n := binary.Varint(body)
		if n <= 0 || length < 1 || int64(len(body)-n) < length {
			return fmt.Errorf("%w: record %d of batch %d has a bad length", ErrCorruptMessage, i, h.BaseOffset)
		}
		rec := body[n : n+int(length)]
		r = recordView{raw: body[:n+int(length)]}
		p := 1                          // attributes
		td, m := binary.Varint(rec[p:]) // timestamp delta
		if m <= 0 {
			return fmt.Errorf("%w: record %d of batch %d", ErrCorruptMessage, i, h.BaseOffset)
		}
		p += m
		r.timestamp = h.BaseTimestamp + td
		od, m := binary.Varint(rec[p:])
		if m <= 0 {
			return fmt.Errorf("%w: record %d of batch %d", ErrCorruptMessage, i, h.BaseOffset)
		}
		p += m
		r.offset = h.BaseOffset + od
		r.delta = int32(od)
		kl, m := binary.Varint(rec[p:])
		if m <= 0 || kl < -1 || int64(len(rec)-p-m) < max(kl, 0) {
			return fmt.Errorf("%w: record %d of batch %d has a bad key", ErrCorruptMessage, i, h.BaseOffset)
		}
		p += m
		if kl >= 0 {
			r.key, r.hasKey = rec[p:p+int(kl)], true
			p += int(kl)
		}
		vl, m := binary.Varint(rec[p:])
		if m <= 0 {
			return fmt.Errorf("%w: record %d of batch %d has a bad value", ErrCorruptMessage, i, h.BaseOffset)
		}
		r.tombstone = vl < 0
		p += m
		if vl >= 0 && vl <= int64(len(rec)-p) {
			r.value = rec[p : p+int(vl)]
			r.headers = rec[p+int(vl):]
		}
		fn(&r)
		body = body[n+int(length):]
	}
	return nil
}

// forEachBatch streams a segment's committed batches.
func forEachBatch(s *segment, size int64, fn func(b []byte, h *BatchHeader) error) error {
	r := bufio.NewReaderSize(io.NewSectionReader(s.f, 0, size), 1<<20)
	buf := make([]byte, 64<<10)
	for pos := int64(0); pos < size; {
		if _, err := io.ReadFull(r, buf[:BatchHeaderSize]); err != nil {
			return fmt.Errorf("cannot read segment %q: %w", s.path(".log"), err)
		}
		h := decodeHeader(buf)
		n := h.Size()
		if n < BatchHeaderSize || pos+int64(n) > size {
			return fmt.Errorf("%w: segment %q: bad batch at %d", ErrCorruptMessage, s.path(".log"), pos)
		}
		if len(buf) < n {
			nb := make([]byte, n)
			copy(nb, buf[:BatchHeaderSize])
			buf = nb
		}
		if _, err := io.ReadFull(r, buf[BatchHeaderSize:n]); err != nil {
			return fmt.Errorf("cannot read segment %q: %w", s.path(".log"), err)
		}
		if err := fn(buf[:n], &h); err != nil {
			return err
		}
		pos += int64(n)
	}
	return nil
}

func forEachRecord(s *segment, fn func(*BatchHeader, *recordView)) error {
	return forEachBatch(s, s.size, func(b []byte, h *BatchHeader) error {
		recs, _, err := decompressRecords(h.Compression(), b[BatchHeaderSize:])
		if err != nil {
			return fmt.Errorf("segment %q, batch %d: %w", s.path(".log"), h.BaseOffset, err)
		}
		return parseRecords(recs, h, func(r *recordView) { fn(h, r) })
	})
}

// cleanSegment writes the kept records of s to <base>.log.cleaned and swaps it in.
func (l *Log) cleanSegment(s *segment, latest map[keyHash]int64, tombstoneHorizon int64, o Options) (removed, before, after int64, err error) {
	// Dry run: does this segment lose anything?
	err = forEachRecord(s, func(h *BatchHeader, r *recordView) {
		if drop(h, r, latest, tombstoneHorizon) {
			removed++
		}
	})
	if err != nil || removed == 0 {
		return 0, 0, 0, err
	}
	tmpPath := s.path(".log.cleaned")
	f, err := os.OpenFile(tmpPath, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("cannot create %q: %w", tmpPath, err)
	}
	fail := func(e error) (int64, int64, int64, error) {
		f.Close()
		os.Remove(tmpPath)
		return 0, 0, 0, e
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var out, keptRecs []byte
	err = forEachBatch(s, s.size, func(b []byte, h *BatchHeader) error {
		recs, xerial, err := decompressRecords(h.Compression(), b[BatchHeaderSize:])
		if err != nil {
			return fmt.Errorf("batch %d: %w", h.BaseOffset, err)
		}
		keptRecs = keptRecs[:0]
		var kept int32
		if err := parseRecords(recs, h, func(r *recordView) {
			if !drop(h, r, latest, tombstoneHorizon) {
				keptRecs = append(keptRecs, r.raw...)
				kept++
			}
		}); err != nil {
			return err
		}
		switch {
		case kept == 0:
			return nil
		case kept == h.RecordCount:
			_, err := w.Write(b)
			return err
		}
		body, err := compressRecords(h.Compression(), keptRecs, xerial)
		if err != nil {
			return fmt.Errorf("batch %d: %w", h.BaseOffset, err)
		}
		out = append(append(out[:0], b[:BatchHeaderSize]...), body...)
		binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-batchLogOverhead))
		binary.BigEndian.PutUint32(out[offRecordCount:], uint32(kept))
		binary.BigEndian.PutUint32(out[offCRC:], crcChecksum(out[offAttributes:]))
		_, err = w.Write(out)
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = syncFile(f)
	}
	if err != nil {
		return fail(fmt.Errorf("cannot write %q: %w", tmpPath, err))
	}
	f.Close()

	// Swap under the writer lock, unless retention or DeleteRecords removed s meanwhile.
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.mu.RLock()
	i := l.indexOf(s)
	l.mu.RUnlock()
	if l.closed || i < 0 || i == len(l.segs)-1 {
		os.Remove(tmpPath)
		return 0, 0, 0, nil
	}
	// Remove the old indexes first: a crash before the rename then rebuilds them for the
	// old log; after it, for the new one.
	for _, ext := range []string{".index", ".timeindex"} {
		if err := os.Remove(s.path(ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
			os.Remove(tmpPath)
			return 0, 0, 0, fmt.Errorf("cannot remove %q: %w", s.path(ext), err)
		}
	}
	if err := os.Rename(tmpPath, s.path(".log")); err != nil {
		os.Remove(tmpPath)
		return 0, 0, 0, fmt.Errorf("cannot replace segment %q: %w", s.path(".log"), err)
	}
	if err := syncDir(l.dir); err != nil {
		return 0, 0, 0, err
	}
	ns, err := openSegmentFile(l.dir, s.base)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := l.scanSegment(ns, false); err != nil {
		ns.release()
		return 0, 0, 0, err
	}
	ns.nextOffset = s.nextOffset
	ns.lastModMs = s.lastModMs
	ns.aborted = s.aborted // offsets are unchanged: the .txnindex file stays valid
	if err := ns.sealIndexes(); err != nil {
		ns.release()
		return 0, 0, 0, err
	}
	ns.mapIndexes()
	l.mu.Lock()
	l.segs[i] = ns
	l.size.Add(ns.size - s.size)
	l.mu.Unlock()
	s.release() // the log's reference; open reads keep the old file until they close
	return removed, s.size, ns.size, nil
}

// drop says whether the cleaner removes a record. Transactional records (data and
// markers) are kept, and they supersede nothing (pass 1 leaves them out of the key map):
// an aborted record must never hide an older committed value, and a record is only
// known committed once its marker is read, which this one-pass cleaner does not track
// (Kafka's cleaner does, and may remove aborted data; keeping it is allowed, since
// read_committed fetches skip it through the transaction index).
func drop(h *BatchHeader, r *recordView, latest map[keyHash]int64, tombstoneHorizon int64) bool {
	if !r.hasKey || h.Attributes&attrTransactional != 0 {
		return false
	}
	if off, ok := latest[hashKey(r.key)]; ok && off > r.offset {
		return true
	}
	return r.tombstone && h.MaxTimestamp < tombstoneHorizon
}

func (l *Log) indexOf(s *segment) int {
	for i, x := range l.segs {
		if x == s {
			return i
		}
	}
	return -1
}
