package repl

import (
	"context"
	"io"
	"os"

	"golang.org/x/term"
)

// Interactive runs the shell on a terminal: raw mode, line editing, arrow-key history
// (persisted in Options.HistoryFile) and a continuation prompt inside a statement.
func (s *Shell) Interactive(ctx context.Context, in *os.File, out io.Writer) error {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		return s.Run(ctx, in, nil)
	}
	old, err := term.MakeRaw(fd)
	if err != nil {
		return s.Run(ctx, in, nil)
	}
	defer func() { _ = term.Restore(fd, old) }()
	t := term.NewTerminal(struct {
		io.Reader
		io.Writer
	}{in, out}, "tagpipe> ")
	if w, h, err := term.GetSize(fd); err == nil && w > 0 && h > 0 {
		_ = t.SetSize(w, h)
		if s.opts.Width == 0 {
			s.opts.Width = w
		}
	}
	if s.maxRows == 0 {
		s.maxRows = 40 // DuckDB's default on a terminal; .maxrows 0 shows everything
	}
	if s.opts.HistoryFile != "" {
		if h, err := OpenHistory(s.opts.HistoryFile, 1000); err == nil {
			// The terminal would record every line; the history keeps whole statements
			// (one line each), recorded when they are complete.
			t.History = statementsOnly{h}
			s.record = h.Add
		}
	}
	// The terminal translates \n to \r\n in raw mode.
	s.opts.Out, s.opts.Err = t, t
	return s.Run(ctx, nil, func(cont bool) (string, error) {
		if cont {
			t.SetPrompt("   ...> ")
		} else {
			t.SetPrompt("tagpipe> ")
		}
		return t.ReadLine()
	})
}

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// statementsOnly hands the terminal the history but ignores the terminal's per-line Add.
type statementsOnly struct{ *History }

func (statementsOnly) Add(string) {}
