package streaming

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/streaming/internal/testkafka"
)

// readBenchRecords is the number of records in each benchmark topic
// (TAGPIPE_BENCH_RECORDS overrides; default 300k).
func readBenchRecords() int {
	if v, err := strconv.Atoi(os.Getenv("TAGPIPE_BENCH_RECORDS")); err == nil && v > 0 {
		return v
	}
	return 300_000
}

// readBenchTxn is how many records one transaction of the transactional topic holds.
const readBenchTxn = 1000

// readBenchValue is record i's value: ~100 bytes, a Taobao-like line padded.
func readBenchValue(i int) []byte {
	return fmt.Appendf(nil, "%d,%d,%d,pv,%d,%066d", i%100000, 1000000+i%50000, i%500, 1511544070+i/2000, i)
}

// processCPU is the process's CPU time so far (all threads, the in-process broker
// included): on a shared machine it compares runs better than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReadPaths reads the same n records (6 partitions, ~100 B values, snappy
// batches as franz-go writes them by default) through the source and reports process
// CPU µs and wall records/s per record read:
//
//   - plain/uncommitted: a topic written without transactions, read_uncommitted;
//   - plain/kafka-go: the same topic through readRangeLegacy (Fetch through kafka-go's
//     Transport, records decoded by its protocol package), for comparison;
//   - txn/committed: a topic written by a transactional producer committing every
//     readBenchTxn records (one marker per partition per transaction), read_committed;
//   - txn/uncommitted: the same topic, read_uncommitted (markers skipped).
//
// Each backend (kfake, the built-in broker) runs in this process, so its CPU counts too.
func BenchmarkReadPaths(b *testing.B) {
	n := readBenchRecords()
	for _, backend := range testkafka.Backends {
		plain := testkafka.Start(b, backend, "events", 6)
		recs := make([]testkafka.Record, 0, n)
		for i := range n {
			recs = append(recs, testkafka.Record{Partition: int32(i % 6), Value: readBenchValue(i)})
		}
		testkafka.Produce(b, plain, "events", recs)
		txn := testkafka.Start(b, backend, "events", 6)
		produceTxns(b, txn, n)

		for _, c := range []struct {
			name      string
			addrs     []string
			committed bool
			legacy    bool
		}{
			{"plain/uncommitted", plain, false, false},
			{"plain/kafka-go", plain, false, true},
			{"txn/committed", txn, true, false},
			{"txn/uncommitted", txn, false, false},
		} {
			b.Run(backend+"/"+c.name, func(b *testing.B) {
				s := newSource(c.addrs, nil, newSubscription([]string{"events"}, nil), "", "bench")
				defer s.close()
				if c.committed {
					s.isolation = kafka.ReadCommitted
				}
				ctx := context.Background()
				tps, err := s.partitions(ctx)
				if err != nil {
					b.Fatal(err)
				}
				_, last, err := s.offsets(ctx, tps)
				if err != nil {
					b.Fatal(err)
				}
				var rs Ranges
				for _, tp := range tps {
					rs = append(rs, OffsetRange{tp.Topic, tp.Partition, 0, last[tp]})
				}
				readRange := s.readRange
				if c.legacy {
					readRange = s.readRangeLegacy
				}
				b.ReportAllocs()
				var cpu, wall time.Duration
				for b.Loop() {
					cpu0, t0 := processCPU(), time.Now()
					got, err := s.readWith(ctx, rs, nil, readRange)
					if err != nil {
						b.Fatal(err)
					}
					cpu += processCPU() - cpu0
					wall += time.Since(t0)
					if len(got) != n {
						b.Fatalf("read %d records, want %d", len(got), n)
					}
				}
				recs := float64(n) * float64(b.N)
				b.ReportMetric(float64(cpu.Nanoseconds())/1e3/recs, "cpu_us/record")
				b.ReportMetric(recs/wall.Seconds(), "records/s")
			})
		}
	}
}

// produceTxns writes n records (readBenchValue, round-robin over 6 partitions) to
// "events" with a transactional producer that commits every readBenchTxn records.
func produceTxns(b *testing.B, addrs []string, n int) {
	p, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.TransactionalID("bench"),
		kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for i := 0; i < n; i += readBenchTxn {
		if err := p.BeginTransaction(); err != nil {
			b.Fatal(err)
		}
		for j := i; j < min(n, i+readBenchTxn); j++ {
			p.Produce(ctx, &kgo.Record{Partition: int32(j % 6), Value: readBenchValue(j)}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
		}
		if err := p.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
			b.Fatal(err)
		}
	}
}
