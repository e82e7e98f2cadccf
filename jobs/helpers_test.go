package jobs

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

// call is one task invocation seen by a recorder.
type call struct {
	job, ds string
	attempt int
	at      time.Time
}

// recorder is a set of in-process tasks ("func" kind) that log their calls.
type recorder struct {
	mu    sync.Mutex
	calls []call
	now   func() time.Time
	// fail makes a job's task fail (always).
	fail map[string]bool
}

func (r *recorder) task(name string) TaskFunc {
	return func(ctx context.Context, rc RunContext) (int64, error) {
		r.mu.Lock()
		r.calls = append(r.calls, call{job: rc.Job, ds: rc.DS, attempt: rc.Attempt, at: r.now()})
		fail := r.fail[name]
		r.mu.Unlock()
		if fail {
			return 0, fmt.Errorf("%s is broken", name)
		}
		return 10, nil
	}
}

func (r *recorder) kinds(names ...string) *Kinds {
	funcs := map[string]TaskFunc{}
	for _, n := range names {
		funcs[n] = r.task(n)
	}
	k := NewKinds()
	k.Register("func", BuiltinKind(funcs))
	return k
}

func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// seq lists "job ds" per call.
func (r *recorder) seq() []string {
	var out []string
	for _, c := range r.snapshot() {
		out = append(out, c.job+" "+c.ds)
	}
	return out
}

func daily(name string, deps ...string) Def {
	return Def{Name: name, Schedule: "@daily", DependsOn: deps, Task: TaskSpec{Kind: "func", Name: name}}
}

// shiftedNow is a clock reading base at the moment it is made, moving with the runtime
// clock (the synctest bubble's fake clock inside synctest.Test).
func shiftedNow(base time.Time) func() time.Time {
	t0 := time.Now()
	return func() time.Time { return base.Add(time.Since(t0)) }
}

func mustCompile(t *testing.T, defs []Def, k *Kinds) *DAG {
	t.Helper()
	d, err := Compile(defs, k, DefaultDefaults())
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return d
}

func mustNew(t *testing.T, dag *DAG, dir string, now func() time.Time) *Scheduler {
	t.Helper()
	s, err := New(dag, Options{Dir: dir, Now: now, Owner: "test"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func mustStart(t *testing.T, s *Scheduler) {
	t.Helper()
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

func eqStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s:\n got  %q\n want %q", what, got, want)
	}
}
