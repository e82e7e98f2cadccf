package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SensorSpec is one condition a job's run waits for before its first attempt
// (`wait_for:`), in the spirit of Airflow's sensors (Def.SensorMode: poke or
// reschedule). Kind picks the sensor; the other fields are read by that kind
// ({{ds}}-style macros are expanded): file (path, a glob: FileSensor), and the kinds
// cmd/tagpipe registers from other rooms (partition: table, partition; streaming:
// pipeline, delay).
type SensorSpec struct {
	Kind      string        `yaml:"kind"`
	Path      string        `yaml:"path"`
	Table     string        `yaml:"table"`
	Partition string        `yaml:"partition"`
	Pipeline  string        `yaml:"pipeline"`
	Delay     time.Duration `yaml:"delay"`
}

// Sensor checks its condition for a run. Poke says whether it holds now; when it does
// not, waiting says what is awaited (for the logs and the error on timeout).
type Sensor interface {
	Poke(ctx context.Context, rc RunContext) (ok bool, waiting string, err error)
}

// SensorFunc adapts a function to Sensor.
type SensorFunc func(ctx context.Context, rc RunContext) (bool, string, error)

// Poke calls f.
func (f SensorFunc) Poke(ctx context.Context, rc RunContext) (bool, string, error) { return f(ctx, rc) }

// SensorKindFunc builds a Sensor from a spec, refusing a bad one (at load).
type SensorKindFunc func(spec SensorSpec) (Sensor, error)

// RegisterSensor adds or replaces a sensor kind.
func (k *Kinds) RegisterSensor(name string, f SensorKindFunc) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sensors[name] = f
}

func (k *Kinds) buildSensor(spec SensorSpec) (Sensor, error) {
	k.mu.Lock()
	f := k.sensors[spec.Kind]
	var names []string
	for n := range k.sensors {
		names = append(names, n)
	}
	k.mu.Unlock()
	if f == nil {
		sort.Strings(names)
		return nil, fmt.Errorf("unknown sensor kind %q (have %s)", spec.Kind, strings.Join(names, ", "))
	}
	s, err := f(spec)
	if err != nil {
		return nil, fmt.Errorf("sensor %s: %w", spec.Kind, err)
	}
	return s, nil
}

// fileSensor waits until a path (a glob) exists: Airflow's FileSensor, for a done-file an
// upstream system drops.
func fileSensor(spec SensorSpec) (Sensor, error) {
	if spec.Path == "" {
		return nil, errors.New("path must be set")
	}
	if _, err := filepath.Match(spec.Path, ""); err != nil {
		return nil, fmt.Errorf("bad path pattern %q: %w", spec.Path, err)
	}
	return SensorFunc(func(_ context.Context, rc RunContext) (bool, string, error) {
		p := rc.Expand(spec.Path)
		m, err := filepath.Glob(p)
		if err != nil {
			return false, "", err
		}
		return len(m) > 0, "file " + p, nil
	}), nil
}

// Expand replaces the Airflow-style macros in text: {{ds}}, {{ds_nodash}}, {{ts}},
// {{next_ds}} (the interval end's date), {{job}} and {{attempt}}, with or without the
// spaces inside the braces.
func (rc RunContext) Expand(text string) string {
	if !strings.Contains(text, "{{") {
		return text
	}
	nextDS := ""
	if !rc.IntervalEnd.IsZero() {
		nextDS = rc.IntervalEnd.In(rc.Logical.Location()).Format(time.DateOnly)
	}
	var pairs []string
	for _, m := range [][2]string{
		{"ds", rc.DS}, {"ds_nodash", strings.ReplaceAll(rc.DS, "-", "")}, {"ts", rc.Logical.Format(time.RFC3339)},
		{"next_ds", nextDS}, {"job", rc.Job}, {"attempt", strconv.Itoa(rc.Attempt)},
	} {
		pairs = append(pairs, "{{"+m[0]+"}}", m[1], "{{ "+m[0]+" }}", m[1])
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

// errWaitTimeout is in the error of a run whose sensors did not all hold in time.
var errWaitTimeout = errors.New("wait_for timed out")

// openWaitLog opens <dir>/logs/<job>/<ts>/wait.log for appending: what a run waited for.
func (s *Scheduler) openWaitLog(j *Job, logical time.Time) (*os.File, error) {
	logDir := filepath.Join(s.opts.Dir, "logs", j.Name, tsKey(logical))
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create log dir: %w", err)
	}
	out, err := os.OpenFile(filepath.Join(logDir, "wait.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot create wait log: %w", err)
	}
	return out, nil
}

// pokeAll checks each of j's sensors once and says what does not hold yet ("" = all
// hold). A failing check (a store briefly unreadable) is not the condition failing: it
// is named with its error and poked again. When the answer differs from last it is
// written to rc.Output and logged.
func (s *Scheduler) pokeAll(ctx context.Context, j *Job, rc RunContext, last string) string {
	var pending []string
	for i, sn := range j.sensors {
		ok, waiting, err := sn.Poke(ctx, rc)
		switch {
		case err != nil:
			pending = append(pending, fmt.Sprintf("%s (check failed: %v)", j.WaitFor[i].Kind, err))
		case !ok:
			pending = append(pending, waiting)
		}
	}
	msg := strings.Join(pending, "; ")
	switch {
	case msg == "":
		fmt.Fprintf(rc.Output, "%s all %d conditions hold\n", s.now().UTC().Format(time.RFC3339), len(j.sensors))
	case msg != last:
		fmt.Fprintf(rc.Output, "%s waiting for %s\n", s.now().UTC().Format(time.RFC3339), msg)
		rc.Log.Info("waiting", "for", msg)
	}
	return msg
}

// waitTimedOut is the error of a run whose conditions did not hold within wait_timeout.
func waitTimedOut(j *Job, waiting string) error {
	return fmt.Errorf("%w after %v: still waiting for %s", errWaitTimeout, j.WaitTimeout, waiting)
}

// wait pokes j's sensors every PokeInterval until all hold, the job's WaitTimeout passes
// (an errWaitTimeout error: the run fails without retries, as an Airflow sensor's
// timeout does) or ctx ends; the run holds its slot meanwhile (poke mode). Progress goes
// to <dir>/logs/<job>/<ts>/wait.log.
func (s *Scheduler) wait(ctx context.Context, j *Job, rc RunContext) error {
	out, err := s.openWaitLog(j, rc.Logical)
	if err != nil {
		return err
	}
	defer out.Close()
	rc.Output = out
	deadline := s.now().Add(j.WaitTimeout)
	last := ""
	for {
		if last = s.pokeAll(ctx, j, rc, last); last == "" {
			return nil
		}
		left := deadline.Sub(s.now())
		if left <= 0 {
			return waitTimedOut(j, last)
		}
		t := time.NewTimer(min(j.PokeInterval, left))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// rescheduled is what execute returns for a run that waits holding no slot: a run of a
// sensor_mode reschedule job whose conditions do not hold yet (State up_for_reschedule:
// poked again at At), or a run whose attempt failed with retries left (up_for_retry:
// tried again at At). It was recorded in that state; its caller gives its slots back.
type rescheduled struct {
	At    time.Time
	State State
}

func (r *rescheduled) Error() string {
	if r.State == StateUpForRetry {
		return "attempt failed; up_for_retry until " + r.At.UTC().Format(time.RFC3339)
	}
	return "wait_for conditions do not hold yet; up_for_reschedule until " + r.At.UTC().Format(time.RFC3339)
}

// pokeOnce is one poke of a sensor_mode reschedule run whose first poke was at first;
// prevWaiting is what its previous poke still waited for. It says what does not hold yet
// ("" = all hold), or an errWaitTimeout error once WaitTimeout has passed since first,
// and when to poke again.
func (s *Scheduler) pokeOnce(ctx context.Context, j *Job, rc RunContext, first time.Time, prevWaiting string) (waiting string, next time.Time, err error) {
	out, err := s.openWaitLog(j, rc.Logical)
	if err != nil {
		return "", time.Time{}, err
	}
	defer out.Close()
	rc.Output = out
	if waiting = s.pokeAll(ctx, j, rc, prevWaiting); waiting == "" {
		return "", time.Time{}, nil
	}
	deadline := first.Add(j.WaitTimeout)
	now := s.now()
	if !now.Before(deadline) {
		return waiting, time.Time{}, waitTimedOut(j, waiting)
	}
	if next = now.Add(j.PokeInterval); next.After(deadline) {
		next = deadline
	}
	return waiting, next, nil
}
