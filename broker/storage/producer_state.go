package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// maxProducerBatches is how many recent batches per producer are remembered for
// duplicate detection: Kafka's max.in.flight.requests.per.connection limit for
// idempotence.
const maxProducerBatches = 5

// batchMeta is one remembered batch of an idempotent producer.
type batchMeta struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
	maxTimestamp            int64
}

type producerEntry struct {
	epoch        int16
	n            int // batches used, oldest first
	batches      [maxProducerBatches]batchMeta
	lastAppendMs int64
	// As Kafka's ProducerStateEntry: the coordinator epoch of the producer's last
	// marker here (-1 before any), and the timestamp of its last data batch (the max
	// timestamp) or marker, whichever came last (-1 before any).
	coordinatorEpoch int32
	lastTimestamp    int64
}

func newProducerEntry(epoch int16) *producerEntry {
	return &producerEntry{epoch: epoch, coordinatorEpoch: -1, lastTimestamp: -1}
}

// ProducerInfo describes one idempotent or transactional producer's state in this
// partition, with the fields of Kafka's DescribeProducers.
type ProducerInfo struct {
	ProducerID    int64
	ProducerEpoch int16
	LastSequence  int32 // of the last batch of the current epoch, -1 if none
	LastOffset    int64 // last offset of that batch, -1 if none
	// LastTimestamp is the max timestamp of the producer's last batch or the timestamp
	// of its last marker, whichever came last; -1 if neither.
	LastTimestamp int64
	// CoordinatorEpoch is the coordinator epoch of the producer's last marker here, -1
	// if it has none.
	CoordinatorEpoch int32
	// CurrentTxnStartOffset is the first offset of the producer's open transaction
	// here, -1 if none.
	CurrentTxnStartOffset int64
	LastAppendTime        int64 // wall-clock time of the last append (expiry)
}

// producerState is the idempotent producers' sequence state of one partition. The writer
// changes it under Log.writeMu; mu lets Producers read it from elsewhere.
type producerState struct {
	mu sync.Mutex
	m  map[int64]*producerEntry
	// open maps each producer with an open transaction here to the offset of the
	// transaction's first batch.
	open map[int64]int64
}

func newProducerState() *producerState {
	return &producerState{m: map[int64]*producerEntry{}, open: map[int64]int64{}}
}

// epochOf is a producer's current epoch here, if known.
func (ps *producerState) epochOf(pid int64) (int16, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if e := ps.m[pid]; e != nil {
		return e.epoch, true
	}
	return 0, false
}

// beginTxn notes a transactional batch at offset off: it opens the producer's
// transaction unless one is open already.
func (ps *producerState) beginTxn(pid, off int64) {
	ps.mu.Lock()
	if _, ok := ps.open[pid]; !ok {
		ps.open[pid] = off
	}
	ps.mu.Unlock()
}

// endTxn applies a marker with coordinator epoch coordEpoch and timestamp markerTs:
// the producer's epoch becomes the marker's (a newer epoch restarts its sequences, as a
// fenced producer's), and its open transaction, if any, closes; first is that
// transaction's first offset.
func (ps *producerState) endTxn(pid int64, epoch int16, coordEpoch int32, markerTs, nowMs int64) (first int64, open bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	e := ps.m[pid]
	if e == nil {
		e = newProducerEntry(epoch)
		ps.m[pid] = e
	}
	if epoch != e.epoch {
		e.epoch, e.n = epoch, 0
	}
	e.lastAppendMs = nowMs
	e.coordinatorEpoch, e.lastTimestamp = coordEpoch, markerTs
	first, open = ps.open[pid]
	delete(ps.open, pid)
	return first, open
}

// firstOpen is the first offset of the earliest open transaction, -1 if none.
func (ps *producerState) firstOpen() int64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	fu := int64(-1)
	for _, off := range ps.open {
		if fu < 0 || off < fu {
			fu = off
		}
	}
	return fu
}

// check applies Kafka's sequence rules to an idempotent batch before it is appended. A
// duplicate of one of the last five batches returns that batch's offsets with
// ErrDuplicateSequence; a gap after the last batch is ErrOutOfOrderSequence, as is a new
// epoch not starting at 0; an older epoch is ErrInvalidProducerEpoch.
func (ps *producerState) check(h *BatchHeader, nowMs int64) (batchMeta, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	e := ps.m[h.ProducerID]
	if e != nil && h.ProducerEpoch < e.epoch {
		return batchMeta{}, fmt.Errorf("%w: producer %d epoch %d is older than the current epoch %d",
			ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, e.epoch)
	}
	if e == nil {
		// Unknown here: new, or its state expired or was deleted with old segments.
		// Like Kafka since KIP-360, any starting sequence is taken.
		return batchMeta{}, nil
	}
	if h.ProducerEpoch > e.epoch || e.n == 0 {
		if h.BaseSequence != 0 {
			return batchMeta{}, fmt.Errorf("%w: producer %d epoch %d has no earlier batch here but starts at sequence %d, not 0",
				ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return batchMeta{}, nil
	}
	last := h.LastSequence()
	for i := range e.n {
		if b := e.batches[i]; b.firstSeq == h.BaseSequence && b.lastSeq == last {
			return b, fmt.Errorf("%w: producer %d epoch %d sequences %d..%d are already at offsets %d..%d",
				ErrDuplicateSequence, h.ProducerID, h.ProducerEpoch, b.firstSeq, b.lastSeq, b.firstOffset, b.lastOffset)
		}
	}
	if want := addSeq(e.batches[e.n-1].lastSeq, 1); h.BaseSequence != want {
		return batchMeta{}, fmt.Errorf("%w: producer %d epoch %d sent sequence %d, expected %d",
			ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence, want)
	}
	return batchMeta{}, nil
}

// update records an appended (or replayed) idempotent batch; h.BaseOffset must be the
// assigned offset.
func (ps *producerState) update(h *BatchHeader, maxTs, nowMs int64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	e := ps.m[h.ProducerID]
	if e == nil {
		e = newProducerEntry(h.ProducerEpoch)
		ps.m[h.ProducerID] = e
	}
	if h.ProducerEpoch != e.epoch {
		e.epoch, e.n = h.ProducerEpoch, 0
	}
	b := batchMeta{firstSeq: h.BaseSequence, lastSeq: h.LastSequence(), firstOffset: h.BaseOffset,
		lastOffset: h.LastOffset(), maxTimestamp: maxTs}
	if e.n == maxProducerBatches {
		copy(e.batches[:], e.batches[1:])
		e.n--
	}
	e.batches[e.n] = b
	e.n++
	e.lastAppendMs = nowMs
	e.lastTimestamp = maxTs
}

// expire forgets producers whose last append was before beforeMs.
func (ps *producerState) expire(beforeMs int64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for id, e := range ps.m {
		if _, open := ps.open[id]; !open && e.lastAppendMs < beforeMs {
			delete(ps.m, id)
		}
	}
}

// Producers lists the idempotent and transactional producers known to this partition
// (not expired), by producer id: what Kafka's DescribeProducers answers. It takes only
// the producer state's own lock, so it may be called at any time, concurrently with
// appends.
func (l *Log) Producers() []ProducerInfo {
	ps := l.producer
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]ProducerInfo, 0, len(ps.m))
	for id, e := range ps.m {
		pi := ProducerInfo{ProducerID: id, ProducerEpoch: e.epoch, LastSequence: -1, LastOffset: -1, LastTimestamp: e.lastTimestamp,
			CoordinatorEpoch: e.coordinatorEpoch, CurrentTxnStartOffset: -1, LastAppendTime: e.lastAppendMs}
		if e.n > 0 {
			b := e.batches[e.n-1]
			pi.LastSequence, pi.LastOffset = b.lastSeq, b.lastOffset
		}
		if first, open := ps.open[id]; open {
			pi.CurrentTxnStartOffset = first
		}
		out = append(out, pi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}

// Snapshot file: see broker/FORMAT.md ("Producer state snapshot").
const (
	snapshotMagic   = "TPPS"
	snapshotVersion = 3
	snapshotHeader  = 4 + 2 + 4 + 4 // magic, version, crc, count
	// id, epoch, last append, open transaction's first offset, coordinator epoch, last
	// timestamp, batch count
	snapshotEntry   = 8 + 2 + 8 + 8 + 4 + 8 + 1
	snapshotEntryV2 = 8 + 2 + 8 + 8 + 1 // version 2: no coordinator epoch, last timestamp
	snapshotEntryV1 = 8 + 2 + 8 + 1     // version 1: no open transaction either
	snapshotBatch   = 4 + 4 + 8 + 8 + 8
)

func snapshotName(off int64) string { return segmentName(off, ".snapshot") }

// encode serialises the state (producers sorted by id, so equal states give equal bytes).
func (ps *producerState) encode() []byte {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ids := make([]int64, 0, len(ps.m))
	for id := range ps.m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	b := make([]byte, snapshotHeader, snapshotHeader+len(ids)*(snapshotEntry+maxProducerBatches*snapshotBatch))
	copy(b, snapshotMagic)
	binary.BigEndian.PutUint16(b[4:], snapshotVersion)
	binary.BigEndian.PutUint32(b[10:], uint32(len(ids)))
	for _, id := range ids {
		e := ps.m[id]
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint16(b, uint16(e.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.lastAppendMs))
		txnFirst, open := ps.open[id]
		if !open {
			txnFirst = -1
		}
		b = binary.BigEndian.AppendUint64(b, uint64(txnFirst))
		b = binary.BigEndian.AppendUint32(b, uint32(e.coordinatorEpoch))
		b = binary.BigEndian.AppendUint64(b, uint64(e.lastTimestamp))
		b = append(b, byte(e.n))
		for _, m := range e.batches[:e.n] {
			b = binary.BigEndian.AppendUint32(b, uint32(m.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.firstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.lastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.maxTimestamp))
		}
	}
	binary.BigEndian.PutUint32(b[6:], crc32.Checksum(b[10:], castagnoli))
	return b
}

var errBadSnapshot = errors.New("bad producer state snapshot")

// decodeSnapshot reads a snapshot: the producers and their open transactions' first
// offsets. Version 1 snapshots (written before transactions were served) have no open
// transactions; versions 1 and 2 have no coordinator epochs (-1) and take the last
// batch's max timestamp as the last timestamp.
func decodeSnapshot(b []byte) (map[int64]*producerEntry, map[int64]int64, error) {
	if len(b) < snapshotHeader || string(b[:4]) != snapshotMagic {
		return nil, nil, fmt.Errorf("%w: no header", errBadSnapshot)
	}
	v := binary.BigEndian.Uint16(b[4:])
	if v < 1 || v > snapshotVersion {
		return nil, nil, fmt.Errorf("%w: version %d", errBadSnapshot, v)
	}
	entrySize := snapshotEntry
	switch v {
	case 1:
		entrySize = snapshotEntryV1
	case 2:
		entrySize = snapshotEntryV2
	}
	open := map[int64]int64{}
	if crc := crc32.Checksum(b[10:], castagnoli); crc != binary.BigEndian.Uint32(b[6:]) {
		return nil, nil, fmt.Errorf("%w: crc mismatch", errBadSnapshot)
	}
	count := int(binary.BigEndian.Uint32(b[10:]))
	m := make(map[int64]*producerEntry, min(count, 1<<16))
	p := b[snapshotHeader:]
	for range count {
		if len(p) < entrySize {
			return nil, nil, fmt.Errorf("%w: truncated", errBadSnapshot)
		}
		id := int64(binary.BigEndian.Uint64(p))
		e := newProducerEntry(int16(binary.BigEndian.Uint16(p[8:])))
		e.lastAppendMs, e.n = int64(binary.BigEndian.Uint64(p[10:])), int(p[entrySize-1])
		if v >= 2 {
			if first := int64(binary.BigEndian.Uint64(p[18:])); first >= 0 {
				open[id] = first
			}
		}
		if v >= 3 {
			e.coordinatorEpoch = int32(binary.BigEndian.Uint32(p[26:]))
			e.lastTimestamp = int64(binary.BigEndian.Uint64(p[30:]))
		}
		p = p[entrySize:]
		if e.n > maxProducerBatches || len(p) < e.n*snapshotBatch {
			return nil, nil, fmt.Errorf("%w: bad batch count %d", errBadSnapshot, e.n)
		}
		for i := range e.n {
			e.batches[i] = batchMeta{
				firstSeq: int32(binary.BigEndian.Uint32(p)), lastSeq: int32(binary.BigEndian.Uint32(p[4:])),
				firstOffset: int64(binary.BigEndian.Uint64(p[8:])), lastOffset: int64(binary.BigEndian.Uint64(p[16:])),
				maxTimestamp: int64(binary.BigEndian.Uint64(p[24:])),
			}
			p = p[snapshotBatch:]
		}
		if v < 3 && e.n > 0 {
			e.lastTimestamp = e.batches[e.n-1].maxTimestamp
		}
		m[id] = e
	}
	if len(p) != 0 {
		return nil, nil, fmt.Errorf("%w: %d trailing bytes", errBadSnapshot, len(p))
	}
	return m, open, nil
}

// writeSnapshot stores the state as of offset (every batch below offset applied) and
// keeps only the two newest snapshots.
func (ps *producerState) writeSnapshot(dir string, offset int64) error {
	if err := writeFileAtomic(filepath.Join(dir, snapshotName(offset)), ps.encode()); err != nil {
		return err
	}
	offs, _ := listSnapshots(dir)
	for i := 0; i < len(offs)-2; i++ {
		os.Remove(filepath.Join(dir, snapshotName(offs[i])))
	}
	return nil
}

// listSnapshots returns the snapshot offsets in dir, ascending.
func listSnapshots(dir string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list log directory %q: %w", dir, err)
	}
	var offs []int64
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".snapshot") {
			if off, err := parseBase(e.Name(), ".snapshot"); err == nil {
				offs = append(offs, off)
			}
		}
	}
	sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
	return offs, nil
}

// loadSnapshot loads the newest valid snapshot at or below end, removing snapshots past
// end (the log was truncated below them) and unreadable ones. It returns the snapshot's
// offset, 0 if none (replay everything).
func (ps *producerState) loadSnapshot(dir string, end int64, logger *slog.Logger) (int64, error) {
	offs, err := listSnapshots(dir)
	if err != nil {
		return 0, err
	}
	for i := len(offs) - 1; i >= 0; i-- {
		p := filepath.Join(dir, snapshotName(offs[i]))
		if offs[i] > end {
			os.Remove(p)
			continue
		}
		b, err := os.ReadFile(p)
		if err == nil {
			var m map[int64]*producerEntry
			var open map[int64]int64
			if m, open, err = decodeSnapshot(b); err == nil {
				ps.mu.Lock()
				ps.m, ps.open = m, open
				ps.mu.Unlock()
				return offs[i], nil
			}
		}
		logger.Warn("ignoring unreadable producer state snapshot", "file", p, "err", err)
		os.Remove(p)
	}
	return 0, nil
}
