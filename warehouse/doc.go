// Package warehouse owns tagpipe's tables: Hive-layout directories of Parquet files
// (written with arrow-go's pqarrow) plus a per-table snapshot log that makes every
// change atomic.
//
// Layout and manifest format are specified in FORMAT.md and frozen by
// TestFormatFrozen. In short:
//
//	<root>/<layer>/<table>/dt=2024-05-01/part-<txid>-00000.parquet   data (Hive layout)
//	<root>/<layer>/<table>/_tagpipe/snapshots/00000000000000000007.json   snapshot manifests
//	<root>/<layer>/<table>/_tagpipe/LOCK                                   writer lock (flock)
//
// The layer is the table name's prefix: ods, dwd, dws, ads, dim, dlq, rt or sys.
//
// Using it:
//
//	w, _ := warehouse.Open(root, warehouse.DefaultOptions()) // cleans a crashed writer's debris
//	defer w.Close()
//	t, _ := w.CreateTable(ctx, warehouse.TableSpec{Name: "ods_events", Schema: s, PartitionKeys: []string{"dt"}})
//	tx, _ := t.Begin(ctx)                 // takes the table's writer lock (one writer per table, across processes)
//	defer tx.Abort()                      // no-op after Commit
//	_ = tx.Write(rec)                     // partition values taken from the record's "dt" column
//	snap, _ := tx.Commit(ctx, warehouse.CommitOptions{
//		Operation:      warehouse.OpAppend,         // or OpOverwritePartitions / OpDeletePartitions
//		Properties:     map[string]string{"batch": "42"},
//		ExpectedParent: warehouse.Parent(41),       // optional: fail with ErrConflict if someone else committed
//	})
//
// Files written by someone else (for example DuckDB's COPY … TO into t.StagingDir())
// are published with tx.AddFile / tx.ImportDir and the same Commit.
//
// Readers pin a snapshot: t.Current(), t.Snapshot(id), t.AsOf(time), t.History();
// a Snapshot lists its Files (relative path, partition values, rows, bytes), its
// Schema and its Properties, and can be scanned with Snapshot.Scan. Readers take no
// lock and never see a partial commit: a snapshot becomes visible only when its
// manifest is linked into place, after all its files are durable.
//
// Files a commit replaces leave directory globs at once (renamed to
// .<name>.removed) and stay readable for older snapshots until they expire, so
// read_parquet('<table>/**/*.parquet', hive_partitioning = true) and other
// Hive-layout engines see the current snapshot too.
//
// Maintenance: Table.Compact merges small files per partition (without holding the
// writer lock while it rewrites; it rebases onto concurrent appends), Table.Retain
// drops old partitions, Table.Expire removes old snapshots and the files only they
// referenced. Options.Registerer receives tagpipe_warehouse_* metrics. The DuckDB
// view layer lives in warehouse/duckbridge, so this package does not link DuckDB.
//
// Lock order: a Tx holds the table's flock (LOCK) from Begin to the end of Commit;
// Table.mu only guards the manifest cache and is never held while taking the flock.
package warehouse
