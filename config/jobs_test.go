package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJobsDefinitionsInFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "tagpipe.yaml")
	os.WriteFile(f, []byte(`jobs:
  timezone: Asia/Shanghai
  definitions:
    - name: tags
      schedule: "0 2 * * *"
      depends_on: [dwd]
      catchup: false
      retries: 3
      retry_delay: 30s
      task: {kind: builtin, name: tags_nightly}
`), 0o644)
	c, err := Load(LoadOptions{File: f, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	d := c.Jobs.Definitions
	if len(d) != 1 || d[0].Name != "tags" || d[0].Catchup == nil || *d[0].Catchup || d[0].Task.Name != "tags_nightly" || d[0].RetryDelay.String() != "30s" {
		t.Fatalf("definitions: %+v", d)
	}
	os.WriteFile(f, []byte("jobs:\n  definitions:\n    - name: x\n      shedule: \"@daily\"\n"), 0o644)
	_, err = Load(LoadOptions{File: f, Environ: []string{}})
	if err == nil || !strings.Contains(err.Error(), "tagpipe.yaml:4") || !strings.Contains(err.Error(), "shedule") {
		t.Fatalf("unknown key in a definition: %v", err)
	}
}
