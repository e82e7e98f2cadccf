package pgwire

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"go.uber.org/goleak"

	tsql "github.com/tagpipe/tagpipe/sql"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	srv    *Server
	engine *tsql.Engine
	host   string
	port   string
	dir    string
}

// start writes a small warehouse table, opens a read-only engine and serves it.
func start(t testing.TB, mod func(*Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	local, err := tsql.Open(context.Background(), tsql.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "ads_user_interest_tags", "dt=2024-05-01"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = local.DB().Exec(`COPY (SELECT i AS user_id, 'tag' || (i % 7) AS tag, (i % 10) / 4.0 AS weight,
		(i % 5)::INTEGER AS rank, (i * 0.5)::DECIMAL(10,2) AS score, i % 2 = 0 AS active,
		TIMESTAMP '2024-05-01 12:00:00' + to_seconds(i) AS updated_at, ['a', 'b' || i] AS labels
		FROM range(1000) t(i)) TO ` + tsql.QuoteString(filepath.Join(dir, "ads_user_interest_tags", "dt=2024-05-01", "part-0.parquet")) + ` (FORMAT parquet)`)
	local.Close()
	if err != nil {
		t.Fatal(err)
	}
	eo := tsql.DefaultOptions()
	eo.ReadOnly, eo.Register, eo.AllowedDirs = true, tsql.DirViews(dir), []string{dir}
	eo.QueryTimeout, eo.MaxRows = 30*time.Second, 100000
	// As the servers run by default: the table answered from its in-memory copy.
	eo.Cache = []tsql.CacheTable{{Table: "ads_user_interest_tags", Key: "user_id"}}
	e, err := tsql.Open(context.Background(), eo)
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.Listen = "127.0.0.1:0"
	opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if mod != nil {
		mod(&opts)
	}
	s := New(e, opts)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
		_ = s.Stop(context.Background())
		_ = e.Close()
	})
	host, port, _ := net.SplitHostPort(s.Addr())
	return &fixture{srv: s, engine: e, host: host, port: port, dir: dir}
}

func (f *fixture) url(password string, extra string) string {
	u := "postgres://tagpipe"
	if password != "" {
		u += ":" + password
	}
	return fmt.Sprintf("%s@%s:%s/tagpipe?%s", u, f.host, f.port, extra)
}

// connect opens a pgx connection without TLS, closed when the test ends.
func (f *fixture) connect(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), f.url("", "sslmode=disable"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// psql runs the real psql client; tests skip when it is not installed (CI installs
// Debian's postgresql-client; scripts/interop.d/30_psql.sh fails without it).
func psql(t *testing.T, f *fixture, password string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("psql")
	if err != nil {
		t.Skip("psql not installed (apt-get install postgresql-client)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-h", f.host, "-p", f.port, "-U", "tagpipe", "-d", "tagpipe",
		"-X", "-v", "ON_ERROR_STOP=1", "-w"}, args...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10", "PGSSLMODE=prefer")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPsqlQueriesAndCatalog(t *testing.T) {
	f := start(t, func(o *Options) { o.Password = "pw" })
	out, err := psql(t, f, "pw", "-A", "-t", "-c", "SELECT tag, count(*) FROM ads_user_interest_tags WHERE user_id < 14 GROUP BY tag ORDER BY tag LIMIT 3")
	if err != nil || out != "tag0|2\ntag1|2\ntag2|2\n" {
		t.Fatalf("query: %v\n%s", err, out)
	}
	out, err = psql(t, f, "pw", "-c", `\dt`)
	if err != nil || !strings.Contains(out, "ads_user_interest_tags | table | tagpipe") || strings.Contains(out, "ads_user_interest_tags_1") {
		t.Fatalf(`\dt (the view, not its in-memory copy): %v\n%s`, err, out)
	}
	out, err = psql(t, f, "pw", "-c", `\d ads_user_interest_tags`)
	t.Logf("\\d output:\n%s", out)
	for _, want := range []string{`Table "main.ads_user_interest_tags"`, "user_id    | bigint", "score      | numeric(10,2)",
		"updated_at | timestamp without time zone", "labels     | text[]", "dt         | date"} {
		if err != nil || !strings.Contains(out, want) {
			t.Fatalf(`\d: %v, want %q in\n%s`, err, want, out)
		}
	}
	out, err = psql(t, f, "pw", "-c", `\d nosuch`)
	if err == nil || !strings.Contains(out, `Did not find any relation named "nosuch"`) {
		t.Fatalf(`\d nosuch: %v\n%s`, err, out)
	}
	// Aligned output, NULLs, a bad statement with psql's caret, a refused one.
	out, _ = psql(t, f, "pw", "-c", "SELECT user_id, nosuch FROM ads_user_interest_tags")
	if !strings.Contains(out, "ERROR:") || !strings.Contains(out, "nosuch") || !strings.Contains(out, "^") {
		t.Fatalf("bad column:\n%s", out)
	}
	out, _ = psql(t, f, "pw", "-c", "COPY ads_user_interest_tags TO '/tmp/x.csv'")
	if !strings.Contains(out, "ERROR:") || !strings.Contains(out, "the server writes no files") {
		t.Fatalf("COPY:\n%s", out)
	}
	// psql's \copy: COPY … TO STDOUT, written by psql to a client-side file.
	csv := filepath.Join(t.TempDir(), "tags.csv")
	out, err = psql(t, f, "pw", "-c", `\copy (SELECT user_id, tag FROM ads_user_interest_tags WHERE user_id < 3 ORDER BY 1) TO '`+csv+`' CSV HEADER`)
	if b, _ := os.ReadFile(csv); err != nil || out != "COPY 3\n" || string(b) != "user_id,tag\n0,tag0\n1,tag1\n2,tag2\n" {
		t.Fatalf("\\copy: %v %q, file %q", err, out, b)
	}
	out, _ = psql(t, f, "pw", "-c", "ATTACH 'x.db'")
	if !strings.Contains(out, "ATTACH is not allowed: remote queries are read-only") {
		t.Fatalf("ATTACH:\n%s", out)
	}
	out, err = psql(t, f, "pw", "-c", `\dt+`)
	if err != nil || !strings.Contains(out, "| permanent") {
		t.Fatalf(`\dt+: %v\n%s`, err, out)
	}
	out, err = psql(t, f, "pw", "-c", `\l`)
	if err != nil || !strings.Contains(out, "tagpipe | tagpipe | UTF8") {
		t.Fatalf(`\l: %v\n%s`, err, out)
	}
	out, err = psql(t, f, "pw", "-c", `\dn`)
	if err != nil || !strings.Contains(out, "main | tagpipe") {
		t.Fatalf(`\dn: %v\n%s`, err, out)
	}
	out, err = psql(t, f, "pw", "-A", "-t", "-c", "SELECT version()")
	if err != nil || !strings.HasPrefix(out, "PostgreSQL 15.0 (tagpipe; DuckDB v1.") {
		t.Fatalf("version(): %v\n%s", err, out)
	}
	out, err = psql(t, f, "pw", "-c", "BEGIN; SELECT 1 AS one; COMMIT; SHOW server_version; SET application_name = 'x'")
	if err != nil || !strings.Contains(out, "one") || !strings.Contains(out, "15.0") {
		t.Fatalf("session statements: %v\n%s", err, out)
	}
}

func TestPsqlWrongPasswordRefused(t *testing.T) {
	for _, auth := range []string{"scram-sha-256", "md5"} {
		t.Run(auth, func(t *testing.T) {
			f := start(t, func(o *Options) { o.Password = "right"; o.Auth = auth })
			out, err := psql(t, f, "wrong", "-c", "SELECT 1")
			if err == nil || !strings.Contains(out, `password authentication failed for user "tagpipe"`) {
				t.Fatalf("wrong password: %v\n%s", err, out)
			}
			out, err = psql(t, f, "right", "-A", "-t", "-c", "SELECT 41 + 1")
			if err != nil || out != "42\n" {
				t.Fatalf("right password: %v\n%s", err, out)
			}
		})
	}
}

func TestPgxExtendedProtocolParameters(t *testing.T) {
	f := start(t, func(o *Options) { o.Password = "pw" })
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.url("pw", "sslmode=disable"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var (
		tag     string
		weight  float64
		rank    int32
		score   float64
		active  bool
		updated time.Time
		labels  []string
		dt      time.Time
	)
	err = conn.QueryRow(ctx, `SELECT tag, weight, rank, score::DOUBLE, active, updated_at, labels, dt
		FROM ads_user_interest_tags WHERE user_id = $1 AND tag = $2`, 123, "tag4").
		Scan(&tag, &weight, &rank, &score, &active, &updated, &labels, &dt)
	if err != nil {
		t.Fatal(err)
	}
	if tag != "tag4" || weight != 0.75 || rank != 3 || score != 61.5 || active ||
		!updated.Equal(time.Date(2024, 5, 1, 12, 2, 3, 0, time.UTC)) || len(labels) != 2 || labels[1] != "b123" ||
		dt.Format("2006-01-02") != "2024-05-01" {
		t.Fatalf("got %q %v %v %v %v %v %v %v", tag, weight, rank, score, active, updated, labels, dt)
	}
	// The same values as DuckDB in-process, for a parameterised group-by, row by row.
	q := "SELECT tag, count(*) AS n, sum(weight) AS w FROM ads_user_interest_tags WHERE user_id >= $1 GROUP BY tag ORDER BY tag"
	rows, err := conn.Query(ctx, q, 500)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var tg string
		var n int64
		var w float64
		if err := rows.Scan(&tg, &n, &w); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %d %v", tg, n, w))
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	drows, err := f.engine.DB().Query(strings.Replace(q, "$1", "500", 1))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for drows.Next() {
		var tg string
		var n int64
		var w float64
		_ = drows.Scan(&tg, &n, &w)
		want = append(want, fmt.Sprintf("%s %d %v", tg, n, w))
	}
	drows.Close()
	if strings.Join(got, ",") != strings.Join(want, ",") || len(got) != 7 {
		t.Fatalf("pgx %v\nduckdb %v", got, want)
	}
	// A prepared statement reused with different arguments.
	if _, err := conn.Prepare(ctx, "by_user", "SELECT count(*) FROM ads_user_interest_tags WHERE user_id < $1"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{0, 10, 999} {
		var c int64
		if err := conn.QueryRow(ctx, "by_user", n).Scan(&c); err != nil || c != n {
			t.Fatalf("by_user(%d) = %d, %v", n, c, err)
		}
	}
	// Refused and bad statements are SQL errors with SQLSTATEs; the connection lives on.
	_, err = conn.Exec(ctx, "COPY ads_user_interest_tags TO '/tmp/x'")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("COPY: %v", err)
	}
	err = conn.QueryRow(ctx, "SELECT nosuch FROM ads_user_interest_tags").Scan(new(int))
	if !errors.As(err, &pe) || pe.Code != "42703" || pe.Position != 8 {
		t.Fatalf("bad column: %#v", err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("after errors: %v", err)
	}
	// The simple protocol too.
	var s string
	if err := conn.QueryRow(ctx, "SELECT $1::VARCHAR || 'x'", pgx.QueryExecModeSimpleProtocol, "it's").Scan(&s); err != nil || s != "it'sx" {
		t.Fatalf("simple protocol: %q %v", s, err)
	}
}

func TestPgxWrongPasswordRefused(t *testing.T) {
	for _, auth := range []string{"scram-sha-256", "md5"} {
		f := start(t, func(o *Options) { o.Password = "right"; o.Auth = auth })
		_, err := pgx.Connect(context.Background(), f.url("wrong", "sslmode=disable"))
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "28P01" {
			t.Fatalf("%s wrong password: %v", auth, err)
		}
		c, err := pgx.Connect(context.Background(), f.url("right", "sslmode=disable"))
		if err != nil {
			t.Fatalf("%s right password: %v", auth, err)
		}
		c.Close(context.Background())
	}
}

func TestTLS(t *testing.T) {
	cert := selfSigned(t)
	f := start(t, func(o *Options) {
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		o.RequireTLS = true
		o.Password = "pw"
	})
	cfg, err := pgx.ParseConfig(f.url("pw", "sslmode=require"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM ads_user_interest_tags").Scan(&n); err != nil || n != 1000 {
		t.Fatalf("%d %v", n, err)
	}
	if _, ok := conn.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("connection is %T, not TLS", conn.PgConn().Conn())
	}
	conn.Close(context.Background())
	if _, err := pgx.Connect(context.Background(), f.url("pw", "sslmode=disable")); err == nil {
		t.Fatal("plain connection accepted although TLS is required")
	}
	if _, err := exec.LookPath("psql"); err == nil {
		out, err := psql(t, f, "pw", "-A", "-t", "-c", "SELECT ssl FROM (SELECT 'on' AS ssl)")
		if err != nil || out != "on\n" {
			t.Fatalf("psql over TLS: %v\n%s", err, out)
		}
	}
}

func TestCancelRequestStopsQuery(t *testing.T) {
	f := start(t, nil)
	ctx := context.Background()
	conn := f.connect(t)
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b")
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	// A CancelRequest on its own connection, with this session's key, as psql's Ctrl-C.
	if err := conn.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("want query_canceled, got %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the query was not canceled")
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("session after cancel: %v", err)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestStatementTimeoutSetting(t *testing.T) {
	f := start(t, nil)
	ctx := context.Background()
	conn := f.connect(t)
	if _, err := conn.Exec(ctx, "SET statement_timeout = '200ms'"); err != nil {
		t.Fatal(err)
	}
	_, err := conn.Exec(ctx, "SELECT sum(a.range * b.range) FROM range(100000) a, range(100000) b")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57014" {
		t.Fatalf("want query_canceled, got %v", err)
	}
	var s string
	if err := conn.QueryRow(ctx, "SHOW statement_timeout").Scan(&s); err != nil || s != "200ms" {
		t.Fatalf("SHOW statement_timeout = %q, %v", s, err)
	}
	for v, want := range map[string]time.Duration{"0": 0, "1500": 1500 * time.Millisecond, "2s": 2 * time.Second, "1min": time.Minute, "x": 0} {
		if got := statementTimeout(v); got != want {
			t.Errorf("statementTimeout(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestPgxTypesRoundTrip(t *testing.T) {
	f := start(t, nil)
	ctx := context.Background()
	conn := f.connect(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		var (
			ints    []int32
			dbls    []float64
			bools   []bool
			smalls  []int16
			strs    []*string
			obj     string
			iv      time.Duration
			uuid    [16]byte
			tm      string
			dec     string
			huge    string
			blob    []byte
			js      string
			tiny    int16
			ubig    string
			tstz    time.Time
			nullInt *int64
		)
		err := conn.QueryRow(ctx, `SELECT [1, 2]::INTEGER[], [1.5]::DOUBLE[], [true, false], [7::SMALLINT], [NULL, 'x'],
			{'a': 1, 'b': 'y'}, INTERVAL 90 MINUTE, '550e8400-e29b-41d4-a716-446655440000'::UUID, TIME '10:11:12'::VARCHAR,
			1234.5678901234::DECIMAL(38,10)::VARCHAR, (2::HUGEINT ** 100)::HUGEINT::VARCHAR, '\xAA\xBB'::BLOB, '{"a": 1}'::JSON,
			-3::TINYINT, 18446744073709551615::UBIGINT::VARCHAR, TIMESTAMPTZ '2024-05-01 12:00:00+00', NULL::BIGINT`, mode).
			Scan(&ints, &dbls, &bools, &smalls, &strs, &obj, &iv, &uuid, &tm, &dec, &huge, &blob, &js, &tiny, &ubig, &tstz, &nullInt)
		if err != nil {
			t.Fatalf("mode %v: %v", mode, err)
		}
		if len(ints) != 2 || ints[1] != 2 || dbls[0] != 1.5 || !bools[0] || bools[1] || smalls[0] != 7 || strs[0] != nil || *strs[1] != "x" ||
			obj != "{'a': 1, 'b': y}" || iv != 90*time.Minute || uuid[0] != 0x55 || tm != "10:11:12" || dec != "1234.5678901234" ||
			huge != "1267650600228229401496703205376" || len(blob) != 2 || blob[0] != 0xAA || js != `{"a":1}` || tiny != -3 ||
			ubig != "18446744073709551615" || !tstz.Equal(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) || nullInt != nil {
			t.Fatalf("mode %v: %v %v %v %v %v %q %v %x %q %q %q %x %q %v %q %v %v", mode, ints, dbls, bools, smalls, strs, obj, iv, uuid,
				tm, dec, huge, blob, js, tiny, ubig, tstz, nullInt)
		}
		// Numeric, time and decimal values in their own PostgreSQL types.
		var (
			n   pgtypeNumeric
			tod pgtypeTime
			d   float64
		)
		if err := conn.QueryRow(ctx, "SELECT 12.50::DECIMAL(5,2), TIME '10:11:12', 12.5::DECIMAL(5,2)::DOUBLE", mode).Scan(&n, &tod, &d); err != nil {
			t.Fatalf("mode %v numeric/time: %v", mode, err)
		}
		if f, _ := n.Float64Value(); f.Float64 != 12.5 || tod.Microseconds != (10*3600+11*60+12)*1e6 || d != 12.5 {
			t.Fatalf("mode %v: numeric %v time %v", mode, n, tod)
		}
	}
}

type (
	pgtypeNumeric = pgtype.Numeric
	pgtypeTime    = pgtype.Time
)

// COPY … TO STDOUT (psql's \copy, pgx's CopyTo) in CSV and text, from a query or a
// table with columns; COPY FROM STDIN, to a server file, or of a write is refused.
func TestCopyToStdout(t *testing.T) {
	f := start(t, nil)
	ctx := context.Background()
	conn := f.connect(t)
	copyTo := func(sql string) (string, error) {
		var b strings.Builder
		tag, err := conn.PgConn().CopyTo(ctx, &b, sql)
		if err == nil && tag.RowsAffected() < 0 {
			err = errors.New("no row count")
		}
		return b.String(), err
	}
	for _, c := range []struct{ sql, want string }{
		{`COPY (SELECT user_id, tag, NULL AS x, 'a,"b"' AS y, '' AS e FROM ads_user_interest_tags WHERE user_id < 2 ORDER BY user_id) TO STDOUT WITH (FORMAT csv, HEADER)`,
			"user_id,tag,x,y,e\n0,tag0,,\"a,\"\"b\"\"\",\"\"\n1,tag1,,\"a,\"\"b\"\"\",\"\"\n"},
		{`copy (select user_id, 'tab	and\back' AS s, NULL AS n FROM ads_user_interest_tags WHERE user_id = 3) to stdout`,
			"3\ttab\\tand\\\\back\t\\N\n"},
		{`COPY (SELECT 1 AS a, 2 AS b) TO STDOUT CSV HEADER DELIMITER ';' NULL 'nil'`, "a;b\n1;2\n"},
		{`COPY ads_user_interest_tags (user_id, rank) TO STDOUT WITH (FORMAT csv)`, ""},
	} {
		got, err := copyTo(c.sql)
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		if c.want == "" {
			if strings.Count(got, "\n") != 1000 || !strings.HasPrefix(got, "0,0\n") {
				t.Fatalf("%s: %d lines, starting %.20q", c.sql, strings.Count(got, "\n"), got)
			}
			continue
		}
		if got != c.want {
			t.Fatalf("%s:\n got %q\nwant %q", c.sql, got, c.want)
		}
	}
	for sql, want := range map[string]string{
		`COPY ads_user_interest_tags FROM STDIN`:              "read-only",
		`COPY ads_user_interest_tags TO '/tmp/x.csv'`:         "TO STDOUT",
		`COPY (SELECT 1) TO STDOUT (FORMAT binary)`:           "not supported",
		`COPY (DELETE FROM ads_user_interest_tags) TO STDOUT`: "",
	} {
		if _, err := copyTo(sql); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", sql, err)
		}
	}
	// The connection is still usable after a refused COPY.
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM ads_user_interest_tags").Scan(&n); err != nil || n != 1000 {
		t.Fatalf("after COPY: %d %v", n, err)
	}
}

// TestFloatTextAsPostgreSQL: doubles and reals in text format (psql, COPY … TO STDOUT,
// the simple protocol) print as PostgreSQL prints them: exponent notation outside
// 1e-4 … 1e15 (1e6 for real), not pgtype's fixed notation (1e300 as 301 digits).
func TestFloatTextAsPostgreSQL(t *testing.T) {
	for _, c := range []struct {
		f    float64
		bits int
		want string
	}{
		{5.9e-33, 64, "5.9e-33"}, {1e300, 64, "1e+300"}, {1e15, 64, "1e+15"}, {123456789012345, 64, "123456789012345"},
		{1234567890123456, 64, "1.234567890123456e+15"}, {0.0001, 64, "0.0001"}, {0.00001, 64, "1e-05"}, {3.5, 64, "3.5"},
		{1, 64, "1"}, {-2.25, 64, "-2.25"}, {0, 64, "0"}, {math.Copysign(0, -1), 64, "-0"}, {1.0 / 3, 64, "0.3333333333333333"},
		{math.NaN(), 64, "NaN"}, {math.Inf(1), 64, "Infinity"}, {math.Inf(-1), 64, "-Infinity"},
		{float64(float32(0.1)), 32, "0.1"}, {123456, 32, "123456"}, {1234567, 32, "1.234567e+06"},
	} {
		if got := string(appendPGFloat(nil, c.f, c.bits)); got != c.want {
			t.Errorf("appendPGFloat(%v, %d) = %q, want %q", c.f, c.bits, got, c.want)
		}
	}
	f := start(t, nil)
	out, err := psql(t, f, "", "-A", "-t", "-c", "SELECT 5.9e-33::DOUBLE, 1e300::DOUBLE, 0.25::DOUBLE, 1234567::FLOAT, 'nan'::DOUBLE")
	if want := "5.9e-33|1e+300|0.25|1.234567e+06|NaN\n"; err != nil || out != want {
		t.Fatalf("psql: %v, %q; want %q", err, out, want)
	}
	out, err = psql(t, f, "", "-c", `\copy (SELECT 1e-7::DOUBLE AS d) TO STDOUT CSV`)
	if err != nil || out != "1e-07\n" {
		t.Fatalf(`psql \copy: %v, %q`, err, out)
	}
}
