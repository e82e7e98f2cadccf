package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/jobs"
	"github.com/tagpipe/tagpipe/warehouse"
	"github.com/tagpipe/tagpipe/warehouse/duckbridge"
)

// warehouseOptions maps the warehouse config section onto warehouse.Options.
func warehouseOptions(cfg *config.Config) warehouse.Options {
	o := warehouse.DefaultOptions()
	w := cfg.Warehouse
	o.RowGroupRows = w.RowGroupRows
	o.TargetFileBytes = w.TargetFileBytes
	o.Compression = w.Compression
	o.CompressionLevel = w.CompressionLevel
	o.LockTimeout = w.LockTimeout
	return o
}

// openWarehouse opens the configured warehouse; readOnly skips crash cleanup.
func openWarehouse(a *app, readOnly bool) (*warehouse.Warehouse, error) {
	return openWarehouseReg(a, readOnly, nil)
}

// openWarehouseReg is openWarehouse for servers: the warehouse's metrics go to reg
// (the admin registry).
func openWarehouseReg(a *app, readOnly bool, reg prometheus.Registerer) (*warehouse.Warehouse, error) {
	o := warehouseOptions(a.cfg)
	o.ReadOnly = readOnly
	o.Logger = a.log
	o.Registerer = reg
	return warehouse.Open(a.cfg.Warehouse.Root(a.cfg), o)
}

// openTable opens the warehouse read-only and one of its tables; close the warehouse
// when done.
func openTable(a *app, name string) (*warehouse.Warehouse, *warehouse.Table, error) {
	w, err := openWarehouse(a, true)
	if err != nil {
		return nil, nil, err
	}
	t, err := w.Table(name)
	if err != nil {
		w.Close()
		if errors.Is(err, warehouse.ErrNotFound) {
			err = fmt.Errorf("%w in %s (tagpipe tables list shows the tables; --data-dir picks another data dir)", err, a.cfg.Warehouse.Root(a.cfg))
		}
		return nil, nil, err
	}
	return w, t, nil
}

func init() {
	register(func(a *app) *cobra.Command {
		cmd := &cobra.Command{Use: "tables", Short: "List, inspect and maintain warehouse tables"}
		cmd.AddCommand(tablesList(a), tablesDescribe(a), tablesHistory(a), tablesCompact(a), tablesExpire(a), tablesMaintain(a))
		return cmd
	})
}

func tablesList(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List tables with their current snapshot, files, rows and bytes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w, err := openWarehouse(a, true)
			if err != nil {
				return err
			}
			defer w.Close()
			tables, err := w.Tables()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TABLE\tLAYER\tSNAPSHOT\tPARTITIONS\tFILES\tROWS\tBYTES\tCOMMITTED")
			for _, t := range tables {
				s, err := t.Current()
				if err != nil {
					return err
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", t.Name(), t.Layer(), s.ID, len(s.Partitions()),
					len(s.Files), s.Rows(), humanBytes(s.Summary.TotalBytes), s.Time.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
}

func tablesDescribe(a *app) *cobra.Command {
	var snapID int64
	var asOf string
	cmd := &cobra.Command{
		Use:   "describe <table>",
		Short: "Show a table's schema, partitions, files, rows, bytes and recent snapshots",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, t, err := openTable(a, args[0])
			if err != nil {
				return err
			}
			defer w.Close()
			s, err := pickSnapshot(t, snapID, asOf)
			if err != nil {
				return err
			}
			return describe(cmd.OutOrStdout(), t, s)
		},
	}
	cmd.Flags().Int64Var(&snapID, "snapshot", 0, "describe this snapshot instead of the current one")
	cmd.Flags().StringVar(&asOf, "as-of", "", "describe the table as of this time (RFC 3339)")
	return cmd
}

func pickSnapshot(t *warehouse.Table, id int64, asOf string) (*warehouse.Snapshot, error) {
	switch {
	case id > 0:
		return t.Snapshot(id)
	case asOf != "":
		ts, err := time.Parse(time.RFC3339, asOf)
		if err != nil {
			return nil, fmt.Errorf("bad --as-of %q: want RFC 3339 like 2024-05-01T12:00:00Z", asOf)
		}
		s, err := t.AsOf(ts)
		if errors.Is(err, warehouse.ErrNotFound) {
			err = fmt.Errorf("%w (tagpipe tables history %s lists its snapshots and their times)", err, t.Name())
		}
		return s, err
	}
	return t.Current()
}

func describe(out io.Writer, t *warehouse.Table, s *warehouse.Snapshot) error {
	fmt.Fprintf(out, "table:          %s (layer %s)\n", t.Name(), t.Layer())
	if s.Doc != "" {
		fmt.Fprintf(out, "doc:            %s\n", s.Doc)
	}
	fmt.Fprintf(out, "location:       %s\n", t.Dir())
	fmt.Fprintf(out, "snapshot:       %d (%s, %s)\n", s.ID, s.Operation, s.Time.Format(time.RFC3339))
	keys := strings.Join(s.PartitionKeys, ", ")
	if keys == "" {
		keys = "(none: unpartitioned)"
	}
	fmt.Fprintf(out, "partitioned by: %s\n", keys)
	fmt.Fprintf(out, "totals:         %d partitions, %d files, %d rows, %s\n", len(s.Partitions()), len(s.Files), s.Rows(), humanBytes(s.Summary.TotalBytes))
	if len(s.Properties) > 0 {
		fmt.Fprintln(out, "properties:")
		for _, k := range slices.Sorted(maps.Keys(s.Properties)) {
			fmt.Fprintf(out, "  %s = %s\n", k, s.Properties[k])
		}
	}
	fmt.Fprintln(out, "\nschema:")
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  COLUMN\tTYPE (SQL)\tNULL\tDOC")
	for _, f := range s.Schema.Fields() {
		null := "yes"
		if !f.Nullable {
			null = "no"
		}
		typ := duckbridge.SQLType(f.Type)
		if slices.Contains(s.PartitionKeys, f.Name) {
			typ += " (partition)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Name, typ, null, warehouse.FieldDoc(f))
	}
	tw.Flush()
	if len(s.PartitionKeys) > 0 {
		fmt.Fprintln(out, "\npartitions:")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  PARTITION\tFILES\tROWS\tBYTES")
		for _, p := range s.Partitions() {
			var rows, bytes int64
			files := s.FilesIn(p)
			for _, f := range files {
				rows += f.Rows
				bytes += f.Bytes
			}
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\n", p.Path(), len(files), rows, humanBytes(bytes))
		}
		tw.Flush()
	}
	hist, err := t.History()
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\nrecent snapshots (tagpipe tables history for all):")
	return printHistory(out, hist[max(0, len(hist)-5):])
}

func tablesHistory(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "history <table>",
		Short: "List a table's snapshots (time travel points), oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			w, t, err := openTable(a, args[0])
			if err != nil {
				return err
			}
			defer w.Close()
			hist, err := t.History()
			if err != nil {
				return err
			}
			return printHistory(cmd.OutOrStdout(), hist)
		},
	}
}

func printHistory(out io.Writer, hist []*warehouse.Snapshot) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SNAPSHOT\tPARENT\tCOMMITTED\tOPERATION\t+FILES\t-FILES\t+ROWS\t-ROWS\tROWS\tPROPERTIES")
	for _, s := range hist {
		var props []string
		for _, k := range slices.Sorted(maps.Keys(s.Properties)) {
			props = append(props, k+"="+s.Properties[k])
		}
		sum := s.Summary
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", s.ID, s.ParentID, s.Time.Format(time.RFC3339), s.Operation,
			sum.AddedFiles, sum.RemovedFiles, sum.AddedRows, sum.RemovedRows, sum.TotalRows, strings.Join(props, " "))
	}
	return tw.Flush()
}

// selectTables returns the named tables, or every table when names is empty.
// openTables opens the warehouse for writing and the named tables (all when none).
func openTables(a *app, names []string) (*warehouse.Warehouse, []*warehouse.Table, error) {
	w, err := openWarehouse(a, false)
	if err != nil {
		return nil, nil, err
	}
	tables, err := selectTables(w, names)
	if err != nil {
		w.Close()
		return nil, nil, err
	}
	return w, tables, nil
}

func selectTables(w *warehouse.Warehouse, names []string) ([]*warehouse.Table, error) {
	if len(names) == 0 {
		return w.Tables()
	}
	var out []*warehouse.Table
	for _, n := range names {
		t, err := w.Table(n)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func tablesCompact(a *app) *cobra.Command {
	var minFiles int
	var target int64
	cmd := &cobra.Command{
		Use:   "compact [table...]",
		Short: "Merge small files per partition into target-size files (all tables by default)",
		RunE: func(cmd *cobra.Command, args []string) error {
			w, tables, err := openTables(a, args)
			if err != nil {
				return err
			}
			defer w.Close()
			if minFiles == 0 {
				minFiles = a.cfg.Warehouse.CompactMinFiles
			}
			for _, t := range tables {
				res, err := t.Compact(cmd.Context(), warehouse.CompactOptions{MinFiles: minFiles, TargetFileBytes: target})
				if err != nil {
					return err
				}
				if res.Snapshot == nil {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: nothing to compact\n", t.Name())
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %d partitions, %d files -> %d, %d rows rewritten, snapshot %d\n",
					t.Name(), res.Partitions, res.FilesBefore, res.FilesAfter, res.RowsRewritten, res.Snapshot.ID)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&minFiles, "min-files", 0, "compact a partition with at least this many small files (default warehouse.compact_min_files)")
	cmd.Flags().Int64Var(&target, "target-bytes", 0, "target file size (default warehouse.target_file_bytes)")
	return cmd
}

func tablesExpire(a *app) *cobra.Command {
	var olderThan time.Duration
	var retain int
	var noRetention bool
	cmd := &cobra.Command{
		Use:   "expire [table...]",
		Short: "Apply per-table retention (warehouse.retention_days), then drop old snapshots and unreferenced files",
		RunE: func(cmd *cobra.Command, args []string) error {
			w, tables, err := openTables(a, args)
			if err != nil {
				return err
			}
			defer w.Close()
			cfg := a.cfg.Warehouse
			if olderThan == 0 {
				olderThan = cfg.SnapshotGrace
			}
			if retain == 0 {
				retain = cfg.RetainSnapshots
			}
			now := time.Now()
			out := cmd.OutOrStdout()
			for _, t := range tables {
				if days, ok := cfg.RetentionDays[t.Name()]; ok && !noRetention {
					_, dropped, err := t.Retain(cmd.Context(), days, now)
					if err != nil {
						return err
					}
					for _, p := range dropped {
						fmt.Fprintf(out, "%s: dropped partition %s (older than %d days)\n", t.Name(), p.Path(), days)
					}
				}
				res, err := t.Expire(cmd.Context(), warehouse.ExpireOptions{OlderThan: now.Add(-olderThan), RetainLast: retain})
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s: expired %d snapshots, removed %d files\n", t.Name(), len(res.Snapshots), res.Files)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&olderThan, "older-than", 0, "expire snapshots older than this (default warehouse.snapshot_grace)")
	cmd.Flags().IntVar(&retain, "retain", 0, "always keep this many newest snapshots (default warehouse.retain_snapshots)")
	cmd.Flags().BoolVar(&noRetention, "no-retention", false, "skip dropping old partitions")
	return cmd
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func tablesMaintain(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "maintain [table...]",
		Short: "compact, then expire — what a scheduled maintenance job runs (e.g. hourly)",
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, sub := range []*cobra.Command{tablesCompact(a), tablesExpire(a)} {
				sub.SetOut(cmd.OutOrStdout())
				sub.SetContext(cmd.Context())
				if err := sub.RunE(sub, args); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// warehouse_maintain is `task: {kind: builtin, name: warehouse_maintain}`: what
// `tagpipe tables maintain` does, for the scheduler (streaming commits many small files).
func init() {
	registerJobBuiltin("warehouse_maintain", func(a *app) jobs.TaskFunc {
		return func(ctx context.Context, rc jobs.RunContext) (int64, error) {
			cmd := tablesMaintain(a)
			cmd.SetOut(rc.Output)
			cmd.SetContext(ctx)
			return 0, cmd.RunE(cmd, nil)
		}
	})
}
