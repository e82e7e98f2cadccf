package httpapi

import duckdb "github.com/duckdb/duckdb-go/v2"

type duckdbDecimal = duckdb.Decimal
