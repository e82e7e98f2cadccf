package warehouse

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/prometheus/client_golang/prometheus"
)

// Errors callers can test with errors.Is.
var (
	// ErrNotFound: no such table or snapshot.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the table changed under a commit (lost race or unexpected parent).
	ErrConflict = errors.New("commit conflict")
	// ErrLocked: another writer holds the table's lock.
	ErrLocked = errors.New("table is locked")
	// ErrClosed: the transaction already committed or aborted.
	ErrClosed = errors.New("transaction is closed")
)

// Layers are the table name prefixes and the directories they map to.
var Layers = []string{"ods", "dwd", "dws", "ads", "dim", "dlq", "rt", "sys"}

var tableNameRE = regexp.MustCompile(`^(ods|dwd|dws|ads|dim|dlq|rt|sys)_[a-z0-9_]+$`)

// Options configure a Warehouse. Zero values mean the default noted.
type Options struct {
	// RowGroupRows is the number of rows buffered per Parquet row group (default 131072).
	RowGroupRows int64
	// TargetFileBytes is the compressed size at which a writer starts a new file and the
	// size compaction aims at (default 128 MiB).
	TargetFileBytes int64
	// Compression is the Parquet page codec, one of Compressions (default "zstd").
	Compression string
	// CompressionLevel is the codec's level (default 1: fastest; zstd goes to 22,
	// gzip to 9, brotli to 11; snappy, lz4_raw and none have none).
	CompressionLevel int
	// MaxOpenFiles bounds the data files a transaction keeps open (default 16): writing
	// to one more partition finishes the least recently written file (a later write to
	// that partition starts another file).
	MaxOpenFiles int
	// LockTimeout bounds how long Begin waits for another writer (default 30s;
	// negative: do not wait).
	LockTimeout time.Duration
	// ReadOnly skips the crash cleanup in Open, and the creation of a missing root (for
	// tools that only read: they leave no trace; a missing root has no tables).
	ReadOnly bool
	// Now is the clock used for snapshot times (default time.Now).
	Now func() time.Time
	// Logger (default: discard).
	Logger *slog.Logger
	// Registerer receives the warehouse's metrics (tagpipe_warehouse_*); nil: none.
	// Pass the admin registry, never the global default.
	Registerer prometheus.Registerer
}

// DefaultOptions returns the documented defaults.
func DefaultOptions() Options {
	return Options{
		RowGroupRows:     128 * 1024,
		TargetFileBytes:  128 << 20,
		Compression:      "zstd",
		CompressionLevel: 1,
		MaxOpenFiles:     16,
		LockTimeout:      30 * time.Second,
		Now:              time.Now,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func (o *Options) fill() {
	d := DefaultOptions()
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = d.RowGroupRows
	}
	if o.TargetFileBytes <= 0 {
		o.TargetFileBytes = d.TargetFileBytes
	}
	if o.MaxOpenFiles <= 0 {
		o.MaxOpenFiles = d.MaxOpenFiles
	}
	if o.Compression == "" {
		o.Compression = d.Compression
	}
	if o.CompressionLevel <= 0 {
		o.CompressionLevel = d.CompressionLevel
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = d.LockTimeout
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
}

// Warehouse is a directory of tables. It is safe for concurrent use; it holds no
// open files between calls, so any number of processes may open the same root.
type Warehouse struct {
	root  string
	opts  Options
	codec compress.Compression // opts.Compression

	metrics *metrics

	mu     sync.Mutex
	tables map[string]*Table
}

// Compression is the Parquet codec and level files are written with (Options), for
// writers outside this package (DuckDB's COPY, through duckbridge.CopyOptions).
func (w *Warehouse) Compression() (codec string, level int) {
	return strings.ToLower(w.opts.Compression), w.opts.CompressionLevel
}

// Open opens the warehouse at root (creating it, unless opts.ReadOnly) and, unless
// opts.ReadOnly, removes what crashed writers left behind: temporary files and data files no
// snapshot references (see FORMAT.md, "Crash recovery"). Tables whose lock is held
// by a live writer are skipped.
func Open(root string, opts Options) (*Warehouse, error) {
	opts.fill()
	codec, err := ParseCompression(opts.Compression, opts.CompressionLevel)
	if err != nil {
		return nil, fmt.Errorf("warehouse %q: %w", root, err)
	}
	if !opts.ReadOnly {
		if err := mkdirSynced(root); err != nil {
			return nil, fmt.Errorf("cannot create warehouse %q: %w", root, err)
		}
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve warehouse %q: %w", root, err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("cannot register warehouse metrics: %w", err)
	}
	w := &Warehouse{root: abs, opts: opts, codec: codec, tables: map[string]*Table{}, metrics: m}
	if !opts.ReadOnly {
		names, err := w.TableNames()
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if err := w.table(n).recover(); err != nil {
				return nil, err
			}
		}
		w.removeStaleStaging()
	}
	return w, nil
}

// stagingGrace is how old a staging directory must be before Open assumes its
// owner died (a job that crashed before removing it).
const stagingGrace = 24 * time.Hour

func (w *Warehouse) removeStaleStaging() {
	base := filepath.Join(w.root, stagingRoot)
	ents, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || w.opts.Now().Sub(info.ModTime()) < stagingGrace {
			continue
		}
		if err := os.RemoveAll(filepath.Join(base, e.Name())); err != nil {
			w.opts.Logger.Warn("cannot remove stale staging dir", "dir", e.Name(), "err", err)
		}
	}
}

// Root is the absolute warehouse directory.
func (w *Warehouse) Root() string { return w.root }

// Options returns the options in effect.
func (w *Warehouse) Options() Options { return w.opts }

// Close releases the warehouse. It holds nothing open, so Close is cheap and safe
// to call twice; open transactions must be committed or aborted by their owners.
func (w *Warehouse) Close() error { return nil }

// LayerOf returns a table name's layer, or an error naming the allowed prefixes.
func LayerOf(name string) (string, error) {
	if !tableNameRE.MatchString(name) {
		return "", fmt.Errorf("bad table name %q: want <layer>_<name> in lower case, layer one of %s", name, strings.Join(Layers, ", "))
	}
	layer, _, _ := strings.Cut(name, "_")
	return layer, nil
}

// TableDir is where a table lives: <root>/<layer>/<name>.
func (w *Warehouse) TableDir(name string) (string, error) {
	layer, err := LayerOf(name)
	if err != nil {
		return "", err
	}
	return filepath.Join(w.root, layer, name), nil
}

// TableNames lists the tables that have at least one snapshot, sorted.
func (w *Warehouse) TableNames() ([]string, error) {
	var out []string
	for _, layer := range Layers {
		ents, err := os.ReadDir(filepath.Join(w.root, layer))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cannot list layer %q: %w", layer, err)
		}
		for _, e := range ents {
			if !e.IsDir() || !tableNameRE.MatchString(e.Name()) || !strings.HasPrefix(e.Name(), layer+"_") {
				continue
			}
			id, err := latestID(filepath.Join(w.root, layer, e.Name(), metaDir))
			if err != nil {
				return nil, err
			}
			if id > 0 {
				out = append(out, e.Name())
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Tables returns every existing table.
func (w *Warehouse) Tables() ([]*Table, error) {
	names, err := w.TableNames()
	if err != nil {
		return nil, err
	}
	out := make([]*Table, len(names))
	for i, n := range names {
		out[i] = w.table(n)
	}
	return out, nil
}

// Table opens an existing table; errors.Is(err, ErrNotFound) if it has no snapshot.
func (w *Warehouse) Table(name string) (*Table, error) {
	if _, err := LayerOf(name); err != nil {
		return nil, err
	}
	t := w.table(name)
	id, err := latestID(t.metaDir())
	if err != nil {
		return nil, err
	}
	if id == 0 {
		return nil, fmt.Errorf("table %q: %w", name, ErrNotFound)
	}
	return t, nil
}

// table returns the cached handle for a valid name.
func (w *Warehouse) table(name string) *Table {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t, ok := w.tables[name]; ok {
		return t
	}
	dir, err := w.TableDir(name)
	if err != nil {
		panic("BUG: table() with invalid name " + name)
	}
	t := &Table{w: w, name: name, dir: dir, cache: map[int64]*Snapshot{}}
	w.tables[name] = t
	return t
}

// StagingDir creates a fresh empty directory below the warehouse root (so renames
// into tables stay on one file system) for files written by another engine, e.g.
// DuckDB's COPY … TO; publish its contents with Tx.ImportDir. The caller removes it;
// Open removes staging directories untouched for a day (their owner died).
func (w *Warehouse) StagingDir(prefix string) (string, error) {
	base := filepath.Join(w.root, stagingRoot)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("cannot create staging root %q: %w", base, err)
	}
	dir, err := os.MkdirTemp(base, prefix+"-")
	if err != nil {
		return "", fmt.Errorf("cannot create staging dir: %w", err)
	}
	return dir, nil
}
