package warehouse

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/tagpipe/tagpipe/internal/fsutil"
)

// On-disk names (FORMAT.md).
const (
	metaDir       = "_tagpipe"
	snapshotsDir  = "snapshots"
	lockFile      = "LOCK"
	currentFile   = "CURRENT"
	stagingRoot   = "_staging"
	manifestExt   = ".json"
	tmpExt        = ".tmp"
	removedExt    = ".removed"
	dataExt       = ".parquet"
	dataPrefix    = "part-"
	compactPrefix = "compact-"
	// compactTmpGrace: temp files of lock-free compactions are removed by crash
	// recovery only once they have not been written to for this long.
	compactTmpGrace = time.Hour
	formatVersion   = 1
)

// Operation is what a snapshot did.
type Operation string

// Operations recorded in manifests.
const (
	// OpCreate is a table's first snapshot: schema, no files.
	OpCreate Operation = "create"
	// OpAppend adds files.
	OpAppend Operation = "append"
	// OpOverwritePartitions replaces every partition the commit writes to (plus
	// CommitOptions.Partitions) with the commit's files.
	OpOverwritePartitions Operation = "overwrite-partitions"
	// OpDeletePartitions removes whole partitions.
	OpDeletePartitions Operation = "delete-partitions"
	// OpReplace swaps a set of files for others with the same rows (compaction).
	OpReplace Operation = "replace"
	// OpSchema changes the schema (adds nullable columns) and keeps the files.
	OpSchema Operation = "schema"
)

// manifest is the JSON document of one snapshot (FORMAT.md).
type manifest struct {
	FormatVersion int               `json:"format_version"`
	Table         string            `json:"table"`
	SnapshotID    int64             `json:"snapshot_id"`
	ParentID      int64             `json:"parent_id"`
	TimestampMS   int64             `json:"timestamp_ms"`
	Operation     Operation         `json:"operation"`
	Properties    map[string]string `json:"properties,omitempty"`
	Doc           string            `json:"doc,omitempty"`
	PartitionKeys []string          `json:"partition_keys"`
	Schema        []fieldJSON       `json:"schema"`
	Summary       Summary           `json:"summary"`
	Files         []DataFile        `json:"files"`
}

// Summary counts what a snapshot changed and holds.
type Summary struct {
	AddedFiles   int   `json:"added_files"`
	RemovedFiles int   `json:"removed_files"`
	AddedRows    int64 `json:"added_rows"`
	RemovedRows  int64 `json:"removed_rows"`
	TotalFiles   int   `json:"total_files"`
	TotalRows    int64 `json:"total_rows"`
	TotalBytes   int64 `json:"total_bytes"`
}

// DataFile is one Parquet file of a snapshot.
type DataFile struct {
	// Path is relative to the table directory, with forward slashes
	// ("dt=2024-05-01/part-….parquet").
	Path string `json:"path"`
	// Partition holds the values of the table's partition keys, in key order.
	Partition Partition `json:"partition"`
	Rows      int64     `json:"rows"`
	Bytes     int64     `json:"bytes"`
	// Missing lists schema columns the file does not store (added later by schema
	// evolution, or absent from an imported file); readers see nulls for them.
	Missing []string `json:"missing,omitempty"`
	// AddedSnapshot is the snapshot that added the file.
	AddedSnapshot int64 `json:"added_snapshot"`
}

// Snapshot is an immutable committed state of a table. Readers pin one and see
// exactly its files.
type Snapshot struct {
	ID            int64
	ParentID      int64
	Time          time.Time
	Operation     Operation
	Properties    map[string]string
	Doc           string
	Schema        *arrow.Schema
	PartitionKeys []string
	Summary       Summary
	Files         []DataFile

	table *Table
	m     *manifest
}

// Table is the table the snapshot belongs to.
func (s *Snapshot) Table() *Table { return s.table }

// DataSchema is the schema of the columns stored in files (Schema without the
// partition keys, which live in the directory names).
func (s *Snapshot) DataSchema() *arrow.Schema { return dataSchema(s.Schema, s.PartitionKeys) }

// AbsPath is the absolute path of a file of this snapshot.
// Files a newer snapshot removed are hidden (renamed to .<name>.removed in the same
// directory) until they expire; AbsPath returns the hidden name for those.
//
// Between a commit point and the renames that follow it, a new file still has its
// pending name; AbsPath returns that one then.
func (s *Snapshot) AbsPath(f DataFile) string {
	p := filepath.Join(s.table.dir, filepath.FromSlash(f.Path))
	if !exists(p) {
		if h := hiddenPath(p); exists(h) {
			return h
		}
		if pp := pendingPath(p); exists(pp) {
			return pp
		}
	}
	return p
}

// hiddenPath is where a removed data file waits for expiry: same directory, a name
// that Hive, Spark and DuckDB globs of *.parquet skip.
func hiddenPath(abs string) string {
	return filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+removedExt)
}

// hideFile moves a table file (relative path) to its hidden name.
func hideFile(tableDir, rel string) error {
	p := filepath.Join(tableDir, filepath.FromSlash(rel))
	if err := os.Rename(p, hiddenPath(p)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot hide removed file %q: %w", p, err)
	}
	return nil
}

// AbsPaths lists the absolute paths of all files, sorted.
func (s *Snapshot) AbsPaths() []string {
	out := make([]string, len(s.Files))
	for i, f := range s.Files {
		out[i] = s.AbsPath(f)
	}
	return out
}

// Rows is the total row count.
func (s *Snapshot) Rows() int64 { return s.Summary.TotalRows }

// Partitions lists the distinct partitions that hold files, sorted by path.
func (s *Snapshot) Partitions() []Partition {
	set := partitionSet{}
	for _, f := range s.Files {
		set.add(f.Partition)
	}
	return set.sorted()
}

// FilesIn returns the files of one partition.
func (s *Snapshot) FilesIn(p Partition) []DataFile {
	key := p.Path()
	var out []DataFile
	for _, f := range s.Files {
		if f.Partition.Path() == key {
			out = append(out, f)
		}
	}
	return out
}

func manifestName(id int64) string { return fmt.Sprintf("%020d%s", id, manifestExt) }

// listSnapshotIDs returns the committed snapshot ids in dir, ascending.
func listSnapshotIDs(dir string) ([]int64, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list snapshots %q: %w", dir, err)
	}
	var ids []int64
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, manifestExt) || strings.HasPrefix(n, ".") {
			continue
		}
		id, err := strconv.ParseInt(strings.TrimSuffix(n, manifestExt), 10, 64)
		if err != nil || id <= 0 {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// latestID returns the newest committed snapshot id of the table whose metadata
// directory is meta (0 if none). CURRENT is a hint written after each commit; the
// manifests are the truth, so the hint is verified and walked forward (a writer may
// have died between publishing a manifest and updating the hint), and a missing or
// bad hint falls back to listing snapshots/.
func latestID(meta string) (int64, error) {
	snaps := filepath.Join(meta, snapshotsDir)
	if b, err := os.ReadFile(filepath.Join(meta, currentFile)); err == nil {
		if id, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && id > 0 && exists(filepath.Join(snaps, manifestName(id))) {
			for exists(filepath.Join(snaps, manifestName(id+1))) {
				id++
			}
			return id, nil
		}
	}
	ids, err := listSnapshotIDs(snaps)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	return ids[len(ids)-1], nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// writeCurrent updates the CURRENT hint (atomically replaced; not fsynced, since
// latestID verifies it).
func writeCurrent(meta string, id int64) error {
	tmp := filepath.Join(meta, "."+currentFile+"."+randHex(6)+tmpExt)
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(id, 10)+"\n"), 0o644); err != nil {
		return fmt.Errorf("cannot write %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(meta, currentFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot update %s hint: %w", currentFile, err)
	}
	return nil
}

func decodeManifest(t *Table, data []byte, path string) (*Snapshot, error) {
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("cannot parse manifest %q: %w", path, err)
	}
	if m.FormatVersion != formatVersion {
		return nil, fmt.Errorf("manifest %q: format_version %d, this build reads %d", path, m.FormatVersion, formatVersion)
	}
	return snapshotOf(t, &m, path)
}

// snapshotOf is the Snapshot of manifest m (read from path, or just written there: a
// commit builds its snapshot from the manifest it wrote instead of decoding its JSON
// again, which costs as much as the table has files).
func snapshotOf(t *Table, m *manifest, path string) (*Snapshot, error) {
	sc, err := decodeSchema(m.Schema)
	if err != nil {
		return nil, fmt.Errorf("manifest %q: %w", path, err)
	}
	if m.Files == nil {
		m.Files = []DataFile{}
	}
	return &Snapshot{
		ID: m.SnapshotID, ParentID: m.ParentID, Time: time.UnixMilli(m.TimestampMS).UTC(),
		Operation: m.Operation, Properties: m.Properties, Doc: m.Doc, Schema: sc,
		PartitionKeys: m.PartitionKeys, Summary: m.Summary, Files: m.Files,
		table: t, m: m,
	}, nil
}

func encodeManifest(m *manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cannot encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// writeManifest publishes m as snapshot m.SnapshotID: it writes and fsyncs a temp
// file, then hard-links it to its final name, which fails if that snapshot id was
// taken meanwhile (a lost race is an error, never an overwrite), then fsyncs the
// directory. An error means not published: if the directory's fsync fails, the link
// is taken back first, because the caller then deletes the commit's new files, which
// a manifest left in place would name.
func writeManifest(dir string, m *manifest, beforeLink func()) error {
	data, err := encodeManifest(m)
	if err != nil {
		return err
	}
	if err := mkdirSynced(dir); err != nil {
		return fmt.Errorf("cannot create %q: %w", dir, err)
	}
	final := filepath.Join(dir, manifestName(m.SnapshotID))
	tmp := filepath.Join(dir, "."+manifestName(m.SnapshotID)+"."+randHex(6)+tmpExt)
	if err := writeFileSync(tmp, data); err != nil {
		return err
	}
	defer os.Remove(tmp)
	if beforeLink != nil {
		beforeLink()
	}
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: snapshot %d of %s was committed by another writer", ErrConflict, m.SnapshotID, m.Table)
		}
		return fmt.Errorf("cannot publish manifest %q: %w", final, err)
	}
	if err := syncDir(dir); err != nil {
		if rerr := os.Remove(final); rerr != nil {
			return fmt.Errorf("manifest %q is published but not durable (%w) and cannot be taken back: %w", final, err, rerr)
		}
		return err
	}
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("cannot create %q: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %q: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot sync %q: %w", path, err)
	}
	return f.Close()
}

// mkdirSynced is os.MkdirAll that also fsyncs the parent of each directory it makes:
// a file's or a directory's own fsync does not make its name durable, and a new
// table's first manifest must not be lost with the directories holding it.
func mkdirSynced(dir string) error { return fsutil.MkdirAllSync(dir, syncDir) }

// syncDir fsyncs a directory (a variable: tests make it fail).
var syncDir = fsutil.SyncDir
