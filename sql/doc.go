// Package sql owns tagpipe's DuckDB sessions over the warehouse: an Engine opens one
// in-process DuckDB database, registers every warehouse table as a view (through a
// RegisterFunc, normally warehouse/duckbridge), applies resource limits, and runs
// queries with a timeout and a row limit. In read-only mode (every remote endpoint) it
// refuses anything but SELECT-like statements and locks DuckDB's file access to the
// warehouse directory.
//
// Subpackages are the ways in: httpapi (POST /v1/query), pgwire (PostgreSQL wire
// protocol), repl (the `tagpipe sql` terminal and one-shot modes) and explore (profiling
// of raw files and tables). This room reads tables; it never writes them.
package sql
