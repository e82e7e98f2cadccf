package pgwire

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// conn is one client connection. Its goroutine owns everything but the query cancel
// func, which CancelRequest (another connection's goroutine) reaches under qmu.
type conn struct {
	srv        *Server
	nc         net.Conn
	be         *pgproto3.Backend
	pid        uint32
	secret     []byte
	ctx        context.Context
	cancelConn context.CancelFunc
	closeOnce  sync.Once

	user     string
	database string
	tls      bool
	inTx     bool
	failed   bool // extended protocol: an error happened; skip messages until Sync
	params   map[string]string
	stmts    map[string]*statement
	portals  map[string]*portal
	types    *pgtype.Map

	qmu     sync.Mutex
	qcancel context.CancelFunc
}

// statement is a parsed (named or unnamed) prepared statement.
type statement struct {
	query     string
	special   *special
	paramOIDs []uint32
	params    []string // DuckDB types of the parameters
	cols      []tsql.Column
}

// portal is a bound statement, ready to execute.
type portal struct {
	stmt    *statement
	args    []any
	formats []int16
	ran     bool
	// With Execute row limits (portal suspension) the rows are encoded once and handed
	// out in slices; rows[sent:] are still to go.
	rows [][][]byte
	sent int
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.cancelConn()
		_ = c.nc.Close()
	})
}

func (c *conn) cancelQuery() {
	c.qmu.Lock()
	if c.qcancel != nil {
		c.qcancel()
	}
	c.qmu.Unlock()
}

// queryContext is the context of one query: canceled by CancelRequest, by the connection
// closing, and after the session's statement_timeout (which can only shorten the server's
// sql.query_timeout).
func (c *conn) queryContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(c.ctx)
	if d := statementTimeout(c.params["statement_timeout"]); d > 0 {
		var cancelT context.CancelFunc
		ctx, cancelT = context.WithTimeout(ctx, d)
		base := cancel
		cancel = func() { cancelT(); base() }
	}
	c.qmu.Lock()
	c.qcancel = cancel
	c.qmu.Unlock()
	return ctx, func() {
		c.qmu.Lock()
		c.qcancel = nil
		c.qmu.Unlock()
		cancel()
	}
}

func (c *conn) serve() {
	defer c.srv.forget(c)
	defer c.close()
	log := c.srv.log.With("remote", c.nc.RemoteAddr().String(), "pid", c.pid)
	if err := c.startup(); err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, errCancelRequest) {
			log.Debug("postgresql startup failed", "err", err)
		}
		return
	}
	log.Debug("postgresql session started", "user", c.user, "tls", c.tls)
	for {
		msg, err := c.be.Receive()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && c.ctx.Err() == nil {
				log.Debug("postgresql connection dropped", "err", err)
			}
			return
		}
		if _, ok := msg.(*pgproto3.Terminate); ok {
			return
		}
		if err := c.handle(msg); err != nil {
			log.Debug("postgresql connection closed", "err", err)
			return
		}
	}
}

// maxMessage bounds one client message (a query text, a Bind with its parameters); a
// longer one is a protocol error that closes the connection.
const maxMessage = 64 << 20

var errCancelRequest = errors.New("cancel request served")

// startup negotiates TLS, reads the startup message and authenticates.
func (c *conn) startup() error {
	_ = c.nc.SetDeadline(time.Now().Add(c.srv.opts.StartupTimeout))
	defer func() { _ = c.nc.SetDeadline(time.Time{}) }()
	c.be = pgproto3.NewBackend(c.nc, c.nc)
	c.be.SetMaxBodyLen(maxMessage)
	var startup *pgproto3.StartupMessage
	for startup == nil {
		msg, err := c.be.ReceiveStartupMessage()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if c.srv.opts.TLS == nil || c.tls {
				if _, err := c.nc.Write([]byte{'N'}); err != nil {
					return err
				}
				continue
			}
			if _, err := c.nc.Write([]byte{'S'}); err != nil {
				return err
			}
			tc := tls.Server(c.nc, c.srv.opts.TLS)
			if err := tc.Handshake(); err != nil {
				return fmt.Errorf("TLS handshake: %w", err)
			}
			c.nc, c.tls = tc, true
			c.be = pgproto3.NewBackend(c.nc, c.nc)
			c.be.SetMaxBodyLen(maxMessage)
		case *pgproto3.GSSEncRequest:
			if _, err := c.nc.Write([]byte{'N'}); err != nil {
				return err
			}
		case *pgproto3.CancelRequest:
			c.srv.cancel(m.ProcessID, m.SecretKey)
			return errCancelRequest
		case *pgproto3.StartupMessage:
			startup = m
		}
	}
	c.user = startup.Parameters["user"]
	c.database = startup.Parameters["database"]
	c.params = map[string]string{"application_name": startup.Parameters["application_name"]}
	if c.srv.opts.RequireTLS && !c.tls {
		return c.fatal("28000", "TLS is required (connect with sslmode=require)")
	}
	if err := c.authenticate(c.user); err != nil {
		c.srv.authFails.Inc()
		if errors.Is(err, errAuth) {
			return c.fatal("28P01", fmt.Sprintf("password authentication failed for user %q", c.user))
		}
		_ = c.fatal("08P01", err.Error())
		return err
	}
	c.be.Send(&pgproto3.AuthenticationOk{})
	for _, p := range [][2]string{
		{"server_version", c.srv.opts.ServerVersion}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"}, {"IntervalStyle", "postgres"}, {"TimeZone", "UTC"}, {"integer_datetimes", "on"},
		{"standard_conforming_strings", "on"}, {"is_superuser", "off"}, {"session_authorization", c.user},
		{"application_name", c.params["application_name"]},
	} {
		c.be.Send(&pgproto3.ParameterStatus{Name: p[0], Value: p[1]})
	}
	c.be.Send(&pgproto3.BackendKeyData{ProcessID: c.pid, SecretKey: c.secret})
	c.types = pgtype.NewMap()
	return c.ready()
}

func (c *conn) fatal(code, msg string) error {
	c.be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
	_ = c.be.Flush()
	return errors.New(msg)
}

func (c *conn) ready() error {
	status := byte('I')
	if c.inTx {
		status = 'T'
	}
	c.be.Send(&pgproto3.ReadyForQuery{TxStatus: status})
	return c.be.Flush()
}

// handle serves one message; an error closes the connection.
func (c *conn) handle(msg pgproto3.FrontendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.Query:
		c.simpleQuery(m.String)
		return c.ready()
	case *pgproto3.Sync:
		c.failed = false
		c.portals[""] = nil
		delete(c.portals, "")
		return c.ready()
	case *pgproto3.Flush:
		return c.be.Flush()
	}
	if c.failed {
		return nil // the rest of a failed extended-protocol batch is skipped until Sync
	}
	var err error
	switch m := msg.(type) {
	case *pgproto3.Parse:
		err = c.parse(m)
	case *pgproto3.Bind:
		err = c.bind(m)
	case *pgproto3.Describe:
		err = c.describe(m)
	case *pgproto3.Execute:
		err = c.execute(m)
	case *pgproto3.Close:
		if m.ObjectType == 'S' {
			delete(c.stmts, m.Name)
		} else {
			delete(c.portals, m.Name)
		}
		c.be.Send(&pgproto3.CloseComplete{})
	case *pgproto3.FunctionCall:
		err = &tsql.Error{Kind: tsql.KindRefused, Message: "function calls are not supported"}
	default:
		return fmt.Errorf("unexpected message %T", msg)
	}
	if err != nil {
		c.sendError(err)
		c.failed = true
	}
	return nil
}

func (c *conn) simpleQuery(text string) {
	stmts, rest := tsql.Split(text)
	if rest != "" {
		stmts = append(stmts, rest)
	}
	if len(stmts) == 0 {
		c.be.Send(&pgproto3.EmptyQueryResponse{})
		return
	}
	for _, q := range stmts {
		var err error
		if cp, ok, perr := parseCopy(q); ok {
			err = perr
			if err == nil {
				err = c.copyOut(cp)
			}
		} else if sp := classify(q); sp != nil {
			err = c.runSpecial(sp, nil, true)
		} else {
			err = c.run(q, nil, nil, true, nil)
		}
		if err != nil {
			c.sendError(err)
			return
		}
	}
}

func (c *conn) parse(m *pgproto3.Parse) error {
	st := &statement{query: m.Query, paramOIDs: append([]uint32(nil), m.ParameterOIDs...)}
	if sp := classify(m.Query); sp != nil {
		st.special = sp
	} else {
		desc, err := c.srv.engine.Describe(c.ctx, m.Query)
		if err != nil {
			cols, params, ok := catalogStatement(m.Query)
			if !ok {
				return err
			}
			st.params, st.cols = params, cols
		} else {
			st.params, st.cols = desc.Params, desc.Columns
		}
	}
	c.stmts[m.Name] = st
	c.be.Send(&pgproto3.ParseComplete{})
	return nil
}

func (c *conn) paramOID(st *statement, i int) uint32 {
	if i < len(st.paramOIDs) && st.paramOIDs[i] != 0 {
		return st.paramOIDs[i]
	}
	if i < len(st.params) {
		return oidOf(st.params[i])
	}
	return pgtype.TextOID
}

func (c *conn) bind(m *pgproto3.Bind) error {
	st, ok := c.stmts[m.PreparedStatement]
	if !ok {
		return &pgError{code: "26000", msg: fmt.Sprintf("prepared statement %q does not exist", m.PreparedStatement)}
	}
	if len(m.Parameters) != len(st.params) && st.special == nil {
		return &pgError{code: "08P01", msg: fmt.Sprintf("bind message supplies %d parameters, but prepared statement %q requires %d",
			len(m.Parameters), m.PreparedStatement, len(st.params))}
	}
	// pgproto3 decodes the two counts independently: a client can send any number of
	// codes, and indexing past them panicked the whole process.
	if n := len(m.ParameterFormatCodes); n > 1 && n != len(m.Parameters) {
		return &pgError{code: "08P01", msg: fmt.Sprintf("bind message has %d parameter formats but %d parameters", n, len(m.Parameters))}
	}
	args := make([]any, len(m.Parameters))
	for i, raw := range m.Parameters {
		format := int16(0)
		switch len(m.ParameterFormatCodes) {
		case 0:
		case 1:
			format = m.ParameterFormatCodes[0]
		default:
			format = m.ParameterFormatCodes[i]
		}
		v, err := c.decodeParam(c.paramOID(st, i), format, raw)
		if err != nil {
			return &pgError{code: "22P02", msg: fmt.Sprintf("invalid value for parameter $%d: %v", i+1, err)}
		}
		args[i] = v
	}
	c.portals[m.DestinationPortal] = &portal{stmt: st, args: args, formats: append([]int16(nil), m.ResultFormatCodes...)}
	c.be.Send(&pgproto3.BindComplete{})
	return nil
}

func (c *conn) describe(m *pgproto3.Describe) error {
	var st *statement
	var formats []int16
	if m.ObjectType == 'S' {
		s, ok := c.stmts[m.Name]
		if !ok {
			return &pgError{code: "26000", msg: fmt.Sprintf("prepared statement %q does not exist", m.Name)}
		}
		st = s
		oids := make([]uint32, max(len(st.params), len(st.paramOIDs)))
		for i := range oids {
			oids[i] = c.paramOID(st, i)
		}
		c.be.Send(&pgproto3.ParameterDescription{ParameterOIDs: oids})
	} else {
		p, ok := c.portals[m.Name]
		if !ok {
			return &pgError{code: "34000", msg: fmt.Sprintf("portal %q does not exist", m.Name)}
		}
		st, formats = p.stmt, p.formats
	}
	if st.special != nil {
		cols := st.special.columns()
		if len(cols) == 0 {
			c.be.Send(&pgproto3.NoData{})
			return nil
		}
		c.be.Send(c.rowDescription(cols, formats))
		return nil
	}
	if len(st.cols) == 0 {
		c.be.Send(&pgproto3.NoData{})
		return nil
	}
	c.be.Send(c.rowDescription(st.cols, formats))
	return nil
}

func (c *conn) execute(m *pgproto3.Execute) error {
	p, ok := c.portals[m.Portal]
	if !ok || p == nil {
		return &pgError{code: "34000", msg: fmt.Sprintf("portal %q does not exist", m.Portal)}
	}
	if p.ran && p.rows == nil {
		c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")})
		return nil
	}
	if !p.ran {
		p.ran = true
		switch {
		case p.stmt.special != nil:
			return c.runSpecial(p.stmt.special, p.formats, false)
		case strings.TrimSpace(p.stmt.query) == "":
			c.be.Send(&pgproto3.EmptyQueryResponse{})
			return nil
		case m.MaxRows == 0:
			return c.run(p.stmt.query, p.args, p.formats, false, nil)
		}
		p.rows = [][][]byte{}
		err := c.run(p.stmt.query, p.args, p.formats, false, func(row [][]byte) error {
			cp := make([][]byte, len(row))
			for i, v := range row {
				if v != nil {
					cp[i] = append([]byte{}, v...)
				}
			}
			p.rows = append(p.rows, cp)
			return nil
		})
		if err != nil {
			p.rows = nil
			return err
		}
	}
	// Hand out the next slice of a suspended portal.
	n := len(p.rows) - p.sent
	if m.MaxRows > 0 && int(m.MaxRows) < n {
		n = int(m.MaxRows)
	}
	for _, row := range p.rows[p.sent : p.sent+n] {
		c.be.Send(&pgproto3.DataRow{Values: row})
	}
	p.sent += n
	if p.sent < len(p.rows) {
		c.be.Send(&pgproto3.PortalSuspended{})
		return nil
	}
	total := len(p.rows)
	p.rows = nil
	c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT " + strconv.Itoa(total))})
	return nil
}

// flushRows is how many DataRows are buffered before they are written out.
const flushRows = 256

// run executes a query on the engine and streams DataRows; describe sends the
// RowDescription first (simple protocol). With collect set, rows go to it instead and no
// CommandComplete is sent (a suspended portal sends it when its last row is out).
func (c *conn) run(query string, args []any, formats []int16, describe bool, collect func([][]byte) error) error {
	if rs, ok := c.catalog(query, args); ok {
		if collect != nil {
			return c.collectResultSet(rs, formats, collect)
		}
		return c.sendResultSet(rs, formats, describe)
	}
	var sent int
	n, truncated, err := c.queryRows(query, args, formats, func(cols []tsql.Column) {
		if describe {
			c.be.Send(c.rowDescription(cols, formats))
		}
	}, func(row [][]byte) error {
		if collect != nil {
			return collect(row)
		}
		c.be.Send(&pgproto3.DataRow{Values: row})
		if sent++; sent%flushRows == 0 {
			return c.be.Flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.truncationNotice(truncated, n)
	if collect == nil {
		c.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT " + strconv.FormatInt(n, 10))})
	}
	return nil
}

// queryRows runs query on the engine, hands its columns to cols before any row, then
// each row to row (values encoded in formats; text by default; nil = NULL). The row's
// slices are reused for the next one. It returns the rows read and whether sql.max_rows
// cut them.
func (c *conn) queryRows(query string, args []any, formats []int16, cols func([]tsql.Column), row func([][]byte) error) (n int64, truncated bool, err error) {
	ctx, done := c.queryContext()
	defer done()
	err = c.srv.engine.Query(ctx, query, args, func(res *tsql.Result) error {
		enc := c.encoders(res.Columns, formats)
		cols(res.Columns)
		buf := make([]byte, 0, 256) // never nil: an empty slice of it is '', not NULL
		vals := make([][]byte, len(res.Columns))
		ends := make([]int, len(vals))
		for res.Next() {
			buf = buf[:0]
			for i, v := range res.Values() {
				if v == nil {
					ends[i] = -1
					continue
				}
				var err error
				start := len(buf)
				buf, err = enc[i](v, buf)
				if err != nil {
					return fmt.Errorf("cannot encode column %q: %w", res.Columns[i].Name, err)
				}
				ends[i] = len(buf) - start
			}
			off := 0
			for i := range vals {
				if ends[i] < 0 {
					vals[i] = nil
					continue
				}
				vals[i] = buf[off : off+ends[i]]
				off += ends[i]
			}
			if err := row(vals); err != nil {
				return err
			}
		}
		n, truncated = res.RowCount(), res.Truncated()
		return nil
	})
	return n, truncated, err
}

// truncationNotice warns the client that sql.max_rows cut a result at n rows.
func (c *conn) truncationNotice(truncated bool, n int64) {
	if truncated {
		c.be.Send(&pgproto3.NoticeResponse{Severity: "WARNING", SeverityUnlocalized: "WARNING", Code: "01000",
			Message: fmt.Sprintf("result cut at %d rows (sql.max_rows)", n)})
	}
}

// statementTimeout parses PostgreSQL's statement_timeout: milliseconds, or a number with
// a unit (ms, s, min, h); 0 or nonsense means none.
func statementTimeout(v string) time.Duration {
	v = strings.TrimSpace(strings.Trim(v, "'\""))
	if v == "" {
		return 0
	}
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"ms", time.Millisecond}, {"min", time.Minute}, {"s", time.Second}, {"h", time.Hour}}
	unit := time.Millisecond
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			v, unit = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.unit
			break
		}
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n * float64(unit))
}
