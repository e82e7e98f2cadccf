package storage

// Transactions in one partition, as Kafka's ProducerStateManager and TransactionIndex
// keep them: a transactional producer's first batch opens a transaction at its offset; a
// control batch (commit or abort marker, written by the broker's transaction
// coordinator through AppendMarker) closes it. The last stable offset is the first
// offset of the earliest open transaction, or the high watermark when none is open.
// Every aborted transaction is listed (producer id, first offset, marker offset) in the
// index of the segment its marker went to (<base>.txnindex, see broker/FORMAT.md), which
// read_committed fetches use to drop the aborted records.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
)

// AbortedTxn is one aborted transaction of a partition (Kafka's AbortedTxn): the
// producer, the offset of its transaction's first batch here, the offset of its abort
// marker, and the last stable offset right after the marker.
type AbortedTxn struct {
	ProducerID       int64
	FirstOffset      int64
	LastOffset       int64
	LastStableOffset int64
}

// Control record types (the key of a control record: version int16, type int16).
const (
	controlAbort  = 0
	controlCommit = 1
)

// txnIndexEntry is the size of one .txnindex entry: version int16, producerId int64,
// firstOffset int64, lastOffset int64, lastStableOffset int64 (Kafka's AbortedTxn
// layout).
const txnIndexEntry = 2 + 8 + 8 + 8 + 8

func encodeTxnIndex(txns []AbortedTxn) []byte {
	b := make([]byte, 0, len(txns)*txnIndexEntry)
	for _, t := range txns {
		b = binary.BigEndian.AppendUint16(b, 0)
		b = binary.BigEndian.AppendUint64(b, uint64(t.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(t.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(t.LastOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(t.LastStableOffset))
	}
	return b
}

var errBadTxnIndex = errors.New("bad transaction index")

func decodeTxnIndex(b []byte) ([]AbortedTxn, error) {
	if len(b)%txnIndexEntry != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of entries", errBadTxnIndex, len(b))
	}
	out := make([]AbortedTxn, 0, len(b)/txnIndexEntry)
	for ; len(b) > 0; b = b[txnIndexEntry:] {
		if v := binary.BigEndian.Uint16(b); v != 0 {
			return nil, fmt.Errorf("%w: entry version %d", errBadTxnIndex, v)
		}
		t := AbortedTxn{
			ProducerID:       int64(binary.BigEndian.Uint64(b[2:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(b[10:])),
			LastOffset:       int64(binary.BigEndian.Uint64(b[18:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(b[26:])),
		}
		if t.FirstOffset > t.LastOffset || (len(out) > 0 && t.LastOffset <= out[len(out)-1].LastOffset) {
			return nil, fmt.Errorf("%w: entry %d out of order", errBadTxnIndex, len(out))
		}
		out = append(out, t)
	}
	return out, nil
}

// loadTxnIndex reads a segment's .txnindex (missing: no aborted transactions). An
// unreadable one is dropped with a warning: its aborted transactions' records would then
// show to read_committed consumers, which is why it is rewritten atomically.
func (l *Log) loadTxnIndex(s *segment) {
	b, err := os.ReadFile(s.path(".txnindex"))
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		var txns []AbortedTxn
		if txns, err = decodeTxnIndex(b); err == nil {
			s.aborted = txns
			return
		}
	}
	l.opts.Logger.Warn("ignoring unreadable transaction index", "file", s.path(".txnindex"), "err", err)
}

// writeTxnIndex writes a segment's aborted transactions if they changed (atomically, so
// a crash leaves the old or the new list); an empty list removes the file.
func (s *segment) writeTxnIndex() error {
	if !s.txnDirty {
		return nil
	}
	if len(s.aborted) == 0 {
		if err := os.Remove(s.path(".txnindex")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot remove %q: %w", s.path(".txnindex"), err)
		}
	} else if err := writeFileAtomic(s.path(".txnindex"), encodeTxnIndex(s.aborted)); err != nil {
		return err
	}
	s.txnDirty = false
	return nil
}

// controlBatch builds a commit or abort marker for producer pid at epoch, as Kafka's
// EndTransactionMarker: one control record whose key is (version 0, type) and whose
// value is (version 0, coordinatorEpoch). The base offset is set by the append.
func controlBatch(pid int64, epoch int16, commit bool, coordinatorEpoch int32, nowMs int64) []byte {
	typ := byte(controlAbort)
	if commit {
		typ = controlCommit
	}
	rec := []byte{
		0x20,         // length 16 (zigzag varint)
		0,            // attributes
		0,            // timestamp delta 0
		0,            // offset delta 0
		0x08,         // key length 4
		0, 0, 0, typ, // key: version 0, type
		0x0c,             // value length 6
		0, 0, 0, 0, 0, 0, // value: version 0, coordinator epoch (set below)
		0, // no headers
	}
	binary.BigEndian.PutUint32(rec[12:], uint32(coordinatorEpoch))
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+len(rec))
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(BatchHeaderSize+len(rec)-batchLogOverhead))
	b[offMagic] = 2
	binary.BigEndian.PutUint16(b[offAttributes:], attrTransactional|attrControl)
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(nowMs))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(nowMs))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], 0xffffffff)
	binary.BigEndian.PutUint32(b[offRecordCount:], 1)
	b = append(b, rec...)
	binary.BigEndian.PutUint32(b[offCRC:], crcChecksum(b[offAttributes:]))
	return b
}

// controlType reads a control batch's record type (controlAbort, controlCommit) and,
// for a marker, the coordinator epoch of its value (-1 if the value is too short); ok is
// false for anything else (Kafka ignores unknown control types).
func controlType(batch []byte, h *BatchHeader) (typ int16, coordEpoch int32, ok bool) {
	err := parseRecords(batch[BatchHeaderSize:], h, func(r *recordView) {
		if !ok && r.hasKey && len(r.key) >= 4 {
			typ, ok = int16(binary.BigEndian.Uint16(r.key[2:])), true
			coordEpoch = -1
			if len(r.value) >= 6 {
				coordEpoch = int32(binary.BigEndian.Uint32(r.value[2:]))
			}
		}
	})
	return typ, coordEpoch, err == nil && ok
}

// IsTransactionalBatch reports whether the RecordBatch at the start of b carries the
// transactional attribute (false when b is too short to hold the attributes).
func IsTransactionalBatch(b []byte) bool {
	return len(b) > offAttributes+1 && b[offAttributes+1]&attrTransactional != 0
}

// BatchProducer returns the producer id and epoch of the RecordBatch header at the start
// of b, which holds at least BatchHeaderSize bytes.
func BatchProducer(b []byte) (id int64, epoch int16) {
	return int64(binary.BigEndian.Uint64(b[offProducerID:])), int16(binary.BigEndian.Uint16(b[offProducerEpoch:]))
}

// IsTransactional reports whether a batch header says transactional (data or marker).
func (h *BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports whether a batch is a control batch (a transaction marker).
func (h *BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// AppendMarker writes a commit or abort marker for producer pid at epoch (the broker's
// transaction coordinator ends a transaction with one in each of its partitions). It
// closes the producer's open transaction here, if any; an abort is added to the
// transaction index. An epoch older than the producer's here is ErrInvalidProducerEpoch.
func (l *Log) AppendMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32) (int64, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if cur, ok := l.producer.epochOf(pid); ok && epoch < cur {
		return 0, fmt.Errorf("%w: marker for producer %d epoch %d is older than the current epoch %d",
			ErrInvalidProducerEpoch, pid, epoch, cur)
	}
	nowMs := l.now()
	records := controlBatch(pid, epoch, commit, coordinatorEpoch, nowMs)
	base := l.endOffset.Load()
	setBaseOffset(records, base)
	setLeaderEpoch(records, l.opts.LeaderEpoch)
	seg, pos, err := l.writeActive(records, base, 1, nowMs)
	if err != nil {
		return 0, err
	}
	l.publish(seg, pos, records, base+1, nowMs)
	l.completeTxn(seg, pid, epoch, base, commit, coordinatorEpoch, nowMs, nowMs)
	l.wake()
	return base, nil
}

// completeTxn applies a marker at offset off with the given coordinator epoch and
// timestamp (appended or replayed into seg): the producer's epoch moves to the marker's,
// its open transaction closes and an abort is listed in seg's transaction index. Called
// with writeMu held (or during recovery).
func (l *Log) completeTxn(seg *segment, pid int64, epoch int16, off int64, commit bool, coordEpoch int32, markerTs, nowMs int64) {
	first, open := l.producer.endTxn(pid, epoch, coordEpoch, markerTs, nowMs)
	lso := l.updateFirstUnstable(off + 1)
	if open && !commit {
		l.mu.Lock()
		seg.aborted = append(seg.aborted, AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: off, LastStableOffset: lso})
		seg.txnDirty = true
		l.mu.Unlock()
	}
}

// updateFirstUnstable recomputes the first offset of the earliest open transaction and
// returns the last stable offset for a log ending at end.
func (l *Log) updateFirstUnstable(end int64) int64 {
	fu := l.producer.firstOpen()
	l.firstUnstable.Store(fu)
	if fu >= 0 && fu < end {
		return fu
	}
	return end
}

// LastStableOffset is the first offset of the earliest open transaction, or the high
// watermark when no transaction is open: read_committed consumers read below it.
func (l *Log) LastStableOffset() int64 {
	// The end first: a transactional append publishes its first offset before the end
	// moves past it, so this never answers an end that includes an open transaction.
	end := l.endOffset.Load()
	if fu := l.firstUnstable.Load(); fu >= 0 && fu < end {
		return fu
	}
	return end
}

// AbortedTxns lists the aborted transactions that overlap the offsets [from, upTo):
// those whose marker is at or after from and whose first offset is below upTo, oldest
// first (the Fetch response's AbortedTransactions).
func (l *Log) AbortedTxns(from, upTo int64) []AbortedTxn {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []AbortedTxn
	// Markers come after the transactions' data, so segments ending before from cannot
	// hold a relevant marker.
	i := max(sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > from })-1, 0)
	for _, s := range l.segs[i:] {
		for _, t := range s.aborted {
			if t.LastOffset >= from && t.FirstOffset < upTo {
				out = append(out, t)
			}
			// As Kafka's TransactionIndex: once the partition was stable up to upTo,
			// no later marker can end a transaction that began below it.
			if t.LastStableOffset >= upTo {
				return out
			}
		}
	}
	return out
}

// OpenTxns lists the producers with an open transaction here and its first offset.
func (l *Log) OpenTxns() map[int64]int64 {
	ps := l.producer
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make(map[int64]int64, len(ps.open))
	for id, off := range ps.open {
		out[id] = off
	}
	return out
}
