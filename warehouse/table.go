package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Table is a handle on one table. Handles are cheap and shared; the state lives on
// disk, so every read sees what other processes committed.
type Table struct {
	w    *Warehouse
	name string
	dir  string

	mu    sync.Mutex
	cache map[int64]*Snapshot // manifests are immutable once published
}

// TableSpec describes a table for CreateTable.
type TableSpec struct {
	Name string
	// Schema holds every column, partition keys included; column docs go in field
	// metadata under DocKey (see Field).
	Schema *arrow.Schema
	// PartitionKeys are Hive directory levels, outermost first, e.g. ["dt"].
	PartitionKeys []string
	// Doc describes the table.
	Doc string
}

// Name is the table name, e.g. "ods_events".
func (t *Table) Name() string { return t.name }

// Dir is the table's directory.
func (t *Table) Dir() string { return t.dir }

// Layer is the name prefix, e.g. "ods".
func (t *Table) Layer() string { l, _ := LayerOf(t.name); return l }

func (t *Table) metaDir() string  { return filepath.Join(t.dir, metaDir) }
func (t *Table) snapDir() string  { return filepath.Join(t.dir, metaDir, snapshotsDir) }
func (t *Table) lockPath() string { return filepath.Join(t.dir, metaDir, lockFile) }

// CreateTable creates a table, or opens it if it exists. For an existing table the
// spec must equal the current schema or be an allowed evolution of it (new nullable
// columns, NOT NULL relaxed, docs changed): then a schema snapshot is committed and
// older files read the new columns as nulls. Anything else is refused with a message
// saying what is incompatible; partition keys never change.
func (w *Warehouse) CreateTable(ctx context.Context, spec TableSpec) (*Table, error) {
	if _, err := LayerOf(spec.Name); err != nil {
		return nil, err
	}
	if err := checkSchema(spec.Schema, spec.PartitionKeys); err != nil {
		return nil, fmt.Errorf("table %s: %w", spec.Name, err)
	}
	for i, k := range spec.PartitionKeys {
		if slices.Contains(spec.PartitionKeys[:i], k) {
			return nil, fmt.Errorf("table %s: partition key %q repeated", spec.Name, k)
		}
	}
	t := w.table(spec.Name)
	cur, err := t.Current()
	if err == nil {
		spec = keepDocs(cur, spec)
		if !schemaChanged(cur, spec) {
			return t, nil
		}
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err := mkdirSynced(filepath.Join(t.dir, metaDir)); err != nil {
		return nil, fmt.Errorf("cannot create table dir %q: %w", t.dir, err)
	}
	tx, err := t.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Abort()
	if tx.base != nil {
		if !slices.Equal(tx.base.PartitionKeys, spec.PartitionKeys) {
			return nil, fmt.Errorf("table %s: partition keys are %v; changing them to %v is not supported", spec.Name, tx.base.PartitionKeys, spec.PartitionKeys)
		}
		if err := evolve(tx.base.Schema, spec.Schema); err != nil {
			return nil, fmt.Errorf("table %s: %w", spec.Name, err)
		}
		spec = keepDocs(tx.base, spec)
		if !schemaChanged(tx.base, spec) {
			return t, nil // someone else evolved it the same way meanwhile
		}
	}
	if _, err := tx.commit(ctx, commitRequest{schema: spec.Schema, keys: spec.PartitionKeys, doc: spec.Doc}); err != nil {
		return nil, err
	}
	return t, nil
}

// keepDocs fills the spec's empty table and column docs from the current
// snapshot, so writers that do not document the table do not undo those that do.
func keepDocs(cur *Snapshot, spec TableSpec) TableSpec {
	if spec.Doc == "" {
		spec.Doc = cur.Doc
	}
	fields := slices.Clone(spec.Schema.Fields())
	changed := false
	for i, f := range fields {
		if FieldDoc(f) != "" {
			continue
		}
		if old, ok := cur.Schema.FieldsByName(f.Name); ok && FieldDoc(old[0]) != "" {
			nf := Field(f.Name, f.Type, FieldDoc(old[0]))
			nf.Nullable = f.Nullable
			fields[i], changed = nf, true
		}
	}
	if changed {
		spec.Schema = arrow.NewSchema(fields, nil)
	}
	return spec
}

func schemaChanged(cur *Snapshot, spec TableSpec) bool {
	if cur.Doc != spec.Doc || !slices.Equal(cur.PartitionKeys, spec.PartitionKeys) {
		return true
	}
	a, err1 := encodeSchema(cur.Schema)
	b, err2 := encodeSchema(spec.Schema)
	if err1 != nil || err2 != nil || len(a) != len(b) {
		return true
	}
	for i := range a {
		ja, _ := encodeField(cur.Schema.Field(i))
		jb, _ := encodeField(spec.Schema.Field(i))
		if fmt.Sprint(ja.Name, ja.Nullable, ja.Doc) != fmt.Sprint(jb.Name, jb.Nullable, jb.Doc) || !sameType(cur.Schema.Field(i).Type, spec.Schema.Field(i).Type) {
			return true
		}
	}
	return false
}

// Current returns the latest snapshot.
func (t *Table) Current() (*Snapshot, error) {
	id, err := latestID(t.metaDir())
	if err != nil {
		return nil, err
	}
	if id == 0 {
		return nil, fmt.Errorf("table %q: %w", t.name, ErrNotFound)
	}
	return t.Snapshot(id)
}

// Snapshot returns snapshot id (if not expired).
func (t *Table) Snapshot(id int64) (*Snapshot, error) {
	t.mu.Lock()
	s, ok := t.cache[id]
	t.mu.Unlock()
	if ok {
		return s, nil
	}
	path := filepath.Join(t.snapDir(), manifestName(id))
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("table %q snapshot %d: %w", t.name, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read manifest %q: %w", path, err)
	}
	s, err = decodeManifest(t, data, path)
	if err != nil {
		return nil, err
	}
	if s.ID != id {
		return nil, fmt.Errorf("manifest %q holds snapshot %d", path, s.ID)
	}
	t.remember(s)
	return s, nil
}

// snapshotCacheSize bounds the parsed manifests a Table keeps: each lists every
// live file, so keeping all of a busy table's history would grow without bound.
const snapshotCacheSize = 32

// remember caches s, evicting the oldest snapshots beyond snapshotCacheSize.
func (t *Table) remember(s *Snapshot) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cache[s.ID] = s
	for len(t.cache) > snapshotCacheSize {
		oldest := int64(-1)
		for id := range t.cache {
			if oldest < 0 || id < oldest {
				oldest = id
			}
		}
		delete(t.cache, oldest)
	}
}

// AsOf returns the last snapshot committed at or before ts. Commit times never go
// backwards along the chain, so this is a binary search reading O(log n) manifests.
func (t *Table) AsOf(ts time.Time) (*Snapshot, error) {
	ids, err := listSnapshotIDs(t.snapDir())
	if err != nil {
		return nil, err
	}
	var found *Snapshot
	lo, hi := 0, len(ids)-1
	for lo <= hi {
		mid := (lo + hi) / 2
		s, err := t.Snapshot(ids[mid])
		if errors.Is(err, ErrNotFound) { // expired meanwhile: everything older is gone too
			lo = mid + 1
			continue
		}
		if err != nil {
			return nil, err
		}
		if s.Time.After(ts) {
			hi = mid - 1
		} else {
			found, lo = s, mid+1
		}
	}
	if found == nil {
		return nil, fmt.Errorf("table %q has no snapshot at or before %s: %w", t.name, ts.UTC().Format(time.RFC3339), ErrNotFound)
	}
	return found, nil
}

// History returns all retained snapshots, oldest first.
func (t *Table) History() ([]*Snapshot, error) {
	ids, err := listSnapshotIDs(t.snapDir())
	if err != nil {
		return nil, err
	}
	out := make([]*Snapshot, 0, len(ids))
	for _, id := range ids {
		s, err := t.Snapshot(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// recover removes a crashed writer's debris if nobody holds the lock: temp files,
// and data files (part-*.parquet) that no retained snapshot references.
func (t *Table) recover() error {
	if _, err := os.Stat(filepath.Join(t.dir, metaDir)); err != nil {
		return nil
	}
	l, ok, err := tryLock(t.lockPath())
	if err != nil {
		return err
	}
	if !ok {
		t.w.opts.Logger.Info("table is being written, skipping crash cleanup", "table", t.name)
		return nil
	}
	defer l.unlock()
	n, err := t.removeUnreferenced(false)
	if n > 0 {
		t.w.opts.Logger.Info("removed files left by a crashed writer", "table", t.name, "files", n)
	}
	return err
}

// removeUnreferenced cleans the table directory; the caller holds the lock. It
// deletes temp files (of compactions only when stale), and deals with data files the
// current snapshot does not list: hidden if an older retained snapshot lists them,
// deleted if none does. Hidden removed files are deleted once no retained snapshot
// lists them only when full is set (Expire): that needs every retained manifest,
// while crash recovery (full false) reads just the current one unless it finds
// leftovers of a crashed commit. Empty partition directories go last.
func (t *Table) removeUnreferenced(full bool) (int, error) {
	cur, err := t.Current()
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return 0, nil
		}
		return 0, err
	}
	current := map[string]bool{}
	for _, f := range cur.Files {
		current[f.Path] = true
	}
	var removed int
	var dirs []string
	var strays, hidden, pending []string // rel paths: visible but not current; hidden; pending but not current
	remove := func(path string) error {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot remove %q: %w", path, err)
		}
		removed++
		return nil
	}
	err = filepath.WalkDir(t.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(t.dir, path)
		rel = filepath.ToSlash(rel)
		name := d.Name()
		if d.IsDir() {
			if path != t.dir && strings.Contains(name, "=") {
				dirs = append(dirs, path)
			}
			return nil
		}
		switch {
		case strings.HasPrefix(name, "."+compactPrefix) && strings.HasSuffix(name, tmpExt):
			// A compaction may be writing it right now without the lock.
			if info, err := d.Info(); err == nil && time.Since(info.ModTime()) > compactTmpGrace {
				return remove(path)
			}
		case strings.HasPrefix(name, "."+dataPrefix) && strings.HasSuffix(name, dataExt+tmpExt):
			// A dead writer's file, or a committed file whose rename to its final
			// name did not happen (crash right after the commit point).
			i := strings.LastIndex(rel, "/") + 1
			final := rel[:i] + strings.TrimSuffix(strings.TrimPrefix(name, "."), tmpExt)
			if current[final] {
				if err := os.Rename(path, filepath.Join(t.dir, filepath.FromSlash(final))); err != nil {
					return fmt.Errorf("cannot finish commit of %q: %w", path, err)
				}
				return nil
			}
			pending = append(pending, rel)
		case strings.HasSuffix(name, tmpExt):
			return remove(path)
		case strings.HasPrefix(name, dataPrefix) && strings.HasSuffix(name, dataExt) && !current[rel]:
			strays = append(strays, rel)
		case strings.HasPrefix(name, "."+dataPrefix) && strings.HasSuffix(name, dataExt+removedExt):
			hidden = append(hidden, rel)
		}
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("cannot clean table %q: %w", t.name, err)
	}
	if len(strays) > 0 || len(pending) > 0 || full {
		hist, err := t.History()
		if err != nil {
			return removed, err
		}
		live := map[string]bool{}
		for _, s := range hist {
			for _, f := range s.Files {
				live[f.Path] = true
			}
		}
		for _, rel := range strays {
			if live[rel] {
				// Removed by a commit that crashed before hiding it.
				if err := hideFile(t.dir, rel); err != nil {
					return removed, err
				}
			} else if err := remove(filepath.Join(t.dir, filepath.FromSlash(rel))); err != nil {
				return removed, err // a crashed commit's file
			}
		}
		for _, rel := range pending {
			i := strings.LastIndex(rel, "/") + 1
			final := rel[:i] + strings.TrimSuffix(strings.TrimPrefix(rel[i:], "."), tmpExt)
			abs := filepath.Join(t.dir, filepath.FromSlash(rel))
			if live[final] { // committed, then removed again before anyone recovered
				if err := os.Rename(abs, hiddenPath(filepath.Join(t.dir, filepath.FromSlash(final)))); err != nil {
					return removed, fmt.Errorf("cannot hide %q: %w", abs, err)
				}
			} else if err := remove(abs); err != nil {
				return removed, err
			}
		}
		for _, rel := range hidden {
			i := strings.LastIndex(rel, "/") + 1
			orig := rel[:i] + strings.TrimSuffix(strings.TrimPrefix(rel[i:], "."), removedExt)
			if full && !live[orig] {
				if err := remove(filepath.Join(t.dir, filepath.FromSlash(rel))); err != nil {
					return removed, err
				}
			}
		}
	}
	// Deepest first; Remove fails harmlessly on non-empty directories.
	slices.Reverse(dirs)
	for _, d := range dirs {
		_ = os.Remove(d)
	}
	return removed, nil
}
