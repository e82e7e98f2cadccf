package event

import (
	"bytes"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// movielensParser reads MovieLens ratings.csv: userId,movieId,rating,timestamp (epoch
// seconds). The header line returns ErrHeader. Each rating becomes action "rate" with
// value = rating.
type movielensParser struct{}

func (movielensParser) Format() string { return "movielens" }

var movielensHeader = []byte("userId,movieId,rating,timestamp")

func (movielensParser) Parse(line []byte) (Event, error) {
	var ev Event
	err := parseMovieLens(line, false, &ev)
	return ev, err
}

// ParseView is Parse with the strings sharing line's bytes (see ViewParser).
func (movielensParser) ParseView(line []byte, ev *Event) error {
	return parseMovieLens(line, true, ev)
}

// parseMovieLens parses line into ev (overwritten), with its strings copied or, with
// view, sharing line's bytes.
func parseMovieLens(line []byte, view bool, ev *Event) error {
	*ev = Event{}
	line = bytes.TrimRight(line, "\r")
	if !utf8.Valid(line) {
		return perr("movielens", "invalid UTF-8")
	}
	if bytes.Equal(line, movielensHeader) {
		return ErrHeader
	}
	var f [4][]byte
	n := splitN(line, ',', f[:])
	if n != 4 {
		return perr("movielens", "got %d fields, want 4 (userId,movieId,rating,timestamp)", n)
	}
	if len(f[0]) == 0 || len(f[1]) == 0 {
		return perr("movielens", "empty userId or movieId")
	}
	r, err := strconv.ParseFloat(viewString(f[2]), 64) // an error copies it
	if err != nil || math.IsNaN(r) || r < 0 || r > 10 {
		return perr("movielens", "bad rating %q", f[2])
	}
	ts, ok := parseInt(f[3])
	if !ok {
		return perr("movielens", "bad timestamp %q: want epoch seconds", f[3])
	}
	ev.UserID = fieldString(f[0], view)
	ev.ItemID = fieldString(f[1], view)
	ev.Action = "rate"
	ev.Value, ev.HasValue = r, true
	ev.EventTime = time.Unix(ts, 0).UTC()
	return nil
}
