package sql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Column is one result column: its name and DuckDB type ("INTEGER", "DECIMAL(18,3)",
// "VARCHAR[]", "STRUCT(a INTEGER)").
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Result streams the rows of one query. Values are DuckDB's Go values (int32, string,
// time.Time, duckdb.Decimal, []any, map[string]any, nil …).
type Result struct {
	Columns []Column

	rows      driver.Rows
	dvals     []driver.Value
	vals      []any
	max       int64
	n         int64
	truncated bool
	err       error
}

// Next advances to the next row; false at the end, at the row limit or on error.
func (r *Result) Next() bool {
	if r.err != nil || r.rows == nil {
		return false
	}
	if r.max > 0 && r.n >= r.max {
		// One more row tells a cut result from one that is exactly max rows long.
		if err := r.rows.Next(r.dvals); err == nil {
			r.truncated = true
		} else if !errors.Is(err, io.EOF) {
			r.err = err
		}
		return false
	}
	if err := r.rows.Next(r.dvals); err != nil {
		if !errors.Is(err, io.EOF) {
			r.err = err
		}
		return false
	}
	for i, v := range r.dvals {
		r.vals[i] = v
	}
	r.n++
	return true
}

// Values is the current row; valid until the next call of Next.
func (r *Result) Values() []any { return r.vals }

// Err is the error that ended the rows early, if any.
func (r *Result) Err() error { return r.err }

// Truncated reports that the row limit cut the result.
func (r *Result) Truncated() bool { return r.truncated }

// RowCount is the number of rows returned so far.
func (r *Result) RowCount() int64 { return r.n }

// Query runs one statement with positional arguments ($1 or ?) and streams its rows to
// fn. In read-only mode the statement is checked first; the query timeout and row limit
// apply. Errors are *Error.
func (e *Engine) Query(ctx context.Context, query string, args []any, fn func(*Result) error) (err error) {
	start := time.Now()
	defer func() { e.observe(start, err) }()
	if e.opts.QueryTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.opts.QueryTimeout)
		defer cancel()
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return e.classify(ctx, query, err, e.opts.QueryTimeout)
	}
	defer conn.Close()
	err = rawConn(conn, func(c *stmtConn) error {
		if e.opts.ReadOnly && !e.checked.has(query) {
			if err := checkReadOnly(c.Conn, query); err != nil {
				return err
			}
			e.checked.add(query)
		}
		named := make([]driver.NamedValue, len(args))
		for i, a := range args {
			named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		var rows driver.Rows
		if e.opts.ReadOnly && len(args) > 0 {
			// One statement (checked above) with arguments: run it prepared on this
			// connection (see conn.go). Without arguments DuckDB binds once anyway.
			st, err := c.stmt(ctx, query)
			if err != nil {
				return err
			}
			if rows, err = st.QueryContext(ctx, named); err != nil {
				c.drop(query)
				return err
			}
		} else if rows, err = c.QueryContext(ctx, query, named); err != nil {
			return err
		}
		defer rows.Close()
		res := &Result{rows: rows, max: e.opts.MaxRows}
		names := rows.Columns()
		res.Columns = make([]Column, len(names))
		typed, _ := rows.(driver.RowsColumnTypeDatabaseTypeName)
		for i, n := range names {
			res.Columns[i].Name = n
			if typed != nil {
				res.Columns[i].Type = typed.ColumnTypeDatabaseTypeName(i)
			}
		}
		res.dvals = make([]driver.Value, len(names))
		res.vals = make([]any, len(names))
		if err := fn(res); err != nil {
			return &callerError{err}
		}
		if res.err != nil {
			return res.err
		}
		return ctx.Err()
	})
	var ce *callerError
	if errors.As(err, &ce) {
		// The caller's own error (a client that went away) passes through unchanged.
		return ce.err
	}
	if err != nil {
		return e.classify(ctx, query, err, e.opts.QueryTimeout)
	}
	return nil
}

// callerError marks an error returned by a Query callback, so it is not reclassified.
type callerError struct{ err error }

func (c *callerError) Error() string { return c.err.Error() }
func (c *callerError) Unwrap() error { return c.err }

// Statement describes a query without running it: its parameters' and columns' types.
type Statement struct {
	// Params are the DuckDB types of $1…$n ("INTEGER"; "" when DuckDB cannot tell).
	Params  []string
	Columns []Column
}

// Describe prepares query (never executing it) and reports its parameters and columns;
// read-only mode checks the statement first.
func (e *Engine) Describe(ctx context.Context, query string) (*Statement, error) {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, e.classify(ctx, query, err, 0)
	}
	defer conn.Close()
	var out Statement
	err = rawConn(conn, func(c *stmtConn) error {
		if e.opts.ReadOnly {
			if err := checkReadOnly(c.Conn, query); err != nil {
				return err
			}
		}
		ds, err := c.Prepare(query)
		if err != nil {
			return err
		}
		defer ds.Close()
		st := ds.(*duckdb.Stmt)
		for i := 1; i <= st.NumInput(); i++ {
			name := ""
			if ti, err := st.ParamType(i); err == nil && ti != duckdb.TYPE_INVALID && ti != duckdb.TYPE_ANY {
				name = typeName(ti)
			}
			out.Params = append(out.Params, name)
		}
		n, err := st.ColumnCount()
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			name, err := st.ColumnName(i)
			if err != nil {
				return err
			}
			col := Column{Name: name}
			if info, err := st.ColumnTypeInfo(i); err == nil {
				col.Type = typeInfoName(info)
			}
			out.Columns = append(out.Columns, col)
		}
		return nil
	})
	if err != nil {
		return nil, e.classify(ctx, query, err, 0)
	}
	return &out, nil
}

func (e *Engine) observe(start time.Time, err error) {
	if e.metrics == nil {
		return
	}
	outcome := "ok"
	var qe *Error
	if errors.As(err, &qe) {
		outcome = qe.Kind.String()
	} else if err != nil {
		outcome = "client"
	}
	e.metrics.queries.WithLabelValues(outcome).Inc()
	e.metrics.duration.Observe(time.Since(start).Seconds())
}

// typeName names a parameter type the way result columns are named.
func typeName(t duckdb.Type) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("TYPE(%d)", t)
}
