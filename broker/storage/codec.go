package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// The record codecs of a RecordBatch's attributes (bits 0–2). The append path leaves
// them alone by default: batches are stored as produced. Compressed records are read by
// the log cleaner (compacted topics), by appends that check records (a compacted topic's
// keys, timestamp bounds) and by appends to a log whose Options.Compression names
// another codec than the batch's (compression.type: the batch is stored re-encoded). The
// cleaner writes a batch it shortened with the codec (and snappy framing) it came in.
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

// Compression is a log's compression.type: the codec appended batches are stored in.
type Compression int8

// The compression.type values, Kafka's names in String and ParseCompression.
const (
	CompressionProducer Compression = iota // each batch as the producer sent it (the default)
	CompressionNone                        // "uncompressed"
	CompressionGzip
	CompressionSnappy // written in the xerial framing, as Kafka's Java producer writes it
	CompressionLZ4
	CompressionZstd
)

var compressionNames = [...]string{"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"}

// CompressionNames are the compression.type values ParseCompression accepts.
func CompressionNames() []string { return slices.Clone(compressionNames[:]) }

func (c Compression) String() string {
	if c >= 0 && int(c) < len(compressionNames) {
		return compressionNames[c]
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// ParseCompression reads a compression.type value (case-sensitive, as Kafka's).
func ParseCompression(name string) (Compression, bool) {
	for i, n := range compressionNames {
		if n == name {
			return Compression(i), true
		}
	}
	return CompressionProducer, false
}

// codec is the attributes codec id of a Compression other than CompressionProducer.
func (c Compression) codec() int { return int(c) - 1 }

// maxInflated bounds what one batch's records may decompress to: a batch is at most
// max.message.bytes compressed, and a bomb must not take the broker's memory.
const maxInflated = 256 << 20

// xerialMagic starts snappy data in the xerial (snappy-java stream) framing that the Java
// client and kafka-go write; franz-go, sarama and librdkafka write one raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// xerialBlock is how much uncompressed data one xerial chunk holds (snappy-java's
// default block size).
const xerialBlock = 32 << 10

var (
	zstdOnce sync.Once
	zstdDec  *zstd.Decoder
	zstdEnc  *zstd.Encoder
	zstdErr  error
)

func zstdCodec() (*zstd.Decoder, *zstd.Encoder, error) {
	zstdOnce.Do(func() {
		zstdDec, zstdErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxInflated))
		if zstdErr == nil {
			zstdEnc, zstdErr = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		}
	})
	return zstdDec, zstdEnc, zstdErr
}

// decompressRecords returns the records of a batch body compressed with codec, and
// whether snappy data came in the xerial framing (to write it back the same way).
func decompressRecords(codec int, src []byte) (out []byte, xerial bool, err error) {
	switch codec {
	case codecNone:
		return src, false, nil
	case codecGzip:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, false, fmt.Errorf("%w: gzip: %v", ErrCorruptMessage, err)
		}
		out, err = readBounded(r)
		return out, false, err
	case codecSnappy:
		if bytes.HasPrefix(src, xerialMagic) && len(src) >= 16 {
			out, err = xerialDecode(src[16:])
			return out, true, err
		}
		out, err = snappyDecode(nil, src)
		return out, false, err
	case codecLZ4:
		out, err = readBounded(lz4.NewReader(bytes.NewReader(src)))
		return out, false, err
	case codecZstd:
		dec, _, err := zstdCodec()
		if err != nil {
			return nil, false, err
		}
		out, err = dec.DecodeAll(src, nil)
		if err != nil {
			return nil, false, fmt.Errorf("%w: zstd: %v", ErrCorruptMessage, err)
		}
		return out, false, nil
	}
	return nil, false, fmt.Errorf("%w: unknown compression codec %d", ErrInvalidRecord, codec)
}

// compressRecords compresses a batch's records with codec (xerial: the snappy framing).
// codecNone returns src itself.
func compressRecords(codec int, src []byte, xerial bool) ([]byte, error) {
	if codec == codecNone {
		return src, nil
	}
	return appendCompressed(nil, codec, src, xerial)
}

// The compressing writers are pooled, one pool per level: a gzip writer holds ~1 MB of
// state, an lz4 writer its block buffers, too much to allocate for every batch
// re-encoded on append. zstd encoders are kept one per klauspost encoder level.
var (
	gzipWriters [gzip.BestCompression + 1]sync.Pool // index: the level, 1 … 9
	lz4Writers  [len(lz4Levels)]sync.Pool
	zstdMu      sync.Mutex
	zstdEncs    = map[zstd.EncoderLevel]*zstd.Encoder{}
)

// lz4Levels are pierrec/lz4's levels: fast, then the high-compression ones.
var lz4Levels = [...]lz4.CompressionLevel{lz4.Fast, lz4.Level1, lz4.Level2, lz4.Level3, lz4.Level4, lz4.Level5, lz4.Level6, lz4.Level7, lz4.Level8, lz4.Level9}

// The codec levels a log takes (compression.gzip.level, compression.lz4.level,
// compression.zstd.level: KIP-390), with Kafka's ranges; 0 is the library's default.
const (
	MinGzipLevel, MaxGzipLevel = -1, 9 // -1: the default, Kafka's (zlib's) 6
	defaultGzipLevel           = 6
	MinLZ4Level, MaxLZ4Level   = 1, 17       // Kafka: 1 fast, 2–17 high compression
	MinZstdLevel, MaxZstdLevel = -131072, 22 // negative: faster than 1
)

// lz4Level maps a Kafka lz4 level (lz4-java's 1–17: 1 the fast compressor, the others
// its high-compression levels) to pierrec/lz4's (fast, then 9 high-compression levels);
// 0 is the fast compressor, this package's default.
func lz4Level(level int) int {
	if level <= 1 {
		return 0
	}
	return min((level+1)/2, len(lz4Levels)-1)
}

// appendCompressed appends src compressed with codec (xerial: the snappy framing) to
// dst, at the codec's default level.
func appendCompressed(dst []byte, codec int, src []byte, xerial bool) ([]byte, error) {
	return appendCompressedLevel(dst, codec, src, xerial, 0)
}

// appendCompressedLevel is appendCompressed at a codec level (Kafka's meaning for the
// codec, see the Min/Max constants; 0 = the library's default; snappy has none).
func appendCompressedLevel(dst []byte, codec int, src []byte, xerial bool, level int) ([]byte, error) {
	switch codec {
	case codecNone:
		return append(dst, src...), nil
	case codecGzip:
		if level <= 0 || level > MaxGzipLevel {
			level = defaultGzipLevel // as Kafka's Deflater at DEFAULT_COMPRESSION
		}
		pool := &gzipWriters[level]
		w, _ := pool.Get().(*gzip.Writer)
		if w == nil {
			var err error
			if w, err = gzip.NewWriterLevel(nil, level); err != nil {
				return nil, err
			}
		}
		buf := bytes.NewBuffer(dst) // writes go after dst's bytes
		w.Reset(buf)
		out, err := compressTo(buf, w, src)
		w.Reset(nil) // the pool must not keep the output alive
		pool.Put(w)
		return out, err
	case codecSnappy:
		if !xerial {
			return appendSnappy(dst, src), nil
		}
		dst = append(dst, xerialMagic...)
		dst = binary.BigEndian.AppendUint32(dst, 1) // version
		dst = binary.BigEndian.AppendUint32(dst, 1) // minimum compatible version
		for len(src) > 0 {
			n := min(len(src), xerialBlock)
			at := len(dst)
			dst = appendSnappy(binary.BigEndian.AppendUint32(dst, 0), src[:n])
			binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
			src = src[n:]
		}
		return dst, nil
	case codecLZ4:
		li := lz4Level(level)
		pool := &lz4Writers[li]
		w, _ := pool.Get().(*lz4.Writer)
		if w == nil {
			w = lz4.NewWriter(nil)
			if err := w.Apply(lz4.CompressionLevelOption(lz4Levels[li])); err != nil {
				return nil, err
			}
		}
		buf := bytes.NewBuffer(dst)
		w.Reset(buf)
		out, err := compressTo(buf, w, src)
		w.Reset(nil)
		pool.Put(w)
		return out, err
	case codecZstd:
		enc, err := zstdEncoder(level)
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(src, dst), nil
	}
	return nil, fmt.Errorf("%w: unknown compression codec %d", ErrInvalidRecord, codec)
}

// zstdEncoder returns the shared encoder for a Kafka zstd level (0: the default, 3);
// klauspost/zstd has four speeds, which EncoderLevelFromZstd maps levels to.
func zstdEncoder(level int) (*zstd.Encoder, error) {
	if level == 0 {
		_, enc, err := zstdCodec()
		return enc, err
	}
	lvl := zstd.EncoderLevelFromZstd(level)
	zstdMu.Lock()
	defer zstdMu.Unlock()
	if enc := zstdEncs[lvl]; enc != nil {
		return enc, nil
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(lvl))
	if err != nil {
		return nil, err
	}
	zstdEncs[lvl] = enc
	return enc, nil
}

// appendSnappy appends src as one raw snappy block to dst.
func appendSnappy(dst, src []byte) []byte {
	dst = slices.Grow(dst, s2.MaxEncodedLen(len(src)))
	block := s2.EncodeSnappy(dst[len(dst):cap(dst)], src) // in place: the room is there
	return dst[:len(dst)+len(block)]
}

// compressTo writes src through w, a compressing writer into buf, and returns buf's bytes.
func compressTo(buf *bytes.Buffer, w io.WriteCloser, src []byte) ([]byte, error) {
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// readBounded reads a decompressing reader to its end, at most maxInflated bytes.
func readBounded(r io.Reader) ([]byte, error) {
	out, err := io.ReadAll(io.LimitReader(r, maxInflated+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptMessage, err)
	}
	if len(out) > maxInflated {
		return nil, fmt.Errorf("%w: records decompress to more than %d bytes", ErrInvalidRecord, maxInflated)
	}
	return out, nil
}

// snappyDecode appends one raw snappy block's data to dst.
func snappyDecode(dst, block []byte) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, fmt.Errorf("%w: snappy: %v", ErrCorruptMessage, err)
	}
	if len(dst)+n > maxInflated {
		return nil, fmt.Errorf("%w: records decompress to more than %d bytes", ErrInvalidRecord, maxInflated)
	}
	dst = slices.Grow(dst, n)
	if _, err := s2.Decode(dst[len(dst):len(dst)+n], block); err != nil { // in place
		return nil, fmt.Errorf("%w: snappy: %v", ErrCorruptMessage, err)
	}
	return dst[:len(dst)+n], nil
}

// xerialDecode decodes the chunks after the 16-byte xerial header: each a 4-byte
// big-endian length and a raw snappy block.
func xerialDecode(chunks []byte) ([]byte, error) {
	var out []byte
	for len(chunks) > 0 {
		if len(chunks) < 4 {
			return nil, fmt.Errorf("%w: snappy: torn xerial chunk header", ErrCorruptMessage)
		}
		n := binary.BigEndian.Uint32(chunks)
		if uint64(n) > uint64(len(chunks)-4) {
			return nil, fmt.Errorf("%w: snappy: xerial chunk of %d bytes past the data", ErrCorruptMessage, n)
		}
		var err error
		if out, err = snappyDecode(out, chunks[4:4+n]); err != nil {
			return nil, err
		}
		chunks = chunks[4+n:]
	}
	return out, nil
}
