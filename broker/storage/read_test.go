package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAppendRejectsBadInput(t *testing.T) {
	o := testOptions(nil)
	o.MaxMessageBytes = 2000
	l := mustOpen(t, t.TempDir(), o)
	good := buildBatch(plain(3, 10, 1))
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	badMagic := bytes.Clone(good)
	badMagic[offMagic] = 1
	badCount := buildBatch(plain(3, 10, 1))
	badCount[offRecordCount+3] = 2
	fixCRC(badCount)
	for name, c := range map[string]struct {
		in   []byte
		want error
	}{
		"empty":          {nil, ErrInvalidRecord},
		"short":          {good[:20], ErrCorruptMessage},
		"torn":           {good[:len(good)-1], ErrCorruptMessage},
		"crc":            {badCRC, ErrCorruptMessage},
		"magic":          {badMagic, ErrInvalidRecord},
		"count":          {badCount, ErrInvalidRecord},
		"too large":      {buildBatch(plain(30, 100, 1)), ErrBatchTooLarge},
		"good then torn": {append(bytes.Clone(good), good[:30]...), ErrCorruptMessage},
	} {
		if _, err := l.Append(c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if l.HighWatermark() != 0 || l.Size() != 0 {
		t.Fatalf("bad input changed the log: hw %d size %d", l.HighWatermark(), l.Size())
	}
	// Several good batches in one append are all taken.
	r := mustAppend(t, l, append(bytes.Clone(good), buildBatch(plain(2, 10, 1))...))
	if r.BaseOffset != 0 || r.LastOffset != 4 {
		t.Fatalf("two batches: %+v", r)
	}
}

// fixCRC recomputes a test batch's CRC after editing it.
func fixCRC(b []byte) {
	h := decodeHeader(b)
	size := h.Size()
	crc := crcOf(b[offAttributes:size])
	b[offCRC], b[offCRC+1], b[offCRC+2], b[offCRC+3] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
}

// The stored batches decode with franz-go's kmsg like any broker's would: offsets
// assigned, CRC valid, records intact.
func TestStoredBatchesDecodeWithKmsg(t *testing.T) {
	clk := &fakeClock{ms: 1_700_000_000_000}
	o := testOptions(clk)
	o.LogAppendTime = true
	o.LeaderEpoch = 3
	l := mustOpen(t, t.TempDir(), o)
	mustAppend(t, l, buildBatch(plain(4, 10, 5)))
	res := mustAppend(t, l, buildBatch(plain(2, 10, 5)))
	if res.LogAppendTimeMs != clk.ms {
		t.Fatalf("LogAppendTime %d, want %d", res.LogAppendTimeMs, clk.ms)
	}
	r, _ := l.Read(0, 1<<20)
	b, _ := r.Bytes()
	r.Close()
	var off int64
	for len(b) > 0 {
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		if rb.FirstOffset != off || rb.PartitionLeaderEpoch != 3 || rb.Magic != 2 {
			t.Fatalf("batch at %d: first offset %d epoch %d", off, rb.FirstOffset, rb.PartitionLeaderEpoch)
		}
		if rb.Attributes&attrLogAppendTime == 0 || rb.MaxTimestamp != clk.ms {
			t.Fatalf("LogAppendTime not stamped: attrs %x max ts %d", rb.Attributes, rb.MaxTimestamp)
		}
		if crcOf(b[offAttributes:12+int(rb.Length)]) != uint32(rb.CRC) {
			t.Fatal("stored CRC does not match")
		}
		recs := rb.Records
		for i := range rb.NumRecords {
			var rec kmsg.Record
			if err := rec.ReadFrom(recs); err != nil {
				t.Fatal(err)
			}
			if rec.OffsetDelta != i || len(rec.Value) != 10 {
				t.Fatalf("record %d: %+v", i, rec)
			}
			recs = recs[rec.Length+int32(varintLen(rec.Length)):]
		}
		off += int64(rb.LastOffsetDelta) + 1
		b = b[12+int(rb.Length):]
	}
	if off != 6 {
		t.Fatalf("decoded up to %d", off)
	}
}

func varintLen(v int32) int {
	var buf [10]byte
	return len(binary.AppendVarint(buf[:0], int64(v)))
}

func TestOffsetForTimestamp(t *testing.T) {
	o := testOptions(nil)
	o.IndexIntervalBytes = 100 // index (nearly) every batch
	l := mustOpen(t, t.TempDir(), o)
	// Batch i holds 10 records at timestamps 1000*i + 0..9 (offsets 10i..10i+9); every
	// fourth batch starts a new segment.
	for i := range 20 {
		if i%4 == 0 && i > 0 {
			l.Roll()
		}
		mustAppend(t, l, buildBatch(plain(10, 10, int64(1000*i))))
	}
	// A compressed batch is searched record by record, as Kafka does; one whose
	// records cannot be decompressed (flag only) is answered with its base offset.
	mustAppend(t, l, compressBatch(t, buildBatch(plain(10, 10, 50_000)), codecSnappy, false))
	mustAppend(t, l, compressBatch(t, buildBatch(plain(10, 10, 60_000)), codecZstd, false))
	comp := buildBatch(plain(10, 10, 70_000))
	comp[offAttributes+1] |= 2
	fixCRC(comp)
	mustAppend(t, l, comp)
	for _, c := range []struct {
		ts, off, rts int64
		found        bool
	}{
		{0, 0, 0, true},
		{5, 5, 5, true},
		{9, 9, 9, true},
		{10, 10, 1000, true},   // between batches: the next batch's first record
		{7003, 73, 7003, true}, // inside a batch in the second segment
		{19009, 199, 19009, true},
		{19010, 200, 50_000, true},
		{50_004, 204, 50_004, true}, // inside a snappy batch
		{60_007, 217, 60_007, true}, // inside a zstd batch
		{70_003, 220, 70_009, true}, // undecodable: base offset, max timestamp
		{80_000, -1, -1, false},
	} {
		off, rts, found := l.OffsetForTimestamp(c.ts)
		if off != c.off || rts != c.rts || found != c.found {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, %v", c.ts, off, rts, found, c.off, c.rts, c.found)
		}
	}
	// Below the log start the answer moves up to it.
	l.DeleteRecordsBefore(45)
	if off, _, _ := l.OffsetForTimestamp(0); off != 45 {
		t.Errorf("after DeleteRecords(45): %d", off)
	}
}

func TestNotifyWakesOnAppendAndClose(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions(nil))
	ch := l.Notify()
	select {
	case <-ch:
		t.Fatal("closed before any append")
	default:
	}
	mustAppend(t, l, buildBatch(plain(1, 1, 1)))
	select {
	case <-ch:
	default:
		t.Fatal("append did not wake the waiter")
	}
	ch2 := l.Notify()
	if ch2 == ch {
		t.Fatal("Notify handed out a closed channel")
	}
	if _, err := l.Append([]byte("junk")); err == nil {
		t.Fatal("junk accepted")
	}
	select {
	case <-ch2:
		t.Fatal("a failed append woke the waiter")
	default:
	}
	l.Close()
	select {
	case <-ch2:
	default:
		t.Fatal("Close did not wake the waiter")
	}
	<-l.Notify() // closed for good
}

// Readers running during appends (and rolls) only ever see whole, valid batches in
// offset order. Run with -race.
func TestConcurrentReadDuringAppend(t *testing.T) {
	o := testOptions(nil)
	o.SegmentBytes = 16 << 10
	o.IndexIntervalBytes = 1024
	l := mustOpen(t, t.TempDir(), o)
	const batches = 400
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 3 {
		wg.Go(func() {
			next := int64(0)
			deadline := time.Now().Add(30 * time.Second)
			for next < batches*5 && time.Now().Before(deadline) {
				ch := l.Notify()
				if next >= l.HighWatermark() {
					select {
					case <-ch:
					case <-time.After(time.Second):
					}
					continue
				}
				r, err := l.Read(next, 4096)
				if err != nil {
					errs <- err
					return
				}
				b, err := r.Bytes()
				r.Close()
				if err != nil {
					errs <- err
					return
				}
				for len(b) > 0 {
					h, n, err := ParseBatch(b, 0)
					if err != nil {
						errs <- err
						return
					}
					if h.BaseOffset != next {
						errs <- errors.New("batches out of order")
						return
					}
					next = h.LastOffset() + 1
					b = b[n:]
				}
			}
			if next != batches*5 {
				errs <- errors.New("reader did not reach the end")
			}
		})
	}
	for range batches {
		mustAppend(t, l, buildBatch(plain(5, 50, 1)))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// WriteTo a TCP connection goes through sendfile and delivers the exact bytes.
func TestWriteToTCP(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions(nil))
	for range 50 {
		mustAppend(t, l, buildBatch(plain(20, 100, 1)))
	}
	r, err := l.Read(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want, _ := r.Bytes()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.WriteTo(c)
	c.Close()
	if err != nil || n != int64(len(want)) {
		t.Fatalf("WriteTo: %d %v, want %d bytes", n, err, len(want))
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("peer got %d bytes, differing from the log's %d", len(b), len(want))
	}
	// Any other writer gets the same bytes through io.Copy.
	var buf bytes.Buffer
	if _, err := r.WriteTo(&buf); err != nil || !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("WriteTo(buffer): %v", err)
	}
}

func TestMaxTimestamp(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions(nil))
	if _, _, ok := l.MaxTimestamp(); ok {
		t.Fatal("empty log has a max timestamp")
	}
	mustAppend(t, l, buildBatch(plain(3, 1, 100))) // 0-2 at 100..102
	mustAppend(t, l, buildBatch(plain(3, 1, 500))) // 3-5 at 500..502
	l.Roll()
	mustAppend(t, l, buildBatch(plain(3, 1, 200))) // 6-8: older timestamps, later offsets
	if off, ts, ok := l.MaxTimestamp(); !ok || off != 5 || ts != 502 {
		t.Fatalf("MaxTimestamp = %d %d %v, want 5 502", off, ts, ok)
	}
}

// WriteTo takes the sendfile path for a TCP socket (not the io.Copy fallback).
func TestSendfileIsUsedForTCP(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions(nil))
	mustAppend(t, l, buildBatch(plain(10, 100, 1)))
	r, _ := l.Read(0, 1<<20)
	defer r.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		b, _ := io.ReadAll(c)
		c.Close()
		got <- len(b)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, ok, err := sendfile(c.(*net.TCPConn), r.seg.f, r.pos, r.n)
	c.Close()
	if !ok || err != nil || n != int64(r.Len()) {
		t.Fatalf("sendfile: %d %v %v", n, ok, err)
	}
	if g := <-got; g != r.Len() {
		t.Fatalf("peer got %d bytes, want %d", g, r.Len())
	}
}

// Closed segments' indexes are read-only mappings of their files, so resident memory does
// not grow with retained data; reads through them, across a reopen, and a reader still
// open on a segment that retention deletes all keep working.
func TestClosedSegmentIndexesAreMapped(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("indexes are mapped on Linux only")
	}
	noSync(t)
	dir := t.TempDir()
	o := testOptions(nil)
	o.SegmentBytes = 4 << 10
	o.IndexIntervalBytes = 512
	l := mustOpen(t, dir, o)
	for i := 0; i < 100; i++ {
		mustAppend(t, l, buildBatch(plain(3, 100, int64(1000+i))))
	}
	checkMapped := func(l *Log) {
		t.Helper()
		l.mu.RLock()
		defer l.mu.RUnlock()
		if len(l.segs) < 5 {
			t.Fatalf("%d segments, want several", len(l.segs))
		}
		for i, s := range l.segs {
			if closed := i < len(l.segs)-1; s.mapped != closed || (closed && s.idx.len() == 0) {
				t.Fatalf("segment %d of %d: mapped %v, %d index entries", i, len(l.segs), s.mapped, s.idx.len())
			}
		}
	}
	checkReads := func(l *Log) {
		t.Helper()
		for off := int64(0); off < l.HighWatermark(); off += 7 {
			hs := readAll(t, l, off)
			if len(hs) == 0 || hs[0].BaseOffset > off || hs[0].LastOffset() < off {
				t.Fatalf("read from %d starts with batch [%d, %d]", off, hs[0].BaseOffset, hs[0].LastOffset())
			}
		}
		// Batch j holds offsets 3j.. with timestamps 1000+j..: 1050 is batch 48's third.
		if off, _, ok := l.OffsetForTimestamp(1050); !ok || off != 146 {
			t.Fatalf("offset for timestamp 1050: %d %v, want 146", off, ok)
		}
	}
	checkMapped(l)
	checkReads(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, o)
	checkMapped(l)
	checkReads(l)

	r, err := l.Read(0, 1<<20) // holds the first segment
	if err != nil {
		t.Fatal(err)
	}
	o.RetentionBytes = 1
	l.SetOptions(o)
	if n, err := l.EnforceRetention(); err != nil || n == 0 {
		t.Fatalf("EnforceRetention: %d %v", n, err)
	}
	b, err := r.Bytes()
	if err != nil || len(b) == 0 {
		t.Fatalf("reader of a deleted segment: %d bytes, %v", len(b), err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	checkReads2 := readAll(t, l, l.LogStartOffset())
	if len(checkReads2) == 0 {
		t.Fatal("nothing left to read after retention")
	}
}
