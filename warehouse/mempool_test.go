package warehouse

import (
	"sync"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestPoolAllocator: buffers come zeroed, of the asked length and capacity, 64-byte
// aligned, whether new or reused; a freed buffer is handed out again for its size
// class; reallocation keeps the bytes; the free lists stay under poolHoldMax; all of
// it from several goroutines (run with -race).
func TestPoolAllocator(t *testing.T) {
	p := &poolAllocator{}
	check := func(b []byte, size int) {
		t.Helper()
		if len(b) != size || cap(b) != size {
			t.Fatalf("Allocate(%d): len %d cap %d", size, len(b), cap(b))
		}
		if size > 0 && uintptr(unsafe.Pointer(unsafe.SliceData(b)))%64 != 0 {
			t.Fatalf("Allocate(%d) not 64-byte aligned", size)
		}
		for i, c := range b {
			if c != 0 {
				t.Fatalf("Allocate(%d): byte %d is %d", size, i, c)
			}
		}
	}
	for _, size := range []int{0, 1, 100, 4095, 4096, 4097, 70000, 1 << 20, 1<<24 + 1} {
		b := p.Allocate(size)
		check(b, size)
		for i := range b {
			b[i] = 0xAB
		}
		p.Free(b)
		b2 := p.Allocate(size)
		check(b2, size)
		if c, ok := poolClass(size); ok && unsafe.SliceData(b2) != unsafe.SliceData(b) {
			t.Errorf("Allocate(%d) after Free: not reused (class %d)", size, c)
		}
		p.Free(b2)
	}
	b := p.Allocate(5000)
	for i := range b {
		b[i] = byte(i)
	}
	b = p.Reallocate(300000, b)
	if len(b) != 300000 || b[4999] != byte(4999%256) || b[5000] != 0 {
		t.Fatalf("Reallocate: len %d, bytes %d %d", len(b), b[4999], b[5000])
	}
	p.Free(b)
	if p.held > poolHoldMax {
		t.Fatalf("holds %d bytes", p.held)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := memory.NewResizableBuffer(p)
			defer buf.Release()
			for i := range 200 {
				size := 1 << (10 + (g+i)%12)
				b := p.Allocate(size)
				check(b, size)
				b[size-1] = 1
				buf.Resize(size)
				buf.Bytes()[size-1] = byte(i)
				p.Free(b)
			}
		}()
	}
	wg.Wait()
	if p.held > poolHoldMax {
		t.Fatalf("holds %d bytes, over %d", p.held, poolHoldMax)
	}
}
