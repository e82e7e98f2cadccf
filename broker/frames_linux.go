package broker

import "syscall"

// allocFrame returns a buffer of length n and capacity c outside the Go heap (an
// anonymous mapping), so a pooled multi-MiB buffer neither counts towards the live heap
// (which would double the GC's heap goal) nor waits for a GC cycle to be freed.
// freeFrame returns it to the kernel at once.
func allocFrame(n, c int) []byte {
	b, err := syscall.Mmap(-1, 0, c, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]byte, n, c)
	}
	return b[:n]
}

func freeFrame(b []byte) {
	_ = syscall.Munmap(b[:cap(b)]) // fails harmlessly for the heap fallback above
}
