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

// The record codecs of a RecordBatch's attributes (bits 0–2). The append path never
// uses them: batches are stored as produced. Only the log cleaner (compacted topics)
// and the key check of a compacted topic's appends read compressed records, and the
// cleaner writes a batch it shortened with the codec (and snappy framing) it came in.
const (
	codecNone   = 0
	codecGzip   = 1
	codecSnappy = 2
	codecLZ4    = 3
	codecZstd   = 4
)

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
func compressRecords(codec int, src []byte, xerial bool) ([]byte, error) {
	switch codec {
	case codecNone:
		return src, nil
	case codecGzip:
		var buf bytes.Buffer
		return compressTo(&buf, gzip.NewWriter(&buf), src)
	case codecSnappy:
		if !xerial {
			return s2.EncodeSnappy(nil, src), nil
		}
		out := append([]byte(nil), xerialMagic...)
		out = binary.BigEndian.AppendUint32(out, 1) // version
		out = binary.BigEndian.AppendUint32(out, 1) // minimum compatible version
		for len(src) > 0 {
			n := min(len(src), xerialBlock)
			block := s2.EncodeSnappy(nil, src[:n])
			out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
			out = append(out, block...)
			src = src[n:]
		}
		return out, nil
	case codecLZ4:
		var buf bytes.Buffer
		return compressTo(&buf, lz4.NewWriter(&buf), src)
	case codecZstd:
		_, enc, err := zstdCodec()
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(src, nil), nil
	}
	return nil, fmt.Errorf("%w: unknown compression codec %d", ErrInvalidRecord, codec)
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
