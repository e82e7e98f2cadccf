package event

import (
	"bytes"
	"slices"
	"strings"
	"unicode/utf8"
)

// csvParser parses one CSV record per line (RFC 4180 quoting within the line) against a
// declared or learned header.
type csvParser struct {
	m      *mapper
	delim  byte
	header bool
	cols   []string
	index  map[string]int
}

func (p *csvParser) Format() string { return "csv" }

func (p *csvParser) setColumns(cols []string) {
	p.cols = cols
	p.index = make(map[string]int, len(cols))
	for i, c := range cols {
		p.index[c] = i
	}
}

func (p *csvParser) Parse(line []byte) (Event, error) {
	line = bytes.TrimRight(line, "\r")
	if !utf8.Valid(line) {
		return Event{}, perr("csv", "invalid UTF-8")
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return Event{}, perr("csv", "empty line")
	}
	fields, err := splitCSV(line, p.delim)
	if err != nil {
		return Event{}, perr("csv", "%v", err)
	}
	if p.cols == nil { // header: true and nothing declared: learn from the first line
		cols := make([]string, len(fields))
		for i, f := range fields {
			cols[i] = strings.TrimSpace(f)
		}
		p.setColumns(cols)
		return Event{}, ErrHeader
	}
	if p.header && len(fields) == len(p.cols) && slices.Equal(trimAll(fields), p.cols) {
		return Event{}, ErrHeader
	}
	if len(fields) != len(p.cols) {
		return Event{}, perr("csv", "got %d fields, want %d (%s)", len(fields), len(p.cols), strings.Join(p.cols, ","))
	}
	get := func(name string) (string, bool) {
		i, ok := p.index[name]
		if !ok {
			return "", false
		}
		return fields[i], true
	}
	return p.m.build("csv", get, func(used map[string]bool, props map[string]string) {
		for i, c := range p.cols {
			if !used[c] {
				props[c] = fields[i]
			}
		}
	})
}

func trimAll(fs []string) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = strings.TrimSpace(f)
	}
	return out
}

type csvError string

func (e csvError) Error() string { return string(e) }

// splitCSV splits one line into fields. A field that starts with '"' is quoted: '""'
// inside it is one quote, and it must end with '"' followed by the delimiter or the end.
func splitCSV(line []byte, delim byte) ([]string, error) {
	fields := make([]string, 0, 8)
	i := 0
	for {
		if i < len(line) && line[i] == '"' {
			var sb strings.Builder
			j := i + 1
			for {
				k := bytes.IndexByte(line[j:], '"')
				if k < 0 {
					return nil, csvError("unterminated quoted field")
				}
				sb.Write(line[j : j+k])
				j += k + 1
				if j < len(line) && line[j] == '"' {
					sb.WriteByte('"')
					j++
					continue
				}
				break
			}
			fields = append(fields, sb.String())
			if j == len(line) {
				return fields, nil
			}
			if line[j] != delim {
				return nil, csvError("text after closing quote")
			}
			i = j + 1
			continue
		}
		k := bytes.IndexByte(line[i:], delim)
		if k < 0 {
			f := line[i:]
			if bytes.IndexByte(f, '"') >= 0 {
				return nil, csvError("bare quote in unquoted field")
			}
			return append(fields, string(f)), nil
		}
		f := line[i : i+k]
		if bytes.IndexByte(f, '"') >= 0 {
			return nil, csvError("bare quote in unquoted field")
		}
		fields = append(fields, string(f))
		i += k + 1
	}
}
