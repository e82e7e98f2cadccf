package storage

import (
	"hash/crc32"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// crcUpdate equals the standard library on every length, alignment and starting CRC.
func TestCRCUpdateMatchesStandardLibrary(t *testing.T) {
	if !useFold {
		t.Log("no AVX-512 VPCLMULQDQ on this CPU: only the standard library's path runs")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	buf := make([]byte, 1<<20+200)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	lengths := []int{0, 1, 63, 64, 255, 256, 1023, 1024, 1025, 1087, 1088, 1279, 1280, 4096, 65536, 1 << 20}
	for i := 0; i < 300; i++ {
		lengths = append(lengths, rng.IntN(20000))
	}
	for _, n := range lengths {
		for _, off := range []int{0, 1, 7, 63} {
			p := buf[off : off+n]
			for _, init := range []uint32{0, 0xffffffff, rng.Uint32()} {
				if got, want := crcUpdate(init, p), crc32.Update(init, castagnoli, p); got != want {
					t.Fatalf("len %d offset %d init %#x: %#x, want %#x", n, off, init, got, want)
				}
			}
		}
	}
	// In pieces, as RecordsCRC sums them.
	want := crc32.Checksum(buf, castagnoli)
	var crc uint32
	for p := buf; len(p) > 0; {
		n := min(len(p), 1+rng.IntN(300000))
		crc, p = crcUpdate(crc, p[:n]), p[n:]
	}
	if crc != want {
		t.Fatalf("in pieces: %#x, want %#x", crc, want)
	}
}

// The fold constants in crc_amd64.s: x^(d±32) mod P, reflected, shifted left by one; the
// same formula gives the standard library's IEEE constants.
func TestCRCFoldConstants(t *testing.T) {
	k := func(e int, poly uint64) uint64 {
		r := uint64(1)
		for range e {
			if r <<= 1; r&(1<<32) != 0 {
				r ^= poly
			}
		}
		return uint64(bits.Reverse32(uint32(r))) << 1
	}
	const ieee, castagnoliPoly = 0x104C11DB7, 0x11EDC6F41
	if k(544, ieee) != 0x154442bd4 || k(480, ieee) != 0x1c6e41596 || k(160, ieee) != 0x1751997d0 || k(96, ieee) != 0x0ccaa009e {
		t.Fatal("the formula does not give the standard library's IEEE constants")
	}
	for _, c := range []struct {
		d      int
		lo, hi uint64
	}{{2048, 0xdcb17aa4, 0xb9e02b86}, {512, 0x740eef02, 0x9e4addf8}, {128, 0xf20c0dfe, 0x14cd00bd6}} {
		if k(c.d+32, castagnoliPoly) != c.lo || k(c.d-32, castagnoliPoly) != c.hi {
			t.Errorf("fold by %d bits: constants %#x %#x, want %#x %#x", c.d, c.lo, c.hi, k(c.d+32, castagnoliPoly), k(c.d-32, castagnoliPoly))
		}
	}
}

func BenchmarkCRCUpdate(b *testing.B) {
	p := make([]byte, 256<<10)
	b.SetBytes(int64(len(p)))
	b.Run("fold", func(b *testing.B) {
		for b.Loop() {
			crcUpdate(0, p)
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		for b.Loop() {
			crc32.Update(0, castagnoli, p)
		}
	})
}

// FuzzCRCUpdate: crcUpdate equals the standard library on any bytes.
func FuzzCRCUpdate(f *testing.F) {
	f.Add(make([]byte, 1024), uint32(0))
	f.Add(make([]byte, 5000), uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, p []byte, init uint32) {
		if got, want := crcUpdate(init, p), crc32.Update(init, castagnoli, p); got != want {
			t.Fatalf("len %d: %#x, want %#x", len(p), got, want)
		}
	})
}
