package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/sql/explore"
)

func init() {
	register(func(a *app) *cobra.Command {
		var (
			out, timeCol, userCol, header string
			columns                       []string
			top                           int
			maxLines                      int64
			asJSON, noHTML                bool
		)
		cmd := &cobra.Command{
			Use:   "explore FILE|DIR|TABLE",
			Short: "Profile raw CSV/JSON-lines logs, Parquet or a warehouse table: terminal summary + HTML report",
			Long: `Profiles raw CSV/JSON-lines logs (a file or a directory of them), Parquet or a warehouse
table: rows, per-column type, nulls, distinct values, min/max/mean/quartiles (DuckDB SUMMARIZE),
top values, time range and events per day, events per user, and malformed lines with
their reasons. The HTML report is one self-contained file with SVG charts.`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				switch header {
				case "auto":
					header = ""
				case "yes", "no":
				default:
					return fmt.Errorf("--header %q: want auto, yes or no", header)
				}
				opts := explore.Options{TimeColumn: timeCol, UserColumn: userCol, Top: top, Header: header, Columns: columns, MaxLines: maxLines}
				if _, err := os.Stat(args[0]); err != nil {
					w, werr := openWarehouse(a, true)
					if werr != nil {
						return werr
					}
					opts.Register = warehouseViews(w)
				}
				p, err := explore.Run(cmd.Context(), args[0], opts)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					if err := enc.Encode(p); err != nil {
						return err
					}
				} else if err := p.WriteText(cmd.OutOrStdout()); err != nil {
					return err
				}
				if noHTML {
					return nil
				}
				if out == "" {
					base := strings.TrimSuffix(filepath.Base(filepath.Clean(args[0])), filepath.Ext(args[0]))
					out = "explore-" + base + ".html"
				}
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				if err := p.WriteHTML(f); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "report: %s\n", out)
				return nil
			},
		}
		f := cmd.Flags()
		f.StringVarP(&out, "out", "o", "", "HTML report file (default explore-NAME.html)")
		f.StringVar(&timeCol, "time-column", "", "event time column (default: detected)")
		f.StringVar(&userCol, "user-column", "", "user id column (default: detected)")
		f.IntVar(&top, "top", 5, "top values per column")
		f.Int64Var(&maxLines, "max-lines", 0, "profile only the first N data lines of raw files (0: all)")
		f.StringVar(&header, "header", "auto", "CSV files start with a header line: auto, yes or no")
		f.StringSliceVar(&columns, "columns", nil, "names for the CSV columns, e.g. user_id,item_id,category_id,behavior_type,timestamp for Taobao logs")
		f.BoolVar(&asJSON, "json", false, "print the profile as JSON instead of the summary")
		f.BoolVar(&noHTML, "no-html", false, "do not write the HTML report")
		return cmd
	})
}
