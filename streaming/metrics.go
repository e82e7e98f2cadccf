package streaming

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type metrics struct {
	batches    prometheus.Counter
	records    prometheus.Counter
	failures   prometheus.Counter
	lost       prometheus.Counter
	delayed    prometheus.Counter
	lastBatch  prometheus.Gauge
	batchRecs  prometheus.Gauge
	inputRate  prometheus.Gauge
	processing prometheus.Histogram
	schedDelay prometheus.Histogram
	lag        prometheus.Gauge
	rateLimit  prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry, pipeline string) *metrics {
	l := prometheus.Labels{"pipeline": pipeline}
	buckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	m := &metrics{
		batches:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_streaming_batches_total", Help: "Committed micro-batches.", ConstLabels: l}),
		records:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_streaming_records_total", Help: "Records processed by committed batches.", ConstLabels: l}),
		failures:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_streaming_batch_failures_total", Help: "Batch attempts that failed and were retried.", ConstLabels: l}),
		lost:       prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_streaming_records_lost_total", Help: "Offsets deleted by retention before they were read.", ConstLabels: l}),
		delayed:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tagpipe_streaming_batches_delayed_total", Help: "Intervals whose batch waited for more records (min_records_per_batch).", ConstLabels: l}),
		lastBatch:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_streaming_last_batch_id", Help: "Id of the last committed batch.", ConstLabels: l}),
		batchRecs:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_streaming_batch_records", Help: "Records of the last committed batch.", ConstLabels: l}),
		inputRate:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_streaming_input_rate", Help: "Records per second of batch interval, last batch.", ConstLabels: l}),
		processing: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tagpipe_streaming_processing_seconds", Help: "Batch processing time (read, compute, outputs, commit).", ConstLabels: l, Buckets: buckets}),
		schedDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tagpipe_streaming_scheduling_delay_seconds", Help: "How late batches started after their batch time.", ConstLabels: l, Buckets: buckets}),
		lag:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_streaming_lag_records", Help: "Records in the topics after the last planned batch.", ConstLabels: l}),
		rateLimit:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "tagpipe_streaming_rate_limit", Help: "Backpressure estimator's total records/s (0 = unlimited).", ConstLabels: l}),
	}
	if reg != nil {
		reg.MustRegister(m.batches, m.records, m.failures, m.lost, m.delayed, m.lastBatch, m.batchRecs, m.inputRate, m.processing, m.schedDelay, m.lag, m.rateLimit)
	}
	return m
}

func (m *metrics) observe(b BatchMetrics) {
	m.batches.Inc()
	m.records.Add(float64(b.Records))
	m.lastBatch.Set(float64(b.ID))
	m.batchRecs.Set(float64(b.Records))
	m.inputRate.Set(b.InputRate)
	m.processing.Observe(b.ProcessingTime.Seconds())
	m.schedDelay.Observe(b.SchedulingDelay.Seconds())
	m.rateLimit.Set(b.RateLimit)
}

func (m *metrics) lagValue() float64 {
	var d dto.Metric
	if err := m.lag.Write(&d); err != nil {
		return 0
	}
	return d.GetGauge().GetValue()
}

// Status is what `tagpipe stream status` prints: the last batches of a job.
type Status struct {
	Batches []BatchMetrics `json:"batches"`
}

func writeStatus(dir string, recent []BatchMetrics) error {
	b, err := json.MarshalIndent(Status{Batches: recent}, "", "  ")
	if err != nil {
		return fmt.Errorf("BUG: cannot encode status: %w", err)
	}
	// No fsync: status is informational and rewritten every batch.
	tmp := filepath.Join(dir, "status.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("cannot write status: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, "status.json"))
}

// ReadStatus reads the status a job's engine leaves in its checkpoint directory.
func ReadStatus(checkpointDir string) (Status, bool, error) {
	var s Status
	ok, err := readJSON(filepath.Join(checkpointDir, "status.json"), &s)
	return s, ok, err
}
