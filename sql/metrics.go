package sql

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	queries  *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tagpipe_sql_queries_total",
			Help: "Queries run by the SQL engine, by outcome (ok, invalid, refused, timeout, canceled, execution, client).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tagpipe_sql_query_duration_seconds",
			Help:    "Time from receiving a query to sending its last row.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
	}
	// A second engine in the same process (tests) shares the first one's collectors.
	if err := reg.Register(m.queries); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			m.queries = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	if err := reg.Register(m.duration); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			m.duration = are.ExistingCollector.(prometheus.Histogram)
		}
	}
	return m
}
