package sink

import (
	"bufio"
	"context"
	"fmt"
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
}

// FileRoll writes event bodies, one per line, to rolling files in a directory (Flume's
// file_roll sink). Useful for debugging and as a dead-letter file.
type FileRoll struct {
	name   string
	opts   FileRollOptions
	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
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
		s.f, s.w, s.opened = f, bufio.NewWriterSize(f, 64<<10), now
	}
	for _, e := range evs {
		s.w.Write(e.Body)
		s.w.WriteByte('\n')
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("file_roll sink %s: cannot write: %w", s.name, err)
	}
	if s.opts.Sync {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("file_roll sink %s: cannot sync: %w", s.name, err)
		}
	}
	return nil
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
