package streaming

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tagpipe/tagpipe/internal/fsutil"
)

// The checkpoint directory of one job (Spark's layout):
//
//	LOCK                         flock'd by the running engine
//	offsets/<id>.json            the plan of batch id: time, offset ranges, topic ids; written before it runs
//	state/<id>.gob               every stateful operator's state after batch id, or
//	state/<id>.delta.gob         its changes during batch id (see writeState)
//	commits/<id>.json            written last: batch id is done (outputs and state)
//	status.json                  the last batches' metrics, for `tagpipe stream status`
//
// Every file is written to a temporary name, fsynced and renamed, so a crash leaves
// either the old or the new file, never a torn one.

type plan struct {
	BatchID   int64     `json:"batch_id"`
	BatchTime time.Time `json:"batch_time"`
	Ranges    Ranges    `json:"ranges"`
	// TopicIDs are the topic ids (Kafka's text form) of the ranges' topics when the batch
	// was planned, or the last ones known before; absent when unknown (a broker without
	// topic ids, checkpoints written before them). The next plan compares them with the
	// broker's: a new id is a topic deleted and recreated.
	TopicIDs map[string]string `json:"topic_ids,omitempty"`
	// replay marks a plan read back from the checkpoint at start-up.
	replay bool
}

type commitInfo struct {
	BatchID     int64     `json:"batch_id"`
	CommittedAt time.Time `json:"committed_at"`
	Records     int64     `json:"records"`
}

type checkpoint struct {
	dir  string
	lock *os.File
	// keep is how many committed batches' files stay on disk.
	keep int
}

func openCheckpoint(dir string) (*checkpoint, error) {
	for _, sub := range []string{"offsets", "state", "commits"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("cannot create checkpoint directory %q: %w", dir, err)
		}
	}
	// The batch files are written with fsutil.WriteFile, whose fsync covers only
	// offsets/, state/ or commits/; the names of those directories and of dir itself
	// need their own.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := syncDir(d); err != nil {
			return nil, fmt.Errorf("cannot sync checkpoint directory: %w", err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open checkpoint lock in %q: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot lock checkpoint %q (another engine runs this job?): %w", dir, err)
	}
	c := &checkpoint{dir: dir, lock: f, keep: 20}
	c.removeTemps()
	return c, nil
}

func (c *checkpoint) close() error {
	if c.lock == nil {
		return nil
	}
	err := c.lock.Close() // releases the flock
	c.lock = nil
	return err
}

func (c *checkpoint) removeTemps() {
	for _, sub := range []string{".", "offsets", "state", "commits"} {
		ents, _ := os.ReadDir(filepath.Join(c.dir, sub))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".tmp") {
				os.Remove(filepath.Join(c.dir, sub, e.Name()))
			}
		}
	}
}

// syncDir fsyncs a directory (a variable: tests record it).
var syncDir = fsutil.SyncDir

func idName(id int64, ext string) string { return fmt.Sprintf("%020d%s", id, ext) }

func (c *checkpoint) writePlan(p plan) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("BUG: cannot encode plan: %w", err)
	}
	return fsutil.WriteFile(filepath.Join(c.dir, "offsets", idName(p.BatchID, ".json")), b)
}

func (c *checkpoint) readPlan(id int64) (plan, bool, error) {
	var p plan
	ok, err := readJSON(filepath.Join(c.dir, "offsets", idName(id, ".json")), &p)
	return p, ok, err
}

// State files: a full snapshot of every operator (<id>.gob), or a delta (<id>.delta.gob)
// in which operators that support it (incrementalOp) store their changes since the
// previous batch and the others their full state.
const (
	fullStateExt  = ".gob"
	deltaStateExt = ".delta.gob"
)

func (c *checkpoint) writeState(id int64, st map[string][]byte, full bool) error {
	b, err := gobEncode(st)
	if err != nil {
		return err
	}
	ext, other := fullStateExt, deltaStateExt
	if !full {
		ext, other = other, ext
	}
	// A failed earlier attempt of this batch may have left the other kind.
	if err := os.Remove(filepath.Join(c.dir, "state", idName(id, other))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot replace state of batch %d: %w", id, err)
	}
	return fsutil.WriteFile(filepath.Join(c.dir, "state", idName(id, ext)), b)
}

// stateFiles lists the state files: batch id → full snapshot (true) or delta.
func (c *checkpoint) stateFiles() (map[int64]bool, error) {
	ents, err := os.ReadDir(filepath.Join(c.dir, "state"))
	if errors.Is(err, fs.ErrNotExist) {
		// No state saved yet: the directory is made with the first state file, which a
		// full disk can keep from being written (the batch is then retried).
		return map[int64]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list checkpoint state: %w", err)
	}
	out := map[int64]bool{}
	for _, e := range ents {
		base, ext, ok := strings.Cut(e.Name(), ".")
		if !ok || (ext != fullStateExt[1:] && ext != deltaStateExt[1:]) {
			continue
		}
		id, err := strconv.ParseInt(base, 10, 64)
		if err != nil {
			continue
		}
		out[id] = out[id] || ext == fullStateExt[1:]
	}
	return out, nil
}

// readState returns what rebuilds the state after batch id: the latest full snapshot
// at or before id and the deltas of the batches after it up to id, in order (ok false
// when no state was saved for id).
func (c *checkpoint) readState(id int64) (full map[string][]byte, deltas []map[string][]byte, ok bool, err error) {
	files, err := c.stateFiles()
	if err != nil {
		return nil, nil, false, err
	}
	if _, ok := files[id]; !ok {
		return nil, nil, false, nil
	}
	from := id
	for !files[from] {
		from--
		if _, ok := files[from]; !ok {
			return nil, nil, false, fmt.Errorf("cannot read state of batch %d: the state of batch %d is missing from %s", id, from, c.dir)
		}
	}
	read := func(id int64, ext string) (map[string][]byte, error) {
		b, err := os.ReadFile(filepath.Join(c.dir, "state", idName(id, ext)))
		if err != nil {
			return nil, fmt.Errorf("cannot read state of batch %d: %w", id, err)
		}
		var st map[string][]byte
		if err := gobDecode(b, &st); err != nil {
			return nil, fmt.Errorf("cannot read state of batch %d: %w", id, err)
		}
		return st, nil
	}
	if full, err = read(from, fullStateExt); err != nil {
		return nil, nil, false, err
	}
	for d := from + 1; d <= id; d++ {
		st, err := read(d, deltaStateExt)
		if err != nil {
			return nil, nil, false, err
		}
		deltas = append(deltas, st)
	}
	return full, deltas, true, nil
}

func (c *checkpoint) writeCommit(ci commitInfo) error {
	b, err := json.Marshal(ci)
	if err != nil {
		return fmt.Errorf("BUG: cannot encode commit: %w", err)
	}
	return fsutil.WriteFile(filepath.Join(c.dir, "commits", idName(ci.BatchID, ".json")), b)
}

// lastID returns the largest batch id in sub ("offsets" or "commits"), or -1.
func (c *checkpoint) lastID(sub string) (int64, error) {
	ids, err := c.ids(sub)
	if err != nil || len(ids) == 0 {
		return -1, err
	}
	return ids[len(ids)-1], nil
}

func (c *checkpoint) ids(sub string) ([]int64, error) {
	ents, err := os.ReadDir(filepath.Join(c.dir, sub))
	if err != nil {
		return nil, fmt.Errorf("cannot list checkpoint %s: %w", sub, err)
	}
	var ids []int64
	for _, e := range ents {
		base, _, ok := strings.Cut(e.Name(), ".")
		if !ok || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		id, err := strconv.ParseInt(base, 10, 64)
		if err != nil {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// prune removes files of batches older than the last keep committed ones, except the
// state files the committed state is rebuilt from (its full snapshot and the deltas
// after it).
func (c *checkpoint) prune(committed int64) {
	limit := committed - int64(c.keep)
	for _, sub := range []string{"offsets", "commits"} {
		ids, _ := c.ids(sub)
		for _, id := range ids {
			if id >= limit {
				break
			}
			os.Remove(filepath.Join(c.dir, sub, idName(id, ".json")))
		}
	}
	files, err := c.stateFiles()
	if err != nil {
		return
	}
	base := int64(-1)
	for id, full := range files {
		if full && id <= committed && id > base {
			base = id
		}
	}
	limit = min(limit, base)
	for id, full := range files {
		if id < limit {
			ext := deltaStateExt
			if full {
				ext = fullStateExt
			}
			os.Remove(filepath.Join(c.dir, "state", idName(id, ext)))
		}
	}
}

func readJSON(path string, v any) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot read %q: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("cannot decode %q: %w", path, err)
	}
	return true, nil
}
