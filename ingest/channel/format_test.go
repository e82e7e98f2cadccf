package channel

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/tagpipe/tagpipe/ingest"
)

// TestFileFormatFrozen pins the bytes of FORMAT.md: one put of one event and its commit.
func TestFileFormatFrozen(t *testing.T) {
	dir := t.TempDir()
	c := openFile(t, dir, func(o *FileOptions) { o.NoSync = true })
	if err := c.Put(context.Background(), []ingest.Event{{Headers: ingest.Headers{{Key: "k", Value: "v"}}, Body: []byte("hi")}}); err != nil {
		t.Fatal(err)
	}
	tx, _ := c.Take(context.Background(), 1)
	tx.Commit()
	c.Close()
	data, err := os.ReadFile(filepath.Join(dir, "log-00000001.wal"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "" +
		// PUT: len=28, crc, type 1, first_id=1, count=1, event(body_len=2, 1 header, "k"="v", "hi")
		"0000001c" + "3cd4300c" + "01" + "0000000000000001" + "00000001" +
		"00000002" + "0001" + "0001" + "6b" + "00000001" + "76" + "6869" +
		// COMMIT: len=12, crc, type 2, first_id=1, count=1
		"0000000c" + "17853981" + "02" + "0000000000000001" + "00000001"
	if got := hex.EncodeToString(data); got != want {
		t.Fatalf("segment bytes changed:\n got %s\nwant %s", got, want)
	}
	cp, _ := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if string(cp) != `{"version":1,"next_id":2,"segment":1,"offset":58,"min_pending":2}` {
		t.Fatalf("checkpoint = %s", cp)
	}
}
