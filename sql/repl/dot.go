package repl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// dotCommand is one of the shell's dot commands; .help is made from this table.
type dotCommand struct {
	names []string // the first is the one .help shows
	usage string   // arguments
	help  string
	run   func(s *Shell, ctx context.Context, args []string) error
}

var dotCommands []dotCommand

func init() {
	dotCommands = []dotCommand{
		{[]string{".bail"}, "on|off", "stop a script at the first error (on for -e and -f, off in the shell)", setFlag(func(s *Shell) *bool { return &s.bail })},
		{[]string{".echo"}, "on|off", "print each statement and command before it runs", setFlag(func(s *Shell) *bool { return &s.echo })},
		{[]string{".headers", ".header"}, "on|off", "column names in table, box, csv, list, tabs, markdown and html output", setFlag(func(s *Shell) *bool { return &s.headers })},
		{[]string{".help"}, "", "this list", (*Shell).help},
		{[]string{".maxrows"}, "N", "table and box show the first and last N/2 rows of longer results; 0 = all", (*Shell).setMaxRows},
		{[]string{".mode"}, "[MODE [TABLE]]", "output mode: " + strings.Join(Modes, ", ") + " (insert INTO TABLE); none: show it", (*Shell).setMode},
		{[]string{".nullvalue"}, "TEXT", "how NULL prints (default NULL in table and box, empty elsewhere)", (*Shell).setNull},
		{[]string{".once"}, "FILE", "write the next statement's result to FILE", (*Shell).setOnceCmd},
		{[]string{".output"}, "[FILE]", "write results to FILE; no FILE: back to the screen", (*Shell).setOutputCmd},
		{[]string{".quit", ".exit", ".q"}, "", "leave (.exit too; Ctrl-D on an empty line)", func(s *Shell, _ context.Context, _ []string) error { s.quit = true; return nil }},
		{[]string{".read"}, "FILE", "run the statements and commands in FILE", (*Shell).read},
		{[]string{".schema"}, "[TABLE ...]", "columns and types of the tables (all without TABLE)", (*Shell).schema},
		{[]string{".separator"}, "COL [ROW]", `column (and row) separator of csv, list and tabs; \t and \n work`, (*Shell).setSeparator},
		{[]string{".show"}, "", "current settings", (*Shell).show},
		{[]string{".tables"}, "", "list the tables", (*Shell).listTables},
		{[]string{".timing"}, "on|off", "print each statement's run time", setFlag(func(s *Shell) *bool { return &s.timing })},
	}
}

func (s *Shell) dot(ctx context.Context, line string) error {
	args := splitArgs(line)
	for _, c := range dotCommands {
		for _, n := range c.names {
			if n == args[0] {
				return c.run(s, ctx, args[1:])
			}
		}
	}
	return fmt.Errorf("unknown command %s (try .help)", args[0])
}

// splitArgs cuts a dot command line at spaces; '…' and "…" keep spaces in an argument.
func splitArgs(line string) []string {
	var args []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		args = append(args, cur.String())
	}
	return args
}

// Unescape resolves \t, \n, \r, \\ and \" in a separator or NULL text, as .separator and
// .nullvalue (and their flags) take them.
func Unescape(s string) string {
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n", `\r`, "\r", `\\`, `\`, `\"`, `"`).Replace(s)
}

func setFlag(field func(s *Shell) *bool) func(*Shell, context.Context, []string) error {
	return func(s *Shell, _ context.Context, args []string) error {
		if len(args) == 0 {
			*field(s) = true
			return nil
		}
		switch strings.ToLower(args[0]) {
		case "on", "yes", "true", "1":
			*field(s) = true
		case "off", "no", "false", "0":
			*field(s) = false
		default:
			return fmt.Errorf("want on or off, not %q", args[0])
		}
		return nil
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func (s *Shell) help(_ context.Context, _ []string) error {
	w := s.cmdOut()
	fmt.Fprintln(w, "Statements end with ';' and may span lines; a dot command is one line.")
	for _, c := range dotCommands {
		fmt.Fprintf(w, "%-24s %s\n", c.names[0]+" "+c.usage, c.help)
	}
	return nil
}

func (s *Shell) setMaxRows(_ context.Context, args []string) error {
	if len(args) != 1 {
		fmt.Fprintf(s.cmdOut(), "maxrows: %d\n", s.maxRows)
		return nil
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 0 {
		return fmt.Errorf(".maxrows wants a number of rows (0 = all), not %q", args[0])
	}
	s.maxRows = n
	return nil
}

func (s *Shell) setMode(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(s.cmdOut(), "current output mode: %s\n", s.modeString())
		return nil
	}
	if len(args) > 2 {
		return errors.New("usage: .mode MODE [TABLE]")
	}
	m, ok := canonicalMode(args[0])
	if !ok {
		if args[0] == "parquet" {
			return errors.New("parquet is not a .mode: use --format parquet --out FILE, or COPY … TO 'f.parquet'")
		}
		return unknownMode(args[0])
	}
	if m == "insert" {
		name := "table"
		if len(args) > 1 {
			name = args[1]
		}
		q, err := s.quoteTable(ctx, name)
		if err != nil {
			return err
		}
		s.insertTable = q
	}
	s.mode = m
	s.colSep, s.rowSep = defaultSeparator(m), "\n"
	return nil
}

func (s *Shell) modeString() string {
	if s.mode == "insert" {
		return "insert " + s.insertTable
	}
	return s.mode
}

// quoteTable quotes name for INSERT INTO when it is not a plain word or DuckDB reserves it.
func (s *Shell) quoteTable(ctx context.Context, name string) (string, error) {
	if q := tsql.QuoteIdentIfNeeded(name); q != name {
		return q, nil
	}
	if s.reserved == nil {
		reserved := map[string]bool{}
		err := s.e.Query(ctx, "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'", nil,
			func(res *tsql.Result) error {
				for res.Next() {
					reserved[res.Values()[0].(string)] = true
				}
				return nil
			})
		if err != nil {
			return "", err
		}
		s.reserved = reserved
	}
	if s.reserved[name] {
		return tsql.QuoteIdent(name), nil
	}
	return name, nil
}

func (s *Shell) setNull(_ context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: .nullvalue TEXT")
	}
	v := Unescape(args[0])
	s.null = &v
	return nil
}

func (s *Shell) setSeparator(_ context.Context, args []string) error {
	if len(args) == 0 || len(args) > 2 || args[0] == "" {
		return errors.New("usage: .separator COL [ROW]")
	}
	s.colSep = Unescape(args[0])
	if len(args) == 2 {
		s.rowSep = Unescape(args[1])
	}
	return nil
}

func (s *Shell) setOnceCmd(_ context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: .once FILE")
	}
	return s.setOnce(args[0])
}

func (s *Shell) setOutputCmd(_ context.Context, args []string) error {
	if len(args) > 1 {
		return errors.New("usage: .output [FILE]")
	}
	if len(args) == 0 || args[0] == "stdout" {
		return s.setOutput("")
	}
	return s.setOutput(args[0])
}

// maxReadDepth bounds .read inside .read (a file that reads itself).
const maxReadDepth = 16

func (s *Shell) read(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: .read FILE")
	}
	if s.depth >= maxReadDepth {
		return fmt.Errorf(".read %s: files read each other more than %d deep", args[0], maxReadDepth)
	}
	f, err := os.Open(args[0])
	if err != nil {
		return fmt.Errorf("cannot read %q: %w", args[0], err)
	}
	defer f.Close()
	s.depth++
	defer func() { s.depth-- }()
	return s.runLines(ctx, linesOf(f))
}

func (s *Shell) show(_ context.Context, _ []string) error {
	null := defaultNull(s.mode)
	if s.null != nil {
		null = *s.null
	}
	output := "stdout"
	if s.file != nil {
		output = s.fileName
	}
	if s.once != nil {
		output += " (next result: " + s.onceName + ")"
	}
	maxRows := strconv.Itoa(s.maxRows)
	if s.maxRows == 0 {
		maxRows = "0 (all)"
	}
	w := s.cmdOut()
	for _, kv := range [][2]string{
		{"bail", onOff(s.bail)}, {"echo", onOff(s.echo)}, {"headers", onOff(s.headers)},
		{"mode", s.modeString()}, {"nullvalue", strconv.Quote(null)}, {"output", output},
		{"colseparator", strconv.Quote(s.colSep)}, {"rowseparator", strconv.Quote(s.rowSep)},
		{"maxrows", maxRows}, {"timing", onOff(s.timing)},
	} {
		fmt.Fprintf(w, "%12s: %s\n", kv[0], kv[1])
	}
	return nil
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

func (s *Shell) listTables(ctx context.Context, _ []string) error {
	names, err := s.tableNames(ctx)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(s.cmdOut(), n)
	}
	return nil
}

func (s *Shell) schema(ctx context.Context, tables []string) error {
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
}

func (s *Shell) describe(ctx context.Context, table string) error {
	w := s.cmdOut()
	fmt.Fprintf(w, "%s\n", table)
	st := &style{headers: true, null: "NULL"}
	return s.e.Query(ctx, "SELECT column_name, column_type, \"null\" AS nullable FROM (DESCRIBE "+tsql.QuoteIdent(table)+")", nil,
		func(res *tsql.Result) error { return renderTable(w, res, st) })
}
