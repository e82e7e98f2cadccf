package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/internal/admin"
	"github.com/tagpipe/tagpipe/jobs"
	tsql "github.com/tagpipe/tagpipe/sql"
	"github.com/tagpipe/tagpipe/tagging"
	"github.com/tagpipe/tagpipe/warehouse"
	"github.com/tagpipe/tagpipe/warehouse/duckbridge"
)

// Task kinds beyond the built-in shell come from other rooms' wiring: a subcommand file
// calls registerJobKind (a whole kind, e.g. "sql") or registerJobBuiltin (a named Go
// function for `task: {kind: builtin, name: …}`, e.g. the nightly tag job) in its init().
var (
	jobKindHooks []func(a *app, k *jobs.Kinds)
	jobBuiltins  = map[string]func(a *app) jobs.TaskFunc{}
)

func registerJobKind(f func(a *app, k *jobs.Kinds)) { jobKindHooks = append(jobKindHooks, f) }

func registerJobBuiltin(name string, f func(a *app) jobs.TaskFunc) { jobBuiltins[name] = f }

func init() {
	registerJobKind(func(a *app, k *jobs.Kinds) { k.Register("sql", sqlJobKind(a)) })
	registerJobBuiltin("tags_nightly", tagsNightlyJob)
	registerJobBuiltin("sys_job_runs", func(a *app) jobs.TaskFunc {
		return func(ctx context.Context, rc jobs.RunContext) (int64, error) { return exportJobRuns(ctx, a) }
	})
}

var jobTS = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// sysJobRunsSpec is the warehouse table of the run history (one row per run, its
// current state), partitioned by dt = the run's ds.
var sysJobRunsSpec = warehouse.TableSpec{
	Name: "sys_job_runs",
	Schema: arrow.NewSchema([]arrow.Field{
		warehouse.RequiredField("job", arrow.BinaryTypes.String, "job name"),
		warehouse.RequiredField("logical", jobTS, "start of the run's data interval (its identity with job)"),
		warehouse.RequiredField("state", arrow.BinaryTypes.String, "scheduled, queued, running, up_for_retry, up_for_reschedule, success, failed, upstream_failed, skipped"),
		warehouse.RequiredField("trigger", arrow.BinaryTypes.String, "scheduled, manual, backfill, clear (queued again by jobs clear) or mark (state set by jobs mark)"),
		warehouse.RequiredField("attempt", arrow.PrimitiveTypes.Int64, "attempt number, from 1"),
		// Added after the table's first release: nullable, so an existing table evolves.
		warehouse.Field("max_tries", arrow.PrimitiveTypes.Int64, "Airflow's max_tries: a failed attempt n is retried while n <= max_tries (null: not recorded, the job's retries then)"),
		warehouse.Field("start", jobTS, "run start (first attempt)"),
		warehouse.Field("end", jobTS, "run end"),
		warehouse.RequiredField("rows", arrow.PrimitiveTypes.Int64, "rows the task reported"),
		warehouse.Field("error", arrow.BinaryTypes.String, "last attempt's error, or why the run did not start"),
		warehouse.RequiredField("owner", arrow.BinaryTypes.String, "host:pid that wrote the state"),
		warehouse.RequiredField("updated", jobTS, "when the state was written"),
		warehouse.RequiredField("dt", arrow.BinaryTypes.String, "the run's logical date (ds)"),
	}, nil),
	PartitionKeys: []string{"dt"},
	Doc:           "scheduler run history (jobs/history.jsonl), one row per job run; written by `tagpipe jobs export` or the sys_job_runs builtin job",
}

// exportJobRuns writes the run history into the warehouse table sys_job_runs,
// overwriting the partitions (days) it writes.
func exportJobRuns(ctx context.Context, a *app) (int64, error) {
	st, err := jobs.OpenStore(a.cfg.Path("jobs"), a.log)
	if err != nil {
		return 0, err
	}
	runs, err := st.Export()
	st.Close()
	if err != nil {
		return 0, err
	}
	if len(runs) == 0 {
		return 0, nil
	}
	w, err := openWarehouse(a, false)
	if err != nil {
		return 0, err
	}
	defer w.Close()
	t, err := w.CreateTable(ctx, sysJobRunsSpec)
	if err != nil {
		return 0, err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sysJobRunsSpec.Schema)
	defer b.Release()
	ts := func(i int, v time.Time) {
		tb := b.Field(i).(*array.TimestampBuilder)
		if v.IsZero() {
			tb.AppendNull()
		} else {
			tb.Append(arrow.Timestamp(v.UnixMicro()))
		}
	}
	for _, r := range runs {
		b.Field(0).(*array.StringBuilder).Append(r.Job)
		ts(1, r.Logical)
		b.Field(2).(*array.StringBuilder).Append(string(r.State))
		b.Field(3).(*array.StringBuilder).Append(r.Trigger)
		b.Field(4).(*array.Int64Builder).Append(int64(r.Attempt))
		if r.MaxTries > 0 {
			b.Field(5).(*array.Int64Builder).Append(int64(r.MaxTries))
		} else {
			b.Field(5).(*array.Int64Builder).AppendNull()
		}
		ts(6, r.Start)
		ts(7, r.End)
		b.Field(8).(*array.Int64Builder).Append(r.Rows)
		if r.Error == "" {
			b.Field(9).(*array.StringBuilder).AppendNull()
		} else {
			b.Field(9).(*array.StringBuilder).Append(r.Error)
		}
		b.Field(10).(*array.StringBuilder).Append(r.Owner)
		ts(11, r.Updated)
		b.Field(12).(*array.StringBuilder).Append(r.DS)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	tx, err := t.Begin(ctx)
	if err != nil {
		return 0, err
	}
	if err := tx.Write(rec); err != nil {
		tx.Abort()
		return 0, err
	}
	if _, err := tx.Commit(ctx, warehouse.CommitOptions{Operation: warehouse.OpOverwritePartitions}); err != nil {
		return 0, err
	}
	return int64(len(runs)), nil
}

// sqlJobKind: `task: {kind: sql, script: "..."}` or `{kind: sql, file: x.sql}` runs the
// statements in order in one DuckDB session over the warehouse views (a local,
// unrestricted session: COPY … TO writes files). Rows are the statements' affected rows.
// With `table: T` the last statement is a query whose rows become partition dt = ds of
// warehouse table T (Hive's INSERT OVERWRITE … PARTITION (dt = '{{ds}}')), committed as
// one snapshot; T is created, partitioned by dt, with the query's columns on first run.
// Rows are then the rows written.
func sqlJobKind(a *app) jobs.KindFunc {
	return func(spec jobs.TaskSpec) (jobs.Task, error) {
		switch {
		case spec.Script != "" && spec.File != "":
			return nil, fmt.Errorf("set script or file, not both")
		case spec.Script == "" && spec.File == "":
			return nil, fmt.Errorf("script or file must be set")
		case spec.File != "":
			if _, err := os.Stat(spec.File); err != nil {
				return nil, fmt.Errorf("cannot read script file: %w", err)
			}
		}
		if spec.Table != "" {
			if _, err := warehouse.LayerOf(spec.Table); err != nil {
				return nil, fmt.Errorf("table: %w", err)
			}
		}
		return jobs.TaskFunc(func(ctx context.Context, rc jobs.RunContext) (int64, error) {
			text := spec.Script
			if spec.File != "" {
				b, err := os.ReadFile(spec.File)
				if err != nil {
					return 0, fmt.Errorf("cannot read script file: %w", err)
				}
				text = string(b)
			}
			stmts, rest := tsql.Split(rc.Expand(text))
			if strings.TrimSpace(rest) != "" {
				stmts = append(stmts, rest)
			}
			eng, err := sqlEngine(ctx, a, false, "", nil, nil)
			if err != nil {
				return 0, err
			}
			defer eng.Close()
			conn, err := eng.DB().Conn(ctx)
			if err != nil {
				return 0, fmt.Errorf("cannot open DuckDB session: %w", err)
			}
			defer conn.Close()
			var query string
			if spec.Table != "" {
				if len(stmts) == 0 {
					return 0, fmt.Errorf("table %s: the script has no query", spec.Table)
				}
				query, stmts = stmts[len(stmts)-1], stmts[:len(stmts)-1]
			}
			var rows int64
			for i, st := range stmts {
				res, err := conn.ExecContext(ctx, st)
				if err != nil {
					return rows, fmt.Errorf("statement %d: %w", i+1, err)
				}
				n, _ := res.RowsAffected()
				rows += n
				fmt.Fprintf(rc.Output, "-- statement %d: %d rows\n", i+1, n)
			}
			if query == "" {
				return rows, nil
			}
			n, err := sqlJobWrite(ctx, a, conn, spec.Table, rc.DS, query)
			if err != nil {
				return 0, fmt.Errorf("statement %d: %w", len(stmts)+1, err)
			}
			fmt.Fprintf(rc.Output, "-- statement %d: %d rows into %s dt=%s\n", len(stmts)+1, n, spec.Table, rc.DS)
			return n, nil
		}), nil
	}
}

// sqlJobWrite makes query's rows partition dt = ds of table and commits it. The partition
// value is the run's ds: a dt column in the query is replaced, as a static partition in
// Hive's INSERT OVERWRITE is.
func sqlJobWrite(ctx context.Context, a *app, conn *sql.Conn, table, ds, query string) (int64, error) {
	query = strings.TrimRight(strings.TrimSpace(query), ";")
	probe, err := conn.QueryContext(ctx, "SELECT * FROM ("+query+") LIMIT 0")
	if err != nil {
		return 0, err
	}
	cols, err := probe.Columns()
	probe.Close()
	if err != nil {
		return 0, err
	}
	dt := "DATE " + tsql.QuoteString(ds)
	if slices.Contains(cols, "dt") {
		query = fmt.Sprintf("SELECT * REPLACE (%s AS dt) FROM (%s)", dt, query)
	} else {
		query = fmt.Sprintf("SELECT *, %s AS dt FROM (%s)", dt, query)
	}
	w, err := openWarehouse(a, false)
	if err != nil {
		return 0, err
	}
	defer w.Close()
	if err := (tagging.WarehouseStore{W: w}).Replace(ctx, conn, table, []tagging.KV{{Col: "dt", Val: ds}}, query); err != nil {
		return 0, err
	}
	var n int64
	err = conn.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE dt = %s", duckbridge.Ident(table), dt)).Scan(&n)
	return n, err
}

// tagsNightlyJob is `task: {kind: builtin, name: tags_nightly}`: for the run's ds, the
// interest model (incremental), the tag definitions and audiences without a schedule of
// their own, and the profiles. With its downstream `tag_<name>` jobs (`jobs run
// --downstream`) it does what `tagpipe tags run --ds` does. Rows are interest rows plus
// definition rows.
func tagsNightlyJob(a *app) jobs.TaskFunc {
	return func(ctx context.Context, rc jobs.RunContext) (int64, error) {
		env, err := openTagging(a)
		if err != nil {
			return 0, err
		}
		defer env.Close()
		st, err := env.tg.RunModel(ctx, rc.DS, false)
		if err != nil {
			return 0, err
		}
		rows := st.InterestRows
		fmt.Fprintf(rc.Output, "model %s: %d events -> %d users, %d interest rows\n", rc.DS, st.Events, st.Users, st.InterestRows)
		defs, auds, loadErr := tagging.LoadDefinitions(env.tg.Options().DefinitionsDir)
		// Definitions and audiences with their own schedule are their own jobs
		// (scheduledTagJobs); the nightly job runs the rest.
		defs = slices.DeleteFunc(defs, func(d *tagging.Definition) bool { return d.Schedule != "" })
		auds = slices.DeleteFunc(auds, func(au *tagging.Audience) bool { return au.Schedule != "" })
		res, runErr := env.tg.RunDefinitions(ctx, defs, rc.DS)
		for _, r := range res {
			if r.Err != nil {
				fmt.Fprintf(rc.Output, "tag %s FAILED: %v\n", r.Name, r.Err)
				continue
			}
			rows += r.Rows
			fmt.Fprintf(rc.Output, "tag %s: %d users\n", r.Name, r.Rows)
		}
		if err := env.tg.RunProfile(ctx, rc.DS); err != nil {
			return rows, err
		}
		errs := []error{loadErr, runErr}
		for _, au := range auds {
			n, err := env.tg.RunAudience(ctx, au, rc.DS)
			if err != nil {
				errs = append(errs, fmt.Errorf("audience %s: %w", au.Name, err))
				continue
			}
			fmt.Fprintf(rc.Output, "audience %s: %d users\n", au.Name, n)
		}
		return rows, errors.Join(errs...)
	}
}

func jobKinds(a *app) *jobs.Kinds {
	k := jobs.NewKinds()
	funcs := map[string]jobs.TaskFunc{}
	for name, f := range jobBuiltins {
		funcs[name] = f(a)
	}
	k.Register("builtin", jobs.BuiltinKind(funcs))
	for _, h := range jobKindHooks {
		h(a, k)
	}
	return k
}

// jobDefs gathers job definitions: jobs.definitions in the config, then jobs.dir/*.yaml.
func jobDefs(cfg *config.Config) ([]jobs.Def, error) {
	var defs []jobs.Def
	task := func(t *config.JobTask) *jobs.TaskSpec {
		if t == nil {
			return nil
		}
		return &jobs.TaskSpec{Kind: t.Kind, Command: t.Command, Dir: t.Dir, Script: t.Script, File: t.File,
			Table: t.Table, Name: t.Name, Env: t.Env, Args: t.Args}
	}
	for _, d := range cfg.Jobs.Definitions {
		defs = append(defs, jobs.Def{Name: d.Name, Schedule: d.Schedule, Timezone: d.Timezone,
			DependsOn: d.DependsOn, DependsOnPast: d.DependsOnPast, TriggerRule: d.TriggerRule, Timeout: d.Timeout, Retries: d.Retries, RetryDelay: d.RetryDelay,
			MaxRetryDelay: d.MaxRetryDelay, MaxActiveRuns: d.MaxActiveRuns, Pool: d.Pool, PoolSlots: d.PoolSlots,
			PriorityWeight: d.PriorityWeight, WeightRule: d.WeightRule, Catchup: d.Catchup,
			StartDate: d.StartDate, Paused: d.Paused, PokeInterval: d.PokeInterval, WaitTimeout: d.WaitTimeout, SensorMode: d.SensorMode,
			Task: *task(&d.Task), OnFailure: task(d.OnFailure), OnRetry: task(d.OnRetry), OnSuccess: task(d.OnSuccess)})
		for _, w := range d.WaitFor {
			defs[len(defs)-1].WaitFor = append(defs[len(defs)-1].WaitFor, jobs.SensorSpec{Kind: w.Kind, Path: w.Path,
				Table: w.Table, Partition: w.Partition, Pipeline: w.Pipeline, Delay: w.Delay})
		}
	}
	dir := cfg.Jobs.Dir
	if dir == "" {
		dir = cfg.Path("jobs", "defs")
	}
	if _, err := os.Stat(dir); err == nil {
		more, err := jobs.LoadDir(dir)
		if err != nil {
			return nil, err
		}
		defs = append(defs, more...)
	} else if cfg.Jobs.Dir != "" {
		return nil, fmt.Errorf("jobs.dir: %w", err)
	}
	return defs, nil
}

// openScheduler compiles the definitions and opens the scheduler over data_dir/jobs.
func openScheduler(a *app, reg *prometheus.Registry) (*jobs.Scheduler, error) {
	defs, err := jobDefs(a.cfg)
	if err != nil {
		return nil, err
	}
	tagJobs, err := scheduledTagJobs(a, defs)
	if err != nil {
		a.log.Warn("some tag definitions are not scheduled", "err", err)
	}
	defs = append(defs, tagJobs...)
	dag, err := compileJobs(a, defs)
	if err != nil {
		return nil, err
	}
	c := a.cfg.Jobs
	o := jobs.DefaultOptions()
	o.Dir = a.cfg.Path("jobs")
	o.Log = a.log
	o.Registry = reg
	o.Parallelism = c.Parallelism
	o.PollInterval = c.PollInterval
	o.HistoryRetention = c.HistoryRetention
	return jobs.New(dag, o)
}

// compileJobs checks the job definitions and builds their DAG with the jobs section's
// defaults.
func compileJobs(a *app, defs []jobs.Def) (*jobs.DAG, error) {
	c := a.cfg.Jobs
	dag, err := jobs.Compile(defs, jobKinds(a), jobs.Defaults{Timezone: c.Timezone, Catchup: c.Catchup,
		MaxActiveRuns: c.MaxActiveRuns, Retries: c.Retries, RetryDelay: c.RetryDelay,
		MaxRetryDelay: c.MaxRetryDelay, Timeout: c.Timeout, Pools: c.Pools})
	if err != nil {
		return nil, fmt.Errorf("bad job definitions:\n%w", err)
	}
	return dag, nil
}

// withScheduler is a jobs subcommand's RunE that opens the scheduler (without metrics)
// for run and closes it after.
func withScheduler(a *app, run func(cmd *cobra.Command, s *jobs.Scheduler) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		s, err := openScheduler(a, nil)
		if err != nil {
			return err
		}
		defer s.Close()
		return run(cmd, s)
	}
}

// jobsMount serves the scheduler's status at /v1/jobs on the admin listener; `tagpipe up`
// can use it with openScheduler.
func jobsMount(s *jobs.Scheduler) func(*admin.Server) {
	return func(srv *admin.Server) { srv.Handle("/v1/jobs", s.Handler()) }
}

func init() {
	register(func(a *app) *cobra.Command {
		cmd := &cobra.Command{
			Use:   "jobs",
			Short: "Run the job scheduler alone (cron, DAG, retries, catch-up); subcommands inspect and run jobs",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				reg := admin.NewRegistry()
				s, err := openScheduler(a, reg)
				if err != nil {
					return err
				}
				return a.serve(cmd.Context(), reg, jobsMount(s), s)
			},
		}
		cmd.AddCommand(jobsList(a), jobsPools(a), jobsRun(a), jobsHistory(a), jobsBackfill(a), jobsExport(a), jobsPause(a, true), jobsPause(a, false),
			jobsClear(a), jobsMark(a))
		return runsUntilStopped(cmd)
	})
}

func jobsList(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List jobs with their schedule, dependencies, next run time and last run",
		Args:  cobra.NoArgs,
		RunE: withScheduler(a, func(cmd *cobra.Command, s *jobs.Scheduler) error {
			st, err := s.Status()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tSCHEDULE\tZONE\tDEPENDS_ON\tWEIGHT\tNEXT_RUN\tNEXT_DS\tLAST_DS\tLAST_STATE\tLAST_SUCCESS")
			for _, j := range st {
				loc, _ := time.LoadLocation(j.Timezone)
				next, nextDS := "never", "-"
				if !j.NextRun.IsZero() {
					next, nextDS = j.NextRun.In(loc).Format("2006-01-02 15:04:05 MST"), j.NextDS
				}
				if j.Paused {
					next = "paused"
				}
				lastDS, lastState, lastOK := "-", "-", "-"
				if j.Last != nil {
					lastDS, lastState = j.Last.DS, string(j.Last.State)
				}
				if j.LastSuccess != nil {
					lastOK = j.LastSuccess.DS
				}
				deps := strings.Join(j.DependsOn, ",")
				if deps == "" {
					deps = "-"
				}
				// The effective weight, then the job's own and its weight_rule: 6 (1, downstream).
				weight := fmt.Sprintf("%d (%d, %s)", j.Weight, j.PriorityWeight, j.WeightRule)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, j.Schedule, j.Timezone, deps, weight, next, nextDS, lastDS, lastState, lastOK)
			}
			return tw.Flush()
		}),
	}
}

// jobsPools is Airflow's `pools list` with its slot counts: a shared pool's used slots
// are those any process on the data dir holds now; QUEUED is from the data dir's history
// for every pool (SCOPE says what each row's numbers cover).
func jobsPools(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "pools",
		Short: "List pools: slots, slots in use by any process on the data dir, open slots, queued runs, who holds them, who waits for them",
		Args:  cobra.NoArgs,
		RunE: withScheduler(a, func(cmd *cobra.Command, s *jobs.Scheduler) error {
			st, err := s.Pools()
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "POOL\tSLOTS\tUSED\tOPEN\tQUEUED\tSCOPE\tHELD_BY\tWAITING")
			for _, p := range st {
				// default_pool sized by parallelism is each scheduler's own: this
				// command's process holds none of it, and cannot see the others' use, so
				// USED and OPEN are "-"; QUEUED still counts the queued runs of its jobs in
				// the data dir's history, whichever process queued them, and SCOPE says
				// so.
				used, open, scope, held, waiting := "-", "-", "slots: each process; queued: data dir", "-", "-"
				if p.Shared {
					used, open, scope = fmt.Sprint(p.Used), fmt.Sprint(p.Open), "data dir"
					if len(p.Holders) > 0 {
						held = strings.Join(p.Holders, ", ")
					}
					if len(p.Waiting) > 0 {
						// Head of the data dir's queue first (waiter files).
						waiting = strings.Join(p.Waiting, ", ")
					}
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", p.Name, p.Slots, used, open, p.Queued, scope, held, waiting)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON (the pools of /v1/jobs)")
	return cmd
}

func jobsRun(a *app) *cobra.Command {
	var job, ds string
	var downstream bool
	var ro jobs.RunOptions
	cmd := &cobra.Command{
		Use:   "run --job J --ds YYYY-MM-DD [--downstream] [--ignore-dependencies | --ignore-depends-on-past]",
		Short: "Run one job for one logical date now, once its depends_on runs and depends_on_past allow (re-running overwrites that ds)",
		Args:  cobra.NoArgs,
		RunE: withScheduler(a, func(cmd *cobra.Command, s *jobs.Scheduler) error {
			// As Airflow's tasks run: the job's trigger_rule over its depends_on runs of
			// ds, and depends_on_past, must hold unless told to ignore them.
			if err := s.CheckDeps(job, ds, ro); err != nil {
				return err
			}
			// Ctrl-C cancels the run: the task is killed and the run recorded as queued.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if downstream {
				// Like Airflow's clear with downstream: the job, then every job that
				// depends on it, for ds, in dependency order.
				if _, err := s.DAG().Find(job); err != nil {
					return err
				}
				sum, err := s.Backfill(ctx, jobs.BackfillOptions{Jobs: s.DAG().Downstream(job), From: ds, To: ds,
					Trigger: jobs.TriggerManual})
				if sum.Total > 0 {
					fmt.Fprintln(a.out, sum)
				}
				if err == nil && sum.Failed+sum.UpstreamFailed > 0 {
					err = errors.New("some runs failed")
				}
				return err
			}
			rec, err := s.RunNow(ctx, job, ds)
			if err != nil {
				return err
			}
			// Attempt is the try number: it goes on across clears and re-runs (Airflow's).
			fmt.Fprintf(a.out, "%s ds %s: %s at attempt %d in %v, %d rows\n", rec.Job, rec.DS, rec.State,
				rec.Attempt, rec.Duration().Round(time.Millisecond), rec.Rows)
			if rec.State != jobs.StateSuccess {
				return fmt.Errorf("job %s ds %s %s: %s (log: %s)", rec.Job, rec.DS, rec.State, rec.Error,
					s.LogPath(rec.Job, rec.Logical, rec.Attempt))
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&job, "job", "", "job name (required)")
	cmd.Flags().StringVar(&ds, "ds", "", "logical date YYYY-MM-DD (required)")
	cmd.Flags().BoolVar(&downstream, "downstream", false, "then run every job depending on it for the same ds (e.g. after fixing a failed upstream)")
	cmd.Flags().BoolVar(&ro.IgnoreDependencies, "ignore-dependencies", false, "run even if its depends_on runs (trigger_rule) or depends_on_past do not allow it")
	cmd.Flags().BoolVar(&ro.IgnoreDependsOnPast, "ignore-depends-on-past", false, "run even if its run before it has not succeeded (depends_on_past); depends_on is still checked")
	_ = cmd.MarkFlagRequired("job")
	_ = cmd.MarkFlagRequired("ds")
	return cmd
}

func jobsHistory(a *app) *cobra.Command {
	var job string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history [--job J]",
		Short: "Show run history (state, ds, attempts, duration, rows, error), newest last",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := jobs.OpenStore(a.cfg.Path("jobs"), a.log)
			if err != nil {
				return err
			}
			defer st.Close()
			runs := st.Runs(job)
			sort.SliceStable(runs, func(i, j int) bool { return runs[i].Logical.Before(runs[j].Logical) })
			if limit > 0 && len(runs) > limit {
				runs = runs[len(runs)-limit:]
			}
			if asJSON {
				enc := json.NewEncoder(a.out)
				for _, r := range runs {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
				return nil
			}
			return printRuns(a.out, runs)
		},
	}
	cmd.Flags().StringVar(&job, "job", "", "only this job")
	cmd.Flags().IntVar(&limit, "limit", 50, "show the last N runs (0 = all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "JSON lines (the sys_job_runs columns)")
	return cmd
}

func printRuns(out io.Writer, runs []jobs.Record) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tDS\tLOGICAL\tSTATE\tTRIGGER\tATTEMPT\tSTART\tDURATION\tROWS\tERROR")
	for _, r := range runs {
		start := "-"
		if !r.Start.IsZero() {
			start = r.Start.UTC().Format("2006-01-02 15:04:05Z")
		}
		dur := "-"
		if d := r.Duration(); d > 0 {
			dur = d.Round(time.Millisecond).String()
		}
		errText := r.Error
		if len(errText) > 80 {
			errText = errText[:77] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", r.Job, r.DS, r.Logical.UTC().Format(time.RFC3339),
			r.State, r.Trigger, r.Attempt, start, dur, r.Rows, errText)
	}
	return tw.Flush()
}

func jobsBackfill(a *app) *cobra.Command {
	var o jobs.BackfillOptions
	cmd := &cobra.Command{
		Use:   "backfill --job J --from YYYY-MM-DD --to YYYY-MM-DD [--parallel N]",
		Short: "Run every ds in a range (overwriting each ds), with a progress bar and a summary",
		Args:  cobra.NoArgs,
		RunE: withScheduler(a, func(cmd *cobra.Command, s *jobs.Scheduler) error {
			o.Progress = a.out
			if f, ok := a.out.(*os.File); ok {
				if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
					o.TTY = true
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			sum, err := s.Backfill(ctx, o)
			if sum.Total > 0 {
				fmt.Fprintln(a.out, sum)
			}
			if err != nil {
				return err
			}
			if sum.Failed+sum.UpstreamFailed > 0 {
				return errors.New("backfill finished with failed runs")
			}
			return nil
		}),
	}
	cmd.Flags().StringSliceVar(&o.Jobs, "job", nil, "job(s) to backfill (repeat or comma-separate)")
	cmd.Flags().StringVar(&o.From, "from", "", "first ds, YYYY-MM-DD")
	cmd.Flags().StringVar(&o.To, "to", "", "last ds, YYYY-MM-DD (inclusive)")
	cmd.Flags().IntVar(&o.Parallel, "parallel", 1, "runs at once (dependencies within a ds are respected)")
	cmd.Flags().BoolVar(&o.Upstream, "upstream", false, "also run the jobs' depends_on jobs for each ds")
	_ = cmd.MarkFlagRequired("job")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

func jobsExport(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "export",
		Short: "Write the run history into the warehouse table sys_job_runs (partitioned by dt = ds)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := exportJobRuns(cmd.Context(), a)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "sys_job_runs: %d runs exported\n", n)
			return nil
		},
	}
}

// jobsClear is `tagpipe jobs clear` (Airflow's tasks clear): the runs are queued again
// for the scheduler. Without --yes it only lists them.
func jobsClear(a *app) *cobra.Command {
	var o jobs.ClearOptions
	var yes bool
	cmd := &cobra.Command{
		Use:   "clear --job J --from YYYY-MM-DD --to YYYY-MM-DD [--downstream] [--only-failed] [--yes]",
		Short: "Reset a job's runs in a ds range so the scheduler runs them again (without --yes: list them)",
		Args:  cobra.NoArgs,
		RunE: withScheduler(a, func(cmd *cobra.Command, s *jobs.Scheduler) error {
			o.DryRun = !yes
			runs, err := s.Clear(o)
			if err != nil {
				return err
			}
			if len(runs) == 0 {
				fmt.Fprintln(a.out, "no runs to clear")
				return nil
			}
			if err := printRuns(a.out, runs); err != nil {
				return err
			}
			if !yes {
				fmt.Fprintf(a.out, "%s would be cleared; run again with --yes to clear them\n", plural(len(runs), "run", "runs"))
				return nil
			}
			fmt.Fprintf(a.out, "%s cleared: a running scheduler runs them again at its next poll (or tagpipe jobs run --job J --ds D now)\n", plural(len(runs), "run", "runs"))
			return nil
		}),
	}
	cmd.Flags().StringVar(&o.Job, "job", "", "job name")
	cmd.Flags().StringVar(&o.From, "from", "", "first ds, YYYY-MM-DD")
	cmd.Flags().StringVar(&o.To, "to", "", "last ds, YYYY-MM-DD (inclusive)")
	cmd.Flags().BoolVar(&o.Downstream, "downstream", false, "also clear the runs of every job depending on it")
	cmd.Flags().BoolVar(&o.OnlyFailed, "only-failed", false, "only failed and upstream_failed runs")
	cmd.Flags().BoolVar(&yes, "yes", false, "clear them (without it the runs are only listed)")
	for _, f := range []string{"job", "from", "to"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

// jobsMark is `tagpipe jobs mark` (Airflow's mark success / mark failed).
func jobsMark(a *app) *cobra.Command {
	var job, ds, state string
	cmd := &cobra.Command{
		Use:   "mark --job J --ds YYYY-MM-DD --state success|failed",
		Short: "Record a run's final state without running it (a held depends_on_past chain moves on after success)",
		Args:  cobra.NoArgs,
		RunE: withScheduler(a, func(cmd *cobra.Command, s *jobs.Scheduler) error {
			rec, err := s.Mark(job, ds, jobs.State(state))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "%s ds %s marked %s\n", rec.Job, rec.DS, rec.State)
			return nil
		}),
	}
	cmd.Flags().StringVar(&job, "job", "", "job name")
	cmd.Flags().StringVar(&ds, "ds", "", "logical date YYYY-MM-DD")
	cmd.Flags().StringVar(&state, "state", "", "success or failed")
	for _, f := range []string{"job", "ds", "state"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

// jobsPause is `tagpipe jobs pause` and `unpause` (Airflow's dags pause / unpause): a
// running scheduler on the same data dir sees it at its next poll.
func jobsPause(a *app, pause bool) *cobra.Command {
	var job string
	use, short := "pause --job J", "Stop scheduling a job's runs (runs in progress finish; manual runs still work)"
	if !pause {
		use, short = "unpause --job J", "Schedule a paused job again; the intervals missed meanwhile run as after downtime"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: withScheduler(a, func(cmd *cobra.Command, s *jobs.Scheduler) error {
			if err := s.SetPaused(job, pause); err != nil {
				return err
			}
			state := "paused"
			if !pause {
				state = "unpaused"
			}
			fmt.Fprintf(a.out, "%s %s\n", job, state)
			return nil
		}),
	}
	cmd.Flags().StringVar(&job, "job", "", "job name")
	_ = cmd.MarkFlagRequired("job")
	return cmd
}

// plural is "1 run", "2 runs".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
