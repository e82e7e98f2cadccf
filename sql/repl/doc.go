// Package repl is `tagpipe sql` on a terminal: an interactive shell (line editing,
// persistent history, multi-line statements ended by ';', dot commands .tables, .schema,
// .mode, .timing) and one-shot runs of a statement or a script, printing results as an
// aligned table, CSV, JSON or a Parquet file.
package repl
