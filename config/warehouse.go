package config

import (
	"slices"
	"strings"
	"time"
)

// WarehouseCompressions are the codecs warehouse.compression takes (the warehouse's
// own list, warehouse.Compressions: config imports no room; a cmd test keeps them
// equal), and warehouseCodecLevels the levels of those with levels.
var (
	WarehouseCompressions = []string{"zstd", "snappy", "gzip", "brotli", "lz4_raw", "none"}
	warehouseCodecLevels  = map[string][2]int{"zstd": {1, 22}, "gzip": {1, 9}, "brotli": {1, 11}}
)

// Warehouse configures the Parquet tables (package warehouse).
type Warehouse struct {
	// Dir is the warehouse root; empty = data_dir/warehouse.
	Dir string `yaml:"dir"`
	// RowGroupRows is the number of rows per Parquet row group.
	RowGroupRows int64 `yaml:"row_group_rows"`
	// TargetFileBytes is where writers start a new file and what compaction aims at.
	TargetFileBytes int64 `yaml:"target_file_bytes"`
	// Compression is the Parquet page codec (WarehouseCompressions; Spark's
	// spark.sql.parquet.compression.codec).
	Compression string `yaml:"compression"`
	// CompressionLevel is the codec's level: zstd 1 (fastest) … 22, gzip 1 … 9, brotli
	// 1 … 11; snappy, lz4_raw and none have none.
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
	codec := strings.ToLower(w.Compression)
	if !slices.Contains(WarehouseCompressions, codec) && codec != "uncompressed" {
		ch.fail("compression", "must be one of %s, got %q", strings.Join(WarehouseCompressions, ", "), w.Compression)
	} else if r, ok := warehouseCodecLevels[codec]; ok && (w.CompressionLevel < r[0] || w.CompressionLevel > r[1]) {
		ch.fail("compression_level", "must be %d..%d (%s), got %d", r[0], r[1], codec, w.CompressionLevel)
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
