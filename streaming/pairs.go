package streaming

// Per-batch operations on keyed streams and counts, as Spark Streaming's
// PairDStreamFunctions (groupByKey, cogroup, join, leftOuterJoin, rightOuterJoin,
// fullOuterJoin) and DStream's count and countByValue. Each works on one batch's
// elements; over a window of batches, apply it to Window streams
// (Join(Window(a, l, s), Window(b, l, s)) is Spark's windowed join, and
// CountByValue(Window(s, l, sl)) its countByValueAndWindow). Keys come out in first-seen
// order (the left stream's, then keys only the right one has), values in arrival order,
// so results are deterministic.

// Joined is one row of a join: a left and a right value of one key. In an outer join a
// side without a match is its zero value with its Has flag false.
type Joined[V, W any] struct {
	Left     V
	Right    W
	HasLeft  bool
	HasRight bool
}

// CoGrouped is cogroup's value: every value a key has on each side in the batch.
type CoGrouped[V, W any] struct {
	Left  []V
	Right []W
}

// GroupByKey gathers each key's values of the batch.
func GroupByKey[K comparable, V any](s *Stream[KV[K, V]]) *Stream[KV[K, []V]] {
	return newStream(s.job, "groupByKey", func(*BatchInfo) ([]KV[K, []V], error) {
		return groupKV(s.items()), nil
	})
}

// groupKV gathers in's values by key, keys in first-seen order.
func groupKV[K comparable, V any](in []KV[K, V]) []KV[K, []V] {
	idx := make(map[K]int, len(in))
	var out []KV[K, []V]
	for _, kv := range in {
		i, ok := idx[kv.Key]
		if !ok {
			i = len(out)
			idx[kv.Key] = i
			out = append(out, KV[K, []V]{Key: kv.Key})
		}
		out[i].Val = append(out[i].Val, kv.Val)
	}
	return out
}

// CoGroup gathers, per key of either stream, its values in each of them in the batch.
func CoGroup[K comparable, V, W any](left *Stream[KV[K, V]], right *Stream[KV[K, W]]) *Stream[KV[K, CoGrouped[V, W]]] {
	return newStream(left.job, "cogroup", func(*BatchInfo) ([]KV[K, CoGrouped[V, W]], error) {
		return cogroup(left.items(), right.items()), nil
	})
}

func cogroup[K comparable, V, W any](left []KV[K, V], right []KV[K, W]) []KV[K, CoGrouped[V, W]] {
	idx := make(map[K]int, len(left)+len(right))
	var out []KV[K, CoGrouped[V, W]]
	at := func(k K) *CoGrouped[V, W] {
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, KV[K, CoGrouped[V, W]]{Key: k})
		}
		return &out[i].Val
	}
	for _, kv := range left {
		g := at(kv.Key)
		g.Left = append(g.Left, kv.Val)
	}
	for _, kv := range right {
		g := at(kv.Key)
		g.Right = append(g.Right, kv.Val)
	}
	return out
}

// joinKind says which unmatched sides a join keeps.
type joinKind struct{ keepLeft, keepRight bool }

// Join pairs every left value of a key with every right value of it in the batch
// (inner join: keys on one side only give nothing).
func Join[K comparable, V, W any](left *Stream[KV[K, V]], right *Stream[KV[K, W]]) *Stream[KV[K, Joined[V, W]]] {
	return join(left, right, "join", joinKind{})
}

// LeftOuterJoin is Join plus, for a left value whose key has no right value, a row
// with HasRight false.
func LeftOuterJoin[K comparable, V, W any](left *Stream[KV[K, V]], right *Stream[KV[K, W]]) *Stream[KV[K, Joined[V, W]]] {
	return join(left, right, "leftOuterJoin", joinKind{keepLeft: true})
}

// RightOuterJoin is Join plus, for a right value whose key has no left value, a row
// with HasLeft false.
func RightOuterJoin[K comparable, V, W any](left *Stream[KV[K, V]], right *Stream[KV[K, W]]) *Stream[KV[K, Joined[V, W]]] {
	return join(left, right, "rightOuterJoin", joinKind{keepRight: true})
}

// FullOuterJoin is Join plus the unmatched values of both sides.
func FullOuterJoin[K comparable, V, W any](left *Stream[KV[K, V]], right *Stream[KV[K, W]]) *Stream[KV[K, Joined[V, W]]] {
	return join(left, right, "fullOuterJoin", joinKind{keepLeft: true, keepRight: true})
}

func join[K comparable, V, W any](left *Stream[KV[K, V]], right *Stream[KV[K, W]], name string, kind joinKind) *Stream[KV[K, Joined[V, W]]] {
	if left.job != right.job {
		panic("BUG: streaming." + name + ": the streams belong to different jobs")
	}
	return newStream(left.job, name, func(*BatchInfo) ([]KV[K, Joined[V, W]], error) {
		var out []KV[K, Joined[V, W]]
		for _, g := range cogroup(left.items(), right.items()) {
			ls, rs := g.Val.Left, g.Val.Right
			switch {
			case len(ls) > 0 && len(rs) > 0:
				for _, l := range ls {
					for _, r := range rs {
						out = append(out, KV[K, Joined[V, W]]{g.Key, Joined[V, W]{Left: l, Right: r, HasLeft: true, HasRight: true}})
					}
				}
			case len(rs) == 0 && kind.keepLeft:
				for _, l := range ls {
					out = append(out, KV[K, Joined[V, W]]{g.Key, Joined[V, W]{Left: l, HasLeft: true}})
				}
			case len(ls) == 0 && kind.keepRight:
				for _, r := range rs {
					out = append(out, KV[K, Joined[V, W]]{g.Key, Joined[V, W]{Right: r, HasRight: true}})
				}
			}
		}
		return out, nil
	})
}

// Count is the number of elements of each batch: one element per batch (0 for an empty
// batch), as DStream.count.
func Count[T any](s *Stream[T]) *Stream[int64] {
	return newStream(s.job, "count", func(*BatchInfo) ([]int64, error) {
		return []int64{int64(len(s.items()))}, nil
	})
}

// CountByValue counts each distinct element of the batch.
func CountByValue[T comparable](s *Stream[T]) *Stream[KV[T, int64]] {
	return newStream(s.job, "countByValue", func(*BatchInfo) ([]KV[T, int64], error) {
		in := s.items()
		idx := make(map[T]int, len(in))
		var out []KV[T, int64]
		for _, v := range in {
			i, ok := idx[v]
			if !ok {
				i = len(out)
				idx[v] = i
				out = append(out, KV[T, int64]{Key: v})
			}
			out[i].Val++
		}
		return out, nil
	})
}
