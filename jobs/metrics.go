package jobs

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	runs             *prometheus.CounterVec
	attemptFailures  *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	lastSuccess      *prometheus.GaugeVec
	running          *prometheus.GaugeVec
	callbackFailures *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tagpipe", Subsystem: "jobs", Name: "runs_total",
			Help: "Finished runs by job and final state (success, failed, upstream_failed, skipped).",
		}, []string{"job", "state"}),
		attemptFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tagpipe", Subsystem: "jobs", Name: "attempt_failures_total",
			Help: "Failed attempts (including ones retried later) by job.",
		}, []string{"job"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tagpipe", Subsystem: "jobs", Name: "run_duration_seconds",
			Help:    "Wall time of finished runs, all attempts and backoff included.",
			Buckets: prometheus.ExponentialBuckets(0.1, 4, 10),
		}, []string{"job"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "tagpipe", Subsystem: "jobs", Name: "last_success_timestamp_seconds",
			Help: "Unix time the job's last successful run ended.",
		}, []string{"job"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "tagpipe", Subsystem: "jobs", Name: "running",
			Help: "Runs in progress in this process by job.",
		}, []string{"job"}),
		callbackFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "tagpipe", Subsystem: "jobs", Name: "callback_failures_total",
			Help: "Failed on_failure / on_retry / on_success callbacks by job.",
		}, []string{"job"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.attemptFailures, m.duration, m.lastSuccess, m.running, m.callbackFailures)
	}
	return m
}

func (m *metrics) finished(r Record) {
	m.runs.WithLabelValues(r.Job, string(r.State)).Inc()
	if d := r.Duration(); d > 0 || r.State == StateSuccess {
		m.duration.WithLabelValues(r.Job).Observe(d.Seconds())
	}
	if r.State == StateSuccess {
		m.lastSuccess.WithLabelValues(r.Job).Set(float64(r.End.UnixNano()) / 1e9)
	}
}
