package streaming

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"time"
)

// Windows here are over batch time (processing time): a window of length L ending at batch
// time t holds the batches with time in (t−L, t]. A windowed stream emits only on batches
// whose time is a multiple of the slide (and emits nothing on the others). Length and
// slide must be multiples of the batch interval. For event-time windows see
// EventTimeWindow.

func checkWindow(j *Job, op string, length, slide time.Duration) {
	if length <= 0 || slide <= 0 || length%j.interval != 0 || slide%j.interval != 0 {
		panic(fmt.Sprintf("BUG: streaming.%s: length %v and slide %v must be positive multiples of the batch interval %v", op, length, slide, j.interval))
	}
	j.slides = append(j.slides, slide)
}

func aligned(t time.Time, d time.Duration) bool { return t.UnixNano()%int64(d) == 0 }

// alignDown is the latest multiple of d since the Unix epoch at or before t.
func alignDown(t time.Time, d time.Duration) time.Time {
	return time.Unix(0, floorDiv(t.UnixNano(), int64(d))*int64(d)).UTC()
}

type timed[T any] struct {
	T     int64 // batch time, ns since epoch
	Items []T
}

type windowOp[T any] struct {
	name          string
	length, slide time.Duration
	buf           []timed[T]
}

func (w *windowOp[T]) stateName() string { return w.name }

func (w *windowOp[T]) snapshotState() ([]byte, error) { return gobEncode(w.buf) }

func (w *windowOp[T]) restoreState(b []byte) error { return gobDecode(b, &w.buf) }

// Window returns, on every slide, all elements of the last length of batches.
func Window[T any](s *Stream[T], length, slide time.Duration) *Stream[T] {
	checkWindow(s.job, "Window", length, slide)
	op := &windowOp[T]{length: length, slide: slide}
	out := newStream(s.job, "window", func(b *BatchInfo) ([]T, error) {
		t := b.Time.UnixNano()
		op.buf = append(op.buf, timed[T]{t, append([]T(nil), s.items()...)})
		for len(op.buf) > 0 && op.buf[0].T <= t-int64(op.length) {
			op.buf = op.buf[1:]
		}
		if !aligned(b.Time, op.slide) {
			return nil, nil
		}
		var all []T
		for _, e := range op.buf {
			all = append(all, e.Items...)
		}
		return all, nil
	})
	op.name = out.name
	s.job.stateful = append(s.job.stateful, op)
	return out
}

// WindowSpec configures ReduceByKeyAndWindow.
type WindowSpec[V any] struct {
	Length, Slide time.Duration
	// Reduce combines two values of a key (associative and commutative).
	Reduce func(V, V) V
	// Inverse, when set, removes a value that left the window from the running aggregate
	// (Inverse(Reduce(a, b), b) == a), so a long window costs one batch per slide instead
	// of a recompute. Keys whose every contribution left the window are dropped.
	Inverse func(V, V) V
}

type rbkwState[K comparable, V any] struct {
	Partials []timed[KV[K, V]]
	// Running aggregate (with Inverse): values and how many partials hold each key.
	Keys []K
	Vals []V
	Refs []int
}

type rbkwOp[K comparable, V any] struct {
	name string
	spec WindowSpec[V]
	st   rbkwState[K, V]
	idx  map[K]int // running aggregate index into st.Keys
}

func (o *rbkwOp[K, V]) stateName() string { return o.name }

func (o *rbkwOp[K, V]) snapshotState() ([]byte, error) { return gobEncode(o.st) }

func (o *rbkwOp[K, V]) restoreState(b []byte) error {
	o.st = rbkwState[K, V]{}
	if err := gobDecode(b, &o.st); err != nil {
		return err
	}
	o.reindex()
	return nil
}

func (o *rbkwOp[K, V]) reindex() {
	o.idx = make(map[K]int, len(o.st.Keys))
	for i, k := range o.st.Keys {
		o.idx[k] = i
	}
}

func (o *rbkwOp[K, V]) add(p []KV[K, V]) {
	for _, kv := range p {
		if i, ok := o.idx[kv.Key]; ok {
			o.st.Vals[i] = o.spec.Reduce(o.st.Vals[i], kv.Val)
			o.st.Refs[i]++
			continue
		}
		o.idx[kv.Key] = len(o.st.Keys)
		o.st.Keys = append(o.st.Keys, kv.Key)
		o.st.Vals = append(o.st.Vals, kv.Val)
		o.st.Refs = append(o.st.Refs, 1)
	}
}

func (o *rbkwOp[K, V]) subtract(p []KV[K, V]) {
	dropped := false
	for _, kv := range p {
		i, ok := o.idx[kv.Key]
		if !ok {
			panic(fmt.Sprintf("BUG: %s: key %v left the window but is not in the aggregate", o.name, kv.Key))
		}
		o.st.Vals[i] = o.spec.Inverse(o.st.Vals[i], kv.Val)
		o.st.Refs[i]--
		if o.st.Refs[i] == 0 {
			dropped = true
		}
	}
	if !dropped {
		return
	}
	n := 0
	for i := range o.st.Keys {
		if o.st.Refs[i] > 0 {
			o.st.Keys[n], o.st.Vals[n], o.st.Refs[n] = o.st.Keys[i], o.st.Vals[i], o.st.Refs[i]
			n++
		}
	}
	clear(o.st.Keys[n:])
	clear(o.st.Vals[n:])
	o.st.Keys, o.st.Vals, o.st.Refs = o.st.Keys[:n], o.st.Vals[:n], o.st.Refs[:n]
	o.reindex()
}

// ReduceByKeyAndWindow reduces each key's values over a sliding window of batches and
// emits every key of the window on every slide. With spec.Inverse the aggregate is kept
// incrementally (Spark's reduceByKeyAndWindow with invFunc); without it each emission is
// recomputed from the per-batch partial reductions. Both give the same result.
func ReduceByKeyAndWindow[K comparable, V any](s *Stream[KV[K, V]], spec WindowSpec[V]) *Stream[KV[K, V]] {
	checkWindow(s.job, "ReduceByKeyAndWindow", spec.Length, spec.Slide)
	if spec.Reduce == nil {
		panic("BUG: streaming.ReduceByKeyAndWindow: Reduce is nil")
	}
	op := &rbkwOp[K, V]{spec: spec, idx: map[K]int{}}
	out := newStream(s.job, "reduceByKeyAndWindow", func(b *BatchInfo) ([]KV[K, V], error) {
		t := b.Time.UnixNano()
		p := reduceKV(s.items(), spec.Reduce)
		op.st.Partials = append(op.st.Partials, timed[KV[K, V]]{t, p})
		if spec.Inverse != nil {
			op.add(p)
		}
		for len(op.st.Partials) > 0 && op.st.Partials[0].T <= t-int64(spec.Length) {
			if spec.Inverse != nil {
				op.subtract(op.st.Partials[0].Items)
			}
			op.st.Partials = op.st.Partials[1:]
		}
		if !aligned(b.Time, spec.Slide) {
			return nil, nil
		}
		if spec.Inverse != nil {
			out := make([]KV[K, V], len(op.st.Keys))
			for i := range op.st.Keys {
				out[i] = KV[K, V]{op.st.Keys[i], op.st.Vals[i]}
			}
			return out, nil
		}
		var all []KV[K, V]
		for _, e := range op.st.Partials {
			all = append(all, e.Items...)
		}
		return reduceKV(all, spec.Reduce), nil
	})
	op.name = out.name
	s.job.stateful = append(s.job.stateful, op)
	return out
}

func gobEncode(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return nil, fmt.Errorf("cannot encode state: %w", err)
	}
	return buf.Bytes(), nil
}

func gobDecode(b []byte, v any) error {
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(v); err != nil {
		return fmt.Errorf("cannot decode state: %w", err)
	}
	return nil
}
