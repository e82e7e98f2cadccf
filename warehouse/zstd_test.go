package warehouse

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/parquet/compress"
)

// TestZstdSameFrames: pages up to the window compress to the bytes arrow-go's own
// codec makes, at every level the warehouse may use, and decode back.
func TestZstdSameFrames(t *testing.T) {
	c, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	ours, ok := c.(*zstdCodec)
	if !ok {
		t.Fatalf("registered zstd codec is %T", c)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	page := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			fmt.Fprintf(&b, "%d,%d,%d,%s,%d\n", rng.IntN(100000), 1000000+rng.IntN(50000), rng.IntN(500), [...]string{"pv", "fav", "cart", "buy"}[rng.IntN(4)], 1511544070+b.Len()/40)
			if rng.IntN(50) == 0 {
				r := make([]byte, rng.IntN(300))
				for i := range r {
					r[i] = byte(rng.Uint32())
				}
				b.Write(r)
			}
		}
		return b.Bytes()[:n]
	}
	for _, level := range []int{compress.DefaultCompressionLevel, 1, 3, 7} {
		for _, n := range []int{1, 1000, 5000, 128 << 10, 200 << 10, 1 << 20, 1<<20 + 40000, zstdWindow} {
			src := page(n)
			want := ours.Codec.EncodeLevel(nil, src, level)
			got := ours.EncodeLevel(make([]byte, 0, 64), src, level)
			if !bytes.Equal(got, want) {
				t.Fatalf("level %d, %d bytes: frame of %d bytes, arrow-go's %d", level, n, len(got), len(want))
			}
			if back := ours.Decode(nil, got); !bytes.Equal(back, src) {
				t.Fatalf("level %d, %d bytes: decodes to other bytes", level, n)
			}
		}
	}
}
