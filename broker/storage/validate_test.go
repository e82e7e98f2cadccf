package storage

import (
	"errors"
	"fmt"
	"testing"
)

// buildTimed encodes an uncompressed batch with base timestamp base and one record per
// timestamp delta (negative deltas too, which the format allows); a nil key at index
// keyless, if any.
func buildTimed(base int64, deltas []int64, keyless int) []byte {
	recs := make([]testRecord, len(deltas))
	for i, d := range deltas {
		recs[i] = testRecord{delta: d, key: s("k"), value: s("v")}
		if i == keyless {
			recs[i].key = nil
		}
	}
	return buildRecords(base, recs)
}

// Timestamp bounds check every record, in every codec, as Kafka's LogValidator does: a
// record whose negative delta takes it out of bounds is found although the batch
// header's base and max timestamps are within them. A compacted log's keyless record
// alone is INVALID_RECORD, with a bad timestamp beside it INVALID_TIMESTAMP listing both
// (processRecordErrors); LogAppendTime logs check nothing.
func TestTimestampBoundsEveryRecord(t *testing.T) {
	const now = 1_700_000_000_000
	clock := &fakeClock{ms: now}
	for _, codec := range []int{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			enc := func(b []byte) []byte {
				if codec == codecNone {
					return b
				}
				return compressBatch(t, b, codec, false)
			}
			o := testOptions(clock)
			o.TimestampBounds = &TimestampBounds{BeforeMS: 1000, AfterMS: 1000}
			l := mustOpen(t, t.TempDir(), o)
			defer l.Close()
			mustAppend(t, l, enc(buildTimed(now, []int64{0, -900, 900}, -1)))
			_, err := l.Append(enc(buildTimed(now, []int64{0, -5000, 0, 2000}, -1)))
			var re *RecordsError
			if !errors.Is(err, ErrInvalidTimestamp) || !errors.As(err, &re) || fmt.Sprint(re.Records[0].Index, re.Records[1].Index, len(re.Records)) != "1 3 2" {
				t.Fatalf("records 1 and 3 out of bounds: %v", err)
			}
			if l.HighWatermark() != 3 {
				t.Fatalf("high watermark %d: the refused batch was appended", l.HighWatermark())
			}

			o.Compact = true
			l.SetOptions(o)
			if _, err := l.Append(enc(buildTimed(now, []int64{0, 0}, 1))); !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("keyless record: %v, want ErrInvalidRecord", err)
			}
			_, err = l.Append(enc(buildTimed(now, []int64{0, 0, -5000}, 1)))
			if !errors.Is(err, ErrInvalidTimestamp) || !errors.As(err, &re) || len(re.Records) != 2 {
				t.Fatalf("keyless record and one out of bounds: %v, want ErrInvalidTimestamp naming both", err)
			}

			o.Compact, o.LogAppendTime = false, true
			l.SetOptions(o)
			mustAppend(t, l, enc(buildTimed(now, []int64{0, -5000}, -1)))
		})
	}
}
