package storage

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps the first n bytes of path read-only (n < 0: the whole file). The mapping
// outlives the descriptor. An empty file gives an empty, unmapped slice.
func mapFile(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		n = int(st.Size())
	}
	if int64(n) > st.Size() {
		return nil, fmt.Errorf("cannot map %q: %d bytes wanted, the file has %d", path, n, st.Size())
	}
	if n == 0 {
		return []byte{}, nil
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, n, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("cannot map %q: %w", path, err)
	}
	return b[:n:n], nil
}

func unmapFile(b []byte) {
	if cap(b) > 0 {
		_ = syscall.Munmap(b[:cap(b)])
	}
}

// dropMappedPages takes a mapping's pages out of the process's resident set (they stay
// in the page cache and come back on the next access).
func dropMappedPages(b []byte) {
	if len(b) > 0 {
		_ = syscall.Madvise(b, syscall.MADV_DONTNEED)
	}
}
