// Package duckpeer holds one benchmark and its check, nothing else: the events
// pipeline's two tables written by the warehouse's Parquet writer and by DuckDB's,
// side by side in the same run (BenchmarkEventsWriters), and both writers' files
// reading back the same rows (TestEventsWritersAgree). It is a package of its own because it links DuckDB, which the
// pipeline's own tests do not.
package duckpeer
