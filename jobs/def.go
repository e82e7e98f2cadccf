package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// Def is one job definition as written in tagpipe.yaml (jobs.definitions) or in a
// jobs/*.yaml file. Zero values take the Defaults given to Compile.
type Def struct {
	// Name identifies the job: letters, digits, '_', '-', '.'.
	Name string `yaml:"name"`
	// Schedule is a cron spec: five fields, or six with leading seconds, or a descriptor
	// (@daily, @hourly, @weekly, @monthly, @yearly, @every 1h).
	Schedule string `yaml:"schedule"`
	// Timezone is the IANA zone the schedule is read in; empty = Defaults.Timezone.
	Timezone string `yaml:"timezone"`
	// DependsOn lists jobs whose runs for the same ds come first; TriggerRule says what
	// they must have done (default: succeeded).
	DependsOn []string `yaml:"depends_on"`
	// DependsOnPast holds a scheduled run until the job's run before it (the latest
	// recorded one) has succeeded or been skipped, as Airflow's depends_on_past: a failed
	// day stops the days after it until it is run again successfully. The job's first run passes; a
	// backfill checks the run before each ds within the backfill.
	DependsOnPast bool `yaml:"depends_on_past"`
	// TriggerRule says when a run starts given the depends_on jobs' runs of the same ds,
	// as Airflow's trigger_rule: all_success (default), all_done, all_failed,
	// one_failed, one_success, none_failed, always (see TriggerRule).
	TriggerRule string   `yaml:"trigger_rule"`
	Task        TaskSpec `yaml:"task"`
	// Timeout bounds one attempt; the task's context is cancelled when it passes.
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many times a failed attempt is retried (-1 = none, 0 = default).
	Retries int `yaml:"retries"`
	// RetryDelay is the wait before the first retry; it doubles each retry up to
	// MaxRetryDelay.
	RetryDelay    time.Duration `yaml:"retry_delay"`
	MaxRetryDelay time.Duration `yaml:"max_retry_delay"`
	// MaxActiveRuns caps concurrent runs of this job (different ds); 0 = default.
	MaxActiveRuns int `yaml:"max_active_runs"`
	// Pool names the pool (Defaults.Pools) whose slots the job's runs take, as Airflow's
	// pool; empty = DefaultPool. PoolSlots is how many a run takes (0 = 1).
	Pool      string `yaml:"pool"`
	PoolSlots int    `yaml:"pool_slots"`
	// PriorityWeight and WeightRule are Airflow's: when queued runs compete for pool
	// slots, the scheduler's parallelism or max_active_runs, the one with the highest
	// effective weight starts first (ties: earlier logical date, then job name).
	// PriorityWeight is the job's own weight (nil = 1; 0 and up). WeightRule says what
	// the effective weight adds to it: "downstream" (default: the weights of every job
	// depending on it, directly or not, so upstream work goes first), "upstream" (of every
	// job it depends on: a day's DAG is finished before the next one's starts) or
	// "absolute" (nothing).
	PriorityWeight *int   `yaml:"priority_weight"`
	WeightRule     string `yaml:"weight_rule"`
	// Catchup runs every missed interval after downtime (true) or only the latest
	// (false); nil = Defaults.Catchup.
	Catchup *bool `yaml:"catchup"`
	// StartDate (YYYY-MM-DD, in the job's zone) is the first logical date the scheduler
	// runs; empty = the interval in progress when the scheduler first sees the job.
	StartDate string `yaml:"start_date"`
	// Paused jobs are not scheduled (manual runs and backfills still work).
	Paused bool `yaml:"paused"`
	// WaitFor lists conditions (sensors) a run waits for before its first attempt,
	// checked every PokeInterval (default 1m) for up to WaitTimeout (default 24h); a
	// run whose conditions do not all hold in time fails, without retries.
	WaitFor      []SensorSpec  `yaml:"wait_for"`
	PokeInterval time.Duration `yaml:"poke_interval"`
	WaitTimeout  time.Duration `yaml:"wait_timeout"`
	// SensorMode is how a run waits for its WaitFor conditions, as Airflow's sensor mode:
	// "poke" (default) holds one of the scheduler's parallelism slots while it waits;
	// "reschedule" pokes once, and while the conditions do not hold the run is
	// up_for_reschedule, holding no slot, and is poked again after PokeInterval.
	// WaitTimeout counts from the first poke either way.
	SensorMode string `yaml:"sensor_mode"`
	// OnFailure, OnRetry and OnSuccess are tasks run when the run fails for good, when
	// an attempt fails and will be retried, and when the run succeeds (Airflow's
	// on_*_callback): alerts, clean-ups. They see the run's state and error
	// (RunContext.State, .Error; TAGPIPE_STATE, TAGPIPE_ERROR for shell). Their own
	// failure is logged and changes nothing.
	OnFailure *TaskSpec `yaml:"on_failure"`
	OnRetry   *TaskSpec `yaml:"on_retry"`
	OnSuccess *TaskSpec `yaml:"on_success"`
}

// Weight rules (Def.WeightRule).
const (
	WeightDownstream = "downstream"
	WeightUpstream   = "upstream"
	WeightAbsolute   = "absolute"
)

// maxPriorityWeight is the largest priority_weight (Airflow's bound, a 32-bit int); the
// sums of a DAG's weights stay far inside an int.
const maxPriorityWeight = 1<<31 - 1

// Sensor modes (Def.SensorMode).
const (
	SensorModePoke       = "poke"
	SensorModeReschedule = "reschedule"
)

// TaskSpec says what a job runs. Kind picks the task kind; the other fields are read by
// that kind (shell: command, env, dir; sql: script or file, table; builtin: name, args).
type TaskSpec struct {
	Kind    string            `yaml:"kind"`
	Command string            `yaml:"command"`
	Dir     string            `yaml:"dir"`
	Script  string            `yaml:"script"`
	File    string            `yaml:"file"`
	Table   string            `yaml:"table"`
	Name    string            `yaml:"name"`
	Env     map[string]string `yaml:"env"`
	Args    map[string]string `yaml:"args"`
}

// Defaults fill the fields a Def leaves empty.
type Defaults struct {
	Timezone      string
	Catchup       bool
	MaxActiveRuns int
	Retries       int
	RetryDelay    time.Duration
	MaxRetryDelay time.Duration
	// Timeout 0 means no timeout.
	Timeout time.Duration
	// Pools are the pools jobs may name, with their slots (jobs.pools); DefaultPool,
	// when not among them, has the scheduler's Parallelism slots.
	Pools map[string]int
}

// DefaultDefaults is what tagpipe ships (config/defaults/50_jobs.yaml says the same).
func DefaultDefaults() Defaults {
	return Defaults{Timezone: "UTC", Catchup: true, MaxActiveRuns: 1, Retries: 2,
		RetryDelay: time.Minute, MaxRetryDelay: time.Hour, Timeout: 6 * time.Hour}
}

// Job is a compiled, validated definition.
type Job struct {
	Def
	Loc           *time.Location
	CatchupOn     bool
	sched         *schedule
	task          Task
	start         time.Time // zero = none
	upstream      []string
	downstream    []string
	rule          TriggerRule
	topo          int
	maxRetries    int
	maxActiveRuns int
	pool          string
	poolSlots     int
	ownWeight     int
	weightRule    string
	weight        int // effective: ownWeight plus the jobs weightRule names
	sensors       []Sensor
	reschedule    bool           // sensor_mode: reschedule
	callbacks     map[State]Task // StateFailed, StateUpForRetry, StateSuccess
}

// DAG is a validated set of jobs.
type DAG struct {
	jobs  map[string]*Job
	order []string // topological, ties by name
	pools map[string]int
}

// Job returns the named job.
func (d *DAG) Job(name string) (*Job, bool) { j, ok := d.jobs[name]; return j, ok }

// Find is the named job, or an error that names it and says how to list the jobs.
func (d *DAG) Find(name string) (*Job, error) {
	if j, ok := d.jobs[name]; ok {
		return j, nil
	}
	return nil, fmt.Errorf("unknown job %q (`tagpipe jobs list` lists the jobs)", name)
}

// Names lists the jobs in topological order (upstream first, ties by name).
func (d *DAG) Names() []string { return append([]string(nil), d.order...) }

// Downstream lists job and every job that depends on it, directly or not, in
// topological order.
func (d *DAG) Downstream(job string) []string {
	want := map[string]bool{}
	var walk func(n string)
	walk = func(n string) {
		if want[n] || d.jobs[n] == nil {
			return
		}
		want[n] = true
		for _, dn := range d.jobs[n].downstream {
			walk(dn)
		}
	}
	walk(job)
	var out []string
	for _, n := range d.order {
		if want[n] {
			out = append(out, n)
		}
	}
	return out
}

// Upstream is the job's depends_on list.
func (j *Job) Upstream() []string { return j.upstream }

// Rule is the job's trigger_rule (all_success when the definition names none).
func (j *Job) Rule() TriggerRule { return j.rule }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// DefError is a definition refused at load; it names the job and the field.
type DefError struct {
	File   string
	Job    string
	Field  string
	Reason string
}

func (e *DefError) Error() string {
	s := fmt.Sprintf("job %q: %s: %s", e.Job, e.Field, e.Reason)
	if e.File != "" {
		s = e.File + ": " + s
	}
	return s
}

// Compile validates defs and builds the DAG. Every problem is reported (errors.Join of
// *DefError), each naming the job and the field: unknown depends_on, bad cron spec, a
// cycle (named a -> b -> a), unknown task kind, bad zone, unknown trigger_rule,
// sensor_mode, weight_rule or pool, a negative priority_weight, duplicate names. It
// fixes each job's effective priority weight (priority.go).
func Compile(defs []Def, kinds *Kinds, dflt Defaults) (*DAG, error) {
	var errs []error
	fail := func(job, field, format string, args ...any) {
		errs = append(errs, &DefError{Job: job, Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	d := &DAG{jobs: map[string]*Job{}, pools: map[string]int{}}
	for n, size := range dflt.Pools {
		if size < 1 {
			fail("", "pools", "pool %q must have at least 1 slot, got %d", n, size)
		}
		if !nameRE.MatchString(n) {
			// It names a directory (pools/<pool>/) in the jobs dir.
			fail("", "pools", "pool %q: name must be letters, digits, '_', '-', '.'", n)
		}
		d.pools[n] = size
	}
	for i := range defs {
		def := defs[i]
		if !nameRE.MatchString(def.Name) {
			fail(def.Name, "name", "must be letters, digits, '_', '-', '.' (definition #%d)", i+1)
			continue
		}
		if _, dup := d.jobs[def.Name]; dup {
			fail(def.Name, "name", "defined twice")
			continue
		}
		j := &Job{Def: def}
		tz := def.Timezone
		if tz == "" {
			tz = dflt.Timezone
		}
		loc, err := time.LoadLocation(tz)
		if err != nil {
			fail(def.Name, "timezone", "unknown time zone %q", tz)
			loc = time.UTC
		}
		j.Loc = loc
		if def.Schedule == "" {
			fail(def.Name, "schedule", "must not be empty (cron spec or @daily)")
		} else if s, err := parseSchedule(def.Schedule, loc); err != nil {
			fail(def.Name, "schedule", "bad cron spec %q: %v", def.Schedule, err)
		} else {
			j.sched = s
		}
		if r, err := parseTriggerRule(def.TriggerRule); err != nil {
			fail(def.Name, "trigger_rule", "%v", err)
		} else {
			j.rule = r
		}
		j.CatchupOn = dflt.Catchup
		if def.Catchup != nil {
			j.CatchupOn = *def.Catchup
		}
		if def.StartDate != "" {
			t, err := time.ParseInLocation(time.DateOnly, def.StartDate, loc)
			if err != nil {
				fail(def.Name, "start_date", "want YYYY-MM-DD, got %q", def.StartDate)
			}
			j.start = t
		}
		if j.Timeout == 0 {
			j.Timeout = dflt.Timeout
		}
		if j.Timeout < 0 {
			fail(def.Name, "timeout", "must be >= 0, got %v", def.Timeout)
		}
		switch {
		case def.Retries < -1:
			fail(def.Name, "retries", "must be >= -1 (-1 = none), got %d", def.Retries)
		case def.Retries == -1:
			j.maxRetries = 0
		case def.Retries == 0:
			j.maxRetries = dflt.Retries
		default:
			j.maxRetries = def.Retries
		}
		if j.RetryDelay == 0 {
			j.RetryDelay = dflt.RetryDelay
		}
		if j.MaxRetryDelay == 0 {
			j.MaxRetryDelay = dflt.MaxRetryDelay
		}
		if j.RetryDelay < 0 || j.MaxRetryDelay < 0 {
			fail(def.Name, "retry_delay", "must be >= 0")
		}
		j.maxActiveRuns = def.MaxActiveRuns
		if j.maxActiveRuns == 0 {
			j.maxActiveRuns = dflt.MaxActiveRuns
		}
		if j.maxActiveRuns < 1 {
			fail(def.Name, "max_active_runs", "must be > 0, got %d", def.MaxActiveRuns)
		}
		j.checkPool(dflt.Pools, fail)
		j.checkWeight(fail)
		if t, err := kinds.build(def.Task); err != nil {
			fail(def.Name, "task", "%v", err)
		} else {
			j.task = t
		}
		for i, spec := range def.WaitFor {
			if sn, err := kinds.buildSensor(spec); err != nil {
				fail(def.Name, fmt.Sprintf("wait_for[%d]", i), "%v", err)
			} else {
				j.sensors = append(j.sensors, sn)
			}
		}
		j.callbacks = map[State]Task{}
		for _, cb := range []struct {
			field string
			state State
			spec  *TaskSpec
		}{{"on_failure", StateFailed, def.OnFailure}, {"on_retry", StateUpForRetry, def.OnRetry}, {"on_success", StateSuccess, def.OnSuccess}} {
			if cb.spec == nil {
				continue
			}
			if t, err := kinds.build(*cb.spec); err != nil {
				fail(def.Name, cb.field, "%v", err)
			} else {
				j.callbacks[cb.state] = t
			}
		}
		if j.PokeInterval == 0 {
			j.PokeInterval = time.Minute
		}
		if j.WaitTimeout == 0 {
			j.WaitTimeout = 24 * time.Hour
		}
		if j.PokeInterval < 0 || j.WaitTimeout < 0 {
			fail(def.Name, "wait_timeout", "poke_interval and wait_timeout must be >= 0")
		}
		switch def.SensorMode {
		case "", SensorModePoke:
		case SensorModeReschedule:
			j.reschedule = true
		default:
			fail(def.Name, "sensor_mode", "unknown mode %q (want %s or %s)", def.SensorMode, SensorModePoke, SensorModeReschedule)
		}
		d.jobs[def.Name] = j
	}
	names := make([]string, 0, len(d.jobs))
	for n := range d.jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		j := d.jobs[n]
		seen := map[string]bool{}
		for _, up := range j.DependsOn {
			switch {
			case up == n:
				fail(n, "depends_on", "cycle: %s -> %s", n, n)
			case seen[up]:
				fail(n, "depends_on", "%q listed twice", up)
			case d.jobs[up] == nil:
				fail(n, "depends_on", "unknown job %q", up)
			default:
				j.upstream = append(j.upstream, up)
				d.jobs[up].downstream = append(d.jobs[up].downstream, n)
			}
			seen[up] = true
		}
	}
	order, cycle := topoSort(d.jobs, names)
	if cycle != nil {
		fail(cycle[0], "depends_on", "cycle: %s (each depends on the next)", strings.Join(cycle, " -> "))
	}
	d.order = order
	for i, n := range order {
		d.jobs[n].topo = i
	}
	if cycle == nil {
		d.weigh()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// topoSort orders jobs upstream first (Kahn, ties by name). On a cycle it returns one
// cycle as a closed path (a, b, a).
func topoSort(jobs map[string]*Job, names []string) ([]string, []string) {
	indeg := map[string]int{}
	for _, n := range names {
		indeg[n] = len(jobs[n].upstream)
	}
	var order []string
	done := map[string]bool{}
	for len(order) < len(names) {
		progressed := false
		for _, n := range names {
			if done[n] || indeg[n] > 0 {
				continue
			}
			done[n] = true
			order = append(order, n)
			progressed = true
			for _, dn := range jobs[n].downstream {
				indeg[dn]--
			}
			break // restart so ties stay in name order
		}
		if !progressed {
			break
		}
	}
	if len(order) == len(names) {
		return order, nil
	}
	// Walk upstream edges among the remaining jobs until a name repeats.
	var start string
	for _, n := range names {
		if !done[n] {
			start = n
			break
		}
	}
	path := []string{start}
	at := map[string]int{start: 0}
	cur := start
	for {
		var next string
		for _, up := range jobs[cur].upstream {
			if !done[up] {
				next = up
				break
			}
		}
		if i, ok := at[next]; ok {
			return order, append(path[i:], next)
		}
		at[next] = len(path)
		path = append(path, next)
		cur = next
	}
}

// LoadDir reads every *.yaml / *.yml file in dir (sorted by name). A file holds
// `jobs: [ {name: …}, … ]`; unknown keys are refused with file, line and key.
func LoadDir(dir string) ([]Def, error) {
	if dir == "" {
		return nil, nil
	}
	var files []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return nil, fmt.Errorf("cannot list job files in %q: %w", dir, err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	var defs []Def
	for _, f := range files {
		d, err := LoadFile(f)
		if err != nil {
			return nil, err
		}
		defs = append(defs, d...)
	}
	return defs, nil
}

// LoadFile reads one job definition file.
func LoadFile(path string) ([]Def, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read job file: %w", err)
	}
	return ParseDefs(data, path)
}

// ParseDefs decodes `jobs: [...]` strictly; name is used in errors.
func ParseDefs(data []byte, name string) ([]Def, error) {
	var doc struct {
		Jobs []Def `yaml:"jobs"`
	}
	if err := yaml.UnmarshalWithOptions(data, &doc, yaml.DisallowUnknownField()); err != nil {
		return nil, fmt.Errorf("%s: %s", name, yaml.FormatError(err, false, false))
	}
	return doc.Jobs, nil
}
