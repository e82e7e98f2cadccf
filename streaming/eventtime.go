package streaming

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// EventWindowSpec configures EventTimeWindow: sliding (or, with Slide == Length,
// tumbling) windows over the elements' own time, aligned to the Unix epoch.
type EventWindowSpec[T any, K comparable, V any] struct {
	Length, Slide time.Duration
	// AllowedLateness: the watermark is the largest event time seen in earlier batches
	// minus this.
	AllowedLateness time.Duration
	EventTime       func(T) time.Time
	Key             func(T) K
	Value           func(T) V
	Reduce          func(V, V) V
}

// WindowResult is one closed window's aggregate for one key.
type WindowResult[K comparable, V any] struct {
	Start, End time.Time
	Key        K
	Val        V
}

// EventWindows are the outputs of EventTimeWindow.
type EventWindows[T any, K comparable, V any] struct {
	// Results emits each (window, key) once, when the watermark passes the window's end
	// (append mode: a result is final).
	Results *Stream[WindowResult[K, V]]
	// Late emits elements whose event time is below the watermark of their batch. Every
	// window they belong to may already be emitted, so they are not counted anywhere:
	// send them to a late-data table.
	Late *Stream[T]
	op   *eventWindowOp[T, K, V]
}

// Watermark is the current watermark (zero time before the first batch with data).
func (e *EventWindows[T, K, V]) Watermark() time.Time {
	if e.op.st.Watermark == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, e.op.st.Watermark).UTC()
}

// LateWatermark is the watermark the current batch's Late elements fell below.
func (e *EventWindows[T, K, V]) LateWatermark() time.Time {
	if e.op.batchWM == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, e.op.batchWM).UTC()
}

// OpenWindows is the number of (window, key) aggregates held in state.
func (e *EventWindows[T, K, V]) OpenWindows() int { return len(e.op.st.Keys) }

type winKey[K comparable] struct {
	Start int64
	Key   K
}

type eventWindowState[K comparable, V any] struct {
	Watermark int64 // ns; MinInt64 = none yet
	MaxEvent  int64
	// Open windows in creation order.
	Keys []winKey[K]
	Vals []V
}

type eventWindowOp[T any, K comparable, V any] struct {
	name    string
	spec    EventWindowSpec[T, K, V]
	st      eventWindowState[K, V]
	idx     map[winKey[K]]int
	results []WindowResult[K, V]
	late    []T
	// batchWM is the watermark the current batch's elements were judged against.
	batchWM int64
}

func (o *eventWindowOp[T, K, V]) stateName() string { return o.name }

func (o *eventWindowOp[T, K, V]) snapshotState() ([]byte, error) { return gobEncode(o.st) }

func (o *eventWindowOp[T, K, V]) restoreState(b []byte) error {
	o.st = eventWindowState[K, V]{}
	if err := gobDecode(b, &o.st); err != nil {
		return err
	}
	o.idx = make(map[winKey[K]]int, len(o.st.Keys))
	for i, k := range o.st.Keys {
		o.idx[k] = i
	}
	return nil
}

func (o *eventWindowOp[T, K, V]) eval(b *BatchInfo, in []T) {
	sp := &o.spec
	length, slide := int64(sp.Length), int64(sp.Slide)
	o.results, o.late = nil, nil
	wm := o.st.Watermark
	o.batchWM = wm
	for _, v := range in {
		et := sp.EventTime(v).UnixNano()
		if et < wm {
			o.late = append(o.late, v)
			continue
		}
		if et > o.st.MaxEvent {
			o.st.MaxEvent = et
		}
		k, val := sp.Key(v), sp.Value(v)
		// Windows [s, s+length) with s a multiple of slide and s <= et < s+length.
		last := floorDiv(et, slide) * slide
		for s := last; s > et-length; s -= slide {
			wk := winKey[K]{s, k}
			if i, ok := o.idx[wk]; ok {
				o.st.Vals[i] = sp.Reduce(o.st.Vals[i], val)
				continue
			}
			o.idx[wk] = len(o.st.Keys)
			o.st.Keys = append(o.st.Keys, wk)
			o.st.Vals = append(o.st.Vals, val)
		}
	}
	if o.st.MaxEvent != math.MinInt64 {
		if nw := o.st.MaxEvent - int64(sp.AllowedLateness); nw > o.st.Watermark {
			o.st.Watermark = nw
		}
	}
	// Close windows whose end is at or below the new watermark, oldest first.
	wm = o.st.Watermark
	n := 0
	for i, wk := range o.st.Keys {
		if wk.Start+length <= wm {
			o.results = append(o.results, WindowResult[K, V]{
				Start: time.Unix(0, wk.Start).UTC(), End: time.Unix(0, wk.Start+length).UTC(), Key: wk.Key, Val: o.st.Vals[i],
			})
			delete(o.idx, wk)
			continue
		}
		o.st.Keys[n], o.st.Vals[n] = wk, o.st.Vals[i]
		o.idx[wk] = n
		n++
	}
	clear(o.st.Keys[n:])
	clear(o.st.Vals[n:])
	o.st.Keys, o.st.Vals = o.st.Keys[:n], o.st.Vals[:n]
	slices.SortStableFunc(o.results, func(a, b WindowResult[K, V]) int { return a.Start.Compare(b.Start) })
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// EventTimeWindow aggregates elements per key over event-time windows with a watermark.
// An element is late when its event time is below the watermark at the start of its batch;
// late elements go to the Late stream instead of vanishing. A window is emitted once, when
// the watermark reaches its end, and then forgotten. Window state and the watermark are
// checkpointed.
func EventTimeWindow[T any, K comparable, V any](s *Stream[T], spec EventWindowSpec[T, K, V]) *EventWindows[T, K, V] {
	if spec.Length <= 0 || spec.Slide <= 0 || spec.Slide > spec.Length || spec.Length%spec.Slide != 0 {
		panic(fmt.Sprintf("BUG: streaming.EventTimeWindow: length %v must be a positive multiple of slide %v", spec.Length, spec.Slide))
	}
	if spec.AllowedLateness < 0 || spec.EventTime == nil || spec.Key == nil || spec.Value == nil || spec.Reduce == nil {
		panic("BUG: streaming.EventTimeWindow: incomplete spec")
	}
	op := &eventWindowOp[T, K, V]{spec: spec, idx: map[winKey[K]]int{},
		st: eventWindowState[K, V]{Watermark: math.MinInt64, MaxEvent: math.MinInt64}}
	core := newStream(s.job, "eventTimeWindow", func(b *BatchInfo) ([]struct{}, error) {
		op.eval(b, s.items())
		return nil, nil
	})
	op.name = core.name
	s.job.stateful = append(s.job.stateful, op)
	ew := &EventWindows[T, K, V]{op: op}
	ew.Results = newStream(s.job, "eventWindowResults", func(*BatchInfo) ([]WindowResult[K, V], error) { return op.results, nil })
	ew.Late = newStream(s.job, "eventWindowLate", func(*BatchInfo) ([]T, error) { return op.late, nil })
	return ew
}
