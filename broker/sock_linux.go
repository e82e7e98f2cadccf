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
	// The callbacks handed to rc are bound once (readFn, writeFn) with their arguments
	// and results in these fields: a closure per call escaped to the heap, three
	// allocations per request. Reads happen on the serve goroutine only; writes under
	// conn.wmu.
	rbuf    []byte
	rn      uintptr
	rerr    syscall.Errno
	readFn  func(fd uintptr) bool
	wbuf    []byte
	wn      int
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
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
	s := &sockIO{rc: rc}
	s.readFn, s.writeFn = s.read, s.write
	return s
}

func (s *sockIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rbuf, s.rn, s.rerr = p, 0, 0
	err := s.rc.Read(s.readFn)
	n, errno := s.rn, s.rerr
	s.rbuf = nil
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

// read is one read(2) on the non-blocking socket; false means wait until readable.
func (s *sockIO) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&s.rbuf[0])), uintptr(len(s.rbuf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			s.rn = n
		default:
			s.rerr = e
		}
		return true
	}
}

func (s *sockIO) Write(p []byte) (int, error) {
	s.wbuf, s.wn, s.werr = p, 0, 0
	err := s.rc.Write(s.writeFn)
	n, errno := s.wn, s.werr
	s.wbuf = nil
	if err == nil && errno != 0 {
		err = &net.OpError{Op: "write", Net: "tcp", Err: errno}
	}
	return n, err
}

// write writes all of wbuf on the non-blocking socket; false means wait until writable.
func (s *sockIO) write(fd uintptr) bool {
	for s.wn < len(s.wbuf) {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.wbuf[s.wn])), uintptr(len(s.wbuf)-s.wn))
		switch e {
		case 0:
			s.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.werr = e
			return true
		}
	}
	return true
}
