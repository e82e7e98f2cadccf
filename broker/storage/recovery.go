package storage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const (
	startOffsetFile   = "log-start-offset"
	cleanMarkerFile   = "clean-shutdown"
	recoveryPointFile = "recovery-point"
	// cleanerFile holds Log.cleanedTo, where the log cleaner's last pass ended.
	cleanerFile = "cleaner-offset-checkpoint"
)

// readOffsetFile reads an offset file of the partition directory (recovery-point,
// log-start-offset, cleaner-offset-checkpoint: a decimal number and a newline); 0 if it
// is missing, and 0 with a warning if it cannot be read or parsed.
func (l *Log) readOffsetFile(name string) int64 {
	b, err := os.ReadFile(filepath.Join(l.dir, name))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			l.opts.Logger.Warn("cannot read offset file", "dir", l.dir, "file", name, "err", err)
		}
		return 0
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || v < 0 {
		l.opts.Logger.Warn("ignoring bad offset file", "dir", l.dir, "file", name, "content", string(b))
		return 0
	}
	return v
}

// writeOffsetFile replaces an offset file of the partition directory atomically.
func (l *Log) writeOffsetFile(name string, v int64) error {
	return writeFileAtomic(filepath.Join(l.dir, name), []byte(strconv.FormatInt(v, 10)+"\n"))
}

// takeCleanMarker reads and removes the clean shutdown marker; -1 if there is none.
// The removal is synced before the log takes appends: a marker brought back by a power
// cut would vouch for segments written after it and skip their recovery.
func (l *Log) takeCleanMarker() (int64, error) {
	p := filepath.Join(l.dir, cleanMarkerFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return -1, nil
	}
	if err := os.Remove(p); err != nil {
		return -1, fmt.Errorf("cannot remove clean shutdown marker %q: %w", p, err)
	}
	if err := syncDir(l.dir); err != nil {
		return -1, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1, nil
	}
	return v, nil
}

// recoverActive recovers the active segment. After an unclean shutdown every batch is
// checked (CRC and all). After a clean one (marker with the end offset), the index files
// written at Close are trusted and only the batches after the last index entry are
// checked, like Kafka skipping recovery after a clean shutdown; any doubt falls back to
// the full scan.
func (l *Log) recoverActive(seg *segment, cleanEnd int64) error {
	if cleanEnd >= 0 {
		err := l.loadActiveIndexes(seg)
		if err == nil {
			if err = l.scanFrom(seg, seg.idx.lookup(seg.nextOffset), true); err == nil && seg.nextOffset != cleanEnd {
				err = fmt.Errorf("end offset %d, clean shutdown recorded %d", seg.nextOffset, cleanEnd)
			}
		}
		if err == nil {
			return nil
		}
		l.opts.Logger.Warn("clean shutdown state does not match the active segment; scanning it", "segment", seg.path(".log"), "reason", err)
	}
	return l.scanSegment(seg, true)
}

// loadActiveIndexes loads the active segment's index files written at a clean Close and
// positions seg's bookkeeping at the last indexed batch.
func (l *Log) loadActiveIndexes(seg *segment) error {
	idx, err := os.ReadFile(seg.path(".index"))
	if err != nil {
		return err
	}
	tidx, err := os.ReadFile(seg.path(".timeindex"))
	if err != nil {
		return err
	}
	seg.idx.buf, seg.tidx.buf = idx, tidx
	if err := seg.idx.check(seg.size); err != nil {
		return err
	}
	if err := seg.tidx.check(math.MaxInt64); err != nil {
		return err
	}
	seg.maxTs, seg.maxTsOffset, seg.sinceIndex, seg.nextOffset = -1, seg.base, 0, seg.base
	if n := seg.idx.len(); n > 0 {
		off, pos := seg.idx.entry(n - 1)
		var hdr [offBatchLength]byte
		if _, err := seg.f.ReadAt(hdr[:], pos); err != nil {
			return fmt.Errorf("index entry points past the log: %w", err)
		}
		if got := int64FromBytes(hdr[:]); got != off {
			return fmt.Errorf("last index entry names offset %d but the batch there has %d", off, got)
		}
		seg.nextOffset = off
	}
	if n := seg.tidx.len(); n > 0 {
		seg.maxTs, seg.maxTsOffset = seg.tidx.entry(n - 1)
		if seg.maxTsOffset > seg.nextOffset {
			return fmt.Errorf("time index entry past the last indexed batch")
		}
	}
	return nil
}

// recover loads the directory: every segment's log, the indexes of closed segments (or
// rebuilds them), a full CRC scan of the active segment that truncates a torn or corrupt
// tail, the log start offset and the producer state.
func (l *Log) recover() error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("cannot list log directory %q: %w", l.dir, err)
	}
	var bases []int64
	logs := map[int64]bool{}
	var indexFiles []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".tmp"), strings.HasSuffix(name, ".cleaned"):
			os.Remove(filepath.Join(l.dir, name)) // an interrupted atomic write or compaction
		case strings.HasSuffix(name, ".log"):
			base, err := parseBase(name, ".log")
			if err != nil {
				l.opts.Logger.Warn("ignoring unexpected file in log directory", "dir", l.dir, "file", name)
				continue
			}
			bases = append(bases, base)
			logs[base] = true
		case strings.HasSuffix(name, ".index"), strings.HasSuffix(name, ".timeindex"), strings.HasSuffix(name, ".txnindex"):
			indexFiles = append(indexFiles, name)
		}
	}
	for _, name := range indexFiles { // indexes whose log is gone (a crash during deletion)
		ext := filepath.Ext(name)
		if base, err := parseBase(name, ext); err == nil && !logs[base] {
			os.Remove(filepath.Join(l.dir, name))
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })

	cleanEnd, err := l.takeCleanMarker()
	if err != nil {
		return err
	}
	savedStart := l.readOffsetFile(startOffsetFile)
	nowMs := l.now()
	if len(bases) == 0 {
		seg, err := createSegment(l.dir, max(savedStart, 0), nowMs)
		if err != nil {
			return err
		}
		l.segs = []*segment{seg}
		// A new partition: the segment's name and the partition directory's own name
		// must be on disk before an append is acknowledged as durable (flush: always
		// fsyncs only the segment's data).
		for _, d := range []string{l.dir, filepath.Dir(l.dir)} {
			if err := syncDir(d); err != nil {
				return err
			}
		}
	}
	recoveryPoint := l.readOffsetFile(recoveryPointFile)
	for i := 0; i < len(bases); i++ {
		base := bases[i]
		seg, err := openSegmentFile(l.dir, base)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, seg)
		if i < len(bases)-1 && cleanEnd < 0 && base >= recoveryPoint {
			// Rolled but maybe not yet fsynced when the process died: check it all.
			cut, err := l.recoverRolled(seg, bases[i+1:])
			if err != nil {
				return err
			}
			if !cut {
				seg.nextOffset = max(seg.nextOffset, bases[i+1])
				continue
			}
			bases = bases[:i+1] // the later segments are gone; this one is the active one now
			seg.createdMs = nowMs
			seg.indexDirty = true
			continue
		}
		if i < len(bases)-1 {
			if err := l.loadIndexes(seg, bases[i+1]); err != nil {
				l.opts.Logger.Warn("rebuilding segment indexes", "segment", seg.path(".log"), "reason", err)
				if err := l.scanSegment(seg, false); err != nil {
					return err
				}
				if err := seg.sealIndexes(); err != nil {
					return err
				}
			}
			seg.nextOffset = max(seg.nextOffset, bases[i+1])
		} else {
			if err := l.recoverActive(seg, cleanEnd); err != nil {
				return err
			}
			seg.createdMs = nowMs
			seg.indexDirty = true
		}
	}
	if cleanEnd < 0 && l.active().base > recoveryPoint {
		if err := l.writeOffsetFile(recoveryPointFile, l.active().base); err != nil {
			return err
		}
	}
	for _, s := range l.segs[:len(l.segs)-1] {
		s.mapIndexes() // those rebuilt above; loaded ones are mapped already
	}
	for _, s := range l.segs {
		l.loadTxnIndex(s)
	}
	var size int64
	for _, s := range l.segs {
		size += s.size
	}
	end := l.active().nextOffset
	l.size.Store(size)
	l.endOffset.Store(end)
	l.startOffset.Store(min(max(savedStart, l.segs[0].base), end))
	// Past the end only if a power cut took back segments the cleaner had passed: the
	// offsets appended again from there are dirty.
	l.cleanedTo.Store(min(l.readOffsetFile(cleanerFile), end))
	return l.recoverProducers()
}

func parseBase(name, ext string) (int64, error) {
	s := strings.TrimSuffix(name, ext)
	if len(s) != 20 {
		return 0, fmt.Errorf("bad segment name %q", name)
	}
	return strconv.ParseInt(s, 10, 64)
}

// recoverRolled fully checks a rolled segment past the recovery point after an unclean
// shutdown, rebuilds its indexes and fsyncs it. If its tail had to be cut (a power loss
// before its background fsync), the segments after it are deleted, as Kafka does: they
// cannot continue a log with a hole; cut reports that.
func (l *Log) recoverRolled(seg *segment, later []int64) (cut bool, err error) {
	before := seg.size
	if err := l.scanSegment(seg, false); err != nil {
		return false, err
	}
	if err := syncFile(seg.f); err != nil {
		return false, fmt.Errorf("cannot sync segment %q: %w", seg.path(".log"), err)
	}
	if seg.size == before {
		return false, seg.sealIndexes()
	}
	for _, b := range later {
		l.opts.Logger.Warn("deleting segment after a truncated one", "segment", segmentName(b, ".log"), "dir", l.dir)
		for _, ext := range []string{".log", ".index", ".timeindex", ".txnindex"} {
			if err := os.Remove(filepath.Join(l.dir, segmentName(b, ext))); err != nil && !errors.Is(err, os.ErrNotExist) {
				return false, fmt.Errorf("cannot remove segment file: %w", err)
			}
		}
	}
	for _, ext := range []string{".index", ".timeindex"} { // stale: rebuilt as the active segment's
		os.Remove(seg.path(ext))
	}
	return true, syncDir(l.dir)
}

// loadIndexes reads a closed segment's index files and checks them against the log.
func (l *Log) loadIndexes(seg *segment, nextBase int64) error {
	// Mapped, not read into the heap (see mapIndexes): the check below pages them in
	// once, and they are dropped from the resident set after it.
	idx, err := mapFile(seg.path(".index"), -1)
	if errors.Is(err, errors.ErrUnsupported) {
		return l.readIndexes(seg, nextBase)
	}
	if err != nil {
		return err
	}
	tidx, err := mapFile(seg.path(".timeindex"), -1)
	if err != nil {
		unmapFile(idx)
		return err
	}
	seg.idx.buf, seg.tidx.buf, seg.mapped = idx, tidx, true
	if err := l.checkIndexes(seg, nextBase); err != nil {
		seg.unmapIndexes()
		return err
	}
	dropMappedPages(idx)
	dropMappedPages(tidx)
	return nil
}

// readIndexes is loadIndexes into the heap, where files cannot be mapped.
func (l *Log) readIndexes(seg *segment, nextBase int64) error {
	idx, err := os.ReadFile(seg.path(".index"))
	if err != nil {
		return err
	}
	tidx, err := os.ReadFile(seg.path(".timeindex"))
	if err != nil {
		return err
	}
	seg.idx.buf, seg.tidx.buf = idx, tidx
	return l.checkIndexes(seg, nextBase)
}

// checkIndexes checks a closed segment's loaded indexes against its log and takes its
// largest timestamp from them.
func (l *Log) checkIndexes(seg *segment, nextBase int64) error {
	if err := seg.idx.check(seg.size); err != nil {
		return err
	}
	if err := seg.tidx.check(nextBase); err != nil {
		return err
	}
	if n := seg.idx.len(); n > 0 { // the last entry must point at the batch it names
		off, pos := seg.idx.entry(n - 1)
		var hdr [offBatchLength]byte
		if _, err := seg.f.ReadAt(hdr[:], pos); err != nil {
			return fmt.Errorf("index entry points past the log: %w", err)
		}
		if got := int64FromBytes(hdr[:]); got != off {
			return fmt.Errorf("last index entry names offset %d but the batch there has %d", off, got)
		}
	}
	if n := seg.tidx.len(); n > 0 {
		seg.maxTs, seg.maxTsOffset = seg.tidx.entry(n - 1)
	}
	seg.nextOffset = nextBase
	return nil
}

func int64FromBytes(b []byte) int64 {
	return int64(uint64(int32FromBytes(b))<<32 | uint64(uint32(int32FromBytes(b[4:]))))
}

// scanSegment reads every batch of seg, checking length, magic, CRC and offset order,
// rebuilds the in-memory indexes, and truncates the file at the first bad batch. strict
// (the active segment, never compacted) also wants offsets without gaps, which catches a
// damaged base offset (the one header field besides the leader epoch outside the CRC).
func (l *Log) scanSegment(seg *segment, strict bool) error {
	seg.unmapIndexes() // rebuilt in the heap: a mapping is read-only
	seg.idx.buf, seg.tidx.buf = seg.idx.buf[:0], seg.tidx.buf[:0]
	seg.maxTs, seg.maxTsOffset, seg.sinceIndex, seg.nextOffset = -1, seg.base, 0, seg.base
	return l.scanFrom(seg, 0, strict)
}

// scanFrom is scanSegment from byte start (a batch boundary whose batch is already
// indexed, with seg's bookkeeping describing everything before it).
func (l *Log) scanFrom(seg *segment, start int64, strict bool) error {
	fileSize := seg.size
	r := bufio.NewReaderSize(io.NewSectionReader(seg.f, start, fileSize-start), 1<<20)
	buf := make([]byte, 64<<10)
	pos := start
	var bad error
	for pos < fileSize {
		if fileSize-pos < BatchHeaderSize {
			bad = fmt.Errorf("torn batch header: %d bytes left", fileSize-pos)
			break
		}
		if _, err := io.ReadFull(r, buf[:BatchHeaderSize]); err != nil {
			return fmt.Errorf("cannot read segment %q: %w", seg.path(".log"), err)
		}
		size := int64(int32FromBytes(buf[offBatchLength:])) + batchLogOverhead
		if size < BatchHeaderSize {
			bad = fmt.Errorf("batch length %d below header size", size-batchLogOverhead)
			break
		}
		if size > fileSize-pos {
			bad = fmt.Errorf("torn batch: %d bytes of %d present", fileSize-pos, size)
			break
		}
		if int64(len(buf)) < size {
			nb := make([]byte, size)
			copy(nb, buf[:BatchHeaderSize])
			buf = nb
		}
		if _, err := io.ReadFull(r, buf[BatchHeaderSize:size]); err != nil {
			return fmt.Errorf("cannot read segment %q: %w", seg.path(".log"), err)
		}
		h, _, err := checkBatch(buf[:size], 0, strict)
		if err != nil {
			bad = err
			break
		}
		if h.BaseOffset < seg.nextOffset || (strict && h.BaseOffset != seg.nextOffset) {
			bad = fmt.Errorf("batch base offset %d, expected %d", h.BaseOffset, seg.nextOffset)
			break
		}
		seg.noteBatch(&h, pos, int(size), seg.lastModMs, l.opts.IndexIntervalBytes)
		pos += size
	}
	seg.size = pos
	if bad != nil {
		l.opts.Logger.Warn("truncating torn or corrupt segment tail", "segment", seg.path(".log"),
			"position", pos, "dropped_bytes", fileSize-pos, "reason", bad)
		if err := seg.f.Truncate(pos); err != nil {
			return fmt.Errorf("cannot truncate segment %q: %w", seg.path(".log"), err)
		}
		if err := syncFile(seg.f); err != nil {
			return fmt.Errorf("cannot sync segment %q: %w", seg.path(".log"), err)
		}
	}
	seg.indexDirty = true
	return nil
}

// recoverProducers loads the newest producer snapshot at or below the log end and
// replays the batch headers after it: idempotent producers' sequences, the open
// transactions (a transactional batch opens one, a marker closes it) and the aborted
// transactions of the transaction index past the snapshot, which are rebuilt from the
// markers (a crash may have lost the active segment's list, kept in memory until the
// segment rolls or the log closes, or left entries past a truncated end).
func (l *Log) recoverProducers() error {
	snapOff, err := l.producer.loadSnapshot(l.dir, l.endOffset.Load(), l.opts.Logger)
	if err != nil {
		return err
	}
	for _, seg := range l.segs {
		n := len(seg.aborted)
		for n > 0 && seg.aborted[n-1].LastOffset >= snapOff {
			n--
		}
		if n != len(seg.aborted) {
			seg.aborted, seg.txnDirty = seg.aborted[:n], true
		}
	}
	var hdr [BatchHeaderSize]byte
	var ctl []byte
	for _, seg := range l.segs {
		if seg.nextOffset <= snapOff || seg.size == 0 {
			continue
		}
		p := int64(0)
		if snapOff > seg.base {
			p = seg.idx.lookup(snapOff)
		}
		for p < seg.size {
			if _, err := seg.f.ReadAt(hdr[:], p); err != nil {
				return fmt.Errorf("cannot read segment %q: %w", seg.path(".log"), err)
			}
			h := decodeHeader(hdr[:])
			if h.Size() < BatchHeaderSize || p+int64(h.Size()) > seg.size {
				l.opts.Logger.Warn("bad batch header while rebuilding producer state", "segment", seg.path(".log"), "position", p)
				break
			}
			if h.BaseOffset >= snapOff && h.Idempotent() {
				switch {
				case h.IsControl():
					ctl = append(ctl[:0], make([]byte, h.Size())...)
					if _, err := seg.f.ReadAt(ctl, p); err != nil {
						return fmt.Errorf("cannot read segment %q: %w", seg.path(".log"), err)
					}
					if typ, coordEpoch, ok := controlType(ctl, &h); ok {
						l.completeTxn(seg, h.ProducerID, h.ProducerEpoch, h.BaseOffset, typ == controlCommit, coordEpoch, h.MaxTimestamp, seg.lastModMs)
					}
				case h.IsTransactional():
					l.producer.update(&h, h.MaxTimestamp, seg.lastModMs)
					l.producer.beginTxn(h.ProducerID, h.BaseOffset)
				default:
					l.producer.update(&h, h.MaxTimestamp, seg.lastModMs)
				}
			}
			p += int64(h.Size())
		}
	}
	l.updateFirstUnstable(l.endOffset.Load())
	// Closed segments' lists go to disk now; the active one's at its roll or the close.
	for _, seg := range l.segs[:len(l.segs)-1] {
		if err := seg.writeTxnIndex(); err != nil {
			return err
		}
	}
	return nil
}
