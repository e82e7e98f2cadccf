package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// errBusy: another scheduler (this process or another) holds the run's lock.
var errBusy = errors.New("run is locked by another scheduler")

// runLock is an exclusive flock on <dir>/locks/<job>/<ts>.lock, held while the run goes
// on (its attempts and callbacks; not while it waits up_for_retry or up_for_reschedule,
// when whichever scheduler takes it next goes on from its record). flock locks belong to the open file, so two schedulers in one process
// exclude each other as two processes do, and the kernel drops the lock when a process
// dies (kill -9 included). Lock files are never removed: removing a locked path lets a
// third opener lock a different inode.
type runLock struct{ f *os.File }

func tryLockRun(dir, job, ts string) (*runLock, error) {
	d := filepath.Join(dir, "locks", job)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create lock dir %q: %w", d, err)
	}
	f, ok, err := tryLockFile(filepath.Join(d, ts+".lock"))
	if err != nil {
		return nil, fmt.Errorf("cannot lock run %s/%s: %w", job, ts, err)
	}
	if !ok {
		return nil, errBusy
	}
	return &runLock{f: f}, nil
}

func (l *runLock) unlock() {
	if l == nil || l.f == nil {
		return
	}
	unlockFile(l.f)
	l.f = nil
}

// tryLockFile opens (creating) path and takes an exclusive flock on it without waiting:
// ok false (and no file) when another open file holds it.
func tryLockFile(path string) (f *os.File, ok bool, err error) {
	f, err = os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, err
	}
	switch err = flockNB(f); {
	case errors.Is(err, syscall.EWOULDBLOCK):
		f.Close()
		return nil, false, nil
	case err != nil:
		f.Close()
		return nil, false, err
	}
	return f, true, nil
}

// flockNB takes an exclusive flock on f without waiting (EWOULDBLOCK: another open file
// holds it).
func flockNB(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// unlockFile drops the flock (for every process sharing the open file: a task's
// processes that inherited it too) and closes f.
func unlockFile(f *os.File) {
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	f.Close()
}
