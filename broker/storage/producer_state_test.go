package storage

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func idem(pid int64, epoch int16, seq int32, records int) []byte {
	return buildBatch(batchSpec{records: records, valueSize: 20, baseTs: 1, pid: pid, epoch: epoch, seq: seq})
}

func TestIdempotentSequenceRules(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions(nil))
	// An unknown producer is taken at any sequence (Kafka since KIP-360: its state may
	// have expired); from then on its sequences are checked.
	mustAppend(t, l, idem(6, 0, 3, 1)) // offset 0
	if _, err := l.Append(idem(6, 0, 5, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap after an unknown producer's first batch: %v", err)
	}
	r0 := mustAppend(t, l, idem(7, 0, 0, 3))     // a new producer at 0: seqs 0..2 -> offsets 1..3
	mustAppend(t, l, buildBatch(plain(2, 5, 1))) // a non-idempotent batch in between
	r1 := mustAppend(t, l, idem(7, 0, 3, 2))     // seqs 3..4 -> offsets 6..7
	if r0.BaseOffset != 1 || r1.BaseOffset != 6 {
		t.Fatalf("offsets %d %d", r0.BaseOffset, r1.BaseOffset)
	}
	// A retry of either batch is a duplicate that returns the original offsets and
	// appends nothing.
	hw := l.HighWatermark()
	for _, c := range []struct {
		seq, n int32
		res    AppendResult
	}{{0, 3, r0}, {3, 2, r1}} {
		res, err := l.Append(idem(7, 0, c.seq, int(c.n)))
		if !errors.Is(err, ErrDuplicateSequence) || res.BaseOffset != c.res.BaseOffset || res.LastOffset != c.res.LastOffset {
			t.Fatalf("retry of seq %d: %+v %v, want offsets of %+v", c.seq, res, err, c.res)
		}
	}
	if l.HighWatermark() != hw {
		t.Fatal("a duplicate was appended")
	}
	// A gap, or an overlapping batch that is not one of the last five, is out of order.
	if _, err := l.Append(idem(7, 0, 6, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v", err)
	}
	if _, err := l.Append(idem(7, 0, 1, 2)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("overlap: %v", err)
	}
	// Other producers are independent.
	mustAppend(t, l, idem(8, 0, 0, 1))
	// A new epoch starts over at 0; the old epoch is then fenced.
	if _, err := l.Append(idem(7, 1, 5, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch at seq 5: %v", err)
	}
	mustAppend(t, l, idem(7, 1, 0, 1))
	if _, err := l.Append(idem(7, 0, 5, 1)); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
}

func TestIdempotentOnlyLastFiveBatchesAreDuplicates(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions(nil))
	for i := range 7 {
		mustAppend(t, l, idem(1, 0, int32(i), 1))
	}
	for seq := int32(2); seq < 7; seq++ {
		if _, err := l.Append(idem(1, 0, seq, 1)); !errors.Is(err, ErrDuplicateSequence) {
			t.Fatalf("seq %d (one of the last five): %v", seq, err)
		}
	}
	for seq := int32(0); seq < 2; seq++ {
		if _, err := l.Append(idem(1, 0, seq, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
			t.Fatalf("seq %d (older than five batches): %v", seq, err)
		}
	}
}

func TestIdempotentSequenceWraps(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions(nil))
	// Walk the producer to the top of the sequence space through the state itself.
	mustAppend(t, l, idem(1, 0, 0, 1))
	l.producer.m[1].batches[0].lastSeq = math.MaxInt32 - 2
	mustAppend(t, l, idem(1, 0, math.MaxInt32-1, 3)) // MaxInt32-1, MaxInt32, 0
	if _, err := l.Append(idem(1, 0, 1, 1)); err != nil {
		t.Fatalf("sequence after wrap: %v", err)
	}
}

func TestIdempotentBatchMustBeAlone(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions(nil))
	if _, err := l.Append(idem(1, 0, -1, 1)); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("producer id without a sequence: %v", err)
	}
	if _, err := l.Append(idem(1, -1, 0, 1)); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("producer id without an epoch: %v", err)
	}
	two := append(idem(1, 0, 0, 1), idem(1, 0, 1, 1)...)
	if _, err := l.Append(two); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("two idempotent batches in one append: %v", err)
	}
}

// The producer state survives restarts: from the snapshot written at Close, from a
// snapshot at a roll plus the batches after it, and with no snapshot at all.
func TestIdempotentStateSurvivesRestart(t *testing.T) {
	for _, mode := range []string{"close", "roll+replay", "no-snapshot", "bad-snapshot"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, testOptions(nil))
			mustAppend(t, l, idem(42, 3, 0, 2))
			if mode != "close" {
				l.Roll() // snapshot at offset 2
			}
			res := mustAppend(t, l, idem(42, 3, 2, 4))
			mustAppend(t, l, idem(43, 0, 0, 1))
			l.Close()
			snaps, _ := filepath.Glob(filepath.Join(dir, "*.snapshot"))
			switch mode {
			case "roll+replay": // lose the snapshot of Close: replay from the roll's
				os.Remove(filepath.Join(dir, snapshotName(l.endOffset.Load())))
			case "no-snapshot":
				for _, s := range snaps {
					os.Remove(s)
				}
			case "bad-snapshot":
				for _, s := range snaps {
					os.WriteFile(s, []byte("TPPS garbage"), 0o644)
				}
			}
			l2 := mustOpen(t, dir, testOptions(nil))
			got, err := l2.Append(idem(42, 3, 2, 4))
			if !errors.Is(err, ErrDuplicateSequence) || got.BaseOffset != res.BaseOffset || got.LastOffset != res.LastOffset {
				t.Fatalf("retry after restart: %+v %v, want %+v", got, err, res)
			}
			if _, err := l2.Append(idem(42, 3, 7, 1)); !errors.Is(err, ErrOutOfOrderSequence) {
				t.Fatalf("gap after restart: %v", err)
			}
			if _, err := l2.Append(idem(42, 2, 0, 1)); !errors.Is(err, ErrInvalidProducerEpoch) {
				t.Fatalf("old epoch after restart: %v", err)
			}
			mustAppend(t, l2, idem(42, 3, 6, 1))
			mustAppend(t, l2, idem(43, 0, 1, 1))
			ps := l2.Producers()
			if len(ps) != 2 || ps[0].ProducerID != 42 || ps[0].LastSequence != 6 || ps[1].LastSequence != 1 {
				t.Fatalf("producers after restart: %+v", ps)
			}
		})
	}
}

func TestProducerSnapshotDroppedPastTruncatedEnd(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions(nil))
	mustAppend(t, l, idem(5, 0, 0, 1))
	last := mustAppend(t, l, idem(5, 0, 1, 1))
	l.Close()
	// Tear the last batch off: the Close snapshot (at offset 2) is now past the end and
	// must not be trusted; replay says seq 1 was never written.
	seg := filepath.Join(dir, segmentName(0, ".log"))
	st, _ := os.Stat(seg)
	os.Truncate(seg, st.Size()-3)
	l2 := mustOpen(t, dir, testOptions(nil))
	if l2.HighWatermark() != last.BaseOffset {
		t.Fatalf("hw %d", l2.HighWatermark())
	}
	if r, err := l2.Append(idem(5, 0, 1, 1)); err != nil || r.BaseOffset != 1 {
		t.Fatalf("re-send of the torn batch: %+v %v", r, err)
	}
}

func TestProducerExpiry(t *testing.T) {
	clk := &fakeClock{ms: 1_000_000}
	o := testOptions(clk)
	o.ProducerIDExpirationMS = 60_000
	l := mustOpen(t, t.TempDir(), o)
	mustAppend(t, l, idem(9, 0, 0, 1))
	clk.ms += 60_001
	l.EnforceRetention()
	if len(l.Producers()) != 0 {
		t.Fatalf("producer not expired: %+v", l.Producers())
	}
	mustAppend(t, l, idem(9, 0, 1, 1)) // a forgotten producer continues where it was
	if _, err := l.Append(idem(9, 0, 1, 1)); !errors.Is(err, ErrDuplicateSequence) {
		t.Fatalf("tracked again after expiry: %v", err)
	}
}

// TestProducersDescribe: Producers answers Kafka's DescribeProducers fields: the last
// batch's sequence and max timestamp, the open transaction's first offset, and after a
// marker its coordinator epoch and timestamp (the sequence kept, the transaction
// closed); the same after a clean restart (snapshot), a crash (replay of the log) and
// with no snapshot at all.
func TestProducersDescribe(t *testing.T) {
	for _, mode := range []string{"close", "crash", "no-snapshot"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			clk := &fakeClock{ms: 50_000}
			l := mustOpen(t, dir, testOptions(clk))
			mustAppend(t, l, idem(6, 2, 0, 3))     // 0-2: seqs 0..2, timestamps 1..3
			mustAppend(t, l, txnBatch(7, 0, 0, 2)) // 3-4: opens 7's transaction
			clk.ms++
			mustAppend(t, l, txnBatch(7, 0, 2, 1)) // 5
			want := []ProducerInfo{
				{ProducerID: 6, ProducerEpoch: 2, LastSequence: 2, LastOffset: 2, LastTimestamp: 3, CoordinatorEpoch: -1, CurrentTxnStartOffset: -1},
				{ProducerID: 7, ProducerEpoch: 0, LastSequence: 2, LastOffset: 5, LastTimestamp: 1000, CoordinatorEpoch: -1, CurrentTxnStartOffset: 3},
			}
			checkProducers(t, "open transaction", l, want)

			clk.ms = 60_000
			if _, err := l.AppendMarker(7, 0, true, 4); err != nil { // 6: commit
				t.Fatal(err)
			}
			want[1].LastTimestamp, want[1].CoordinatorEpoch, want[1].CurrentTxnStartOffset = 60_000, 4, -1
			checkProducers(t, "after commit", l, want)

			mustAppend(t, l, txnBatch(7, 0, 3, 1)) // 7: the next transaction
			clk.ms = 70_000
			if _, err := l.AppendMarker(8, 3, false, 4); err != nil { // 8: a producer with only a marker here
				t.Fatal(err)
			}
			want[1].LastSequence, want[1].LastOffset, want[1].LastTimestamp, want[1].CurrentTxnStartOffset = 3, 7, 1000, 7
			want = append(want, ProducerInfo{ProducerID: 8, ProducerEpoch: 3, LastSequence: -1, LastOffset: -1, LastTimestamp: 70_000, CoordinatorEpoch: 4, CurrentTxnStartOffset: -1})
			checkProducers(t, "second transaction", l, want)

			switch mode {
			case "close":
				l.Close()
			case "crash":
				crash(l)
			case "no-snapshot":
				l.Close()
				snaps, _ := filepath.Glob(filepath.Join(dir, "*.snapshot"))
				for _, s := range snaps {
					os.Remove(s)
				}
			}
			l2 := mustOpen(t, dir, testOptions(clk))
			checkProducers(t, "after restart", l2, want)
		})
	}
}

// checkProducers compares l.Producers with want, leaving out the append times (a
// replay takes them from the segment's modification time).
func checkProducers(t *testing.T, what string, l *Log, want []ProducerInfo) {
	t.Helper()
	got := l.Producers()
	for i := range got {
		got[i].LastAppendTime = 0
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// TestProducersLogAppendTime: on a LogAppendTime topic the last timestamp is the append
// time the batch is stored with, as a replay reads it.
func TestProducersLogAppendTime(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{ms: 90_000}
	o := testOptions(clk)
	o.LogAppendTime = true
	l := mustOpen(t, dir, o)
	mustAppend(t, l, idem(6, 0, 0, 2))
	if ps := l.Producers(); len(ps) != 1 || ps[0].LastTimestamp != 90_000 {
		t.Fatalf("producers %+v, want last timestamp 90000", ps)
	}
	crash(l)
	l2 := mustOpen(t, dir, o)
	if ps := l2.Producers(); len(ps) != 1 || ps[0].LastTimestamp != 90_000 {
		t.Fatalf("producers after replay %+v, want last timestamp 90000", ps)
	}
}

// TestProducerSnapshotV2: a version 2 snapshot (before coordinator epochs and last
// timestamps were kept) still loads: coordinator epoch -1, the last batch's max
// timestamp.
func TestProducerSnapshotV2(t *testing.T) {
	b, err := hex.DecodeString(strings.Join(strings.Fields(`54505053 0002 00000000 00000001
		0000000000000007 0001 0000000102030405 0000000000000001 01
		00000000 00000000 0000000000000002 0000000000000002 00000000000007d0`), ""))
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(b[6:], crcOf(b[10:]))
	m, open, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	e := m[7]
	if len(m) != 1 || e == nil || e.epoch != 1 || e.coordinatorEpoch != -1 || e.lastTimestamp != 0x7d0 || e.n != 1 || open[7] != 1 {
		t.Fatalf("decoded %+v %v", e, open)
	}
}
