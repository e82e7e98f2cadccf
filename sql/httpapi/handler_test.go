package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/internal/admin"
	tsql "github.com/tagpipe/tagpipe/sql"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// typesQuery has one column of each common type, NULLs included.
const typesQuery = `SELECT user_id, tag, weight, dt, ts, score, flag, tags, small,
user_id::HUGEINT * 100000000000000000000 AS huge FROM items ORDER BY user_id`

type fixture struct {
	url    string
	engine *tsql.Engine
	reg    *prometheus.Registry
	dir    string
}

// serve writes a warehouse table with DuckDB, opens a read-only engine over it and mounts
// the handler on a real admin listener.
func serve(t *testing.T, mod func(*tsql.Options, *Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	local, err := tsql.Open(context.Background(), tsql.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "items"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = local.DB().Exec(`COPY (SELECT i AS user_id,
		CASE WHEN i % 7 = 3 THEN NULL ELSE 'tag "' || (i % 5) || '", x' END AS tag,
		i / 8.0 AS weight,
		DATE '2024-01-01' + (i % 30)::INTEGER AS dt,
		TIMESTAMP '2024-01-01 00:00:00' + to_microseconds(i * 1234567) AS ts,
		(i * 1.25)::DECIMAL(12,2) AS score,
		i % 2 = 0 AS flag,
		CASE WHEN i % 4 = 0 THEN [] ELSE ['a' || i, 'b'] END AS tags,
		(i % 100)::SMALLINT AS small
		FROM range(2000) t(i)) TO ` + tsql.QuoteString(filepath.Join(dir, "items", "part-0.parquet")) + ` (FORMAT parquet)`)
	local.Close()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	eo := tsql.DefaultOptions()
	eo.ReadOnly, eo.Register, eo.AllowedDirs = true, tsql.DirViews(dir), []string{dir}
	eo.QueryTimeout, eo.MaxRows, eo.Registry = 30*time.Second, 100000, reg
	ho := DefaultOptions()
	ho.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if mod != nil {
		mod(&eo, &ho)
	}
	e, err := tsql.Open(context.Background(), eo)
	if err != nil {
		t.Fatal(err)
	}
	srv := admin.New(admin.Options{Listen: "127.0.0.1:0", Registry: reg, Log: ho.Log})
	srv.Handle("POST /v1/query", New(e, ho))
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		_ = srv.Stop(context.Background())
		_ = e.Close()
	})
	return &fixture{url: "http://" + srv.Addr() + "/v1/query", engine: e, reg: reg, dir: dir}
}

func post(t *testing.T, url string, body any, header ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case string:
		rd, ct = strings.NewReader(b), "text/plain"
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(http.MethodPost, url, rd)
	req.Header.Set("Content-Type", ct)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// duckText is DuckDB's own rendering of every cell of q (CAST … AS VARCHAR), computed by
// DuckDB in-process: the reference the endpoints must agree with.
func duckText(t *testing.T, e *tsql.Engine, q string, ncols int) [][]*string {
	t.Helper()
	casts := make([]string, ncols)
	for i := range casts {
		casts[i] = fmt.Sprintf("CAST(COLUMNS(*)[%d] AS VARCHAR)", i+1)
	}
	rows, err := e.DB().Query("SELECT * FROM (" + q + ")")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	rows.Close()
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = "CAST(" + tsql.QuoteIdent(c) + " AS VARCHAR)"
	}
	rows, err = e.DB().Query("SELECT " + strings.Join(sel, ", ") + " FROM (" + q + ")")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]*string
	for rows.Next() {
		row := make([]*string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, row)
	}
	return out
}

// sameText compares a rendered value with DuckDB's text; floating-point types compare as
// numbers (JSON and Arrow carry the binary value, not its text).
func sameText(typ, got string, want *string) bool {
	if want == nil {
		return got == "NULL"
	}
	if typ == "DOUBLE" || typ == "FLOAT" {
		a, err1 := strconv.ParseFloat(got, 64)
		b, err2 := strconv.ParseFloat(*want, 64)
		return err1 == nil && err2 == nil && (a == b || math.Abs(a-b) <= 1e-12*math.Abs(b))
	}
	return got == *want
}

func jsonText(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case string:
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = jsonText(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}

type jsonResult struct {
	Columns   []tsql.Column `json:"columns"`
	Rows      [][]any       `json:"rows"`
	RowCount  int           `json:"row_count"`
	Truncated bool          `json:"truncated"`
	Error     *ErrorBody    `json:"error"`
}

func decodeJSON(t *testing.T, b []byte) jsonResult {
	t.Helper()
	var r jsonResult
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("bad JSON %v:\n%s", err, b)
	}
	return r
}

func TestJSONEqualsDuckDB(t *testing.T) {
	f := serve(t, nil)
	resp, body := post(t, f.url, Request{SQL: typesQuery})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentJSON {
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	got := decodeJSON(t, body)
	want := duckText(t, f.engine, typesQuery, len(got.Columns))
	wantTypes := []string{"BIGINT", "VARCHAR", "DOUBLE", "DATE", "TIMESTAMP", "DECIMAL(12,2)", "BOOLEAN", "VARCHAR[]", "SMALLINT", "HUGEINT"}
	for i, c := range got.Columns {
		if c.Type != wantTypes[i] {
			t.Fatalf("column %d = %+v, want type %s", i, c, wantTypes[i])
		}
	}
	if len(got.Rows) != len(want) || got.RowCount != 2000 || got.Truncated {
		t.Fatalf("rows %d (row_count %d truncated %v), DuckDB has %d", len(got.Rows), got.RowCount, got.Truncated, len(want))
	}
	for r := range want {
		for c := range want[r] {
			if g := jsonText(got.Rows[r][c]); !sameText(got.Columns[c].Type, g, want[r][c]) {
				t.Fatalf("row %d col %s: JSON %q, DuckDB %v", r, got.Columns[c].Name, g, *want[r][c])
			}
		}
	}
	// Numbers are JSON numbers, not strings.
	if _, ok := got.Rows[1][0].(json.Number); !ok {
		t.Fatalf("user_id is %T", got.Rows[1][0])
	}
}

func arrowText(arr arrow.Array, i int, typ string) string {
	if arr.IsNull(i) {
		return "NULL"
	}
	switch a := arr.(type) {
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Int16:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.String:
		return a.Value(i)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	case *array.Date32:
		return a.Value(i).ToTime().Format("2006-01-02")
	case *array.Timestamp:
		return a.Value(i).ToTime(arrow.Microsecond).Format("2006-01-02 15:04:05.999999")
	case *array.Decimal128:
		dt := a.DataType().(*arrow.Decimal128Type)
		n := a.Value(i).BigInt()
		return tsql.FormatDecimal(decimalOf(n, dt.Scale))
	case *array.List:
		start, end := a.ValueOffsets(i)
		parts := []string{}
		for j := start; j < end; j++ {
			parts = append(parts, arrowText(a.ListValues(), int(j), ""))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprintf("<%T>", arr)
}

func TestArrowEqualsDuckDB(t *testing.T) {
	f := serve(t, nil)
	resp, body := post(t, f.url, Request{SQL: typesQuery, Format: "arrow"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentArrow {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if resp.Trailer.Get("X-Tagpipe-Rows") != "2000" || resp.Trailer.Get("X-Tagpipe-Truncated") != "false" {
		t.Fatalf("trailers %v", resp.Trailer)
	}
	rd, err := ipc.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	schema := rd.Schema()
	types := make([]string, schema.NumFields())
	for i, fl := range schema.Fields() {
		types[i], _ = fl.Metadata.GetValue("duckdb_type")
	}
	want := duckText(t, f.engine, typesQuery, len(types))
	r, batches := 0, 0
	for rd.Next() {
		rec := rd.RecordBatch()
		batches++
		for i := 0; i < int(rec.NumRows()); i++ {
			for c := 0; c < int(rec.NumCols()); c++ {
				if g := arrowText(rec.Column(c), i, types[c]); !sameText(types[c], g, want[r][c]) {
					t.Fatalf("row %d col %s (%s): Arrow %q, DuckDB %v", r, schema.Field(c).Name, types[c], g, *want[r][c])
				}
			}
			r++
		}
	}
	if rd.Err() != nil || r != len(want) {
		t.Fatalf("read %d rows of %d: %v", r, len(want), rd.Err())
	}
	if schema.Field(3).Type.ID() != arrow.DATE32 || schema.Field(5).Type.ID() != arrow.DECIMAL128 || schema.Field(7).Type.ID() != arrow.LIST {
		t.Fatalf("schema %v", schema)
	}
}

func TestCSVEqualsDuckDBCopy(t *testing.T) {
	f := serve(t, nil)
	q := "SELECT user_id, tag, weight, dt, ts, score, flag, small FROM items ORDER BY user_id"
	resp, body := post(t, f.url, q, "Accept", "text/csv")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ContentCSV) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	// DuckDB's own CSV writer, in a local (unrestricted) engine over the same file.
	local, err := tsql.Open(context.Background(), tsql.Options{Register: tsql.DirViews(f.dir)})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	out := filepath.Join(t.TempDir(), "duck.csv")
	if _, err := local.DB().Exec("COPY (" + q + ") TO " + tsql.QuoteString(out) + " (HEADER, NULLSTR '')"); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(out)
	if !bytes.Equal(body, want) {
		gl, wl := strings.Split(string(body), "\n"), strings.Split(string(want), "\n")
		for i := range gl {
			if i >= len(wl) || gl[i] != wl[i] {
				t.Fatalf("line %d: ours %q, DuckDB %q", i+1, gl[i], wl[min(i, len(wl)-1)])
			}
		}
		t.Fatalf("CSV differs in length: %d vs %d lines", len(gl), len(wl))
	}
	var cols []tsql.Column
	if err := json.Unmarshal([]byte(resp.Header.Get("X-Tagpipe-Columns")), &cols); err != nil || cols[3].Type != "DATE" {
		t.Fatalf("X-Tagpipe-Columns %q: %v", resp.Header.Get("X-Tagpipe-Columns"), err)
	}
}

func TestRowLimitEnforced(t *testing.T) {
	f := serve(t, func(o *tsql.Options, _ *Options) { o.MaxRows = 7 })
	_, body := post(t, f.url, Request{SQL: "SELECT * FROM items"})
	got := decodeJSON(t, body)
	if len(got.Rows) != 7 || got.RowCount != 7 || !got.Truncated {
		t.Fatalf("rows=%d row_count=%d truncated=%v", len(got.Rows), got.RowCount, got.Truncated)
	}
	resp, body := post(t, f.url, Request{SQL: "SELECT * FROM items", Format: "csv"})
	if n := strings.Count(string(body), "\n"); n != 8 || resp.Trailer.Get("X-Tagpipe-Truncated") != "true" {
		t.Fatalf("csv lines=%d trailer=%v", n, resp.Trailer)
	}
}

func TestTimeoutEnforced(t *testing.T) {
	f := serve(t, func(o *tsql.Options, _ *Options) { o.QueryTimeout = 200 * time.Millisecond })
	resp, body := post(t, f.url, Request{SQL: "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b"})
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), `"kind":"timeout"`) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
}

func TestRefusesWritesAndForeignFiles(t *testing.T) {
	f := serve(t, nil)
	for _, q := range []string{
		"COPY (SELECT 1) TO '/tmp/x'",
		"COPY items TO " + tsql.QuoteString(filepath.Join(f.dir, "items", "x.csv")),
		"SELECT * FROM read_csv('/etc/passwd')",
		"ATTACH '/tmp/x.db'", "INSTALL httpfs", "SET threads = 1",
	} {
		resp, body := post(t, f.url, Request{SQL: q})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), `"kind":"refused"`) {
			t.Errorf("%s: status %d: %s", q, resp.StatusCode, body)
		}
	}
	if _, err := os.Stat("/tmp/x"); err == nil {
		t.Log("note: /tmp/x exists (not necessarily from this test)")
	}
	if _, err := os.Stat(filepath.Join(f.dir, "items", "x.csv")); !os.IsNotExist(err) {
		t.Fatal("COPY wrote inside the warehouse")
	}
}

func TestBadSQLHasPosition(t *testing.T) {
	f := serve(t, nil)
	resp, body := post(t, f.url, Request{SQL: "SELECT user_id, nosuch FROM items"})
	var e struct{ Error ErrorBody }
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode != 400 || e.Error.Position != 17 || e.Error.Type != "Binder Error" || e.Error.Kind != "invalid" {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
}

func TestParamsAndPlainBody(t *testing.T) {
	f := serve(t, nil)
	_, body := post(t, f.url, Request{SQL: "SELECT tag, score FROM items WHERE user_id = $1 OR tag = $2 ORDER BY user_id", Params: []any{12, `tag "1", x`}})
	got := decodeJSON(t, body)
	if got.Error != nil || len(got.Rows) != 344 || jsonText(got.Rows[0][1]) != "1.25" || jsonText(got.Rows[3][0]) != "tag \"2\", x" {
		t.Fatalf("rows=%d first=%v second=%v err=%v", len(got.Rows), got.Rows[0], got.Rows[1], got.Error)
	}
	resp, body := post(t, f.url+"?format=csv", "SELECT 1 AS one")
	if resp.StatusCode != 200 || string(body) != "one\n1\n" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	resp, body = post(t, f.url, Request{SQL: "SELECT 1", Format: "xml"})
	if resp.StatusCode != http.StatusNotAcceptable {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, _ = post(t, f.url, "  ")
	if resp.StatusCode != 400 {
		t.Fatalf("empty body: %d", resp.StatusCode)
	}
}

func TestPasswordRequired(t *testing.T) {
	f := serve(t, func(_ *tsql.Options, o *Options) { o.Password = "s3cret" })
	resp, _ := post(t, f.url, Request{SQL: "SELECT 1"})
	if resp.StatusCode != 401 {
		t.Fatalf("no auth: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader("SELECT 1"))
	req.SetBasicAuth("tagpipe", "wrong")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	req, _ = http.NewRequest(http.MethodPost, f.url, strings.NewReader("SELECT 1"))
	req.SetBasicAuth("tagpipe", "s3cret")
	r3, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r2.StatusCode != 401 || r3.StatusCode != 200 {
		t.Fatalf("wrong password %d, right password %d", r2.StatusCode, r3.StatusCode)
	}
}

func TestClientGoingAwayCancelsQuery(t *testing.T) {
	f := serve(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.url,
		strings.NewReader("SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b"))
	go func() {
		time.Sleep(100 * time.Millisecond)
		cancel()
	}()
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("request finished before cancel")
	}
	canceled := func() float64 { return queriesCounter(t, f.reg, "canceled") }
	deadline := time.Now().Add(30 * time.Second)
	for canceled() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the query was not canceled when the client went away")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func queriesCounter(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "tagpipe_sql_queries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func decimalOf(n *big.Int, scale int32) duckdbDecimal {
	return duckdbDecimal{Width: 38, Scale: uint8(scale), Value: n}
}
