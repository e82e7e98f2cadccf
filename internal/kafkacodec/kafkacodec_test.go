package kafkacodec

import (
	"strings"
	"testing"

	"github.com/segmentio/kafka-go/compress"
)

func TestKafkaGo(t *testing.T) {
	for name, want := range map[string]compress.Compression{"": 0, "none": 0, "gzip": compress.Gzip,
		"snappy": compress.Snappy, "lz4": compress.Lz4, "zstd": compress.Zstd} {
		if got, err := KafkaGo(name); err != nil || got != want {
			t.Errorf("KafkaGo(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := KafkaGo("brotli"); err == nil || !strings.Contains(err.Error(), `"brotli"`) || !strings.Contains(err.Error(), Names) {
		t.Fatalf("KafkaGo(brotli): %v", err)
	}
}
