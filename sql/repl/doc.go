// Package repl is `tagpipe sql` on a terminal, shaped after DuckDB's CLI: an interactive
// shell (line editing, persistent history, multi-line statements ended by ';'), dot
// commands (.mode, .output, .once, .read, .headers, .nullvalue, .separator, .maxrows,
// .echo, .bail, .show, .tables, .schema, .timing, .help) and one-shot runs of a statement
// or a script, printing results in DuckDB's output modes (table, box, csv, json,
// jsonlines, line, list, tabs, markdown, html, insert) or to a Parquet file.
package repl
