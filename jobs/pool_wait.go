package jobs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Waiter files: one pool queue for every process on the data dir.
//
// Airflow has one scheduler pick the queued task instances of a pool by priority_weight,
// then logical date. Here every process takes slots itself, so a run refused for want
// of a shared pool's slots (one sized in jobs.pools) says so in the pool's directory: it
// holds an exclusive flock on a file
//
//	pools/<pool>/wait-<inverted weight>-<ts>-<registration>-<job>
//
// while it waits, and a run may take the pool's slots only when no live waiter file
// ranks before it (rank.before: higher weight, then earlier logical date, then job
// name; then the earlier registration). The same order ranks the runs of one process
// (pool.go), so the two never disagree. The lock is the whole truth, as for slots: a
// file whose flock can be taken belongs to a dead process (kill -9) or a waiter just
// leaving, and whoever finds it so removes it; it never blocks anyone. Format in
// FORMAT.md.

// waitSeq tells apart the waiter files one process registers in one nanosecond.
var waitSeq atomic.Uint64

// waitFile is a run's waiter file, locked while it waits.
type waitFile struct {
	path string
	f    *os.File
	rank rank
	reg  string // registration: time, pid, sequence
}

// waitName is the file name of a waiter of rank rk registered as reg. The inverted
// weight makes `ls` list the head of the queue first.
func waitName(rk rank, reg string) string {
	return fmt.Sprintf("wait-%019d-%s-%s-%s", math.MaxInt64-int64(rk.weight), tsKey(rk.logical), reg, rk.job)
}

// parseWaitName reads a waiter file name back; ok false for other files.
func parseWaitName(name string) (rk rank, reg string, ok bool) {
	f := strings.SplitN(name, "-", 5)
	if len(f) != 5 || f[0] != "wait" {
		return rank{}, "", false
	}
	inv, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || inv < 0 {
		return rank{}, "", false
	}
	l, err := time.Parse("20060102T150405Z", f[2])
	if err != nil || f[4] == "" {
		return rank{}, "", false
	}
	return rank{weight: int(math.MaxInt64 - inv), logical: l, job: f[4]}, f[3], true
}

// waitsBefore says a waiter (rk, reg) is ahead of (me, meReg); meReg "" is a run not
// registered yet, behind every waiter of its own rank.
func waitsBefore(rk rank, reg string, me rank, meReg string) bool {
	if rk.before(me) {
		return true
	}
	if me.before(rk) || rk.weight != me.weight || !rk.logical.Equal(me.logical) || rk.job != me.job {
		return false
	}
	return meReg == "" || reg < meReg
}

// registerWait creates and locks a waiter file for rank rk in d (who: "owner job/ts",
// written into it for people). A file removed by a prober between its creation and its
// lock (it looked dead) is made again.
func registerWait(d string, rk rank, who string) (*waitFile, error) {
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	for range 5 {
		reg := fmt.Sprintf("%019d.%d.%d", time.Now().UnixNano(), os.Getpid(), waitSeq.Add(1))
		path := filepath.Join(d, waitName(rk, reg))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
		if err != nil {
			return nil, err
		}
		if err := flockNB(f); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				continue // a prober took it for dead between our create and lock: it removes it
			}
			return nil, err
		}
		if st, err := os.Stat(path); err == nil {
			if fst, err := f.Stat(); err == nil && os.SameFile(st, fst) {
				_, _ = f.WriteAt([]byte(who+"\n"), 0)
				return &waitFile{path: path, f: f, rank: rk, reg: reg}, nil
			}
		}
		unlockFile(f)
	}
	return nil, fmt.Errorf("cannot register a waiter in %q: its file kept being removed", d)
}

// leave removes the waiter file, then drops its lock: a prober that opened it before
// finds it gone or dead.
func (w *waitFile) leave() {
	if w == nil || w.f == nil {
		return
	}
	_ = os.Remove(w.path)
	unlockFile(w.f)
	w.f = nil
}

// liveWaiterBefore says whether a live waiter in d (other than mine) ranks before the run
// (me, meReg). Dead waiter files met on the way are removed.
func liveWaiterBefore(d string, me rank, meReg, mine string) (bool, error) {
	ents, err := os.ReadDir(d)
	if err != nil {
		if os.IsNotExist(err) {
			return false, nil
		}
		return false, err
	}
	for _, e := range ents {
		name := e.Name()
		rk, reg, ok := parseWaitName(name)
		if !ok || name == mine || !waitsBefore(rk, reg, me, meReg) {
			continue
		}
		live, err := probeWaiter(filepath.Join(d, name))
		if err != nil {
			return false, err
		}
		if live {
			return true, nil
		}
	}
	return false, nil
}

// probeWaiter says whether the waiter file at path is held; one that is not (its
// process died, or it is leaving) is removed.
func probeWaiter(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	switch err := flockNB(f); {
	case errors.Is(err, syscall.EWOULDBLOCK):
		f.Close()
		return true, nil
	case err != nil:
		f.Close()
		return false, err
	}
	_ = os.Remove(path)
	unlockFile(f)
	return false, nil
}

// waiters lists the live waiter files in d ("host:pid job/ts" as their holders wrote
// it), head of the queue first, removing dead ones (those no run ranked after them
// looked at yet).
func waiters(d string) ([]string, error) {
	ents, err := os.ReadDir(d)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	type live struct {
		rk       rank
		reg, who string
	}
	var ws []live
	for _, e := range ents {
		rk, reg, ok := parseWaitName(e.Name())
		if !ok {
			continue
		}
		path := filepath.Join(d, e.Name())
		alive, err := probeWaiter(path)
		if err != nil {
			return nil, err
		}
		if !alive {
			continue
		}
		b, _ := os.ReadFile(path)
		ws = append(ws, live{rk, reg, strings.TrimSpace(string(b))})
	}
	sort.Slice(ws, func(a, b int) bool { return waitsBefore(ws[a].rk, ws[a].reg, ws[b].rk, ws[b].reg) })
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.who
	}
	return out, nil
}
