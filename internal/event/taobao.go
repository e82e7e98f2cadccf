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
	line = bytes.TrimRight(line, "\r")
	if !utf8.Valid(line) {
		return Event{}, perr("taobao", "invalid UTF-8")
	}
	var f [5][]byte
	n := splitN(line, ',', f[:])
	if n != 5 {
		return Event{}, perr("taobao", "got %d fields, want 5 (user_id,item_id,category_id,behavior_type,timestamp)", n)
	}
	for i, name := range [...]string{"user_id", "item_id", "category_id", "behavior_type", "timestamp"} {
		if len(f[i]) == 0 {
			return Event{}, perr("taobao", "empty %s", name)
		}
	}
	var action string
	switch string(f[3]) {
	case "pv":
		action = "pv"
	case "fav":
		action = "fav"
	case "cart":
		action = "cart"
	case "buy":
		action = "buy"
	default:
		return Event{}, perr("taobao", "unknown behavior_type %q (want pv, fav, cart or buy)", f[3])
	}
	ts, err := strconv.ParseInt(string(f[4]), 10, 64)
	if err != nil {
		return Event{}, perr("taobao", "bad timestamp %q: want epoch seconds", f[4])
	}
	return Event{
		UserID:    string(f[0]),
		ItemID:    string(f[1]),
		Category:  string(f[2]),
		Action:    action,
		EventTime: time.Unix(ts, 0).UTC(),
	}, nil
}

// splitN splits line at sep into out and returns the number of fields found (which may
// exceed len(out); the extra fields are not stored).
func splitN(line []byte, sep byte, out [][]byte) int {
	n := 0
	for {
		i := bytes.IndexByte(line, sep)
		if i < 0 {
			if n < len(out) {
				out[n] = line
			}
			return n + 1
		}
		if n < len(out) {
			out[n] = line[:i]
		}
		n++
		line = line[i+1:]
	}
}
