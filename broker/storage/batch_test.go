package storage

import (
	"bytes"
	"errors"
	"testing"
)

// RecordsCRC gives the same verdict as ParseBatch's CRC check, however the bytes arrive.
func TestRecordsCRCPieceByPiece(t *testing.T) {
	good := append(buildBatch(plain(3, 20, 1000)), buildBatch(plain(50, 100, 1000))...)
	badCRC := append(buildBatch(plain(3, 20, 1000)), buildBatch(plain(50, 100, 1000))...)
	badCRC[len(badCRC)-5] ^= 1
	longer := buildBatch(plain(2, 10, 1000))
	longer[offBatchLength+3]++ // claims a byte more than the record set has
	short := buildBatch(plain(2, 10, 1000))
	short[offBatchLength+3] = 10 // below the header size
	cases := []struct {
		name    string
		records []byte
		ok      bool
	}{
		{"two batches", good, true},
		{"bad crc in the second batch", badCRC, false},
		{"length beyond the record set", longer, false},
		{"length below a header", short, false},
		{"torn header", good[:30], false},
		{"second batch torn", good[:len(good)-1], false},
	}
	for _, tc := range cases {
		for _, piece := range []int{1, 13, 4096, len(tc.records)} {
			// The record set sits inside a larger buffer, as in a request.
			buf := append(append([]byte("prefix"), tc.records...), "suffix"...)
			start, end := 6, 6+len(tc.records)
			var v RecordsCRC
			v.Reset(start, end)
			done := false
			for got := start; !done; {
				got = min(got+piece, len(buf))
				done = v.Feed(buf, got)
				if !done && got == len(buf) {
					t.Fatalf("%s: not done with every byte in", tc.name)
				}
			}
			if v.OK() != tc.ok {
				t.Errorf("%s, pieces of %d: OK %v, want %v", tc.name, piece, v.OK(), tc.ok)
			}
		}
	}
	var empty RecordsCRC
	empty.Reset(3, 3)
	if !empty.Feed(nil, 0) || empty.OK() {
		t.Error("an empty record set must be done and not OK")
	}
}

// AppendCRCChecked leaves out the CRC check and nothing else.
func TestAppendCRCCheckedChecksTheRest(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions(nil))
	defer l.Close()
	b := buildBatch(plain(5, 10, 1000))
	b[len(b)-1] ^= 1 // a CRC mismatch the caller's check would have caught
	if _, err := l.AppendCRCChecked(bytes.Clone(b)); err != nil {
		t.Fatalf("AppendCRCChecked checked the CRC: %v", err)
	}
	if _, err := l.Append(bytes.Clone(b)); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("Append: %v, want a corrupt message", err)
	}
	badMagic := buildBatch(plain(5, 10, 1000))
	badMagic[offMagic] = 1
	if _, err := l.AppendCRCChecked(badMagic); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("bad magic: %v", err)
	}
	torn := buildBatch(plain(5, 10, 1000))
	if _, err := l.AppendCRCChecked(torn[:len(torn)-3]); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("torn batch: %v", err)
	}
	if hwm := l.HighWatermark(); hwm != 5 {
		t.Fatalf("high watermark %d, want 5", hwm)
	}
}
