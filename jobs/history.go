package jobs

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/tagpipe/tagpipe/internal/fsutil"
)

// State is where a run is. Terminal states are final for the scheduler; only a manual
// run or a backfill runs a terminal run again.
type State string

const (
	// StateScheduled: planned, its interval has not ended yet.
	StateScheduled State = "scheduled"
	// StateQueued: due, waiting for upstream runs, a concurrency slot or the lock.
	StateQueued  State = "queued"
	StateRunning State = "running"
	// StateUpForRetry: an attempt failed; the next one starts after the backoff.
	StateUpForRetry State = "up_for_retry"
	// StateUpForReschedule: a run of a job with sensor_mode reschedule whose wait_for
	// conditions did not hold at its last poke; it holds no slot and is poked again after
	// poke_interval (Airflow's up_for_reschedule). Its Start is the first poke, from which
	// wait_timeout counts; its Error says what it waits for.
	StateUpForReschedule State = "up_for_reschedule"
	StateSuccess         State = "success"
	StateFailed          State = "failed"
	// StateUpstreamFailed: not run because a depends_on job's run for the same ds failed
	// (or, with a trigger_rule, because the rule can no longer hold: see TriggerRule).
	StateUpstreamFailed State = "upstream_failed"
	// StateSkipped: not run because its trigger_rule says so (Airflow's skipped): e.g.
	// one_failed when no upstream run failed, or all_success when an upstream run was
	// skipped. Like success, it lets depends_on_past go on.
	StateSkipped State = "skipped"
)

// Terminal reports whether the state is final.
func (s State) Terminal() bool {
	return s == StateSuccess || s == StateFailed || s == StateUpstreamFailed || s == StateSkipped
}

// Trigger says who started a run.
const (
	TriggerScheduled = "scheduled"
	TriggerManual    = "manual"
	TriggerBackfill  = "backfill"
	// TriggerClear marks the queued record `tagpipe jobs clear` writes: the scheduler
	// runs the run again.
	TriggerClear = "clear"
	// TriggerMark marks a final state `tagpipe jobs mark` recorded without running.
	TriggerMark = "mark"
)

// Record is one run's state at one moment; the history file holds them in order and the
// last record of a (job, logical) pair is that run's current state. The fields are also
// the columns of the warehouse table sys_job_runs (see Export).
type Record struct {
	Job     string    `json:"job"`
	DS      string    `json:"ds"`
	Logical time.Time `json:"logical"`
	State   State     `json:"state"`
	Trigger string    `json:"trigger"`
	// Scheduled is true once the scheduler has planned this run (it sticks through
	// later manual re-runs); the latest scheduled logical time is where catch-up resumes.
	Scheduled bool `json:"scheduled,omitempty"`
	// Attempt is the run's try number (Airflow's try_number): its latest attempt, from 1,
	// going on across clears and re-runs; 0 before its first.
	Attempt int `json:"attempt"`
	// MaxTries is Airflow's max_tries: a failed attempt n is retried while n <= MaxTries.
	// A run started, cleared or re-run gets its attempts so far plus the job's retries.
	// 0 (records written before the field): the job's retries.
	MaxTries int       `json:"max_tries,omitempty"`
	Start    time.Time `json:"start,omitzero"`
	End      time.Time `json:"end,omitzero"`
	Rows     int64     `json:"rows"`
	Error    string    `json:"error,omitempty"`
	// Owner is host:pid of the process that wrote the record.
	Owner   string    `json:"owner,omitempty"`
	Updated time.Time `json:"updated"`
}

func (r Record) key() string { return r.Job + "/" + tsKey(r.Logical) }

// keepTries carries the run's try number and max_tries over from its latest record in
// st to r, a record written without an attempt (upstream_failed, skipped), so that a
// later clear or re-run goes on counting from them.
func (r *Record) keepTries(st *Store) {
	if prev, ok := st.Latest(r.Job, r.Logical); ok {
		r.Attempt, r.MaxTries = prev.Attempt, prev.MaxTries
	}
}

// Duration is End-Start for finished runs.
func (r Record) Duration() time.Duration {
	if r.Start.IsZero() || r.End.IsZero() {
		return 0
	}
	return r.End.Sub(r.Start)
}

// Store is the run history: <dir>/history.jsonl, one JSON record per line, appended with
// O_APPEND under an exclusive flock on <dir>/history.lock and fsynced before Append
// returns. Several processes share one store: each re-reads what the others appended
// (Refresh). A torn last line (kill -9 mid-write) is skipped; the next append starts on a
// fresh line. When the file holds many superseded records it is compacted to the latest
// record per run (written to a temp file, fsynced, renamed), and the compaction
// generation kept in history.lock goes up by one, so readers know to read the new file
// from its start. Format: FORMAT.md.
type Store struct {
	dir  string
	path string
	lock *os.File
	log  *slog.Logger

	mu      sync.Mutex
	latest  map[string]Record
	cleared map[string]Record    // runs whose current record is a clear (queued, TriggerClear)
	wm      map[string]time.Time // job → latest Scheduled logical time
	ino     uint64
	gen     uint64 // compaction generation the file was read at (history.lock)
	off     int64
	records int // complete lines in the file as read
	bad     int // lines that did not parse (torn writes)
	closed  bool
	keep    time.Duration // 0 = keep every run
	now     func() time.Time
}

// SetRetention makes compaction drop finished runs whose logical time is more than keep
// before now (0 = keep all). Each job's newest scheduled run is always kept: catch-up
// resumes after it.
func (s *Store) SetRetention(keep time.Duration, now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep, s.now = keep, now
}

// compactMin is the file size in records below which the store is never compacted (a
// variable so tests can lower it).
var compactMin = 4096

// OpenStore opens (creating) the history in dir.
func OpenStore(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create jobs dir %q: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "history.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open history lock: %w", err)
	}
	s := &Store{dir: dir, path: filepath.Join(dir, "history.jsonl"), lock: lock, log: log,
		latest: map[string]Record{}, cleared: map[string]Record{}, wm: map[string]time.Time{}}
	if err := s.Refresh(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the store; safe twice.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lock.Close()
}

func (s *Store) flock(how int) error {
	for {
		err := syscall.Flock(int(s.lock.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// Refresh reads records other processes appended since the last read.
func (s *Store) Refresh() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.flock(syscall.LOCK_SH); err != nil {
		return fmt.Errorf("cannot lock history: %w", err)
	}
	defer s.flock(syscall.LOCK_UN)
	return s.readLocked()
}

func (s *Store) readLocked() error {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot open history %q: %w", s.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("cannot stat history: %w", err)
	}
	gen, err := s.genLocked()
	if err != nil {
		return err
	}
	ino := fileIno(fi)
	if gen != s.gen || ino != s.ino || fi.Size() < s.off {
		// Compacted by someone (new file): start over. The generation is what tells:
		// the new file can have the old one's inode number (ext4 hands a freed inode to
		// the next file created) and grow past the offset read so far.
		s.gen, s.ino, s.off, s.records, s.bad = gen, ino, 0, 0, 0
		s.latest = map[string]Record{}
		s.cleared = map[string]Record{}
		s.wm = map[string]time.Time{}
	}
	if fi.Size() == s.off {
		return nil
	}
	if _, err := f.Seek(s.off, io.SeekStart); err != nil {
		return fmt.Errorf("cannot seek history: %w", err)
	}
	br := bufio.NewReaderSize(f, 4<<10)
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			break // an incomplete tail is left for the next read (or skipped once completed)
		}
		if err != nil {
			return fmt.Errorf("cannot read history: %w", err)
		}
		start := s.off
		s.off += int64(len(line))
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil || r.Job == "" {
			s.bad++
			s.log.Warn("skipping unreadable history line (torn write?)", "file", s.path, "offset", start)
			continue
		}
		s.records++
		s.applyLocked(r)
	}
	return nil
}

// syncFile is every fsync of an append (the history file and, when the append created
// it, its directories) and of a compaction's temporary file; tests fail or record them
// through it.
var syncFile = (*os.File).Sync

// fileIno is the inode number of a history file (a variable: tests make every file get
// the same one, as ext4 may).
var fileIno = func(fi os.FileInfo) uint64 { return fi.Sys().(*syscall.Stat_t).Ino }

// genLocked reads the compaction generation from history.lock: a little-endian uint64
// at offset 0, 0 while the file is empty (no compaction yet). Caller holds the flock.
func (s *Store) genLocked() (uint64, error) {
	var b [8]byte
	if _, err := s.lock.ReadAt(b[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("cannot read history generation: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

func (s *Store) applyLocked(r Record) {
	k := r.key()
	if prev, ok := s.latest[k]; ok && prev.Scheduled {
		r.Scheduled = true
	}
	s.latest[k] = r
	if r.State == StateQueued && r.Trigger == TriggerClear {
		s.cleared[k] = r
	} else {
		delete(s.cleared, k)
	}
	if r.Scheduled && r.Logical.After(s.wm[r.Job]) {
		s.wm[r.Job] = r.Logical
	}
}

// Append writes r durably (fsync) and applies it.
func (s *Store) Append(r Record) error {
	_, err := s.AppendIf(r, nil)
	return err
}

// AppendIf is Append when ok (given the run's current record, read under the file lock,
// so other processes' appends count) says so; nil ok always appends. It reports whether
// r was written.
func (s *Store) AppendIf(r Record, ok func(prev Record, seen bool) bool) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, fmt.Errorf("history store closed")
	}
	if err := s.flock(syscall.LOCK_EX); err != nil {
		return false, fmt.Errorf("cannot lock history: %w", err)
	}
	defer s.flock(syscall.LOCK_UN)
	if err := s.readLocked(); err != nil {
		return false, err
	}
	prev, seen := s.latest[r.key()]
	if ok != nil && !ok(prev, seen) {
		return false, nil
	}
	if seen && prev.Scheduled {
		r.Scheduled = true
	}
	data, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("BUG: cannot encode run record: %w", err)
	}
	data = append(data, '\n')
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	created := errors.Is(err, os.ErrNotExist)
	if created {
		f, err = os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	}
	if err != nil {
		return false, fmt.Errorf("cannot open history %q: %w", s.path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("cannot stat history: %w", err)
	}
	if fi.Size() > s.off {
		// A torn tail (the writer died mid-line): end it so this record starts clean.
		data = append([]byte{'\n'}, data...)
	}
	// A failed write or fsync is cut off again: the record is not acknowledged, so no
	// reader may see it (a short write on a full disk can leave a whole line but its
	// newline, which the next append's newline would complete).
	cut := func(err error) error {
		if terr := f.Truncate(fi.Size()); terr != nil {
			err = errors.Join(err, terr)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		return false, cut(fmt.Errorf("cannot append to history: %w", err))
	}
	if err := syncFile(f); err != nil {
		return false, cut(fmt.Errorf("cannot sync history: %w", err))
	}
	if created {
		// The file's fsync does not make its name durable, nor the name of a jobs
		// directory OpenStore just made.
		for _, d := range []string{s.dir, filepath.Dir(s.dir)} {
			if err := fsutil.SyncDirSync(d, syncFile); err != nil {
				return false, cut(fmt.Errorf("cannot sync history: %w", err))
			}
		}
	}
	if err := s.readLocked(); err != nil {
		return true, err
	}
	if s.records > compactMin && s.records > 2*len(s.latest) {
		if err := s.compactLocked(); err != nil {
			s.log.Warn("history compaction failed; will retry", "err", err)
		}
	}
	return true, nil
}

// compactLocked rewrites the file with the latest record per run. Caller holds the
// exclusive flock. A failure before the rename removes the temporary file: it fails
// mostly on a full disk, where it would keep the space it got (and every append tries
// again, filling the disk to the last block each time).
func (s *Store) compactLocked() (err error) {
	tmp := s.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("cannot create %q: %w", tmp, err)
	}
	renamed := false
	defer func() {
		if err != nil && !renamed {
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriter(f)
	enc := json.NewEncoder(bw)
	var cutoff time.Time
	if s.keep > 0 && s.now != nil {
		cutoff = s.now().Add(-s.keep)
	}
	for _, r := range s.sortedLocked("") {
		if r.Logical.Before(cutoff) && r.State.Terminal() && !(r.Scheduled && r.Logical.Equal(s.wm[r.Job])) {
			continue
		}
		if err := enc.Encode(r); err != nil {
			f.Close()
			return fmt.Errorf("cannot write %q: %w", tmp, err)
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %q: %w", tmp, err)
	}
	if err := syncFile(f); err != nil {
		f.Close()
		return fmt.Errorf("cannot sync %q: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write %q: %w", tmp, err)
	}
	// The generation goes up before the rename: a crash between the two only makes
	// readers read the old file again from its start.
	gen, err := s.genLocked()
	if err != nil {
		return err
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], gen+1)
	if _, err := s.lock.WriteAt(b[:], 0); err != nil {
		return fmt.Errorf("cannot write history generation: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("cannot replace history: %w", err)
	}
	renamed = true
	if err := s.readLocked(); err != nil {
		return err
	}
	return fsutil.SyncDir(s.dir)
}

// Latest is the current record of one run.
func (s *Store) Latest(job string, logical time.Time) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.latest[job+"/"+tsKey(logical)]
	return r, ok
}

// Cleared lists job's runs whose current record is a clear (`tagpipe jobs clear`), not
// yet run again, in no order.
func (s *Store) Cleared(job string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, r := range s.cleared {
		if r.Job == job {
			out = append(out, r)
		}
	}
	return out
}

// Watermark is the latest logical time the scheduler planned for job.
func (s *Store) Watermark(job string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.wm[job]
	return t, ok
}

// Runs lists the current record of every run of job ("" = all jobs), by job then
// logical time.
func (s *Store) Runs(job string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedLocked(job)
}

// Before is the current record of job's latest run whose logical time is before logical
// (scheduled placeholders aside).
func (s *Store) Before(job string, logical time.Time) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var prev Record
	found := false
	for _, r := range s.latest {
		if r.Job == job && r.State != StateScheduled && r.Logical.Before(logical) && (!found || r.Logical.After(prev.Logical)) {
			prev, found = r, true
		}
	}
	return prev, found
}

// ByDS returns the current records of job's runs whose ds is ds.
func (s *Store) ByDS(job, ds string) []Record {
	var out []Record
	for _, r := range s.Runs(job) {
		if r.DS == ds {
			out = append(out, r)
		}
	}
	return out
}

func (s *Store) sortedLocked(job string) []Record {
	out := make([]Record, 0, len(s.latest))
	for _, r := range s.latest {
		if job == "" || r.Job == job {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Job != out[j].Job {
			return out[i].Job < out[j].Job
		}
		return out[i].Logical.Before(out[j].Logical)
	})
	return out
}

// Export is the data of the warehouse table sys_job_runs: one row per run (its current
// record), columns job, ds, logical, state, trigger, attempt, max_tries, start, end,
// rows, error, owner, updated. It refreshes from disk first.
func (s *Store) Export() ([]Record, error) {
	if err := s.Refresh(); err != nil {
		return nil, err
	}
	return s.Runs(""), nil
}
