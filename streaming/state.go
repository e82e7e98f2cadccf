package streaming

import (
	"time"
)

// State is one key's state inside a MapWithState function.
type State[S any] struct {
	value   S
	exists  bool
	removed bool
}

// Get returns the key's state and whether it exists.
func (s *State[S]) Get() (S, bool) { return s.value, s.exists }

// Update sets the key's state.
func (s *State[S]) Update(v S) { s.value, s.exists, s.removed = v, true, false }

// Remove deletes the key's state.
func (s *State[S]) Remove() {
	var zero S
	s.value, s.exists, s.removed = zero, false, true
}

// StateSpec configures MapWithState.
type StateSpec[K comparable, V, S, U any] struct {
	// Update is called for every element in batch order with the key's state; it returns
	// an output element and whether to emit it.
	Update func(batch time.Time, key K, value V, state *State[S]) (U, bool)
	// Timeout removes a key that received no element for this long (in batch time);
	// 0 keeps state until Update removes it.
	Timeout time.Duration
	// OnTimeout, when set, is called with a timed-out key's last state; it may emit.
	OnTimeout func(batch time.Time, key K, state S) (U, bool)
}

type stateEntry[K comparable, S any] struct {
	Key  K
	Val  S
	Last int64 // batch time of the last element, ns
}

type mapWithStateOp[K comparable, S any] struct {
	name string
	m    map[K]*stateEntry[K, S]
}

func (o *mapWithStateOp[K, S]) stateName() string { return o.name }

func (o *mapWithStateOp[K, S]) snapshotState() ([]byte, error) {
	entries := make([]stateEntry[K, S], 0, len(o.m))
	for _, e := range o.m {
		entries = append(entries, *e)
	}
	return gobEncode(entries)
}

func (o *mapWithStateOp[K, S]) restoreState(b []byte) error {
	var entries []stateEntry[K, S]
	if err := gobDecode(b, &entries); err != nil {
		return err
	}
	o.m = make(map[K]*stateEntry[K, S], len(entries))
	for i := range entries {
		o.m[entries[i].Key] = &entries[i]
	}
	return nil
}

// MapWithState keeps per-key state across batches (Spark's mapWithState): spec.Update
// sees each element with its key's state; idle keys time out after spec.Timeout. The
// state is checkpointed with every committed batch. Outputs of timed-out keys come after
// the batch's element outputs, in no particular order.
func MapWithState[K comparable, V, S, U any](s *Stream[KV[K, V]], spec StateSpec[K, V, S, U]) *Stream[U] {
	if spec.Update == nil {
		panic("BUG: streaming.MapWithState: Update is nil")
	}
	op := &mapWithStateOp[K, S]{m: map[K]*stateEntry[K, S]{}}
	out := newStream(s.job, "mapWithState", func(b *BatchInfo) ([]U, error) {
		t := b.Time.UnixNano()
		var out []U
		for _, kv := range s.items() {
			e := op.m[kv.Key]
			st := State[S]{}
			if e != nil {
				st.value, st.exists = e.Val, true
			}
			u, emit := spec.Update(b.Time, kv.Key, kv.Val, &st)
			if emit {
				out = append(out, u)
			}
			switch {
			case st.exists && e != nil:
				e.Val, e.Last = st.value, t
			case st.exists:
				op.m[kv.Key] = &stateEntry[K, S]{Key: kv.Key, Val: st.value, Last: t}
			case e != nil:
				delete(op.m, kv.Key)
			}
		}
		if spec.Timeout > 0 {
			limit := t - int64(spec.Timeout)
			for k, e := range op.m {
				if e.Last > limit {
					continue
				}
				delete(op.m, k)
				if spec.OnTimeout != nil {
					if u, emit := spec.OnTimeout(b.Time, k, e.Val); emit {
						out = append(out, u)
					}
				}
			}
		}
		return out, nil
	})
	op.name = out.name
	s.job.stateful = append(s.job.stateful, op)
	return out
}

// StateSize returns the number of keys held by a MapWithState stream (for tests and
// metrics); -1 when s is not a MapWithState stream.
func StateSize[U any](s *Stream[U]) int {
	for _, op := range s.job.stateful {
		if op.stateName() == s.name {
			if sz, ok := op.(interface{ size() int }); ok {
				return sz.size()
			}
		}
	}
	return -1
}

func (o *mapWithStateOp[K, S]) size() int { return len(o.m) }
