package storage

import (
	"errors"
	"os"
	"syscall"
)

const (
	// fallocKeepSize is FALLOC_FL_KEEP_SIZE: allocate blocks without moving end of file.
	fallocKeepSize = 0x1
	// tmpfsMagic and ramfsMagic are statfs f_type values of file systems kept in memory,
	// where allocating ahead only takes memory and saves no block mapping.
	tmpfsMagic = 0x01021994
	ramfsMagic = 0x858458f6
)

// preallocate allocates n bytes of f from off on disk without changing its size. It
// reports errUnsupported when the file system cannot.
func preallocate(f *os.File, off, n int64) error {
	err := fallocate(f, fallocKeepSize, off, n)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return errUnsupported
	}
	return err
}

// inMemoryFS reports whether f lives on a file system kept in memory (tmpfs, ramfs),
// where allocating ahead only takes memory and saves no block mapping.
func inMemoryFS(f *os.File) bool {
	var st syscall.Statfs_t
	return syscall.Fstatfs(int(f.Fd()), &st) == nil && (uint32(st.Type) == tmpfsMagic || uint32(st.Type) == ramfsMagic)
}
