package storage

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{ms: 1_700_000_000_000}
	l := mustOpen(t, dir, testOptions(clk))
	var want [][]byte
	for i := range 50 {
		b := buildBatch(plain(1+i%7, 100, clk.ms))
		r := mustAppend(t, l, b)
		if r.BaseOffset != l.HighWatermark()-int64(1+i%7) || r.LastOffset != l.HighWatermark()-1 {
			t.Fatalf("append %d: got %+v, hw %d", i, r, l.HighWatermark())
		}
		if r.LogAppendTimeMs != -1 {
			t.Fatalf("CreateTime topic must report LogAppendTime -1, got %d", r.LogAppendTimeMs)
		}
		want = append(want, bytes.Clone(b))
	}
	check := func(l *Log) {
		t.Helper()
		r, err := l.Read(0, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Bytes()
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, bytes.Join(want, nil)) {
			t.Fatalf("read back %d bytes, differ from the %d appended", len(got), len(bytes.Join(want, nil)))
		}
	}
	check(l)
	hw, size := l.HighWatermark(), l.Size()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Append(buildBatch(plain(1, 1, 0))); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	l2 := mustOpen(t, dir, testOptions(clk))
	if l2.HighWatermark() != hw || l2.Size() != size {
		t.Fatalf("reopened: hw %d size %d, want %d %d", l2.HighWatermark(), l2.Size(), hw, size)
	}
	check(l2)
}

func TestReadFromMiddleOfBatchAndMaxBytes(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions(nil))
	for range 10 {
		mustAppend(t, l, buildBatch(plain(10, 100, 1)))
	}
	// Offset 15 is inside the second batch [10, 19]: the whole batch comes back.
	r, err := l.Read(15, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Bytes()
	r.Close()
	h, n, err := ParseBatch(b, 0)
	if err != nil || n != len(b) || h.BaseOffset != 10 || r.NextOffset() != 20 {
		t.Fatalf("Read(15, 1): base %d, %d of %d bytes, next %d, err %v", h.BaseOffset, n, len(b), r.NextOffset(), err)
	}
	// maxBytes of two and a half batches gives two whole batches.
	r, err = l.Read(0, int32(2*n+n/2))
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 2*n || r.FirstOffset() != 0 || r.NextOffset() != 20 {
		t.Fatalf("Read(0, 2.5 batches): %d bytes (batch %d), next %d", r.Len(), n, r.NextOffset())
	}
	r.Close()
	// At the end: empty; past it or before the start: out of range.
	r, err = l.Read(100, 1000)
	if err != nil || r.Len() != 0 {
		t.Fatalf("Read(hw): %v, %d bytes", err, r.Len())
	}
	if _, err := l.Read(101, 1000); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read(hw+1): %v", err)
	}
	if _, err := l.Read(-1, 1000); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read(-1): %v", err)
	}
}

func TestDeleteRemovesTheDirectory(t *testing.T) {
	dir := t.TempDir() + "/topic-0"
	l := mustOpen(t, dir, testOptions(nil))
	mustAppend(t, l, buildBatch(plain(3, 10, 1)))
	l.Roll()
	mustAppend(t, l, buildBatch(plain(3, 10, 1)))
	r, err := l.Read(0, 100) // an open read survives the deletion
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory still there: %v", err)
	}
	if b, err := r.Bytes(); err != nil || len(b) == 0 {
		t.Fatalf("open read after Delete: %d bytes, %v", len(b), err)
	}
	r.Close()
	if _, err := l.Read(0, 100); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Delete: %v", err)
	}
	if err := l.Delete(); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}
