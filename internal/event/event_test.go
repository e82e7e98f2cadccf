package event

import (
	"bufio"
	"errors"
	"os"
	"testing"
	"time"
)

func mustNew(t testing.TB, o Options) Parser {
	t.Helper()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTaobao(t *testing.T) {
	p := mustNew(t, Options{Format: "taobao"})
	ev, err := p.Parse([]byte("1,2268318,2520377,pv,1511544070\r"))
	if err != nil {
		t.Fatal(err)
	}
	want := Event{UserID: "1", ItemID: "2268318", Category: "2520377", Action: "pv", EventTime: time.Unix(1511544070, 0).UTC()}
	if ev.UserID != want.UserID || ev.ItemID != want.ItemID || ev.Category != want.Category || ev.Action != want.Action || !ev.EventTime.Equal(want.EventTime) || ev.HasValue {
		t.Fatalf("got %+v want %+v", ev, want)
	}
	for _, bad := range []string{"", "1,2,3,pv", "1,2,3,pv,5,6", "1,2,3,click,5", "1,2,3,pv,abc", ",2,3,pv,1"} {
		_, err := p.Parse([]byte(bad))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Reason == "" {
			t.Errorf("%q: want ParseError with reason, got %v", bad, err)
		}
	}
}

func TestMovieLensWholeFile(t *testing.T) {
	f, err := os.Open("../../testdata/movielens/ratings.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := mustNew(t, Options{Format: "movielens"})
	sc := bufio.NewScanner(f)
	n, headers := 0, 0
	for sc.Scan() {
		ev, err := p.Parse(sc.Bytes())
		if errors.Is(err, ErrHeader) {
			headers++
			continue
		}
		if err != nil {
			t.Fatalf("line %d: %v", n+headers+1, err)
		}
		if ev.Action != "rate" || !ev.HasValue || ev.Value < 0.5 || ev.Value > 5 {
			t.Fatalf("bad event %+v", ev)
		}
		n++
	}
	if headers != 1 || n < 100000 {
		t.Fatalf("headers=%d ratings=%d", headers, n)
	}
	ev, _ := p.Parse([]byte("1,1,4.0,964982703"))
	if ev.UserID != "1" || ev.ItemID != "1" || ev.Value != 4 || ev.EventTime.Unix() != 964982703 {
		t.Fatalf("got %+v", ev)
	}
	if _, err := p.Parse([]byte("1,1,x,964982703")); err == nil {
		t.Fatal("bad rating accepted")
	}
}

func TestJSONL(t *testing.T) {
	p := mustNew(t, Options{Format: "jsonl"})
	ev, err := p.Parse([]byte(`{"event_id":"e1","user_id":42,"item_id":"i9","action":"BUY","event_time":"2024-03-01T10:00:00+01:00","price":19.5,"props":{"a":1},"channel":"app"}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.EventID != "e1" || ev.UserID != "42" || ev.ItemID != "i9" || ev.Action != "buy" || !ev.HasValue || ev.Value != 19.5 {
		t.Fatalf("got %+v", ev)
	}
	if !ev.EventTime.Equal(time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("time %v", ev.EventTime)
	}
	if ev.Props["channel"] != "app" || ev.Props["props"] != `{"a":1}` {
		t.Fatalf("props %v", ev.Props)
	}
	// epoch in ms and mapping
	p2 := mustNew(t, Options{Format: "jsonl", Mapping: map[string]string{"user_id": "u", "action": "a", "event_time": "t"}})
	ev, err = p2.Parse([]byte(`{"u":"x","a":"pv","t":1700000000123}`))
	if err != nil || ev.EventTime.UnixMilli() != 1700000000123 {
		t.Fatalf("%+v %v", ev, err)
	}
	for _, bad := range []string{``, `[1]`, `{"user_id":1`, `{"user_id":"1","action":"pv"}`, `{"action":"pv","ts":1}`, `{"user_id":"1","action":"pv","ts":"yesterday"}`, `{"user_id":"1","action":"pv","ts":1,"value":"abc"}`, `{"user_id":"1","action":"pv","ts":1} x`} {
		_, err := p.Parse([]byte(bad))
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: want ParseError, got %v", bad, err)
		}
	}
	if _, err := New(Options{Format: "jsonl", Mapping: map[string]string{"nope": "x"}}); err == nil {
		t.Fatal("unknown mapping accepted")
	}
}

func TestCSV(t *testing.T) {
	p := mustNew(t, Options{Format: "csv", Header: true})
	if _, err := p.Parse([]byte("uid,item_id,action,ts,note")); !errors.Is(err, ErrHeader) {
		t.Fatalf("header: %v", err)
	}
	ev, err := p.Parse([]byte(`7,i1,cart,2024-01-02 03:04:05,"hello, ""world"""`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.UserID != "7" || ev.Action != "cart" || ev.Props["note"] != `hello, "world"` || ev.EventTime != time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC) {
		t.Fatalf("got %+v", ev)
	}
	// A repeated header (concatenated files) is skipped.
	if _, err := p.Parse([]byte("uid,item_id,action,ts,note")); !errors.Is(err, ErrHeader) {
		t.Fatalf("repeat header: %v", err)
	}
	for _, bad := range []string{"1,2,3", `1,i,pv,5,"open`, `1,i,pv,5,a"b`, `1,i,pv,5,"x"y`} {
		if _, err := p.Parse([]byte(bad)); err == nil || errors.Is(err, ErrHeader) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
	d := mustNew(t, Options{Format: "csv", Columns: []string{"user_id", "item_id", "action", "event_time"}, Delimiter: '\t'})
	ev, err = d.Parse([]byte("u\ti\tfav\t1700000000"))
	if err != nil || ev.Action != "fav" || ev.EventTime.Unix() != 1700000000 {
		t.Fatalf("%+v %v", ev, err)
	}
	if _, err := New(Options{Format: "csv"}); err == nil {
		t.Fatal("csv without schema accepted")
	}
	if _, err := New(Options{Format: "xml"}); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestEpochMagnitudes(t *testing.T) {
	base := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	for _, s := range []string{"1700000000", "1700000000000", "1700000000000000", "1700000000000000000", "1700000000.0"} {
		got, err := parseTime(s, "", time.UTC)
		if err != nil || !got.Equal(base) {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
}

func FuzzParsers(f *testing.F) {
	for _, s := range []string{"", "1,2,3,pv,1511544070", "userId,movieId,rating,timestamp", "1,1,4.0,964982703",
		`{"user_id":1,"action":"pv","ts":1}`, `"a""b",c`, "\"", ",,,,", "\x00\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, format := range Formats() {
			p, err := New(Options{Format: format, Columns: []string{"user_id", "action", "event_time"}})
			if err != nil {
				t.Fatal(err)
			}
			ev, err := p.Parse(line)
			if err == nil && (ev.UserID == "" || ev.Action == "") {
				t.Fatalf("%s accepted %q without user/action: %+v", format, line, ev)
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, c := range []struct{ format, line string }{
		{"taobao", "1,2268318,2520377,pv,1511544070"},
		{"movielens", "1,1,4.0,964982703"},
		{"jsonl", `{"user_id":"1","item_id":"2268318","action":"pv","event_time":1511544070,"category":"2520377"}`},
	} {
		b.Run(c.format, func(b *testing.B) {
			p := mustNew(b, Options{Format: c.format})
			line := []byte(c.line)
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				if _, err := p.Parse(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestAuto(t *testing.T) {
	p := mustNew(t, Options{Format: "auto"})
	for line, action := range map[string]string{
		"1,2,3,buy,1511544070":                    "buy",
		"1,31,2.5,1260759144":                     "rate",
		`{"user_id":"u","action":"pv","ts":1000}`: "pv",
	} {
		ev, err := p.Parse([]byte(line))
		if err != nil || ev.Action != action {
			t.Errorf("%q: %+v %v", line, ev, err)
		}
	}
	if _, err := p.Parse([]byte("userId,movieId,rating,timestamp")); !errors.Is(err, ErrHeader) {
		t.Errorf("header: %v", err)
	}
	for _, bad := range []string{"hello", "1,2", "{"} {
		var pe *ParseError
		if _, err := p.Parse([]byte(bad)); !errors.As(err, &pe) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestInvalidUTF8IsAParseError(t *testing.T) {
	for _, f := range []string{"taobao", "movielens", "auto"} {
		p := mustNew(t, Options{Format: f})
		line := "1,2\xff,3,pv,1511544070"
		if f == "movielens" {
			line = "1,2\xff,4.0,964982703"
		}
		var pe *ParseError
		if _, err := p.Parse([]byte(line)); !errors.As(err, &pe) {
			t.Errorf("%s accepted invalid UTF-8: %v", f, err)
		}
	}
	p := mustNew(t, Options{Format: "csv", Columns: []string{"user_id", "action", "ts"}})
	if _, err := p.Parse([]byte("u\xff,pv,1")); err == nil {
		t.Error("csv accepted invalid UTF-8")
	}
}
