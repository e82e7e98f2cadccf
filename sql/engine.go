package sql

import (
	"context"
	dbsql "database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterFunc creates (or replaces) one view per table in conn's database. asOf selects
// a snapshot ("" means the latest); a RegisterFunc that cannot travel in time returns an
// error for a non-empty asOf. warehouse/duckbridge provides the real one; DirViews is the
// fallback over a plain directory of Parquet files.
type RegisterFunc func(ctx context.Context, conn *dbsql.Conn, asOf string) error

// Options configure an Engine. The zero value of every field is usable.
type Options struct {
	// Register creates the table views; nil registers none.
	Register RegisterFunc
	// AsOf is the snapshot the views show; "" = latest.
	AsOf string
	// ReadOnly is remote mode: only SELECT-like statements, file access limited to
	// AllowedDirs, configuration locked.
	ReadOnly bool
	// AllowedDirs are the directories read-only sessions may read (the warehouse).
	AllowedDirs []string
	// QueryTimeout bounds one query; 0 = no bound.
	QueryTimeout time.Duration
	// MaxRows cuts a result after this many rows (Result.Truncated says so); 0 = no cut.
	MaxRows int64
	// MemoryLimit is DuckDB's memory_limit ("2GB"); "" = DuckDB's default.
	MemoryLimit string
	// Threads is DuckDB's thread count; 0 = DuckDB's default.
	Threads int
	// TempDir is where DuckDB spills what does not fit memory_limit; "" = DuckDB's
	// default (.tmp in the working directory). DuckDB itself allows access to it.
	TempDir string
	// Cache lists tables held in memory, indexed for point queries (see CacheTable);
	// their views read the copy, which follows the snapshot the view shows at each
	// Register/Refresh. nil = every view reads its Parquet files.
	Cache []CacheTable
	// Registry receives the query metrics; nil = no metrics.
	Registry *prometheus.Registry
	// Log; nil = slog.Default().
	Log *slog.Logger
}

// DefaultOptions are the settings of a local, unrestricted session.
func DefaultOptions() Options {
	return Options{QueryTimeout: 0, MaxRows: 0}
}

// Engine is one DuckDB database with the warehouse views; safe for concurrent queries.
type Engine struct {
	opts      Options
	connector *duckdb.Connector
	db        *dbsql.DB
	log       *slog.Logger
	metrics   *metrics

	mu          sync.Mutex // serialises Refresh; guards cache
	cache       map[string]*cached
	cacheFailed map[string]string // table → view definition whose copy failed
	checked     readOnlyCache
	closeOnce   sync.Once
	closeErr    error
}

// Open creates the in-memory DuckDB database, applies the limits, registers the views and,
// in read-only mode, locks file access and configuration.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	duck, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("cannot open DuckDB: %w", err)
	}
	e := &Engine{opts: opts, connector: duck, db: dbsql.OpenDB(connector{duck}), log: opts.Log}
	e.db.SetMaxIdleConns(maxIdleConns)
	if e.log == nil {
		e.log = slog.Default()
	}
	if opts.Registry != nil {
		e.metrics = newMetrics(opts.Registry)
	}
	if err := e.setup(ctx); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Engine) setup(ctx context.Context) error {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("cannot connect to DuckDB: %w", err)
	}
	defer conn.Close()
	var settings []string
	// Never download extensions: parquet, json, icu and core_functions are built in.
	settings = append(settings, "SET autoinstall_known_extensions=false", "SET autoload_known_extensions=false")
	// Warehouse files are immutable once committed (a snapshot names new files), so their
	// Parquet footers can be cached: point queries then skip re-reading metadata.
	settings = append(settings, "SET parquet_metadata_cache=true")
	if e.opts.MemoryLimit != "" {
		settings = append(settings, "SET memory_limit="+quote(e.opts.MemoryLimit))
	}
	if e.opts.Threads > 0 {
		settings = append(settings, fmt.Sprintf("SET threads=%d", e.opts.Threads))
	}
	if e.opts.TempDir != "" {
		settings = append(settings, "SET temp_directory="+quote(e.opts.TempDir))
	}
	for _, s := range settings {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("cannot apply %q: %w", s, err)
		}
	}
	if e.opts.Register != nil {
		if err := e.register(ctx, conn); err != nil {
			return fmt.Errorf("cannot register warehouse views: %w", err)
		}
	}
	if !e.opts.ReadOnly {
		return nil
	}
	// Measured with DuckDB 1.5: enable_external_access=false alone also blocks the
	// warehouse's own files, so allowed_directories comes first; COPY TO inside an allowed
	// directory still writes, which the statement check (guard.go) refuses.
	dirs := make([]string, 0, len(e.opts.AllowedDirs))
	for _, d := range e.opts.AllowedDirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return fmt.Errorf("cannot resolve allowed directory %q: %w", d, err)
		}
		dirs = append(dirs, quote(strings.TrimRight(abs, "/")+"/"))
	}
	lock := []string{
		"SET allowed_directories=[" + strings.Join(dirs, ", ") + "]",
		"SET enable_external_access=false",
		"SET lock_configuration=true",
	}
	if len(dirs) == 0 {
		lock = lock[1:]
	}
	for _, s := range lock {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("cannot apply %q: %w", s, err)
		}
	}
	return nil
}

// Refresh re-registers the views (after the warehouse committed a new snapshot).
func (e *Engine) Refresh(ctx context.Context) error {
	if e.opts.Register == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("cannot connect to DuckDB: %w", err)
	}
	defer conn.Close()
	if err := e.register(ctx, conn); err != nil {
		return fmt.Errorf("cannot refresh warehouse views: %w", err)
	}
	return nil
}

// DB is the underlying database, for trusted in-process callers (explore, benchmarks).
// Statements run through it skip the read-only check and the limits.
func (e *Engine) DB() *dbsql.DB { return e.db }

// Options returns the options the engine was opened with.
func (e *Engine) Options() Options { return e.opts }

// Close closes the database; safe to call twice.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		e.closeErr = errors.Join(e.db.Close(), e.connector.Close())
	})
	return e.closeErr
}

// rawConn runs f with the DuckDB driver connection behind dc.
func rawConn(dc *dbsql.Conn, f func(*stmtConn) error) error {
	return dc.Raw(func(raw any) error {
		c, ok := raw.(*stmtConn)
		if !ok {
			return fmt.Errorf("BUG: driver connection is %T, not *sql.stmtConn", raw)
		}
		return f(c)
	})
}

// quote is a SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// QuoteIdent is a SQL identifier, quoted.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// QuoteString is a SQL string literal.
func QuoteString(s string) string { return quote(s) }

var _ driver.Conn = (*duckdb.Conn)(nil)
