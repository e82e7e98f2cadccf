package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DumpOptions are kafka-dump-log.sh's options, for DumpFile.
type DumpOptions struct {
	// DeepIteration walks the records of every batch (decompressed), one line each.
	DeepIteration bool
	// PrintData adds each record's key and payload (implies DeepIteration).
	PrintData bool
	// MaxBytes stops a .log dump after this many bytes of batches (0: the whole file).
	MaxBytes int64
	// IndexSanityCheck checks an index file's entries (order, bounds, and against its
	// .log: every offset-index entry is the position of a batch with that base offset)
	// and prints the verdict; VerifyIndexOnly prints only that, not the entries.
	IndexSanityCheck, VerifyIndexOnly bool
}

// DumpFile writes a human-readable dump of one partition file to w, as Kafka's
// kafka-dump-log.sh does for its own files (which this layout is not: FORMAT.md): a
// segment's batches (.log), offset index (.index), time index (.timeindex), aborted
// transactions (.txnindex) or a producer state snapshot (.snapshot). A .log whose tail is
// not a whole, valid batch (a torn write the next open truncates) is dumped up to it and
// the rest reported; the error then says where.
func DumpFile(w io.Writer, path string, o DumpOptions) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	base, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), 10, 64)
	if err != nil {
		return fmt.Errorf("%s: not a partition file (the name is not <20-digit base offset>.<ext>)", path)
	}
	fmt.Fprintf(w, "Dumping %s\n", path)
	switch filepath.Ext(path) {
	case ".log":
		return dumpLog(w, path, b, base, o)
	case ".index":
		return dumpIndex(w, path, b, base, o)
	case ".timeindex":
		return dumpTimeIndex(w, path, b, base, o)
	case ".txnindex":
		txns, err := decodeTxnIndex(b)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, t := range txns {
			fmt.Fprintf(w, "version: 0 producerId: %d firstOffset: %d lastOffset: %d lastStableOffset: %d\n",
				t.ProducerID, t.FirstOffset, t.LastOffset, t.LastStableOffset)
		}
		return nil
	case ".snapshot":
		return dumpSnapshot(w, path, b)
	}
	return fmt.Errorf("%s: unknown file type (want .log, .index, .timeindex, .txnindex or .snapshot)", path)
}

func dumpLog(w io.Writer, path string, b []byte, base int64, o DumpOptions) error {
	fmt.Fprintf(w, "Log starting offset: %d\n", base)
	cut := o.MaxBytes > 0 && int64(len(b)) > o.MaxBytes
	if cut {
		b = b[:o.MaxBytes]
	}
	for pos := 0; pos < len(b); {
		h, size, err := checkBatch(b[pos:], 0, false)
		if err != nil {
			if cut && errors.Is(err, ErrCorruptMessage) && (declaredSize(b[pos:]) == 0 || len(b)-pos < declaredSize(b[pos:])) {
				return nil // cut by MaxBytes, as kafka-dump-log.sh's --max-bytes
			}
			fmt.Fprintf(w, "Found %d invalid bytes at the end of %s (position %d): %v\n", len(b)-pos, filepath.Base(path), pos, err)
			return fmt.Errorf("%s: invalid batch at position %d: %w", path, pos, err)
		}
		batch := b[pos : pos+size]
		tsType := "CreateTime"
		if h.Attributes&attrLogAppendTime != 0 {
			tsType = "LogAppendTime"
		}
		lastSeq := int32(-1)
		if h.BaseSequence >= 0 {
			lastSeq = h.LastSequence()
		}
		fmt.Fprintf(w, "baseOffset: %d lastOffset: %d count: %d baseSequence: %d lastSequence: %d producerId: %d producerEpoch: %d partitionLeaderEpoch: %d isTransactional: %t isControl: %t position: %d %s: %d size: %d magic: %d compresscodec: %s crcValid: true\n",
			h.BaseOffset, h.LastOffset(), h.RecordCount, h.BaseSequence, lastSeq, h.ProducerID, h.ProducerEpoch, h.LeaderEpoch,
			h.IsTransactional(), h.IsControl(), pos, tsType, h.MaxTimestamp, size, h.Magic, codecName(h.Compression()))
		if o.DeepIteration || o.PrintData {
			if err := dumpRecords(w, batch, &h, tsType, o.PrintData); err != nil {
				return fmt.Errorf("%s: batch at position %d: %w", path, pos, err)
			}
		}
		pos += size
	}
	return nil
}

func dumpRecords(w io.Writer, batch []byte, h *BatchHeader, tsType string, data bool) error {
	recs, _, err := decompressRecords(h.Compression(), batch[BatchHeaderSize:])
	if err != nil {
		return err
	}
	var line []byte
	return parseRecords(recs, h, func(r *recordView) {
		seq := int32(-1)
		if h.BaseSequence >= 0 {
			seq = addSeq(h.BaseSequence, r.delta)
		}
		ts := r.timestamp
		if h.Attributes&attrLogAppendTime != 0 {
			ts = h.MaxTimestamp
		}
		keySize, valueSize := -1, -1
		if r.hasKey {
			keySize = len(r.key)
		}
		if !r.tombstone {
			valueSize = len(r.value)
		}
		line = fmt.Appendf(line[:0], "| offset: %d %s: %d keySize: %d valueSize: %d sequence: %d headerKeys: [%s]",
			r.offset, tsType, ts, keySize, valueSize, seq, strings.Join(headerKeys(r.headers), ","))
		switch {
		case h.IsControl() && r.hasKey && len(r.key) >= 4:
			typ := binary.BigEndian.Uint16(r.key[2:])
			name := map[uint16]string{controlAbort: "ABORT", controlCommit: "COMMIT"}[typ]
			if name == "" {
				name = "UNKNOWN(" + strconv.Itoa(int(typ)) + ")"
			}
			line = fmt.Appendf(line, " endTxnMarker: %s", name)
			if len(r.value) >= 6 {
				line = fmt.Appendf(line, " coordinatorEpoch: %d", int32(binary.BigEndian.Uint32(r.value[2:])))
			}
		case data:
			if r.hasKey {
				line = append(append(line, " key: "...), printable(r.key)...)
			}
			if !r.tombstone {
				line = append(append(line, " payload: "...), printable(r.value)...)
			}
		}
		w.Write(append(line, '\n'))
	})
}

// codecName is a batch codec's name as kafka-dump-log.sh prints it.
func codecName(c int) string {
	if names := [...]string{"none", "gzip", "snappy", "lz4", "zstd"}; c < len(names) {
		return names[c]
	}
	return "unknown(" + strconv.Itoa(c) + ")"
}

// headerKeys reads the header keys of a record's headers (count, then key/value pairs);
// what does not parse ends the list with "…".
func headerKeys(b []byte) []string {
	n, m := binary.Varint(b)
	if m <= 0 || n < 0 {
		return nil
	}
	b = b[m:]
	var keys []string
	for range n {
		kl, m := binary.Varint(b)
		if m <= 0 || kl < 0 || int64(len(b)-m) < kl {
			return append(keys, "…")
		}
		keys = append(keys, printable(b[m:m+int(kl)]))
		b = b[m+int(kl):]
		vl, m := binary.Varint(b)
		if m <= 0 || int64(len(b)-m) < max(vl, 0) {
			return append(keys, "…")
		}
		b = b[m+int(max(vl, 0)):]
	}
	return keys
}

// printable is b as it is when it is valid UTF-8 without control characters, else Go's
// quoted form (one record stays one line).
func printable(b []byte) string {
	if utf8.Valid(b) && !slices.ContainsFunc([]rune(string(b)), func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return string(b)
	}
	return strconv.Quote(string(b))
}

// segmentLog is what an index's sanity check needs of the .log next to it: the position
// of every whole batch with its base offset, the file's size, and the offset after its
// last whole batch.
type segmentLog struct {
	starts map[int64]int64
	size   int64
	next   int64
}

func readSegmentLog(indexPath string) (segmentLog, error) {
	b, err := os.ReadFile(strings.TrimSuffix(indexPath, filepath.Ext(indexPath)) + ".log")
	if err != nil {
		return segmentLog{}, fmt.Errorf("its .log cannot be read: %w", err)
	}
	l := segmentLog{starts: map[int64]int64{}, size: int64(len(b))}
	for pos := 0; pos < len(b); {
		h, size, err := checkBatch(b[pos:], 0, false)
		if err != nil {
			break
		}
		l.starts[int64(pos)] = h.BaseOffset
		l.next = h.LastOffset() + 1
		pos += size
	}
	return l, nil
}

// dumpIndexFile prints an index's n entries (line) unless VerifyIndexOnly and, with
// IndexSanityCheck or VerifyIndexOnly, the verdict of check against its .log.
func dumpIndexFile(w io.Writer, path string, o DumpOptions, n int, line func(i int) string, check func(segmentLog) error) error {
	if !o.VerifyIndexOnly {
		for i := range n {
			fmt.Fprintln(w, line(i))
		}
	}
	if !o.IndexSanityCheck && !o.VerifyIndexOnly {
		return nil
	}
	l, problem := readSegmentLog(path)
	if problem == nil {
		problem = check(l)
	}
	if problem != nil {
		fmt.Fprintf(w, "%s failed the sanity check: %v\n", filepath.Base(path), problem)
		return fmt.Errorf("%s: %w", path, problem)
	}
	fmt.Fprintf(w, "%s passed the sanity check.\n", filepath.Base(path))
	return nil
}

// dumpIndex: every entry must be in order, inside the .log, and the start of the batch
// with that base offset.
func dumpIndex(w io.Writer, path string, b []byte, base int64, o DumpOptions) error {
	x := offsetIndex{base: base, buf: b}
	return dumpIndexFile(w, path, o, x.len(), func(i int) string {
		off, pos := x.entry(i)
		return fmt.Sprintf("offset: %d position: %d", off, pos)
	}, func(l segmentLog) error {
		if err := x.check(l.size); err != nil {
			return err
		}
		for i := range x.len() {
			off, pos := x.entry(i)
			if got, ok := l.starts[pos]; !ok || got != off {
				return fmt.Errorf("index entry %d (offset %d, position %d) is not the start of the batch with that base offset", i, off, pos)
			}
		}
		return nil
	})
}

func dumpTimeIndex(w io.Writer, path string, b []byte, base int64, o DumpOptions) error {
	x := timeIndex{base: base, buf: b}
	return dumpIndexFile(w, path, o, x.len(), func(i int) string {
		ts, off := x.entry(i)
		return fmt.Sprintf("timestamp: %d offset: %d", ts, off)
	}, func(l segmentLog) error { return x.check(l.next) })
}

func dumpSnapshot(w io.Writer, path string, b []byte) error {
	m, open, err := decodeSnapshot(b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		e := m[id]
		first, ok := open[id]
		if !ok {
			first = -1
		}
		fmt.Fprintf(w, "producerId: %d producerEpoch: %d coordinatorEpoch: %d currentTxnFirstOffset: %d lastTimestamp: %d lastAppendMs: %d",
			id, e.epoch, e.coordinatorEpoch, first, e.lastTimestamp, e.lastAppendMs)
		for i := range e.n {
			bm := e.batches[i]
			fmt.Fprintf(w, " [firstSequence: %d lastSequence: %d firstOffset: %d lastOffset: %d maxTimestamp: %d]",
				bm.firstSeq, bm.lastSeq, bm.firstOffset, bm.lastOffset, bm.maxTimestamp)
		}
		fmt.Fprintln(w)
	}
	return nil
}
