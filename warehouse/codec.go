package warehouse

import (
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/parquet/compress"
)

// Compressions are the Parquet page codecs a warehouse writes, by the names Spark's
// spark.sql.parquet.compression.codec and DuckDB's COPY … (COMPRESSION …) use; "zstd"
// is the default. "uncompressed" is taken for "none". Hadoop's lz4 and lzo are not
// written (arrow-go has neither; lz4_raw is the LZ4 every current reader takes).
var Compressions = []string{"zstd", "snappy", "gzip", "brotli", "lz4_raw", "none"}

// codecLevels are the levels each codec with levels takes (compression_level).
var codecLevels = map[string][2]int{"zstd": {1, 22}, "gzip": {1, 9}, "brotli": {1, 11}}

// ParseCompression resolves a codec name (Compressions, any case) and checks level
// against it: zstd 1–22, gzip 1–9, brotli 1–11; the other codecs have no levels and
// take any.
func ParseCompression(name string, level int) (compress.Compression, error) {
	name = strings.ToLower(name)
	var c compress.Compression
	switch name {
	case "zstd":
		c = compress.Codecs.Zstd
	case "snappy":
		c = compress.Codecs.Snappy
	case "gzip":
		c = compress.Codecs.Gzip
	case "brotli":
		c = compress.Codecs.Brotli
	case "lz4_raw":
		c = compress.Codecs.Lz4Raw
	case "none", "uncompressed":
		c = compress.Codecs.Uncompressed
	default:
		return c, fmt.Errorf("unknown Parquet compression %q (want one of %s)", name, strings.Join(Compressions, ", "))
	}
	if r, ok := codecLevels[name]; ok && (level < r[0] || level > r[1]) {
		return c, fmt.Errorf("compression level %d out of range for %s (%d..%d)", level, name, r[0], r[1])
	}
	return c, nil
}
