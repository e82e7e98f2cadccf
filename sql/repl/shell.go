package repl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// Options configure a Shell.
type Options struct {
	// Format is table (default), csv, json or parquet.
	Format string
	// OutFile receives parquet output (and is required for it).
	OutFile string
	// Timing prints each statement's run time to Err.
	Timing bool
	// MaxWidth cuts table cells longer than this many characters; 0 = never.
	MaxWidth int
	// HistoryFile keeps interactive statements across sessions; "" = none.
	HistoryFile string
	Out, Err    io.Writer
}

// Shell runs statements on an engine and prints their results.
type Shell struct {
	e      *tsql.Engine
	opts   Options
	now    func() time.Time
	record func(string) // adds a complete statement or command to the history
}

// New returns a shell; Out and Err default to stdout and stderr.
func New(e *tsql.Engine, opts Options) *Shell {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Err == nil {
		opts.Err = os.Stderr
	}
	if opts.Format == "" {
		opts.Format = "table"
	}
	return &Shell{e: e, opts: opts, now: time.Now}
}

// Exec runs every statement of script in order and stops at the first error.
func (s *Shell) Exec(ctx context.Context, script string) error {
	stmts, rest := tsql.Split(script)
	if rest != "" {
		stmts = append(stmts, rest)
	}
	if s.opts.Format == "parquet" && len(stmts) != 1 {
		return fmt.Errorf("--format parquet writes one query's result; got %d statements", len(stmts))
	}
	for _, q := range stmts {
		if err := s.statement(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// statement runs one statement (or dot command) and prints its result.
func (s *Shell) statement(ctx context.Context, q string) error {
	if strings.HasPrefix(strings.TrimSpace(q), ".") {
		return s.dot(ctx, strings.TrimSpace(q))
	}
	start := s.now()
	var err error
	if s.opts.Format == "parquet" {
		err = s.parquet(ctx, q)
	} else {
		var r renderer
		r, err = rendererFor(s.opts.Format, s.opts.MaxWidth)
		if err == nil {
			err = s.e.Query(ctx, q, nil, func(res *tsql.Result) error {
				if len(res.Columns) == 0 {
					return nil
				}
				return r.render(s.opts.Out, res)
			})
		}
	}
	if s.opts.Timing {
		fmt.Fprintf(s.opts.Err, "Time: %.3f ms\n", float64(s.now().Sub(start).Microseconds())/1000)
	}
	return err
}

// parquet writes the query's result with DuckDB's Parquet writer.
func (s *Shell) parquet(ctx context.Context, q string) error {
	if s.opts.OutFile == "" {
		return errors.New("--format parquet needs --out FILE")
	}
	abs, err := filepath.Abs(s.opts.OutFile)
	if err != nil {
		return err
	}
	copyQ := "COPY (" + q + ") TO " + tsql.QuoteString(abs) + " (FORMAT parquet, COMPRESSION zstd)"
	return s.e.Query(ctx, copyQ, nil, func(res *tsql.Result) error {
		for res.Next() {
			fmt.Fprintf(s.opts.Err, "wrote %s rows to %s\n", tsql.Format(res.Values()[0], ""), s.opts.OutFile)
		}
		return nil
	})
}

var errQuit = errors.New("quit")

func (s *Shell) dot(ctx context.Context, line string) error {
	f := strings.Fields(line)
	switch f[0] {
	case ".quit", ".exit", ".q":
		return errQuit
	case ".help":
		fmt.Fprint(s.opts.Out, `Statements end with ';' and may span lines.
.tables              list tables
.schema [TABLE]      columns and types of one table, or of all
.mode table|csv|json output format
.timing on|off       print each statement's run time
.quit                leave (Ctrl-D too)
`)
		return nil
	case ".tables":
		return s.listTables(ctx)
	case ".schema":
		tables := f[1:]
		if len(tables) == 0 {
			names, err := s.tableNames(ctx)
			if err != nil {
				return err
			}
			tables = names
		}
		for _, t := range tables {
			if err := s.describe(ctx, t); err != nil {
				return err
			}
		}
		return nil
	case ".mode":
		if len(f) != 2 {
			fmt.Fprintf(s.opts.Out, "mode: %s\n", s.opts.Format)
			return nil
		}
		if _, err := rendererFor(f[1], 0); err != nil {
			return err
		}
		s.opts.Format = f[1]
		return nil
	case ".timing":
		s.opts.Timing = len(f) < 2 || f[1] == "on"
		return nil
	}
	return fmt.Errorf("unknown command %s (try .help)", f[0])
}

func (s *Shell) tableNames(ctx context.Context) ([]string, error) {
	var names []string
	err := s.e.Query(ctx, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1", nil,
		func(res *tsql.Result) error {
			for res.Next() {
				names = append(names, res.Values()[0].(string))
			}
			return nil
		})
	return names, err
}

func (s *Shell) listTables(ctx context.Context) error {
	names, err := s.tableNames(ctx)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(s.opts.Out, n)
	}
	return nil
}

func (s *Shell) describe(ctx context.Context, table string) error {
	fmt.Fprintf(s.opts.Out, "%s\n", table)
	r := tableRenderer{}
	return s.e.Query(ctx, "SELECT column_name, column_type, \"null\" AS nullable FROM (DESCRIBE "+tsql.QuoteIdent(table)+")", nil,
		func(res *tsql.Result) error { return r.render(s.opts.Out, res) })
}

// Run reads statements from in until EOF or .quit. Errors are printed and the shell goes
// on; it returns the last error for a non-interactive run so scripts fail.
// readLine is given whether a statement is unfinished (for a continuation prompt); nil
// reads lines from in.
func (s *Shell) Run(ctx context.Context, in io.Reader, readLine func(cont bool) (string, error)) error {
	var lastErr error
	if readLine == nil {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		readLine = func(bool) (string, error) {
			if !sc.Scan() {
				if sc.Err() != nil {
					return "", sc.Err()
				}
				return "", io.EOF
			}
			return sc.Text(), nil
		}
	}
	var buf strings.Builder
	for {
		line, err := readLine(buf.Len() > 0)
		if err != nil {
			if errors.Is(err, io.EOF) {
				if rest := strings.TrimSpace(buf.String()); rest != "" {
					if err := s.statement(ctx, rest); err != nil {
						s.report(err)
						lastErr = err
					}
				}
				return lastErr
			}
			return err
		}
		if buf.Len() == 0 && strings.HasPrefix(strings.TrimSpace(line), ".") {
			if s.record != nil {
				s.record(line)
			}
			if err := s.dot(ctx, strings.TrimSpace(line)); err != nil {
				if errors.Is(err, errQuit) {
					return lastErr
				}
				s.report(err)
				lastErr = err
			}
			continue
		}
		buf.WriteString(line)
		buf.WriteString("\n")
		stmts, rest := tsql.Split(buf.String())
		buf.Reset()
		buf.WriteString(rest)
		if rest != "" {
			buf.WriteString("\n")
		}
		for _, q := range stmts {
			if s.record != nil {
				s.record(q + ";")
			}
			if err := s.statement(ctx, q); err != nil {
				s.report(err)
				lastErr = err
			}
		}
	}
}

// report prints an error; a SQL error shows where in the statement it is.
func (s *Shell) report(err error) {
	var qe *tsql.Error
	if errors.As(err, &qe) {
		fmt.Fprintf(s.opts.Err, "Error: %s\n", qe.Error())
		return
	}
	fmt.Fprintf(s.opts.Err, "Error: %v\n", err)
}

// History is a line history kept in a file, one statement per line (newlines inside a
// statement are stored as spaces). It implements golang.org/x/term's History.
type History struct {
	mu    sync.Mutex
	path  string
	lines []string // oldest first
	max   int
}

// OpenHistory loads path (missing is fine) and keeps at most max entries.
func OpenHistory(path string, max int) (*History, error) {
	h := &History{path: path, max: max}
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("cannot read history %q: %w", path, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			h.lines = append(h.lines, l)
		}
	}
	if len(h.lines) > max {
		h.lines = h.lines[len(h.lines)-max:]
	}
	return h, nil
}

// Add records a line in memory and appends it to the file.
func (h *History) Add(entry string) {
	entry = strings.TrimSpace(strings.ReplaceAll(entry, "\n", " "))
	if entry == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.lines); n > 0 && h.lines[n-1] == entry {
		return
	}
	h.lines = append(h.lines, entry)
	if len(h.lines) > h.max {
		h.lines = h.lines[1:]
	}
	if h.path == "" {
		return
	}
	f, err := os.OpenFile(h.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	_, _ = f.WriteString(entry + "\n")
	_ = f.Close()
}

// Len is the number of entries.
func (h *History) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.lines)
}

// At returns entry idx, 0 being the most recent.
func (h *History) At(idx int) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lines[len(h.lines)-1-idx]
}
