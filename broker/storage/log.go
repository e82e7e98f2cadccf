package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by Log. They are wrapped with detail; test with errors.Is. The protocol
// layer maps them to Kafka error codes.
var (
	ErrCorruptMessage       = errors.New("corrupt message")              // CORRUPT_MESSAGE
	ErrBatchTooLarge        = errors.New("record batch too large")       // RECORD_BATCH_TOO_LARGE / MESSAGE_TOO_LARGE
	ErrInvalidRecord        = errors.New("invalid record")               // INVALID_RECORD
	ErrOffsetOutOfRange     = errors.New("offset out of range")          // OFFSET_OUT_OF_RANGE
	ErrOutOfOrderSequence   = errors.New("out of order sequence")        // OUT_OF_ORDER_SEQUENCE_NUMBER
	ErrDuplicateSequence    = errors.New("duplicate sequence")           // DUPLICATE_SEQUENCE_NUMBER: answer success with the returned offsets
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")       // INVALID_PRODUCER_EPOCH
	ErrClosed               = errors.New("log closed")                   // the partition is going away
	ErrInvalidOffset        = errors.New("offset beyond high watermark") // DeleteRecords past the end
)

// FlushPolicy says when appended data is fsynced.
type FlushPolicy struct {
	// Mode is "os" (leave it to the page cache; Kafka's default), "always" (fsync before
	// Append returns) or "interval" (a background fsync every Interval).
	Mode     string
	Interval time.Duration
}

// Options configure one partition log. Zero values mean the DefaultOptions value unless
// stated otherwise.
type Options struct {
	SegmentBytes       int64 // roll when the active segment would exceed this (segment.bytes)
	SegmentMS          int64 // roll when the active segment is older than this (segment.ms)
	RetentionMS        int64 // delete closed segments whose newest record is older; -1 = unlimited
	RetentionBytes     int64 // delete oldest closed segments while the log is larger; -1 = unlimited
	MaxMessageBytes    int32 // largest accepted batch (max.message.bytes)
	IndexIntervalBytes int   // sparse index density (index.interval.bytes)
	Flush              FlushPolicy
	// LogAppendTime stamps batches with the append time (message.timestamp.type=LogAppendTime).
	LogAppendTime bool
	// Compression is compression.type: CompressionProducer (the zero value) stores each
	// batch as produced; any other value stores a batch in another codec re-encoded in
	// this one (its records decompressed and compressed again, the header's codec bits,
	// length and CRC rewritten, every other field kept), a batch in this codec as
	// produced.
	Compression Compression
	// CompressionLevel is the level Compression's codec re-encodes at, with Kafka's
	// meaning for that codec (compression.gzip.level, compression.lz4.level,
	// compression.zstd.level; see MinGzipLevel …); 0 = the codec's default.
	CompressionLevel int
	// TimestampBounds, when set, refuse a batch with a CreateTime record timestamp too far
	// from the append time (ErrInvalidTimestamp); not checked with LogAppendTime. nil =
	// no bounds (Kafka's default). Appends then read every record, decompressing.
	TimestampBounds *TimestampBounds
	// LeaderEpoch is written into every appended batch's partitionLeaderEpoch.
	LeaderEpoch int32
	// ProducerIDExpirationMS forgets an idempotent producer this long after its last
	// append (producer.id.expiration.ms); -1 = never.
	ProducerIDExpirationMS int64
	// DeleteRetentionMS keeps a tombstone this long before Compact drops it
	// (delete.retention.ms).
	DeleteRetentionMS int64
	// Compact marks a compacted log (cleanup.policy=compact): every appended record must
	// have a key, and CompactIfDirty cleans it. Retention by time and size is separate
	// (the broker turns it off for compact-only topics).
	Compact bool
	// MinCleanableDirtyRatio is the share of the closed segments' bytes appended since the
	// last clean at which CompactIfDirty cleans (min.cleanable.dirty.ratio).
	MinCleanableDirtyRatio float64
	// MinCompactionLagMS leaves segments with records younger than this uncompacted
	// (min.compaction.lag.ms).
	MinCompactionLagMS int64
	// MaxCompactionLagMS makes CompactIfDirty clean, whatever the dirty ratio, once the
	// oldest dirty batch is this old (max.compaction.lag.ms); 0 = no such bound.
	MaxCompactionLagMS int64
	// CleanerMaxKeys bounds the keys one Compact pass maps (~40 bytes each; Kafka's
	// log.cleaner.dedupe.buffer.size); a log with more dirty keys takes several passes.
	CleanerMaxKeys int
	Now            func() time.Time // nil = time.Now
	Logger         *slog.Logger     // nil = slog.Default()
}

// DefaultOptions are Kafka's topic defaults.
func DefaultOptions() Options {
	return Options{
		SegmentBytes:           1 << 30,
		SegmentMS:              7 * 24 * 3600 * 1000,
		RetentionMS:            7 * 24 * 3600 * 1000,
		RetentionBytes:         -1,
		MaxMessageBytes:        1048588,
		IndexIntervalBytes:     4096,
		Flush:                  FlushPolicy{Mode: "os"},
		ProducerIDExpirationMS: 24 * 3600 * 1000,
		DeleteRetentionMS:      24 * 3600 * 1000,
		MinCleanableDirtyRatio: 0.5,
		CleanerMaxKeys:         1 << 20,
	}
}

func (o *Options) fill() {
	d := DefaultOptions()
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = d.SegmentBytes
	}
	if o.SegmentBytes > math.MaxInt32 {
		o.SegmentBytes = math.MaxInt32 // index positions are 32-bit, as in Kafka
	}
	if o.SegmentMS <= 0 {
		o.SegmentMS = d.SegmentMS
	}
	if o.RetentionMS == 0 {
		o.RetentionMS = d.RetentionMS
	}
	if o.RetentionBytes == 0 {
		o.RetentionBytes = d.RetentionBytes
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = d.MaxMessageBytes
	}
	if o.IndexIntervalBytes <= 0 {
		o.IndexIntervalBytes = d.IndexIntervalBytes
	}
	if o.Flush.Mode == "" {
		o.Flush.Mode = "os"
	}
	if o.Flush.Mode == "interval" && o.Flush.Interval <= 0 {
		o.Flush.Interval = time.Second
	}
	if o.ProducerIDExpirationMS == 0 {
		o.ProducerIDExpirationMS = d.ProducerIDExpirationMS
	}
	if o.DeleteRetentionMS == 0 {
		o.DeleteRetentionMS = d.DeleteRetentionMS
	}
	if o.CleanerMaxKeys <= 0 {
		o.CleanerMaxKeys = d.CleanerMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// AppendResult is what Append assigned.
type AppendResult struct {
	BaseOffset, LastOffset int64
	// LogAppendTimeMs is the append time for LogAppendTime topics and -1 otherwise, as the
	// Produce response wants it.
	LogAppendTimeMs int64
	LogStartOffset  int64
}

// Log is one partition's log: a directory of segments, the last one active.
type Log struct {
	dir string

	compactMu sync.Mutex // one Compact at a time; taken before writeMu
	writeMu   sync.Mutex // serialises writers; taken before mu
	opts      Options    // guarded by writeMu (readers use snapshot fields below)
	closed    bool       // guarded by writeMu
	flusher   *flusher   // guarded by writeMu
	producer  *producerState

	bg         sync.WaitGroup // background fsyncs of rolled segments
	lastSync   chan struct{}  // closed when the newest of them is done; guarded by writeMu
	syncFailed atomic.Bool    // a background fsync failed: the recovery point stays put

	mu   sync.RWMutex
	segs []*segment // guarded by mu; never empty while open; last is active

	isClosed    atomic.Bool
	startOffset atomic.Int64
	cleanedTo   atomic.Int64 // Compact's last pass covered the closed segments below this offset
	endOffset   atomic.Int64
	// firstUnstable is the first offset of the earliest open transaction, -1 if none
	// (LastStableOffset).
	firstUnstable atomic.Int64
	size          atomic.Int64
	dirty         atomic.Bool // appended since the last fsync

	notifyMu   sync.Mutex
	notifyCh   chan struct{}
	notifyUsed bool // someone holds notifyCh: the next append must close it
}

// OpenLog opens or creates the partition directory dir and recovers it.
func OpenLog(dir string, opts Options) (*Log, error) {
	opts.fill()
	switch opts.Flush.Mode {
	case "os", "always", "interval":
	default:
		return nil, fmt.Errorf("cannot open log %q: unknown flush mode %q (want os, always or interval)", dir, opts.Flush.Mode)
	}
	if opts.Compression < CompressionProducer || opts.Compression > CompressionZstd {
		return nil, fmt.Errorf("cannot open log %q: unknown compression %d", dir, opts.Compression)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create log directory %q: %w", dir, err)
	}
	l := &Log{dir: dir, opts: opts, notifyCh: make(chan struct{})}
	l.firstUnstable.Store(-1)
	l.producer = newProducerState()
	if err := l.recover(); err != nil {
		l.closeSegments()
		return nil, err
	}
	l.startFlusher()
	return l, nil
}

func (l *Log) now() int64 { return l.opts.Now().UnixMilli() }

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// LogStartOffset is the first offset that may still be read.
func (l *Log) LogStartOffset() int64 { return l.startOffset.Load() }

// HighWatermark is the log end offset (the offset the next record will get); on a single
// node every appended record is committed.
func (l *Log) HighWatermark() int64 { return l.endOffset.Load() }

// Size is the number of bytes in the segment files.
func (l *Log) Size() int64 { return l.size.Load() }

// Notify returns a channel closed on the next successful Append (or on Close; after
// Close it returns a closed channel).
func (l *Log) Notify() <-chan struct{} {
	l.notifyMu.Lock()
	defer l.notifyMu.Unlock()
	l.notifyUsed = true
	return l.notifyCh
}

// wake closes the channel handed out by Notify; appends nobody waits for cost nothing.
func (l *Log) wake() {
	l.notifyMu.Lock()
	if l.notifyUsed && !l.isClosed.Load() {
		close(l.notifyCh)
		l.notifyCh = make(chan struct{})
		l.notifyUsed = false
	}
	l.notifyMu.Unlock()
}

// Append validates records (one or more RecordBatch v2), assigns offsets in place, writes
// them to the active segment (rolling first if needed) and applies the flush policy. An
// idempotent producer's duplicate batch is not written: it returns the original offsets
// with ErrDuplicateSequence.
func (l *Log) Append(records []byte) (AppendResult, error) {
	return l.append(records, true)
}

// AppendCRCChecked is Append for records whose batches a RecordsCRC has found intact
// (OK over exactly these bytes, unchanged since): everything but the CRC is checked as
// Append checks it. The produce path checks CRCs while the request is still arriving.
func (l *Log) AppendCRCChecked(records []byte) (AppendResult, error) {
	return l.append(records, false)
}

func (l *Log) append(records []byte, checkCRC bool) (AppendResult, error) {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return AppendResult{}, ErrClosed
	}
	if len(records) == 0 {
		return AppendResult{}, fmt.Errorf("%w: no record batch", ErrInvalidRecord)
	}
	o := &l.opts
	nowMs := l.now()
	// Pass 1: validate everything before touching anything.
	var first BatchHeader
	var count int64
	var recoded []byte // the record set to store, when compression.type re-encoded a batch
	nb := 0
	for p := 0; p < len(records); nb++ {
		h, n, err := parseBatch(records[p:], o.MaxMessageBytes, true, checkCRC)
		if err != nil {
			return AppendResult{}, fmt.Errorf("batch %d at byte %d: %w", nb, p, err)
		}
		if nb == 0 {
			first = h
		}
		if h.Idempotent() && (h.BaseSequence < 0 || h.ProducerEpoch < 0) {
			return AppendResult{}, fmt.Errorf("%w: producer id %d with epoch %d and sequence %d", ErrInvalidRecord, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		if h.Idempotent() && (nb > 0 || n != len(records)) {
			return AppendResult{}, fmt.Errorf("%w: an idempotent producer's batch must be alone in its partition's records", ErrInvalidRecord)
		}
		if h.Attributes&(attrTransactional|attrControl) != 0 {
			// As Kafka's LogValidator: clients never write markers; a transactional
			// batch needs a producer id.
			if h.Attributes&attrControl != 0 {
				return AppendResult{}, fmt.Errorf("%w: clients are not allowed to write control records", ErrInvalidRecord)
			}
			if !h.Idempotent() {
				return AppendResult{}, fmt.Errorf("%w: a transactional batch without a producer id", ErrInvalidRecord)
			}
		}
		if o.Compression != CompressionProducer { // the one compare the default path pays
			if recoded, err = recode(recoded, records, p, n, &h, o, nowMs); err != nil {
				return AppendResult{}, fmt.Errorf("batch %d at byte %d: %w", nb, p, err)
			}
		} else if o.needsRecords() {
			if err := checkRecords(records[p:p+n], &h, o, nowMs); err != nil {
				return AppendResult{}, fmt.Errorf("batch %d at byte %d: %w", nb, p, err)
			}
		}
		count += int64(h.LastOffsetDelta) + 1
		p += n
	}
	if recoded != nil {
		records = recoded
		first = decodeHeader(records)
	}
	if first.Idempotent() {
		if dup, err := l.producer.check(&first, nowMs); err != nil {
			if errors.Is(err, ErrDuplicateSequence) {
				return AppendResult{BaseOffset: dup.firstOffset, LastOffset: dup.lastOffset, LogAppendTimeMs: -1, LogStartOffset: l.startOffset.Load()}, err
			}
			return AppendResult{}, err
		}
	}

	base := l.endOffset.Load()
	// Pass 2: assign offsets (outside the CRC), stamp LogAppendTime (CRC recomputed).
	appendTime := int64(-1)
	if o.LogAppendTime {
		appendTime = nowMs
	}
	off := base
	for p := 0; p < len(records); {
		b := records[p:]
		size := int(int32FromBytes(b[offBatchLength:])) + batchLogOverhead
		setBaseOffset(b, off)
		setLeaderEpoch(b, o.LeaderEpoch)
		if o.LogAppendTime {
			setLogAppendTime(b, size, nowMs)
		}
		off += int64(int32FromBytes(b[offLastOffsetDelta:])) + 1
		p += size
	}

	seg, pos, err := l.writeActive(records, base, count, nowMs)
	if err != nil {
		return AppendResult{}, err
	}
	if first.Attributes&attrTransactional != 0 {
		// Before the end moves past it (LastStableOffset reads the end first).
		l.producer.beginTxn(first.ProducerID, base)
		l.updateFirstUnstable(base)
	}
	l.publish(seg, pos, records, off, nowMs)

	if first.Idempotent() {
		first.BaseOffset = base
		maxTs := first.MaxTimestamp
		if o.LogAppendTime { // as stored (and replayed): stamped with the append time
			maxTs = nowMs
		}
		l.producer.update(&first, maxTs, nowMs)
	}
	l.wake()
	return AppendResult{BaseOffset: base, LastOffset: off - 1, LogAppendTimeMs: appendTime, LogStartOffset: l.startOffset.Load()}, nil
}

// writeActive writes records (count offsets from base, offsets assigned) at the end of
// the active segment, rolling first if needed, and applies the flush policy. Readers do
// not see them until publish. Called with writeMu held.
func (l *Log) writeActive(records []byte, base, count, nowMs int64) (*segment, int64, error) {
	o := &l.opts
	seg := l.active()
	if seg.size > 0 && (seg.size+int64(len(records)) > o.SegmentBytes ||
		nowMs-seg.createdMs >= o.SegmentMS ||
		base+count-seg.base > math.MaxUint32) {
		var err error
		if seg, err = l.roll(base, nowMs); err != nil {
			return nil, 0, err
		}
	}
	if seg.size == 0 {
		seg.createdMs = nowMs
	}
	pos := seg.size
	seg.reserve(pos+int64(len(records)), int64(len(records)))
	if _, err := writeAt(seg.f, records, pos); err != nil {
		// Leave nothing half-written behind: readers never saw it, recovery won't either.
		seg.reserved = 0 // the truncation frees the reserve too
		if terr := seg.f.Truncate(pos); terr != nil {
			err = errors.Join(err, terr)
		}
		return nil, 0, fmt.Errorf("cannot append to segment %q: %w", seg.path(".log"), err)
	}
	if o.Flush.Mode == "always" {
		if err := syncFile(seg.f); err != nil {
			seg.reserved = 0
			if terr := seg.f.Truncate(pos); terr != nil {
				err = errors.Join(err, terr)
			}
			return nil, 0, fmt.Errorf("cannot sync segment %q: %w", seg.path(".log"), err)
		}
	} else {
		l.dirty.Store(true)
	}
	return seg, pos, nil
}

// publish makes records written at pos of seg visible: indexes, sizes and the end
// offset (next) move together under mu.
func (l *Log) publish(seg *segment, pos int64, records []byte, next, nowMs int64) {
	l.mu.Lock()
	for p := 0; p < len(records); {
		h := decodeHeader(records[p:])
		seg.noteBatch(&h, pos+int64(p), h.Size(), nowMs, l.opts.IndexIntervalBytes)
		p += h.Size()
	}
	l.endOffset.Store(next)
	l.size.Add(int64(len(records)))
	l.mu.Unlock()
}

func int32FromBytes(b []byte) int32 {
	return int32(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
}

// roll seals the active segment (fsync, final index entries, index files, producer
// snapshot) and starts a new one at nextOffset. Called with writeMu held.
func (l *Log) roll(nextOffset, nowMs int64) (*segment, error) {
	old := l.active()
	if err := old.releaseReserve(); err != nil {
		l.opts.Logger.Warn("cannot release reserved segment space", "err", err) // only space is lost
	}
	l.mu.Lock()
	err := old.sealIndexes()
	if err == nil {
		old.mapIndexes()
	}
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	seg, err := createSegment(l.dir, nextOffset, nowMs)
	if err != nil {
		return nil, err
	}
	if err := l.producer.writeSnapshot(l.dir, nextOffset); err != nil {
		l.opts.Logger.Warn("cannot write producer state snapshot", "dir", l.dir, "err", err)
	}
	if err := syncDir(l.dir); err != nil {
		seg.f.Close()
		return nil, err
	}
	l.mu.Lock()
	l.segs = append(l.segs, seg)
	l.mu.Unlock()

	// The old segment's data is fsynced in the background, as Kafka does, so a roll
	// never stalls appends behind a large fsync; the recovery point records how far
	// segments are known to be on disk.
	old.acquire()
	prev, done := l.lastSync, make(chan struct{})
	l.lastSync = done
	l.bg.Add(1)
	go l.syncRolled(old, nextOffset, prev, done, l.opts.Logger)
	return seg, nil
}

// syncRolled fsyncs a rolled segment and then, once every earlier rolled segment is
// synced too, moves the recovery point to upTo (the next segment's base).
func (l *Log) syncRolled(s *segment, upTo int64, prev, done chan struct{}, logger *slog.Logger) {
	defer l.bg.Done()
	defer close(done)
	err := syncFile(s.f)
	s.release()
	if prev != nil {
		<-prev
	}
	if err != nil {
		l.syncFailed.Store(true)
		logger.Error("cannot sync rolled segment; it will be checked on the next start", "segment", s.path(".log"), "err", err)
		return
	}
	if !l.syncFailed.Load() {
		if err := l.writeOffsetFile(recoveryPointFile, upTo); err != nil {
			logger.Warn("cannot write recovery point", "dir", l.dir, "err", err)
		}
	}
}

// Roll closes the active segment and starts a new one (if the active one holds data).
func (l *Log) Roll() error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.active().size == 0 {
		return nil
	}
	_, err := l.roll(l.endOffset.Load(), l.now())
	return err
}

// SetOptions applies changed topic configs. Segment and retention settings take effect
// on the next append or retention pass; a changed flush policy restarts the flusher.
func (l *Log) SetOptions(opts Options) {
	opts.fill()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	old := l.opts
	switch opts.Flush.Mode {
	case "os", "always", "interval":
	default:
		old.Logger.Error("ignoring unknown flush mode; keeping the current policy", "dir", l.dir, "mode", opts.Flush.Mode)
		opts.Flush = old.Flush
	}
	if opts.Compression < CompressionProducer || opts.Compression > CompressionZstd {
		old.Logger.Error("ignoring unknown compression; keeping the current one", "dir", l.dir, "compression", opts.Compression)
		opts.Compression = old.Compression
	}
	l.opts = opts
	if !l.closed && old.Flush != opts.Flush {
		l.stopFlusher()
		l.startFlusher()
	}
}

// Options returns the options in force.
func (l *Log) Options() Options {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	return l.opts
}

// Flush fsyncs the active segment if anything was appended since the last fsync.
func (l *Log) Flush() error {
	if !l.dirty.Swap(false) {
		return nil
	}
	l.mu.RLock()
	if l.isClosed.Load() {
		l.mu.RUnlock()
		return ErrClosed
	}
	seg := l.active()
	seg.acquire()
	l.mu.RUnlock()
	defer seg.release()
	if err := syncFile(seg.f); err != nil {
		l.dirty.Store(true)
		return fmt.Errorf("cannot sync segment %q: %w", seg.path(".log"), err)
	}
	return nil
}

// Close flushes, writes the active segment's indexes and the producer snapshot, and
// closes the files. Safe to call twice.
func (l *Log) Close() error {
	l.compactMu.Lock() // let a running compaction finish its segment first
	defer l.compactMu.Unlock()
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.stopFlusher()
	l.bg.Wait()
	var errs []error
	seg := l.active()
	if err := seg.releaseReserve(); err != nil {
		errs = append(errs, err)
	}
	if err := syncFile(seg.f); err != nil {
		errs = append(errs, fmt.Errorf("cannot sync segment %q: %w", seg.path(".log"), err))
	}
	l.mu.Lock()
	if err := seg.writeIndexes(); err != nil {
		errs = append(errs, err)
	}
	if err := seg.writeTxnIndex(); err != nil {
		errs = append(errs, err)
	}
	l.mu.Unlock()
	if err := l.producer.writeSnapshot(l.dir, l.endOffset.Load()); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 && !l.syncFailed.Load() {
		if err := l.writeOffsetFile(recoveryPointFile, seg.base); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 && !l.syncFailed.Load() { // everything is on disk: the next open may skip the full scan
		if err := l.writeOffsetFile(cleanMarkerFile, l.endOffset.Load()); err != nil {
			errs = append(errs, err)
		}
	}
	l.closeSegments()
	l.notifyMu.Lock() // long-pollers wake and find the log closed
	close(l.notifyCh)
	l.notifyUsed = false
	l.notifyMu.Unlock()
	return errors.Join(errs...)
}

func (l *Log) closeSegments() {
	l.mu.Lock()
	l.isClosed.Store(true)
	for _, s := range l.segs {
		s.release()
	}
	l.segs = nil
	l.mu.Unlock()
}

// Delete closes the log and removes its directory (DeleteTopics).
func (l *Log) Delete() error {
	err := l.Close()
	if rerr := os.RemoveAll(l.dir); rerr != nil {
		return errors.Join(err, fmt.Errorf("cannot remove log directory %q: %w", l.dir, rerr))
	}
	return err
}

// flusher fsyncs the log every interval (flush policy "interval").
type flusher struct {
	stop chan struct{}
	done chan struct{}
}

func (l *Log) startFlusher() {
	if l.opts.Flush.Mode != "interval" {
		return
	}
	f := &flusher{stop: make(chan struct{}), done: make(chan struct{})}
	l.flusher = f
	go func(interval time.Duration, logger *slog.Logger) {
		defer close(f.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-t.C:
				if err := l.Flush(); err != nil && !errors.Is(err, ErrClosed) {
					logger.Error("background flush failed", "dir", l.dir, "err", err)
				}
			}
		}
	}(l.opts.Flush.Interval, l.opts.Logger)
}

func (l *Log) stopFlusher() {
	if l.flusher == nil {
		return
	}
	close(l.flusher.stop)
	<-l.flusher.done
	l.flusher = nil
}
