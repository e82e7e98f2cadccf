package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/internal/admin"
	"github.com/tagpipe/tagpipe/internal/event"
	"github.com/tagpipe/tagpipe/internal/lifecycle"
	"github.com/tagpipe/tagpipe/streaming"
	"github.com/tagpipe/tagpipe/streaming/pipeline"
)

func init() {
	register(func(a *app) *cobra.Command {
		var availableNow bool
		cmd := &cobra.Command{
			Use:   "stream",
			Short: "Run the streaming engine alone: events topics → ods_events, dwd_events, dlq_events, rt_window_counts",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				reg := admin.NewRegistry()
				comps, _, closeFn, err := streamComponents(cmd.Context(), a, reg, availableNow)
				if err != nil {
					return err
				}
				defer closeFn()
				return a.serve(cmd.Context(), reg, nil, comps...)
			},
		}
		cmd.Flags().BoolVar(&availableNow, "available-now", false,
			"read what the topics hold now, in batches, then exit (Spark's Trigger.AvailableNow: a nightly catch-up without a long-running process)")
		cmd.AddCommand(streamStatus(a))
		return runsUntilStopped(cmd)
	})
}

// streamBrokers are the Kafka bootstrap servers of the streaming engine.
func streamBrokers(cfg *config.Config) []string {
	if len(cfg.Streaming.BootstrapServers) > 0 {
		return cfg.Streaming.BootstrapServers
	}
	return []string{cfg.Broker.Listen}
}

// streamCheckpointDir is the checkpoint directory of one pipeline.
func streamCheckpointDir(cfg *config.Config, pipelineName string) string {
	dir := cfg.Streaming.CheckpointDir
	if dir == "" {
		dir = cfg.Path("streaming")
	}
	return filepath.Join(dir, pipelineName)
}

// streamComponents builds the configured streaming pipelines as lifecycle components
// (`tagpipe up` uses it too). closeFn releases the warehouse after the components stop.
func streamComponents(ctx context.Context, a *app, reg *prometheus.Registry, availableNow bool) (comps []lifecycle.Component, engines []*streaming.Engine, closeFn func() error, err error) {
	s := a.cfg.Streaming
	if !s.EventsEnabled {
		return nil, nil, nil, errors.New("streaming.events_enabled is false: no pipeline to run")
	}
	wh, err := openWarehouseReg(a, false, reg)
	if err != nil {
		return nil, nil, nil, err
	}
	po := pipeline.DefaultOptions()
	po.Interval = s.BatchInterval
	po.Warehouse = wh
	po.Default = event.Options{Format: s.EventsFormat}
	po.Formats = map[string]event.Options{}
	for topic, f := range s.EventsFormats {
		o := event.Options{Format: f.Format, Columns: f.Columns, Header: f.Header, Mapping: f.Mapping, TimeLayout: f.TimeLayout}
		switch f.Delimiter {
		case "":
		case "tab":
			o.Delimiter = '\t'
		default:
			o.Delimiter = []rune(f.Delimiter)[0]
		}
		po.Formats[topic] = o
	}
	po.DedupByEventID, po.DedupTTL = s.DedupByEventID, s.DedupTTL
	po.Windows = pipeline.WindowOptions{}
	if s.WindowEnabled {
		po.Windows = pipeline.WindowOptions{Length: s.WindowLength, Slide: s.WindowSlide, AllowedLateness: s.WindowAllowedLateness,
			Topic: s.WindowCountsTopic, Brokers: streamBrokers(a.cfg), Security: a.kafka}
	}
	ev, err := pipeline.NewEvents(ctx, po)
	if err != nil {
		wh.Close()
		return nil, nil, nil, err
	}
	o := streaming.DefaultOptions()
	o.Brokers, o.Security = streamBrokers(a.cfg), a.kafka
	if o.TopicPattern, err = s.TopicPattern(); err != nil {
		ev.Close()
		wh.Close()
		return nil, nil, nil, err
	}
	if o.TopicPattern == nil {
		o.Topics = s.EventsTopics
	}
	o.Group = s.Group
	o.CheckpointDir = streamCheckpointDir(a.cfg, po.Name)
	o.MaxRecordsPerPartition = s.MaxRecordsPerPartition
	o.MaxRecordsPerBatch = s.MaxRecordsPerBatch
	o.MinRecordsPerBatch, o.MaxTriggerDelay = s.MinRecordsPerBatch, s.MaxTriggerDelay
	o.MaxRatePerPartition = s.MaxRatePerPartition
	o.Backpressure = s.Backpressure
	o.StartingOffsets = s.StartingOffsets
	o.FailOnDataLoss = s.FailOnDataLoss
	o.IsolationLevel = s.IsolationLevel
	o.AvailableNow = availableNow
	o.Resume = ev.Resume
	o.Registry = reg
	o.Logger = a.log
	e, err := streaming.New(ev.Job, o)
	if err != nil {
		ev.Close()
		wh.Close()
		return nil, nil, nil, err
	}
	return []lifecycle.Component{e}, []*streaming.Engine{e}, func() error { return errors.Join(ev.Close(), wh.Close()) }, nil
}

func streamStatus(a *app) *cobra.Command {
	var noLag bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the streaming pipelines' last batches (records, input rate, processing time, scheduling delay) and lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name := pipeline.DefaultOptions().Name
			dir := streamCheckpointDir(a.cfg, name)
			st, ok, err := streaming.ReadStatus(dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !ok {
				fmt.Fprintf(out, "pipeline %s: no batch committed yet (checkpoint %s)\n", name, dir)
				return nil
			}
			fmt.Fprintf(out, "pipeline %s (checkpoint %s)\n", name, dir)
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "BATCH\tTIME\tRECORDS\tINPUT/S\tPROCESSING\tSCHED DELAY\tLAG\tRATE LIMIT")
			for _, b := range st.Batches {
				limit := "-"
				if b.RateLimit > 0 {
					limit = fmt.Sprintf("%.0f/s", b.RateLimit)
				}
				fmt.Fprintf(tw, "%d\t%s\t%d\t%.0f\t%v\t%v\t%d\t%s\n", b.ID, b.Time.UTC().Format(time.RFC3339),
					b.Records, b.InputRate, b.ProcessingTime.Round(time.Millisecond), b.SchedulingDelay.Round(time.Millisecond), b.Lag, limit)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if noLag {
				return nil
			}
			prog, ok, err := streaming.ReadProgress(dir)
			if err != nil || !ok {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			topics := a.cfg.Streaming.EventsTopics
			pattern, err := a.cfg.Streaming.TopicPattern()
			if err != nil {
				return err
			}
			if pattern != nil {
				topics = nil
			}
			lags, err := streaming.Lag(ctx, streamBrokers(a.cfg), a.kafka, topics, pattern, prog.Ends)
			if err != nil {
				fmt.Fprintf(out, "lag: unavailable (%v)\n", err)
				return nil
			}
			tw = tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "\nTOPIC\tPARTITION\tCOMMITTED\tEND\tLAG")
			var total int64
			for _, l := range lags {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", l.Topic, l.Partition, l.Committed, l.End, l.Lag)
				total += l.Lag
			}
			fmt.Fprintf(tw, "total\t\t\t\t%d\n", total)
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&noLag, "no-lag", false, "do not ask the brokers for the end offsets")
	return cmd
}
