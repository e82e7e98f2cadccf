// Package taildir is the taildir source: it follows groups of files that applications
// keep appending to, remembering per file (by inode) how far it has delivered in a JSON
// position file written atomically after every put. Rename rotation is followed by inode
// (the old file is drained to its end, the new one read from the start); copytruncate is
// seen as a file shorter than its position, or one whose first bytes changed (written past
// the position again before the source looked), and read again from the start. A last line
// without its newline is held until the newline comes or the file stays idle too long.
//
// The position file is Flume's format, [{"inode":N,"pos":N,"file":"path"}, …], with one
// more field, "head": the CRC-32 of the file's first min(pos, 64) bytes, in hex. A saved
// position is applied only to a file that starts that way: an inode number does not
// identify a file for long (a deleted file's number goes to the next file created, as
// ext4 does readily), and a new file read from an old file's position loses its first
// lines. Position files without it (Flume's, older ones) are taken by inode alone;
// Flume's own reader does not accept the extra field.
package taildir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

// Group is one file group: files whose directory matches Dir (a glob) and whose base
// name matches Name (a regexp, anchored), as Flume's filegroups.<g> = /dir/regex.
type Group struct {
	Name    string
	Pattern string
	// Headers are added to every event of the group.
	Headers map[string]string
	hdrs    ingest.Headers // Headers sorted by key
	dirGlob string
	re      *regexp.Regexp
}

// Options configure a Source.
type Options struct {
	Groups []Group
	// PositionFile is where positions are kept.
	PositionFile string
	// BatchSize lines per channel put; 0 = 1000.
	BatchSize int
	// MaxLineBytes cuts longer lines (with an error header); 0 = 1 MiB.
	MaxLineBytes int
	// PollInterval between scans when nothing was read; 0 = 250ms.
	PollInterval time.Duration
	// IdleTimeout: an unterminated last line is delivered after the file stayed unchanged
	// this long; 0 = 5s, <0 = never.
	IdleTimeout time.Duration
	// CloseIdle: a file that no longer matches (rotated away, deleted) and has been read
	// to its end is closed after this long without growing; 0 = 5s.
	CloseIdle time.Duration
	// SkipToEnd starts files unknown to the position file at their end.
	SkipToEnd bool
	// FileHeader adds the path as the "file" header.
	FileHeader bool
	Log        *slog.Logger
	C          *ingest.Counters
	now        func() time.Time
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{BatchSize: 1000, MaxLineBytes: 1 << 20, PollInterval: 250 * time.Millisecond,
		IdleTimeout: 5 * time.Second, CloseIdle: 5 * time.Second}
}

type tailFile struct {
	inode   uint64
	path    string
	group   *Group
	f       *os.File
	lr      *ingest.LineReader
	pos     int64 // every line before pos is in the channel
	read    int64 // pos + bytes of lines read but not yet put (in the current batch)
	matched bool  // seen in the latest scan
	lastMod time.Time
	grewAt  time.Time // last time data arrived
	size    int64
	// start holds the file's first min(pos, ingest.HeadBytes) bytes as they were read (the
	// lines delivered, or read at open for a saved position): a position's head is
	// their checksum, never a later read of a file that may have been truncated and
	// written again meanwhile. head caches the checksum of start[:headN].
	start [ingest.HeadBytes]byte
	head  string
	headN int64
}

// Source is a taildir source.
type Source struct {
	name  string
	opts  Options
	out   *ingest.Processor
	files map[uint64]*tailFile
	saved map[uint64]position // from the position file, for files not open yet
	// posFile writes the position file (in place after the first save; see StateFile).
	posFile ingest.StateFile

	loop ingest.Loop
}

type position struct {
	Inode uint64 `json:"inode"`
	Pos   int64  `json:"pos"`
	File  string `json:"file"`
	// Head is the CRC-32 (IEEE) of the file's first min(Pos, ingest.HeadBytes) bytes, in hex;
	// empty when Pos is 0 and in position files written without it.
	Head string `json:"head,omitempty"`
	// mtime is the modification time of a file closed while idle (not in the file).
	mtime time.Time
}

// headOf is the Head of a position at pos in f ("" if pos is 0 or the bytes cannot be
// read, which never matches a saved Head).
func headOf(f *os.File, pos int64) string {
	if pos == 0 {
		return ""
	}
	return ingest.FileHead(f, pos)
}

// position is tf's position for the position file.
func (tf *tailFile) position() position {
	return position{Inode: tf.inode, Pos: tf.pos, File: tf.path, Head: tf.startHead()}
}

// startHead is the Head of tf's position, from the bytes it read.
func (tf *tailFile) startHead() string {
	if n := min(tf.pos, ingest.HeadBytes); n != tf.headN {
		tf.head, tf.headN = "", n
		if n > 0 {
			tf.head = ingest.HeadOf(tf.start[:n])
		}
	}
	return tf.head
}

// CheckPattern reports whether a file group's pattern (a directory glob, then a regexp
// of the file name) is one New takes, without touching the disk.
func CheckPattern(pattern string) error {
	_, err := fileNameRegexp(pattern)
	return err
}

func fileNameRegexp(pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + filepath.Base(pattern) + ")$")
	if err != nil {
		return nil, fmt.Errorf("bad file name regexp %q: %w", filepath.Base(pattern), err)
	}
	return re, nil
}

// New checks options and loads the position file.
func New(name string, opts Options, out *ingest.Processor) (*Source, error) {
	d := DefaultOptions()
	if len(opts.Groups) == 0 {
		return nil, fmt.Errorf("taildir source %s: no file groups", name)
	}
	if opts.PositionFile == "" {
		return nil, fmt.Errorf("taildir source %s: no position file", name)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = d.BatchSize
	}
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = d.MaxLineBytes
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = d.PollInterval
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = d.IdleTimeout
	}
	if opts.CloseIdle <= 0 {
		opts.CloseIdle = d.CloseIdle
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	for i := range opts.Groups {
		g := &opts.Groups[i]
		g.dirGlob = filepath.Dir(g.Pattern)
		re, err := fileNameRegexp(g.Pattern)
		if err != nil {
			return nil, fmt.Errorf("taildir source %s: file group %s: %w", name, g.Name, err)
		}
		g.re = re
		g.hdrs = ingest.HeadersOf(g.Headers)
	}
	if err := os.MkdirAll(filepath.Dir(opts.PositionFile), 0o755); err != nil {
		return nil, fmt.Errorf("taildir source %s: cannot create position file directory: %w", name, err)
	}
	s := &Source{name: name, opts: opts, out: out, files: map[uint64]*tailFile{}, saved: map[uint64]position{},
		posFile: ingest.StateFile{Path: opts.PositionFile}}
	data, err := os.ReadFile(opts.PositionFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("taildir source %s: cannot read position file: %w", name, err)
	}
	if len(data) > 0 {
		var ps []position
		if err := json.Unmarshal(data, &ps); err != nil {
			// A power cut can leave the in-place rewrite (StateFile) half on disk. Lost
			// positions must not lose lines: keep the file for inspection and read every
			// file from its start (duplicates, never gaps), even with SkipToEnd.
			bad := opts.PositionFile + ".corrupt"
			if rerr := os.Rename(opts.PositionFile, bad); rerr != nil {
				return nil, fmt.Errorf("taildir source %s: bad position file %q (%v) cannot be set aside: %w", name, opts.PositionFile, err, rerr)
			}
			opts.Log.Error("taildir position file is unreadable: reading every file from its start", "source", name,
				"file", opts.PositionFile, "kept_as", bad, "err", err)
			s.opts.SkipToEnd = false
		}
		for _, p := range ps {
			s.saved[p.Inode] = p
		}
	}
	return s, nil
}

func (s *Source) Name() string { return s.name }

// Start follows the files in a goroutine until Stop.
func (s *Source) Start(context.Context) error {
	s.loop.Go(s.run)
	return nil
}

// Stop ends the source and closes its files; safe twice.
func (s *Source) Stop(ctx context.Context) error { return s.loop.Stop(ctx) }

func (s *Source) run(ctx context.Context) {
	defer func() {
		for _, tf := range s.files {
			tf.f.Close()
		}
		s.posFile.Close()
	}()
	s.recoverRotated()
	for ctx.Err() == nil {
		s.scan()
		n, err := s.readAll(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.opts.Log.Error("taildir read failed", "source", s.name, "err", err)
		}
		if n == 0 && !ingest.Sleep(ctx, s.opts.PollInterval) {
			return
		}
	}
}

func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// recoverRotated finds files from the position file that were rotated away while the
// collector was down (same inode, another name in the same directory) and drains them.
func (s *Source) recoverRotated() {
	for ino, p := range s.saved {
		if fi, err := os.Stat(p.File); err == nil && inodeOf(fi) == ino {
			continue // still there; scan opens it
		}
		entries, _ := os.ReadDir(filepath.Dir(p.File))
		for _, e := range entries {
			path := filepath.Join(filepath.Dir(p.File), e.Name())
			fi, err := os.Stat(path)
			if err != nil || !fi.Mode().IsRegular() || inodeOf(fi) != ino {
				continue
			}
			if g := s.groupOf(p.File); g != nil {
				s.open(path, fi, g)
				s.opts.Log.Info("taildir draining file rotated while down", "source", s.name, "file", path, "was", p.File, "pos", p.Pos)
			}
			break
		}
		if _, ok := s.files[ino]; !ok {
			if fi, err := os.Stat(p.File); err != nil || inodeOf(fi) != ino {
				s.opts.Log.Warn("taildir file from the position file is gone", "source", s.name, "file", p.File, "inode", ino, "pos", p.Pos)
				delete(s.saved, ino)
			}
		}
	}
}

func (s *Source) groupOf(path string) *Group {
	for i := range s.opts.Groups {
		g := &s.opts.Groups[i]
		if ok, _ := filepath.Match(g.dirGlob, filepath.Dir(path)); ok && g.re.MatchString(filepath.Base(path)) {
			return g
		}
	}
	return nil
}

// scan lists the groups' files, opens new ones and follows renames.
func (s *Source) scan() {
	for _, tf := range s.files {
		tf.matched = false
	}
	seen := map[uint64]bool{}
	defer func() {
		// Positions of files that no longer match and are not open are not needed.
		for ino := range s.saved {
			if !seen[ino] {
				delete(s.saved, ino)
			}
		}
	}()
	for i := range s.opts.Groups {
		g := &s.opts.Groups[i]
		dirs, _ := filepath.Glob(g.dirGlob)
		for _, dir := range dirs {
			entries, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range entries {
				if !g.re.MatchString(e.Name()) {
					continue
				}
				path := filepath.Join(dir, e.Name())
				fi, err := os.Stat(path)
				if err != nil || !fi.Mode().IsRegular() {
					continue
				}
				ino := inodeOf(fi)
				seen[ino] = true
				if tf, ok := s.files[ino]; ok {
					if tf.path != path {
						s.opts.Log.Info("taildir file renamed", "source", s.name, "from", tf.path, "to", path)
						tf.path = path
					}
					tf.matched = true
					continue
				}
				if p, ok := s.saved[ino]; ok && p.Pos == fi.Size() && p.mtime.Equal(fi.ModTime()) {
					// Known, closed while idle, unchanged: leave it closed. A file of the
					// same size but another modification time (or not looked at since the
					// start) is opened, which checks its head: it may be another file that
					// got the inode number.
					if p.File != path {
						p.File = path
						s.saved[ino] = p
					}
					continue
				}
				if tf := s.open(path, fi, g); tf != nil {
					tf.matched = true
				}
			}
		}
	}
}

func (s *Source) open(path string, fi os.FileInfo, g *Group) *tailFile {
	f, err := os.Open(path)
	if err != nil {
		s.opts.Log.Warn("taildir cannot open file", "source", s.name, "file", path, "err", err)
		return nil
	}
	ino := inodeOf(fi)
	var pos int64
	if p, ok := s.saved[ino]; ok {
		pos = p.Pos
		delete(s.saved, ino)
		if pos > fi.Size() {
			s.opts.Log.Warn("taildir file shorter than its position: reading from the start", "source", s.name, "file", path, "pos", pos, "size", fi.Size())
			pos = 0
		} else if p.Head != "" && headOf(f, pos) != p.Head {
			s.opts.Log.Warn("taildir file does not start as the one its position was saved for (a new file with a reused inode number, or truncated and written again): reading from the start",
				"source", s.name, "file", path, "pos", pos, "inode", ino)
			pos = 0
		}
	} else if s.opts.SkipToEnd {
		pos = fi.Size()
	}
	if _, err := f.Seek(pos, io.SeekStart); err != nil {
		f.Close()
		return nil
	}
	now := s.opts.now()
	tf := &tailFile{inode: ino, path: path, group: g, f: f, pos: pos, read: pos,
		lr: ingest.NewLineReader(f, s.opts.MaxLineBytes), lastMod: fi.ModTime(), grewAt: now, size: fi.Size()}
	if n := min(pos, ingest.HeadBytes); n > 0 {
		// The start the position stands on (checked against the saved head above).
		if _, err := f.ReadAt(tf.start[:n], 0); err != nil {
			tf.pos, tf.read = 0, 0
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				f.Close()
				return nil
			}
		}
	}
	s.files[ino] = tf
	s.opts.Log.Info("taildir following file", "source", s.name, "file", path, "inode", ino, "pos", pos)
	return tf
}

// readAll reads every file to its end, oldest modification first (so a rotated file is
// drained before its successor), and returns the number of lines delivered. Modification
// times are coarse (a few milliseconds): a file written and rotated within one tick
// has its successor's time, so of two files with one time, one rotated away (no
// longer matching its group) goes first.
func (s *Source) readAll(ctx context.Context) (int, error) {
	files := make([]*tailFile, 0, len(s.files))
	for _, tf := range s.files {
		files = append(files, tf)
	}
	sort.Slice(files, func(i, j int) bool {
		if !files[i].lastMod.Equal(files[j].lastMod) {
			return files[i].lastMod.Before(files[j].lastMod)
		}
		if files[i].matched != files[j].matched {
			return !files[i].matched
		}
		return files[i].inode < files[j].inode
	})
	total := 0
	for _, tf := range files {
		n, err := s.readFile(ctx, tf)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Source) readFile(ctx context.Context, tf *tailFile) (int, error) {
	now := s.opts.now()
	fi, err := tf.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("cannot stat %q: %w", tf.path, err)
	}
	if fi.Size() < tf.pos || tf.rewritten() {
		// copytruncate: the file was emptied (and maybe written again, even past the
		// position, which only its changed start tells); start over.
		if err := s.restart(tf, fi.Size()); err != nil {
			return 0, err
		}
	}
	if fi.Size() != tf.size || !fi.ModTime().Equal(tf.lastMod) {
		tf.grewAt = now
	}
	tf.size, tf.lastMod = fi.Size(), fi.ModTime()
	// A reader goroutine splits the next batch while this one puts the previous batch
	// (with a file channel, writes and fsyncs it) and saves positions: a position still
	// moves only past batches whose put returned. After a failure the reader is stopped
	// and the file rewound to the last position.
	rctx, cancel := context.WithCancel(ctx)
	batches := make(chan readBatch, 1)
	done := make(chan struct{})
	go s.readBatches(rctx, tf, now, batches, done)
	total := 0
	rewritten := false
	for b := range batches {
		if len(b.evs) > 0 {
			// Truncated and written again while this batch was read: its lines may come
			// from the middle of the new content. Drop them and read from the start.
			if rewritten = tf.rewritten(); rewritten {
				break
			}
			if err = s.out.Put(ctx, b.evs); err != nil {
				break
			}
			total += len(b.evs)
			copy(tf.start[min(tf.pos, ingest.HeadBytes):], b.start)
			tf.pos += b.bytes
			if b.short { // what the cut line dropped is read from the file
				tf.f.ReadAt(tf.start[:min(tf.pos, ingest.HeadBytes)], 0)
			}
			if err = s.savePositions(); err != nil {
				break
			}
		}
		if b.err != nil {
			err = fmt.Errorf("cannot read %q: %w", tf.path, b.err)
			break
		}
	}
	cancel()
	<-done // the reader no longer touches tf.f, tf.lr or tf.read
	if err != nil {
		return total, s.rewind(tf, err)
	}
	if rewritten {
		return total, s.restart(tf, -1)
	}
	if tf.lr.Pending() == 0 && now.Sub(tf.grewAt) >= s.opts.CloseIdle {
		// Idle: close it. A file that still matches keeps its position and is opened
		// again when it grows or its modification time changes; one that was rotated
		// away is done.
		s.opts.Log.Debug("taildir closing idle file", "source", s.name, "file", tf.path, "inode", tf.inode, "matched", tf.matched)
		if tf.matched {
			p := tf.position() // reads the head: before Close
			p.mtime = tf.lastMod
			s.saved[tf.inode] = p
		}
		tf.f.Close()
		delete(s.files, tf.inode)
		return total, s.savePositions()
	}
	return total, nil
}

// readBatch is a batch of lines read ahead, with the input bytes they took; err, when
// set, is the read error that ended the input after them.
type readBatch struct {
	evs   []ingest.Event
	bytes int64
	err   error
	// start: the batch's bytes below ingest.HeadBytes in the file, when it begins there;
	// short when a cut line's text did not reach ingest.HeadBytes (max_line_bytes < 64).
	start []byte
	short bool
}

// readBatches reads tf from tf.read to its end (see readFile) in batches and sends
// them; the last one may be partial. It owns tf.f, tf.lr and tf.read until done closes.
func (s *Source) readBatches(ctx context.Context, tf *tailFile, now time.Time, out chan<- readBatch, done chan<- struct{}) {
	defer close(done)
	defer close(out)
	var slab ingest.Slab
	var id []byte
	var b readBatch
	add := func(ln ingest.Line) {
		ev := slab.LineEvent(ln)
		// inode + offset identify a line read again after a crash; the checksum keeps
		// new content written at old offsets (copytruncate) from looking like a copy.
		// Built as "tail-%x-%x-%08x" without fmt (a line's worth of CPU per event).
		id = strconv.AppendUint(append(id[:0], "tail-"...), tf.inode, 16)
		id = strconv.AppendInt(append(id, '-'), tf.read, 16)
		id = ingest.AppendHex8(append(id, '-'), crc32.ChecksumIEEE(ln.Text))
		ev.SetHeader(ingest.HeaderEventID, slab.String(id))
		if s.opts.FileHeader {
			ev.SetHeader(ingest.HeaderFile, tf.path)
		}
		for _, h := range tf.group.hdrs {
			ev.SetHeader(h.Key, h.Value)
		}
		if b.evs == nil {
			b.evs = make([]ingest.Event, 0, min(s.opts.BatchSize, 1024))
		}
		b.evs = append(b.evs, ev)
		if tf.read < ingest.HeadBytes {
			want := ingest.HeadBytes - tf.read
			b.start = appendRaw(b.start, ln, want)
			b.short = b.short || ln.Truncated && int64(len(ln.Text)) < want
		}
		b.bytes += ln.N
		tf.read += ln.N
	}
	send := func() bool {
		select {
		case out <- b:
			b = readBatch{}
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		ln, err := tf.lr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				b.err = err
				send()
				return
			}
			// A file being appended to: lines written while this batch was read are
			// already there, so fill the batch with them instead of putting a partial
			// batch per catch-up (with a file channel, an fsync each).
			if n := len(b.evs); n > 0 && n < s.opts.BatchSize {
				if fi, err := tf.f.Stat(); err == nil && fi.Size() > tf.read+tf.lr.Pending() {
					continue
				}
			}
			break
		}
		add(ln)
		if len(b.evs) >= s.opts.BatchSize && !send() {
			return
		}
	}
	// An unterminated tail: deliver it once the file has been idle long enough.
	if tf.lr.Pending() > 0 && s.opts.IdleTimeout > 0 && now.Sub(tf.grewAt) >= s.opts.IdleTimeout {
		if ln, ok := tf.lr.Flush(); ok {
			add(ln)
		}
	}
	if len(b.evs) > 0 {
		send()
	}
}

// rewritten reports whether tf no longer starts with the bytes its position was counted
// in: truncated and written again, maybe already past the position, where a shorter
// size does not show it.
func (tf *tailFile) rewritten() bool {
	if tf.pos == 0 {
		return false
	}
	return headOf(tf.f, tf.pos) != tf.startHead()
}

// restart reads a truncated file again from its start (size -1: not known).
func (s *Source) restart(tf *tailFile, size int64) error {
	s.opts.Log.Info("taildir file truncated: reading from the start", "source", s.name, "file", tf.path, "pos", tf.pos, "size", size)
	s.opts.C.Add("truncations", 1)
	if _, err := tf.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tf.lr.Reset(tf.f)
	tf.pos, tf.read = 0, 0
	tf.headN = -1 // start is read again
	return s.savePositions()
}

// rewind puts a file's reader back to its delivered position after a failed put.
func (s *Source) rewind(tf *tailFile, err error) error {
	if _, serr := tf.f.Seek(tf.pos, io.SeekStart); serr != nil {
		return errors.Join(err, serr)
	}
	tf.lr.Reset(tf.f)
	tf.read = tf.pos
	return err
}

// appendRaw appends up to max of the input bytes line ln took: its text and the
// terminator the reader dropped ("\n", "\r\n" or none). Of a cut line only its text,
// the line's first max_line_bytes, is known.
func appendRaw(b []byte, ln ingest.Line, max int64) []byte {
	raw := ln.Text
	if !ln.Truncated {
		switch ln.N - int64(len(ln.Text)) {
		case 1:
			raw = append(raw[:len(raw):len(raw)], '\n')
		case 2:
			raw = append(raw[:len(raw):len(raw)], '\r', '\n')
		}
	}
	return append(b, raw[:min(int64(len(raw)), max)]...)
}

func (s *Source) savePositions() error {
	ps := make([]position, 0, len(s.files)+len(s.saved))
	for _, tf := range s.files {
		ps = append(ps, tf.position())
	}
	// Keep entries of files not found yet (a directory that is briefly missing).
	for _, p := range s.saved {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].File < ps[j].File })
	data, _ := json.Marshal(ps)
	if err := s.posFile.Save(data); err != nil {
		return fmt.Errorf("cannot write position file: %w", err)
	}
	return nil
}
