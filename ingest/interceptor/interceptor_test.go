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
	h := evs[1].Headers
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
	if host.Intercept(lines("x"))[0].Headers["host"] == "" {
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
			got = append(got, e.Headers[ingest.HeaderKey])
		}
		if fmt.Sprint(got) != c.want {
			t.Errorf("%+v %v: keys %q, want %s", c.opts, c.in, got, c.want)
		}
	}
	if _, err := NewUserKey(UserKeyOptions{Format: "xml"}); err == nil {
		t.Fatal("unknown format accepted")
	}
}
