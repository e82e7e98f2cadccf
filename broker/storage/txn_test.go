package storage

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func txnBatch(pid int64, epoch int16, seq int32, records int) []byte {
	return buildBatch(batchSpec{records: records, valueSize: 3, baseTs: 1000, pid: pid, epoch: epoch, seq: seq, codec: attrTransactional})
}

// crash drops a log as kill -9 would: files closed, nothing written at close (no
// index files, snapshot, transaction index or clean-shutdown marker).
func crash(l *Log) {
	l.writeMu.Lock()
	l.closed = true
	l.writeMu.Unlock()
	l.closeSegments()
}

// TestTxnLastStableOffsetAndAbortedIndex: an open transaction holds the last stable
// offset at its first batch; a commit releases it; an abort is listed with its first
// and marker offsets; ReadUpTo stops below the last stable offset.
func TestTxnLastStableOffsetAndAbortedIndex(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions(nil))
	mustAppend(t, l, buildBatch(plain(2, 3, 1))) // 0-1
	mustAppend(t, l, txnBatch(7, 0, 0, 2))       // 2-3 txn of 7
	mustAppend(t, l, txnBatch(8, 0, 0, 1))       // 4 txn of 8
	mustAppend(t, l, buildBatch(plain(1, 3, 1))) // 5
	if got := l.LastStableOffset(); got != 2 || l.HighWatermark() != 6 {
		t.Fatalf("lso %d hw %d, want 2 6", got, l.HighWatermark())
	}
	r, err := l.ReadUpTo(0, 1<<20, l.LastStableOffset())
	if err != nil || r.NextOffset() != 2 {
		t.Fatalf("ReadUpTo: next %d, %v", r.NextOffset(), err)
	}
	r.Close()
	if r, _ := l.ReadUpTo(2, 1<<20, 2); r.Len() != 0 {
		t.Fatal("read at the last stable offset returned data")
	}
	if off, err := l.AppendMarker(7, 0, true, 0); err != nil || off != 6 {
		t.Fatalf("commit marker at %d, %v", off, err)
	}
	if got := l.LastStableOffset(); got != 4 {
		t.Fatalf("lso after commit of 7: %d, want 4", got)
	}
	if _, err := l.AppendMarker(8, 0, false, 0); err != nil {
		t.Fatal(err)
	}
	if got := l.LastStableOffset(); got != 8 || got != l.HighWatermark() {
		t.Fatalf("lso after abort of 8: %d, want 8", got)
	}
	want := []AbortedTxn{{ProducerID: 8, FirstOffset: 4, LastOffset: 7, LastStableOffset: 8}}
	if got := l.AbortedTxns(0, 8); !reflect.DeepEqual(got, want) {
		t.Fatalf("aborted %+v, want %+v", got, want)
	}
	if got := l.AbortedTxns(8, 9); len(got) != 0 {
		t.Fatalf("aborted after the marker: %+v", got)
	}
	// An older epoch's marker or data is fenced; a client's control batch refused.
	if _, err := l.AppendMarker(8, 1, false, 0); err != nil { // epoch bump (fencing)
		t.Fatal(err)
	}
	if _, err := l.Append(txnBatch(8, 0, 1, 1)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch append: %v", err)
	}
	if _, err := l.AppendMarker(8, 0, true, 0); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch marker: %v", err)
	}
	ctl := controlBatch(9, 0, true, 0, 1)
	if _, err := l.Append(ctl); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("client control batch: %v", err)
	}
	// Headers of everything read back: markers are control batches.
	hs := readAll(t, l, 0)
	if n := len(hs); n != 7 || !hs[4].IsControl() || !hs[5].IsControl() || !hs[1].IsTransactional() || hs[1].IsControl() {
		t.Fatalf("read back %d batches: %+v", n, hs)
	}
}

// TestTxnRecovery: after a crash, open transactions and the aborted list of the
// active segment are rebuilt from the log; after a clean close, from the snapshot and
// the .txnindex files; after a roll, a closed segment keeps its list on disk.
func TestTxnRecovery(t *testing.T) {
	for _, clean := range []bool{false, true} {
		t.Run(map[bool]string{false: "crash", true: "clean"}[clean], func(t *testing.T) {
			dir := t.TempDir()
			l, err := OpenLog(dir, testOptions(nil))
			if err != nil {
				t.Fatal(err)
			}
			mustAppend(t, l, txnBatch(1, 0, 0, 2)) // 0-1
			l.AppendMarker(1, 0, false, 0)         // 2: abort
			l.Roll()
			mustAppend(t, l, txnBatch(2, 0, 0, 1)) // 3
			mustAppend(t, l, txnBatch(3, 0, 0, 1)) // 4
			l.AppendMarker(3, 0, false, 0)         // 5: abort
			mustAppend(t, l, txnBatch(4, 0, 0, 1)) // 6, open
			l.AppendMarker(2, 0, true, 0)          // 7: commit
			if clean {
				l.Close()
			} else {
				crash(l)
			}
			l2 := mustOpen(t, dir, testOptions(nil))
			if got := l2.LastStableOffset(); got != 6 {
				t.Fatalf("lso %d, want 6", got)
			}
			want := []AbortedTxn{{1, 0, 2, 3}, {3, 4, 5, 6}}
			want[1].LastStableOffset = 3 // 2's transaction was still open then
			if got := l2.AbortedTxns(0, 8); !reflect.DeepEqual(got, want) {
				t.Fatalf("aborted %+v, want %+v", got, want)
			}
			if got := l2.OpenTxns(); !reflect.DeepEqual(got, map[int64]int64{4: 6}) {
				t.Fatalf("open %v", got)
			}
			l2.AppendMarker(4, 0, true, 0)
			if got := l2.LastStableOffset(); got != 9 {
				t.Fatalf("lso %d after commit, want 9", got)
			}
		})
	}
}

// TestTxnIndexRetention: deleting a segment deletes its .txnindex with it.
func TestTxnIndexRetention(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions(nil))
	mustAppend(t, l, txnBatch(1, 0, 0, 1))
	l.AppendMarker(1, 0, false, 0)
	l.Roll()
	mustAppend(t, l, buildBatch(plain(1, 3, 1)))
	if _, err := os.Stat(filepath.Join(dir, segmentName(0, ".txnindex"))); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DeleteRecordsBefore(2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, segmentName(0, ".txnindex"))); !os.IsNotExist(err) {
		t.Fatalf("txnindex of a deleted segment: %v", err)
	}
	if got := l.AbortedTxns(0, 10); len(got) != 0 {
		t.Fatalf("aborted after retention: %+v", got)
	}
}

// TestTxnCompactionKeepsTransactions: the cleaner keeps markers and transactional
// records, and they never remove an older value of their key.
func TestTxnCompactionKeepsTransactions(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(nil)
	o.Compact = true
	l := mustOpen(t, dir, o)
	mustAppend(t, l, buildBatch(plain(1, 3, 1))) // 0: k0 (plain)
	mustAppend(t, l, txnBatch(5, 0, 0, 1))       // 1: k0 in an aborted txn
	l.AppendMarker(5, 0, false, 0)               // 2
	mustAppend(t, l, txnBatch(6, 0, 0, 1))       // 3: k0 committed
	l.AppendMarker(6, 0, true, 0)                // 4
	l.Roll()
	if _, err := l.Compact(); err != nil {
		t.Fatal(err)
	}
	if hs := readAll(t, l, 0); len(hs) != 5 {
		t.Fatalf("%d batches after compaction, want 5", len(hs))
	}
	if got := l.AbortedTxns(0, 5); len(got) != 1 || got[0].ProducerID != 5 {
		t.Fatalf("aborted after compaction: %+v", got)
	}
}

// TestFormatFrozenTxn freezes the marker batch, the .txnindex file and an open
// transaction in a producer snapshot (broker/FORMAT.md).
func TestFormatFrozenTxn(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{ms: 0x0102030405}
	l := mustOpen(t, dir, testOptions(clk))
	mustAppend(t, l, txnBatch(7, 0, 0, 2)) // 0-1
	l.AppendMarker(7, 0, false, 3)         // 2: abort, coordinator epoch 3
	mustAppend(t, l, txnBatch(8, 1, 0, 1)) // 3, left open
	l.Close()
	h := func(s string) string { return strings.Join(strings.Fields(s), "") }
	ti, _ := os.ReadFile(filepath.Join(dir, segmentName(0, ".txnindex")))
	if g, w := hex.EncodeToString(ti), h(`0000 0000000000000007 0000000000000000 0000000000000002 0000000000000003`); g != w {
		t.Errorf(".txnindex:\n got %s\nwant %s", g, w)
	}
	seg, _ := os.ReadFile(filepath.Join(dir, segmentName(0, ".log")))
	first := len(txnBatch(7, 0, 0, 2))
	marker := seg[first : first+78]
	if g, w := hex.EncodeToString(marker), h(`0000000000000002 00000042 00000000 02`)+hex.EncodeToString(marker[17:21])+h(`
		0030 00000000 0000000102030405 0000000102030405
		0000000000000007 0000 ffffffff 00000001
		20 00 00 00 08 0000 0000 0c 0000 00000003 00`); g != w {
		t.Errorf("marker:\n got %s\nwant %s", g, w)
	}
	if crcOf(marker[21:]) != uint32(marker[17])<<24|uint32(marker[18])<<16|uint32(marker[19])<<8|uint32(marker[20]) {
		t.Error("marker crc")
	}
	snap, _ := os.ReadFile(filepath.Join(dir, segmentName(4, ".snapshot")))
	if g, w := hex.EncodeToString(snap[10:]), h(`00000002
		0000000000000007 0000 0000000102030405 ffffffffffffffff 00000003 0000000102030405 01
		00000000 00000001 0000000000000000 0000000000000001 00000000000003e9
		0000000000000008 0001 0000000102030405 0000000000000003 ffffffff 00000000000003e8 01
		00000000 00000000 0000000000000003 0000000000000003 00000000000003e8`); g != w {
		t.Errorf("snapshot:\n got %s\nwant %s", g, w)
	}
}
