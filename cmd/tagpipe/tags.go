package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	_ "github.com/duckdb/duckdb-go/v2" // DuckDB driver for tag runs
	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/jobs"
	"github.com/tagpipe/tagpipe/tagging"
	"github.com/tagpipe/tagpipe/tagging/definitions"
	"github.com/tagpipe/tagpipe/warehouse"
)

// taggingOptions maps the tagging config section onto tagging.Options.
func taggingOptions(cfg *config.Config) tagging.Options {
	t := cfg.Tagging
	o := tagging.DefaultOptions()
	o.ActionWeights = t.ActionWeights
	o.ActionExpressions = t.ActionExpressions
	o.HalfLifeDays = t.HalfLifeDays
	o.TopN = t.TopN
	o.MinWeight = t.MinWeight
	o.IDF = t.IDF
	o.Normalize = t.Normalize
	o.IgnoreTags = t.IgnoreTags
	o.DefinitionsDir = t.DefinitionsDir
	if o.DefinitionsDir == "" {
		o.DefinitionsDir = cfg.Path("tags")
	}
	o.MemoryLimit = t.MemoryLimit
	o.Threads = t.Threads
	return o
}

// tagEnv is what a tag command (or a job task registered by `tagpipe jobs`) needs: the
// warehouse, a DuckDB database and a Tagger over both.
type tagEnv struct {
	w  *warehouse.Warehouse
	db *sql.DB
	tg *tagging.Tagger
}

func (e *tagEnv) Close() error {
	var errs []error
	if e.db != nil {
		errs = append(errs, e.db.Close())
		e.db = nil
	}
	if e.w != nil {
		errs = append(errs, e.w.Close())
		e.w = nil
	}
	return errors.Join(errs...)
}

// openTagging opens the warehouse and an in-memory DuckDB database for tag runs. The
// definitions dir is created with the shipped examples when it does not exist.
func openTagging(a *app) (*tagEnv, error) {
	o := taggingOptions(a.cfg)
	if err := installExamples(o.DefinitionsDir); err != nil {
		return nil, err
	}
	w, err := openWarehouse(a, false)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("cannot open DuckDB: %w", err)
	}
	tg, err := tagging.New(db, tagging.WarehouseStore{W: w}, o, a.log)
	if err != nil {
		db.Close()
		w.Close()
		return nil, err
	}
	return &tagEnv{w: w, db: db, tg: tg}, nil
}

// installExamples copies the shipped definitions into dir when dir does not exist yet.
func installExamples(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create definitions dir: %w", err)
	}
	return fs.WalkDir(definitions.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := definitions.FS.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), data, 0o644)
	})
}

func defaultDS() string { return time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02") }

func init() {
	register(func(a *app) *cobra.Command {
		cmd := &cobra.Command{Use: "tags", Short: "Compute, inspect and export user interest tags"}
		cmd.AddCommand(tagsRun(a), tagsShow(a), tagsList(a), tagsAudience(a), tagsItems(a))
		return cmd
	})
}

func tagsRun(a *app) *cobra.Command {
	var ds, only string
	var full, modelOnly bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the interest model, tag definitions, profiles and audiences for a day",
		Long: `Runs, for --ds (default yesterday, UTC): the interest model (incremental from the
latest state, or --full), every tag definition in the definitions dir, the user
profiles, then every audience. A failing definition fails only itself; the command
exits non-zero when anything failed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := tagging.ParseDS(ds); err != nil {
				return err
			}
			env, err := openTagging(a)
			if err != nil {
				return err
			}
			defer env.Close()
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			st, err := env.tg.RunModel(ctx, ds, full)
			if err != nil {
				return err
			}
			mode := "incremental from " + st.Prev
			if st.Full {
				mode = "full"
			}
			fmt.Fprintf(out, "model %s (%s): %d events (%d duplicates, %d future, %d untagged, %d invalid, unknown actions %v) → %d users, %d user×tag pairs, %d interest rows in %s\n",
				ds, mode, st.Events, st.Duplicates, st.FutureEvents, st.UntaggedEvents, st.InvalidRows, st.UnknownActions,
				st.Users, st.Pairs, st.InterestRows, st.Took.Round(time.Millisecond))
			if modelOnly {
				return nil
			}
			defs, auds, loadErr := tagging.LoadDefinitions(env.tg.Options().DefinitionsDir)
			if only != "" {
				keep := map[string]bool{}
				for _, n := range strings.Split(only, ",") {
					keep[strings.TrimSpace(n)] = true
				}
				var sel []*tagging.Definition
				for _, d := range defs {
					if keep[d.Name] {
						sel = append(sel, d)
					}
				}
				defs = sel
			}
			res, runErr := env.tg.RunDefinitions(ctx, defs, ds)
			for _, r := range res {
				if r.Err != nil {
					fmt.Fprintf(out, "tag %-20s FAILED: %v\n", r.Name, r.Err)
				} else {
					fmt.Fprintf(out, "tag %-20s %d users (reads %s) in %s\n", r.Name, r.Rows, strings.Join(r.Reads, ", "), r.Took.Round(time.Millisecond))
				}
			}
			if err := env.tg.RunProfile(ctx, ds); err != nil {
				return err
			}
			var audErrs []error
			for _, au := range auds {
				n, err := env.tg.RunAudience(ctx, au, ds)
				if err != nil {
					fmt.Fprintf(out, "audience %-15s FAILED: %v\n", au.Name, err)
					audErrs = append(audErrs, err)
					continue
				}
				fmt.Fprintf(out, "audience %-15s %d users\n", au.Name, n)
			}
			return errors.Join(append([]error{loadErr, runErr}, audErrs...)...)
		},
	}
	cmd.Flags().StringVar(&ds, "ds", defaultDS(), "day to compute (YYYY-MM-DD, UTC)")
	cmd.Flags().BoolVar(&full, "full", false, "recompute from all events instead of continuing from the previous state")
	cmd.Flags().BoolVar(&modelOnly, "model-only", false, "run only the interest model (and profiles)")
	cmd.Flags().StringVar(&only, "definitions", "", "comma-separated definitions to run (default all)")
	return cmd
}

func tagsShow(a *app) *cobra.Command {
	var user, ds string
	var events int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show --user U",
		Short: "Show a user's interest tags with weights and the events that contributed most",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return errors.New("--user is required")
			}
			env, err := openTagging(a)
			if err != nil {
				return err
			}
			defer env.Close()
			ex, err := env.tg.Explain(cmd.Context(), user, ds, events)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(ex)
			}
			fmt.Fprintf(out, "user %s on %s: %d events, first %s, last %s, activity %.3f\n", ex.User, ex.DS, ex.Events,
				ex.FirstSeen.Format(time.RFC3339), ex.LastSeen.Format(time.RFC3339), ex.Activity)
			for _, k := range sortedAttrKeys(ex.Attrs) {
				fmt.Fprintf(out, "  %s = %s\n", k, ex.Attrs[k])
			}
			if len(ex.Tags) == 0 {
				fmt.Fprintln(out, "no interest tags (no weighted events on tagged items, or all below min_weight)")
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			for _, t := range ex.Tags {
				fmt.Fprintf(tw, "#%d\t%s\tweight %.4f\tscore %.4f\t%d events\tlast %s\n", t.Rank, t.Tag, t.Weight, t.Score, t.Events, t.LastSeen.Format("2006-01-02"))
				for _, c := range t.Top {
					v := ""
					if c.Value != nil {
						v = fmt.Sprintf(" value %g", *c.Value)
					}
					fmt.Fprintf(tw, "\t  %s item %s%s\t%s\t+%.4f\t(%.0f%% of score)\n", c.Action, c.ItemID, v, c.EventTime.Format("2006-01-02 15:04"), c.Contribution, 100*c.Share)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "user id")
	cmd.Flags().StringVar(&ds, "ds", "", "day (default: the latest computed)")
	cmd.Flags().IntVar(&events, "events", 3, "contributing events to show per tag")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func sortedAttrKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func tagsList(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List tags: the model, definitions and audiences, with lineage and last run",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := openTagging(a)
			if err != nil {
				return err
			}
			defer env.Close()
			cat, err := env.tg.Catalog(cmd.Context())
			if err != nil {
				return err
			}
			seen := map[string]bool{}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tTYPE\tOWNER\tSCHEDULE\tREADS\tLAST DS\tSTATUS\tROWS\tDESCRIPTION")
			for _, e := range cat {
				seen[e.Name] = true
				status := e.LastStatus
				if e.LastError != "" {
					status += ": " + firstLine(e.LastError)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Name, e.Kind, e.Type, e.Owner, e.Schedule,
					strings.Join(e.Reads, ","), e.LastDS, status, e.LastRows, e.Description)
			}
			defs, auds, loadErr := tagging.LoadDefinitions(env.tg.Options().DefinitionsDir)
			for _, d := range defs {
				if !seen[d.Name] {
					fmt.Fprintf(tw, "%s\tdefinition\t%s\t%s\t%s\t\t\tnever run\t\t%s\n", d.Name, d.Type, d.Owner, d.Schedule, d.Description)
				}
			}
			for _, au := range auds {
				if !seen[au.Name] {
					fmt.Fprintf(tw, "%s\taudience\trule\t%s\t%s\t\t\tnever run\t\t%s\n", au.Name, au.Owner, au.Schedule, au.Description)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			return loadErr
		},
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func tagsAudience(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "audience", Short: "Materialise and export audiences (boolean expressions over tags)"}
	var ds, expr, csvPath, topic string
	var tombstones bool
	var brokers []string
	findAudience := func(env *tagEnv, name string) (*tagging.Audience, error) {
		if expr != "" {
			au := &tagging.Audience{Name: name, Expression: expr}
			return au, au.Validate()
		}
		_, auds, _ := tagging.LoadDefinitions(env.tg.Options().DefinitionsDir)
		for _, au := range auds {
			if au.Name == name {
				return au, nil
			}
		}
		return nil, fmt.Errorf("no audience %q in %s (or pass --expr)", name, env.tg.Options().DefinitionsDir)
	}
	run := &cobra.Command{
		Use:   "run NAME",
		Short: "Materialise an audience for a day into ads_audiences (from its file, or --expr)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := openTagging(a)
			if err != nil {
				return err
			}
			defer env.Close()
			au, err := findAudience(env, args[0])
			if err != nil {
				return err
			}
			n, err := env.tg.RunAudience(cmd.Context(), au, ds)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "audience %s on %s: %d users\n", au.Name, ds, n)
			return nil
		},
	}
	run.Flags().StringVar(&expr, "expr", "", `expression, e.g. "interest:Comedy > 0.3 AND activity = 'high'"`)
	export := &cobra.Command{
		Use:   "export NAME",
		Short: "Export a materialised audience to CSV (--csv FILE, - for stdout) or a Kafka topic (--topic)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (csvPath == "") == (topic == "") {
				return errors.New("give exactly one of --csv and --topic")
			}
			if tombstones && topic == "" {
				return errors.New("--tombstones needs --topic")
			}
			env, err := openTagging(a)
			if err != nil {
				return err
			}
			defer env.Close()
			users, err := env.tg.AudienceMembers(cmd.Context(), args[0], ds)
			if errors.Is(err, tagging.ErrNotMaterialised) {
				return fmt.Errorf("%w: tagpipe tags run --ds %s", err, ds)
			}
			if err != nil {
				return err
			}
			var since string
			var leavers []string
			if tombstones {
				if since, leavers, err = env.tg.AudienceLeavers(cmd.Context(), args[0], ds); err != nil {
					return err
				}
			}
			switch {
			case csvPath == "-":
				return tagging.ExportCSV(cmd.OutOrStdout(), args[0], ds, users)
			case csvPath != "":
				if err := tagging.ExportCSVFile(csvPath, args[0], ds, users); err != nil {
					return err
				}
			default:
				bs := brokers
				if len(bs) == 0 {
					bs = a.cfg.Ingest.BootstrapServers
				}
				if len(bs) == 0 {
					bs = (&kafkaFlags{}).seeds(a.cfg) // the built-in broker, as its advertised address when set
				}
				ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
				defer cancel()
				if err := tagging.ExportKafka(ctx, bs, a.kafka, topic, args[0], ds, users, leavers); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported %d users of audience %s on %s\n", len(users), args[0], ds)
			switch {
			case tombstones && since == "":
				fmt.Fprintf(cmd.ErrOrStderr(), "and no tombstones: the audience has no materialisation before %s\n", ds)
			case tombstones:
				fmt.Fprintf(cmd.ErrOrStderr(), "and %d tombstones for users of earlier days (since %s) who are not members now\n", len(leavers), since)
			}
			return nil
		},
	}
	export.Flags().StringVar(&csvPath, "csv", "", "CSV file to write (- for stdout)")
	export.Flags().StringVar(&topic, "topic", "", "Kafka topic to produce to (key user_id, JSON value)")
	export.Flags().BoolVar(&tombstones, "tombstones", false, "also send a tombstone (null value) for each user of the audience's earlier materialisations "+
		"who is not a member on --ds: a compacted topic (cleanup.policy=compact) of its own then holds the audience as of --ds")
	export.Flags().StringSliceVar(&brokers, "bootstrap-server", nil, "Kafka brokers host:port (default ingest.bootstrap_servers, else the built-in broker: broker.listen, with broker.advertised_host/advertised_port when set)")
	// --brokers was this flag's name before it took the other Kafka commands' one.
	export.Flags().StringSliceVar(&brokers, "brokers", nil, "Kafka bootstrap servers")
	_ = export.Flags().MarkDeprecated("brokers", "use --bootstrap-server")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the audiences defined in the definitions dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := taggingOptions(a.cfg).DefinitionsDir
			if err := installExamples(dir); err != nil {
				return err
			}
			_, auds, err := tagging.LoadDefinitions(dir)
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tOWNER\tSCHEDULE\tEXPRESSION")
			for _, au := range auds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", au.Name, au.Owner, au.Schedule, au.Expression)
			}
			if ferr := tw.Flush(); ferr != nil {
				return ferr
			}
			return err
		},
	}
	for _, c := range []*cobra.Command{run, export} {
		c.Flags().StringVar(&ds, "ds", defaultDS(), "day (YYYY-MM-DD)")
	}
	cmd.AddCommand(run, export, list)
	return cmd
}

func tagsItems(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "items FILE",
		Short: "Load item tags into dim_item (replacing it) from MovieLens movies.csv, a CSV or JSON lines",
		Long: `Loads item tags into dim_item, replacing it, from FILE in --format:
movielens (movies.csv: movieId,title,genres with genres as tags), csv (header
item_id,category,tags with tags '|'-separated), json (one object per line with item_id,
category, tags as a list).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// DuckDB would say "No files found that match the pattern" under its SQL.
			if m, _ := filepath.Glob(args[0]); len(m) == 0 {
				abs, _ := filepath.Abs(args[0])
				return fmt.Errorf("cannot load items: no such file: %s", abs)
			}
			q, err := tagging.ItemsQuery(format, args[0])
			if err != nil {
				return err
			}
			env, err := openTagging(a)
			if err != nil {
				return err
			}
			defer env.Close()
			conn, err := env.db.Conn(cmd.Context())
			if err != nil {
				return err
			}
			defer conn.Close()
			n, err := tagging.WarehouseStore{W: env.w}.Load(cmd.Context(), conn, tagging.TableItems, nil, q)
			if err != nil {
				return fmt.Errorf("cannot load items from %q: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "loaded %d items into %s\n", n, tagging.TableItems)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "movielens", "movielens, csv or json")
	return cmd
}

func init() {
	registerJobKind(func(a *app, k *jobs.Kinds) { k.Register("tag", tagJobKind(a)) })
}

// scheduledTagJobs makes a job `tag_<name>` (kind tag) for every tag definition and
// audience that has its own schedule, as the definition files promise; the nightly job
// leaves those out so none runs twice a day. They read the model's tables, so each runs
// after the nightly job's run for the same ds when that job exists, and an audience runs
// after every scheduled definition (its expression may read any tag). Definitions that
// fail to load are reported and left out; the scheduler still starts.
func scheduledTagJobs(a *app, have []jobs.Def) ([]jobs.Def, error) {
	dir := taggingOptions(a.cfg).DefinitionsDir
	if err := installExamples(dir); err != nil {
		return nil, err
	}
	defs, auds, loadErr := tagging.LoadDefinitions(dir)
	return tagJobDefs(defs, auds, have), loadErr
}

// tagJobDefs are the jobs of the scheduled tag definitions and audiences, each after
// the tags_nightly jobs among have (audiences also after the definitions' jobs).
func tagJobDefs(defs []*tagging.Definition, auds []*tagging.Audience, have []jobs.Def) []jobs.Def {
	var nightly []string
	for _, d := range have {
		if d.Task.Kind == "builtin" && d.Task.Name == "tags_nightly" {
			nightly = append(nightly, d.Name)
		}
	}
	var out []jobs.Def
	var defJobs []string
	for _, d := range defs {
		if d.Schedule != "" {
			out = append(out, jobs.Def{Name: "tag_" + d.Name, Schedule: d.Schedule, DependsOn: nightly,
				Task: jobs.TaskSpec{Kind: "tag", Name: d.Name}})
			defJobs = append(defJobs, "tag_"+d.Name)
		}
	}
	for _, au := range auds {
		if au.Schedule != "" {
			out = append(out, jobs.Def{Name: "tag_" + au.Name, Schedule: au.Schedule,
				DependsOn: append(append([]string(nil), nightly...), defJobs...),
				Task:      jobs.TaskSpec{Kind: "tag", Name: au.Name}})
		}
	}
	return out
}

// tagJobKind is `task: {kind: tag, name: N}`: one tag for the run's ds, so each
// definition can have its own job and schedule. N is "interest" (the model,
// incremental), a tag definition (then the profiles are refreshed) or an audience in
// the definitions dir. Rows are the rows the tag wrote.
func tagJobKind(a *app) jobs.KindFunc {
	return func(spec jobs.TaskSpec) (jobs.Task, error) {
		if spec.Name == "" {
			return nil, errors.New(`kind tag needs name: "interest", a tag definition or an audience`)
		}
		return jobs.TaskFunc(func(ctx context.Context, rc jobs.RunContext) (int64, error) {
			env, err := openTagging(a)
			if err != nil {
				return 0, err
			}
			defer env.Close()
			if spec.Name == "interest" {
				st, err := env.tg.RunModel(ctx, rc.DS, false)
				if err != nil {
					return 0, err
				}
				fmt.Fprintf(rc.Output, "interest model %s: %d events, %d interest rows (full=%v)\n", rc.DS, st.Events, st.InterestRows, st.Full)
				return st.InterestRows, nil
			}
			defs, auds, loadErr := tagging.LoadDefinitions(env.tg.Options().DefinitionsDir)
			for _, d := range defs {
				if d.Name == spec.Name {
					r, err := env.tg.RunDefinition(ctx, d, rc.DS)
					if err != nil {
						return 0, err
					}
					fmt.Fprintf(rc.Output, "tag %s %s: %d users\n", d.Name, rc.DS, r.Rows)
					return r.Rows, env.tg.RunProfile(ctx, rc.DS)
				}
			}
			for _, au := range auds {
				if au.Name == spec.Name {
					n, err := env.tg.RunAudience(ctx, au, rc.DS)
					fmt.Fprintf(rc.Output, "audience %s %s: %d users\n", au.Name, rc.DS, n)
					return n, err
				}
			}
			return 0, errors.Join(fmt.Errorf("no tag definition or audience %q in %s", spec.Name, env.tg.Options().DefinitionsDir), loadErr)
		}), nil
	}
}
