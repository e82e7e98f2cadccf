package warehouse

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// CommitOptions say how Commit publishes a transaction.
type CommitOptions struct {
	// Operation is OpAppend (the default), OpOverwritePartitions or OpDeletePartitions.
	Operation Operation
	// Properties are stored in the snapshot (e.g. a streaming batch id and Kafka
	// offset ranges); read them back from Snapshot.Properties.
	Properties map[string]string
	// ExpectedParent, if set, makes Commit fail with ErrConflict unless the table's
	// current snapshot is exactly this id (0: the table has only been created… use
	// the id you read). See Parent.
	ExpectedParent *int64
	// Partitions: for OpOverwritePartitions, partitions to clear in addition to the
	// ones the transaction wrote to (so an empty re-run still empties its day); for
	// OpDeletePartitions, the partitions to delete.
	Partitions []Partition
}

// Parent is a helper for CommitOptions.ExpectedParent.
func Parent(id int64) *int64 { return &id }

// Commit publishes everything written and imported as one new snapshot and ends
// the transaction (the lock is released, whether it succeeds or not). Readers see
// either the previous snapshot or the new one, never a part.
func (tx *Tx) Commit(ctx context.Context, opts CommitOptions) (*Snapshot, error) {
	if err := tx.usable(); err != nil {
		tx.Abort()
		return nil, err
	}
	op := opts.Operation
	if op == "" {
		op = OpAppend
	}
	switch op {
	case OpAppend, OpOverwritePartitions, OpDeletePartitions:
	default:
		tx.Abort()
		return nil, fmt.Errorf("table %s: operation %q cannot be committed directly", tx.t.name, op)
	}
	return tx.commit(ctx, commitRequest{op: op, props: opts.Properties, expected: opts.ExpectedParent, partitions: opts.Partitions})
}

type commitRequest struct {
	op         Operation
	props      map[string]string
	expected   *int64
	partitions []Partition
	// create / schema change:
	schema *arrow.Schema
	keys   []string
	doc    string
}

// testHookBeforeManifest runs after a commit's files are at their pending names and
// before its manifest is published; testHookAfterManifest right after the commit
// point, before the files get their final names (tests kill the process there).
var testHookBeforeManifest, testHookAfterManifest func()

func (tx *Tx) commit(ctx context.Context, req commitRequest) (snap *Snapshot, err error) {
	defer tx.Abort() // releases the lock; deletes our files unless they were published
	start := time.Now()
	mt := tx.t.w.metrics
	defer func() {
		if errors.Is(err, ErrConflict) {
			mt.conflicts.WithLabelValues(tx.t.name).Inc()
		}
		if err != nil || snap == nil {
			return
		}
		name := tx.t.name
		mt.commits.WithLabelValues(name, string(snap.Operation)).Inc()
		mt.commitTime.WithLabelValues(name).Observe(time.Since(start).Seconds())
		mt.rowsAdded.WithLabelValues(name).Add(float64(snap.Summary.AddedRows))
		mt.filesAdded.WithLabelValues(name).Add(float64(snap.Summary.AddedFiles))
		mt.filesRemoved.WithLabelValues(name).Add(float64(snap.Summary.RemovedFiles))
		var added int64
		for _, f := range snap.Files {
			if f.AddedSnapshot == snap.ID {
				added += f.Bytes
			}
		}
		mt.bytesAdded.WithLabelValues(name).Add(float64(added))
	}()
	if tx.closed {
		return nil, ErrClosed
	}
	if err := tx.Flush(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := tx.t
	if tx.lk == nil {
		lk, err := lock(ctx, t.lockPath(), t.w.opts.LockTimeout)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.name, err)
		}
		tx.lk = lk
	}
	var baseID int64
	if tx.base != nil {
		baseID = tx.base.ID
	}
	// The lock makes this a formality among locked writers; it still catches a
	// writer that bypassed the lock, and an ExpectedParent from an older read.
	latest, err := latestID(t.metaDir())
	if err != nil {
		return nil, err
	}
	if latest != baseID && req.op == OpReplace && tx.base != nil {
		// A replace (compaction) only needs its inputs to be unchanged.
		if err := tx.rebase(latest); err != nil {
			return nil, err
		}
		baseID = latest
	}
	if latest != baseID {
		return nil, fmt.Errorf("%w: table %s moved from snapshot %d while this transaction ran", ErrConflict, t.name, baseID)
	}
	if req.expected != nil && *req.expected != baseID {
		return nil, fmt.Errorf("%w: table %s is at snapshot %d, the commit expected parent %d", ErrConflict, t.name, baseID, *req.expected)
	}

	m := &manifest{
		FormatVersion: formatVersion, Table: t.name, SnapshotID: baseID + 1, ParentID: baseID,
		Properties: maps.Clone(req.props),
	}
	now := t.w.opts.Now().UnixMilli()
	var files []DataFile
	if tx.base != nil {
		now = max(now, tx.base.Time.UnixMilli())
		m.Schema, m.PartitionKeys, m.Doc = tx.base.m.Schema, tx.base.PartitionKeys, tx.base.Doc
		files = slices.Clone(tx.base.Files)
	}
	m.TimestampMS = now
	sum := Summary{}
	var removed []DataFile

	drop := func(keep func(DataFile) bool) {
		kept := files[:0:0]
		for _, f := range files {
			if keep(f) {
				kept = append(kept, f)
			} else {
				removed = append(removed, f)
				sum.RemovedFiles++
				sum.RemovedRows += f.Rows
			}
		}
		files = kept
	}
	normalize := func(ps []Partition) (partitionSet, error) {
		set := partitionSet{}
		for _, p := range ps {
			np, err := p.normalize(m.PartitionKeys)
			if err != nil {
				return nil, fmt.Errorf("table %s: %w", t.name, err)
			}
			set.add(np)
		}
		return set, nil
	}

	switch {
	case req.schema != nil: // create or evolve
		m.Operation = OpCreate
		if tx.base != nil {
			m.Operation = OpSchema
		}
		if m.Schema, err = encodeSchema(req.schema); err != nil {
			return nil, err
		}
		m.PartitionKeys, m.Doc = slices.Clone(req.keys), req.doc
		if m.PartitionKeys == nil {
			m.PartitionKeys = []string{}
		}
		if tx.base != nil {
			oldData := tx.base.DataSchema()
			var added []string
			for _, f := range dataSchema(req.schema, req.keys).Fields() {
				if len(oldData.FieldIndices(f.Name)) == 0 {
					added = append(added, f.Name)
				}
			}
			for i := range files {
				files[i].Missing = append(slices.Clone(files[i].Missing), added...)
			}
		}
	case req.op == OpOverwritePartitions:
		m.Operation = req.op
		set, err := normalize(req.partitions)
		if err != nil {
			return nil, err
		}
		for _, s := range tx.staged {
			set.add(s.df.Partition)
		}
		drop(func(f DataFile) bool { _, hit := set[f.Partition.Path()]; return !hit })
	case req.op == OpDeletePartitions:
		m.Operation = req.op
		if len(tx.staged) > 0 {
			return nil, fmt.Errorf("table %s: a delete-partitions commit cannot add files", t.name)
		}
		set, err := normalize(req.partitions)
		if err != nil {
			return nil, err
		}
		drop(func(f DataFile) bool { _, hit := set[f.Partition.Path()]; return !hit })
	case req.op == OpReplace:
		m.Operation = req.op
		for p := range tx.remove {
			if !slices.ContainsFunc(files, func(f DataFile) bool { return f.Path == p }) {
				return nil, fmt.Errorf("%w: table %s: file %s to replace is gone", ErrConflict, t.name, p)
			}
		}
		drop(func(f DataFile) bool { return !tx.remove[f.Path] })
	default:
		m.Operation = req.op
	}

	// Put every new file at its pending name (hidden, temp suffix) next to its final
	// name. Before the manifest is linked nothing references them and directory
	// globs do not see them; a crash leaves them for the next Open to delete.
	var moved []stagedFile // src now at pendingPath(final)
	undo := func() {
		for _, s := range moved {
			pending := pendingPath(filepath.Join(t.dir, filepath.FromSlash(s.df.Path)))
			if s.imported {
				_ = os.Rename(pending, s.src)
			} else {
				_ = os.Remove(pending)
			}
		}
	}
	dirs := map[string]bool{}
	for _, s := range tx.staged {
		rel := s.name
		if pp := s.df.Partition.Path(); pp != "" {
			rel = path.Join(pp, rel)
		}
		final := filepath.Join(t.dir, filepath.FromSlash(rel))
		pending := pendingPath(final)
		if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
			undo()
			return nil, fmt.Errorf("cannot create partition dir: %w", err)
		}
		if s.src != pending {
			if err := os.Rename(s.src, pending); err != nil {
				undo()
				if errors.Is(err, syscall.EXDEV) {
					return nil, fmt.Errorf("cannot move %q into table %s: not on the warehouse's file system (use Warehouse.StagingDir): %w", s.src, t.name, err)
				}
				return nil, fmt.Errorf("cannot move %q into table %s: %w", s.src, t.name, err)
			}
		}
		s.df.Path = rel
		s.df.AddedSnapshot = m.SnapshotID
		moved = append(moved, s)
		dirs[filepath.Dir(final)] = true
		files = append(files, s.df)
		sum.AddedFiles++
		sum.AddedRows += s.df.Rows
	}
	// The partition directories hold the pending names; their parents hold new
	// partition directories (a new dt=… of a table, a new outer level of two keys).
	dirList := slices.Collect(maps.Keys(dirs))
	parents := map[string]bool{}
	for _, d := range dirList {
		for p := filepath.Dir(d); p != t.dir && strings.HasPrefix(p, t.dir); p = filepath.Dir(p) {
			parents[p] = true
		}
		parents[t.dir] = true
	}
	syncs := append(slices.Clone(dirList), slices.Collect(maps.Keys(parents))...)
	if err := parallel(len(syncs), func(i int) error { return syncDir(syncs[i]) }); err != nil {
		undo()
		return nil, err
	}
	slices.SortStableFunc(files, func(a, b DataFile) int {
		if a.Path < b.Path {
			return -1
		} else if a.Path > b.Path {
			return 1
		}
		return 0
	})
	sum.TotalFiles = len(files)
	for _, f := range files {
		sum.TotalRows += f.Rows
		sum.TotalBytes += f.Bytes
	}
	m.Summary, m.Files = sum, files
	if m.Files == nil {
		m.Files = []DataFile{}
	}
	if err := writeManifest(t.snapDir(), m, testHookBeforeManifest); err != nil {
		undo()
		return nil, err
	}
	tx.staged = nil // published: Abort must not touch them
	if testHookAfterManifest != nil {
		testHookAfterManifest()
	}
	// Committed: give the files their final names. A failure or crash here leaves
	// readers fine (Snapshot.AbsPath finds pending names) and the next Open finishes.
	for _, s := range moved {
		final := filepath.Join(t.dir, filepath.FromSlash(s.df.Path))
		if err := os.Rename(pendingPath(final), final); err != nil {
			t.w.opts.Logger.Warn("snapshot committed, file not yet at its final name", "table", t.name, "file", s.df.Path, "err", err)
		}
	}
	// Not fsynced: after a crash the pending names are found by readers and renamed
	// by the next Open, so one fsync per partition directory is enough.
	if err := writeCurrent(t.metaDir(), m.SnapshotID); err != nil {
		t.w.opts.Logger.Warn("snapshot committed, hint not updated", "table", t.name, "snapshot", m.SnapshotID, "err", err)
	}
	// Take removed files out of directory globs; older snapshots still find them
	// (Snapshot.AbsPath). A crash here is finished by the next Open.
	for _, f := range removed {
		if err := hideFile(t.dir, f.Path); err != nil {
			t.w.opts.Logger.Warn("snapshot committed, removed file still visible to globs", "table", t.name, "file", f.Path, "err", err)
		}
	}
	snap, err = snapshotOf(t, m, manifestName(m.SnapshotID))
	if err != nil {
		return nil, fmt.Errorf("BUG: cannot read own manifest: %w", err)
	}
	t.remember(snap)
	return snap, nil
}

// rebase moves a replace transaction onto snapshot id, which must still hold every
// file it replaces, with the same schema.
func (tx *Tx) rebase(id int64) error {
	nb, err := tx.t.Snapshot(id)
	if err != nil {
		return err
	}
	if !nb.DataSchema().Equal(tx.base.DataSchema()) {
		return fmt.Errorf("%w: table %s: schema changed in snapshot %d while compacting", ErrConflict, tx.t.name, id)
	}
	have := map[string]bool{}
	for _, f := range nb.Files {
		have[f.Path] = true
	}
	for p := range tx.remove {
		if !have[p] {
			return fmt.Errorf("%w: table %s: file %s was removed by a newer snapshot while compacting", ErrConflict, tx.t.name, p)
		}
	}
	tx.base = nb
	return nil
}
