// Package explore profiles raw data before anything is modelled (the seed's 数据探索):
// CSV or JSON-lines files, a directory of them, Parquet, or a warehouse table. It reports
// row count, per-column type, nulls, distinct values, min/max/mean/quartiles (DuckDB's
// SUMMARIZE), top values, the time range and events per day, the events-per-user
// distribution and the malformed-line rate, as a terminal summary and as a self-contained
// HTML report with SVG charts (no scripts, no network fetches).
//
// Raw logs are read line by line: a line that does not parse (wrong field count, broken
// quoting, not a JSON object) or whose value does not fit its column's type (inferred
// from at least 99% of the values) counts as malformed, and samples are kept with the
// reason — never silently dropped.
package explore
