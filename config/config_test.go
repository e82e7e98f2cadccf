package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tagpipe.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsNeedNoFile(t *testing.T) {
	c, err := Load(LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "./tagpipe-data" || c.Broker.Listen != "127.0.0.1:9092" || c.Broker.DefaultPartitions != 6 {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if c.Streaming.BatchInterval != 5*time.Second {
		t.Fatalf("batch_interval = %v", c.Streaming.BatchInterval)
	}
	if got := c.SourceOf("broker.listen"); got.Kind != FromDefault {
		t.Fatalf("source = %v", got)
	}
}

func TestLayersAndSources(t *testing.T) {
	p := writeFile(t, "broker:\n  retention_ms: 10000\n  flush: always\n")
	c, err := Load(LoadOptions{
		File:      p,
		Environ:   []string{"TAGPIPE_BROKER_FLUSH=1s", "TAGPIPE_INGEST_BOOTSTRAP_SERVERS=[a:1, b:2]", "PATH=/bin"},
		Overrides: map[string]string{"data_dir": "/tmp/x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.RetentionMS != 10000 || c.Broker.Flush != "1s" || c.DataDir != "/tmp/x" {
		t.Fatalf("layers not applied: %+v", c.Broker)
	}
	if got := strings.Join(c.Ingest.BootstrapServers, ","); got != "a:1,b:2" {
		t.Fatalf("bootstrap_servers = %q", got)
	}
	if got := c.SourceOf("broker.retention_ms").String(); got != "file "+p+":2" {
		t.Fatalf("source = %q", got)
	}
	if got := c.SourceOf("broker.flush").String(); got != "env TAGPIPE_BROKER_FLUSH" {
		t.Fatalf("source = %q", got)
	}
	if got := c.SourceOf("data_dir").String(); got != "flag --data-dir" {
		t.Fatalf("source = %q", got)
	}
}

func TestRejectsWithKeyAndLine(t *testing.T) {
	cases := []struct {
		name, body string
		env        []string
		want       []string
	}{
		{"typo section", "log:\n  level: info\nbrokr:\n  listen: x\n", nil, []string{":3:", `unknown key "brokr" (did you mean "broker"?)`}},
		{"typo key", "broker:\n  retention_m: 5\n", nil, []string{":2:", `unknown key "retention_m" in section "broker" (did you mean "retention_ms"?)`}},
		{"typo in a subsection", "ingest:\n  agents:\n    a1:\n      sourcez:\n        r1: {type: spooldir}\n", nil,
			[]string{":4:", `unknown key "sourcez" in section "ingest.agents.a1" (did you mean "sources"?)`}},
		{"typo with a section value", "sql:\n  pg_listn:\n    x: y\n", nil, []string{":2:", `unknown key "pg_listn" in section "sql" (did you mean "pg_listen"?)`}},
		{"unknown key, nothing close", "zzzzzzzz: 1\n", nil, []string{":1:", `unknown key "zzzzzzzz"`}},
		{"bad int", "broker:\n  listen: 127.0.0.1:1\n  retention_ms: abc\n", nil, []string{":3:", "broker.retention_ms", `"abc"`, "integer"}},
		{"bad duration", "streaming:\n  batch_interval: soon\n", nil, []string{":2:", "streaming.batch_interval", "duration"}},
		{"bad value", "broker:\n  flush: sometimes\n", nil, []string{"broker.flush", "sometimes", ":2"}},
		{"bad compression type", "broker:\n  compression_type: brotli\n", nil, []string{"broker.compression_type", "brotli", "zstd"}},
		{"bad parquet codec", "warehouse:\n  compression: lzo\n", nil, []string{"warehouse.compression", "lzo", "lz4_raw"}},
		{"bad codec level", "warehouse:\n  compression: gzip\n  compression_level: 12\n", nil, []string{"warehouse.compression_level", "1..9 (gzip)", "12"}},
		{"bad env", "", []string{"TAGPIPE_BROKER_RETENTION_MS=abc"}, []string{"TAGPIPE_BROKER_RETENTION_MS", "broker.retention_ms", "integer"}},
		{"unknown env", "", []string{"TAGPIPE_BROKR_LISTEN=x"}, []string{`TAGPIPE_BROKR_LISTEN (did you mean "TAGPIPE_BROKER_LISTEN"?)`}},
		{"bad syntax", "broker:\n  listen: [\n", nil, []string{"tagpipe.yaml:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := LoadOptions{Environ: tc.env}
			if opts.Environ == nil {
				opts.Environ = []string{}
			}
			if tc.body != "" {
				opts.File = writeFile(t, tc.body)
			}
			loadFails(t, opts, tc.want...)
		})
	}
}

// loadFails loads opts, expecting an error that mentions every want.
func loadFails(t *testing.T, opts LoadOptions, want ...string) {
	t.Helper()
	_, err := Load(opts)
	if err == nil {
		t.Fatal("expected an error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestPrintRoundTrips(t *testing.T) {
	c := Default()
	// Awkward strings must survive: a tab, a comment sign, leading space, a quote.
	c.Ingest.Topic = "ev\t#1 \"x\""
	c.Log.Format = "text"
	var buf bytes.Buffer
	if err := c.Print(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "retention_ms: 604800000") || !strings.Contains(buf.String(), "# default") {
		t.Fatalf("print output:\n%s", buf.String())
	}
	// The printed form is a valid config file that yields the same values.
	c2, err := Load(LoadOptions{File: writeFile(t, buf.String()), Environ: []string{}})
	if err != nil {
		t.Fatalf("printed config does not load: %v\n%s", err, buf.String())
	}
	var buf2 bytes.Buffer
	if err := c2.Print(&buf2); err != nil {
		t.Fatal(err)
	}
	strip := func(s string) string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			out = append(out, strings.TrimSpace(strings.Split(l, "#")[0]))
		}
		return strings.Join(out, "\n")
	}
	if c2.Ingest.Topic != c.Ingest.Topic {
		t.Fatalf("topic %q came back as %q", c.Ingest.Topic, c2.Ingest.Topic)
	}
	if strip(buf.String()) != strip(buf2.String()) {
		t.Fatalf("round trip differs:\n%s\n---\n%s", buf.String(), buf2.String())
	}
}

// TestMapSources: a map set in the file (read entry by entry) is printed with the file's
// line as its source, not as a default; an unset map stays a default.
func TestMapSources(t *testing.T) {
	c, err := Load(LoadOptions{File: writeFile(t, "jobs:\n  pools: {db: 2}\n"), Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.SourceOf("jobs.pools"); s.Kind == FromDefault {
		t.Errorf("jobs.pools set in the file has source %v", s)
	}
	if s := c.SourceOf("broker.sasl_users"); s.Kind != FromDefault {
		t.Errorf("broker.sasl_users, not set, has source %v", s)
	}
	var buf bytes.Buffer
	if err := c.Print(&buf); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, "pools:") && strings.Contains(l, "# default") {
			t.Errorf("printed as a default: %s", l)
		}
	}
}
