package agent

import (
	"time"

	"github.com/tagpipe/tagpipe/ingest/execsrc"
)

// execOptions reads an exec source's keys (Flume's ExecSource, snake_case).
func execOptions(p *Props) execsrc.Options {
	o := execsrc.DefaultOptions(p.Required("command"))
	o.Shell = p.Str("shell", "")
	o.Restart = p.Bool("restart", false)
	o.RestartThrottle = p.Dur("restart_throttle", o.RestartThrottle, time.Millisecond)
	o.LogStderr = p.Bool("log_stderr", false)
	o.BatchSize = int(p.Int("batch_size", int64(o.BatchSize)))
	o.BatchTimeout = p.Dur("batch_timeout", o.BatchTimeout, time.Millisecond)
	o.MaxLineBytes = int(p.Int("max_line_bytes", int64(o.MaxLineBytes)))
	return o
}
