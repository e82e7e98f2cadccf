package main

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/broker"
	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/console"
	"github.com/tagpipe/tagpipe/internal/admin"
	"github.com/tagpipe/tagpipe/internal/lifecycle"
	"github.com/tagpipe/tagpipe/jobs"
	tsql "github.com/tagpipe/tagpipe/sql"
	"github.com/tagpipe/tagpipe/streaming"
)

func init() {
	register(func(a *app) *cobra.Command {
		var noBroker, noIngest, noStream, noJobs, noSQL bool
		cmd := &cobra.Command{
			Use:   "up",
			Short: "Run everything in one process: broker, collector, streaming, scheduler, SQL endpoints and the web console",
			Long: `Starts the parts in dependency order — broker, collector, streaming pipelines, job
scheduler, SQL endpoints — behind one admin listener (console at /console/, /metrics,
/v1/query), and stops them in reverse on SIGINT/SIGTERM. Each part can be switched off
in the config (broker.enabled, ingest.enabled, streaming.enabled, jobs.enabled) or with
the --no-… flags; with the broker off, ingest and streaming use their bootstrap_servers.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c := a.cfg
				return a.up(cmd.Context(), upParts{
					broker: c.Broker.Enabled && !noBroker,
					ingest: c.Ingest.Enabled && !noIngest,
					stream: c.Streaming.Enabled && !noStream,
					jobs:   c.Jobs.Enabled && !noJobs,
					sql:    !noSQL,
				})
			},
		}
		f := cmd.Flags()
		f.BoolVar(&noBroker, "no-broker", false, "do not run the built-in broker (use bootstrap_servers)")
		f.BoolVar(&noIngest, "no-ingest", false, "do not run the collector")
		f.BoolVar(&noStream, "no-stream", false, "do not run the streaming pipelines")
		f.BoolVar(&noJobs, "no-jobs", false, "do not run the job scheduler")
		f.BoolVar(&noSQL, "no-sql", false, "do not serve SQL (PostgreSQL wire, /v1/query)")
		return runsUntilStopped(cmd)
	})
}

type upParts struct{ broker, ingest, stream, jobs, sql bool }

// up wires the parts in flow order. Parts talk only through the Kafka protocol and the
// warehouse directory, exactly as when they run as separate processes.
func (a *app) up(ctx context.Context, p upParts) error {
	reg := admin.NewRegistry()
	var comps []lifecycle.Component
	var mounts []func(*admin.Server)
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				a.log.Warn("close", "err", err)
			}
		}
	}()

	// The whole configuration is checked before anything opens: the collector's agents
	// (their keys are read when they are built) here, the rest when it was loaded.
	if p.ingest {
		if _, _, err := checkIngest(a.cfg, a.log, nil); err != nil {
			return err
		}
	}
	if p.broker && (p.ingest || p.stream || p.jobs) && anonymousNotSuper(a.cfg) {
		a.log.Warn("broker.authorizer is acl and User:ANONYMOUS is not in broker.super_users: tagpipe's own parts connect to broker.listen as " +
			"User:ANONYMOUS and are refused unless ACLs allow them (add User:ANONYMOUS to broker.super_users, or grant it ACLs with tagpipe acls add)")
	}
	if p.broker {
		b, err := broker.New(brokerOptions(a.cfg, reg, a.log))
		if err != nil {
			return err
		}
		comps = append(comps, b)
	}
	if p.ingest {
		ic, mount, err := ingestComponents(a.cfg, reg, a.log, nil)
		if err != nil {
			return err
		}
		comps = append(comps, ic...)
		mounts = append(mounts, mount)
	}
	var engines []*streaming.Engine
	if p.stream {
		sc, es, closeFn, err := streamComponents(ctx, a, reg, false)
		if err != nil {
			return err
		}
		comps, engines = append(comps, sc...), es
		closers = append(closers, closeFn)
	}
	var sched *jobs.Scheduler
	if p.jobs {
		s, err := openScheduler(a, reg)
		if err != nil {
			return err
		}
		sched = s
		comps = append(comps, s)
		mounts = append(mounts, jobsMount(s))
	}
	var engine *tsql.Engine
	if p.sql {
		mount, sc, closeEngine, err := sqlServers(ctx, a, reg, nil)
		if err != nil {
			return err
		}
		comps = append(comps, sc...)
		mounts = append(mounts, mount)
		closers = append(closers, closeEngine)
		// The console's own read-only engine, so its panels never queue behind clients.
		e, err := sqlEngine(ctx, a, true, "", nil, nil)
		if err != nil {
			return err
		}
		engine = e
		closers = append(closers, e.Close)
		comps = append(comps, tsql.NewRefresher(e, a.cfg.SQL.RefreshInterval, a.log).Named("console-views"))
	}

	con := console.New(consoleOptions(a, reg, engine, engines, sched))
	closers = append(closers, func() error { con.Close(); return nil })
	mounts = append(mounts, func(s *admin.Server) { s.Handle("/", con.Handler()) })
	a.log.Info("tagpipe up", "broker", p.broker, "ingest", p.ingest, "streaming", p.stream, "jobs", p.jobs, "sql", p.sql,
		"data_dir", a.cfg.DataDir, "console", "http://"+a.cfg.Admin.Listen+"/console/")
	return a.serve(ctx, reg, func(s *admin.Server) {
		for _, m := range mounts {
			m(s)
		}
	}, comps...)
}

// consoleOptions connects the console's panels to the running parts.
func consoleOptions(a *app, reg *prometheus.Registry, e *tsql.Engine, engines []*streaming.Engine, sched *jobs.Scheduler) console.Options {
	o := console.Options{Bootstrap: streamBrokers(a.cfg), Security: a.kafka, Gatherer: reg}
	if e != nil {
		o.Query = func(ctx context.Context, q string, args ...any) (*console.Table, error) {
			t := &console.Table{}
			err := e.Query(ctx, q, args, func(r *tsql.Result) error {
				for _, c := range r.Columns {
					t.Columns = append(t.Columns, c.Name)
				}
				for r.Next() {
					t.Rows = append(t.Rows, append([]any(nil), r.Values()...))
				}
				return r.Err()
			})
			return t, err
		}
	}
	o.Why = func(ctx context.Context, user string) (*console.Table, error) {
		env, err := openTagging(a)
		if err != nil {
			return nil, err
		}
		defer env.Close()
		ex, err := env.tg.Explain(ctx, user, "", 3)
		if err != nil {
			return nil, err
		}
		t := &console.Table{Columns: []string{"rank", "tag", "weight", "event time", "action", "item", "value", "contribution", "share of score"}}
		for _, tag := range ex.Tags {
			for _, c := range tag.Top {
				var v any
				if c.Value != nil {
					v = *c.Value
				}
				t.Rows = append(t.Rows, []any{tag.Rank, tag.Tag, tag.Weight, c.EventTime.UTC(), c.Action, c.ItemID, v,
					c.Contribution, fmt.Sprintf("%.0f%%", 100*c.Share)})
			}
		}
		return t, nil
	}
	if len(engines) > 0 {
		o.Batches = func() []console.Batch {
			var out []console.Batch
			for _, en := range engines {
				for _, b := range en.RecentBatches() {
					out = append(out, console.Batch{Pipeline: b.Pipeline, ID: b.ID, Time: b.Time, Records: b.Records,
						InputRate: b.InputRate, ProcessingTime: b.ProcessingTime, SchedulingDelay: b.SchedulingDelay})
				}
			}
			sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
			return out
		}
	}
	o.JobRuns = func(_ context.Context, limit int) ([]console.JobRun, error) {
		var st *jobs.Store
		if sched != nil {
			st = sched.Store()
		} else {
			s, err := jobs.OpenStore(a.cfg.Path("jobs"), a.log)
			if err != nil {
				return nil, err
			}
			defer s.Close()
			st = s
		}
		// Runs started by other processes (`tagpipe jobs run`) are in the same store.
		if err := st.Refresh(); err != nil {
			return nil, fmt.Errorf("cannot read job history: %w", err)
		}
		return recentJobRuns(st, limit), nil
	}
	if sched != nil {
		o.JobPools = func(context.Context) ([]console.JobPool, error) {
			pools, err := sched.Pools()
			if err != nil {
				return nil, fmt.Errorf("cannot read job pools: %w", err)
			}
			out := make([]console.JobPool, 0, len(pools))
			for _, p := range pools {
				out = append(out, console.JobPool{Name: p.Name, Slots: p.Slots, Shared: p.Shared, Used: p.Used,
					Open: p.Open, Queued: p.Queued, Holders: p.Holders})
			}
			return out, nil
		}
	}
	return o
}

// recentJobRuns are the console's recent job runs, newest first: runs that started (or
// were queued, skipped, marked); a scheduled one is only a plan for an interval that has
// not ended, which `jobs list` shows as the job's next run.
func recentJobRuns(st *jobs.Store, limit int) []console.JobRun {
	runs := slices.DeleteFunc(st.Runs(""), func(r jobs.Record) bool { return r.State == jobs.StateScheduled })
	sort.SliceStable(runs, func(i, j int) bool { return runs[i].Updated.After(runs[j].Updated) })
	if len(runs) > limit {
		runs = runs[:limit]
	}
	out := make([]console.JobRun, 0, len(runs))
	for _, r := range runs {
		out = append(out, console.JobRun{Job: r.Job, DS: r.DS, State: string(r.State), Attempt: r.Attempt,
			Start: r.Start, End: r.End, Rows: r.Rows, Error: r.Error})
	}
	return out
}

// anonymousNotSuper says whether the built-in broker authorizes with ACLs that do not
// let User:ANONYMOUS — tagpipe's own parts on broker.listen — do everything.
func anonymousNotSuper(cfg *config.Config) bool {
	b := cfg.Broker
	return b.Authorizer == broker.AuthorizerACL && !b.AllowEveryoneIfNoACLFound && !slices.Contains(b.SuperUsers, "User:ANONYMOUS")
}
