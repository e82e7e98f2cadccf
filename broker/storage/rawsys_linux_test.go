package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// writeAt writes what f.WriteAt writes, by the raw path and by the runtime's path it
// falls back to, and fails as it does.
func TestWriteAtRawAndFallback(t *testing.T) {
	was := rawCallsOffUntil.Load()
	defer rawCallsOffUntil.Store(was)
	f, err := os.Create(filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := make([]byte, 0, 3<<20)
	for i, raw := range []bool{true, false, true} {
		if raw {
			rawCallsOffUntil.Store(0)
		} else {
			rawCallsOffUntil.Store(time.Now().Add(time.Hour).UnixNano())
		}
		b := bytes.Repeat([]byte{byte('a' + i)}, 1<<20+i)
		if n, err := writeAt(f, b, int64(len(want))); err != nil || n != len(b) {
			t.Fatalf("write %d (raw %v): %d, %v", i, raw, n, err)
		}
		want = append(want, b...)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes (%v), want the %d written", len(got), err, len(want))
	}

	rawCallsOffUntil.Store(0)
	ro, err := os.Open(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, err = writeAt(ro, []byte("x"), 0)
	var pe *os.PathError
	if !errors.As(err, &pe) || !errors.Is(err, syscall.EBADF) {
		t.Fatalf("write to a read-only file: %v, want a *PathError with EBADF", err)
	}
	_ = ro.Close()
	if _, err := writeAt(ro, []byte("x"), 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write to a closed file: %v, want os.ErrClosed", err)
	}
}

// A slow raw call turns raw calls off for rawCallBackoff; slow again as soon as they
// are back doubles the pause, up to rawCallBackoffMax; after a quiet spell it starts
// over.
func TestOffAfterSlowCall(t *testing.T) {
	was := rawCallsOffUntil.Load()
	defer rawCallsOffUntil.Store(was)
	slowCalls.Lock()
	savedLast, savedBackoff := slowCalls.last, slowCalls.backoff
	slowCalls.last, slowCalls.backoff = time.Time{}, 0
	slowCalls.Unlock()
	defer func() {
		slowCalls.Lock()
		slowCalls.last, slowCalls.backoff = savedLast, savedBackoff
		slowCalls.Unlock()
	}()
	now := time.Unix(1_700_000_000, 0)
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute}
	for i, w := range want {
		if d := offAfterSlowCall(now); d != w {
			t.Fatalf("slow call %d: off for %v, want %v", i, d, w)
		}
		if got := rawCallsOffUntil.Load(); got != now.Add(w).UnixNano() {
			t.Fatalf("slow call %d: off until %d, want %d", i, got, now.Add(w).UnixNano())
		}
		now = now.Add(w + 10*time.Millisecond) // slow again right after they came back
	}
	now = now.Add(3 * time.Minute) // a quiet spell
	if d := offAfterSlowCall(now); d != time.Second {
		t.Fatalf("after a quiet spell: off for %v, want 1s", d)
	}
}
