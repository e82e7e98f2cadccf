package storage

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFormatFrozen writes a small log and checks its files byte for byte against
// broker/FORMAT.md. If this fails, the on-disk format changed: update FORMAT.md (and
// think about old data directories) before touching the expected bytes.
func TestFormatFrozen(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{ms: 0x0102030405}
	o := testOptions(clk)
	o.IndexIntervalBytes = 1 // index every batch after the first
	o.LeaderEpoch = 9
	l := mustOpen(t, dir, o)
	// Batch A: 2 records (key "k0"/"k1", 3-byte values), timestamps 1000, 1001 -> offsets 0-1.
	mustAppend(t, l, buildBatch(plain(2, 3, 1000)))
	// Batch B: idempotent producer 7, epoch 1, sequence 0, one record at ts 2000 -> offset 2.
	mustAppend(t, l, buildBatch(batchSpec{records: 1, valueSize: 3, baseTs: 2000, pid: 7, epoch: 1, seq: 0}))
	if err := l.Roll(); err != nil { // seals segment 0 and snapshots producers at offset 3
		t.Fatal(err)
	}
	// Batch C in the second segment: offset 3.
	mustAppend(t, l, buildBatch(plain(1, 3, 3000)))
	if _, err := l.DeleteRecordsBefore(1); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	h := func(s string) string { return strings.Join(strings.Fields(s), "") }
	batchA := h(`
		0000000000000000 00000049 00000009 02 %CRC%
		0000 00000001 00000000000003e8 00000000000003e9
		ffffffffffffffff ffff ffffffff 00000002
		16 00 00 00 04 6b30 06 616263 00
		16 00 02 02 04 6b31 06 626364 00`)
	want := map[string]string{
		// Segment 0: no entry for the first batch; batch B (relative offset 2) at byte 85.
		"00000000000000000000.index": h(`00000002 00000055`),
		// Batch B raised the max timestamp to 2000 (0x7d0); the roll adds no entry
		// because 2000 is already the last one.
		"00000000000000000000.timeindex": h(`00000000000007d0 00000002`),
		// Segment 1 holds one batch at position 0: no entries.
		"00000000000000000003.index":     "",
		"00000000000000000003.timeindex": "",
		// Producer 7: epoch 1, last append at the clock, no open transaction, no
		// marker (coordinator epoch -1), last timestamp 2000, one batch seq 0..0 at
		// offset 2.
		"00000000000000000003.snapshot": h(`54505053 0003 %CRC% 00000001
			0000000000000007 0001 0000000102030405 ffffffffffffffff ffffffff 00000000000007d0 01
			00000000 00000000 0000000000000002 0000000000000002 00000000000007d0`),
		"00000000000000000004.snapshot": h(`54505053 0003 %CRC% 00000001
			0000000000000007 0001 0000000102030405 ffffffffffffffff ffffffff 00000000000007d0 01
			00000000 00000000 0000000000000002 0000000000000002 00000000000007d0`),
		"log-start-offset": hex.EncodeToString([]byte("1\n")),
		"clean-shutdown":   hex.EncodeToString([]byte("4\n")),
		"recovery-point":   hex.EncodeToString([]byte("3\n")),
	}
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if strings.Contains(w, "%CRC%") { // the CRC of the snapshot body is checked separately
			i := strings.Index(w, "%CRC%") / 2
			if len(got) >= 10 {
				if c := crcOf(got[10:]); c != uint32(got[6])<<24|uint32(got[7])<<16|uint32(got[8])<<8|uint32(got[9]) {
					t.Errorf("%s: crc does not cover bytes [10, end)", name)
				}
				w = strings.Replace(w, "%CRC%", hex.EncodeToString(got[i:i+4]), 1)
			}
		}
		if g := hex.EncodeToString(got); g != w {
			t.Errorf("%s:\n got %s\nwant %s", name, g, w)
		}
	}
	// The .log holds the producer's bytes with the base offset and leader epoch set.
	seg0, _ := os.ReadFile(filepath.Join(dir, "00000000000000000000.log"))
	if len(seg0) != 85+73 {
		t.Fatalf("segment 0 is %d bytes, want 158", len(seg0))
	}
	a := strings.Replace(batchA, "%CRC%", hex.EncodeToString(seg0[17:21]), 1)
	if g := hex.EncodeToString(seg0[:85]); g != a {
		t.Errorf("batch A:\n got %s\nwant %s", g, a)
	}
	if crcOf(seg0[21:85]) != uint32(seg0[17])<<24|uint32(seg0[18])<<16|uint32(seg0[19])<<8|uint32(seg0[20]) {
		t.Error("batch A crc does not cover bytes [21, end)")
	}
	if g := hex.EncodeToString(seg0[85 : 85+61]); g != h(`
		0000000000000002 0000003d 00000009 02`)+hex.EncodeToString(seg0[85+17:85+21])+h(`
		0000 00000000 00000000000007d0 00000000000007d0
		0000000000000007 0001 00000000 00000001`) {
		t.Errorf("batch B header: %s", g)
	}
	seg1, _ := os.ReadFile(filepath.Join(dir, "00000000000000000003.log"))
	if len(seg1) != 73 || hex.EncodeToString(seg1[:8]) != "0000000000000003" {
		t.Errorf("segment 1: %d bytes, base offset field %x", len(seg1), seg1[:8])
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "00000000000000000000.index 00000000000000000000.log 00000000000000000000.timeindex "+
		"00000000000000000003.index 00000000000000000003.log 00000000000000000003.snapshot 00000000000000000003.timeindex "+
		"00000000000000000004.snapshot clean-shutdown log-start-offset recovery-point" {
		t.Errorf("directory: %s", got)
	}
}

// TestFormatFrozenCleanerCheckpoint: cleaner-offset-checkpoint is the offset where the
// cleaner's last pass ended, in decimal and a newline (FORMAT.md).
func TestFormatFrozenCleanerCheckpoint(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions(nil))
	mustAppend(t, l, buildKeyed(1, kv{s("k"), s("v")}, kv{s("k"), s("w")}))
	l.Roll()
	if _, err := l.Compact(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if b, err := os.ReadFile(filepath.Join(dir, "cleaner-offset-checkpoint")); err != nil || hex.EncodeToString(b) != hex.EncodeToString([]byte("2\n")) {
		t.Fatalf("cleaner-offset-checkpoint %q, %v", b, err)
	}
}
