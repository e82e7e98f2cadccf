package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/tagging"
)

func init() {
	register(func(a *app) *cobra.Command {
		cmd := &cobra.Command{Use: "config", Short: "Inspect and check the configuration"}
		cmd.AddCommand(&cobra.Command{
			Use:   "print",
			Short: "Print the effective configuration, with where each value came from",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.cfg.Print(cmd.OutOrStdout())
			},
		}, &cobra.Command{
			Use:   "check",
			Short: "Check the whole configuration as `up` reads it, opening and creating nothing: tagpipe.yaml, the collector's agents, job and tag definitions",
			Long: "Check the whole configuration as `up` reads it, opening and creating nothing, and report every problem at once " +
				"(exit status 1), like `promtool check config` or `nginx -t`: tagpipe.yaml and TAGPIPE_ variables (keys, values, " +
				"files), the collector's agents (ingest.agents or ingest.flume_conf: every source, channel, sink and interceptor " +
				"key), the job definitions (schedules, dependencies, pools, task kinds) and the tag definitions in " +
				"tagging.definitions_dir with the jobs their schedules add.",
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.checkConfig(cmd.OutOrStdout())
			},
		})
		return cmd
	})
}

// checkConfig is `tagpipe config check`. The file itself was loaded and validated
// before any command runs (a bad key never gets here); this checks what the parts read
// only when they are built.
func (a *app) checkConfig(out io.Writer) error {
	var errs []error
	src := "embedded defaults"
	if a.configFile != "" {
		src = a.configFile
	}
	fmt.Fprintf(out, "config: %s: ok\n", src)

	specs, _, err := checkIngest(a.cfg, a.log, nil)
	if err != nil {
		errs = append(errs, fmt.Errorf("collector: %w", err))
	} else {
		names := make([]string, len(specs))
		for i, s := range specs {
			names[i] = s.Name
		}
		fmt.Fprintf(out, "collector: %d agent(s) ok: %s%s\n", len(specs), strings.Join(names, ", "), offNote(a.cfg.Ingest.Enabled, "ingest"))
	}

	defs, defsErr := jobDefs(a.cfg)
	if defsErr != nil {
		errs = append(errs, fmt.Errorf("jobs: %w", defsErr))
	}
	dir := taggingOptions(a.cfg).DefinitionsDir
	if _, statErr := os.Stat(dir); statErr != nil {
		fmt.Fprintf(out, "tag definitions: %s does not exist yet (the examples are installed there on first use)\n", dir)
	} else if tdefs, auds, err := tagging.LoadDefinitions(dir); err != nil {
		errs = append(errs, fmt.Errorf("tag definitions in %s: %w", dir, err))
	} else {
		tagJobs := tagJobDefs(tdefs, auds, defs)
		fmt.Fprintf(out, "tag definitions: %d definition(s), %d audience(s) ok in %s (%d scheduled)\n", len(tdefs), len(auds), dir, len(tagJobs))
		defs = append(defs, tagJobs...)
	}
	if defsErr == nil {
		if _, err := compileJobs(a, defs); err != nil {
			errs = append(errs, fmt.Errorf("jobs: %w", err))
		} else {
			fmt.Fprintf(out, "jobs: %d definition(s) ok%s\n", len(defs), offNote(a.cfg.Jobs.Enabled, "jobs"))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("configuration has problems:\n%w", errors.Join(errs...))
	}
	return nil
}

// offNote says a checked part is switched off in the configuration.
func offNote(enabled bool, section string) string {
	if enabled {
		return ""
	}
	return fmt.Sprintf(" (%s.enabled is false: `up` does not run it)", section)
}
