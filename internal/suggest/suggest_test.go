package suggest

import (
	"slices"
	"testing"
)

func TestFor(t *testing.T) {
	keys := []string{"data_dir", "log", "admin", "broker", "kafka", "ingest", "streaming", "warehouse", "jobs", "tagging", "sql"}
	for _, c := range []struct {
		word string
		want []string
	}{
		{"brokr", []string{"broker"}},
		{"BROKER", []string{"broker"}},    // case aside
		{"stream", []string{"streaming"}}, // a prefix
		{"sq", []string{"sql"}},
		{"jbos", []string{"jobs"}}, // a swap is two edits
		{"zzzzzz", nil},            // nothing close
		{"broker", nil},            // itself is no suggestion
	} {
		got := For(c.word, keys)
		if !slices.Equal(got, c.want) {
			t.Errorf("For(%q) = %v, want %v", c.word, got, c.want)
		}
	}
	if got := For("brokr", []string{"brokers_x", "brokers", "broker"}); !slices.Equal(got, []string{"broker", "brokers"}) {
		t.Errorf("closest first: %v", got)
	}
	if got := DidYouMean("brokr", keys); got != ` (did you mean "broker"?)` {
		t.Errorf("DidYouMean = %q", got)
	}
	if got := DidYouMean("zzzzzz", keys); got != "" {
		t.Errorf("DidYouMean with nothing close = %q", got)
	}
}

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"brokr", "broker", 1}, {"jbos", "jobs", 2}} {
		if got := distance(c.a, c.b); got != c.d {
			t.Errorf("distance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
}
