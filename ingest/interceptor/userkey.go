package interceptor

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/tagpipe/tagpipe/ingest"
)

// UserKey sets the record key header to the event's user id, so one user's events share a
// partition and keep their order. Formats:
//   - jsonl: the Field (default "user_id") of a JSON object line;
//   - csv: column Column (an index, or a name found in a header line);
//   - taobao, movielens: column 0;
//   - auto: jsonl for lines starting with "{", otherwise column 0 when it looks like an id.
//
// A line without a user id keeps no key (it is spread over partitions).
type UserKey struct {
	Format string
	Field  string
	Column string
	Header string

	col int // resolved column index; -1 until a header line names Column
}

// NewUserKey validates the format.
func NewUserKey(format, field, column string) (*UserKey, error) {
	u := &UserKey{Format: format, Field: field, Column: column, Header: ingest.HeaderKey, col: 0}
	if u.Field == "" {
		u.Field = "user_id"
	}
	switch format {
	case "", "auto":
		u.Format = "auto"
	case "jsonl", "taobao", "movielens":
	case "csv":
		if column == "" {
			u.col = 0
		} else if n, err := strconv.Atoi(column); err == nil && n >= 0 {
			u.col = n
		} else {
			u.col = -1
		}
	default:
		return nil, &FormatError{format}
	}
	return u, nil
}

// FormatError names an unknown input format.
type FormatError struct{ Format string }

func (e *FormatError) Error() string {
	return "unknown format " + strconv.Quote(e.Format) + " (want auto, jsonl, csv, taobao or movielens)"
}

func (u *UserKey) Intercept(evs []ingest.Event) []ingest.Event {
	for i := range evs {
		if _, ok := evs[i].Headers[u.Header]; ok {
			continue
		}
		if k := u.key(evs[i].Body); k != "" {
			evs[i].SetHeader(u.Header, k)
		}
	}
	return evs
}

func (u *UserKey) key(line []byte) string {
	switch u.Format {
	case "jsonl":
		return jsonField(line, u.Field)
	case "csv":
		if u.col < 0 {
			// Learn the column from a header line.
			for i, f := range bytes.Split(line, []byte{','}) {
				if string(bytes.TrimSpace(f)) == u.Column {
					u.col = i
				}
			}
			return ""
		}
		return column(line, u.col)
	case "taobao", "movielens":
		return idLike(column(line, 0))
	default:
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] == '{' {
			if k := jsonField(t, u.Field); k != "" {
				return k
			}
			return jsonField(t, "userId")
		}
		return idLike(column(line, 0))
	}
}

func jsonField(line []byte, field string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(line, &m) != nil {
		return ""
	}
	raw, ok := m[field]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

func column(line []byte, i int) string {
	for n := 0; ; n++ {
		j := bytes.IndexByte(line, ',')
		if n == i {
			if j < 0 {
				return string(bytes.TrimSpace(bytes.TrimRight(line, "\r")))
			}
			return string(bytes.TrimSpace(line[:j]))
		}
		if j < 0 {
			return ""
		}
		line = line[j+1:]
	}
}

// idLike accepts values that look like ids (letters, digits, - _ .), so a CSV header
// ("userId") does become a key but free text does not.
func idLike(s string) string {
	if s == "" || len(s) > 128 {
		return ""
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_' || c == '.') {
			return ""
		}
	}
	return s
}
