package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/tagpipe/tagpipe/jobs"
	"github.com/tagpipe/tagpipe/streaming"
	"github.com/tagpipe/tagpipe/streaming/pipeline"
	"github.com/tagpipe/tagpipe/warehouse"
)

// Sensor kinds other rooms provide for jobs' wait_for (the file sensor is the jobs
// room's own).
func init() {
	registerJobKind(func(a *app, k *jobs.Kinds) {
		k.RegisterSensor("partition", partitionSensor(a))
		k.RegisterSensor("streaming", streamingSensor(a))
	})
}

// partitionSensor waits until a warehouse table's current snapshot holds a partition
// (`{kind: partition, table: dwd_events, partition: "dt={{ds}}"}`; partition defaults to
// dt={{ds}}): Airflow's NamedHivePartitionSensor.
func partitionSensor(a *app) jobs.SensorKindFunc {
	return func(spec jobs.SensorSpec) (jobs.Sensor, error) {
		if _, err := warehouse.LayerOf(spec.Table); err != nil {
			return nil, fmt.Errorf("table: %w", err)
		}
		part := spec.Partition
		if part == "" {
			part = "dt={{ds}}"
		}
		return jobs.SensorFunc(func(_ context.Context, rc jobs.RunContext) (bool, string, error) {
			want := rc.Expand(part)
			waiting := fmt.Sprintf("partition %s of %s", want, spec.Table)
			w, t, err := openTable(a, spec.Table)
			if errors.Is(err, warehouse.ErrNotFound) {
				return false, waiting + " (no such table yet)", nil
			}
			if err != nil {
				return false, "", err
			}
			defer w.Close()
			snap, err := t.Current()
			if err != nil {
				return false, waiting, err
			}
			for _, p := range snap.Partitions() {
				if p.Path() == want {
					return true, waiting, nil
				}
			}
			return false, waiting, nil
		}), nil
	}
}

// streamingSensor waits until a streaming pipeline (`{kind: streaming, pipeline: events,
// delay: 5m}`; pipeline defaults to events) has committed a batch planned at or after the
// run's interval end plus delay: that batch read every record the topics held by then,
// so all of them are in the tables. delay leaves time for collectors to deliver the
// interval's last events. The condition holds at once when streaming is off in the
// config or the pipeline has never run on this data dir (no checkpoint directory: data
// loaded another way, e.g. `tagpipe tables import`).
func streamingSensor(a *app) jobs.SensorKindFunc {
	return func(spec jobs.SensorSpec) (jobs.Sensor, error) {
		name := spec.Pipeline
		if name == "" {
			name = pipeline.DefaultOptions().Name
		}
		if spec.Delay < 0 {
			return nil, fmt.Errorf("delay must be >= 0, got %v", spec.Delay)
		}
		return jobs.SensorFunc(func(_ context.Context, rc jobs.RunContext) (bool, string, error) {
			if !a.cfg.Streaming.Enabled || !a.cfg.Streaming.EventsEnabled {
				return true, "", nil
			}
			dir := streamCheckpointDir(a.cfg, name)
			if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
				if rc.Output != nil {
					fmt.Fprintf(rc.Output, "streaming pipeline %s has never run here (no %s): not waiting for it\n", name, dir)
				}
				return true, "", nil
			}
			until := rc.IntervalEnd.Add(spec.Delay)
			waiting := fmt.Sprintf("streaming pipeline %s to commit a batch of %s or later", name, until.UTC().Format(time.RFC3339))
			p, ok, err := streaming.ReadProgress(dir)
			if err != nil || !ok {
				return false, waiting, err
			}
			return !p.Plan.Time.Before(until), waiting + fmt.Sprintf(" (last: %s)", p.Plan.Time.UTC().Format(time.RFC3339)), nil
		}), nil
	}
}
