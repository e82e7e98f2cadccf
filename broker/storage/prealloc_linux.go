package storage

import (
	"errors"
	"os"
	"syscall"
)

// fallocKeepSize is FALLOC_FL_KEEP_SIZE: allocate blocks without moving end of file.
const fallocKeepSize = 0x1

// preallocate allocates n bytes of f from off on disk without changing its size. It
// reports errUnsupported when the file system cannot (the caller stops asking).
func preallocate(f *os.File, off, n int64) error {
	err := syscall.Fallocate(int(f.Fd()), fallocKeepSize, off, n)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return errUnsupported
	}
	return err
}
