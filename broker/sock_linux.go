package broker

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// sockIO reads and writes a connection's socket with raw system calls inside the
// runtime poller's RawConn.Read/Write, which wait for readiness and honour deadlines as
// net.Conn does.
//
// Why raw: the socket is non-blocking, so read and write return at once (EAGAIN when
// they would block, and the poller waits), and the runtime's bookkeeping for a system
// call that might block buys nothing. That bookkeeping is not free: entering a system
// call while every P was idle wakes the runtime's sysmon thread, which then polls every
// 20 µs until all Ps are idle again. A request's first read came right after the
// connection's goroutine was woken from idle, so every request woke sysmon: 6–25
// nanosleeps per request and 10–20% of the broker's CPU while producing.
type sockIO struct {
	rc syscall.RawConn
}

// newSockIO returns raw I/O for nc, or nil when nc has no file descriptor.
func newSockIO(nc net.Conn) *sockIO {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return &sockIO{rc: rc}
}

func (s *sockIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n uintptr
	var errno syscall.Errno
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch errno {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false
			}
			return true
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: errno}
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}

func (s *sockIO) Write(p []byte) (int, error) {
	written := 0
	var errno syscall.Errno
	err := s.rc.Write(func(fd uintptr) bool {
		for written < len(p) {
			n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[written])), uintptr(len(p)-written))
			switch e {
			case 0:
				written += int(n)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	if err == nil && errno != 0 {
		err = &net.OpError{Op: "write", Net: "tcp", Err: errno}
	}
	return written, err
}
