package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIngestAgentsSection(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`
ingest:
  dead_letter_topic: events_dlq
  agents:
    web:
      sources:
        logs:
          type: taildir
          channels: [disk]
          filegroups: [app]
          filegroups.app: /var/log/app/app\.log(\.\d+)?
          interceptors:
            - {type: user_key, format: jsonl}
      channels:
        disk: {type: file, capacity_bytes: 1g}
      sinks:
        kafka: {type: kafka, channel: disk}
`), 0o644)
	c, err := Load(LoadOptions{File: good, Environ: []string{"TAGPIPE_INGEST_TOPIC=raw"}})
	if err != nil {
		t.Fatal(err)
	}
	logs := c.Ingest.Agents["web"].Sources["logs"]
	if logs["type"] != "taildir" || logs["filegroups.app"] != `/var/log/app/app\.log(\.\d+)?` || c.Ingest.Topic != "raw" || c.Ingest.DeadLetterTopic != "events_dlq" {
		t.Fatalf("decoded %+v topic %q", logs, c.Ingest.Topic)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`
ingest:
  flume_conf: agent.properties
  agents:
    web:
      sources:
        logs: {channels: [disk]}
`), 0o644)
	_, err = Load(LoadOptions{File: bad, Environ: []string{}})
	if err == nil {
		t.Fatal("bad ingest section accepted")
	}
	for _, want := range []string{"ingest.agents.web.sources.logs.type: is required", "ingest.flume_agent: must name the agent"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
