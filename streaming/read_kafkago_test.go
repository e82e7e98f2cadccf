package streaming

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"
)

// readRangeLegacy is readRangeFetch through kafka-go, as the engine read message sets
// of magic v0/v1 before its walker did (batches_legacy.go), kept as BenchmarkReadPaths'
// plain/kafka-go comparison: Fetch requests sent through kafka-go's Transport (which
// routes them to the partition's leader), records decoded by kafka-go's protocol
// package. It walks v2 batches as readRangeFetch does (control batches skipped, aborted
// transactions dropped with read_committed); it is about twice as slow. Its v0/v1
// decoding is wrong where TestLegacyRead looks (v0 inner offsets, compaction gaps,
// log-append time, no timestamp).
func (s *source) readRangeLegacy(ctx context.Context, r OffsetRange, dst []Record) (n int, err error) {
	tp := r.TP()
	out := dst[:0]
	next := r.From
	var bytesRead int64
	defer func() { s.noteRecordBytes(len(out), bytesRead) }()
	for next < r.Until {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		maxBytes := s.fetchSize(r.Until - next)
		p, err := s.fetchLegacy(ctx, tp, next, maxBytes)
		if err != nil {
			return 0, fmt.Errorf("cannot fetch %s at %d: %w", tp, next, err)
		}
		if p.ErrorCode != 0 {
			ferr := kafka.Error(p.ErrorCode)
			// Out of range: below the log start or past its end. Anything else is retried
			// by the batch.
			if !errors.Is(ferr, kafka.OffsetOutOfRange) {
				return 0, fmt.Errorf("cannot fetch %s at %d: %w", tp, next, ferr)
			}
			skipTo, lerr := s.lost(ctx, r, next)
			if lerr != nil {
				return 0, errors.Join(fmt.Errorf("cannot fetch %s at %d: %w", tp, next, ferr), lerr)
			}
			next = skipTo
			continue
		}
		// The end a fetch can reach: the last stable offset with read_committed.
		end := p.HighWatermark
		if s.isolation == kafka.ReadCommitted {
			end = p.LastStableOffset
		}
		before := next
		var beyond bool
		out, next, beyond, err = s.decodeLegacy(p, r, next, out, &bytesRead)
		closeRecords(p.RecordSet.Records)
		if err != nil {
			return 0, fmt.Errorf("cannot read the records of %s at %d: %w", tp, before, err)
		}
		if beyond {
			break
		}
		if next == before {
			if next, err = s.afterEmptyFetch(ctx, r, next, end); err != nil {
				return 0, err
			}
		}
	}
	return len(out), nil
}

// fetchLegacy sends one Fetch for tp at offset (waiting up to 500ms for data) through
// kafka-go's Transport.
func (s *source) fetchLegacy(ctx context.Context, tp TopicPartition, offset, maxBytes int64) (*fetchAPI.ResponsePartition, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := s.transport.RoundTrip(ctx, s.client.Addr, &fetchAPI.Request{
		ReplicaID: -1, MaxWaitTime: 500, MinBytes: 1, MaxBytes: int32(maxBytes), IsolationLevel: int8(s.isolation),
		SessionID: -1, SessionEpoch: -1,
		Topics: []fetchAPI.RequestTopic{{Topic: tp.Topic, Partitions: []fetchAPI.RequestPartition{{
			Partition: tp.Partition, CurrentLeaderEpoch: -1, FetchOffset: offset, LogStartOffset: -1, PartitionMaxBytes: int32(maxBytes),
		}}}},
	})
	if err != nil {
		return nil, err
	}
	fr, ok := res.(*fetchAPI.Response)
	if !ok || len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		return nil, fmt.Errorf("unexpected fetch response %T", res)
	}
	if fr.ErrorCode != 0 {
		return nil, kafka.Error(fr.ErrorCode)
	}
	return &fr.Topics[0].Partitions[0], nil
}

// decodeLegacy appends the records of p in [next, r.Until) to out and returns the offset after
// the last one it passed (records, control batches and aborted batches all move it);
// beyond says a record at or past r.Until was seen (nothing of the range is left).
func (s *source) decodeLegacy(p *fetchAPI.ResponsePartition, r OffsetRange, next int64, out []Record, bytesRead *int64) (_ []Record, _ int64, beyond bool, err error) {
	aborted := p.AbortedTransactions
	if s.isolation != kafka.ReadCommitted {
		aborted = nil
	}
	sort.Slice(aborted, func(i, j int) bool { return aborted[i].FirstOffset < aborted[j].FirstOffset })
	var abortedPIDs map[int64]bool
	var walk func(rr protocol.RecordReader) error
	walk = func(rr protocol.RecordReader) error {
		switch b := rr.(type) {
		case nil: // an empty fetch
			return nil
		case *protocol.RecordStream:
			for _, x := range b.Records {
				if err := walk(x); err != nil {
					return err
				}
			}
			return nil
		case *protocol.ControlBatch:
			// A marker ends its producer's transaction: later batches of that producer
			// belong to another one.
			delete(abortedPIDs, b.ProducerID)
			next = max(next, b.BaseOffset+1)
			return nil
		case *protocol.RecordBatch:
			for len(aborted) > 0 && aborted[0].FirstOffset <= b.BaseOffset {
				if abortedPIDs == nil {
					abortedPIDs = map[int64]bool{}
				}
				abortedPIDs[aborted[0].ProducerID] = true
				aborted = aborted[1:]
			}
			skip := b.Attributes.Transactional() && abortedPIDs[b.ProducerID]
			return s.recordsLegacy(b, r, skip, &next, &out, &beyond, bytesRead)
		}
		return s.recordsLegacy(rr, r, false, &next, &out, &beyond, bytesRead)
	}
	err = walk(p.RecordSet.Records)
	return out, next, beyond, err
}

// recordsLegacy reads rr's records into out (those in [next, r.Until), unless skip) and moves
// next past each one.
func (s *source) recordsLegacy(rr protocol.RecordReader, r OffsetRange, skip bool, next *int64, out *[]Record, beyond *bool, bytesRead *int64) error {
	for {
		rec, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		off := rec.Offset
		switch {
		case off >= r.Until:
			// Records come in offset order: none is left in the range.
			*beyond = true
			closeRecord(rec)
			continue
		case off < *next:
			closeRecord(rec)
			continue
		}
		*next = off + 1
		if skip {
			closeRecord(rec)
			continue
		}
		key, err := protocol.ReadAll(rec.Key)
		if err != nil {
			return err
		}
		val, err := protocol.ReadAll(rec.Value)
		if err != nil {
			return err
		}
		closeRecord(rec)
		var hs []Header
		if len(rec.Headers) > 0 {
			hs = make([]Header, len(rec.Headers))
			for i, h := range rec.Headers {
				hs[i] = Header{h.Key, h.Value}
			}
		}
		*out = append(*out, Record{Topic: r.Topic, Partition: r.Partition, Offset: off, Key: key, Value: val, Time: rec.Time, Headers: hs})
		*bytesRead += int64(len(key) + len(val))
	}
}

func closeRecord(rec *protocol.Record) {
	if rec.Key != nil {
		rec.Key.Close()
	}
	if rec.Value != nil {
		rec.Value.Close()
	}
}

// closeRecords releases a fetch response's record buffers.
func closeRecords(rr protocol.RecordReader) {
	if c, ok := rr.(io.Closer); ok {
		c.Close()
	}
}
