package httpapi

import (
	"bufio"
	"crypto/subtle"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	tsql "github.com/tagpipe/tagpipe/sql"
)

// Content types of the three result formats.
const (
	ContentJSON  = "application/json"
	ContentCSV   = "text/csv"
	ContentArrow = "application/vnd.apache.arrow.stream"
)

// Options configure the handler.
type Options struct {
	// User and Password, when Password is set, are required as HTTP basic auth.
	User     string
	Password string
	// MaxBody bounds the request body; 0 = 1 MiB.
	MaxBody int64
	Log     *slog.Logger
}

// DefaultOptions: no password, 1 MiB bodies.
func DefaultOptions() Options { return Options{User: "tagpipe", MaxBody: 1 << 20} }

// Request is the JSON request body. A body that is not JSON (Content-Type text/plain or
// application/sql) is the SQL itself; then format comes from ?format= or Accept.
type Request struct {
	SQL    string `json:"sql"`
	Params []any  `json:"params,omitempty"`
	// Format is json (default), csv or arrow.
	Format string `json:"format,omitempty"`
}

// ErrorBody is what a failed query answers (inside {"error": …}).
type ErrorBody struct {
	Kind     string `json:"kind"`
	Type     string `json:"type,omitempty"`
	Message  string `json:"message"`
	Position int    `json:"position,omitempty"`
	Hint     string `json:"hint,omitempty"`
}

// Handler serves POST /v1/query.
type Handler struct {
	engine *tsql.Engine
	opts   Options
	log    *slog.Logger
}

// New returns the handler; mount it with admin.Server.Handle("POST /v1/query", h).
func New(engine *tsql.Engine, opts Options) *Handler {
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Handler{engine: engine, opts: opts, log: opts.Log}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, ErrorBody{Kind: "invalid", Message: "use POST"})
		return
	}
	if h.opts.Password != "" {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(h.opts.User)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(h.opts.Password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="tagpipe sql"`)
			writeError(w, http.StatusUnauthorized, ErrorBody{Kind: "refused", Message: "password authentication failed for user " + strconv.Quote(u)})
			return
		}
	}
	req, err := readRequest(r, h.opts.MaxBody)
	if err != nil {
		writeError(w, http.StatusBadRequest, ErrorBody{Kind: "invalid", Message: err.Error()})
		return
	}
	format, err := pickFormat(req.Format, r)
	if err != nil {
		writeError(w, http.StatusNotAcceptable, ErrorBody{Kind: "invalid", Message: err.Error()})
		return
	}
	start := time.Now()
	var out resultWriter
	switch format {
	case "csv":
		out = &csvOut{}
	case "arrow":
		out = &arrowOut{}
	default:
		out = &jsonOut{start: start}
	}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() {
		bw.Reset(nil) // drop the ResponseWriter before the pool keeps the buffer
		writers.Put(bw)
	}()
	started := false
	err = h.engine.Query(r.Context(), req.SQL, req.Params, func(res *tsql.Result) error {
		started = true
		w.Header().Set("Trailer", "X-Tagpipe-Truncated, X-Tagpipe-Rows, X-Tagpipe-Error")
		w.Header().Set("X-Tagpipe-Columns", columnsHeader(res.Columns))
		if err := out.begin(w, bw, res.Columns); err != nil {
			return err
		}
		for res.Next() {
			if err := out.row(res.Values()); err != nil {
				return err
			}
		}
		if res.Err() != nil {
			return nil // reported below as the query's error
		}
		w.Header().Set("X-Tagpipe-Truncated", strconv.FormatBool(res.Truncated()))
		w.Header().Set("X-Tagpipe-Rows", strconv.FormatInt(res.RowCount(), 10))
		return out.end(res.RowCount(), res.Truncated())
	})
	var qe *tsql.Error
	switch {
	case err == nil:
	case !errors.As(err, &qe):
		// Writing to the client failed: it went away; nothing more to say.
		h.log.Debug("query client went away", "err", err)
		return
	case !started:
		writeError(w, statusOf(qe), bodyOf(qe))
		return
	default:
		// Rows were already sent with 200: end the stream with the error in-band.
		w.Header().Set("X-Tagpipe-Error", qe.Error())
		_ = out.fail(bodyOf(qe))
	}
	_ = bw.Flush()
}

// writers pools the 64 KiB response buffers: a point query's answer is a few hundred
// bytes, and a fresh buffer per request was most of the bytes the handler allocated.
var writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

func readRequest(r *http.Request, max int64) (*Request, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read request: %w", err)
	}
	if int64(len(body)) > max {
		return nil, fmt.Errorf("request body is larger than %d bytes", max)
	}
	var req Request
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" || ct == "" && len(body) > 0 && body[0] == '{' {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return nil, fmt.Errorf("cannot decode request: %w (want {\"sql\": \"…\", \"params\": […], \"format\": \"json|csv|arrow\"})", err)
		}
		for i, p := range req.Params {
			req.Params[i] = param(p)
		}
	} else {
		req.SQL = string(body)
	}
	if strings.TrimSpace(req.SQL) == "" {
		return nil, errors.New("no SQL: send {\"sql\": \"SELECT …\"} or the SQL as a text/plain body")
	}
	return &req, nil
}

// param turns a JSON parameter into the Go value DuckDB binds: integers stay integers.
func param(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = param(x[i])
		}
	}
	return v
}

func pickFormat(f string, r *http.Request) (string, error) {
	if f == "" {
		f = r.URL.Query().Get("format")
	}
	if f == "" {
		accept := r.Header.Get("Accept")
		switch {
		case strings.Contains(accept, ContentArrow):
			f = "arrow"
		case strings.Contains(accept, ContentCSV):
			f = "csv"
		default:
			f = "json"
		}
	}
	switch f {
	case "json", "csv", "arrow":
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q: want json, csv or arrow", f)
}

func statusOf(e *tsql.Error) int {
	switch e.Kind {
	case tsql.KindInvalid:
		return http.StatusBadRequest
	case tsql.KindRefused:
		return http.StatusForbidden
	case tsql.KindTimeout:
		return http.StatusGatewayTimeout
	case tsql.KindCanceled:
		return 499 // client closed request
	}
	return http.StatusInternalServerError
}

func bodyOf(e *tsql.Error) ErrorBody {
	return ErrorBody{Kind: e.Kind.String(), Type: e.Type, Message: e.Message, Position: e.Position, Hint: e.Hint}
}

func writeError(w http.ResponseWriter, status int, b ErrorBody) {
	w.Header().Set("Content-Type", ContentJSON)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]ErrorBody{"error": b})
}

func columnsHeader(cols []tsql.Column) string {
	b, _ := json.Marshal(cols)
	return string(b)
}

// resultWriter is one output format.
type resultWriter interface {
	begin(w http.ResponseWriter, bw *bufio.Writer, cols []tsql.Column) error
	row(vals []any) error
	end(rows int64, truncated bool) error
	fail(ErrorBody) error
}

// jsonOut streams {"columns":[…],"rows":[[…],…],"row_count":n,"truncated":b,"elapsed_ms":t}.
type jsonOut struct {
	bw    *bufio.Writer
	cols  []tsql.Column
	enc   *json.Encoder
	n     int
	conv  []any
	start time.Time
}

func (j *jsonOut) begin(w http.ResponseWriter, bw *bufio.Writer, cols []tsql.Column) error {
	w.Header().Set("Content-Type", ContentJSON)
	j.bw, j.cols, j.enc = bw, cols, json.NewEncoder(bw)
	j.conv = make([]any, len(cols))
	if _, err := bw.WriteString(`{"columns":`); err != nil {
		return err
	}
	if err := j.enc.Encode(cols); err != nil {
		return err
	}
	_, err := bw.WriteString(`,"rows":[`)
	return err
}

func (j *jsonOut) row(vals []any) error {
	if j.n > 0 {
		if err := j.bw.WriteByte(','); err != nil {
			return err
		}
	}
	j.n++
	for i, v := range vals {
		j.conv[i] = tsql.JSONValue(v, j.cols[i].Type)
	}
	return j.enc.Encode(j.conv)
}

func (j *jsonOut) end(rows int64, truncated bool) error {
	_, err := fmt.Fprintf(j.bw, `],"row_count":%d,"truncated":%t,"elapsed_ms":%.3f}`+"\n", rows, truncated,
		float64(time.Since(j.start).Microseconds())/1000)
	return err
}

func (j *jsonOut) fail(b ErrorBody) error {
	eb, _ := json.Marshal(b)
	_, err := fmt.Fprintf(j.bw, `],"error":%s}`+"\n", eb)
	return err
}

// csvOut is RFC 4180 CSV with a header row; NULL is an empty field.
type csvOut struct {
	cw   *csv.Writer
	cols []tsql.Column
	rec  []string
}

func (c *csvOut) begin(w http.ResponseWriter, bw *bufio.Writer, cols []tsql.Column) error {
	w.Header().Set("Content-Type", ContentCSV+"; charset=utf-8; header=present")
	c.cw, c.cols, c.rec = csv.NewWriter(bw), cols, make([]string, len(cols))
	for i, col := range cols {
		c.rec[i] = col.Name
	}
	return c.cw.Write(c.rec)
}

func (c *csvOut) row(vals []any) error {
	for i, v := range vals {
		if v == nil {
			c.rec[i] = ""
		} else {
			c.rec[i] = tsql.Format(v, c.cols[i].Type)
		}
	}
	return c.cw.Write(c.rec)
}

func (c *csvOut) end(int64, bool) error { c.cw.Flush(); return c.cw.Error() }

func (c *csvOut) fail(b ErrorBody) error { c.cw.Flush(); return c.cw.Error() }
