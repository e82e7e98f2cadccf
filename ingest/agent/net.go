package agent

import (
	"time"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/netsrc"
	"github.com/tagpipe/tagpipe/ingest/syslog"
)

// buildNetSource builds the socket sources (tcp, syslog, http); ok is false for other types.
func (a *Agent) buildNetSource(name, typ string, p *Props, proc *ingest.Processor) (Source, bool, error) {
	switch typ {
	case "tcp", "netcat":
		o := netsrc.TCPOptions{Listen: p.Required("listen"), MaxLineBytes: int(p.Int("max_line_bytes", 512)),
			Ack: p.Bool("ack", true), BatchSize: int(p.Int("batch_size", 100)), MaxConns: int(p.Int("max_conns", 1024)),
			PeerHeader: p.Str("peer_header", ""), Log: a.env.Log, C: proc.C}
		if err := p.Err("tcp source"); err != nil {
			return nil, true, err
		}
		if a.check {
			return nil, true, nil
		}
		s, err := netsrc.NewTCP(name, o, proc)
		return s, true, err
	case "syslog":
		o := syslog.Options{Protocol: p.OneOf("protocol", "tcp", "tcp", "udp"), Listen: p.Required("listen"),
			MaxBytes: int(p.Int("max_line_bytes", 64<<10)), KeepFields: p.Bool("keep_fields", false), Log: a.env.Log, C: proc.C}
		if err := p.Err("syslog source"); err != nil {
			return nil, true, err
		}
		if a.check {
			return nil, true, nil
		}
		s, err := syslog.New(name, o, proc)
		return s, true, err
	case "http":
		o := netsrc.HTTPOptions{Listen: p.Required("listen"), MaxBodyBytes: p.Int("max_body_bytes", 16<<20),
			MaxLineBytes: int(p.Int("max_line_bytes", 1<<20)), RetryAfter: p.Dur("retry_after", time.Second, time.Second),
			Log: a.env.Log, C: proc.C}
		if err := p.Err("http source"); err != nil {
			return nil, true, err
		}
		if a.check {
			return nil, true, nil
		}
		s, err := netsrc.NewHTTP(name, o, proc)
		return s, true, err
	}
	return nil, false, nil
}
