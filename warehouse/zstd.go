package warehouse

import (
	"sync"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// zstdCodec is arrow-go's zstd codec with its page encoders kept differently; the
// frames are the same bytes. arrow-go keeps an encoder per level in a sync.Pool,
// with klauspost's default 8 MiB window: each encoder's history buffer is 16 MiB,
// and the pool is emptied by every second GC cycle, so a busy writer makes new ones
// batch after batch. Those buffers are barely touched (a page is about 1 MiB) but
// count as heap, bringing the next GC cycle forward: three encoders were ~48 MiB
// of the ~300 MiB a cold 300k-record streaming batch allocates. Here the window is
// 2 MiB (with WithLowerEncoderMem a 2.1 MiB history; it sizes buffers only) and idle
// encoders stay on a free list the collector does not empty. A page up to the window
// (pages are cut under 1 MiB, see dataPageSize) is one single-segment frame, whose
// bytes do not depend on the window size (TestZstdSameFrames); a larger page, rare,
// is a valid frame with matches at most 2 MiB back.
type zstdCodec struct {
	compress.Codec // arrow-go's, for decoding and streams

	mu   sync.Mutex
	free map[zstd.EncoderLevel][]*zstd.Encoder
}

// zstdWindow is the encoders' window (see zstdCodec).
const zstdWindow = 2 << 20

// zstdFreeMax bounds the idle encoders kept per level (one per concurrent page
// compression: tables written at once, compaction).
const zstdFreeMax = 16

func init() {
	base, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		panic("BUG: arrow-go has no zstd codec: " + err.Error())
	}
	compress.RegisterCodec(compress.Codecs.Zstd, &zstdCodec{Codec: base, free: map[zstd.EncoderLevel][]*zstd.Encoder{}})
}

// EncodeLevel compresses src as arrow-go's codec does (the same options and level
// mapping), with an encoder from the free list.
func (c *zstdCodec) EncodeLevel(dst, src []byte, level int) []byte {
	lvl := zstd.EncoderLevelFromZstd(level)
	if level == compress.DefaultCompressionLevel {
		lvl = zstd.SpeedDefault
	}
	enc := c.get(lvl)
	out := enc.EncodeAll(src, dst[:0])
	c.put(lvl, enc)
	return out
}

func (c *zstdCodec) get(lvl zstd.EncoderLevel) *zstd.Encoder {
	c.mu.Lock()
	if f := c.free[lvl]; len(f) > 0 {
		enc := f[len(f)-1]
		c.free[lvl] = f[:len(f)-1]
		c.mu.Unlock()
		return enc
	}
	c.mu.Unlock()
	enc, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1),
		zstd.WithAllLitEntropyCompression(true), zstd.WithWindowSize(zstdWindow), zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic("BUG: zstd encoder options: " + err.Error())
	}
	return enc
}

func (c *zstdCodec) put(lvl zstd.EncoderLevel, enc *zstd.Encoder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.free[lvl]) < zstdFreeMax {
		c.free[lvl] = append(c.free[lvl], enc)
	}
}
