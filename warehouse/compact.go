package warehouse

import (
	"context"
	"fmt"
	"maps"

	"github.com/apache/arrow-go/v18/arrow"
)

// CompactOptions tune Table.Compact. Zero values mean the defaults noted.
type CompactOptions struct {
	// TargetFileBytes: files at least 3/4 of this size are left alone, merged files
	// roll over at it (default Options.TargetFileBytes).
	TargetFileBytes int64
	// MinFiles: a partition is rewritten only if it has at least this many small
	// files (default 2).
	MinFiles int
	// Partitions limits compaction to these partitions (default: all).
	Partitions []Partition
	// Properties are stored in the compaction snapshot.
	Properties map[string]string
}

// CompactResult says what a compaction did. Snapshot is nil if nothing needed it.
type CompactResult struct {
	Snapshot      *Snapshot
	Partitions    int
	FilesBefore   int // small files rewritten
	FilesAfter    int // files they became
	RowsRewritten int64
}

// Compact merges the small files of each partition (streaming makes many) into
// files of about TargetFileBytes, committed as one OpReplace snapshot with the
// same rows. Old files stay on disk for readers that pinned older snapshots until
// Expire removes them.
func (t *Table) Compact(ctx context.Context, opts CompactOptions) (*CompactResult, error) {
	if opts.TargetFileBytes <= 0 {
		opts.TargetFileBytes = t.w.opts.TargetFileBytes
	}
	if opts.MinFiles <= 0 {
		opts.MinFiles = 2
	}
	// Rewriting can take long; writers (streaming) keep committing meanwhile, and
	// the commit rebases onto their snapshots.
	tx, err := t.beginOptimistic()
	if err != nil {
		return nil, err
	}
	defer tx.Abort()
	only := partitionSet{}
	for _, p := range opts.Partitions {
		np, err := p.normalize(tx.base.PartitionKeys)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.name, err)
		}
		only.add(np)
	}
	res := &CompactResult{}
	small := int64(float64(opts.TargetFileBytes) * 0.75)
	for _, p := range tx.base.Partitions() {
		if _, ok := only[p.Path()]; len(only) > 0 && !ok {
			continue
		}
		var pick []DataFile
		for _, f := range tx.base.FilesIn(p) {
			if f.Bytes < small {
				pick = append(pick, f)
			}
		}
		if len(pick) < opts.MinFiles {
			continue
		}
		res.Partitions++
		res.FilesBefore += len(pick)
		before := len(tx.staged)
		for _, f := range pick {
			tx.remove[f.Path] = true
			err := tx.base.ScanFile(ctx, f, func(_ DataFile, rec arrow.RecordBatch) error {
				res.RowsRewritten += rec.NumRows()
				return tx.writeDataTarget(p, rec, opts.TargetFileBytes)
			})
			if err != nil {
				return nil, fmt.Errorf("cannot compact %s %s: %w", t.name, p, err)
			}
		}
		if pw := tx.writers[p.Path()]; pw != nil {
			delete(tx.writers, p.Path())
			if err := tx.finish(pw); err != nil {
				return nil, err
			}
		}
		res.FilesAfter += len(tx.staged) - before
	}
	if res.Partitions == 0 {
		return res, nil
	}
	if testHookBeforeCompactCommit != nil {
		testHookBeforeCompactCommit()
	}
	props := maps.Clone(opts.Properties)
	if props == nil {
		props = map[string]string{}
	}
	props["compacted_files"] = fmt.Sprint(res.FilesBefore)
	snap, err := tx.commit(ctx, commitRequest{op: OpReplace, props: props})
	if err != nil {
		return nil, err
	}
	res.Snapshot = snap
	return res, nil
}

// writeDataTarget is writeData with a file-size target other than the warehouse's.
func (tx *Tx) writeDataTarget(p Partition, rec arrow.RecordBatch, target int64) error {
	saved := tx.target
	tx.target = target
	defer func() { tx.target = saved }()
	return tx.writeData(p, rec)
}

// testHookBeforeCompactCommit runs after compaction wrote its files, before it
// commits (tests commit other writers' snapshots there).
var testHookBeforeCompactCommit func()
