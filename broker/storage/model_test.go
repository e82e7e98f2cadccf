package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestRandomOperationsAgainstModel drives a log with a random mix of appends, rolls,
// reads, time lookups, DeleteRecords, retention, clean reopens and crash reopens, and
// checks every answer against a plain in-memory list of the appended batches.
func TestRandomOperationsAgainstModel(t *testing.T) {
	noSync(t)
	for seed := uint64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		dir := t.TempDir()
		clk := &fakeClock{ms: 1_000_000}
		o := testOptions(clk)
		o.SegmentBytes = int64(300 + rng.IntN(3000))
		o.IndexIntervalBytes = 1 + rng.IntN(800)
		o.RetentionMS = -1
		l := mustOpen(t, dir, o)
		type mb struct {
			base, last int64
			data       []byte
			ts         int64
		}
		var model []mb
		start := int64(0)
		end := func() int64 {
			if len(model) == 0 {
				return start
			}
			return model[len(model)-1].last + 1
		}
		for step := range 400 {
			switch op := rng.IntN(100); {
			case op < 50: // append
				n := 1 + rng.IntN(5)
				clk.ms += int64(rng.IntN(10))
				b := buildBatch(plain(n, rng.IntN(60), clk.ms))
				r := mustAppend(t, l, b)
				if r.BaseOffset != end() {
					t.Fatalf("seed %d step %d: base %d, model end %d", seed, step, r.BaseOffset, end())
				}
				model = append(model, mb{r.BaseOffset, r.LastOffset, bytes.Clone(b), clk.ms})
			case op < 55:
				if err := l.Roll(); err != nil {
					t.Fatal(err)
				}
			case op < 75: // read from a random offset
				if end() == start {
					continue
				}
				off := start + rng.Int64N(end()-start)
				r, err := l.Read(off, int32(rng.IntN(2000)))
				if err != nil {
					t.Fatalf("seed %d step %d: Read(%d): %v", seed, step, off, err)
				}
				got, _ := r.Bytes()
				first := r.FirstOffset()
				r.Close()
				i := 0
				for model[i].last < off {
					i++
				}
				if first != model[i].base || !bytes.HasPrefix(got, model[i].data) {
					t.Fatalf("seed %d step %d: Read(%d) first %d, model batch %d", seed, step, off, first, model[i].base)
				}
				for p := 0; p < len(got); i++ {
					if !bytes.Equal(got[p:p+len(model[i].data)], model[i].data) {
						t.Fatalf("seed %d step %d: batch %d differs", seed, step, model[i].base)
					}
					p += len(model[i].data)
				}
			case op < 80: // time lookup: first record with ts >= target
				if len(model) == 0 {
					continue
				}
				target := model[rng.IntN(len(model))].ts + int64(rng.IntN(3))
				off, _, found := l.OffsetForTimestamp(target)
				want, wantFound := int64(-1), false
				for _, b := range model {
					if b.last < start {
						continue
					}
					n := b.last - b.base + 1
					for k := int64(0); k < n; k++ {
						if b.ts+k >= target && b.base+k >= start {
							want, wantFound = b.base+k, true
							break
						}
					}
					if wantFound {
						break
					}
				}
				if off != want || found != wantFound {
					t.Fatalf("seed %d step %d: OffsetForTimestamp(%d) = %d %v, want %d %v", seed, step, target, off, found, want, wantFound)
				}
			case op < 84: // DeleteRecords
				if end() == start {
					continue
				}
				to := start + rng.Int64N(end()-start+1)
				got, err := l.DeleteRecordsBefore(to)
				if err != nil || got != to {
					t.Fatalf("seed %d step %d: DeleteRecordsBefore(%d) = %d %v", seed, step, to, got, err)
				}
				start = to
			case op < 88: // retention by bytes
				o.RetentionBytes = int64(rng.IntN(4000)) + 1
				l.SetOptions(o)
				if _, err := l.EnforceRetention(); err != nil {
					t.Fatal(err)
				}
				o.RetentionBytes = -1
				l.SetOptions(o)
				ns := l.LogStartOffset()
				if ns < start {
					t.Fatalf("seed %d step %d: start went back %d -> %d", seed, step, start, ns)
				}
				start = ns
			case op < 94: // clean reopen
				l.Close()
				l = mustOpen(t, dir, o)
			default: // crash reopen: no clean marker, recovery point back at 0
				l.Close()
				os.Remove(filepath.Join(dir, cleanMarkerFile))
				os.Remove(filepath.Join(dir, recoveryPointFile))
				l = mustOpen(t, dir, o)
			}
			for len(model) > 0 && model[0].last < start {
				model = model[1:]
			}
			if l.LogStartOffset() != start || l.HighWatermark() != end() {
				t.Fatalf("seed %d step %d: log [%d,%d), model [%d,%d)", seed, step, l.LogStartOffset(), l.HighWatermark(), start, end())
			}
		}
		if _, err := l.Read(start-1, 10); start > 0 && !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("below start: %v", err)
		}
		l.Close()
	}
}

// TestRandomIdempotentRetries: producers send batches and randomly resend one of their
// last five (as a client does after a lost response), across rolls, clean reopens and
// crash reopens. Every batch must land exactly once and every resend must be answered
// with the offsets of the first copy.
func TestRandomIdempotentRetries(t *testing.T) {
	noSync(t)
	rng := rand.New(rand.NewPCG(7, 7))
	dir := t.TempDir()
	o := testOptions(nil)
	o.SegmentBytes = 2000
	l := mustOpen(t, dir, o)
	type sent struct {
		seq, n    int32
		base, end int64
	}
	next := map[int64]int32{}
	history := map[int64][]sent{}
	for step := range 1500 {
		pid := int64(1 + rng.IntN(3))
		switch op := rng.IntN(100); {
		case op < 60:
			n := int32(1 + rng.IntN(4))
			r, err := l.Append(idem(pid, 0, next[pid], int(n)))
			if err != nil {
				t.Fatalf("step %d: producer %d seq %d: %v", step, pid, next[pid], err)
			}
			history[pid] = append(history[pid], sent{next[pid], n, r.BaseOffset, r.LastOffset})
			next[pid] += n
		case op < 90:
			h := history[pid]
			if len(h) == 0 {
				continue
			}
			b := h[len(h)-1-rng.IntN(min(5, len(h)))]
			r, err := l.Append(idem(pid, 0, b.seq, int(b.n)))
			if !errors.Is(err, ErrDuplicateSequence) || r.BaseOffset != b.base || r.LastOffset != b.end {
				t.Fatalf("step %d: resend of producer %d seq %d: %+v %v, want offsets %d..%d", step, pid, b.seq, r, err, b.base, b.end)
			}
		case op < 94:
			l.Roll()
		case op < 97:
			l.Close()
			l = mustOpen(t, dir, o)
		default:
			l.Close()
			os.Remove(filepath.Join(dir, cleanMarkerFile))
			snaps, _ := filepath.Glob(filepath.Join(dir, "*.snapshot"))
			if len(snaps) > 0 && rng.IntN(2) == 0 { // lose the newest snapshot too
				os.Remove(snaps[len(snaps)-1])
			}
			l = mustOpen(t, dir, o)
		}
	}
	// The log holds each producer's sequences exactly once, in order.
	seen := map[int64]int32{}
	for _, h := range readAll(t, l, 0) {
		if h.BaseSequence != seen[h.ProducerID] {
			t.Fatalf("producer %d: batch with seq %d, expected %d", h.ProducerID, h.BaseSequence, seen[h.ProducerID])
		}
		seen[h.ProducerID] = h.LastSequence() + 1
	}
	for pid, n := range next {
		if seen[pid] != n {
			t.Fatalf("producer %d: log has sequences up to %d, sent %d", pid, seen[pid], n)
		}
	}
}
