package jobs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// RunContext is what a task gets besides its context (which is cancelled on timeout and
// on shutdown).
type RunContext struct {
	Job string
	// DS is the logical date (YYYY-MM-DD in the job's zone).
	DS string
	// Logical is the start of the data interval, IntervalEnd its end (the tick the run
	// was scheduled for).
	Logical, IntervalEnd time.Time
	// Attempt counts from 1.
	Attempt int
	Log     *slog.Logger
	// Output receives the task's own output (the attempt's log file).
	Output io.Writer
	// InheritFiles should be passed to child processes the task starts (exec.Cmd
	// ExtraFiles): it holds the run's lock, so if this scheduler dies (kill -9) the lock
	// stays held until the task's processes are gone too, and no other scheduler starts
	// the same run while they still write.
	InheritFiles []*os.File
	// State and Error are set for callbacks (on_failure, on_retry, on_success): the
	// run's state and its last attempt's error.
	State State
	Error string
}

// Task is one runnable unit; it returns the rows it wrote. Running it again for the same
// ds must overwrite what the earlier run wrote (idempotent).
type Task interface {
	Run(ctx context.Context, rc RunContext) (rows int64, err error)
}

// TaskFunc adapts a function to Task.
type TaskFunc func(ctx context.Context, rc RunContext) (int64, error)

// Run calls f.
func (f TaskFunc) Run(ctx context.Context, rc RunContext) (int64, error) { return f(ctx, rc) }

// KindFunc builds a Task from a definition's task spec, refusing a bad spec (it is called
// at load, so errors show before anything runs).
type KindFunc func(spec TaskSpec) (Task, error)

// Kinds is the registry of task kinds and sensor kinds. NewKinds has "shell" and the
// "file" sensor; cmd/tagpipe registers the rest (sql, builtin; partition and streaming
// sensors) from other rooms.
type Kinds struct {
	mu      sync.Mutex
	kinds   map[string]KindFunc
	sensors map[string]SensorKindFunc
}

// NewKinds returns a registry holding the built-in shell kind and file sensor.
func NewKinds() *Kinds {
	k := &Kinds{kinds: map[string]KindFunc{}, sensors: map[string]SensorKindFunc{}}
	k.Register("shell", shellKind)
	k.RegisterSensor("file", fileSensor)
	return k
}

// Register adds or replaces a kind.
func (k *Kinds) Register(name string, f KindFunc) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kinds[name] = f
}

// Names lists the registered kinds.
func (k *Kinds) Names() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for n := range k.kinds {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (k *Kinds) build(spec TaskSpec) (Task, error) {
	if spec.Kind == "" {
		return nil, fmt.Errorf("kind must be set (one of %s)", strings.Join(k.Names(), ", "))
	}
	k.mu.Lock()
	f := k.kinds[spec.Kind]
	k.mu.Unlock()
	if f == nil {
		return nil, fmt.Errorf("unknown kind %q (have %s)", spec.Kind, strings.Join(k.Names(), ", "))
	}
	t, err := f(spec)
	if err != nil {
		return nil, fmt.Errorf("kind %s: %w", spec.Kind, err)
	}
	return t, nil
}

// BuiltinKind is a kind whose tasks are named Go functions: `task: {kind: builtin, name:
// tags_nightly}`. cmd/tagpipe registers it with the functions other rooms provide.
func BuiltinKind(funcs map[string]TaskFunc) KindFunc {
	return func(spec TaskSpec) (Task, error) {
		f := funcs[spec.Name]
		if f == nil {
			var names []string
			for n := range funcs {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("unknown builtin %q (have %s)", spec.Name, strings.Join(names, ", "))
		}
		return f, nil
	}
}
