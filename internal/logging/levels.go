package logging

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// RootLogger is the name of the root logger, as log4j's.
const RootLogger = "root"

// Levels are a process's logger levels, changeable while it runs, as the log4j loggers
// of a Kafka broker that kafka-configs.sh --entity-type broker-loggers shows and sets: a
// root level, and named loggers (one per room or component) that follow the root until
// given a level of their own. The loggers write through one handler, whose own level is
// bypassed: a logger set below it still writes (slog's handlers filter only in Enabled).
type Levels struct {
	inner slog.Handler
	root  atomic.Int64

	mu    sync.Mutex
	named map[string]*namedLevel
}

type namedLevel struct {
	level atomic.Int64
	own   atomic.Bool // false: the root's level
}

// NewLevels makes the levels of loggers writing through h, the root at root.
func NewLevels(h slog.Handler, root slog.Level) *Levels {
	l := &Levels{inner: h, named: map[string]*namedLevel{}}
	l.root.Store(int64(root))
	return l
}

// LevelsOf is the Levels that made logger (Root, Named, Adopt), or nil.
func LevelsOf(logger *slog.Logger) *Levels {
	if h, ok := logger.Handler().(*levelHandler); ok {
		return h.levels
	}
	return nil
}

// Adopt is logger when Levels made it, else the root of new Levels writing through its
// handler, the root at the lowest level that handler lets through (debug, info, warn,
// error; above error when none).
func Adopt(logger *slog.Logger) *slog.Logger {
	if LevelsOf(logger) != nil {
		return logger
	}
	h := logger.Handler()
	root := slog.LevelError + 4
	for _, lv := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
		if h.Enabled(context.Background(), lv) {
			root = lv
			break
		}
	}
	return NewLevels(h, root).Root()
}

// Root is the root logger.
func (l *Levels) Root() *slog.Logger { return slog.New(&levelHandler{inner: l.inner, levels: l}) }

// Named is logger (made by Levels: Adopt it first) as the logger name of its Levels,
// with logger's attributes; the name is then known to List and Set.
func Named(logger *slog.Logger, name string) *slog.Logger {
	h, ok := logger.Handler().(*levelHandler)
	if !ok {
		panic("BUG: logging.Named of a logger that Levels did not make")
	}
	if name == RootLogger {
		return slog.New(&levelHandler{inner: h.inner, levels: h.levels})
	}
	l := h.levels
	l.mu.Lock()
	n := l.named[name]
	if n == nil {
		n = &namedLevel{}
		l.named[name] = n
	}
	l.mu.Unlock()
	return slog.New(&levelHandler{inner: h.inner, levels: l, named: n})
}

// LoggerLevel is one logger's effective level; Own says it is set on the logger rather
// than followed from the root.
type LoggerLevel struct {
	Name  string
	Level slog.Level
	Own   bool
}

// List is every logger known, the root first, then by name.
func (l *Levels) List() []LoggerLevel {
	out := []LoggerLevel{{Name: RootLogger, Level: slog.Level(l.root.Load()), Own: true}}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(l.named)) {
		n := l.named[name]
		out = append(out, LoggerLevel{Name: name, Level: l.level(n), Own: n.own.Load()})
	}
	return out
}

// ErrNoLogger is returned for a logger name that no one asked for.
var ErrNoLogger = errors.New("no such logger")

// Has reports whether the logger name is known.
func (l *Levels) Has(name string) bool {
	if name == RootLogger {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.named[name] != nil
}

// Set gives the logger name its own level (the root's: every logger following it).
func (l *Levels) Set(name string, lv slog.Level) error {
	if name == RootLogger {
		l.root.Store(int64(lv))
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.named[name]
	if n == nil {
		return ErrNoLogger
	}
	n.level.Store(int64(lv))
	n.own.Store(true)
	return nil
}

// Unset makes the logger name follow the root again; the root cannot be unset.
func (l *Levels) Unset(name string) error {
	if name == RootLogger {
		return errors.New("the root logger's level cannot be removed")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.named[name]
	if n == nil {
		return ErrNoLogger
	}
	n.own.Store(false)
	return nil
}

func (l *Levels) level(n *namedLevel) slog.Level {
	if n != nil && n.own.Load() {
		return slog.Level(n.level.Load())
	}
	return slog.Level(l.root.Load())
}

// levelHandler is one logger's handler: its level decides, the inner handler writes.
type levelHandler struct {
	inner  slog.Handler
	levels *Levels
	named  *namedLevel // nil: the root
}

func (h *levelHandler) Enabled(_ context.Context, lv slog.Level) bool {
	return lv >= h.levels.level(h.named)
}

func (h *levelHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

func (h *levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &levelHandler{inner: h.inner.WithAttrs(as), levels: h.levels, named: h.named}
}

func (h *levelHandler) WithGroup(name string) slog.Handler {
	return &levelHandler{inner: h.inner.WithGroup(name), levels: h.levels, named: h.named}
}
