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
	line = bytes.TrimRight(line, "\r")
	if !utf8.Valid(line) {
		return Event{}, perr("movielens", "invalid UTF-8")
	}
	if bytes.Equal(line, movielensHeader) {
		return Event{}, ErrHeader
	}
	var f [4][]byte
	n := splitN(line, ',', f[:])
	if n != 4 {
		return Event{}, perr("movielens", "got %d fields, want 4 (userId,movieId,rating,timestamp)", n)
	}
	if len(f[0]) == 0 || len(f[1]) == 0 {
		return Event{}, perr("movielens", "empty userId or movieId")
	}
	r, err := strconv.ParseFloat(string(f[2]), 64)
	if err != nil || math.IsNaN(r) || r < 0 || r > 10 {
		return Event{}, perr("movielens", "bad rating %q", f[2])
	}
	ts, err := strconv.ParseInt(string(f[3]), 10, 64)
	if err != nil {
		return Event{}, perr("movielens", "bad timestamp %q: want epoch seconds", f[3])
	}
	return Event{
		UserID:    string(f[0]),
		ItemID:    string(f[1]),
		Action:    "rate",
		Value:     r,
		HasValue:  true,
		EventTime: time.Unix(ts, 0).UTC(),
	}, nil
}
