package warehouse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// fileLock is an exclusive flock(2) on a table's LOCK file. flock locks belong to
// the open file description, so two Tx in one process exclude each other exactly
// like two processes do, and the kernel drops the lock when a writer dies.
type fileLock struct {
	f *os.File
}

// tryLock takes the lock without waiting; ok is false if someone else holds it.
func tryLock(path string) (l *fileLock, ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("cannot open lock %q: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("cannot lock %q: %w", path, err)
	}
	// Who holds it, for humans looking at a stuck table.
	_ = f.Truncate(0)
	_, _ = f.WriteAt(fmt.Appendf(nil, "pid %d\n", os.Getpid()), 0)
	return &fileLock{f: f}, true, nil
}

// lock waits for the lock until ctx is done or timeout passes (negative: try once).
func lock(ctx context.Context, path string, timeout time.Duration) (*fileLock, error) {
	if timeout < 0 { // do not wait
		l, ok, err := tryLock(path)
		if err == nil && !ok {
			err = fmt.Errorf("%w: %q is held by another writer", ErrLocked, path)
		}
		return l, err
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	wait := time.Millisecond
	for {
		l, ok, err := tryLock(path)
		if err != nil || ok {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for writer lock %q: %w", path, ctx.Err())
		case <-deadline:
			return nil, fmt.Errorf("%w: %q is held by another writer (waited %s)", ErrLocked, path, timeout)
		case <-time.After(wait):
		}
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}

func (l *fileLock) unlock() {
	if l == nil || l.f == nil {
		return
	}
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}
