package sql

import (
	"context"
	"database/sql/driver"
	"fmt"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// A point query spends most of its CPU binding and planning (callgrind, 20k users' tags
// cached, threads=1: 2.05M instructions per query, of which DuckDB's planner and
// optimizer about 0.86M twice). duckdb-go's QueryContext with arguments prepares the
// statement and DuckDB then binds it again when it executes it with the argument
// values, so a statement kept prepared on its connection saves one of the two binds
// (1.55M instructions per query). DuckDB still rebinds a prepared statement on every
// execution with parameters, and whenever a view it reads was replaced (Refresh), so a
// kept statement never reads an old snapshot. A statement without parameters is planned
// once when prepared and not again, so only statements with arguments are kept.

// maxStmts bounds the statements kept per connection; past it the connection forgets
// them all (remote clients repeat a handful of statements; ad-hoc ones are one-offs).
const maxStmts = 64

// maxIdleConns is the number of DuckDB connections database/sql keeps for reuse. Its
// default of 2 closed every connection beyond the second after each query when more
// clients ran at once, and with it the statements kept there.
const maxIdleConns = 64

// connector hands out stmtConns: DuckDB connections that keep prepared statements.
type connector struct{ *duckdb.Connector }

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	d, ok := dc.(*duckdb.Conn)
	if !ok {
		_ = dc.Close()
		return nil, fmt.Errorf("BUG: DuckDB connector returned %T, not *duckdb.Conn", dc)
	}
	return &stmtConn{Conn: d}, nil
}

// Close is left to Engine.Close, which closes the connector after the pool.
func (c connector) Close() error { return nil }

// stmtConn is a DuckDB connection (every driver method is *duckdb.Conn's) with the
// statements prepared on it. database/sql hands a connection to one caller at a time,
// so the map needs no lock.
type stmtConn struct {
	*duckdb.Conn
	stmts map[string]*duckdb.Stmt
}

// stmt returns query prepared on c, preparing it the first time. query must be one
// statement: duckdb-go's Prepare runs every statement but the last.
func (c *stmtConn) stmt(ctx context.Context, query string) (*duckdb.Stmt, error) {
	if s, ok := c.stmts[query]; ok {
		return s, nil
	}
	ds, err := c.Conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s, ok := ds.(*duckdb.Stmt)
	if !ok {
		_ = ds.Close()
		return nil, fmt.Errorf("BUG: DuckDB prepared statement is %T, not *duckdb.Stmt", ds)
	}
	if len(c.stmts) >= maxStmts {
		c.forget()
	}
	if c.stmts == nil {
		c.stmts = map[string]*duckdb.Stmt{}
	}
	c.stmts[query] = s
	return s, nil
}

// drop forgets query's statement (after it failed: the next use prepares afresh).
func (c *stmtConn) drop(query string) {
	if s, ok := c.stmts[query]; ok {
		_ = s.Close()
		delete(c.stmts, query)
	}
}

func (c *stmtConn) forget() {
	for _, s := range c.stmts {
		_ = s.Close()
	}
	c.stmts = nil
}

// Close closes the kept statements, then the connection.
func (c *stmtConn) Close() error {
	c.forget()
	return c.Conn.Close()
}

var (
	_ driver.Connector          = connector{}
	_ driver.QueryerContext     = (*stmtConn)(nil)
	_ driver.ExecerContext      = (*stmtConn)(nil)
	_ driver.ConnPrepareContext = (*stmtConn)(nil)
	_ driver.ConnBeginTx        = (*stmtConn)(nil)
	_ driver.NamedValueChecker  = (*stmtConn)(nil)
)
