package storage

import (
	"io"
	"os"
	"syscall"
)

// sendfile copies n bytes at pos of f to the socket c with sendfile(2), waiting for the
// socket through the runtime poller (so write deadlines hold). ok is false when nothing
// was sent and the caller should fall back to a plain copy.
func sendfile(c syscall.Conn, f *os.File, pos, n int64) (written int64, ok bool, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	fc, err := f.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var serr error
	unsupported := false
	cerr := fc.Control(func(infd uintptr) {
		werr := rc.Write(func(outfd uintptr) bool {
			for written < n {
				off := pos + written
				m, e := syscall.Sendfile(int(outfd), int(infd), &off, int(min(n-written, 1<<30)))
				if m > 0 {
					written += int64(m)
				}
				switch {
				case e == syscall.EAGAIN:
					return false // wait until the socket is writable
				case e == syscall.EINTR:
					continue
				case (e == syscall.EINVAL || e == syscall.ENOSYS) && written == 0:
					unsupported = true
					return true
				case e != nil:
					serr = e
					return true
				case m == 0:
					serr = io.ErrUnexpectedEOF // the file is shorter than the result
					return true
				}
			}
			return true
		})
		if werr != nil && serr == nil {
			serr = werr
		}
	})
	if cerr != nil {
		return written, written > 0, cerr
	}
	if unsupported {
		return 0, false, nil
	}
	return written, true, serr
}
