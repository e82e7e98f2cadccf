package interceptor

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
)

func lines(ss ...string) []ingest.Event {
	var out []ingest.Event
	for _, s := range ss {
		out = append(out, ingest.Event{Body: []byte(s)})
	}
	return out
}

func TestInterceptors(t *testing.T) {
	evs := lines("GET /a 200", "POST /b 500", "junk")
	evs = (&Timestamp{Now: func() time.Time { return time.UnixMilli(1234) }}).Intercept(evs)
	evs = (&Static{Key: "dc", Value: "eu"}).Intercept(evs)
	evs = (&RegexFilter{Re: regexp.MustCompile(`^junk`), Exclude: true}).Intercept(evs)
	evs = (&RegexExtractor{Re: regexp.MustCompile(`^(\w+) (\S+) (\d+)`), Names: []string{"method", "", "status"}}).Intercept(evs)
	evs = (&UUID{}).Intercept(evs)
	if len(evs) != 2 {
		t.Fatalf("filter kept %d", len(evs))
	}
	h := evs[1].Headers.Map()
	if h["timestamp"] != "1234" || h["dc"] != "eu" || h["method"] != "POST" || h["status"] != "500" || len(h["id"]) != 36 {
		t.Fatalf("headers = %v", h)
	}
	if _, ok := h[""]; ok {
		t.Fatal("empty serializer name set a header")
	}
	host, err := NewHost("", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if host.Intercept(lines("x"))[0].Headers.Get("host") == "" {
		t.Fatal("no host header")
	}
}

func TestUserKey(t *testing.T) {
	cases := []struct {
		opts UserKeyOptions
		in   []string
		want string
	}{
		{UserKeyOptions{Format: "jsonl"}, []string{`{"user_id":"u1","action":"pv","ts":1}`, `{"user_id":42}`, `not json`}, "[u1 42 ]"},
		{UserKeyOptions{Format: "jsonl", Field: "who"}, []string{`{"who":"w1","action":"pv","ts":1}`}, "[w1]"},
		{UserKeyOptions{}, []string{`{"userId":7}`, `100,200,3,pv,1511544070`, `free text here`, `userId,movieId,rating,timestamp`, `1,1,4.0,964982703`}, "[7 100   1]"},
		{UserKeyOptions{Format: "taobao"}, []string{"1,2268318,2520377,pv,1511544070"}, "[1]"},
		{UserKeyOptions{Format: "movielens"}, []string{"userId,movieId,rating,timestamp", "1,1,4.0,964982703"}, "[ 1]"},
		{UserKeyOptions{Format: "csv"}, []string{"ts,uid,item,action", "1,u9,i,pv"}, "[ u9]"},
		{UserKeyOptions{Format: "csv", Columns: []string{"a", "user_id", "c"}}, []string{"x,y,z"}, "[y]"},
	}
	for _, c := range cases {
		u, err := NewUserKey(c.opts)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range u.Intercept(lines(c.in...)) {
			got = append(got, e.Headers.Get(ingest.HeaderKey))
		}
		if fmt.Sprint(got) != c.want {
			t.Errorf("%+v %v: keys %q, want %s", c.opts, c.in, got, c.want)
		}
	}
	if _, err := NewUserKey(UserKeyOptions{Format: "xml"}); err == nil {
		t.Fatal("unknown format accepted")
	}
}

// TestUserKeyFastPathMatchesParser: the JSON fast path gives the canonical parser's key
// on every line of a corpus with awkward shapes, and on fuzzed input.
func TestUserKeyFastPathMatchesParser(t *testing.T) {
	corpus := []string{
		`{"user_id":"u1","action":"pv","ts":1}`, `{"user_id":42}`, `{"userId":7,"user_id":null}`,
		`{"uid":"a","user":"b"}`, `{"user":"b","uid":"a"}`, `{"user_id":"x\"y"}`, `{"user_id":"\u00e9"}`,
		`{"user_id":{"n":1}}`, `{"user_id":[1,2]}`, `{"user_id":true}`, `{"user_id":-1.5e3}`,
		`{"a":{"user_id":"nested"},"b":"}"}`, `{"u\u0073er_id":"escaped key"}`, `{"user_id":"a","user_id":"b"}`,
		`{"user_id":"a"} trailing`, `{"user_id":`, `  { "user_id" : "spaced" }  `, `{}`, `{"x":"y"}`,
		`not json`, `1,2268318,2520377,pv,1511544070`, `userId,movieId,rating,timestamp`,
	}
	for _, field := range []string{"", "who"} {
		fast, _ := NewUserKey(UserKeyOptions{Format: "auto", Field: field})
		slow, _ := NewUserKey(UserKeyOptions{Format: "auto", Field: field})
		slow.json = false
		for _, l := range append(corpus, `{"who":"w","user_id":"u"}`) {
			if a, b := fast.Key([]byte(l)), slow.Key([]byte(l)); a != b {
				t.Errorf("field %q, %s: fast %q, parser %q", field, l, a, b)
			}
		}
	}
}

func FuzzUserKey(f *testing.F) {
	for _, s := range []string{`{"user_id":"u1"}`, `{"a":[{"b":"}"}],"userId":3}`, `{"user_id":"\n"}`, `{`} {
		f.Add([]byte(s))
	}
	fast, _ := NewUserKey(UserKeyOptions{Format: "jsonl"})
	slow, _ := NewUserKey(UserKeyOptions{Format: "jsonl"})
	slow.json = false
	f.Fuzz(func(t *testing.T, b []byte) {
		if a, s := fast.Key(b), slow.Key(b); a != s {
			t.Fatalf("%q: fast %q, parser %q", b, a, s)
		}
	})
}

func BenchmarkUserKey(b *testing.B) {
	line := []byte(`{"user_id":"u123","item_id":"i9","action":"pv","ts":1511544070,"p":"xxxxxxxxxxxxxxxxxxxxxxxx"}`)
	for _, fastPath := range []bool{true, false} {
		b.Run(fmt.Sprint("fast=", fastPath), func(b *testing.B) {
			u, _ := NewUserKey(UserKeyOptions{Format: "jsonl"})
			u.json = fastPath
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				u.Key(line)
			}
		})
	}
}

// TestSearchReplaceRemoveHeader: search_replace rewrites every match with its groups and
// leaves a body without one as it was (the same bytes); remove_header drops the named
// headers and those whose whole name matches, keeping the others in order.
func TestSearchReplaceRemoveHeader(t *testing.T) {
	evs := lines("user=ann pw=secret; pw=x", "no match here")
	orig := evs[1].Body
	evs = (&SearchReplace{Re: regexp.MustCompile(`pw=(\w+)`), Replace: []byte("pw=*** (${1} hidden)")}).Intercept(evs)
	if got := string(evs[0].Body); got != "user=ann pw=*** (secret hidden); pw=*** (x hidden)" {
		t.Fatalf("replaced: %q", got)
	}
	if &evs[1].Body[0] != &orig[0] {
		t.Fatal("a body without a match was copied")
	}
	for _, kv := range [][2]string{{"host", "h"}, {"a", "1"}, {"tmp_x", "2"}, {"keep", "3"}, {"xtmp_y", "4"}, {"b", "5"}} {
		evs[0].SetHeader(kv[0], kv[1])
	}
	evs = (&RemoveHeader{Names: []string{"host", "a", "b"}, Matching: regexp.MustCompile(`^(?:tmp_.*)$`)}).Intercept(evs)
	if got := fmt.Sprint(evs[0].Headers); got != "[{keep 3} {xtmp_y 4}]" {
		t.Fatalf("headers left: %s", got)
	}
}
