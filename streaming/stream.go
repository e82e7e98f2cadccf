package streaming

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Job is a graph of typed streams over one micro-batched input. Build it with
// Input, Map, Filter, … and ForeachBatch before handing it to an Engine (or drive it
// directly with RunBatch in tests). Every node is computed once per batch, in creation
// order, so stateful operators see every batch whether or not an output uses them.
type Job struct {
	name     string
	interval time.Duration
	nodes    []node
	outputs  []output
	stateful []statefulOp
	input    *Stream[Record]
	current  *BatchInfo
	records  []Record
	parallel bool
	// partitionOps are the MapPartitions nodes; fed, when set during RunBatch, holds
	// their results for the batch computed while it was read.
	partitionOps []partitionOp
	fed          any
	// slides are the slides of the batch-time windows: the engine runs a batch at
	// each of their multiples, even when it skips missed ticks.
	slides []time.Duration
}

// SetParallelOutputs makes RunBatch run the outputs of a batch concurrently, each
// starting as soon as its stream is computed, while the streams after it are (an
// output must then depend neither on the other outputs' effects nor on later nodes';
// streams never change their elements once computed). By default outputs run in
// registration order after every stream is computed.
func (j *Job) SetParallelOutputs(on bool) { j.parallel = on }

type node interface{ eval(b *BatchInfo) error }

type output struct {
	name string
	run  func(ctx context.Context, b *BatchInfo) error
	// after is the index in Job.nodes of the stream the output reads.
	after int
}

// statefulOp is an operator whose state is checkpointed after every committed batch.
type statefulOp interface {
	stateName() string
	snapshotState() ([]byte, error)
	restoreState([]byte) error
}

// NewJob starts a graph named name whose batches come every interval.
func NewJob(name string, interval time.Duration) *Job {
	if interval <= 0 {
		panic("BUG: streaming.NewJob: interval must be > 0")
	}
	j := &Job{name: name, interval: interval}
	j.input = newStream(j, "input", func(*BatchInfo) ([]Record, error) { return j.records, nil })
	return j
}

// Name is the job's name (checkpoints, metrics, snapshot properties use it).
func (j *Job) Name() string { return j.name }

// Interval is the batch interval.
func (j *Job) Interval() time.Duration { return j.interval }

// Input is the stream of Kafka records of each batch.
func Input(j *Job) *Stream[Record] { return j.input }

// RunBatch computes every node for one batch of records and runs the outputs in order.
// The engine calls it; tests call it directly with synthetic records.
func (j *Job) RunBatch(ctx context.Context, b BatchInfo, records []Record) error {
	return j.runBatch(ctx, b, records, nil)
}

// runBatch is RunBatch with the MapPartitions results the engine computed during the
// read (fed may be nil).
func (j *Job) runBatch(ctx context.Context, b BatchInfo, records []Record, fed *partitionFeed) error {
	j.current, j.records = &b, records
	if fed != nil {
		j.fed = fed
	}
	defer func() { j.records, j.fed = nil, nil }()
	if j.parallel && len(j.outputs) > 1 {
		errs := make([]error, len(j.outputs))
		var wg sync.WaitGroup
		start := func(after int) {
			for i, o := range j.outputs {
				if o.after != after {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := o.run(ctx, &b); err != nil {
						errs[i] = fmt.Errorf("batch %d: output %s: %w", b.ID, o.name, err)
					}
				}()
			}
		}
		for i, n := range j.nodes {
			if err := n.eval(&b); err != nil {
				wg.Wait()
				return fmt.Errorf("batch %d: %w", b.ID, err)
			}
			start(i)
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
	} else {
		for _, n := range j.nodes {
			if err := n.eval(&b); err != nil {
				return fmt.Errorf("batch %d: %w", b.ID, err)
			}
		}
		for _, o := range j.outputs {
			if err := o.run(ctx, &b); err != nil {
				return fmt.Errorf("batch %d: output %s: %w", b.ID, o.name, err)
			}
		}
	}
	for _, n := range j.nodes {
		if c, ok := n.(interface{ clear() }); ok {
			c.clear()
		}
	}
	return nil
}

// Stream is one typed stream of a Job: per batch, a slice of T.
type Stream[T any] struct {
	job     *Job
	index   int // in job.nodes
	name    string
	compute func(b *BatchInfo) ([]T, error)
	cur     []T
}

func newStream[T any](j *Job, kind string, compute func(b *BatchInfo) ([]T, error)) *Stream[T] {
	s := &Stream[T]{job: j, index: len(j.nodes), name: fmt.Sprintf("%s#%d", kind, len(j.nodes)), compute: compute}
	j.nodes = append(j.nodes, s)
	return s
}

func (s *Stream[T]) eval(b *BatchInfo) error {
	out, err := s.compute(b)
	if err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	s.cur = out
	return nil
}

func (s *Stream[T]) clear() { s.cur = nil }

// items is the stream's output of the batch being computed (parents are computed first).
func (s *Stream[T]) items() []T { return s.cur }

// Job returns the stream's job.
func (s *Stream[T]) Job() *Job { return s.job }

// KV is a keyed element.
type KV[K comparable, V any] struct {
	Key K
	Val V
}

// Map applies f to every element.
func Map[T, U any](s *Stream[T], f func(T) U) *Stream[U] {
	return newStream(s.job, "map", func(*BatchInfo) ([]U, error) {
		in := s.items()
		out := make([]U, len(in))
		for i, v := range in {
			out[i] = f(v)
		}
		return out, nil
	})
}

// Transform turns a whole batch into another (Spark's transform / mapPartitions): for
// work that is cheaper per batch than per element, such as allocating results in one slab.
func Transform[T, U any](s *Stream[T], f func(b BatchInfo, in []T) []U) *Stream[U] {
	return newStream(s.job, "transform", func(b *BatchInfo) ([]U, error) {
		return f(*b, s.items()), nil
	})
}

// Filter keeps the elements for which keep is true. A batch whose elements all pass
// comes out as the input itself (streams never change their elements): filters often
// keep all or none of a batch (parse errors are rare; ids are all there or all
// missing), and a copy of a 300k-element batch is 2.4 MB of fresh memory per pointer.
func Filter[T any](s *Stream[T], keep func(T) bool) *Stream[T] {
	return newStream(s.job, "filter", func(*BatchInfo) ([]T, error) {
		in := s.items()
		i := 0
		for i < len(in) && keep(in[i]) {
			i++
		}
		if i == len(in) {
			return in, nil
		}
		var out []T
		if i > 0 {
			// Most pass: room for all of them.
			out = append(make([]T, 0, len(in)-1), in[:i]...)
		}
		for _, v := range in[i+1:] {
			if keep(v) {
				out = append(out, v)
			}
		}
		return out, nil
	})
}

// FlatMap applies f to every element and concatenates the results. The slice f returns
// is copied at once, so f may reuse one buffer across calls.
func FlatMap[T, U any](s *Stream[T], f func(T) []U) *Stream[U] {
	return newStream(s.job, "flatMap", func(*BatchInfo) ([]U, error) {
		in := s.items()
		out := make([]U, 0, len(in))
		for _, v := range in {
			out = append(out, f(v)...)
		}
		return out, nil
	})
}

// KeyBy pairs every element with key(element).
func KeyBy[T any, K comparable](s *Stream[T], key func(T) K) *Stream[KV[K, T]] {
	return newStream(s.job, "keyBy", func(*BatchInfo) ([]KV[K, T], error) {
		in := s.items()
		out := make([]KV[K, T], len(in))
		for i, v := range in {
			out[i] = KV[K, T]{key(v), v}
		}
		return out, nil
	})
}

// Union concatenates streams of the same type. When only one of them has elements
// in a batch, that stream's elements come out as they are.
func Union[T any](s *Stream[T], others ...*Stream[T]) *Stream[T] {
	return newStream(s.job, "union", func(*BatchInfo) ([]T, error) {
		n, nonEmpty := len(s.items()), 0
		var only []T
		for _, st := range append([]*Stream[T]{s}, others...) {
			if in := st.items(); len(in) > 0 {
				nonEmpty++
				only = in
			}
		}
		if nonEmpty <= 1 {
			return only, nil
		}
		for _, o := range others {
			n += len(o.items())
		}
		out := make([]T, 0, n)
		out = append(out, s.items()...)
		for _, o := range others {
			out = append(out, o.items()...)
		}
		return out, nil
	})
}

// ReduceByKey combines the values of each key within one batch. Keys come out in
// first-seen order, so results are deterministic.
func ReduceByKey[K comparable, V any](s *Stream[KV[K, V]], reduce func(V, V) V) *Stream[KV[K, V]] {
	return newStream(s.job, "reduceByKey", func(*BatchInfo) ([]KV[K, V], error) {
		return reduceKV(s.items(), reduce), nil
	})
}

func reduceKV[K comparable, V any](in []KV[K, V], reduce func(V, V) V) []KV[K, V] {
	idx := make(map[K]int, len(in))
	var out []KV[K, V]
	for _, kv := range in {
		if i, ok := idx[kv.Key]; ok {
			out[i].Val = reduce(out[i].Val, kv.Val)
			continue
		}
		idx[kv.Key] = len(out)
		out = append(out, kv)
	}
	return out
}

// ForeachBatch registers an output: f receives every batch's elements (possibly none)
// with the batch's id, time and offset ranges. Outputs run in registration order after
// every stream of the batch is computed (SetParallelOutputs: concurrently, each once its
// stream is). To be exactly-once an output must be idempotent by batch id: a batch is
// replayed after a crash that hit before its commit.
func ForeachBatch[T any](s *Stream[T], name string, f func(ctx context.Context, b BatchInfo, items []T) error) {
	s.job.outputs = append(s.job.outputs, output{name: name, after: s.index, run: func(ctx context.Context, b *BatchInfo) error {
		return f(ctx, *b, s.items())
	}})
}
