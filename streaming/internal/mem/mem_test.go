package mem

import (
	"runtime/debug"
	"sync"
	"testing"
)

type rec struct {
	p *int
	n [100]byte
}

// TestSlab: Slab gives a zeroed slice of n elements, large or small, and leaves the GC
// percent as it found it, also when called concurrently.
func TestSlab(t *testing.T) {
	old := debug.SetGCPercent(150)
	defer debug.SetGCPercent(old)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, n := range []int{0, 3, 20000, 50000} { // up to ~5.6 MB
				s := Slab[rec](n)
				if len(s) != n {
					t.Errorf("len %d, want %d", len(s), n)
					return
				}
				for i := range s {
					if s[i].p != nil || s[i].n != [100]byte{} {
						t.Errorf("element %d of %d not zero", i, n)
						return
					}
				}
			}
			if b := Slab[byte](3 << 20); len(b) != 3<<20 {
				t.Errorf("byte slab len %d", len(b))
			}
		}()
	}
	wg.Wait()
	if got := debug.SetGCPercent(150); got != 150 {
		t.Fatalf("GC percent %d after Slab, want 150", got)
	}
}
