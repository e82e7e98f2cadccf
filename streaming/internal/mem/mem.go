// Package mem holds the engine's memory habits shared by streaming and its
// pipelines.
package mem

import (
	"os"
	"runtime/debug"
	"sync"
	"unsafe"
)

// Slab returns a new slice of n elements, every memory page of it written once
// before the garbage collector can read it.
//
// Why: a large make takes fresh pages from the OS, and the allocation that pushes
// the heap past its trigger starts a GC cycle whose mark workers scan the new slab
// at once — reading every page before the caller writes it. The kernel maps a page
// read first to its shared zero page, so the caller's write then takes a second,
// copy-on-write fault that flushes the TLB of every CPU running the process (an IPI,
// a VM exit on a virtual machine). For the batch-sized slabs of records and parsed
// rows, filled record by record over the whole read, profiles on the 2-core VM put
// up to a fifth of a 300k-record batch's CPU in those faults (wp faults: 570-960
// samples of ~5000 before, 64-84 after). So the collector is held off
// (SetGCPercent(-1)) while the slab is allocated and one element per page is zeroed;
// written first, a page takes one ordinary fault. The pause is the time to fault in
// the slab (~10 ms for 40 MB): the heap cannot run away in it, and a memory limit
// (GOMEMLIMIT) still collects. Turning the collector off first waits for a mark
// phase in progress to end (SetGCPercent's rule). Code that sets the GC percent
// while a Slab is made may find it set back to the value before (tagpipe sets it
// nowhere).
func Slab[T any](n int) []T {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if size == 0 || n*size < slabMin {
		return make([]T, n)
	}
	gcOff.Lock()
	defer gcOff.Unlock()
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	s := make([]T, n)
	step := max(1, pageSize/size)
	for i := 0; i < n; i += step {
		s[i] = zero
	}
	return s
}

// slabMin is the smallest slab worth the pause.
const slabMin = 1 << 20

var (
	pageSize = os.Getpagesize()
	// gcOff serializes Slab's pause: two overlapping ones would restore each
	// other's -1.
	gcOff sync.Mutex
)
