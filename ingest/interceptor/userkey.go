package interceptor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/internal/event"
)

// UserKey sets the record key header to the event's user id, found by the canonical line
// parser (internal/event) the streaming engine uses too, so one user's events share a
// partition and keep their order. A line without a user id (a header line, free text)
// gets no key and is spread over partitions; a line whose other fields are bad still gets
// its user's key (parsing errors are the streaming engine's business: dead letters).
type UserKey struct {
	p event.Parser
	// json is set for jsonl and auto: JSON lines take a fast path (validate, then scan the
	// top-level keys) that gives the same key as the canonical parser without decoding
	// the whole object; the canonical parser decides whatever the scan cannot.
	json  bool
	names []string
}

// UserKeyOptions configure NewUserKey.
type UserKeyOptions struct {
	// Format: auto (default), jsonl, csv, taobao, movielens.
	Format string
	// Field names the user id field (jsonl) or column (csv) when it is not one of the
	// usual names (user_id, userId, uid, user).
	Field string
	// Columns declares the csv columns; empty means the file has a header line.
	Columns []string
}

// NewUserKey builds the parser for the format.
func NewUserKey(o UserKeyOptions) (*UserKey, error) {
	opts := event.Options{Format: o.Format, Columns: o.Columns}
	if opts.Format == "" {
		opts.Format = "auto"
	}
	if opts.Format == "csv" && len(o.Columns) == 0 {
		opts.Header = true
	}
	if o.Field != "" {
		opts.Mapping = map[string]string{"user_id": o.Field}
	}
	p, err := event.New(opts)
	if err != nil {
		return nil, fmt.Errorf("user_key: %w", err)
	}
	u := &UserKey{p: p, json: opts.Format == "auto" || opts.Format == "jsonl" || opts.Format == "json"}
	if o.Field != "" {
		u.names = []string{o.Field}
	} else {
		u.names = []string{"user_id", "userId", "uid", "user"} // internal/event's aliases
	}
	return u, nil
}

func (u *UserKey) Intercept(evs []ingest.Event) []ingest.Event {
	for i := range evs {
		if _, ok := evs[i].Headers.Lookup(ingest.HeaderKey); ok {
			continue
		}
		if k := u.Key(evs[i].Body); k != "" {
			evs[i].SetHeader(ingest.HeaderKey, k)
		}
	}
	return evs
}

// Key returns the user id of a line, or "".
func (u *UserKey) Key(line []byte) string {
	if u.json {
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] == '{' {
			if k, ok := u.jsonKey(t); ok {
				return k
			}
		}
	}
	ev, err := u.p.Parse(line)
	if errors.Is(err, event.ErrHeader) {
		return ""
	}
	return ev.UserID
}

// jsonKey validates a JSON object (as json.Valid would: invalid input gets no key, as
// from the canonical parser) and picks the user id from its top-level members in the
// same pass; ok is false when the canonical parser must decide (escaped keys, non-scalar
// ids).
func (u *UserKey) jsonKey(b []byte) (string, bool) {
	var found [4][]byte // one per name; NewUserKey keeps names to at most four
	escapedKey := false
	i := skipWS(b, 1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return "", true
			}
			end := validString(b, i)
			if end < 0 {
				return "", true
			}
			key := b[i+1 : end-1]
			if i = skipWS(b, end); i >= len(b) || b[i] != ':' {
				return "", true
			}
			vstart := skipWS(b, i+1)
			if i = validValue(b, vstart, 1); i < 0 {
				return "", true
			}
			if bytes.IndexByte(key, '\\') >= 0 {
				escapedKey = true // it may decode to one of the names
			} else {
				for n, name := range u.names {
					if string(key) == name {
						found[n] = b[vstart:i] // a later duplicate wins, as in a decoded map
					}
				}
			}
			if i = skipWS(b, i); i >= len(b) {
				return "", true
			}
			if b[i] == '}' {
				i++
				break
			}
			if b[i] != ',' {
				return "", true
			}
			i = skipWS(b, i+1)
		}
	}
	if skipWS(b, i) != len(b) {
		return "", true // trailing data: not valid JSON
	}
	if escapedKey {
		return "", false
	}
	for _, v := range found[:len(u.names)] {
		if v == nil || string(v) == "null" {
			continue
		}
		switch c := v[0]; {
		case c == '"':
			if bytes.IndexByte(v, '\\') < 0 && utf8.Valid(v) {
				return string(v[1 : len(v)-1]), true
			}
			var s string
			if json.Unmarshal(v, &s) != nil {
				return "", false
			}
			return s, true
		case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f':
			return string(v), true
		default:
			return "", false
		}
	}
	return "", true
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
