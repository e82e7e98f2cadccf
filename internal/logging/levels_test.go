package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// TestLevels: named loggers follow the root until given a level of their own, write
// below the handler's own level when set so, keep their attributes, and go back to the
// root's on Unset; the root cannot be unset, an unknown logger is ErrNoLogger.
func TestLevels(t *testing.T) {
	var buf bytes.Buffer
	root, err := New(&buf, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	levels := LevelsOf(root)
	if levels == nil {
		t.Fatal("LevelsOf(New(...)) is nil")
	}
	broker := Named(root.With("component", "broker"), "broker")
	Named(root, "groups")
	logged := func(l *slog.Logger, msg string) bool {
		buf.Reset()
		l.Debug(msg)
		return strings.Contains(buf.String(), msg)
	}
	if logged(broker, "d1") || logged(root, "d2") {
		t.Fatal("debug written at info")
	}
	if err := levels.Set("broker", slog.LevelDebug); err != nil {
		t.Fatal(err)
	}
	if !logged(broker, "d3") || !strings.Contains(buf.String(), "component=broker") {
		t.Fatalf("broker at debug: %q", buf.String())
	}
	if logged(root, "d4") {
		t.Fatal("the root followed a named logger")
	}
	want := []LoggerLevel{{"root", slog.LevelInfo, true}, {"broker", slog.LevelDebug, true}, {"groups", slog.LevelInfo, false}}
	if got := levels.List(); !slices.Equal(got, want) {
		t.Fatalf("List: %v, want %v", got, want)
	}
	if err := levels.Set(RootLogger, slog.LevelError); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	Named(root, "groups").Warn("w1")
	if buf.Len() != 0 || !logged(broker, "d5") {
		t.Fatalf("groups should follow the root (error), broker keep debug: %q", buf.String())
	}
	if err := levels.Unset("broker"); err != nil {
		t.Fatal(err)
	}
	if logged(broker, "d6") {
		t.Fatal("broker at debug after Unset")
	}
	if err := levels.Unset(RootLogger); err == nil {
		t.Fatal("the root logger was unset")
	}
	if err := levels.Set("nosuch", slog.LevelDebug); !errors.Is(err, ErrNoLogger) || levels.Has("nosuch") || !levels.Has("groups") {
		t.Fatalf("Set of an unknown logger: %v", err)
	}
}

// TestAdopt: a logger Levels did not make gets Levels whose root is its handler's level.
func TestAdopt(t *testing.T) {
	var buf bytes.Buffer
	l := Adopt(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if got := LevelsOf(l).List()[0]; got.Level != slog.LevelWarn {
		t.Fatalf("root %v, want WARN", got)
	}
	if Adopt(l) != l {
		t.Fatal("Adopt of a Levels logger made new Levels")
	}
	if got := LevelsOf(Adopt(slog.New(slog.DiscardHandler))).List()[0].Level; got <= slog.LevelError {
		t.Fatalf("discard root %v, want above ERROR", got)
	}
}
