package channel

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tagpipe/tagpipe/ingest"
)

// BenchmarkFileChannel: put batches of 1000 events (fsync each) and take+commit them.
func BenchmarkFileChannel(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("line=%d", size), func(b *testing.B) {
			o := DefaultFileOptions(b.TempDir())
			o.MinFreeBytes = -1
			c, err := OpenFile("f", o)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			batch := make([]ingest.Event, 1000)
			for i := range batch {
				batch[i] = ingest.Event{Body: []byte(strings.Repeat("x", size)), Headers: ingest.Headers{{Key: "key", Value: fmt.Sprint(i)}}}
			}
			b.SetBytes(int64(size) * 1000)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := c.Put(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
				tx, err := c.Take(context.Background(), 1000)
				if err != nil {
					b.Fatal(err)
				}
				tx.Commit()
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
