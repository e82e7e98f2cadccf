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
// priority (priority_weight, weight_rule: queued runs start highest effective weight
// first, and a run refused pool slots keeps its place in the pool's queue), runs
// waiting for a retry or a reschedule holding no slot, catch-up after downtime, backfill with a progress bar, clearing runs to run
// again and marking them success or failed (jobs clear, jobs mark), pausing, and the
// scheduler's metrics.
//
// Task kinds are pluggable (Kinds): "shell" is built in; cmd/tagpipe registers others
// (sql, builtin) from other rooms. The package knows nothing about tags or DuckDB.
//
// State ownership: the dispatch loop goroutine owns the pending/in-flight runs; runs
// report back on a channel. Lock order: pool slots (flocks on pools/<pool>/slot-<i>,
// taken without waiting under pools.mu, then held while the run goes on) → run lock
// (flock, held while the run goes on) → Store.mu → history.lock (flock, held only
// inside one Store call). A run that waits (up_for_retry, up_for_reschedule) gives back
// its run lock and its slots and takes them again, in that order, before it goes on.
// pools.mu also guards the pools' queues. Scheduler.mu guards only start/stop and is
// never held with the others.
package jobs
