package main

import (
	"context"
	"crypto/tls"
	dbsql "database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/internal/admin"
	"github.com/tagpipe/tagpipe/internal/lifecycle"
	tsql "github.com/tagpipe/tagpipe/sql"
	"github.com/tagpipe/tagpipe/sql/httpapi"
	"github.com/tagpipe/tagpipe/sql/pgwire"
	"github.com/tagpipe/tagpipe/sql/repl"
	"github.com/tagpipe/tagpipe/warehouse"
	"github.com/tagpipe/tagpipe/warehouse/duckbridge"
)

// warehouseViews is the RegisterFunc over the configured warehouse: one view per table
// over its current snapshot (warehouse/duckbridge), or over the snapshot that was
// current at asOf (RFC 3339 time, "YYYY-MM-DD HH:MM:SS" or a date, UTC). Tables without
// a snapshot (yet, or at asOf) get no view.
func warehouseViews(w *warehouse.Warehouse) tsql.RegisterFunc {
	return func(ctx context.Context, conn *dbsql.Conn, asOf string) error {
		var at time.Time
		if asOf != "" {
			var err error
			if at, err = parseAsOf(asOf); err != nil {
				return err
			}
		}
		tables, err := w.Tables()
		if err != nil {
			return err
		}
		for _, t := range tables {
			var s *warehouse.Snapshot
			if asOf == "" {
				s, err = t.Current()
			} else {
				s, err = t.AsOf(at)
			}
			if errors.Is(err, warehouse.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := duckbridge.RegisterSnapshot(ctx, conn, s, t.Name()); err != nil {
				return err
			}
		}
		return nil
	}
}

func parseAsOf(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--as-of %q: want an RFC 3339 time, \"YYYY-MM-DD HH:MM:SS\" or a date (UTC)", s)
}

// globDir is the directory a path or glob reads below.
func globDir(p string) string {
	if i := strings.IndexAny(p, "*?["); i >= 0 {
		p = p[:i]
		return filepath.Dir(p + "x")
	}
	return filepath.Dir(p)
}

// parseViews reads --view name=path flags.
func parseViews(specs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range specs {
		name, path, ok := strings.Cut(s, "=")
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("--view %q: want NAME=PATH", s)
		}
		out[name] = path
	}
	return out, nil
}

// sqlEngine opens a DuckDB engine over the warehouse with the configured limits;
// remote engines are read-only and bounded by query_timeout and max_rows.
func sqlEngine(ctx context.Context, a *app, remote bool, asOf string, views map[string]string, reg *prometheus.Registry, mods ...func(*tsql.Options)) (*tsql.Engine, error) {
	w, err := openWarehouse(a, true)
	if err != nil {
		return nil, err
	}
	c := a.cfg.SQL
	opts := tsql.DefaultOptions()
	opts.Register = tsql.Chain(warehouseViews(w), tsql.FileViews(views))
	if len(views) == 0 {
		opts.Register = warehouseViews(w)
	}
	opts.AsOf = asOf
	opts.MemoryLimit, opts.Threads = c.MemoryLimit, c.Threads
	opts.TempDir = a.cfg.Path("sql", "tmp")
	opts.Registry, opts.Log = reg, a.log
	if remote {
		opts.ReadOnly = true
		opts.AllowedDirs = []string{w.Root()}
		for _, p := range views {
			opts.AllowedDirs = append(opts.AllowedDirs, globDir(p))
		}
		opts.QueryTimeout, opts.MaxRows = c.QueryTimeout, c.MaxRows
	}
	for _, mod := range mods {
		mod(&opts)
	}
	return tsql.Open(ctx, opts)
}

// sqlServers builds the SQL endpoints for a server process: the PostgreSQL listener (when
// sql.pg_listen is set), the view refresher, and the /v1/query handler to mount on the
// admin listener. close releases the engine after the components stopped.
func sqlServers(ctx context.Context, a *app, reg *prometheus.Registry, views map[string]string) (mount func(*admin.Server), comps []lifecycle.Component, close func() error, err error) {
	// Only the servers hold sql.cache_tables in memory: they answer point queries all
	// day, where a one-shot `tagpipe sql` would pay the copy for one query.
	e, err := sqlEngine(ctx, a, true, "", views, reg, func(o *tsql.Options) {
		for _, ct := range a.cfg.SQL.CacheTables {
			table, key, _ := strings.Cut(ct, ".")
			o.Cache = append(o.Cache, tsql.CacheTable{Table: table, Key: key})
		}
	})
	if err != nil {
		return nil, nil, nil, err
	}
	c := a.cfg.SQL
	comps = append(comps, tsql.NewRefresher(e, c.RefreshInterval, a.log))
	if c.PGListen != "" {
		o := pgwire.DefaultOptions()
		o.Listen, o.User, o.Password, o.Auth = c.PGListen, c.User, c.Password, c.PasswordAuth
		o.Registry, o.Log = reg, a.log
		if c.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
			if err != nil {
				e.Close()
				return nil, nil, nil, fmt.Errorf("cannot load sql.tls_cert/tls_key: %w", err)
			}
			o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		comps = append(comps, pgwire.New(e, o))
	}
	ho := httpapi.DefaultOptions()
	ho.User, ho.Password, ho.Log = c.User, c.Password, a.log
	h := httpapi.New(e, ho)
	mount = func(s *admin.Server) { s.Handle("POST /v1/query", h) }
	return mount, comps, e.Close, nil
}

func init() {
	register(func(a *app) *cobra.Command {
		var (
			execute, file, format, out, asOf string
			nullValue, separator             string
			views                            []string
			timing, readOnly, noHeader, bail bool
		)
		// DuckDB's -csv, -box, … are --csv, --box, … here (pflag reads -csv as -c -s -v).
		shortcuts := map[string]*bool{}
		cmd := &cobra.Command{
			Use:   "sql",
			Short: "Query the warehouse with DuckDB SQL: a shell, -e STATEMENT or -f FILE",
			Long: `Queries the warehouse with DuckDB SQL. Every warehouse table is a view over its
newest snapshot (or the one current at --as-of). Without -e or -f, an interactive shell
starts on a terminal (statements end with ';'; dot commands as DuckDB's CLI has them:
.tables, .schema, .mode, .output, .once, .read, .maxrows, .show, .help, …), or a script
is read from stdin. Scripts (-e, -f, stdin) may hold dot commands, one a line.
Output modes (--format MODE, or --MODE):
  ` + strings.Join(repl.Modes, ", ") + `
and --format parquet, written to --out FILE. 'tagpipe sql serve' runs the PostgreSQL
wire endpoint and POST /v1/query.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx := cmd.Context()
				vm, err := parseViews(views)
				if err != nil {
					return err
				}
				e, err := sqlEngine(ctx, a, readOnly, asOf, vm, nil)
				if err != nil {
					return err
				}
				defer e.Close()
				if len(vm) == 0 {
					warnEmptyWarehouse(a, cmd.ErrOrStderr())
				}
				for m, on := range shortcuts {
					if *on {
						format = m
					}
				}
				hist := ""
				if home, err := os.UserHomeDir(); err == nil {
					hist = filepath.Join(home, ".tagpipe_sql_history")
				}
				opts := repl.Options{Format: format, OutFile: out, Timing: timing, Out: cmd.OutOrStdout(),
					Err: cmd.ErrOrStderr(), HistoryFile: hist, MaxWidth: 60, NoHeader: noHeader, Bail: bail,
					Separator: repl.Unescape(separator)}
				if cmd.Flags().Changed("nullvalue") {
					v := repl.Unescape(nullValue)
					opts.NullValue = &v
				}
				sh := repl.New(e, opts)
				switch {
				case execute != "" && file != "":
					return errors.New("give -e or -f, not both")
				case execute != "":
					return sh.Exec(ctx, execute)
				case file != "":
					b, err := os.ReadFile(file)
					if err != nil {
						return err
					}
					return sh.Exec(ctx, string(b))
				case repl.IsTerminal(os.Stdin):
					fmt.Fprintln(cmd.ErrOrStderr(), "tagpipe sql — DuckDB over the warehouse. End statements with ';', .help for commands.")
					return sh.Interactive(ctx, os.Stdin, cmd.OutOrStdout())
				default:
					return sh.Run(ctx, cmd.InOrStdin(), nil)
				}
			},
		}
		f := cmd.Flags()
		f.StringVarP(&execute, "execute", "e", "", "run these statements and exit")
		f.StringVarP(&file, "file", "f", "", "run the statements in FILE and exit")
		f.StringVar(&format, "format", "table", "output: "+strings.Join(repl.Formats, ", ")+" (parquet needs --out)")
		modeFlags := []string{"format"}
		for _, m := range repl.Modes {
			if m == "insert" { // needs a table name: --format insert or .mode insert TABLE
				continue
			}
			shortcuts[m] = f.Bool(m, false, "same as --format "+m)
			modeFlags = append(modeFlags, m)
		}
		cmd.MarkFlagsMutuallyExclusive(modeFlags...)
		f.StringVarP(&out, "out", "o", "", "write the results to this file (required by --format parquet)")
		f.BoolVar(&noHeader, "no-header", false, "leave out the column names (.headers off)")
		f.StringVar(&nullValue, "nullvalue", "", "how NULL prints (default NULL in table and box, empty elsewhere; .nullvalue)")
		f.StringVar(&separator, "separator", "", `column separator of csv, list and tabs, e.g. ';' or '\t' (.separator)`)
		f.BoolVar(&bail, "bail", false, "stop a script read from stdin at the first error (-e and -f do unless it says .bail off)")
		f.StringVar(&asOf, "as-of", "", "show every table as of this time (RFC 3339, 'YYYY-MM-DD HH:MM:SS' or a date; UTC)")
		f.StringArrayVar(&views, "view", nil, "also show a CSV/JSON/Parquet file or glob as a view: NAME=PATH (repeatable)")
		f.BoolVar(&timing, "timing", false, "print each statement's run time")
		f.BoolVar(&readOnly, "read-only", false, "refuse writes and files outside the warehouse, as remote queries do")
		var serveViews []string
		serve := &cobra.Command{
			Use:   "serve",
			Short: "Serve SQL: PostgreSQL wire on sql.pg_listen and POST /v1/query on the admin listener",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				vm, err := parseViews(serveViews)
				if err != nil {
					return err
				}
				reg := admin.NewRegistry()
				mount, comps, closeEngine, err := sqlServers(cmd.Context(), a, reg, vm)
				if err != nil {
					return err
				}
				defer closeEngine()
				return a.serve(cmd.Context(), reg, mount, comps...)
			},
		}
		serve.Flags().StringArrayVar(&serveViews, "view", nil, "also serve a CSV/JSON/Parquet file or glob as a read-only view: NAME=PATH (repeatable)")
		cmd.AddCommand(runsUntilStopped(serve))
		return cmd
	})
}

// warnEmptyWarehouse says so when the warehouse has no tables: every query of one would
// fail with "Table with name … does not exist", most often because the data dir is
// another one than tagpipe up's (./tagpipe-data is relative to the working directory).
func warnEmptyWarehouse(a *app, stderr io.Writer) {
	w, err := openWarehouse(a, true)
	if err != nil {
		return
	}
	defer w.Close()
	if ts, err := w.Tables(); err == nil && len(ts) == 0 {
		fmt.Fprintf(stderr, "tagpipe: the warehouse %s has no tables yet: tagpipe up (or stream) writes them there; --data-dir names another data dir\n", w.Root())
	}
}
