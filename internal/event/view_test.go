package event

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"
)

// The parsers as they were before ParseView (one copied string per field), kept as
// the reference the view parsers are compared with.

func refTaobao(line []byte) (Event, error) {
	line = bytes.TrimRight(line, "\r")
	if !utf8.Valid(line) {
		return Event{}, perr("taobao", "invalid UTF-8")
	}
	var f [5][]byte
	n := refSplitN(line, ',', f[:])
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
	case "pv", "fav", "cart", "buy":
		action = string(f[3])
	default:
		return Event{}, perr("taobao", "unknown behavior_type %q (want pv, fav, cart or buy)", f[3])
	}
	ts, err := strconv.ParseInt(string(f[4]), 10, 64)
	if err != nil {
		return Event{}, perr("taobao", "bad timestamp %q: want epoch seconds", f[4])
	}
	return Event{UserID: string(f[0]), ItemID: string(f[1]), Category: string(f[2]), Action: action, EventTime: time.Unix(ts, 0).UTC()}, nil
}

func refMovieLens(line []byte) (Event, error) {
	line = bytes.TrimRight(line, "\r")
	if !utf8.Valid(line) {
		return Event{}, perr("movielens", "invalid UTF-8")
	}
	if bytes.Equal(line, movielensHeader) {
		return Event{}, ErrHeader
	}
	var f [4][]byte
	n := refSplitN(line, ',', f[:])
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
	return Event{UserID: string(f[0]), ItemID: string(f[1]), Action: "rate", Value: r, HasValue: true, EventTime: time.Unix(ts, 0).UTC()}, nil
}

func refSplitN(line []byte, sep byte, out [][]byte) int {
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

func refAuto(json Parser) func([]byte) (Event, error) {
	return func(line []byte) (Event, error) {
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] == '{' {
			return json.Parse(t)
		}
		switch bytes.Count(t, []byte{','}) {
		case 4:
			return refTaobao(t)
		case 3:
			return refMovieLens(t)
		}
		return Event{}, perr("auto", "cannot detect the format: not a JSON object, not 5 (taobao) or 4 (movielens) comma-separated fields")
	}
}

// checkViewParsers compares Parse and ParseView of every format with the reference
// (or, for the copying formats, Parse with ParseView) on line, and checks that a
// viewed Event's strings do share line's bytes while Parse's do not.
func checkViewParsers(t *testing.T, line []byte) {
	t.Helper()
	ref := map[string]func([]byte) (Event, error){
		"taobao": refTaobao, "movielens": refMovieLens,
		"auto": refAuto(mustNew(t, Options{Format: "jsonl"})),
	}
	for _, format := range Formats() {
		p := mustNew(t, Options{Format: format, Columns: []string{"user_id", "action", "event_time"}})
		want, wantErr := p.Parse(bytes.Clone(line))
		if r := ref[format]; r != nil {
			rev, rerr := r(bytes.Clone(line))
			if !sameResult(want, wantErr, rev, rerr) {
				t.Fatalf("%s Parse(%q) = %+v, %v; reference %+v, %v", format, line, want, wantErr, rev, rerr)
			}
		}
		buf := bytes.Clone(line)
		var got Event
		gotErr := View(p).ParseView(buf, &got)
		if !sameResult(want, wantErr, got, gotErr) {
			t.Fatalf("%s ParseView(%q) = %+v, %v; Parse %+v, %v", format, line, got, gotErr, want, wantErr)
		}
		if ap, ok := p.(ASCIIViewParser); ok {
			var got Event
			ascii, gotErr := ap.ParseViewASCII(bytes.Clone(line), &got)
			if !sameResult(want, wantErr, got, gotErr) {
				t.Fatalf("%s ParseViewASCII(%q) = %+v, %v; Parse %+v, %v", format, line, got, gotErr, want, wantErr)
			}
			if printable := bytes.IndexFunc(line, func(r rune) bool { return r <= ' ' || r >= 0x7f }) < 0; ascii != printable {
				t.Fatalf("%s ParseViewASCII(%q) says printable ASCII %v", format, line, ascii)
			}
		}
	}
}

func sameResult(a Event, aerr error, b Event, berr error) bool {
	if (aerr == nil) != (berr == nil) || aerr != nil && aerr.Error() != berr.Error() || errors.Is(aerr, ErrHeader) != errors.Is(berr, ErrHeader) {
		return false
	}
	if aerr != nil {
		return true // the Event of an error is not part of the contract
	}
	return a.EventTime.Equal(b.EventTime) && a.EventTime.Location() == b.EventTime.Location() &&
		reflect.DeepEqual(withoutTime(a), withoutTime(b))
}

func withoutTime(e Event) Event { e.EventTime = time.Time{}; return e }

func TestParseViewMatchesReference(t *testing.T) {
	for _, s := range []string{
		"1,2268318,2520377,pv,1511544070", "1,2268318,2520377,pv,1511544070\r", " 1,2,3,buy,+15 ",
		"1,2,3,cart,-1511544070", "1,2,3,fav,9223372036854775807", "1,2,3,fav,9223372036854775808",
		"1,2,3,fav,999999999999999999", "1,2,3,fav,0x10", "1,2,3,fav,1_000", "1,2,3,PV,1", "1,2,3,pv,",
		",2,3,pv,1", "1,2,3,pv,1,", "userId,movieId,rating,timestamp", "1,1,4.0,964982703",
		"1,1,4.0,964982703\r", "1,1,NaN,1", "1,2,3,pv,0012", "1,2,3,pv,1234567890123456789", "1,2,3,pv,1 ",
		"1,2,3,pv,1\t", "1,2,3,pv,1\x7f", "{1,2,3,pv,1", "1,2,,pv,1", "1,2,3,,1", "1,2,3,buy,-1", "1,2,3,buyy,1", "1,2,3,bu,1", "1,1,11,1", "1,1,-0,1", "1,,4,1", "1,1,4,1e3",
		`{"user_id":"u","action":"pv","ts":1000}`, "", "\r", "\xff,2,3,pv,1", "1,2\xff,4.0,964982703",
	} {
		checkViewParsers(t, []byte(s))
	}
}

func TestParseViewSharesTheLine(t *testing.T) {
	for _, format := range []string{"taobao", "auto"} {
		line := []byte("17,2268318,2520377,pv,1511544070")
		var ev Event
		if err := View(mustNew(t, Options{Format: format})).ParseView(line, &ev); err != nil {
			t.Fatal(err)
		}
		copy(line, "99")
		if ev.UserID != "99" {
			t.Errorf("%s: user %q does not view the line", format, ev.UserID)
		}
		line = []byte("17,2268318,2520377,pv,1511544070")
		ev2, _ := mustNew(t, Options{Format: format}).Parse(line)
		copy(line, "99")
		if ev2.UserID != "17" {
			t.Errorf("%s: Parse's user %q shares the line", format, ev2.UserID)
		}
	}
}

func FuzzParseView(f *testing.F) {
	for _, s := range []string{"", "1,2,3,pv,1511544070", "userId,movieId,rating,timestamp", "1,1,4.0,964982703",
		`{"user_id":1,"action":"pv","ts":1}`, "1,2,3,pv,-12", "1,2,3,pv,0012", ",,,,", "\x00\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) { checkViewParsers(t, line) })
}

func BenchmarkParseView(b *testing.B) {
	for _, c := range []struct{ format, line string }{
		{"taobao", "1,2268318,2520377,pv,1511544070"},
		{"auto", "1,2268318,2520377,pv,1511544070"},
		{"movielens", "1,1,4.0,964982703"},
	} {
		b.Run(c.format, func(b *testing.B) {
			p := View(mustNew(b, Options{Format: c.format}))
			line := []byte(c.line)
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			var ev Event
			for b.Loop() {
				if err := p.ParseView(line, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
