package agent

import (
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// TestFromYAMLBuilds decodes an agent the way the config section does (README example)
// and builds it: lists, nested maps and interceptor lists become the flat keys.
func TestFromYAMLBuilds(t *testing.T) {
	dir := t.TempDir()
	doc := strings.ReplaceAll(`
sources:
  logs:
    type: taildir
    channels: [disk, mem]
    filegroups: [app]
    filegroups.app: DIR/app\.log(\.\d+)?
    headers:
      app: {dc: eu}
    interceptors:
      - {type: user_key, format: jsonl}
      - {name: ts, type: timestamp}
    selector: {type: replicating, optional: [mem]}
  syslog: {type: syslog, protocol: udp, listen: "127.0.0.1:0", channels: [disk]}
channels:
  disk: {type: file, capacity_bytes: 1g, min_free_bytes: -1, dir: DIR/ch}
  mem: {type: memory, capacity: 100}
sinks:
  kafka: {type: kafka, channel: disk, topic: events, compression: lz4, brokers: ["127.0.0.1:1"]}
  log: {type: logger, channel: mem}
`, "DIR", dir)
	var y struct {
		Sources, Channels, Sinks map[string]map[string]any
	}
	if err := yaml.Unmarshal([]byte(doc), &y); err != nil {
		t.Fatal(err)
	}
	spec, err := FromYAML("web", "ingest.agents.web", y.Sources, y.Channels, y.Sinks, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := spec.Sources["logs"]
	for k, v := range map[string]string{
		"channels": "disk mem", "filegroups": "app", "headers.app.dc": "eu", "interceptors": "i1 ts",
		"interceptors.i1.type": "user_key", "interceptors.ts.type": "timestamp", "selector.optional": "mem",
	} {
		if logs[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, logs[k], v, logs)
		}
	}
	a, err := Build(spec, Env{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.closeAll(); err != nil {
		t.Fatal(err)
	}
}
