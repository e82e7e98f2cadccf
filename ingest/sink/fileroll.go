package sink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

// FileRollOptions configure a FileRoll sink.
type FileRollOptions struct {
	// Dir receives files named <start-unix-ms>-<n>.log.
	Dir string
	// RollInterval starts a new file after this long; 0 = 30s, <0 = never.
	RollInterval time.Duration
	// Sync fsyncs each delivered batch.
	Sync bool
	now  func() time.Time
	// wrap, when set, stands between the buffer and the file (tests fail writes).
	wrap func(io.Writer) io.Writer
}

// FileRoll writes event bodies, one per line, to rolling files in a directory (Flume's
// file_roll sink). Useful for debugging and as a dead-letter file.
type FileRoll struct {
	name   string
	opts   FileRollOptions
	mu     sync.Mutex
	f      *os.File
	out    io.Writer // f, or what opts.wrap made of it
	w      *bufio.Writer
	size   int64 // of f, up to the last delivered batch
	opened time.Time
	n      int
}

// NewFileRoll creates the directory; files open on first delivery.
func NewFileRoll(name string, opts FileRollOptions) (*FileRoll, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("file_roll sink %s: no directory", name)
	}
	if opts.RollInterval == 0 {
		opts.RollInterval = 30 * time.Second
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("file_roll sink %s: cannot create %q: %w", name, opts.Dir, err)
	}
	return &FileRoll{name: name, opts: opts}, nil
}

func (s *FileRoll) Name() string { return s.name }

func (s *FileRoll) Deliver(_ context.Context, evs []ingest.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.now()
	if s.f != nil && s.opts.RollInterval > 0 && now.Sub(s.opened) >= s.opts.RollInterval {
		if err := s.closeLocked(); err != nil {
			return err
		}
	}
	if s.f == nil {
		s.n++
		path := filepath.Join(s.opts.Dir, fmt.Sprintf("%d-%d.log", now.UnixMilli(), s.n))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("file_roll sink %s: cannot open %q: %w", s.name, path, err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("file_roll sink %s: cannot stat %q: %w", s.name, path, err)
		}
		s.out = f
		if s.opts.wrap != nil {
			s.out = s.opts.wrap(f)
		}
		s.f, s.w, s.size, s.opened = f, bufio.NewWriterSize(s.out, 64<<10), st.Size(), now
	}
	n := int64(0)
	for _, e := range evs {
		s.w.Write(e.Body)
		s.w.WriteByte('\n')
		n += int64(len(e.Body)) + 1
	}
	if err := s.w.Flush(); err != nil {
		return s.undoLocked(fmt.Errorf("file_roll sink %s: cannot write: %w", s.name, err))
	}
	if s.opts.Sync {
		if err := s.f.Sync(); err != nil {
			return s.undoLocked(fmt.Errorf("file_roll sink %s: cannot sync: %w", s.name, err))
		}
	}
	s.size += n
	return nil
}

// undoLocked takes a failed batch (on a full disk: partly written, a line torn) out of
// the file again, since the runner delivers it again, and gives the buffer a fresh
// start: a bufio.Writer keeps its first error for good, so the sink would otherwise
// fail every batch until the next roll (never, with roll_interval < 0).
func (s *FileRoll) undoLocked(err error) error {
	s.w.Reset(s.out)
	if terr := s.f.Truncate(s.size); terr != nil {
		// The batch stays in this file; the next one starts a new file.
		s.f.Close()
		s.f, s.w = nil, nil
		return errors.Join(err, terr)
	}
	return err
}

func (s *FileRoll) closeLocked() error {
	if s.f == nil {
		return nil
	}
	err := s.w.Flush()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f, s.w = nil, nil
	return err
}

// Close closes the current file; safe twice.
func (s *FileRoll) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeLocked()
}
