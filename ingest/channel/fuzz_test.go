package channel

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tagpipe/tagpipe/ingest"
)

// FuzzFileReplay opens a channel whose segment holds arbitrary bytes after one good
// record: opening never panics, the good event survives, and the channel stays usable.
func FuzzFileReplay(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 5, 1, 2, 3, 4, 1, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, junk []byte) {
		dir := t.TempDir()
		o := DefaultFileOptions(dir)
		o.MinFreeBytes, o.NoSync = -1, true
		c, err := OpenFile("f", o)
		if err != nil {
			t.Fatal(err)
		}
		c.Put(context.Background(), []ingest.Event{{Body: []byte("good")}})
		c.Close()
		os.Remove(filepath.Join(dir, "checkpoint"))
		seg := filepath.Join(dir, segName(1))
		fh, _ := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
		fh.Write(junk)
		fh.Close()
		c, err = OpenFile("f", o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		tx, err := c.Take(context.Background(), 1)
		if err != nil || string(tx.Events()[0].Body) != "good" {
			t.Fatalf("good event lost: %v", err)
		}
		tx.Commit()
		if err := c.Put(context.Background(), []ingest.Event{{Body: []byte("after")}}); err != nil {
			t.Fatal(err)
		}
	})
}
