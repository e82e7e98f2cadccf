package warehouse

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestFormatFrozen freezes the manifest format: a fixed table written now must
// produce testdata/manifest_v1.json (after masking the random transaction id and
// file sizes), and FORMAT.md must show that very document. Changing the format
// means bumping format_version, updating FORMAT.md and running with -update.
func TestFormatFrozen(t *testing.T) {
	clock := time.Date(2024, 5, 2, 3, 4, 5, 0, time.UTC)
	o := DefaultOptions()
	o.Now = func() time.Time { return clock }
	w, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	tb := createEvents(t, w, "ods_events")
	rec := events(4, 2, 0)
	defer rec.Release()
	appendRec(t, tb, rec, CommitOptions{Properties: map[string]string{
		"streaming.batch_id": "42", "streaming.offsets": `{"events":{"0":[100,104]}}`}})
	data, err := os.ReadFile(filepath.Join(tb.Dir(), "_tagpipe", "snapshots", "00000000000000000002.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := regexp.MustCompile(`part-[0-9a-z]+-[0-9a-f]{8}-`).ReplaceAllString(string(data), "part-TXID-")
	got = regexp.MustCompile(`"(bytes|total_bytes)": \d+`).ReplaceAllString(got, `"$1": 0`)

	golden := filepath.Join("testdata", "manifest_v1.json")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("manifest format changed (bump format_version, update FORMAT.md, run -update):\n%s", got)
	}
	doc, err := os.ReadFile("FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```json\n"+got+"```") {
		t.Fatal("FORMAT.md does not show testdata/manifest_v1.json verbatim")
	}
	// Every file the table holds is where FORMAT.md says.
	for _, f := range listFiles(t, tb.Dir()) {
		ok := regexp.MustCompile(`^(_tagpipe/LOCK|_tagpipe/CURRENT|_tagpipe/snapshots/\d{20}\.json|dt=\d{4}-\d\d-\d\d/part-[0-9a-z]+-[0-9a-f]{8}-\d{5}\.parquet)$`).MatchString(f)
		if !ok {
			t.Errorf("unexpected file %s", f)
		}
	}
}
