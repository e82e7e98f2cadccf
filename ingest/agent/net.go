package agent

import "github.com/tagpipe/tagpipe/ingest"

// buildNetSource builds the socket sources (tcp, syslog, http); ok is false for other types.
func (a *Agent) buildNetSource(name, typ string, p *Props, proc *ingest.Processor) (Source, bool, error) {
	return nil, false, nil
}
