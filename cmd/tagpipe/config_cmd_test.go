package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tagpipe/tagpipe/tagging/definitions"
)

// TestConfigCheck: `config check` reports a bad collector key, a bad job definition and
// a bad tag definition at once, fails, and creates nothing; a good configuration (the
// shipped tag definitions scheduled) passes with what it checked.
func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	data, tags := filepath.Join(dir, "data"), filepath.Join(dir, "tags")
	if err := os.MkdirAll(tags, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tags, "broken.yaml"), []byte("name: [unclosed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "tagpipe.yaml")
	if err := os.WriteFile(file, []byte(`
ingest:
  agents:
    a1:
      sources: {r1: {type: spooldir, dir: `+filepath.Join(dir, "spool")+`, channels: [c1], spool_dri: x}}
      channels: {c1: {type: file}}
      sinks: {k1: {type: logger, channel: c1}}
jobs:
  definitions:
    - name: report
      schedule: "@daily"
      depends_on: [extract]
      task: {kind: shell, command: "true"}
tagging:
  definitions_dir: `+tags+`
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runTagpipeErr("--config", file, "--data-dir", data, "config", "check")
	if err == nil {
		t.Fatalf("a bad configuration passed:\n%s", out)
	}
	for _, want := range []string{
		"ingest.agents.a1.sources.r1.spool_dri: unknown key for spooldir source",
		`job "report": depends_on: unknown job "extract"`,
		"broken.yaml",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 { // tags/ and tagpipe.yaml
		t.Errorf("config check created something: %v", ents)
	}

	// Good: the default collector, one job, the shipped tag definitions.
	if err := os.Remove(filepath.Join(tags, "broken.yaml")); err != nil {
		t.Fatal(err)
	}
	ents, err := definitions.FS.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".yaml") {
			b, _ := definitions.FS.ReadFile(e.Name())
			if err := os.WriteFile(filepath.Join(tags, e.Name()), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(file, []byte(`
jobs:
  definitions:
    - name: report
      schedule: "@daily"
      task: {kind: shell, command: "true"}
tagging:
  definitions_dir: `+tags+`
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runTagpipeErr("--config", file, "--data-dir", data, "config", "check")
	if err != nil {
		t.Fatalf("a good configuration failed: %v\n%s", err, out)
	}
	for _, want := range []string{"config: " + file + ": ok", "collector: 1 agent(s) ok: default", "tag definitions: ", "jobs: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("config check created the data dir: %v", err)
	}
}
