package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// TimestampBounds bound the CreateTime timestamps of appended records relative to the
// append time, as Kafka's message.timestamp.before.max.ms and
// message.timestamp.after.max.ms do: a record is refused when it is more than BeforeMS
// older or more than AfterMS newer than now. math.MaxInt64 on a side is no bound there.
type TimestampBounds struct {
	BeforeMS, AfterMS int64
}

// outside reports whether ts is out of bounds at now. The arithmetic wraps as Kafka's
// (LogValidator.recordHasInvalidTimestamp) does.
func (tb *TimestampBounds) outside(ts, now int64) bool {
	diff := now - ts
	return diff > tb.BeforeMS || -diff > tb.AfterMS
}

// RecordError is one refused record of a batch: Index is its position in the batch as
// produced (its offset delta), Message says why.
type RecordError struct {
	Index   int32
	Message string
}

// RecordsError is the error of an append that refused some records of a batch (and so
// the whole batch): errors.Is finds Err (ErrInvalidTimestamp), and Records lists each
// refused record, for the Produce response's ErrorRecords (KIP-467).
type RecordsError struct {
	Err     error
	Records []RecordError
}

// ErrInvalidTimestamp is in the error of an append with a record timestamp out of the
// log's TimestampBounds (INVALID_TIMESTAMP).
var ErrInvalidTimestamp = errors.New("invalid timestamp")

func (e *RecordsError) Error() string {
	msg := fmt.Sprintf("%v: %d record(s) refused", e.Err, len(e.Records))
	if len(e.Records) > 0 {
		msg += ", first: " + e.Records[0].Message
	}
	return msg
}

func (e *RecordsError) Unwrap() error { return e.Err }

// needsRecords says whether an append to a log with these options reads each record of
// a batch (and so decompresses compressed batches): a compacted log checks keys, a log
// with timestamp bounds checks CreateTime timestamps. Other logs never look past the
// batch header.
func (o *Options) needsRecords() bool {
	return o.Compact || (o.TimestampBounds != nil && !o.LogAppendTime)
}

// checkRecords reads one batch's records (decompressed once) and applies the checks the
// options ask for, as Kafka's LogValidator does per record: a compacted log refuses a
// record without a key (INVALID_RECORD); timestamp bounds refuse every CreateTime record
// out of them (INVALID_TIMESTAMP, listing each one). Kafka reads the records of every
// batch for these checks, compressed or not; so does this, for the logs that need them
// (the header's baseTimestamp and maxTimestamp cannot stand in: record deltas may be
// negative, and maxTimestamp is the producer's word).
func checkRecords(batch []byte, h *BatchHeader, o *Options, now int64) error {
	recs, _, err := decompressRecords(h.Compression(), batch[BatchHeaderSize:])
	if err != nil {
		return err
	}
	_, err = checkDecompressed(recs, h, o, now)
	return err
}

// checkDecompressed is checkRecords on a batch's records already decompressed (recs);
// it returns how many bytes of recs the batch's RecordCount records take. Options that
// ask for no check only walk the records.
func checkDecompressed(recs []byte, h *BatchHeader, o *Options, now int64) (used int, err error) {
	if !o.needsRecords() {
		err = parseRecords(recs, h, func(r *recordView) { used += len(r.raw) })
		return used, err
	}
	tb := o.TimestampBounds
	if o.LogAppendTime {
		tb = nil // the broker's time replaces the producer's: Kafka checks nothing
	}
	keyless := -1
	var recErrs []RecordError
	badTimestamps := false
	i := 0
	err = parseRecords(recs, h, func(r *recordView) {
		used += len(r.raw)
		ts := r.timestamp
		if h.Attributes&attrLogAppendTime != 0 {
			ts = h.MaxTimestamp // what a record of such a batch reads as its timestamp
		}
		switch {
		case o.Compact && !r.hasKey: // Kafka checks the key first
			if keyless < 0 {
				keyless = i
			}
			recErrs = append(recErrs, RecordError{Index: int32(i), Message: "Compacted topic cannot accept message without key"})
		case tb != nil && ts != -1 && tb.outside(ts, now):
			badTimestamps = true
			recErrs = append(recErrs, RecordError{Index: int32(i), Message: fmt.Sprintf(
				"Timestamp %d of message with offset %d is out of range. The timestamp should be within [%d, %d]",
				ts, r.delta, now-tb.BeforeMS, now+tb.AfterMS)})
		}
		i++
	})
	if err != nil {
		return 0, err
	}
	// As Kafka's processRecordErrors: one bad timestamp makes the whole batch's error
	// INVALID_TIMESTAMP (listing the keyless records too); keyless records alone are
	// INVALID_RECORD.
	if badTimestamps {
		return 0, &RecordsError{Err: ErrInvalidTimestamp, Records: recErrs}
	}
	if keyless >= 0 {
		return 0, fmt.Errorf("%w: a compacted topic cannot accept a record without a key (record %d)", ErrInvalidRecord, keyless)
	}
	return used, nil
}

// recode handles the batch records[p:p+n] (header h) of an append to a log whose
// Options.Compression is not CompressionProducer, as Kafka's LogValidator does when the
// target codec differs from the batch's: the records are read (decompressed once, for
// the checks the options ask for too) and compressed again with the log's codec into a
// new batch (snappy in the xerial framing), the header's codec bits, batchLength and CRC
// rewritten, every other field (producer id, epoch, base sequence, transactional bit,
// timestamps, offset delta, record count) kept and the records themselves byte for byte.
// A batch already in the log's codec is only checked, as without a compression.type.
//
// out is the record set to store instead of records: nil while no batch needed
// re-encoding (records is then stored as it is); once one does, it holds the batches
// before it as they were, and every later batch is added to it, re-encoded or not.
// A re-encoded batch larger than max.message.bytes is refused (ErrBatchTooLarge), as
// Kafka checks the batch it stores too.
func recode(out, records []byte, p, n int, h *BatchHeader, o *Options, now int64) ([]byte, error) {
	batch := records[p : p+n]
	target := o.Compression.codec()
	if h.Compression() == target {
		if o.needsRecords() {
			if err := checkRecords(batch, h, o, now); err != nil {
				return nil, err
			}
		}
		if out != nil {
			out = append(out, batch...)
		}
		return out, nil
	}
	recs, _, err := decompressRecords(h.Compression(), batch[BatchHeaderSize:])
	if err != nil {
		return nil, err
	}
	used, err := checkDecompressed(recs, h, o, now)
	if err != nil {
		return nil, err
	}
	if used != len(recs) { // Kafka: "Incorrect declared batch size, records still remaining"
		return nil, fmt.Errorf("%w: %d bytes after the batch's %d records", ErrInvalidRecord, len(recs)-used, h.RecordCount)
	}
	if out == nil {
		room := len(records) + len(records)/8 + 512
		if target == codecNone {
			room = len(records) - n + BatchHeaderSize + len(recs)
		}
		out = append(make([]byte, 0, room), records[:p]...)
	}
	at := len(out)
	if out, err = appendCompressedLevel(append(out, batch[:BatchHeaderSize]...), target, recs, true, o.CompressionLevel); err != nil {
		return nil, fmt.Errorf("cannot compress records with %v: %w", o.Compression, err)
	}
	nb := out[at:]
	if o.MaxMessageBytes > 0 && len(nb) > int(o.MaxMessageBytes) {
		return nil, fmt.Errorf("%w: batch of %d bytes stored with compression.type %v is %d bytes, more than max.message.bytes %d",
			ErrBatchTooLarge, n, o.Compression, len(nb), o.MaxMessageBytes)
	}
	attrs := uint16(h.Attributes)&^attrCompressionMask | uint16(target)
	binary.BigEndian.PutUint16(nb[offAttributes:], attrs)
	binary.BigEndian.PutUint32(nb[offBatchLength:], uint32(len(nb)-batchLogOverhead))
	binary.BigEndian.PutUint32(nb[offCRC:], crcChecksum(nb[offAttributes:]))
	return out, nil
}
