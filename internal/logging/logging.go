// Package logging builds the process logger from the log section of the config, and
// keeps its loggers' levels changeable while the process runs (Levels).
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"math"
)

// New returns the root logger of new Levels (LevelsOf finds them), writing text or
// JSON, at the given level until Levels change it.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad log level %q: %w", level, err)
	}
	// The handler writes whatever the Levels let through.
	opts := &slog.HandlerOptions{Level: slog.Level(math.MinInt32)}
	var h slog.Handler
	switch format {
	case "text", "":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("bad log format %q: want text or json", format)
	}
	return NewLevels(h, lv).Root(), nil
}
