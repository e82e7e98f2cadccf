package storage

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// The append path's file system calls (pwrite of the records, fallocate of the reserve)
// are made with raw system calls, outside the Go runtime's system-call bookkeeping.
// That bookkeeping lets the runtime hand the P to another thread if a call blocks, and
// for that, entering any system call while every P was idle wakes the runtime's sysmon
// thread, which then polls every 20 µs until all Ps are idle again. Between two produce
// requests every P is idle, so each request woke sysmon: a thread wake-up and a few
// nanosleeps per request, 10–20% of the broker's produce CPU with kafka-go's 110 KB
// requests or with snappy (the socket reads and writes are raw for the same reason:
// broker/sock_linux.go).
//
// A buffered write into the page cache, or allocating a few MiB of a file, returns in
// microseconds; it blocks only when the kernel throttles writers for dirty pages, waits
// for the journal, or must read a partial page from disk. Should a raw call ever take
// longer than slowRawCall, every call goes through the runtime's path for the next
// rawCallBackoff, so a disk that pushes back holds a P (or a GC's stop-the-world) for
// long at most once a second; a disk that is still slow when raw calls come back
// doubles that pause each time, up to rawCallBackoffMax (see offAfterSlowCall). Appends larger than rawWriteMax, whose per-call overhead
// is small beside the copy, always take the runtime's path; so do fsyncs.
const (
	rawWriteMax       = 4 << 20
	slowRawCall       = 10 * time.Millisecond
	rawCallBackoff    = time.Second
	rawCallBackoffMax = time.Minute
)

// rawCallsOffUntil is the wall time (Unix ns) until which raw calls are off.
var rawCallsOffUntil atomic.Int64

// slowCalls is the backoff state after slow raw calls (rare: a mutex is fine).
var slowCalls struct {
	sync.Mutex
	last    time.Time     // the last slow call
	backoff time.Duration // the pause it started
}

// offAfterSlowCall turns raw calls off after a slow one at now and returns for how long:
// rawCallBackoff, or twice the previous pause when the previous slow call was at most
// that long after raw calls came back (the disk is still pushing back), up to
// rawCallBackoffMax.
func offAfterSlowCall(now time.Time) time.Duration {
	slowCalls.Lock()
	defer slowCalls.Unlock()
	d := rawCallBackoff
	if b := slowCalls.backoff; b > 0 && now.Sub(slowCalls.last) <= 2*b {
		d = min(2*b, rawCallBackoffMax)
	}
	slowCalls.last, slowCalls.backoff = now, d
	rawCallsOffUntil.Store(now.Add(d).UnixNano())
	return d
}

// rawCall runs call with f's descriptor. It reports false, having run nothing, when the
// caller should make the call the runtime's way instead (raw calls are off, or f is
// closed: the runtime's path then returns the error os returns).
func rawCall(f *os.File, call func(fd uintptr)) bool {
	start := time.Now()
	if start.UnixNano() < rawCallsOffUntil.Load() {
		return false
	}
	rc, err := f.SyscallConn()
	if err != nil || rc.Control(call) != nil {
		return false
	}
	if time.Since(start) > slowRawCall {
		offAfterSlowCall(time.Now())
	}
	return true
}

// writeAt writes b at off of f, as f.WriteAt does.
func writeAt(f *os.File, b []byte, off int64) (int, error) {
	if len(b) == 0 || len(b) > rawWriteMax {
		return f.WriteAt(b, off)
	}
	written := 0
	var errno syscall.Errno
	ok := rawCall(f, func(fd uintptr) {
		for written < len(b) {
			n, _, e := syscall.RawSyscall6(syscall.SYS_PWRITE64, fd, uintptr(unsafe.Pointer(&b[written])),
				uintptr(len(b)-written), uintptr(off+int64(written)), 0, 0)
			switch {
			case e == syscall.EINTR:
				continue
			case e != 0:
				errno = e
				return
			case n == 0:
				errno = syscall.EIO // no progress: report it rather than spin
				return
			}
			written += int(n)
		}
	})
	switch {
	case !ok:
		return f.WriteAt(b, off)
	case errno != 0:
		return written, &os.PathError{Op: "write", Path: f.Name(), Err: errno}
	}
	return written, nil
}

// fallocate is syscall.Fallocate on f.
func fallocate(f *os.File, mode uint32, off, n int64) error {
	var errno syscall.Errno
	ok := rawCall(f, func(fd uintptr) {
		for {
			_, _, errno = syscall.RawSyscall6(syscall.SYS_FALLOCATE, fd, uintptr(mode), uintptr(off), uintptr(n), 0, 0)
			if errno != syscall.EINTR {
				return
			}
		}
	})
	switch {
	case !ok:
		return syscall.Fallocate(int(f.Fd()), mode, off, n)
	case errno != 0:
		return errno
	}
	return nil
}
