package config

import "time"

// Jobs configures the scheduler (jobs/). Job definitions come from Definitions here and
// from every *.yaml file in Dir (each holding `jobs: [...]`); the fields of a definition
// are documented on jobs.Def. Per-job fields left empty take the defaults below.
type Jobs struct {
	// Enabled runs the scheduler in `tagpipe up`.
	Enabled bool `yaml:"enabled"`
	// Timezone is the default zone of cron schedules (IANA name).
	Timezone string `yaml:"timezone"`
	// Dir holds extra job definition files (*.yaml); empty = data_dir/jobs/defs (it is
	// fine for it not to exist).
	Dir string `yaml:"dir"`
	// Catchup runs every interval missed during downtime (false: only the latest).
	Catchup bool `yaml:"catchup"`
	// MaxActiveRuns caps concurrent runs of one job (different ds).
	MaxActiveRuns int `yaml:"max_active_runs"`
	// Parallelism caps concurrent runs over all jobs in one scheduler process.
	Parallelism int `yaml:"parallelism"`
	// Pools are Airflow's pools: name → slots. A job's runs take pool_slots (default 1)
	// of its pool (default default_pool, sized parallelism unless set here) and start
	// only when they are free.
	Pools map[string]int `yaml:"pools"`
	// Retries of a failed attempt; RetryDelay doubles each retry up to MaxRetryDelay.
	Retries       int           `yaml:"retries"`
	RetryDelay    time.Duration `yaml:"retry_delay"`
	MaxRetryDelay time.Duration `yaml:"max_retry_delay"`
	// Timeout bounds one attempt; 0 = none.
	Timeout time.Duration `yaml:"timeout"`
	// PollInterval is how often a scheduler re-reads the shared run history.
	PollInterval time.Duration `yaml:"poll_interval"`
	// HistoryRetention: history compaction drops finished runs older than this (each
	// job's newest scheduled run is kept); 0 = keep all.
	HistoryRetention time.Duration `yaml:"history_retention"`
	// Definitions are jobs written inline in tagpipe.yaml.
	Definitions []JobDef `yaml:"definitions"`
}

// JobDef is one job definition; cmd/tagpipe turns it into a jobs.Def (same fields).
type JobDef struct {
	Name          string        `yaml:"name"`
	Schedule      string        `yaml:"schedule"`
	Timezone      string        `yaml:"timezone"`
	DependsOn     []string      `yaml:"depends_on"`
	DependsOnPast bool          `yaml:"depends_on_past"`
	TriggerRule   string        `yaml:"trigger_rule"` // all_success (default), all_done, all_failed, one_failed, one_success, none_failed, always
	Task          JobTask       `yaml:"task"`
	Timeout       time.Duration `yaml:"timeout"`
	Retries       int           `yaml:"retries"`
	RetryDelay    time.Duration `yaml:"retry_delay"`
	MaxRetryDelay time.Duration `yaml:"max_retry_delay"`
	MaxActiveRuns int           `yaml:"max_active_runs"`
	Pool          string        `yaml:"pool"`       // a jobs.pools name; default default_pool
	PoolSlots     int           `yaml:"pool_slots"` // slots a run takes; default 1
	// PriorityWeight (default 1, >= 0) and WeightRule (downstream: default, upstream,
	// absolute) rank queued runs: the highest effective weight starts first.
	PriorityWeight *int   `yaml:"priority_weight"`
	WeightRule     string `yaml:"weight_rule"`
	Catchup        *bool  `yaml:"catchup"`
	StartDate      string `yaml:"start_date"`
	Paused         bool   `yaml:"paused"`
	// WaitFor lists conditions the run waits for before its first attempt (sensors),
	// checked every PokeInterval for up to WaitTimeout (0 = the jobs room's defaults).
	// SensorMode: poke (default: the waiting run holds a parallelism slot) or
	// reschedule (up_for_reschedule between pokes, holding none).
	WaitFor      []JobSensor   `yaml:"wait_for"`
	PokeInterval time.Duration `yaml:"poke_interval"`
	WaitTimeout  time.Duration `yaml:"wait_timeout"`
	SensorMode   string        `yaml:"sensor_mode"`
	// OnFailure, OnRetry, OnSuccess are tasks run after the run fails, an attempt is
	// retried, the run succeeds (Airflow's callbacks; alerts).
	OnFailure *JobTask `yaml:"on_failure"`
	OnRetry   *JobTask `yaml:"on_retry"`
	OnSuccess *JobTask `yaml:"on_success"`
}

// JobSensor is one wait_for condition: kind file (path, a glob), partition (table,
// partition: default dt={{ds}}) or streaming (pipeline, delay past the interval end).
type JobSensor struct {
	Kind      string        `yaml:"kind"`
	Path      string        `yaml:"path"`
	Table     string        `yaml:"table"`
	Partition string        `yaml:"partition"`
	Pipeline  string        `yaml:"pipeline"`
	Delay     time.Duration `yaml:"delay"`
}

// JobTask is what a job runs: kind shell (command, dir, env), sql (script or file, and
// table to write the last query's rows to), builtin (name, args), or another kind
// cmd/tagpipe registers.
type JobTask struct {
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

func (j *Jobs) validate(ch *check) {
	if _, err := time.LoadLocation(j.Timezone); err != nil {
		ch.fail("timezone", "unknown time zone %q", j.Timezone)
	}
	ch.positive("max_active_runs", int64(j.MaxActiveRuns))
	ch.positive("parallelism", int64(j.Parallelism))
	ch.positive("poll_interval", int64(j.PollInterval))
	if j.Retries < 0 {
		ch.fail("retries", "must be >= 0, got %d", j.Retries)
	}
	for name, slots := range j.Pools {
		if slots < 1 {
			ch.fail("pools", "pool %q must have at least 1 slot, got %d", name, slots)
		}
	}
	if j.HistoryRetention < 0 {
		ch.fail("history_retention", "must be >= 0 (0 = keep all), got %v", j.HistoryRetention)
	}
	if j.RetryDelay < 0 || j.MaxRetryDelay < 0 || j.Timeout < 0 {
		ch.fail("retry_delay", "retry_delay, max_retry_delay and timeout must be >= 0")
	}
	// Job definitions themselves (cron specs, depends_on, cycles) are checked by
	// jobs.Compile, which names the job and field.
}
