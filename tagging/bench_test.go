package tagging

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/tagpipe/tagpipe/tagging/gen"
	"github.com/tagpipe/tagpipe/warehouse"
)

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil && v > 0 {
		return v
	}
	return def
}

// peakRSSMiB is the process's high-water resident set (VmHWM).
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// loadSynthetic appends Taobao-style synthetic events to dwd_events: history events
// over days 0..days-2 and dayEvents on the last day. Users, items and categories are
// Zipf-distributed (tagging/gen); events carry their item's category.
func loadSynthetic(b testing.TB, db *sql.DB, history, dayEvents int64, days int) time.Time {
	b.Helper()
	mustExec(b, db, `CREATE TABLE dwd_events (user_id VARCHAR, item_id VARCHAR, category VARCHAR, action VARCHAR, event_time TIMESTAMP, value DOUBLE)`)
	total := history + dayEvents
	g := gen.New(gen.Options{Users: uint64(max(total/100, 1000)), Items: uint64(max(total/25, 5000)), Categories: 9000, Days: days, Seed: 7})
	rnd := rand.New(rand.NewPCG(1, 2))
	conn, err := db.Conn(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		app, err := duckdb.NewAppenderFromConn(dc.(driver.Conn), "", "dwd_events")
		if err != nil {
			return err
		}
		add := func(e gen.Event) error {
			var v any
			if e.Behavior == "buy" {
				v = float64(e.Item%200) + 0.99
			}
			return app.AppendRow(strconv.FormatUint(e.User, 10), strconv.FormatUint(e.Item, 10), strconv.FormatUint(e.Category, 10), e.Behavior, e.Time, v)
		}
		for range history {
			if err := add(g.Next(rnd.IntN(days - 1))); err != nil {
				return err
			}
		}
		for range dayEvents {
			if err := add(g.Next(days - 1)); err != nil {
				return err
			}
		}
		return app.Close()
	})
	if err != nil {
		b.Fatal(err)
	}
	return gen.DefaultOptions().Start.AddDate(0, 0, days-1)
}

// BenchmarkModel: a full recompute over all events and an incremental run of the last
// day (continuing from the day before). Sizes: TAGPIPE_BENCH_EVENTS (default 1M; the
// issue's target is 10M) and TAGPIPE_BENCH_DAY_EVENTS (default a tenth).
//
//	TAGPIPE_BENCH_EVENTS=10000000 TAGPIPE_BENCH_DAY_EVENTS=1000000 go test ./tagging -run '^$' -bench Model -benchtime 1x
func BenchmarkModel(b *testing.B) {
	total := envInt("TAGPIPE_BENCH_EVENTS", 1_000_000)
	day := envInt("TAGPIPE_BENCH_DAY_EVENTS", total/10)
	db := openDuck(b)
	loadStart := time.Now()
	last := loadSynthetic(b, db, total-day, day, 30)
	b.Logf("generated %d events (%d on the last day) in %s", total, day, time.Since(loadStart).Round(time.Millisecond))
	o := DefaultOptions()
	o.MemoryLimit = "3GB"
	var log *slog.Logger
	if os.Getenv("TAGPIPE_BENCH_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	tg, err := New(db, DuckStore{}, o, log)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ds, prev := last.Format("2006-01-02"), last.AddDate(0, 0, -1).Format("2006-01-02")

	b.Run("full", func(b *testing.B) {
		var st *RunStats
		for b.Loop() {
			var err error
			if st, err = tg.RunModel(ctx, ds, true); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(st.Rows)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
		b.ReportMetric(float64(st.Pairs), "pairs")
		b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
	})
	b.Run("incremental-day", func(b *testing.B) {
		if _, err := tg.RunModel(ctx, prev, true); err != nil {
			b.Fatal(err)
		}
		var st *RunStats
		for b.Loop() {
			var err error
			if st, err = tg.RunModel(ctx, ds, false); err != nil {
				b.Fatal(err)
			}
			if st.Full {
				b.Fatal("not incremental")
			}
		}
		b.ReportMetric(float64(st.Rows)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
		b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
	})
}

// BenchmarkModelWarehouse is BenchmarkModel with every table in the warehouse: events
// read from Parquet through duckbridge views (dwd_events partitioned by day), outputs
// written with COPY … TO and committed as snapshots. Same sizes and variables.
func BenchmarkModelWarehouse(b *testing.B) {
	total := envInt("TAGPIPE_BENCH_EVENTS", 1_000_000)
	day := envInt("TAGPIPE_BENCH_DAY_EVENTS", total/10)
	db := openDuck(b)
	last := loadSynthetic(b, db, total-day, day, 30)
	mustExec(b, db, "ALTER TABLE dwd_events RENAME TO src_events")
	w, err := warehouse.Open(b.TempDir(), warehouse.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := (WarehouseStore{W: w}).Load(ctx, conn, "dwd_events", []string{"dt"},
		"SELECT *, CAST(event_time AS DATE) AS dt FROM src_events"); err != nil {
		b.Fatal(err)
	}
	mustExec(b, conn, "DROP TABLE src_events")
	conn.Close()
	o := DefaultOptions()
	o.MemoryLimit = "3GB"
	var log *slog.Logger
	if os.Getenv("TAGPIPE_BENCH_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	tg, err := New(db, WarehouseStore{W: w}, o, log)
	if err != nil {
		b.Fatal(err)
	}
	ds, prev := last.Format("2006-01-02"), last.AddDate(0, 0, -1).Format("2006-01-02")
	b.Run("full", func(b *testing.B) {
		var st *RunStats
		for b.Loop() {
			if st, err = tg.RunModel(ctx, ds, true); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(st.Rows)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
		b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
	})
	b.Run("incremental-day", func(b *testing.B) {
		if _, err := tg.RunModel(ctx, prev, true); err != nil {
			b.Fatal(err)
		}
		var st *RunStats
		for b.Loop() {
			if st, err = tg.RunModel(ctx, ds, false); err != nil || st.Full {
				b.Fatalf("%+v %v", st, err)
			}
		}
		b.ReportMetric(float64(st.Rows)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/run")
		b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
	})
}
