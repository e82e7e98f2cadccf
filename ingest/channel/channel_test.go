package channel

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/ingest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func evs(from, n int) []ingest.Event {
	out := make([]ingest.Event, n)
	for i := range out {
		out[i] = ingest.Event{Body: fmt.Appendf(nil, "line %d", from+i), Headers: ingest.Headers{{Key: "n", Value: fmt.Sprint(from + i)}}}
	}
	return out
}

func bodies(evs []ingest.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Body))
	}
	return out
}

// backends runs one test body against the memory and the file channel.
func backends(t *testing.T, body func(t *testing.T, open func(capacity int) ingest.Channel)) {
	t.Run("memory", func(t *testing.T) {
		body(t, func(capacity int) ingest.Channel {
			c := NewMemory("mem", MemoryOptions{Capacity: capacity})
			t.Cleanup(func() { c.Close() })
			return c
		})
	})
	t.Run("file", func(t *testing.T) {
		dir := t.TempDir()
		body(t, func(capacity int) ingest.Channel {
			o := DefaultFileOptions(dir)
			o.Capacity = capacity
			o.MinFreeBytes = -1
			c, err := OpenFile("file", o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return c
		})
	})
}

func TestChannelTransactions(t *testing.T) {
	backends(t, func(t *testing.T, open func(int) ingest.Channel) {
		ctx := context.Background()
		c := open(100)
		if err := c.Put(ctx, evs(0, 10)); err != nil {
			t.Fatal(err)
		}
		tx, err := c.Take(ctx, 4)
		if err != nil {
			t.Fatal(err)
		}
		if got := bodies(tx.Events()); fmt.Sprint(got) != "[line 0 line 1 line 2 line 3]" {
			t.Fatalf("take = %v", got)
		}
		if tx.Events()[2].Headers.Get("n") != "2" {
			t.Fatalf("headers lost: %v", tx.Events()[2].Headers)
		}
		tx.Rollback()
		tx, _ = c.Take(ctx, 6)
		if got := bodies(tx.Events()); fmt.Sprint(got) != "[line 0 line 1 line 2 line 3 line 4 line 5]" {
			t.Fatalf("after rollback take = %v", got)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		tx, _ = c.Take(ctx, 100)
		if got := bodies(tx.Events()); fmt.Sprint(got) != "[line 6 line 7 line 8 line 9]" {
			t.Fatalf("take = %v", got)
		}
		tx.Commit()
		if st := c.Stats(); st.Events != 0 || st.Bytes != 0 {
			t.Fatalf("stats after all committed = %+v", st)
		}
		// Take waits for data.
		got := make(chan []string)
		go func() {
			tx, err := c.Take(ctx, 10)
			if err != nil {
				got <- nil
				return
			}
			tx.Commit()
			got <- bodies(tx.Events())
		}()
		c.Put(ctx, evs(10, 1))
		if g := <-got; fmt.Sprint(g) != "[line 10]" {
			t.Fatalf("waiting take = %v", g)
		}
		// A take with a done context returns.
		cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		if _, err := c.Take(cctx, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("take on empty channel = %v", err)
		}
	})
}

func TestChannelFull(t *testing.T) {
	backends(t, func(t *testing.T, open func(int) ingest.Channel) {
		ctx := context.Background()
		c := open(5)
		if err := c.TryPut(evs(0, 5)); err != nil {
			t.Fatal(err)
		}
		if err := c.TryPut(evs(5, 1)); !errors.Is(err, ingest.ErrFull) {
			t.Fatalf("put into full channel = %v, want ErrFull", err)
		}
		// Taken but uncommitted events still count.
		tx, _ := c.Take(ctx, 2)
		if err := c.TryPut(evs(5, 1)); !errors.Is(err, ingest.ErrFull) {
			t.Fatalf("put with events in flight = %v, want ErrFull", err)
		}
		// A blocked Put goes through once a commit frees room.
		done := make(chan error)
		go func() { done <- c.Put(ctx, evs(5, 2)) }()
		tx.Commit()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		tx, _ = c.Take(ctx, 10)
		if got := bodies(tx.Events()); fmt.Sprint(got) != "[line 2 line 3 line 4 line 5 line 6]" {
			t.Fatalf("take = %v", got)
		}
		tx.Commit()
	})
}

func openFile(t *testing.T, dir string, mod func(*FileOptions)) *File {
	t.Helper()
	o := DefaultFileOptions(dir)
	o.MinFreeBytes = -1
	if mod != nil {
		mod(&o)
	}
	c, err := OpenFile("file", o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func drain(t *testing.T, c ingest.Channel) []string {
	t.Helper()
	var out []string
	for c.Stats().Events > 0 {
		tx, err := c.Take(context.Background(), 1000)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bodies(tx.Events())...)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestFileChannelReopenKeepsUncommitted(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c := openFile(t, dir, func(o *FileOptions) { o.MaxFileBytes = 300 })
	for i := 0; i < 50; i += 5 {
		if err := c.Put(ctx, evs(i, 5)); err != nil {
			t.Fatal(err)
		}
	}
	tx, _ := c.Take(ctx, 12)
	tx.Commit()
	tx, _ = c.Take(ctx, 3) // open take: must come back after reopen
	_ = tx
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // twice is fine
		t.Fatal(err)
	}
	c = openFile(t, dir, nil)
	defer c.Close()
	got := drain(t, c)
	if len(got) != 38 || got[0] != "line 12" || got[37] != "line 49" {
		t.Fatalf("after reopen: %d events %v", len(got), got)
	}
}

// TestFileChannelNoCheckpoint reopens from the log alone (as after kill -9 before any
// checkpoint): puts and commits are replayed.
func TestFileChannelNoCheckpoint(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c := openFile(t, dir, nil)
	c.Put(ctx, evs(0, 10))
	tx, _ := c.Take(ctx, 4)
	tx.Commit()
	c.Close()
	os.Remove(filepath.Join(dir, "checkpoint"))
	c = openFile(t, dir, nil)
	got := drain(t, c)
	c.Close()
	if fmt.Sprint(got) != "[line 4 line 5 line 6 line 7 line 8 line 9]" {
		t.Fatalf("replay = %v", got)
	}
}

func TestFileChannelTornTail(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c := openFile(t, dir, nil)
	c.Put(ctx, evs(0, 3))
	c.Put(ctx, evs(3, 3))
	c.Close()
	os.Remove(filepath.Join(dir, "checkpoint"))
	seg := filepath.Join(dir, segName(1))
	st, _ := os.Stat(seg)
	// Cut the second put record in half, as a kill -9 during a write would.
	if err := os.Truncate(seg, st.Size()-10); err != nil {
		t.Fatal(err)
	}
	c = openFile(t, dir, nil)
	c.Put(ctx, evs(100, 1))
	got := drain(t, c)
	c.Close()
	if fmt.Sprint(got) != "[line 0 line 1 line 2 line 100]" {
		t.Fatalf("after torn tail = %v", got)
	}
	c = openFile(t, dir, nil)
	defer c.Close()
	if n := c.Stats().Events; n != 0 {
		t.Fatalf("committed events came back: %d", n)
	}
}

func TestFileChannelCheckpointRemovesSegments(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	c := openFile(t, dir, func(o *FileOptions) { o.MaxFileBytes = 200 })
	defer c.Close()
	for i := 0; i < 100; i += 5 {
		c.Put(ctx, evs(i, 5))
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "log-*.wal"))
	if len(segs) < 5 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	got := drain(t, c)
	if len(got) != 100 {
		t.Fatalf("drained %d", len(got))
	}
	if err := c.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	segs, _ = filepath.Glob(filepath.Join(dir, "log-*.wal"))
	if len(segs) != 1 {
		t.Fatalf("after checkpoint %d segments remain", len(segs))
	}
}

func TestFileChannelDiskFull(t *testing.T) {
	c := openFile(t, t.TempDir(), func(o *FileOptions) { o.MinFreeBytes = 1 << 62 })
	defer c.Close()
	err := c.Put(context.Background(), evs(0, 1))
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("put on a full disk = %v", err)
	}
	t.Log(err)
	if c.Stats().Events != 0 {
		t.Fatal("event accepted")
	}
}

func TestFileChannelLocked(t *testing.T) {
	dir := t.TempDir()
	c := openFile(t, dir, nil)
	defer c.Close()
	if _, err := OpenFile("again", FileOptions{Dir: dir}); err == nil {
		t.Fatal("second open of the same directory succeeded")
	}
}

// A new channel syncs its directory and the parent (the names of its first segment and
// of the directory). A put that needs a new segment is refused while the channel
// directory cannot be fsynced: the segment's name would not survive a power cut, and
// the put with it. Once the directory syncs again puts go on, and every acknowledged
// event is there after a reopen.
func TestFileChannelRollRefusedWithoutDirSync(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	ctx := context.Background()
	var fail atomic.Bool // the checkpoint goroutine syncs too
	var mu sync.Mutex
	var synced []string
	orig := syncDir
	syncDir = func(d string) error {
		mu.Lock()
		synced = append(synced, d)
		mu.Unlock()
		if fail.Load() {
			return errors.New("input/output error")
		}
		return orig(d)
	}
	t.Cleanup(func() { syncDir = orig })
	c := openFile(t, dir, func(o *FileOptions) { o.MaxFileBytes = 200 })
	mu.Lock()
	if !slices.Contains(synced, dir) || !slices.Contains(synced, filepath.Dir(dir)) {
		t.Fatalf("a new channel synced %q, want %q and its parent", synced, dir)
	}
	mu.Unlock()
	var acked []string
	put := func(from int) error {
		batch := evs(from, 5)
		err := c.Put(ctx, batch)
		if err == nil {
			acked = append(acked, bodies(batch)...)
		}
		return err
	}
	fail.Store(true)
	refused := 0
	for i := 0; i < 40; i += 5 {
		if put(i) != nil {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("puts into new segments were acknowledged although the directory could not be synced")
	}
	fail.Store(false)
	if err := put(100); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openFile(t, dir, nil)
	defer c.Close()
	if got := drain(t, c); fmt.Sprint(got) != fmt.Sprint(acked) {
		t.Fatalf("after reopen:\n got  %v\n want %v", got, acked)
	}
}
