package event

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"
)

// taobaoParser reads the Taobao user-behaviour dataset layout:
// user_id,item_id,category_id,behavior_type,timestamp (epoch seconds), no header;
// behavior_type is one of pv, fav, cart, buy.
type taobaoParser struct{}

func (taobaoParser) Format() string { return "taobao" }

func (taobaoParser) Parse(line []byte) (Event, error) {
	var ev Event
	err := parseTaobao(line, false, &ev)
	return ev, err
}

// ParseView is Parse with the strings sharing line's bytes (see ViewParser).
func (p taobaoParser) ParseView(line []byte, ev *Event) error {
	_, err := p.ParseViewASCII(line, ev)
	return err
}

// ParseViewASCII is ParseView, saying whether line is printable ASCII (see
// ASCIIViewParser). A printable line that parses takes one pass over its bytes.
func (taobaoParser) ParseViewASCII(line []byte, ev *Event) (bool, error) {
	var commas [5]int
	n, ascii := scanPrintable(line, &commas)
	if ascii && n == 4 && taobaoFast(line, &commas, ev) {
		return true, nil
	}
	return ascii, parseTaobao(line, true, ev)
}

// parseTaobao parses line into ev (overwritten), with its strings copied or, with
// view, sharing line's bytes.
func parseTaobao(line []byte, view bool, ev *Event) error {
	line = bytes.TrimRight(line, "\r")
	if !utf8.Valid(line) {
		*ev = Event{}
		return perr("taobao", "invalid UTF-8")
	}
	var f [5][]byte
	n := splitN(line, ',', f[:])
	if n != 5 {
		*ev = Event{}
		return perr("taobao", "got %d fields, want 5 (user_id,item_id,category_id,behavior_type,timestamp)", n)
	}
	for i, name := range [...]string{"user_id", "item_id", "category_id", "behavior_type", "timestamp"} {
		if len(f[i]) == 0 {
			*ev = Event{}
			return perr("taobao", "empty %s", name)
		}
	}
	action, ok := taobaoAction(f[3])
	if !ok {
		*ev = Event{}
		return perr("taobao", "unknown behavior_type %q (want pv, fav, cart or buy)", f[3])
	}
	ts, ok := parseInt(f[4])
	if !ok {
		*ev = Event{}
		return perr("taobao", "bad timestamp %q: want epoch seconds", f[4])
	}
	*ev = Event{
		UserID:    fieldString(f[0], view),
		ItemID:    fieldString(f[1], view),
		Category:  fieldString(f[2], view),
		Action:    action,
		EventTime: time.Unix(ts, 0).UTC(),
	}
	return nil
}

// taobaoAction is the action named by a behavior_type field (the package's
// constant: no string per line), false for an unknown one.
func taobaoAction(b []byte) (string, bool) {
	switch string(b) {
	case "pv":
		return "pv", true
	case "fav":
		return "fav", true
	case "cart":
		return "cart", true
	case "buy":
		return "buy", true
	}
	return "", false
}

// parseInt is strconv.ParseInt(string(b), 10, 64) without a conversion for the usual
// case: up to 18 plain digits.
func parseInt(b []byte) (int64, bool) {
	if len(b) > 0 && len(b) <= 18 {
		var n int64
		for _, c := range b {
			if c < '0' || c > '9' {
				goto slow
			}
			n = n*10 + int64(c-'0')
		}
		return n, true
	}
slow:
	n, err := strconv.ParseInt(viewString(b), 10, 64) // an error copies it
	return n, err == nil
}

// splitN splits line at sep into out and returns the number of fields found (which may
// exceed len(out); the extra fields are not stored). A plain loop: for lines of a few
// dozen bytes it is twice as fast as a bytes.IndexByte call per field.
func splitN(line []byte, sep byte, out [][]byte) int {
	n, start := 0, 0
	for i, c := range line {
		if c == sep {
			if n < len(out) {
				out[n] = line[start:i]
			}
			n++
			start = i + 1
		}
	}
	if n < len(out) {
		out[n] = line[start:]
	}
	return n + 1
}
