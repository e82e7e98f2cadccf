package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExecSource runs an exec source into a file_roll sink: its lines arrive in order
// with the interceptors' headers; when the command exits (restart off) the source ends
// and the agent's other source goes on.
func TestExecSource(t *testing.T) {
	data := t.TempDir()
	spool := filepath.Join(data, "spool")
	os.MkdirAll(spool, 0o755)
	out := filepath.Join(data, "out")
	spec := fastSpool(Spec{Name: "a1", Where: "ingest.agents.a1",
		Sources: map[string]map[string]string{
			"cmd": {"type": "exec", "channels": "c", "shell": "/bin/sh -c", "command": "printf 'one\\ntwo\\n'; echo three",
				"batch_size": "2", "batch_timeout": "50ms", "restart": "false", "restart_throttle": "10ms",
				"log_stderr": "true", "max_line_bytes": "100",
				"interceptors": "h", "interceptors.h.type": "host"},
			"files": {"type": "spooldir", "dir": spool, "channels": "c"},
		},
		Channels: map[string]map[string]string{"c": {"type": "memory"}},
		Sinks:    map[string]map[string]string{"roll": {"type": "file_roll", "channel": "c", "dir": out}},
	})
	a := build(t, spec, Env{DataDir: data})
	read := func() string {
		var all []string
		files, _ := filepath.Glob(filepath.Join(out, "*.log"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			all = append(all, strings.TrimSpace(string(b)))
		}
		return strings.Join(all, "|")
	}
	waitFor(t, "exec lines in file_roll", func() bool { return read() == "one\ntwo\nthree" })
	src := a.Source("cmd").(interface{ Done() <-chan struct{} })
	waitFor(t, "exec source end", func() bool {
		select {
		case <-src.Done():
			return true
		default:
			return false
		}
	})
	c := a.env.Metrics.Component("a1", "source", "cmd", "exec")
	if c.Get("accepted") != 3 || c.Get("runs") != 1 {
		t.Fatalf("accepted %d runs %d", c.Get("accepted"), c.Get("runs"))
	}
	dropFile(t, spool, "x.log", []string{"four"})
	waitFor(t, "spooled line after the exec source ended", func() bool { return read() == "one\ntwo\nthree\nfour" })
}
