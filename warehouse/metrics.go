package warehouse

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the warehouse's Prometheus collectors, per table.
type metrics struct {
	commits      *prometheus.CounterVec   // table, operation
	conflicts    *prometheus.CounterVec   // table
	commitTime   *prometheus.HistogramVec // table
	rowsAdded    *prometheus.CounterVec   // table
	filesAdded   *prometheus.CounterVec   // table
	bytesAdded   *prometheus.CounterVec   // table
	filesRemoved *prometheus.CounterVec   // table
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tagpipe_warehouse_commits_total",
			Help: "Snapshots committed, by table and operation."}, []string{"table", "operation"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tagpipe_warehouse_commit_conflicts_total",
			Help: "Commits refused because the table moved (lost race or unexpected parent)."}, []string{"table"}),
		commitTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tagpipe_warehouse_commit_seconds",
			Help: "Time to publish a snapshot (flush, rename, manifest).", Buckets: prometheus.ExponentialBuckets(0.001, 4, 8)}, []string{"table"}),
		rowsAdded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tagpipe_warehouse_rows_added_total",
			Help: "Rows in files added by commits."}, []string{"table"}),
		filesAdded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tagpipe_warehouse_files_added_total",
			Help: "Parquet files added by commits."}, []string{"table"}),
		bytesAdded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tagpipe_warehouse_bytes_added_total",
			Help: "Bytes of Parquet files added by commits."}, []string{"table"}),
		filesRemoved: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tagpipe_warehouse_files_removed_total",
			Help: "Files dropped from the current snapshot by commits (overwrite, delete, compaction)."}, []string{"table"}),
	}
	if reg == nil {
		return m, nil
	}
	register := func(c prometheus.Collector) (prometheus.Collector, error) {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return are.ExistingCollector, nil // a second Open in the same process
			}
			return nil, err
		}
		return c, nil
	}
	var err error
	var c prometheus.Collector
	if c, err = register(m.commits); err == nil {
		m.commits = c.(*prometheus.CounterVec)
	}
	for _, p := range []**prometheus.CounterVec{&m.conflicts, &m.rowsAdded, &m.filesAdded, &m.bytesAdded, &m.filesRemoved} {
		if err != nil {
			break
		}
		if c, err = register(*p); err == nil {
			*p = c.(*prometheus.CounterVec)
		}
	}
	if err == nil {
		if c, err = register(m.commitTime); err == nil {
			m.commitTime = c.(*prometheus.HistogramVec)
		}
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}
