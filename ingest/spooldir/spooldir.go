// Package spooldir is the spooling-directory source: immutable files dropped into a
// directory are read line by line, oldest first, and renamed with a suffix (or deleted)
// once every line is in the channel. A tracker file remembers the position inside the
// file being read, so a restart resumes where the last committed put ended. Gzip files
// are read transparently. A file that changes after it was picked up is quarantined
// (renamed with .QUARANTINED, logged, counted) and the source keeps going.
package spooldir

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

// Options configure a Source.
type Options struct {
	// Dir is the drop directory.
	Dir string
	// Recursive also reads files in subdirectories (hidden ones excepted).
	Recursive bool
	// Include, when set, is a regexp a file's base name must match; Ignore one it must not.
	Include, Ignore *regexp.Regexp
	// CompletedSuffix is appended to a fully read file; "" = ".COMPLETED".
	CompletedSuffix string
	// Delete removes fully read files instead of renaming them (Flume's deletePolicy
	// immediate).
	Delete bool
	// MinAge: a file is picked up only when its last change is at least this old, so
	// files still being written are left alone; 0 = 1s, <0 = no wait.
	MinAge time.Duration
	// PollInterval between directory scans when idle; 0 = 500ms.
	PollInterval time.Duration
	// BatchSize lines per channel put; 0 = 1000.
	BatchSize int
	// MaxLineBytes cuts longer lines (with an error header); 0 = 1 MiB.
	MaxLineBytes int
	// TrackerDir holds the position tracker; "" = Dir/.tagpipe-spool.
	TrackerDir string
	// FileHeader adds the file path as the "file" header; BasenameHeader adds "basename".
	FileHeader, BasenameHeader bool
	Log                        *slog.Logger
	C                          *ingest.Counters
	now                        func() time.Time
}

// DefaultOptions returns the defaults for dir.
func DefaultOptions(dir string) Options {
	return Options{Dir: dir, CompletedSuffix: ".COMPLETED", MinAge: time.Second,
		PollInterval: 500 * time.Millisecond, BatchSize: 1000, MaxLineBytes: 1 << 20}
}

// QuarantineSuffix marks a file that changed while it was read.
const QuarantineSuffix = ".QUARANTINED"

// Source is a spooling-directory source.
type Source struct {
	name string
	opts Options
	out  *ingest.Processor

	loop   ingest.Loop
	failed map[string]time.Time // files that could not be opened → when to retry
}

// New checks the options; Start begins reading.
func New(name string, opts Options, out *ingest.Processor) (*Source, error) {
	d := DefaultOptions(opts.Dir)
	if opts.Dir == "" {
		return nil, fmt.Errorf("spooldir source %s: no directory", name)
	}
	if opts.CompletedSuffix == "" {
		opts.CompletedSuffix = d.CompletedSuffix
	}
	if opts.MinAge == 0 {
		opts.MinAge = d.MinAge
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = d.PollInterval
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = d.BatchSize
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = d.MaxLineBytes
	}
	if opts.TrackerDir == "" {
		opts.TrackerDir = filepath.Join(opts.Dir, ".tagpipe-spool")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	for _, d := range []string{opts.Dir, opts.TrackerDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("spooldir source %s: cannot create %q: %w", name, d, err)
		}
	}
	return &Source{name: name, opts: opts, out: out, failed: map[string]time.Time{}}, nil
}

func (s *Source) Name() string { return s.name }

// Start runs the source in its own goroutine until Stop.
func (s *Source) Start(context.Context) error {
	s.loop.Go(s.run)
	return nil
}

// Stop ends the source; a batch being put is abandoned (it is re-read after restart
// unless its put completed). Safe twice.
func (s *Source) Stop(ctx context.Context) error { return s.loop.Stop(ctx) }

func (s *Source) run(ctx context.Context) {
	backoff := ingest.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for ctx.Err() == nil {
		path, ok := s.next()
		if !ok {
			if !ingest.Sleep(ctx, s.opts.PollInterval) {
				return
			}
			continue
		}
		if err := s.readFile(ctx, path); err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errPut) {
				// The channel refused (disk nearly full, closed): keep the file, retry
				// from the tracker after a pause.
				s.opts.C.Add("put_failures", 1)
				s.opts.Log.Warn("spooldir cannot put into the channel, will retry", "source", s.name, "file", path, "err", err)
				if !ingest.Sleep(ctx, backoff.Next()) {
					return
				}
				continue
			}
			s.opts.C.Add("file_errors", 1)
			s.opts.Log.Error("spooldir file failed, will retry later", "source", s.name, "file", path, "err", err)
			s.failed[path] = s.opts.now().Add(30 * time.Second)
		}
	}
}

type candidate struct {
	path  string
	mtime time.Time
}

// next returns the oldest eligible file (by modification time, then name).
func (s *Source) next() (string, bool) {
	now := s.opts.now()
	var cands []candidate
	trackerDir, _ := filepath.Abs(s.opts.TrackerDir)
	_ = filepath.WalkDir(s.opts.Dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		name := d.Name()
		if d.IsDir() {
			if path == s.opts.Dir {
				return nil
			}
			if abs, _ := filepath.Abs(path); !s.opts.Recursive || strings.HasPrefix(name, ".") || abs == trackerDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(name, ".") ||
			strings.HasSuffix(name, s.opts.CompletedSuffix) || strings.HasSuffix(name, QuarantineSuffix) {
			return nil
		}
		if s.opts.Include != nil && !s.opts.Include.MatchString(name) {
			return nil
		}
		if s.opts.Ignore != nil && s.opts.Ignore.MatchString(name) {
			return nil
		}
		if until, ok := s.failed[path]; ok && now.Before(until) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if s.opts.MinAge > 0 && now.Sub(info.ModTime()) < s.opts.MinAge {
			return nil
		}
		cands = append(cands, candidate{path, info.ModTime()})
		return nil
	})
	if len(cands) == 0 {
		return "", false
	}
	// A file with a tracker (half read before a restart) goes first.
	if t, err := s.loadTracker(); err == nil {
		for _, c := range cands {
			if c.path == t.Path {
				return c.path, true
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if !cands[i].mtime.Equal(cands[j].mtime) {
			return cands[i].mtime.Before(cands[j].mtime)
		}
		return cands[i].path < cands[j].path
	})
	return cands[0].path, true
}

// tracker is the position of the file being read, rewritten after every put.
type tracker struct {
	Path    string `json:"path"`
	Inode   uint64 `json:"inode"`
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	// Offset is in the (uncompressed) line stream: every line before it is in the channel.
	Offset int64 `json:"offset"`
	Lines  int64 `json:"lines"`
	// Head is ingest.FileHead of the file (its first 64 bytes' CRC-32, in hex): a
	// tracker left by a deleted file (the collector killed between deleting it and
	// removing the tracker) must not be taken for a new file that got its name and
	// inode number. Empty in trackers written without it.
	Head string `json:"head,omitempty"`
}

func (s *Source) trackerPath() string { return filepath.Join(s.opts.TrackerDir, s.name+".json") }

func (s *Source) loadTracker() (tracker, error) {
	var t tracker
	data, err := os.ReadFile(s.trackerPath())
	if err != nil {
		return t, err
	}
	err = json.Unmarshal(data, &t)
	return t, err
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

func (s *Source) readFile(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open %q: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot stat %q: %w", path, err)
	}
	t := tracker{Path: path, Inode: inode(fi), Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano(), Head: ingest.FileHead(f, fi.Size())}
	if old, err := s.loadTracker(); err == nil && old.Path == path && old.Inode == t.Inode {
		if old.Head != "" && old.Head != t.Head {
			// Not the file the tracker was written for: read it from its start.
			s.opts.Log.Info("spooldir tracker is of another file with this name and inode number: reading the file from its start",
				"source", s.name, "file", path, "inode", t.Inode)
		} else if old.Size != t.Size || old.MtimeNS != t.MtimeNS {
			return s.quarantine(path, old, fi, "changed while the collector was down")
		} else {
			t.Offset, t.Lines = old.Offset, old.Lines
		}
	}
	var r io.Reader = f
	br := bufio.NewReaderSize(f, 64<<10)
	r = br
	gz := false
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		// A file that only looks like gzip is read as it is (binary lines, marked).
		if zr, err := gzip.NewReader(br); err == nil {
			defer zr.Close()
			r, gz = zr, true
		} else {
			s.opts.Log.Warn("spooldir file starts like gzip but is not: reading it raw", "source", s.name, "file", path, "err", err)
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("cannot rewind %q: %w", path, err)
			}
			br.Reset(f)
			r = br
		}
	}
	if t.Offset > 0 {
		if _, err := io.CopyN(io.Discard, r, t.Offset); err != nil {
			return fmt.Errorf("cannot skip to offset %d in %q: %w", t.Offset, path, err)
		}
		s.opts.Log.Info("spooldir resuming file", "source", s.name, "file", path, "offset", t.Offset, "lines", t.Lines)
	} else {
		s.opts.Log.Info("spooldir reading file", "source", s.name, "file", path, "bytes", fi.Size())
	}
	// A reader goroutine reads and splits the next batch while this one puts the
	// previous batch (with a file channel, writes and fsyncs it) and records the position:
	// the tracker still moves only past batches whose put returned, in order.
	tw := &ingest.StateFile{Path: s.trackerPath()}
	defer tw.Close()
	rctx, cancel := context.WithCancel(ctx)
	batches := make(chan readBatch, 1)
	free := make(chan []ingest.Event, 2) // batch arrays handed back for reuse
	done := make(chan struct{})
	defer func() { cancel(); <-done }() // before the deferred closes of the file
	// A line's id is its file (inode, size and mtime, which a spooled file may not change)
	// and its offset in the line stream: a re-read after a crash yields the same ids.
	fileID := fmt.Sprintf("spool-%x-%x-%x-", t.Inode, t.Size, t.MtimeNS)
	go s.readBatches(rctx, ingest.NewLineReader(r, s.opts.MaxLineBytes), fileID, path, t.Offset, batches, free, done)
	for b := range batches {
		if len(b.evs) > 0 {
			if err := s.out.Put(ctx, b.evs); err != nil {
				return fmt.Errorf("%w: %w", errPut, err)
			}
			// The channel holds copies now: the array can take the next lines.
			select {
			case free <- b.evs[:0]:
			default:
			}
			t.Offset += b.bytes
			t.Lines += int64(len(b.evs))
			data, _ := json.Marshal(t)
			if err := tw.Save(data); err != nil {
				return fmt.Errorf("cannot write spool tracker: %w", err)
			}
			if now, err := os.Stat(path); err != nil || now.Size() != t.Size || now.ModTime().UnixNano() != t.MtimeNS {
				return s.quarantine(path, t, nil, "changed while it was being read")
			}
		}
		switch {
		case b.err == nil:
		case errors.Is(b.err, io.EOF):
			return s.complete(path, t)
		case gz:
			// A damaged gzip stream: what decompressed is delivered, the rest cannot
			// be; move the file aside and go on.
			return s.quarantine(path, t, nil, "damaged gzip data: "+b.err.Error())
		default:
			return fmt.Errorf("cannot read %q: %w", path, b.err)
		}
	}
	return ctx.Err() // the reader stopped early: only when ctx ended
}

// readBatch is a batch of lines read ahead, with the input bytes they took; err, when
// set, ended the input after them (io.EOF at the end of the file).
type readBatch struct {
	evs   []ingest.Event
	bytes int64
	err   error
}

// readBatches splits the stream from offset off into batches of events and sends them,
// the last one with the error that ended the input, until ctx ends.
func (s *Source) readBatches(ctx context.Context, lr *ingest.LineReader, fileID, path string, off int64,
	out chan<- readBatch, free <-chan []ingest.Event, done chan<- struct{}) {
	defer close(done)
	defer close(out)
	var slab ingest.Slab
	var id []byte
	b := readBatch{evs: make([]ingest.Event, 0, s.opts.BatchSize)}
	add := func(ln ingest.Line) {
		ev := slab.LineEvent(ln)
		id = strconv.AppendInt(append(id[:0], fileID...), off+b.bytes, 16)
		ev.SetHeader(ingest.HeaderEventID, slab.String(id))
		if s.opts.FileHeader {
			ev.SetHeader(ingest.HeaderFile, path)
		}
		if s.opts.BasenameHeader {
			ev.SetHeader("basename", filepath.Base(path))
		}
		b.evs = append(b.evs, ev)
		b.bytes += ln.N
	}
	send := func() bool {
		select {
		case out <- b:
		case <-ctx.Done():
			return false
		}
		off += b.bytes
		b = readBatch{}
		select {
		case b.evs = <-free:
		default:
			b.evs = make([]ingest.Event, 0, s.opts.BatchSize)
		}
		return true
	}
	for {
		ln, err := lr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if last, ok := lr.Flush(); ok {
					add(last)
				}
			}
			b.err = err
			send()
			return
		}
		add(ln)
		if len(b.evs) >= s.opts.BatchSize && !send() {
			return
		}
	}
}

var errPut = errors.New("channel put failed")

func (s *Source) complete(path string, t tracker) error {
	if s.opts.Delete {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("cannot delete completed file %q: %w", path, err)
		}
	} else {
		dst := path + s.opts.CompletedSuffix
		if _, err := os.Stat(dst); err == nil {
			dst = fmt.Sprintf("%s.%d%s", path, s.opts.now().UnixNano(), s.opts.CompletedSuffix)
		}
		if err := os.Rename(path, dst); err != nil {
			return fmt.Errorf("cannot mark %q completed: %w", path, err)
		}
	}
	if err := os.Remove(s.trackerPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot remove spool tracker: %w", err)
	}
	s.opts.C.Add("files_completed", 1)
	s.opts.Log.Info("spooldir file completed", "source", s.name, "file", path, "lines", t.Lines)
	return nil
}

// quarantine moves a file that changed after it was picked up out of the way. Lines
// already put stay delivered; the rest of the file is not read.
func (s *Source) quarantine(path string, t tracker, now os.FileInfo, why string) error {
	if now == nil {
		now, _ = os.Stat(path)
	}
	nowSize := int64(-1)
	if now != nil {
		nowSize = now.Size()
	}
	dst := path + QuarantineSuffix
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("cannot quarantine %q: %w", path, err)
	}
	os.Remove(s.trackerPath())
	s.opts.C.Add("files_quarantined", 1)
	s.opts.Log.Error("spooldir file changed after it was picked up: quarantined; spooled files must not be modified",
		"source", s.name, "file", path, "moved_to", dst, "why", why, "size_at_pickup", t.Size, "size_now", nowSize,
		"lines_delivered", t.Lines)
	return nil
}
