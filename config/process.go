package config

// Log configures the process logger (log/slog).
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

func (l *Log) validate(ch *check) {
	ch.oneOf("level", l.Level, "debug", "info", "warn", "error")
	ch.oneOf("format", l.Format, "text", "json")
}

// Admin configures the admin HTTP listener: /healthz, /readyz, /metrics, the console and
// /v1/query.
type Admin struct {
	// Listen is host:port; empty disables the listener.
	Listen string `yaml:"listen"`
}

func (a *Admin) validate(ch *check) { ch.addr("listen", a.Listen) }
