package streaming

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/streaming/internal/testkafka"
)

// Records read stay as read while later reads of the source reuse its Fetch response
// buffers and decompression buffers (the walker copies what it keeps out of them).
func TestFetchBuffersKeepRecords(t *testing.T) {
	const perPartition = 3000
	for _, backend := range testkafka.Backends {
		t.Run(backend, func(t *testing.T) {
			addrs := testkafka.Start(t, backend, "events", 2)
			// Partition 0 uncompressed (the records are decoded from the response bytes
			// themselves), 1 compressed (from the decompressed batches).
			var want []string
			for p, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.SnappyCompression()} {
				var recs []testkafka.Record
				for i := range perPartition {
					r := testkafka.Record{Partition: int32(p), Key: fmt.Appendf(nil, "k%d", i), Value: readBenchValue(i)}
					recs = append(recs, r)
					want = append(want, fmt.Sprintf("%d/%d %s=%s", p, i, r.Key, r.Value))
				}
				// Small batches: a fetch at a later offset is answered with other bytes.
				testkafka.Produce(t, addrs, "events", recs, kgo.ProducerBatchCompression(codec), kgo.ProducerBatchMaxBytes(8<<10))
			}
			s := newSource(addrs, nil, newSubscription([]string{"events"}, nil), "", "buffers-test")
			defer s.close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			read := func(from, until int64) []Record {
				got, err := s.read(ctx, Ranges{{"events", 0, from, until}, {"events", 1, from, until}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			describe := func(rs []Record) []string {
				var out []string
				for _, r := range rs {
					out = append(out, fmt.Sprintf("%d/%d %s=%s", r.Partition, r.Offset, r.Key, r.Value))
				}
				return out
			}
			first := read(0, perPartition)
			if got := describe(first); !slices.Equal(got, want) {
				t.Fatalf("read %d records, not the %d written (or other bytes)", len(got), len(want))
			}
			for from := int64(0); from < perPartition; from += perPartition / 7 {
				read(from, perPartition)
			}
			if got := describe(first); !slices.Equal(got, want) {
				t.Fatal("records of the first read changed while later reads reused the buffers")
			}
		})
	}
}
