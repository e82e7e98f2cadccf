package channel

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/internal/fsutil"
)

// FileOptions configure a File channel.
type FileOptions struct {
	// Dir holds the log segments, the checkpoint and a lock file.
	Dir string
	// CapacityBytes bounds the pending events' encoded bytes; 0 = 1 GiB.
	CapacityBytes int64
	// Capacity bounds the pending event count; 0 = unbounded.
	Capacity int
	// MaxFileBytes rolls to a new segment past this size; 0 = 64 MiB.
	MaxFileBytes int64
	// MinFreeBytes: puts fail with a clear error while the file system has less free
	// space than this (Flume's minimumRequiredSpace); 0 = 256 MiB, -1 = no check.
	MinFreeBytes int64
	// CheckpointInterval is how often the checkpoint is written and dead segments are
	// removed; 0 = 30s.
	CheckpointInterval time.Duration
	// SyncCommits fsyncs take-commit records too. Without it a commit survives kill -9
	// (it is in the page cache) but a power cut may redeliver the last batches.
	SyncCommits bool
	// NoSync skips fsync altogether (tests, benchmarks of the upper bound).
	NoSync bool
	Log    *slog.Logger
}

// DefaultFileOptions returns the defaults for dir.
func DefaultFileOptions(dir string) FileOptions {
	return FileOptions{Dir: dir, CapacityBytes: 1 << 30, MaxFileBytes: 64 << 20,
		MinFreeBytes: 256 << 20, CheckpointInterval: 30 * time.Second}
}

// ErrDiskFull is returned (wrapped) by puts while free space is below MinFreeBytes.
var ErrDiskFull = errors.New("disk nearly full")

const (
	recPut    = 1
	recCommit = 2

	recHeader = 9 // len u32 | crc u32 | type u8
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// entry locates one pending event in the log.
type entry struct {
	id  uint64
	seg *segment
	off int64 // of the encoded event inside the segment
	n   int32
}

type segment struct {
	id    int
	path  string
	f     *os.File
	size  int64
	maxID uint64 // highest event id put in this segment (0: none)
}

// File is a durable channel: a write-ahead log of put and commit records in segment files
// plus a checkpoint that says where replay starts. See FORMAT.md.
type File struct {
	name string
	opts FileOptions
	q    *queue[entry]
	lock *os.File

	// pmu serialises puts (write, fsync, push) with checkpoints and Close, so neither
	// sees ids that are written but not yet queued. wmu guards the writer state below
	// and is held only while records are appended: a take's commit record does not wait
	// for a put's fsync. Order: pmu, then wmu, then q.mu.
	pmu    sync.Mutex
	wmu    sync.Mutex
	segs   []*segment // oldest first; the last is being written
	nextID uint64
	buf    []byte
	closed bool

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// OpenFile opens (creating if needed) the channel in opts.Dir and replays its log.
func OpenFile(name string, opts FileOptions) (*File, error) {
	d := DefaultFileOptions(opts.Dir)
	if opts.CapacityBytes == 0 {
		opts.CapacityBytes = d.CapacityBytes
	}
	if opts.MaxFileBytes == 0 {
		opts.MaxFileBytes = d.MaxFileBytes
	}
	if opts.MinFreeBytes == 0 {
		opts.MinFreeBytes = d.MinFreeBytes
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = d.CheckpointInterval
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := fsutil.MkdirAllSync(opts.Dir, syncDir); err != nil {
		return nil, fmt.Errorf("cannot create channel directory %q: %w", opts.Dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(opts.Dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open channel lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("channel directory %q is in use by another process: %w", opts.Dir, err)
	}
	c := &File{name: name, opts: opts, lock: lock, stop: make(chan struct{}), nextID: 1}
	c.q = newQueue(opts.Capacity, opts.CapacityBytes, func(e *entry) int64 { return int64(e.n) })
	c.q.key = func(e *entry) uint64 { return e.id }
	c.q.open = map[uint64]int{}
	if err := c.replay(); err != nil {
		c.closeFiles()
		lock.Close()
		return nil, err
	}
	c.wg.Add(1)
	go c.checkpointLoop()
	return c, nil
}

func (c *File) Name() string { return c.name }

// checkpointFile is the JSON checkpoint.
type checkpointFile struct {
	Version int    `json:"version"`
	NextID  uint64 `json:"next_id"`
	// Segment and Offset are where replay starts: the put record of the oldest pending
	// event, or the end of the log when nothing was pending.
	Segment int   `json:"segment"`
	Offset  int64 `json:"offset"`
	// MinPending: events with smaller ids are committed.
	MinPending uint64 `json:"min_pending"`
}

func segName(id int) string { return fmt.Sprintf("log-%08d.wal", id) }

func (c *File) replay() error {
	names, err := filepath.Glob(filepath.Join(c.opts.Dir, "log-*.wal"))
	if err != nil {
		return err
	}
	sort.Strings(names)
	var cp checkpointFile
	if data, err := os.ReadFile(filepath.Join(c.opts.Dir, "checkpoint")); err == nil {
		if err := json.Unmarshal(data, &cp); err != nil {
			return fmt.Errorf("cannot read channel checkpoint in %q: %w", c.opts.Dir, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot read channel checkpoint: %w", err)
	}
	if cp.NextID > c.nextID {
		c.nextID = cp.NextID
	}
	var pending []entry
	var committed []idRange
	for i, name := range names {
		id, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(name), "log-"), ".wal"))
		if err != nil {
			continue
		}
		if id < cp.Segment {
			// Entirely before the checkpoint: left over from a crash during cleanup.
			os.Remove(name)
			continue
		}
		f, err := os.OpenFile(name, os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("cannot open channel segment %q: %w", name, err)
		}
		s := &segment{id: id, path: name, f: f}
		c.segs = append(c.segs, s)
		start := int64(0)
		if id == cp.Segment {
			start = cp.Offset
		}
		end, err := c.scan(s, start, cp.MinPending, &pending, &committed)
		if err != nil {
			last := i == len(names)-1
			c.opts.Log.Warn("channel segment has a damaged tail", "channel", c.name, "segment", name, "at", end, "err", err, "truncated", last)
			if last {
				if err := f.Truncate(end); err != nil {
					return fmt.Errorf("cannot truncate channel segment %q: %w", name, err)
				}
			}
		}
		s.size = end
		if st, err := f.Stat(); err == nil && st.Size() > s.size {
			// A damaged segment that is not the last keeps its bytes; nothing is
			// appended there.
			s.size = st.Size()
		}
	}
	if len(c.segs) == 0 || c.segs[len(c.segs)-1].size >= c.opts.MaxFileBytes {
		if err := c.rollLocked(); err != nil {
			return err
		}
	}
	// Drop committed ids.
	sort.Slice(committed, func(i, j int) bool { return committed[i].first < committed[j].first })
	live := pending[:0]
	ci := 0
	for _, e := range pending {
		for ci < len(committed) && committed[ci].first+uint64(committed[ci].n) <= e.id {
			ci++
		}
		if ci < len(committed) && e.id >= committed[ci].first && e.id < committed[ci].first+uint64(committed[ci].n) {
			continue
		}
		live = append(live, e)
	}
	if len(live) > 0 {
		c.q.push(live, 0, -1)
	}
	c.opts.Log.Info("channel replayed", "channel", c.name, "pending", len(live), "segments", len(c.segs))
	return nil
}

type idRange struct {
	first uint64
	n     uint32
}

// scan reads records from off to the end of s, appending puts and commits. It returns the
// end of the last whole record and an error when the tail is damaged.
func (c *File) scan(s *segment, off int64, minPending uint64, pending *[]entry, committed *[]idRange) (int64, error) {
	if _, err := s.f.Seek(off, io.SeekStart); err != nil {
		return off, err
	}
	r := bufio.NewReaderSize(s.f, 1<<20)
	var hdr [recHeader]byte
	var body []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return off, nil
			}
			return off, fmt.Errorf("short record header: %w", err)
		}
		n := binary.BigEndian.Uint32(hdr[0:4])
		sum := binary.BigEndian.Uint32(hdr[4:8])
		if n > 1<<30 {
			return off, fmt.Errorf("bad record length %d", n)
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return off, fmt.Errorf("short record: %w", err)
		}
		crc := crc32.Update(crc32.Checksum(hdr[8:9], crcTable), crcTable, body)
		if crc != sum {
			return off, fmt.Errorf("bad record checksum")
		}
		switch hdr[8] {
		case recPut:
			if len(body) < 12 {
				return off, fmt.Errorf("bad put record")
			}
			first := binary.BigEndian.Uint64(body[0:8])
			count := binary.BigEndian.Uint32(body[8:12])
			p := 12
			for i := uint32(0); i < count; i++ {
				ln, err := eventLen(body[p:])
				if err != nil {
					return off, err
				}
				id := first + uint64(i)
				if id >= minPending {
					*pending = append(*pending, entry{id: id, seg: s, off: off + recHeader + int64(p), n: int32(ln)})
				}
				p += ln
			}
			if last := first + uint64(count); count > 0 {
				if last > c.nextID {
					c.nextID = last
				}
				s.maxID = last - 1
			}
		case recCommit:
			for p := 0; p+12 <= len(body); p += 12 {
				*committed = append(*committed, idRange{binary.BigEndian.Uint64(body[p:]), binary.BigEndian.Uint32(body[p+8:])})
			}
		default:
			return off, fmt.Errorf("unknown record type %d", hdr[8])
		}
		off += recHeader + int64(n)
	}
}

// Event encoding: body len u32 | header count u16 | (key len u16, key, value len u32,
// value)* | body.
func appendEvent(b []byte, e *ingest.Event) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Body)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Headers)))
	for _, h := range e.Headers {
		b = binary.BigEndian.AppendUint16(b, uint16(len(h.Key)))
		b = append(b, h.Key...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(h.Value)))
		b = append(b, h.Value...)
	}
	return append(b, e.Body...)
}

func eventLen(b []byte) (int, error) {
	if len(b) < 6 {
		return 0, fmt.Errorf("bad event encoding")
	}
	body := int(binary.BigEndian.Uint32(b))
	nh := int(binary.BigEndian.Uint16(b[4:]))
	p := 6
	for i := 0; i < nh; i++ {
		if p+2 > len(b) {
			return 0, fmt.Errorf("bad event encoding")
		}
		p += 2 + int(binary.BigEndian.Uint16(b[p:]))
		if p+4 > len(b) {
			return 0, fmt.Errorf("bad event encoding")
		}
		p += 4 + int(binary.BigEndian.Uint32(b[p:]))
	}
	p += body
	if p > len(b) {
		return 0, fmt.Errorf("bad event encoding")
	}
	return p, nil
}

// decodeEvent decodes one event. Its body and header strings alias b, which callers
// hand it from a buffer of its own that is never written again (one per take), and its
// headers are appended to hs, so a take allocates once for all its events' headers.
func decodeEvent(b []byte, hs ingest.Headers) (ingest.Event, ingest.Headers, error) {
	if _, err := eventLen(b); err != nil {
		return ingest.Event{}, hs, err
	}
	body := int(binary.BigEndian.Uint32(b))
	nh := int(binary.BigEndian.Uint16(b[4:]))
	p := 6
	var ev ingest.Event
	start := len(hs)
	for i := 0; i < nh; i++ {
		kl := int(binary.BigEndian.Uint16(b[p:]))
		k := aliasString(b[p+2 : p+2+kl])
		p += 2 + kl
		vl := int(binary.BigEndian.Uint32(b[p:]))
		hs = append(hs, ingest.Header{Key: k, Value: aliasString(b[p+4 : p+4+vl])})
		p += 4 + vl
	}
	if nh > 0 {
		ev.Headers = hs[start:len(hs):len(hs)]
	}
	ev.Body = b[p : p+body : p+body]
	return ev, hs, nil
}

// aliasString views b as a string without copying; b must never change afterwards.
func aliasString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// writeRecord appends one record to the active segment; callers hold wmu.
func (c *File) writeRecord(typ byte, payload []byte, sync bool) (*segment, int64, error) {
	s := c.segs[len(c.segs)-1]
	c.buf = c.buf[:0]
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(payload)))
	crc := crc32.Update(crc32.Checksum([]byte{typ}, crcTable), crcTable, payload)
	c.buf = binary.BigEndian.AppendUint32(c.buf, crc)
	c.buf = append(c.buf, typ)
	c.buf = append(c.buf, payload...)
	off := s.size
	if _, err := s.f.WriteAt(c.buf, off); err != nil {
		// Cut a partial write so the next record starts clean.
		_ = s.f.Truncate(off)
		return nil, 0, fmt.Errorf("cannot write channel segment %q: %w", s.path, err)
	}
	if sync && !c.opts.NoSync {
		if err := syscall.Fdatasync(int(s.f.Fd())); err != nil {
			return nil, 0, fmt.Errorf("cannot sync channel segment %q: %w", s.path, err)
		}
	}
	s.size += int64(len(c.buf))
	return s, off, nil
}

func (c *File) rollLocked() error {
	id := 1
	if n := len(c.segs); n > 0 {
		id = c.segs[n-1].id + 1
	}
	path := filepath.Join(c.opts.Dir, segName(id))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create channel segment %q: %w", path, err)
	}
	if !c.opts.NoSync {
		// Puts written here are acknowledged after an fdatasync of the segment, which
		// does not make its name durable; a new channel's directory needs its own name
		// synced too. Without them a power cut can take acknowledged events away.
		dirs := []string{c.opts.Dir}
		if len(c.segs) == 0 {
			dirs = append(dirs, filepath.Dir(c.opts.Dir))
		}
		for _, d := range dirs {
			if err := syncDir(d); err != nil {
				f.Close()
				os.Remove(path)
				return fmt.Errorf("cannot create channel segment %q: %w", path, err)
			}
		}
	}
	c.segs = append(c.segs, &segment{id: id, path: path, f: f})
	return nil
}

// syncDir fsyncs a directory (a variable: tests make it fail).
var syncDir = fsutil.SyncDir

func (c *File) Put(ctx context.Context, evs []ingest.Event) error { return c.put(ctx, true, evs) }

func (c *File) TryPut(evs []ingest.Event) error { return c.put(context.Background(), false, evs) }

func (c *File) put(ctx context.Context, wait bool, evs []ingest.Event) error {
	if len(evs) == 0 {
		return nil
	}
	if c.opts.MinFreeBytes > 0 {
		var st syscall.Statfs_t
		if err := syscall.Statfs(c.opts.Dir, &st); err == nil {
			if free := int64(st.Bavail) * int64(st.Bsize); free < c.opts.MinFreeBytes {
				return fmt.Errorf("channel %s refuses %d events: %d bytes free in %q, below min_free_bytes %d: %w",
					c.name, len(evs), free, c.opts.Dir, c.opts.MinFreeBytes, ErrDiskFull)
			}
		}
	}
	size := 12
	for i := range evs {
		size += 6 + len(evs[i].Body)
		for _, h := range evs[i].Headers {
			size += 6 + len(h.Key) + len(h.Value)
		}
	}
	payload := make([]byte, 12, size)
	offs := make([]int, len(evs))
	for i := range evs {
		offs[i] = len(payload)
		payload = appendEvent(payload, &evs[i])
	}
	var b int64
	for i := range offs {
		end := len(payload)
		if i+1 < len(offs) {
			end = offs[i+1]
		}
		b += int64(end - offs[i])
	}
	if err := c.q.reserve(ctx, wait, len(evs), b); err != nil {
		return err
	}
	c.pmu.Lock()
	defer c.pmu.Unlock()
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		c.q.unreserve(len(evs), b)
		return ingest.ErrClosed
	}
	if c.segs[len(c.segs)-1].size >= c.opts.MaxFileBytes {
		if err := c.rollLocked(); err != nil {
			c.wmu.Unlock()
			c.q.unreserve(len(evs), b)
			return err
		}
	}
	first := c.nextID
	binary.BigEndian.PutUint64(payload[0:], first)
	binary.BigEndian.PutUint32(payload[8:], uint32(len(evs)))
	s, off, err := c.writeRecord(recPut, payload, false)
	if err != nil {
		c.wmu.Unlock()
		c.q.unreserve(len(evs), b)
		return err
	}
	c.nextID += uint64(len(evs))
	s.maxID = c.nextID - 1
	c.wmu.Unlock()
	// The fsync runs without wmu, so commit records of takes go on meanwhile (and this
	// fsync carries them to disk too). The events become visible to takes only after it.
	if !c.opts.NoSync {
		if err := syscall.Fdatasync(int(s.f.Fd())); err != nil {
			// The record may or may not be on disk; the source puts the batch again. Mark
			// these ids done, best effort, so a replay does not deliver them twice.
			c.wmu.Lock()
			_, _, _ = c.writeRecord(recCommit, commitPayload(nil, first, len(evs)), false)
			c.wmu.Unlock()
			c.q.unreserve(len(evs), b)
			return fmt.Errorf("cannot sync channel segment %q: %w", s.path, err)
		}
	}
	ents := make([]entry, len(evs))
	for i := range evs {
		end := len(payload)
		if i+1 < len(offs) {
			end = offs[i+1]
		}
		ents[i] = entry{id: first + uint64(i), seg: s, off: off + recHeader + int64(offs[i]), n: int32(end - offs[i])}
	}
	c.q.push(ents, len(evs), b)
	return nil
}

func (c *File) Take(ctx context.Context, max int) (ingest.Tx, error) {
	ents, b, err := c.q.take(ctx, max)
	if err != nil {
		return nil, err
	}
	tx := &fileTx{c: c, ents: ents, b: b}
	tx.evs = make([]ingest.Event, 0, len(ents))
	// Read runs of adjacent events with one ReadAt into one buffer for the whole take;
	// the events' bodies point into it.
	var total int64
	for _, e := range ents {
		total += int64(e.n)
	}
	all := make([]byte, total)
	// Room for every event's headers (an event's encoding takes at least 6 bytes per
	// header), so decoding appends without growing in the common case.
	hs := make(ingest.Headers, 0, len(ents)*4)
	for i := 0; i < len(ents); {
		j := i + 1
		for j < len(ents) && ents[j].seg == ents[i].seg && ents[j].off == ents[j-1].off+int64(ents[j-1].n) {
			j++
		}
		n := ents[j-1].off + int64(ents[j-1].n) - ents[i].off
		buf := all[:n:n]
		all = all[n:]
		if _, err := ents[i].seg.f.ReadAt(buf, ents[i].off); err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("cannot read channel segment %q: %w", ents[i].seg.path, err)
		}
		p := 0
		for k := i; k < j; k++ {
			var ev ingest.Event
			ev, hs, err = decodeEvent(buf[p:p+int(ents[k].n)], hs)
			if err != nil {
				tx.Rollback()
				return nil, fmt.Errorf("BUG: channel %s: event %d in %q: %w", c.name, ents[k].id, ents[k].seg.path, err)
			}
			tx.evs = append(tx.evs, ev)
			p += int(ents[k].n)
		}
		i = j
	}
	return tx, nil
}

// commitPayload appends one run of committed ids to a commit record's payload.
func commitPayload(b []byte, first uint64, n int) []byte {
	b = binary.BigEndian.AppendUint64(b, first)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

type fileTx struct {
	c    *File
	ents []entry
	evs  []ingest.Event
	b    int64
	done bool
}

func (t *fileTx) Events() []ingest.Event { return t.evs }

// Commit writes a commit record naming the taken ids, then frees them.
func (t *fileTx) Commit() error {
	if t.done {
		return nil
	}
	c := t.c
	var payload []byte
	for i := 0; i < len(t.ents); {
		j := i + 1
		for j < len(t.ents) && t.ents[j].id == t.ents[j-1].id+1 {
			j++
		}
		payload = commitPayload(payload, t.ents[i].id, j-i)
		i = j
	}
	c.wmu.Lock()
	if c.closed {
		c.wmu.Unlock()
		return ingest.ErrClosed
	}
	_, _, err := c.writeRecord(recCommit, payload, c.opts.SyncCommits)
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	t.done = true
	c.q.done(t.ents, t.b, false)
	return nil
}

func (t *fileTx) Rollback() {
	if t.done {
		return
	}
	t.done = true
	t.c.q.done(t.ents, t.b, true)
}

func (c *File) Stats() ingest.ChannelStats {
	n, b := c.q.stats()
	return ingest.ChannelStats{Events: n, Bytes: b, CapacityBytes: c.opts.CapacityBytes}
}

func (c *File) checkpointLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.opts.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if err := c.Checkpoint(); err != nil {
				c.opts.Log.Error("channel checkpoint failed", "channel", c.name, "err", err)
			}
		}
	}
}

// Checkpoint records where replay must start and removes segments wholly before it.
func (c *File) Checkpoint() error {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return nil
	}
	return c.checkpointLocked()
}

func (c *File) checkpointLocked() error {
	// The oldest pending event: the queue head or the smallest id of an open take.
	minPending := c.nextID
	if id, ok := c.q.oldest(); ok {
		minPending = id
	}
	cp := checkpointFile{Version: 1, NextID: c.nextID, MinPending: minPending}
	last := c.segs[len(c.segs)-1]
	cp.Segment, cp.Offset = last.id, last.size
	// Replay must start at the put record holding minPending: find its segment and start
	// at that segment's beginning (records before it in that segment are harmless).
	for _, s := range c.segs {
		if s.maxID >= minPending {
			cp.Segment, cp.Offset = s.id, 0
			break
		}
	}
	// Everything written so far must be on disk before the checkpoint says so.
	if !c.opts.NoSync {
		for _, s := range c.segs {
			if s.id >= cp.Segment {
				if err := syscall.Fdatasync(int(s.f.Fd())); err != nil {
					return fmt.Errorf("cannot sync channel segment %q: %w", s.path, err)
				}
			}
		}
	}
	data, _ := json.Marshal(cp)
	tmp := filepath.Join(c.opts.Dir, "checkpoint.tmp")
	if err := writeFileSync(tmp, data, !c.opts.NoSync); err != nil {
		return fmt.Errorf("cannot write channel checkpoint: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(c.opts.Dir, "checkpoint")); err != nil {
		return fmt.Errorf("cannot write channel checkpoint: %w", err)
	}
	if !c.opts.NoSync {
		// Segments go only once the new checkpoint is known to be the one on disk.
		if err := syncDir(c.opts.Dir); err != nil {
			return fmt.Errorf("cannot write channel checkpoint: %w", err)
		}
	}
	keep := c.segs[:0]
	for _, s := range c.segs {
		if s.id < cp.Segment {
			s.f.Close()
			os.Remove(s.path)
			continue
		}
		keep = append(keep, s)
	}
	c.segs = keep
	return nil
}

func writeFileSync(path string, data []byte, sync bool) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// Close writes a final checkpoint and closes the files. Open takes are abandoned: their
// events are delivered again after the next open. Safe to call twice.
func (c *File) Close() error {
	var err error
	c.once.Do(func() {
		close(c.stop)
		c.wg.Wait()
		c.q.close()
		c.pmu.Lock()
		c.wmu.Lock()
		err = c.checkpointLocked()
		c.closed = true
		c.closeFiles()
		c.wmu.Unlock()
		c.pmu.Unlock()
		c.lock.Close()
	})
	return err
}

func (c *File) closeFiles() {
	for _, s := range c.segs {
		s.f.Close()
	}
}
