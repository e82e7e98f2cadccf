package ingest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStateFile: each save leaves exactly the last state readable, whether it was
// written in place (shorter ones padded) or, past a page, renamed into place.
func TestStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	w := &StateFile{Path: path}
	defer w.Close()
	for _, v := range []string{"a-long-first-value", "short", strings.Repeat("p", 5000), "after-a-page", ""} {
		data, _ := json.Marshal(map[string]string{"v": v})
		if err := w.Save(data); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]string
		if err := json.Unmarshal(raw, &got); err != nil || got["v"] != v {
			t.Fatalf("after saving %.20q: read %.40q (%v)", v, raw, err)
		}
	}
}
