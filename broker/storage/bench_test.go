package storage

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// benchBatch is what a producer sends in the benchmark: 100 records of 100 bytes.
func benchBatch() []byte { return buildBatch(plain(100, 100, 1_700_000_000_000)) }

func benchLog(b *testing.B, mode string) *Log {
	o := testOptions(nil)
	o.SegmentBytes = 64 << 20
	o.RetentionMS = -1
	o.RetentionBytes = 256 << 20 // keep the benchmark's disk use bounded
	o.Flush = FlushPolicy{Mode: mode}
	l, err := OpenLog(b.TempDir(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	return l
}

// appendLoop appends batch (100 records) to l for the benchmark's iterations, retention
// applied every 4096 appends outside the timer, and reports records/s.
func appendLoop(b *testing.B, l *Log, batch []byte) {
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
		if i++; i%4096 == 0 {
			b.StopTimer()
			l.EnforceRetention()
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppend appends 100×100-byte-record batches (records/s is the figure to quote).
func BenchmarkAppend(b *testing.B) {
	for _, mode := range []string{"os", "always"} {
		b.Run("flush="+mode, func(b *testing.B) {
			l := benchLog(b, mode)
			batch := benchBatch()
			appendLoop(b, l, batch)
		})
	}
}

// BenchmarkRead fetches 1 MiB at a time through a 64 MiB log, as a consumer catching up
// does: into a reused buffer, and with WriteTo to a TCP socket (sendfile).
func BenchmarkRead(b *testing.B) {
	l := benchLog(b, "os")
	batch := benchBatch()
	const batches = 4000
	for range batches {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	end := l.HighWatermark()
	b.Run("bytes", func(b *testing.B) {
		buf := make([]byte, 0, 2<<20)
		var off, n int64
		b.ReportAllocs()
		for b.Loop() {
			r, err := l.Read(off, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			if buf, err = r.AppendTo(buf[:0]); err != nil {
				b.Fatal(err)
			}
			n += int64(len(buf))
			off = r.NextOffset()
			r.Close()
			if off >= end {
				off = 0
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds()/1e6, "MB/s")
		b.ReportMetric(float64(n)/float64(len(batch))*100/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("sendfile", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c)
			c.Close()
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		var off, n int64
		b.ReportAllocs()
		for b.Loop() {
			r, err := l.Read(off, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			w, err := r.WriteTo(c)
			if err != nil {
				b.Fatal(err)
			}
			n += w
			off = r.NextOffset()
			r.Close()
			if off >= end {
				off = 0
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds()/1e6, "MB/s")
		b.ReportMetric(float64(n)/float64(len(batch))*100/b.Elapsed().Seconds(), "records/s")
		c.Close()
		<-done
	})
}

// BenchmarkReadSmallBatches: one 100-byte record per batch (a producer without
// batching), 64 KiB fetches: the header walk dominates.
func BenchmarkReadSmallBatches(b *testing.B) {
	l := benchLog(b, "os")
	batch := buildBatch(plain(1, 100, 1))
	for range 20000 {
		if _, err := l.Append(batch); err != nil {
			b.Fatal(err)
		}
	}
	end := l.HighWatermark()
	buf := make([]byte, 0, 128<<10)
	var off, n int64
	b.ReportAllocs()
	for b.Loop() {
		r, err := l.Read(off, 64<<10)
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = r.AppendTo(buf[:0]); err != nil {
			b.Fatal(err)
		}
		n += int64(len(buf))
		off = r.NextOffset()
		r.Close()
		if off >= end {
			off = 0
		}
	}
	b.ReportMetric(float64(n)/float64(len(batch))/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkCompact: one cleaner pass over 200k records of 100 bytes in batches of 100,
// 20k keys each written ten times, in 1 MiB segments, uncompressed and with zstd. It
// reports records cleaned per second (the pass reads, decompresses, drops 90% and
// writes the rest again).
func BenchmarkCompact(b *testing.B) {
	for _, codec := range []int{codecNone, codecZstd} {
		b.Run(map[int]string{codecNone: "none", codecZstd: "zstd"}[codec], func(b *testing.B) {
			const records, keys, perBatch = 200_000, 20_000, 100
			val := strings.Repeat("v", 90)
			var batches [][]byte
			for i := 0; i < records; i += perBatch {
				recs := make([]kv, perBatch)
				for j := range recs {
					k := fmt.Sprintf("user-%06d", (i+j)%keys)
					recs[j] = kv{&k, &val}
				}
				batch := buildKeyed(1, recs...)
				if codec != codecNone {
					batch = compressBatch(b, batch, codec, false)
				}
				batches = append(batches, batch)
			}
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				o := testOptions(nil)
				o.Compact, o.SegmentBytes = true, 1<<20
				l := mustOpen(b, b.TempDir(), o)
				for _, batch := range batches {
					mustAppend(b, l, append([]byte(nil), batch...))
				}
				l.Roll()
				b.StartTimer()
				res, err := l.Compact()
				if err != nil || res.RecordsRemoved != records-keys {
					b.Fatalf("Compact: %+v %v", res, err)
				}
				b.StopTimer()
				l.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkAppendCompressionType appends benchBatch's records compressed with snappy (as
// franz-go sends them) to a log with each compression.type: producer and snappy store
// them as sent, the others re-encode every batch.
func BenchmarkAppendCompressionType(b *testing.B) {
	batch := compressBatch(b, benchBatch(), codecSnappy, false)
	for _, c := range []Compression{CompressionProducer, CompressionSnappy, CompressionNone, CompressionGzip, CompressionLZ4, CompressionZstd} {
		b.Run(c.String(), func(b *testing.B) {
			l := benchLog(b, "os")
			o := l.Options()
			o.Compression = c
			l.SetOptions(o)
			appendLoop(b, l, batch)
		})
	}
}
