package warehouse

import (
	"math/bits"
	"sync"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// poolAllocator is the memory.Allocator the Parquet writers take their buffers
// from (dictionary indices, levels, validity, concatenated runs): arrow-go frees
// each of them when its column chunk or array is done with (Buffer.Release), and
// reallocates by doubling; with memory.GoAllocator every buffer became garbage at
// once, ~8 MB per 100k streaming rows for the collector to sweep and to count
// towards its next cycle, and fresh pages for a batch's first column chunks. Here
// buffers of 4 KiB to 16 MiB are kept, up to poolHoldMax bytes in all, on free
// lists by power-of-two size class and handed out again zeroed, as GoAllocator's
// are. arrow-go must not touch a buffer after freeing or reallocating it (its
// Mallocator frees for real), so reusing one is safe.
type poolAllocator struct {
	mu   sync.Mutex
	free [poolClasses][]unsafe.Pointer
	held int // bytes on the free lists
}

const (
	poolMinShift = 12 // 4 KiB: smaller buffers are GoAllocator's
	poolMaxShift = 24 // 16 MiB
	poolClasses  = poolMaxShift - poolMinShift + 1
	poolHoldMax  = 32 << 20
)

// writeMem is the writers' allocator, shared by every warehouse of the process.
var writeMem = &poolAllocator{}

var goAlloc = memory.NewGoAllocator()

// poolClass is the size class of a buffer of n bytes; false when n is not pooled.
func poolClass(n int) (int, bool) {
	if n <= 0 || n > 1<<poolMaxShift {
		return 0, false
	}
	shift := bits.Len(uint(n - 1))
	if shift < poolMinShift {
		return 0, false
	}
	return shift - poolMinShift, true
}

func (p *poolAllocator) Allocate(size int) []byte {
	c, ok := poolClass(size)
	if !ok {
		return goAlloc.Allocate(size)
	}
	p.mu.Lock()
	var ptr unsafe.Pointer
	if f := p.free[c]; len(f) > 0 {
		ptr = f[len(f)-1]
		p.free[c] = f[:len(f)-1]
		p.held -= 1 << (c + poolMinShift)
	}
	p.mu.Unlock()
	if ptr == nil {
		// A power-of-two size of at least 4 KiB is a Go size class of its own (or a
		// large object): the buffer starts on a 4 KiB boundary, as aligned as
		// GoAllocator's 64 bytes and more.
		return make([]byte, size, 1<<(c+poolMinShift))[:size:size]
	}
	b := unsafe.Slice((*byte)(ptr), size)
	clear(b)
	return b
}

func (p *poolAllocator) Reallocate(size int, b []byte) []byte {
	if cap(b) >= size {
		return b[:size]
	}
	nb := p.Allocate(size)
	copy(nb, b)
	p.Free(b)
	return nb
}

// Free keeps b for reuse when it is a whole pooled buffer (one Allocate gave it)
// and the free lists have room; else it is left to the collector.
func (p *poolAllocator) Free(b []byte) {
	c, ok := poolClass(cap(b))
	ptr := unsafe.Pointer(unsafe.SliceData(b))
	if !ok || uintptr(ptr)&(1<<poolMinShift-1) != 0 {
		return
	}
	size := 1 << (c + poolMinShift)
	p.mu.Lock()
	if p.held+size <= poolHoldMax {
		p.free[c] = append(p.free[c], ptr)
		p.held += size
	}
	p.mu.Unlock()
}
