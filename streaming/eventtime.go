package streaming

import (
	"cmp"
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
	// KeepKey, when set, is applied to a key when a pane first stores it: keys are
	// kept across batches, so a key that shares memory with the batch (a string
	// viewing a record's bytes) must be copied there. Nil keeps keys as they are.
	KeepKey func(K) K
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

// OpenPanes is the number of slide-sized partial aggregates held in state.
func (e *EventWindows[T, K, V]) OpenPanes() int { return len(e.op.st.Panes) }

// The state is kept in panes (Li et al., "No pane, no gain"): one partial aggregate per
// key per slide-sized slice of event time. An element updates one pane; a window is the
// merge of its length/slide panes when it closes. Windows close in start order.

type pane[K comparable, V any] struct {
	Start int64
	Keys  []K
	Vals  []V
	idx   map[K]int
}

func (p *pane[K, V]) add(k K, v V, reduce func(V, V) V, keep func(K) K) {
	if i, ok := p.idx[k]; ok {
		p.Vals[i] = reduce(p.Vals[i], v)
		return
	}
	if keep != nil {
		k = keep(k)
	}
	p.idx[k] = len(p.Keys)
	p.Keys = append(p.Keys, k)
	p.Vals = append(p.Vals, v)
}

type eventWindowState[K comparable, V any] struct {
	Watermark int64 // ns; MinInt64 = none yet
	MaxEvent  int64
	// NextWindow is the start of the next window to close; MinInt64 before the first.
	NextWindow int64
	Panes      []*pane[K, V] // sorted by Start
}

type eventWindowOp[T any, K comparable, V any] struct {
	name    string
	spec    EventWindowSpec[T, K, V]
	st      eventWindowState[K, V]
	byStart map[int64]*pane[K, V]
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
	o.byStart = make(map[int64]*pane[K, V], len(o.st.Panes))
	for _, p := range o.st.Panes {
		p.idx = make(map[K]int, len(p.Keys))
		for i, k := range p.Keys {
			p.idx[k] = i
		}
		o.byStart[p.Start] = p
	}
	return nil
}

func (o *eventWindowOp[T, K, V]) eval(b *BatchInfo, in []T) {
	sp := &o.spec
	length, slide := int64(sp.Length), int64(sp.Slide)
	o.results, o.late = nil, nil
	wm := o.st.Watermark
	o.batchWM = wm
	added := false
	var last *pane[K, V]
	for _, v := range in {
		et := sp.EventTime(v).UnixNano()
		if et < wm {
			o.late = append(o.late, v)
			continue
		}
		if et > o.st.MaxEvent {
			o.st.MaxEvent = et
		}
		ps := floorDiv(et, slide) * slide
		p := last
		if p == nil || p.Start != ps {
			p = o.byStart[ps]
			if p == nil {
				p = &pane[K, V]{Start: ps, idx: map[K]int{}}
				o.byStart[ps] = p
				o.st.Panes = append(o.st.Panes, p)
				added = true
			}
			last = p
		}
		p.add(sp.Key(v), sp.Value(v), sp.Reduce, sp.KeepKey)
	}
	if added {
		slices.SortFunc(o.st.Panes, func(a, b *pane[K, V]) int { return cmp.Compare(a.Start, b.Start) })
	}
	if o.st.MaxEvent != math.MinInt64 {
		if nw := o.st.MaxEvent - int64(sp.AllowedLateness); nw > o.st.Watermark {
			o.st.Watermark = nw
		}
	}
	wm = o.st.Watermark
	// Close windows [s, s+length) with s+length <= wm, in start order.
	for len(o.st.Panes) > 0 {
		// Skip windows that hold no pane (gaps in event time). Only a closed window
		// moves NextWindow: an on-time element may still open a pane before the
		// first one (its windows end above the watermark).
		s := max(o.st.NextWindow, o.st.Panes[0].Start-length+slide)
		if s+length > wm {
			break
		}
		var keys []K
		var vals []V
		idx := map[K]int{}
		for _, p := range o.st.Panes {
			if p.Start >= s+length {
				break
			}
			for i, k := range p.Keys {
				if j, ok := idx[k]; ok {
					vals[j] = sp.Reduce(vals[j], p.Vals[i])
					continue
				}
				idx[k] = len(keys)
				keys = append(keys, k)
				vals = append(vals, p.Vals[i])
			}
		}
		start, end := time.Unix(0, s).UTC(), time.Unix(0, s+length).UTC()
		for i, k := range keys {
			o.results = append(o.results, WindowResult[K, V]{Start: start, End: end, Key: k, Val: vals[i]})
		}
		o.st.NextWindow = s + slide
		// Panes before the next window are in no open window any more.
		n := 0
		for n < len(o.st.Panes) && o.st.Panes[n].Start < o.st.NextWindow {
			delete(o.byStart, o.st.Panes[n].Start)
			n++
		}
		if n > 0 {
			clear(o.st.Panes[:n])
			o.st.Panes = o.st.Panes[n:]
		}
	}
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
	op := &eventWindowOp[T, K, V]{spec: spec, byStart: map[int64]*pane[K, V]{},
		st: eventWindowState[K, V]{Watermark: math.MinInt64, MaxEvent: math.MinInt64, NextWindow: math.MinInt64}}
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
