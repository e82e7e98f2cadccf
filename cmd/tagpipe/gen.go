package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/tagging/gen"
)

func init() {
	register(func(a *app) *cobra.Command {
		o := gen.DefaultOptions()
		var events int64
		var start, out string
		cmd := &cobra.Command{
			Use:   "gen",
			Short: "Generate synthetic Taobao-style behaviour events (Zipf users and items)",
			Long: `Writes user_id,item_id,category_id,behavior_type,timestamp lines (the Taobao
UserBehavior format, no header) to --out or stdout. Users, items and categories are
Zipf-distributed, behaviours mostly pv, times follow a day/night cycle; the same --seed
gives the same lines. Drop the file into the spool directory (format taobao) to feed
the pipeline, or use it for benchmarks.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				d, err := time.Parse("2006-01-02", start)
				if err != nil {
					return fmt.Errorf("bad --start %q: want YYYY-MM-DD", start)
				}
				o.Start = d
				var w io.Writer = cmd.OutOrStdout()
				if out != "" && out != "-" {
					f, err := os.Create(out)
					if err != nil {
						return fmt.Errorf("cannot create %q: %w", out, err)
					}
					defer f.Close()
					bw := bufio.NewWriter(f)
					if err := gen.New(o).WriteTaobao(bw, events); err != nil {
						return err
					}
					if err := bw.Flush(); err != nil {
						return fmt.Errorf("cannot write %q: %w", out, err)
					}
					return f.Close()
				}
				return gen.New(o).WriteTaobao(w, events)
			},
		}
		f := cmd.Flags()
		f.Int64Var(&events, "events", 1_000_000, "number of events")
		f.Uint64Var(&o.Users, "users", o.Users, "distinct users")
		f.Uint64Var(&o.Items, "items", o.Items, "distinct items")
		f.Uint64Var(&o.Categories, "categories", o.Categories, "distinct categories")
		f.Float64Var(&o.S, "zipf", o.S, "Zipf exponent (> 1)")
		f.IntVar(&o.Days, "days", o.Days, "days the events spread over")
		f.StringVar(&start, "start", o.Start.Format("2006-01-02"), "first day (UTC)")
		f.Uint64Var(&o.Seed, "seed", o.Seed, "random seed")
		f.StringVar(&out, "out", "", "output file (default stdout)")
		return cmd
	})
}
