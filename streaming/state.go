package streaming

import (
	"cmp"
	"slices"
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

// stateDelta is what changed in a MapWithState since the previous checkpoint:
// entries set (new or updated) and keys removed.
type stateDelta[K comparable, S any] struct {
	Set     []stateEntry[K, S]
	Removed []K
}

// expiry is one touch of a key: the key times out at Last + Timeout unless it was
// touched again since (its entry's Last is then newer).
type expiry[K comparable] struct {
	key  K
	last int64
}

type mapWithStateOp[K comparable, S any] struct {
	name string
	m    map[K]*stateEntry[K, S]
	// dirty holds the keys changed since the last checkpoint (true: set, false:
	// removed), so a checkpoint writes the changes, not the whole state.
	dirty map[K]bool
	// expiries lists touches in batch-time order (with a timeout only): timeouts pop
	// its front instead of scanning every key every batch.
	expiries []expiry[K]
	timeout  bool
}

func (o *mapWithStateOp[K, S]) stateName() string { return o.name }

func (o *mapWithStateOp[K, S]) snapshotState() ([]byte, error) {
	entries := make([]stateEntry[K, S], 0, len(o.m))
	for _, e := range o.m {
		entries = append(entries, *e)
	}
	b, err := gobEncode(entries)
	if err == nil {
		clear(o.dirty)
	}
	return b, err
}

// deltaState encodes the changes since the last snapshotState or deltaState (or
// restore): applied with applyDelta to the state then, it gives the state now.
func (o *mapWithStateOp[K, S]) deltaState() ([]byte, error) {
	var d stateDelta[K, S]
	for k, set := range o.dirty {
		if e := o.m[k]; set && e != nil {
			d.Set = append(d.Set, *e)
		} else {
			d.Removed = append(d.Removed, k)
		}
	}
	b, err := gobEncode(d)
	if err == nil {
		clear(o.dirty)
	}
	return b, err
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
	o.reindex()
	return nil
}

func (o *mapWithStateOp[K, S]) applyDelta(b []byte) error {
	var d stateDelta[K, S]
	if err := gobDecode(b, &d); err != nil {
		return err
	}
	for i := range d.Set {
		o.m[d.Set[i].Key] = &d.Set[i]
	}
	for _, k := range d.Removed {
		delete(o.m, k)
	}
	o.reindex()
	return nil
}

// reindex rebuilds the expiry queue from the entries and forgets changes: the state
// was just restored.
func (o *mapWithStateOp[K, S]) reindex() {
	o.dirty = map[K]bool{}
	o.expiries = o.expiries[:0]
	if !o.timeout {
		return
	}
	for k, e := range o.m {
		o.expiries = append(o.expiries, expiry[K]{k, e.Last})
	}
	slices.SortFunc(o.expiries, func(a, b expiry[K]) int { return cmp.Compare(a.last, b.last) })
}

// touch records that key was set at batch time t.
func (o *mapWithStateOp[K, S]) touch(key K, t int64) {
	o.dirty[key] = true
	if !o.timeout {
		return
	}
	if n := len(o.expiries); n > 0 && o.expiries[n-1].key == key && o.expiries[n-1].last == t {
		return
	}
	o.expiries = append(o.expiries, expiry[K]{key, t})
}

// MapWithState keeps per-key state across batches (Spark's mapWithState): spec.Update
// sees each element with its key's state; idle keys time out after spec.Timeout. The
// state is checkpointed with every committed batch. Outputs of timed-out keys come after
// the batch's element outputs, in no particular order.
func MapWithState[K comparable, V, S, U any](s *Stream[KV[K, V]], spec StateSpec[K, V, S, U]) *Stream[U] {
	if spec.Update == nil {
		panic("BUG: streaming.MapWithState: Update is nil")
	}
	op := &mapWithStateOp[K, S]{m: map[K]*stateEntry[K, S]{}, dirty: map[K]bool{}, timeout: spec.Timeout > 0}
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
				op.touch(kv.Key, t)
			case st.exists:
				op.m[kv.Key] = &stateEntry[K, S]{Key: kv.Key, Val: st.value, Last: t}
				op.touch(kv.Key, t)
			case e != nil:
				delete(op.m, kv.Key)
				op.dirty[kv.Key] = false
			}
		}
		if spec.Timeout > 0 {
			limit := t - int64(spec.Timeout)
			n := 0
			for ; n < len(op.expiries) && op.expiries[n].last <= limit; n++ {
				k := op.expiries[n].key
				e := op.m[k]
				if e == nil || e.Last > limit {
					continue // removed, or touched again since: a later touch is queued
				}
				delete(op.m, k)
				op.dirty[k] = false
				if spec.OnTimeout != nil {
					if u, emit := spec.OnTimeout(b.Time, k, e.Val); emit {
						out = append(out, u)
					}
				}
			}
			if n > 0 {
				clear(op.expiries[:n])
				op.expiries = op.expiries[n:]
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
