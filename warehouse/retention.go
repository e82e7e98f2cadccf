package warehouse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Retain drops the partitions whose "dt" is more than keepDays days before now's
// UTC date (keepDays = 30 keeps today and the 30 days before), as one
// OpDeletePartitions snapshot. It returns the dropped partitions; the snapshot is
// nil when nothing was old enough. The files stay until Expire.
func (t *Table) Retain(ctx context.Context, keepDays int, now time.Time) (*Snapshot, []Partition, error) {
	if keepDays < 0 {
		return nil, nil, fmt.Errorf("table %s: retention of %d days", t.name, keepDays)
	}
	tx, err := t.Begin(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer tx.Abort()
	if tx.base == nil {
		return nil, nil, fmt.Errorf("table %q: %w", t.name, ErrNotFound)
	}
	hasDT := false
	for _, k := range tx.base.PartitionKeys {
		hasDT = hasDT || k == "dt"
	}
	if !hasDT {
		return nil, nil, fmt.Errorf("table %s has no dt partition key; retention needs one", t.name)
	}
	y, m, d := now.UTC().Date()
	cutoff := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -keepDays)
	var drop []Partition
	for _, p := range tx.base.Partitions() {
		v, _ := p.Get("dt")
		day, err := time.Parse(time.DateOnly, v)
		if err != nil {
			continue // not a date: never dropped by age
		}
		if day.Before(cutoff) {
			drop = append(drop, p)
		}
	}
	if len(drop) == 0 {
		return nil, nil, nil
	}
	snap, err := tx.commit(ctx, commitRequest{op: OpDeletePartitions, partitions: drop,
		props: map[string]string{"retention_days": fmt.Sprint(keepDays), "cutoff": cutoff.Format(time.DateOnly)}})
	if err != nil {
		return nil, nil, err
	}
	return snap, drop, nil
}

// ExpireOptions tune Table.Expire.
type ExpireOptions struct {
	// OlderThan: snapshots committed before this time are removed. The current
	// snapshot is always kept.
	OlderThan time.Time
	// RetainLast keeps at least this many newest snapshots regardless of age
	// (default 1).
	RetainLast int
}

// ExpireResult says what Expire removed.
type ExpireResult struct {
	Snapshots []int64
	Files     int
}

// Expire removes old snapshots (time travel to them ends) and then every data file
// no remaining snapshot references: the grace period for readers that pinned an
// old snapshot is OlderThan. It takes the writer lock.
func (t *Table) Expire(ctx context.Context, opts ExpireOptions) (*ExpireResult, error) {
	if opts.RetainLast < 1 {
		opts.RetainLast = 1
	}
	lk, err := lock(ctx, t.lockPath(), t.w.opts.LockTimeout)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.name, err)
	}
	defer lk.unlock()
	hist, err := t.History()
	if err != nil {
		return nil, err
	}
	res := &ExpireResult{}
	for i, s := range hist {
		if i >= len(hist)-opts.RetainLast || !s.Time.Before(opts.OlderThan) {
			break
		}
		path := filepath.Join(t.snapDir(), manifestName(s.ID))
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return res, fmt.Errorf("cannot remove manifest %q: %w", path, err)
		}
		res.Snapshots = append(res.Snapshots, s.ID)
		t.mu.Lock()
		delete(t.cache, s.ID)
		t.mu.Unlock()
	}
	if len(res.Snapshots) > 0 {
		if err := syncDir(t.snapDir()); err != nil {
			return res, err
		}
	}
	n, err := t.removeUnreferenced(true)
	res.Files = n
	return res, err
}
