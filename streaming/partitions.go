package streaming

import (
	"runtime"
	"sync"
)

// MapPartitions applies f to the input records one partition piece at a time (Spark's
// mapPartitions over the Kafka RDD) and concatenates the results in input order. Run
// by an Engine, f is called for each partition's records as soon as they are read,
// while other partitions are still being read — for per-record work such as parsing,
// which then overlaps the reads instead of following them. Driven by RunBatch alone,
// f gets the batch cut into pieces of at least minPiece records, processed on every
// core.
//
// f is called concurrently (distinct pieces, possibly of two batches: the engine reads
// the next batch while the current one is processed); a piece is consecutive input
// records, and the elements f returns may point into it for the batch.
func MapPartitions[U any](j *Job, minPiece int, f func(b BatchInfo, piece []Record) []U) *Stream[U] {
	op := &mapPartitionsOp[U]{f: f, minPiece: max(minPiece, 1)}
	s := newStream(j, "mapPartitions", func(b *BatchInfo) ([]U, error) {
		if fed, ok := j.fed.(*partitionFeed); ok && fed.batch == b.ID {
			return op.collect(fed), nil
		}
		return op.compute(*b, j.records), nil
	})
	op.index = len(j.partitionOps)
	j.partitionOps = append(j.partitionOps, op)
	return s
}

// partitionOp is a MapPartitions node as the engine's reads see it.
type partitionOp interface {
	feed(b BatchInfo, slot int, piece []Record) any
}

type mapPartitionsOp[U any] struct {
	f        func(BatchInfo, []Record) []U
	minPiece int
	index    int // in Job.partitionOps
}

func (o *mapPartitionsOp[U]) feed(b BatchInfo, _ int, piece []Record) any { return o.f(b, piece) }

// collect concatenates the fed results of the batch in slot (range) order.
func (o *mapPartitionsOp[U]) collect(fed *partitionFeed) []U {
	result := func(slot []any) []U {
		if len(slot) == 0 {
			return nil // an empty range: not read
		}
		return slot[o.index].([]U)
	}
	n := 0
	for _, slot := range fed.results {
		n += len(result(slot))
	}
	out := make([]U, 0, n)
	for _, slot := range fed.results {
		out = append(out, result(slot)...)
	}
	return out
}

// compute runs f over the records cut into pieces of about len/workers (at least
// minPiece) so every core works.
func (o *mapPartitionsOp[U]) compute(b BatchInfo, recs []Record) []U {
	workers := runtime.GOMAXPROCS(0)
	size := max(o.minPiece, (len(recs)+workers-1)/max(workers, 1))
	var pieces [][]Record
	for lo := 0; lo < len(recs); lo += size {
		pieces = append(pieces, recs[lo:min(len(recs), lo+size)])
	}
	results := make([][]U, len(pieces))
	if len(pieces) <= 1 {
		for i, p := range pieces {
			results[i] = o.f(b, p)
		}
	} else {
		sem := make(chan struct{}, workers)
		var wg sync.WaitGroup
		for i, p := range pieces {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				results[i] = o.f(b, p)
			}()
		}
		wg.Wait()
	}
	n := 0
	for _, r := range results {
		n += len(r)
	}
	out := make([]U, 0, n)
	for _, r := range results {
		out = append(out, r...)
	}
	return out
}

// partitionFeed holds one batch's MapPartitions results computed during its read:
// results[range index][op index].
type partitionFeed struct {
	batch   int64
	results [][]any
}

// newFeed prepares to feed batch b's MapPartitions nodes during its read; nil when the
// job has none.
func (j *Job) newFeed(b BatchInfo) *partitionFeed {
	if len(j.partitionOps) == 0 {
		return nil
	}
	return &partitionFeed{batch: b.ID, results: make([][]any, len(b.Ranges))}
}

// onRange runs the job's MapPartitions functions over the records of range slot (called
// by the read of that range, concurrently with the other ranges).
func (j *Job) onRange(fd *partitionFeed, b BatchInfo, slot int, recs []Record) {
	res := make([]any, len(j.partitionOps))
	for i, op := range j.partitionOps {
		res[i] = op.feed(b, slot, recs)
	}
	fd.results[slot] = res
}
