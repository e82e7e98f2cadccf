// Package jobs is tagpipe's batch scheduler: Airflow-like scheduled jobs on
// github.com/robfig/cron/v3.
//
// It owns job definitions (cron schedule with optional seconds and descriptors, a time
// zone per job, depends_on with Airflow's trigger rules, task, timeout, retries with
// exponential backoff, concurrency limits, pools, catch-up), the logical date of a run
// (ds: a daily run for 2026-11-24 covers that day and starts after it ends), the DAG
// between jobs, sensors (wait_for, in poke or reschedule mode), the run-history store
// under <data_dir>/jobs (append-only JSON lines, fsynced, compacted; survives kill -9),
// the per-run cross-process lock (flock) so two schedulers never run the same job+ds
// twice, pools whose slots every process on the data dir shares (flock per slot),
// catch-up after downtime, backfill with a progress bar, clearing runs to run
// again and marking them success or failed (jobs clear, jobs mark), pausing, and the
// scheduler's metrics.
//
// Task kinds are pluggable (Kinds): "shell" is built in; cmd/tagpipe registers others
// (sql, builtin) from other rooms. The package knows nothing about tags or DuckDB.
//
// State ownership: the dispatch loop goroutine owns the pending/in-flight runs; runs
// report back on a channel. Lock order: pool slots (flocks on pools/<pool>/slot-<i>,
// taken without waiting under pools.mu, then held for a whole run) → run lock (flock,
// held for a whole run) → Store.mu → history.lock (flock, held only inside one Store
// call). Scheduler.mu guards only start/stop and is never held with the others.
package jobs
