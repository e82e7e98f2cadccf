package sink

import (
	"context"
	"log/slog"

	"github.com/tagpipe/tagpipe/ingest"
)

// Logger logs every event at info level (Flume's logger sink), body cut at MaxBytes.
type Logger struct {
	name     string
	log      *slog.Logger
	maxBytes int
}

// NewLogger returns a logger sink; maxBytes <= 0 means 16 (Flume's default).
func NewLogger(name string, log *slog.Logger, maxBytes int) *Logger {
	if maxBytes <= 0 {
		maxBytes = 16
	}
	if log == nil {
		log = slog.Default()
	}
	return &Logger{name: name, log: log, maxBytes: maxBytes}
}

func (l *Logger) Name() string { return l.name }

func (l *Logger) Deliver(_ context.Context, evs []ingest.Event) error {
	for _, e := range evs {
		b := e.Body
		if len(b) > l.maxBytes {
			b = b[:l.maxBytes]
		}
		l.log.Info("event", "sink", l.name, "headers", e.Headers.Map(), "body", string(b))
	}
	return nil
}

func (l *Logger) Close() error { return nil }
