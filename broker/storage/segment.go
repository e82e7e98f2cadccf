package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/tagpipe/tagpipe/internal/fsutil"
)

// segment is one <baseoffset>.log file with its in-memory indexes. Fields other than refs
// are written by the log's writer while it holds Log.mu for writing and read by readers
// holding Log.mu for reading (or by the writer alone).
type segment struct {
	dir  string
	base int64
	f    *os.File

	size        int64 // committed bytes: readers never look past this
	nextOffset  int64 // offset after the last batch
	maxTs       int64 // largest batch max timestamp, -1 if none
	maxTsOffset int64 // base offset of the batch carrying maxTs
	lastModMs   int64 // wall time of the last append (or file mtime after open)
	createdMs   int64 // wall time this segment started taking appends (segment.ms)
	sinceIndex  int64 // bytes appended since the last index entry
	idx         offsetIndex
	tidx        timeIndex
	indexDirty  bool // idx/tidx differ from the files on disk
	// mapped says idx.buf and tidx.buf are read-only mappings of the index files (a
	// closed segment; see mapIndexes), unmapped at the last release.
	mapped bool
	// reserved is how far the file's blocks are allocated ahead of appends (reserve); 0
	// for a segment that is not taking appends. Guarded by the log's writeMu.
	reserved int64
	// fsChecked says reserve has checked that the file is not on tmpfs/ramfs (once per
	// segment: a statfs on every reserve was one more system call per append or two).
	fsChecked bool

	// aborted lists the aborted transactions whose markers are in this segment (the
	// .txnindex file); guarded by the log's mu. txnDirty: the file is behind.
	aborted  []AbortedTxn
	txnDirty bool

	refs atomic.Int32 // the log holds one; each open ReadResult holds one
}

// reserveStep is how much of the active segment's file is allocated on disk at a time
// ahead of the appends (fallocate, keeping the file size). Without it, ext4 reserves and
// maps every 4 KiB page of an append one by one (delayed allocation), which was a third
// of the cost of writing into the page cache and a tenth of the broker's produce CPU;
// blocks already allocated are written without that. Redpanda allocates its segments
// ahead the same way (32 MiB steps). The reserve beyond the data, at most a step plus
// maxReserveAhead per active segment, is given back when the segment stops taking
// appends (release).
//
// Each fallocate costs about as much as the writes of a few hundred KiB it saves, so a
// partition taking large appends reserves further ahead (room for about four more, up to
// maxReserveAhead): fewer calls, and a reserve in proportion to how fast it fills. (Room
// for two took 7% more CPU per record with 400 KiB appends; for eight, no less.)
const (
	reserveStep     = 1 << 20
	maxReserveAhead = 7 << 20
)

var errUnsupported = errors.New("not supported")

// noReserve is set once the file system refuses fallocate: appends then allocate as
// they write, as before.
var noReserve atomic.Bool

// reserve allocates the file up to end and some way beyond before an append of n bytes
// writes there. It is best effort: when the disk has no room, the write allocates what it
// needs itself and reports a full disk as before.
func (s *segment) reserve(end, n int64) {
	if end <= s.reserved || noReserve.Load() {
		return
	}
	if !s.fsChecked {
		s.fsChecked = true
		if inMemoryFS(s.f) {
			noReserve.Store(true)
			return
		}
	}
	from := max(s.reserved, s.size)
	want := (end + min(4*n, maxReserveAhead) + reserveStep - 1) / reserveStep * reserveStep
	switch err := preallocate(s.f, from, want-from); {
	case err == nil:
		s.reserved = want
	case errors.Is(err, errUnsupported):
		noReserve.Store(true)
	}
}

// releaseReserve gives back the blocks allocated beyond the data of a segment that stops
// taking appends (rolled or closed): truncating to the current size frees them.
func (s *segment) releaseReserve() error {
	if s.reserved <= s.size {
		return nil
	}
	s.reserved = 0
	if err := s.f.Truncate(s.size); err != nil {
		return fmt.Errorf("cannot release the space reserved after segment %q: %w", s.path(".log"), err)
	}
	return nil
}

func segmentName(base int64, ext string) string { return fmt.Sprintf("%020d%s", base, ext) }

func (s *segment) path(ext string) string { return filepath.Join(s.dir, segmentName(s.base, ext)) }

func newSegmentStruct(dir string, base int64, f *os.File) *segment {
	s := &segment{
		dir: dir, base: base, f: f, nextOffset: base, maxTs: -1, maxTsOffset: base,
		idx: offsetIndex{base: base}, tidx: timeIndex{base: base},
	}
	s.refs.Store(1)
	return s
}

// createSegment makes an empty segment starting at base.
func createSegment(dir string, base int64, nowMs int64) (*segment, error) {
	p := filepath.Join(dir, segmentName(base, ".log"))
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot create segment %q: %w", p, err)
	}
	s := newSegmentStruct(dir, base, f)
	s.createdMs, s.lastModMs = nowMs, nowMs
	s.indexDirty = true
	return s, nil
}

// openSegmentFile opens an existing segment's log file (indexes are loaded by recovery).
func openSegmentFile(dir string, base int64) (*segment, error) {
	p := filepath.Join(dir, segmentName(base, ".log"))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open segment %q: %w", p, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot stat segment %q: %w", p, err)
	}
	s := newSegmentStruct(dir, base, f)
	s.size = st.Size()
	s.lastModMs = st.ModTime().UnixMilli()
	return s, nil
}

func (s *segment) acquire() { s.refs.Add(1) }

func (s *segment) release() {
	if n := s.refs.Add(-1); n == 0 {
		s.f.Close()
		s.unmapIndexes()
	} else if n < 0 {
		panic("BUG: segment reference count below zero")
	}
}

// noteBatch updates the in-memory indexes for a batch written at pos. indexInterval is
// Options.IndexIntervalBytes.
func (s *segment) noteBatch(h *BatchHeader, pos int64, size int, nowMs int64, indexInterval int) {
	if h.MaxTimestamp > s.maxTs {
		s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.BaseOffset
	}
	if s.sinceIndex >= int64(indexInterval) {
		s.idx.append(h.BaseOffset, pos)
		s.tidx.maybeAppend(s.maxTs, s.maxTsOffset)
		s.sinceIndex = 0
		s.indexDirty = true
	}
	s.sinceIndex += int64(size)
	s.size = pos + int64(size)
	s.nextOffset = h.LastOffset() + 1
	s.lastModMs = nowMs
}

// largestTimestamp is what time retention compares: the newest record timestamp, or the
// last modification time when the batches carry none (Kafka does the same).
func (s *segment) largestTimestamp() int64 {
	if s.maxTs > 0 {
		return s.maxTs
	}
	return s.lastModMs
}

// sealIndexes adds the final time index entry (so a closed segment's largest timestamp
// is the last entry) and writes both index files atomically.
func (s *segment) sealIndexes() error {
	if s.maxTs >= 0 {
		s.tidx.maybeAppend(s.maxTs, s.maxTsOffset)
	}
	if err := s.writeTxnIndex(); err != nil {
		return err
	}
	return s.writeIndexes()
}

func (s *segment) writeIndexes() error {
	if !s.indexDirty {
		return nil
	}
	if err := writeFileAtomic(s.path(".index"), s.idx.buf); err != nil {
		return err
	}
	if err := writeFileAtomic(s.path(".timeindex"), s.tidx.buf); err != nil {
		return err
	}
	s.indexDirty = false
	return nil
}

// mapIndexes replaces a closed segment's in-memory indexes (20 bytes per 4 KiB of log,
// so resident memory grew with retained data) with read-only mappings of its index
// files, which are already written: lookups page in what they touch, and the kernel can
// drop those pages again. Called with Log.mu held for writing (readers copy the slices
// under it) or before the log is shared; on failure the heap copies stay.
func (s *segment) mapIndexes() {
	if s.mapped || s.indexDirty {
		return
	}
	idx, err := mapFile(s.path(".index"), len(s.idx.buf))
	if err != nil {
		return
	}
	tidx, err := mapFile(s.path(".timeindex"), len(s.tidx.buf))
	if err != nil {
		unmapFile(idx)
		return
	}
	s.idx.buf, s.tidx.buf, s.mapped = idx, tidx, true
}

// unmapIndexes drops the mappings; the indexes are empty afterwards. Only when no reader
// can hold the slices (the last release) or before the log is shared (recovery).
func (s *segment) unmapIndexes() {
	if !s.mapped {
		return
	}
	unmapFile(s.idx.buf)
	unmapFile(s.tidx.buf)
	s.idx.buf, s.tidx.buf, s.mapped = nil, nil, false
}

// remove deletes the segment's files; the descriptor closes when the last reader is done.
func (s *segment) remove() error {
	var first error
	for _, ext := range []string{".log", ".index", ".timeindex", ".txnindex"} {
		if err := os.Remove(s.path(ext)); err != nil && !os.IsNotExist(err) && first == nil {
			first = fmt.Errorf("cannot remove segment file %q: %w", s.path(ext), err)
		}
	}
	s.release()
	return first
}

// writeFileAtomic replaces path with data through a synced temporary file and a rename
// (fsutil.WriteFile), with fsyncs through syncFile, which tests replace.
func writeFileAtomic(path string, data []byte) error {
	return fsutil.WriteFileSync(path, data, syncFile)
}

func syncDir(dir string) error { return fsutil.SyncDirSync(dir, syncFile) }

// syncFile is every fsync the package does (log files, index and snapshot files,
// directories); tests count or skip them through it.
var syncFile = func(f *os.File) error { return f.Sync() }
