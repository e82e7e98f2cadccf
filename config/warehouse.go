package config

import "time"

// Warehouse configures the Parquet tables (package warehouse).
type Warehouse struct {
	// Dir is the warehouse root; empty = data_dir/warehouse.
	Dir string `yaml:"dir"`
	// RowGroupRows is the number of rows per Parquet row group.
	RowGroupRows int64 `yaml:"row_group_rows"`
	// TargetFileBytes is where writers start a new file and what compaction aims at.
	TargetFileBytes int64 `yaml:"target_file_bytes"`
	// CompressionLevel is the zstd level (1 fastest … 22 smallest).
	CompressionLevel int `yaml:"compression_level"`
	// LockTimeout bounds how long a writer waits for another writer of the same table.
	LockTimeout time.Duration `yaml:"lock_timeout"`
	// SnapshotGrace: `tables expire` removes snapshots older than this, and then the
	// files only they referenced (readers pinned to older snapshots get this long).
	SnapshotGrace time.Duration `yaml:"snapshot_grace"`
	// RetainSnapshots is how many newest snapshots expiry always keeps (time travel).
	RetainSnapshots int `yaml:"retain_snapshots"`
	// CompactMinFiles: a partition is compacted once it has this many small files.
	CompactMinFiles int `yaml:"compact_min_files"`
	// RetentionDays per table: partitions with dt older than N days are dropped by
	// `tables expire`, e.g. {ods_events: 90, rt_window_counts: 7}. Absent = keep forever.
	RetentionDays map[string]int `yaml:"retention_days"`
}

// Root is the warehouse directory.
func (w *Warehouse) Root(c *Config) string {
	if w.Dir != "" {
		return w.Dir
	}
	return c.Path("warehouse")
}

func (w *Warehouse) validate(ch *check) {
	ch.positive("row_group_rows", w.RowGroupRows)
	ch.positive("target_file_bytes", w.TargetFileBytes)
	if w.CompressionLevel < 1 || w.CompressionLevel > 22 {
		ch.fail("compression_level", "must be 1..22 (zstd), got %d", w.CompressionLevel)
	}
	ch.positive("lock_timeout", int64(w.LockTimeout))
	ch.positive("snapshot_grace", int64(w.SnapshotGrace))
	ch.positive("retain_snapshots", int64(w.RetainSnapshots))
	if w.CompactMinFiles < 2 {
		ch.fail("compact_min_files", "must be >= 2, got %d", w.CompactMinFiles)
	}
	for table, days := range w.RetentionDays {
		if days < 0 {
			ch.fail("retention_days."+table, "must be >= 0, got %d", days)
		}
	}
}
