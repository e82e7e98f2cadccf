package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/ingest"
)

func TestIngestSpecs(t *testing.T) {
	dir := t.TempDir()
	// Default: the spooldir → file → kafka agent below data_dir.
	cfg, err := config.Load(config.LoadOptions{Environ: []string{}, Overrides: map[string]string{"data_dir": dir}})
	if err != nil {
		t.Fatal(err)
	}
	specs, err := ingestSpecs(cfg, nil)
	if err != nil || len(specs) != 1 || specs[0].Sources["spool"]["dir"] != filepath.Join(dir, "spool/events") {
		t.Fatalf("default specs %+v %v", specs, err)
	}
	// Configured agents, one picked with --agent.
	file := filepath.Join(dir, "tagpipe.yaml")
	os.WriteFile(file, []byte(`
ingest:
  agents:
    a: {sources: {s: {type: tcp, listen: "127.0.0.1:0", channels: [c]}}, channels: {c: {type: memory}}, sinks: {k: {type: logger, channel: c}}}
    b: {sources: {s: {type: tcp, listen: "127.0.0.1:0", channels: [c]}}, channels: {c: {type: memory}}, sinks: {k: {type: logger, channel: c}}}
`), 0o644)
	cfg, err = config.Load(config.LoadOptions{File: file, Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if specs, err = ingestSpecs(cfg, []string{"b"}); err != nil || len(specs) != 1 || specs[0].Name != "b" {
		t.Fatalf("--agent b: %+v %v", specs, err)
	}
	if _, err = ingestSpecs(cfg, []string{"zz"}); err == nil || !strings.Contains(err.Error(), `no agent "zz"`) {
		t.Fatalf("unknown agent: %v", err)
	}
	comps, mount, err := ingestComponents(cfg, nil, slog.New(slog.DiscardHandler), nil)
	if err != nil || len(comps) != 2 || mount == nil {
		t.Fatalf("components %v %v", comps, err)
	}
	for _, c := range comps {
		c.Stop(context.Background())
	}
	// A Flume file.
	flume := filepath.Join(dir, "agent.properties")
	os.WriteFile(flume, []byte("a1.sources = r1\na1.channels = c1\na1.sinks = k1\n"+
		"a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = 0\na1.sources.r1.channels = c1\n"+
		"a1.channels.c1.type = memory\na1.sinks.k1.type = logger\na1.sinks.k1.channel = c1\n"), 0o644)
	cfg.Ingest.FlumeConf, cfg.Ingest.FlumeAgent = flume, "a1"
	if specs, err = ingestSpecs(cfg, nil); err != nil || specs[0].Sources["r1"]["listen"] != "127.0.0.1:0" {
		t.Fatalf("flume specs %+v %v", specs, err)
	}
	var sb strings.Builder
	writeIngestStatus(&sb, []ingest.Snapshot{{Agent: "a", Kind: "source", Name: "s", Type: "tcp", Counters: map[string]int64{"received": 3}}})
	if !strings.Contains(sb.String(), "received=3") {
		t.Fatalf("status table:\n%s", sb.String())
	}
}

// TestIngestStatusWholeNumbers: gauges print as plain numbers (a 1 GiB channel
// capacity is 1073741824, not 1.073741824e+09).
func TestIngestStatusWholeNumbers(t *testing.T) {
	var b strings.Builder
	err := writeIngestStatus(&b, []ingest.Snapshot{{Agent: "default", Kind: "channel", Name: "events", Type: "file",
		Counters: map[string]int64{"put": 3}, Gauges: map[string]float64{"capacity_bytes": 1 << 30, "events": 0, "fill": 0.25}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "capacity_bytes=1073741824 events=0 fill=0.25 put=3"; !strings.Contains(b.String(), want) {
		t.Fatalf("ingest status printed\n%s\nwant %q", b.String(), want)
	}
}

// TestBadIngestKeyOpensNothing: a bad key in an agent of the config is reported by
// `ingest` and `up` before anything is opened: no file channel is created (or replayed),
// no broker log; the data dir stays empty.
func TestBadIngestKeyOpensNothing(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(filepath.Join(data, "spool"), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "tagpipe.yaml")
	if err := os.WriteFile(file, []byte(`
ingest:
  agents:
    a1:
      sources: {r1: {type: spooldir, dir: `+filepath.Join(data, "spool")+`, channels: [c1], spool_dri: x}}
      channels: {c1: {type: file}}
      sinks: {k1: {type: logger, channel: c1}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"ingest"}, {"up", "--no-sql"}} {
		out, err := runTagpipeErr(append([]string{"--config", file, "--data-dir", data}, cmd...)...)
		if err == nil || !strings.Contains(err.Error(), "ingest.agents.a1.sources.r1.spool_dri: unknown key for spooldir source") {
			t.Fatalf("%v with a bad ingest key: %v\n%s", cmd, err, out)
		}
		if ents, _ := os.ReadDir(data); len(ents) != 1 {
			t.Fatalf("%v opened something before reporting the bad key: %v", cmd, ents)
		}
	}
}
