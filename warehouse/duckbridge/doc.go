// Package duckbridge shows warehouse tables to DuckDB: for a DuckDB connection it
// creates one view per table over exactly the files of a snapshot
// (read_parquet([...], hive_partitioning = true), union_by_name only after schema
// evolution), so SQL never sees uncommitted or expired files. It is the only
// warehouse code that links DuckDB; the warehouse package itself does not.
package duckbridge
