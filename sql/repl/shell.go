package repl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// Options configure a Shell. The zero value prints tables with headers to stdout.
type Options struct {
	// Format is an output mode (Modes; table by default) or parquet.
	Format string
	// OutFile receives the results instead of Out, as .output does (each Exec or Run
	// writes it anew); parquet needs it.
	OutFile string
	// Timing prints each statement's run time to Err.
	Timing bool
	// MaxWidth cuts table and box cells longer than this many characters; 0 = never.
	MaxWidth int
	// MaxRows shows the first and last MaxRows/2 rows of longer results in table and box
	// modes; 0 = all (Interactive starts at 40, DuckDB's default, instead).
	MaxRows int
	// Width narrows the widest table or box columns until a row fits this many terminal
	// columns; 0 = no limit (Interactive uses the terminal's width).
	Width int
	// NoHeader leaves the column names out (DuckDB's -noheader).
	NoHeader bool
	// NullValue is how NULL prints; nil = each mode's own (NULL in table and box, empty
	// elsewhere). JSON and INSERT statements always write null/NULL.
	NullValue *string
	// Separator is the column separator of csv, list and tabs; "" = the mode's own.
	Separator string
	// Bail stops Run at the first error (Exec always starts with it on).
	Bail bool
	// Echo prints every statement and dot command before it runs.
	Echo bool
	// HistoryFile keeps interactive statements across sessions; "" = none.
	HistoryFile string
	Out, Err    io.Writer
}

// Shell runs statements on an engine and prints their results. Dot commands change its
// settings; one Shell serves one session (it is not safe for concurrent use).
type Shell struct {
	e      *tsql.Engine
	opts   Options
	now    func() time.Time
	record func(string) // adds a complete statement or command to the history

	mode           string // a Modes entry or parquet
	insertTable    string // quoted, for .mode insert
	headers        bool
	null           *string
	colSep, rowSep string
	maxRows        int
	timing         bool
	bail, echo     bool
	quit           bool // .quit was read: every script level stops

	file, once         *os.File // .output and .once targets; nil = Out
	fileName, onceName string
	depth              int             // .read nesting
	reserved           map[string]bool // DuckDB's reserved words, read on first need
}

// New returns a shell; Out and Err default to stdout and stderr.
func New(e *tsql.Engine, opts Options) *Shell {
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Err == nil {
		opts.Err = os.Stderr
	}
	s := &Shell{e: e, opts: opts, now: time.Now, headers: !opts.NoHeader, null: opts.NullValue,
		maxRows: opts.MaxRows, timing: opts.Timing, bail: opts.Bail, echo: opts.Echo,
		insertTable: `"table"`}
	if m, ok := canonicalMode(opts.Format); ok {
		s.mode = m
	} else if opts.Format == "parquet" {
		s.mode = "parquet"
	} else {
		s.mode = opts.Format // refused by Exec and Run
	}
	s.colSep, s.rowSep = defaultSeparator(s.mode), "\n"
	if opts.Separator != "" {
		s.colSep = opts.Separator
	}
	return s
}

// begin checks the options and opens --out for the text modes.
func (s *Shell) begin() error {
	if _, ok := renderers[s.mode]; !ok && s.mode != "parquet" {
		return fmt.Errorf("unknown format %q: want one of %s", s.mode, strings.Join(Formats, ", "))
	}
	s.quit = false
	if s.mode != "parquet" && s.opts.OutFile != "" && s.file == nil {
		return s.setOutput(s.opts.OutFile)
	}
	return nil
}

// end closes the output files; the shell writes to Out again.
func (s *Shell) end() error {
	err := s.setOnce("")
	if e := s.setOutput(""); err == nil {
		err = e
	}
	return err
}

// Exec runs a script — statements and dot commands, as -e and -f give them — and stops
// at the first error unless the script turns .bail off; then it reports each error and
// returns the last.
func (s *Shell) Exec(ctx context.Context, script string) (err error) {
	if s.mode == "parquet" {
		n := 0
		var sp splitter
		for _, l := range strings.Split(script, "\n") {
			for _, it := range sp.feed(l) {
				if !it.dot {
					n++
				}
			}
		}
		if it, ok := sp.flush(); ok && !it.dot {
			n++
		}
		if n != 1 {
			return fmt.Errorf("--format parquet writes one query's result; got %d statements", n)
		}
	}
	if err := s.begin(); err != nil {
		return err
	}
	defer func() {
		if e := s.end(); err == nil {
			err = e
		}
	}()
	defer func(bail bool) { s.bail = bail }(s.bail)
	s.bail = true
	return unwrapReported(s.runLines(ctx, linesOf(strings.NewReader(script))))
}

// Run reads statements from in until EOF or .quit. Errors are printed and the shell goes
// on (unless .bail is on); it returns the last error so that scripts fail.
// readLine is given whether a statement is unfinished (for a continuation prompt); nil
// reads lines from in.
func (s *Shell) Run(ctx context.Context, in io.Reader, readLine func(cont bool) (string, error)) (err error) {
	if readLine == nil {
		readLine = linesOf(in)
	}
	if err := s.begin(); err != nil {
		return err
	}
	defer func() {
		if e := s.end(); err == nil {
			err = e
		}
	}()
	err = s.runLines(ctx, readLine)
	var rep reported
	if err != nil && !errors.As(err, &rep) {
		s.report(err)
	}
	return unwrapReported(err)
}

// linesOf reads lines from r (up to 16 MiB each).
func linesOf(r io.Reader) func(bool) (string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return func(bool) (string, error) {
		if !sc.Scan() {
			if sc.Err() != nil {
				return "", sc.Err()
			}
			return "", io.EOF
		}
		return sc.Text(), nil
	}
}

// reported is an error already printed to Err.
type reported struct{ error }

func (r reported) Unwrap() error { return r.error }

func unwrapReported(err error) error {
	var rep reported
	if errors.As(err, &rep) {
		return rep.error
	}
	return err
}

// runLines runs the statements and dot commands readLine gives. With .bail on it stops
// at the first error and returns it unreported; otherwise it reports each error, goes on,
// and returns the last one marked reported.
func (s *Shell) runLines(ctx context.Context, readLine func(cont bool) (string, error)) error {
	var sp splitter
	var lastErr error
	do := func(it item) error {
		if s.record != nil && s.depth == 0 {
			s.record(it.String())
		}
		if s.echo {
			fmt.Fprintln(s.cmdOut(), it.String())
		}
		var err error
		if it.dot {
			err = s.dot(ctx, it.text)
		} else {
			err = s.statement(ctx, it.text)
		}
		if err == nil {
			return nil
		}
		if s.bail {
			return err
		}
		var rep reported
		if !errors.As(err, &rep) {
			s.report(err)
		}
		lastErr = reported{unwrapReported(err)}
		return nil
	}
	for !s.quit {
		line, err := readLine(sp.pending())
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return err
			}
			if it, ok := sp.flush(); ok {
				if err := do(it); err != nil {
					return err
				}
			}
			break
		}
		for _, it := range sp.feed(line) {
			if err := do(it); err != nil {
				return err
			}
			if s.quit {
				break
			}
		}
	}
	return lastErr
}

// item is one statement (without its ';') or one dot command line.
type item struct {
	text string
	dot  bool
}

// String is the item as typed: what history and .echo show.
func (it item) String() string {
	if it.dot {
		return it.text
	}
	return it.text + ";"
}

// splitter cuts input lines into items: a line starting with '.' outside a statement
// is a dot command; statements end with ';' and may span lines.
type splitter struct{ buf strings.Builder }

func (sp *splitter) pending() bool { return sp.buf.Len() > 0 }

func (sp *splitter) feed(line string) []item {
	if !sp.pending() && strings.HasPrefix(strings.TrimSpace(line), ".") {
		return []item{{text: strings.TrimSpace(line), dot: true}}
	}
	sp.buf.WriteString(line)
	sp.buf.WriteString("\n")
	text := sp.buf.String()
	stmts, rest, inComment := tsql.SplitOpen(text)
	sp.buf.Reset()
	switch {
	case rest != "":
		sp.buf.WriteString(rest)
		sp.buf.WriteString("\n")
	case inComment:
		// Split drops a /* comment that is still open; the lines after it belong to it.
		if len(stmts) == 0 {
			sp.buf.WriteString(text)
		} else {
			sp.buf.WriteString("/*\n")
		}
	}
	items := make([]item, len(stmts))
	for i, q := range stmts {
		items[i] = item{text: q}
	}
	return items
}

// flush is the unfinished statement at the end of the input, if any (an open comment
// alone is none).
func (sp *splitter) flush() (item, bool) {
	_, rest := tsql.Split(sp.buf.String())
	sp.buf.Reset()
	return item{text: rest}, rest != ""
}

// cmdOut is where dot commands print: the .output file or Out.
func (s *Shell) cmdOut() io.Writer {
	if s.file != nil {
		return s.file
	}
	return s.opts.Out
}

// style is the current settings for a result going to a file (redirected) or to Out.
// Row limits and cell cuts are for reading on the screen: a file gets everything.
func (s *Shell) style(redirected bool) *style {
	st := &style{mode: s.mode, table: s.insertTable, headers: s.headers, colSep: s.colSep, rowSep: s.rowSep}
	if s.null != nil {
		st.null = *s.null
	} else {
		st.null = defaultNull(s.mode)
	}
	if !redirected {
		st.maxRows, st.maxWidth, st.termWidth = s.maxRows, s.opts.MaxWidth, s.opts.Width
	}
	return st
}

// statement runs one statement and prints its result.
func (s *Shell) statement(ctx context.Context, q string) error {
	w, redirected := s.opts.Out, false
	if s.once != nil {
		w, redirected = s.once, true
		defer func() { _ = s.setOnce("") }()
	} else if s.file != nil {
		w, redirected = s.file, true
	}
	start := s.now()
	var err error
	if s.mode == "parquet" {
		err = s.parquet(ctx, q)
	} else {
		render, st := renderers[s.mode], s.style(redirected)
		err = s.e.Query(ctx, q, nil, func(res *tsql.Result) error {
			if len(res.Columns) == 0 {
				return nil
			}
			return render(w, res, st)
		})
	}
	if s.timing {
		fmt.Fprintf(s.opts.Err, "Time: %.3f ms\n", float64(s.now().Sub(start).Microseconds())/1000)
	}
	return err
}

// setOutput sends results to path from now on ("" = back to Out).
func (s *Shell) setOutput(path string) error { return redirect(&s.file, &s.fileName, path) }

// setOnce sends the next statement's result to path ("" = none pending).
func (s *Shell) setOnce(path string) error { return redirect(&s.once, &s.onceName, path) }

// redirect points *f at a new file for path (nil for ""), closing the file it replaces.
func redirect(f **os.File, name *string, path string) error {
	nf, err := openOutput(path)
	if err != nil {
		return err
	}
	var cerr error
	if *f != nil {
		cerr = (*f).Close()
	}
	*f, *name = nf, path
	return cerr
}

func openOutput(path string) (*os.File, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open output %q: %w", path, err)
	}
	return f, nil
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
