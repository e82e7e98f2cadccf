package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/agent"
	"github.com/tagpipe/tagpipe/ingest/flumeconf"
	"github.com/tagpipe/tagpipe/internal/admin"
	"github.com/tagpipe/tagpipe/internal/lifecycle"
)

func init() {
	register(func(a *app) *cobra.Command {
		var flumeConf, name string
		var agents []string
		cmd := &cobra.Command{
			Use:   "ingest",
			Short: "Run the collector alone (sources -> channels -> sinks into Kafka); `ingest status` shows its counters",
			Long: `Run the collector: the agents of the ingest section of tagpipe.yaml (or the default agent:
spooldir <data_dir>/spool/events -> file channel -> kafka topic "events"), or one agent of a
Flume .properties file, as flume-ng agent -f FILE -n NAME does.`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				reg := admin.NewRegistry()
				if flumeConf != "" {
					a.cfg.Ingest.FlumeConf, a.cfg.Ingest.FlumeAgent = flumeConf, name
					if name == "" {
						return fmt.Errorf("--flume-conf needs --name (the agent to run)")
					}
				}
				comps, mount, err := ingestComponents(a.cfg, reg, a.log, agents)
				if err != nil {
					return err
				}
				return a.serve(cmd.Context(), reg, mount, comps...)
			},
		}
		cmd.Flags().StringVarP(&flumeConf, "flume-conf", "f", "", "Flume agent .properties file to run")
		cmd.Flags().StringVarP(&name, "name", "n", "", "agent name in the Flume file")
		cmd.Flags().StringSliceVar(&agents, "agent", nil, "run only these agents of the ingest section")
		cmd.AddCommand(ingestStatusCmd(a))
		return runsUntilStopped(cmd)
	})
}

// ingestSpecs turns the ingest section into agent specs: a Flume file, the configured
// agents, or the default agent.
func ingestSpecs(cfg *config.Config, only []string) ([]agent.Spec, error) {
	ic := cfg.Ingest
	if ic.FlumeConf != "" {
		spec, err := flumeconf.ParseFile(ic.FlumeConf, ic.FlumeAgent)
		if err != nil {
			return nil, err
		}
		return []agent.Spec{spec}, nil
	}
	if len(ic.Agents) == 0 {
		spool := ic.SpoolDir
		if spool == "" {
			spool = cfg.Path("spool", "events")
		}
		return []agent.Spec{agent.DefaultSpec(spool, ic.Topic, ic.DeadLetterTopic)}, nil
	}
	want := map[string]bool{}
	for _, n := range only {
		if _, ok := ic.Agents[n]; !ok {
			return nil, fmt.Errorf("no agent %q in ingest.agents", n)
		}
		want[n] = true
	}
	names := make([]string, 0, len(ic.Agents))
	for n := range ic.Agents {
		names = append(names, n)
	}
	sort.Strings(names)
	var specs []agent.Spec
	for _, n := range names {
		if len(want) > 0 && !want[n] {
			continue
		}
		ag := ic.Agents[n]
		spec, err := agent.FromYAML(n, "ingest.agents."+n, ag.Sources, ag.Channels, ag.Sinks, ag.SinkGroups)
		if err != nil {
			return nil, err
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// ingestComponents builds the collector's agents as lifecycle components plus the admin
// mount for /v1/ingest/status; `tagpipe up` uses it too.
func ingestComponents(cfg *config.Config, reg *prometheus.Registry, log *slog.Logger, only []string) ([]lifecycle.Component, func(*admin.Server), error) {
	specs, env, err := checkIngest(cfg, log, only)
	if err != nil {
		return nil, nil, err
	}
	m := ingest.NewMetrics(reg)
	env.Metrics = m
	var comps []lifecycle.Component
	for _, s := range specs {
		ag, err := agent.Build(s, env)
		if err != nil {
			for _, c := range comps {
				_ = c.Stop(context.Background())
			}
			return nil, nil, err
		}
		comps = append(comps, ag)
	}
	mount := func(srv *admin.Server) {
		srv.Handle("GET /v1/ingest/status", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(m.Snapshot())
		}))
	}
	return comps, mount, nil
}

// checkIngest reads the agents' specs and checks every one of them, all errors together,
// opening nothing (no channel is replayed, no source listens): `ingest` and `up` call it
// before they open anything, so a bad key is reported at once.
func checkIngest(cfg *config.Config, log *slog.Logger, only []string) ([]agent.Spec, agent.Env, error) {
	specs, err := ingestSpecs(cfg, only)
	if err != nil {
		return nil, agent.Env{}, err
	}
	brokers := cfg.Ingest.BootstrapServers
	if len(brokers) == 0 {
		brokers = []string{cfg.Broker.Listen}
	}
	env := agent.Env{DataDir: cfg.DataDir, Brokers: brokers, Security: cfg.Kafka.Security(), Topic: cfg.Ingest.Topic, Log: log}
	var errs []error
	for _, s := range specs {
		if err := agent.Check(s, env); err != nil {
			errs = append(errs, err)
		}
	}
	return specs, env, errors.Join(errs...)
}

func ingestStatusCmd(a *app) *cobra.Command {
	var adminAddr string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the running collector's counters per source, channel and sink",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if adminAddr == "" {
				adminAddr = a.cfg.Admin.Listen
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/v1/ingest/status", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("cannot reach the collector at %s (is `tagpipe ingest` or `tagpipe up` running?): %w", adminAddr, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("collector status from %s: %s", adminAddr, resp.Status)
			}
			var snaps []ingest.Snapshot
			if err := json.NewDecoder(resp.Body).Decode(&snaps); err != nil {
				return fmt.Errorf("cannot decode collector status: %w", err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(snaps)
			}
			return writeIngestStatus(out, snaps)
		},
	}
	cmd.Flags().StringVar(&adminAddr, "admin", "", "admin listener of the running collector (default admin.listen)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func writeIngestStatus(w interface{ Write([]byte) (int, error) }, snaps []ingest.Snapshot) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENT\tKIND\tNAME\tTYPE\tVALUES")
	for _, s := range snaps {
		var kv []string
		for k, v := range s.Counters {
			kv = append(kv, fmt.Sprintf("%s=%d", k, v))
		}
		for k, v := range s.Gauges {
			// Byte counts and capacities are whole numbers: 1073741824, not %g's 1.073741824e+09.
			kv = append(kv, k+"="+strconv.FormatFloat(v, 'f', -1, 64))
		}
		sort.Strings(kv)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Agent, s.Kind, s.Name, s.Type, strings.Join(kv, " "))
	}
	return tw.Flush()
}
