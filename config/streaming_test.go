package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStreamingSection(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "tagpipe.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := Load(LoadOptions{File: write(`
streaming:
  events_topics: [events, ratings]
  events_formats:
    ratings: {format: movielens}
    clicks: {format: csv, columns: [user_id, item_id, action, ts], delimiter: tab}
  window_length: 20m
  window_slide: 5m
`), Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Streaming
	if s.EventsFormats["ratings"].Format != "movielens" || s.EventsFormats["clicks"].Delimiter != "tab" || s.WindowLength.Minutes() != 20 {
		t.Fatalf("%+v", s)
	}
	// `config print` of per-topic formats loads back to the same values.
	var buf bytes.Buffer
	if err := cfg.Print(&buf); err != nil {
		t.Fatal(err)
	}
	cfg2, err := Load(LoadOptions{File: write(buf.String()), Environ: []string{}})
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, buf.String())
	}
	if _, err := Load(LoadOptions{File: write("streaming:\n  starting_offsets: '{\"events\":{\"0\":23,\"1\":-2}}'\n"), Environ: []string{}}); err != nil {
		t.Fatalf("offsets per partition refused: %v", err)
	}
	// (nil and empty slices print alike and mean the same)
	if fmt.Sprintf("%+v", cfg2.Streaming) != fmt.Sprintf("%+v", cfg.Streaming) {
		t.Fatalf("round trip changed the section:\n%+v\n%+v", cfg2.Streaming, cfg.Streaming)
	}
	for body, want := range map[string]string{
		"streaming:\n  events_formats:\n    x: {format: csv}\n": "streaming.events_formats.x.columns",
		"streaming:\n  window_length: 90s\n":                    "streaming.window_length",
		"streaming:\n  starting_offsets: middle\n":              "streaming.starting_offsets",
		"streaming:\n  events_format: xml\n":                    "streaming.events_format",
		"streaming:\n  events_topic_pattern: \"events.(\"\n":    "streaming.events_topic_pattern",
		"streaming:\n  max_records_per_batch: -1\n":             "streaming.max_records_per_batch",
		"streaming:\n  min_records_per_batch: -1\n":             "streaming.min_records_per_batch",
		"streaming:\n  starting_offsets: '{\"events\": 3}'\n":   "streaming.starting_offsets",
	} {
		_, err := Load(LoadOptions{File: write(body), Environ: []string{}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error naming %s", body, err, want)
		}
	}
}
