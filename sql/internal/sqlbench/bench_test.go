package sqlbench

import (
	"bytes"
	"context"
	dbsql "database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tagpipe/tagpipe/internal/admin"
	tsql "github.com/tagpipe/tagpipe/sql"
	"github.com/tagpipe/tagpipe/sql/httpapi"
	"github.com/tagpipe/tagpipe/sql/pgwire"
	"github.com/tagpipe/tagpipe/tagging"
	"github.com/tagpipe/tagpipe/warehouse"
	"github.com/tagpipe/tagpipe/warehouse/duckbridge"
)

const (
	users    = 1_000_000
	tagsEach = 5
	clients  = 8
)

const (
	pointQuery = "SELECT tag, weight, rank FROM ads_user_interest_tags WHERE user_id = $1 ORDER BY rank"
	groupQuery = "SELECT tag, count(*) AS users, avg(weight) AS mean_weight FROM ads_user_interest_tags GROUP BY tag ORDER BY tag"
)

// env is shared by every benchmark of the run: the table is written once.
type env struct {
	dir     string
	engine  *tsql.Engine // as the servers run it: ads_user_interest_tags cached in memory
	parquet *tsql.Engine // every view over Parquet (no cache), for comparison
	httpURL string
	pgURL   string
	stop    func()
}

var (
	once     sync.Once
	shared   *env
	setupErr error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	os.Exit(code)
}

func setup(b *testing.B) *env {
	b.Helper()
	once.Do(func() { shared, setupErr = build() })
	if setupErr != nil {
		b.Fatal(setupErr)
	}
	return shared
}

// interestRows are 1M users' tags with the columns and types of the tag job's
// ads_user_interest_tags (tagging/model_sql.go interestSQL), in no user order: the job
// writes its window output as it comes.
var interestRows = fmt.Sprintf(`SELECT DATE '2024-05-01' AS dt, CAST(u AS VARCHAR) AS user_id,
	'tag' || ((u * 7 + r * 13) %% 200) AS tag, round(1.0 / (r + 1) + (u %% 97) / 1000.0, 4) AS weight,
	CAST(r + 1 AS INTEGER) AS rank, CAST(1 + u %% 13 AS BIGINT) AS events,
	TIMESTAMP '2024-05-01' - to_seconds(u %% 86400) AS last_seen,
	round(1.0 / (r + 1), 6) AS score, round(1.5 / (r + 1), 6) AS raw
FROM range(%d) a(u), range(%d) b(r) ORDER BY hash(u), r`, users, tagsEach)

// build writes ads_user_interest_tags for 1M users (5 tags each) into a warehouse the
// way the tag job does (tagging.WarehouseStore.Replace: DuckDB COPY, one snapshot), and
// starts both servers over one read-only engine configured as `tagpipe sql serve` is
// by default (duckbridge views, the table cached in memory).
func build() (*env, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tagpipe-sqlbench-")
	if err != nil {
		return nil, err
	}
	w, err := warehouse.Open(filepath.Join(dir, "warehouse"), warehouse.DefaultOptions())
	if err != nil {
		return nil, err
	}
	local, err := tsql.Open(ctx, tsql.DefaultOptions())
	if err != nil {
		return nil, err
	}
	conn, err := local.DB().Conn(ctx)
	if err != nil {
		return nil, err
	}
	err = tagging.WarehouseStore{W: w}.Replace(ctx, conn, tagging.TableInterest, []tagging.KV{{Col: "dt", Val: "2024-05-01"}}, interestRows)
	conn.Close()
	local.Close()
	if err != nil {
		return nil, err
	}
	opts := tsql.DefaultOptions()
	opts.ReadOnly, opts.AllowedDirs = true, []string{w.Root()}
	opts.Register = func(ctx context.Context, conn *dbsql.Conn, _ string) error {
		_, err := duckbridge.Register(ctx, conn, w)
		return err
	}
	opts.QueryTimeout, opts.MaxRows = time.Minute, 1_000_000
	popts := opts
	opts.Cache = []tsql.CacheTable{{Table: tagging.TableInterest, Key: "user_id"}}
	e, err := tsql.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	pe, err := tsql.Open(ctx, popts)
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := admin.New(admin.Options{Listen: "127.0.0.1:0", Log: quiet})
	srv.Handle("POST /v1/query", httpapi.New(e, httpapi.Options{Log: quiet}))
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	po := pgwire.DefaultOptions()
	po.Listen, po.Log = "127.0.0.1:0", quiet
	pg := pgwire.New(e, po)
	if err := pg.Start(ctx); err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(pg.Addr())
	return &env{dir: dir, engine: e, parquet: pe, httpURL: "http://" + srv.Addr() + "/v1/query",
		pgURL: fmt.Sprintf("postgres://tagpipe@%s:%s/tagpipe?sslmode=disable", host, port),
		stop: func() {
			_ = pg.Stop(context.Background())
			_ = srv.Stop(context.Background())
			_ = e.Close()
			_ = pe.Close()
			_ = os.RemoveAll(dir)
		}}, nil
}

// client runs one query; each of the 8 workers has its own.
type client interface {
	run(ctx context.Context, q string, args ...any) (rows int, err error)
	close()
}

// inProcess is one client of the engine's DuckDB through database/sql, keeping each
// statement prepared as pgx does for the PostgreSQL client (and the servers do on their
// DuckDB connections).
type inProcess struct {
	db    *dbsql.DB
	stmts map[string]*dbsql.Stmt
}

func (c *inProcess) run(ctx context.Context, q string, args ...any) (int, error) {
	st, ok := c.stmts[q]
	if !ok {
		var err error
		if st, err = c.db.PrepareContext(ctx, q); err != nil {
			return 0, err
		}
		c.stmts[q] = st
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

func (c *inProcess) close() {
	for _, st := range c.stmts {
		_ = st.Close()
	}
}

type httpClient struct {
	url string
	c   *http.Client
}

func (h httpClient) run(ctx context.Context, q string, args ...any) (int, error) {
	body, _ := json.Marshal(httpapi.Request{SQL: q, Params: args})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Rows  [][]any `json:"rows"`
		Error any     `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	if resp.StatusCode != 200 || out.Error != nil {
		return 0, fmt.Errorf("HTTP %d: %v", resp.StatusCode, out.Error)
	}
	return len(out.Rows), nil
}
func (h httpClient) close() { h.c.CloseIdleConnections() }

type pgClient struct{ c *pgx.Conn }

func (p pgClient) run(ctx context.Context, q string, args ...any) (int, error) {
	rows, err := p.c.Query(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		if _, err := rows.Values(); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}
func (p pgClient) close() { _ = p.c.Close(context.Background()) }

func newClient(b *testing.B, env *env, kind string) client {
	switch kind {
	case "inprocess":
		return &inProcess{db: env.engine.DB(), stmts: map[string]*dbsql.Stmt{}}
	case "inprocess-parquet":
		return &inProcess{db: env.parquet.DB(), stmts: map[string]*dbsql.Stmt{}}
	case "http":
		return httpClient{url: env.httpURL, c: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}}
	case "pgwire":
		c, err := pgx.Connect(context.Background(), env.pgURL)
		if err != nil {
			b.Fatal(err)
		}
		return pgClient{c}
	}
	b.Fatalf("unknown client %q", kind)
	return nil
}

// measure runs b.N queries spread over 8 concurrent clients and reports p50, p99 (ms)
// and QPS.
func measure(b *testing.B, kind string, query string, wantRows int, arg func(r *rand.Rand) []any) {
	measureN(b, clients, kind, query, wantRows, arg)
}

// measureN is measure with n concurrent clients.
func measureN(b *testing.B, clients int, kind string, query string, wantRows int, arg func(r *rand.Rand) []any) {
	env := setup(b)
	cs := make([]client, clients)
	for i := range cs {
		cs[i] = newClient(b, env, kind)
		defer cs[i].close()
	}
	// Warm up each client once (pgx prepares, HTTP connects).
	for i, c := range cs {
		if n, err := c.run(context.Background(), query, arg(rand.New(rand.NewPCG(uint64(i), 99)))...); err != nil || n != wantRows {
			b.Fatalf("warm-up: %d rows, %v", n, err)
		}
	}
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for w := 0; w < clients; w++ {
		n := b.N / clients
		if w < b.N%clients {
			n++
		}
		wg.Add(1)
		go func(w, n int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < n; i++ {
				t0 := time.Now()
				got, err := cs[w].run(context.Background(), query, arg(r)...)
				if err != nil || got != wantRows {
					errs <- fmt.Errorf("%d rows, %v", got, err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}(w, n)
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "qps")
	// CPU of the whole process (clients, servers and DuckDB) per query: unlike latency,
	// other processes on the machine do not inflate it.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(max(1, len(all))), "cpu-ms/op")
}

// cpuTime is the user + system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// kinds are the clients: in-process through duckdb-go (the limit), HTTP and PostgreSQL
// wire against the same engine, and in-process against an engine without the in-memory
// copy (every query reads the Parquet file).
var kinds = []string{"inprocess", "http", "pgwire", "inprocess-parquet"}

// userArg is a random user's id as the tag job stores it (VARCHAR).
func userArg(r *rand.Rand) []any { return []any{strconv.FormatInt(r.Int64N(users), 10)} }

func BenchmarkPointQuery(b *testing.B) {
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			measure(b, kind, pointQuery, tagsEach, userArg)
		})
	}
}

// BenchmarkPointQuerySerial is one client: the latency of a lone query, without
// queueing behind the other seven.
func BenchmarkPointQuerySerial(b *testing.B) {
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			measureN(b, 1, kind, pointQuery, tagsEach, userArg)
		})
	}
}

func BenchmarkGroupByAllTags(b *testing.B) {
	for _, kind := range kinds {
		b.Run(kind, func(b *testing.B) {
			measure(b, kind, groupQuery, 200, func(*rand.Rand) []any { return nil })
		})
	}
}
