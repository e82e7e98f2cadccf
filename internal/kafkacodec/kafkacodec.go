// Package kafkacodec names the Kafka record-batch compression codecs the way tagpipe's
// configuration does (none, gzip, snappy, lz4, zstd) and maps a name to the codec of
// segmentio/kafka-go, the client the collector's and the streaming engine's sinks use.
package kafkacodec

import (
	"fmt"

	"github.com/segmentio/kafka-go/compress"
)

// Names are the accepted codec names ("" is none too).
const Names = "none, gzip, snappy, lz4 or zstd"

// KafkaGo returns kafka-go's codec for name: 0 (no compression) for "" and "none".
func KafkaGo(name string) (compress.Compression, error) {
	switch name {
	case "", "none":
		return 0, nil
	case "gzip":
		return compress.Gzip, nil
	case "snappy":
		return compress.Snappy, nil
	case "lz4":
		return compress.Lz4, nil
	case "zstd":
		return compress.Zstd, nil
	}
	return 0, fmt.Errorf("unknown compression %q (want %s)", name, Names)
}
