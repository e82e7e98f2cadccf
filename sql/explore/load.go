package explore

import (
	"bufio"
	"context"
	dbsql "database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// errEnough stops reading at Options.MaxLines.
var errEnough = errors.New("line limit reached")

// maxLine bounds one raw line; longer lines are malformed.
const maxLine = 16 << 20

// eachLine calls fn with every line of file (without its line ending), numbered from 1.
func eachLine(file string, fn func(n int64, line string) error) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("cannot open %q: %w", file, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var n int64
	for sc.Scan() {
		n++
		if err := fn(n, strings.TrimSuffix(sc.Text(), "\r")); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("cannot read %q after line %d: %w", file, n, err)
	}
	return nil
}

func (p *Profile) reject(opts *Options, file string, line int64, reason, text string) {
	p.Malformed++
	if len(p.Rejects) < opts.Samples {
		if len(text) > 300 {
			text = text[:300] + "…"
		}
		p.Rejects = append(p.Rejects, Reject{File: file, Line: line, Reason: reason, Text: text})
	}
}

// sniffDelimiter picks the delimiter that splits the header most.
func sniffDelimiter(header string) rune {
	best, bestN := ',', 0
	for _, d := range []rune{',', '\t', ';', '|'} {
		if n := strings.Count(header, string(d)); n > bestN {
			best, bestN = d, n
		}
	}
	return best
}

// loadCSV reads CSV files one line per record (log files do not span records across
// lines), keeps the lines with the header's field count in a clean scratch file, infers
// each column's type and loads the rows whose values fit it into "data".
func loadCSV(ctx context.Context, conn *dbsql.Conn, files []string, tmp string, p *Profile, opts *Options) error {
	cleanPath := filepath.Join(tmp, "clean.csv")
	out, err := os.Create(cleanPath)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	cw := csv.NewWriter(bw)
	var header []string
	delim, hasHeader, err := sniffCSV(files[0], opts)
	if err != nil {
		return err
	}
	for fi, file := range files {
		first := hasHeader
		err := eachLine(file, func(n int64, line string) error {
			if strings.TrimSpace(line) == "" {
				return nil
			}
			if header == nil {
				h, err := parseLine(line, delim)
				if err != nil {
					return fmt.Errorf("cannot read the first line of %q: %v", file, err)
				}
				switch {
				case len(opts.Columns) > 0:
					if len(opts.Columns) != len(h) {
						return fmt.Errorf("%d column names given, but %q has %d fields", len(opts.Columns), file, len(h))
					}
					header = opts.Columns
				case hasHeader:
					header = h
				default:
					for i := range h {
						header = append(header, "column"+strconv.Itoa(i))
					}
				}
				if err := cw.Write(append([]string{"__file", "__line"}, header...)); err != nil {
					return err
				}
			}
			if first {
				first = false
				if fi == 0 {
					return nil
				}
				if h, err := parseLine(line, delim); err != nil || !sameHeader(h, files[0], delim) {
					return fmt.Errorf("%q has header %q, unlike %q", file, line, files[0])
				}
				return nil
			}
			if opts.MaxLines > 0 && p.Lines >= opts.MaxLines {
				return errEnough
			}
			p.Lines++
			rec, err := parseLine(line, delim)
			switch {
			case err != nil:
				p.reject(opts, file, n, err.Error(), line)
			case len(rec) != len(header):
				p.reject(opts, file, n, fmt.Sprintf("%d fields, want %d", len(rec), len(header)), line)
			default:
				return cw.Write(append([]string{strconv.Itoa(fi), strconv.FormatInt(n, 10)}, rec...))
			}
			return nil
		})
		if errors.Is(err, errEnough) {
			p.Truncated = true
			break
		}
		if err != nil {
			out.Close()
			return err
		}
	}
	cw.Flush()
	if err := errors.Join(cw.Error(), bw.Flush(), out.Close()); err != nil {
		return fmt.Errorf("cannot write scratch file: %w", err)
	}
	if header == nil {
		return errors.New("no header line: the files are empty")
	}
	if _, err := conn.ExecContext(ctx, "CREATE TABLE raw AS SELECT * FROM read_csv("+tsql.QuoteString(cleanPath)+
		", header=true, all_varchar=true, delim=',', quote='\"', escape='\"', auto_detect=false, columns={"+columnsSpec(header)+"})"); err != nil {
		return fmt.Errorf("cannot load the well-formed lines: %w", err)
	}
	types, err := inferTypes(ctx, conn, header, opts.Tolerance)
	if err != nil {
		return err
	}
	return typedTable(ctx, conn, files, header, types, p, opts)
}

// sniffCSV picks the delimiter and decides whether the first line is a header: it is
// when some column's first value is not a number while nearly all the values below it
// are (userId over 1, 2, 3 …); a file whose columns are all text is taken to have one.
// Options.Header "yes"/"no" overrides the guess.
func sniffCSV(file string, opts *Options) (rune, bool, error) {
	var lines []string
	errStop := errors.New("enough")
	err := eachLine(file, func(_ int64, line string) error {
		if strings.TrimSpace(line) != "" {
			lines = append(lines, line)
		}
		if len(lines) > 100 {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return 0, false, err
	}
	if len(lines) == 0 {
		return 0, false, fmt.Errorf("%q is empty", file)
	}
	delim := sniffDelimiter(lines[0])
	switch opts.Header {
	case "yes":
		return delim, true, nil
	case "no":
		return delim, false, nil
	}
	first, err := parseLine(lines[0], delim)
	if err != nil || len(lines) == 1 {
		return delim, true, nil
	}
	numeric := func(v string) bool {
		_, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return err == nil
	}
	anyNumeric := false
	for i, v := range first {
		num, n := 0, 0
		for _, l := range lines[1:] {
			rec, err := parseLine(l, delim)
			if err != nil || i >= len(rec) {
				continue
			}
			n++
			if numeric(rec[i]) {
				num++
			}
		}
		if n == 0 {
			continue
		}
		if numeric(v) {
			anyNumeric = true
		}
		if !numeric(v) && float64(num) >= 0.9*float64(n) {
			return delim, true, nil
		}
	}
	// No column contradicts the data below it: a header only if nothing in it is a number.
	return delim, !anyNumeric, nil
}

func sameHeader(h []string, file string, delim rune) bool {
	var first []string
	errStop := errors.New("enough")
	_ = eachLine(file, func(_ int64, line string) error {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		first, _ = parseLine(line, delim)
		return errStop
	})
	return strings.Join(h, "\x00") == strings.Join(first, "\x00")
}

func columnsSpec(header []string) string {
	parts := []string{"'__file': 'VARCHAR'", "'__line': 'VARCHAR'"}
	for _, h := range header {
		parts = append(parts, tsql.QuoteString(h)+": 'VARCHAR'")
	}
	return strings.Join(parts, ", ")
}

func parseLine(line string, delim rune) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	r.Comma = delim
	r.FieldsPerRecord = -1
	rec, err := r.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%v at column %d", pe.Err, pe.Column)
		}
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty record")
		}
		return nil, err
	}
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one record on the line")
	}
	return rec, nil
}

// candidate types, narrowest first, with the test a text value must pass.
var candidates = []struct {
	typ  string
	test string // %s is the column
	cast string
}{
	{"BOOLEAN", "lower(%s) IN ('true', 'false')", "TRY_CAST(%s AS BOOLEAN)"},
	{"BIGINT", "regexp_full_match(%s, '[+-]?[0-9]{1,18}')", "CASE WHEN regexp_full_match(%s, '[+-]?[0-9]{1,18}') THEN TRY_CAST(%s AS BIGINT) END"},
	{"DOUBLE", "TRY_CAST(%s AS DOUBLE) IS NOT NULL", "TRY_CAST(%s AS DOUBLE)"},
	{"DATE", "regexp_full_match(%s, '[0-9]{4}-[0-9]{2}-[0-9]{2}') AND TRY_CAST(%s AS DATE) IS NOT NULL", "CASE WHEN regexp_full_match(%s, '[0-9]{4}-[0-9]{2}-[0-9]{2}') THEN TRY_CAST(%s AS DATE) END"},
	{"TIMESTAMP", "regexp_matches(%s, '^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]') AND TRY_CAST(%s AS TIMESTAMP) IS NOT NULL", "CASE WHEN regexp_matches(%s, '^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]') THEN TRY_CAST(%s AS TIMESTAMP) END"},
}

func fill(format, col string) string { return strings.ReplaceAll(format, "%s", col) }

// inferTypes picks, per column, the narrowest type that all but a Tolerance share of its
// non-empty values fit.
func inferTypes(ctx context.Context, conn *dbsql.Conn, header []string, tol float64) ([]string, error) {
	var sel []string
	for _, h := range header {
		c := tsql.QuoteIdent(h)
		sel = append(sel, "count("+c+")")
		for _, cand := range candidates {
			sel = append(sel, "count(*) FILTER (WHERE "+fill(cand.test, c)+")")
		}
	}
	vals := make([]int64, len(sel))
	ptrs := make([]any, len(sel))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := conn.QueryRowContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM raw").Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("cannot infer column types: %w", err)
	}
	types := make([]string, len(header))
	stride := 1 + len(candidates)
	for i := range header {
		n := vals[i*stride]
		types[i] = "VARCHAR"
		if n == 0 {
			continue
		}
		allowed := int64(float64(n) * tol)
		for j, cand := range candidates {
			if n-vals[i*stride+1+j] <= allowed {
				types[i] = cand.typ
				break
			}
		}
	}
	return types, nil
}

// typedTable casts raw into data; rows with a value that does not fit are malformed.
func typedTable(ctx context.Context, conn *dbsql.Conn, files []string, header, types []string, p *Profile, opts *Options) error {
	var casts, reasons []string
	for i, h := range header {
		c := tsql.QuoteIdent(h)
		cast := c
		for _, cand := range candidates {
			if cand.typ == types[i] {
				cast = fill(cand.cast, c)
			}
		}
		casts = append(casts, cast+" AS "+c)
		if types[i] != "VARCHAR" {
			reasons = append(reasons, "WHEN "+c+" IS NOT NULL AND "+cast+" IS NULL THEN 'value ''' || "+c+" || ''' in column "+
				strings.ReplaceAll(h, "'", "''")+" is not "+types[i]+"'")
		}
	}
	reason := "NULL"
	if len(reasons) > 0 {
		reason = "CASE " + strings.Join(reasons, " ") + " END"
	}
	q := "CREATE TABLE typed AS SELECT __file::INTEGER AS __file, __line::BIGINT AS __line, " + reason + " AS __reason, " +
		strings.Join(casts, ", ") + " FROM raw"
	if _, err := conn.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("cannot type the columns: %w", err)
	}
	rq := "SELECT t.__file, t.__line, t.__reason FROM typed t WHERE t.__reason IS NOT NULL ORDER BY t.__file, t.__line"
	rrows, err := conn.QueryContext(ctx, rq)
	if err != nil {
		return fmt.Errorf("cannot list malformed values: %w", err)
	}
	type bad struct {
		file   int
		line   int64
		reason string
	}
	var bads []bad
	for rrows.Next() {
		var b bad
		if err := rrows.Scan(&b.file, &b.line, &b.reason); err != nil {
			rrows.Close()
			return err
		}
		bads = append(bads, b)
	}
	rrows.Close()
	if len(bads) > 0 {
		// Samples show the raw line: read it back from the file.
		want := map[[2]int64]string{}
		for i, b := range bads {
			if i < opts.Samples {
				want[[2]int64{int64(b.file), b.line}] = ""
			}
		}
		for fi, f := range files {
			_ = eachLine(f, func(n int64, line string) error {
				if _, ok := want[[2]int64{int64(fi), n}]; ok {
					want[[2]int64{int64(fi), n}] = line
				}
				return nil
			})
		}
		for _, b := range bads {
			p.reject(opts, files[b.file], b.line, b.reason, want[[2]int64{int64(b.file), b.line}])
		}
		// Structural rejects were recorded while reading, type rejects after: show the
		// samples in file order.
		order := map[string]int{}
		for i, f := range files {
			order[f] = i
		}
		sort.SliceStable(p.Rejects, func(i, j int) bool {
			a, b := p.Rejects[i], p.Rejects[j]
			if order[a.File] != order[b.File] {
				return order[a.File] < order[b.File]
			}
			return a.Line < b.Line
		})
	}
	cols := make([]string, len(header))
	for i, h := range header {
		cols[i] = tsql.QuoteIdent(h)
	}
	if _, err := conn.ExecContext(ctx, "CREATE TABLE data AS SELECT "+strings.Join(cols, ", ")+
		" FROM typed WHERE __reason IS NULL ORDER BY __file, __line"); err != nil {
		return fmt.Errorf("cannot build the profile table: %w", err)
	}
	_, _ = conn.ExecContext(ctx, "DROP TABLE raw; DROP TABLE typed")
	return nil
}

// loadJSONL keeps the lines that are JSON objects and lets DuckDB infer the schema; rows
// DuckDB cannot fit to it are counted as malformed too.
func loadJSONL(ctx context.Context, conn *dbsql.Conn, files []string, tmp string, p *Profile, opts *Options) error {
	cleanPath := filepath.Join(tmp, "clean.jsonl")
	out, err := os.Create(cleanPath)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	var good int64
	for _, file := range files {
		err := eachLine(file, func(n int64, line string) error {
			t := strings.TrimSpace(line)
			if t == "" {
				return nil
			}
			if opts.MaxLines > 0 && p.Lines >= opts.MaxLines {
				return errEnough
			}
			p.Lines++
			if !strings.HasPrefix(t, "{") || !json.Valid([]byte(t)) {
				var v any
				reason := "not a JSON object"
				if err := json.Unmarshal([]byte(t), &v); err != nil {
					reason = "invalid JSON: " + err.Error()
				}
				p.reject(opts, file, n, reason, line)
				return nil
			}
			good++
			_, err := bw.WriteString(t + "\n")
			return err
		})
		if errors.Is(err, errEnough) {
			p.Truncated = true
			break
		}
		if err != nil {
			out.Close()
			return err
		}
	}
	if err := errors.Join(bw.Flush(), out.Close()); err != nil {
		return err
	}
	if good == 0 {
		_, err := conn.ExecContext(ctx, "CREATE TABLE data (value VARCHAR)")
		return err
	}
	if _, err := conn.ExecContext(ctx, "CREATE TABLE data AS SELECT * FROM read_json("+tsql.QuoteString(cleanPath)+
		", format='newline_delimited', ignore_errors=true, sample_size=-1)"); err != nil {
		return fmt.Errorf("cannot load the JSON lines: %w", err)
	}
	var rows int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM data").Scan(&rows); err != nil {
		return err
	}
	if miss := good - rows; miss > 0 {
		p.Malformed += miss
		if len(p.Rejects) < opts.Samples {
			p.Rejects = append(p.Rejects, Reject{Reason: fmt.Sprintf("%d JSON objects do not fit the inferred schema", miss)})
		}
	}
	return nil
}
