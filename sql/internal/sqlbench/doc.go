// Package sqlbench measures the SQL endpoints against in-process DuckDB on 1M users'
// interest tags: a point query (one user's tags) and a group-by over all tags, through
// duckdb-go directly, POST /v1/query and the PostgreSQL wire protocol (pgx), with 8
// concurrent clients each. Run: go test -run '^$' -bench . ./sql/internal/sqlbench
package sqlbench
