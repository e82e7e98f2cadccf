package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/internal/event"
	"github.com/tagpipe/tagpipe/streaming"
	"github.com/tagpipe/tagpipe/streaming/internal/testkafka"
	"github.com/tagpipe/tagpipe/warehouse"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" || os.Getenv(chaosChildEnv) != "" {
		os.Exit(m.Run()) // the kill -9 children: no leak check
	}
	goleak.VerifyTestMain(m)
}

// rows reads columns of a table's current snapshot as strings (with arrow-go, not
// DuckDB), one map per row; dt is the partition value.
func rows(t testing.TB, w *warehouse.Warehouse, table string, cols ...string) []map[string]string {
	t.Helper()
	tb, err := w.Table(table)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := tb.Current()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	err = snap.Scan(context.Background(), func(f warehouse.DataFile, rec arrow.RecordBatch) error {
		idx := map[string]int{}
		for i, fl := range rec.Schema().Fields() {
			idx[fl.Name] = i
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			m := map[string]string{}
			for _, c := range cols {
				if c == "dt" {
					m[c], _ = f.Partition.Get("dt")
					continue
				}
				i, ok := idx[c]
				if !ok {
					return fmt.Errorf("table %s has no column %q", table, c)
				}
				m[c] = cell(rec.Column(i), r)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func cell(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return "NULL"
	}
	switch c := a.(type) {
	case *array.Timestamp:
		return c.Value(i).ToTime(arrow.Microsecond).UTC().Format(time.RFC3339)
	case *array.Map:
		b, _ := json.Marshal(c.GetOneForMarshal(i))
		return string(b)
	}
	return a.ValueStr(i)
}

type waiter struct {
	mu     sync.Mutex
	total  int64
	signal chan struct{}
}

func newWaiter() *waiter { return &waiter{signal: make(chan struct{}, 1)} }

func (w *waiter) onBatch(m streaming.BatchMetrics) {
	w.mu.Lock()
	w.total += m.Records
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// count is the number of records of the batches reported so far.
func (w *waiter) count() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.total
}

func (w *waiter) wait(t testing.TB, e *streaming.Engine, want int64) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		got := w.count()
		if got >= want {
			return
		}
		select {
		case <-w.signal:
		case <-e.Done():
			t.Fatalf("engine ended: %v", e.Err())
		case <-deadline:
			t.Fatalf("timed out at %d of %d records", got, want)
		}
	}
}

func startEvents(t testing.TB, addrs []string, wh *warehouse.Warehouse, cp string, po Options, w *waiter) (*Events, *streaming.Engine) {
	t.Helper()
	po.Warehouse = wh
	ev, err := NewEvents(context.Background(), po)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	o := streaming.DefaultOptions()
	o.Brokers, o.Topics, o.CheckpointDir = addrs, []string{"events"}, cp
	o.MaxRecordsPerPartition = 1000
	o.RetryBackoff = 20 * time.Millisecond
	o.Resume = ev.Resume
	if w != nil {
		o.OnBatch = w.onBatch
	}
	e, err := streaming.New(ev.Job, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ev, e
}

func openWarehouse(t testing.TB, dir string) *warehouse.Warehouse {
	t.Helper()
	w, err := warehouse.Open(dir, warehouse.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// movielensLines returns the header and the first n ratings of the bundled sample.
func movielensLines(t testing.TB, n int) []string {
	f, err := os.Open("../../testdata/movielens/ratings.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(out) <= n {
		out = append(out, sc.Text())
	}
	return out
}

// TestEventsPipeline: mixed MovieLens, Taobao and JSON lines with bad lines, repeated
// event ids and lines the collector delivered twice (same event_id header) land in ods (all), dwd (parsed, deduplicated), dlq (bad, with reasons); on
// kfake and on the built-in broker.
func TestEventsPipeline(t *testing.T) {
	for _, backend := range testkafka.Backends {
		t.Run(backend, func(t *testing.T) { testEventsPipeline(t, backend) })
	}
}

func testEventsPipeline(t *testing.T, backend string) {
	addrs := testkafka.Start(t, backend, "events", 3)
	ml := movielensLines(t, 2000) // header + 2000 ratings
	var recs []testkafka.Record
	add := func(line string, headers map[string]string) {
		recs = append(recs, testkafka.Record{Partition: int32(len(recs) % 3), Value: []byte(line), Headers: headers})
	}
	for _, l := range ml {
		add(l, map[string]string{"file": "/spool/ratings.csv"})
	}
	taobao := func(i int) string {
		return fmt.Sprintf("%d,%d,%d,%s,%d", i%50, 1000+i, 7+i%3, []string{"pv", "fav", "cart", "buy"}[i%4], 1511544070+i)
	}
	for i := range 500 {
		// The collector's stable line id rides in the event_id header.
		add(taobao(i), map[string]string{"event_id": fmt.Sprintf("spool-1-%x", i)})
	}
	for i := range 40 { // lines the collector sent twice (crash, producer retry): same id
		add(taobao(i), map[string]string{"event_id": fmt.Sprintf("spool-1-%x", i)})
	}
	for i := range 300 { // 100 distinct ids, each sent three times
		add(fmt.Sprintf(`{"event_id":"e%d","user_id":"u%d","item_id":"i%d","action":"click","ts":%d,"price":%d.5,"channel":"app"}`, i%100, i%7, i, 1700000000+i, i), nil)
	}
	bad := []string{"garbage", "1,2,3,jump,1511544070", `{"user_id":"u1"`, "1,2,abc,964982703", `{"action":"pv","ts":1}`, "1,2\xff\xfe,3,pv,1511544070"}
	for i := range 30 {
		add(bad[i%len(bad)], nil)
	}
	// A line the collector marked bad goes to dlq_events even though it parses.
	add("1,2,3,pv,1511544070", map[string]string{"error": "line longer than 64 KiB, truncated"})
	testkafka.Produce(t, addrs, "events", recs)

	wh := openWarehouse(t, t.TempDir())
	w := newWaiter()
	po := DefaultOptions()
	po.Interval = 20 * time.Millisecond
	po.Windows = WindowOptions{}
	_, e := startEvents(t, addrs, wh, t.TempDir(), po, w)
	w.wait(t, e, int64(len(recs)))
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	ods := rows(t, wh, TableODS, "topic", "partition", "offset", "raw", "parsed", "source", "format")
	if len(ods) != len(recs) { // every record, the bad ones included
		t.Fatalf("ods_events has %d rows, want %d", len(ods), len(recs))
	}
	// ods_events is partitioned by the day the record reached Kafka (these ratings are
	// from 2000, their records from today), as its column doc says.
	for _, r := range rows(t, wh, TableODS, "dt", "kafka_time") {
		if !strings.HasPrefix(r["kafka_time"], r["dt"]+"T") {
			t.Fatalf("ods_events dt %s for a record that reached Kafka at %s", r["dt"], r["kafka_time"])
		}
	}
	if f, _ := ODSSchema.FieldsByName("dt"); !strings.Contains(warehouse.FieldDoc(f[0]), "reached Kafka") {
		t.Fatalf("ods_events dt doc %q does not say it is the day the record reached Kafka", warehouse.FieldDoc(f[0]))
	}
	dwd := rows(t, wh, TableDWD, "dt", "user_id", "item_id", "action", "event_time", "value", "category", "event_id", "partition", "offset", "source", "props")
	wantDWD := 2000 + 500 + 100
	if len(dwd) != wantDWD {
		t.Fatalf("dwd_events has %d rows, want %d", len(dwd), wantDWD)
	}
	seen := map[string]bool{}
	actions := map[string]int{}
	for _, r := range dwd {
		k := r["partition"] + "/" + r["offset"]
		if seen[k] {
			t.Fatalf("dwd duplicate at %s", k)
		}
		seen[k] = true
		actions[r["action"]]++
		if r["dt"] != r["event_time"][:10] {
			t.Fatalf("dt %s for event_time %s", r["dt"], r["event_time"])
		}
	}
	if actions["rate"] != 2000 || actions["pv"] != 125 || actions["click"] != 100 {
		t.Fatalf("actions %v", actions)
	}
	// A MovieLens row keeps its rating, source and date; a JSON row its props.
	var sawRating, sawProps bool
	for _, r := range dwd {
		if r["action"] == "rate" && r["user_id"] == "1" && r["item_id"] == "1" {
			sawRating = r["value"] == "4" && r["source"] == "/spool/ratings.csv" && r["dt"] == "2000-07-30"
		}
		if r["event_id"] == "e5" {
			// Which of the three copies survives depends on partition order; any is one.
			sawProps = strings.Contains(r["props"], "channel") && strings.HasSuffix(r["value"], "5.5")
			if !sawProps {
				t.Logf("e5 row: %v", r)
			}
		}
	}
	if !sawRating || !sawProps {
		t.Fatalf("rating row ok=%v, props row ok=%v", sawRating, sawProps)
	}
	dlq := rows(t, wh, TableDLQ, "raw", "reason", "offset")
	if len(dlq) != 31 {
		t.Fatalf("dlq_events has %d rows, want 31", len(dlq))
	}
	reasons := map[string]bool{}
	for _, r := range dlq {
		if r["reason"] == "" || r["raw"] == "" {
			t.Fatalf("dlq row without reason or raw: %v", r)
		}
		reasons[r["reason"]] = true
	}
	for _, want := range []string{"cannot parse collector line: line longer than 64 KiB, truncated", "cannot parse taobao line: invalid UTF-8"} {
		if !reasons[want] {
			t.Fatalf("no dlq row with reason %q in %v", want, reasons)
		}
	}
	// The MovieLens header is in ods (as received), not parsed, not in dlq.
	headers := 0
	for _, r := range ods {
		if r["raw"] == "userId,movieId,rating,timestamp" && r["parsed"] == "false" {
			headers++
		}
	}
	if headers != 1 {
		t.Fatalf("header rows in ods: %d", headers)
	}
	// Snapshot properties carry the batch id and ranges.
	tb, _ := wh.Table(TableDWD)
	snap, _ := tb.Current()
	if snap.Properties[streaming.PropPipeline] != "events" || snap.Properties[streaming.PropRanges] == "" {
		t.Fatalf("snapshot properties %v", snap.Properties)
	}
}

// TestWindowCountsPipeline checks rt_window_counts against a count computed here from
// the events, that late events land in rt_late_events, and that the window counts topic
// receives the same counts.
func TestWindowCountsPipeline(t *testing.T) {
	addrs := testkafka.Start(t, "kfake", "events", 2)
	base := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC).Unix()
	type evt struct {
		at       int64
		action   string
		category string
	}
	var evs []evt
	for i := range 1800 { // one event per second for 30 minutes
		evs = append(evs, evt{base + int64(i), []string{"pv", "buy", "cart"}[i%3], fmt.Sprint(i % 2)})
	}
	wh := openWarehouse(t, t.TempDir())
	w := newWaiter()
	po := DefaultOptions()
	po.Interval = 20 * time.Millisecond
	po.Windows = WindowOptions{Length: 10 * time.Minute, Slide: time.Minute, AllowedLateness: time.Minute,
		Topic: "window_counts", Brokers: addrs}
	createTopic(t, addrs, "window_counts")
	cp := t.TempDir()
	produceEvts := func(es []evt, from int) {
		var recs []testkafka.Record
		for i, e := range es {
			recs = append(recs, testkafka.Record{Partition: int32((from + i) % 2), Value: []byte(fmt.Sprintf("u%d,i%d,%s,%s,%d", i%9, i, e.category, e.action, e.at))})
		}
		testkafka.Produce(t, addrs, "events", recs)
	}
	// First half, stop, restart on the same checkpoint, second half: the window panes and
	// the watermark come back from the checkpoint.
	produceEvts(evs[:900], 0)
	_, e := startEvents(t, addrs, wh, cp, po, w)
	w.wait(t, e, 900)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	produceEvts(evs[900:], 900)
	ev, e := startEvents(t, addrs, wh, cp, po, w)
	w.wait(t, e, int64(len(evs)))
	// Late data: two events 20 minutes behind the watermark.
	late := []evt{{base + 60, "pv", "0"}, {base + 61, "buy", "1"}}
	produceEvts(late, len(evs))
	w.wait(t, e, int64(len(evs)+2))
	wm := ev.Watermark()
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(base+1799-60, 0).UTC(); !wm.Equal(want) {
		t.Fatalf("watermark %v, want %v", wm, want)
	}
	got := map[string]string{}
	for _, r := range rows(t, wh, TableWindowCounts, "window_start", "window_end", "dimension", "key", "events") {
		k := r["window_start"] + " " + r["dimension"] + "=" + r["key"]
		if _, dup := got[k]; dup {
			t.Fatalf("window %s emitted twice", k)
		}
		got[k] = r["events"]
	}
	// Independent count: every window [s, s+10m) with s a multiple of 1 min and
	// s+10m <= watermark.
	want := map[string]string{}
	for s := (base - 600) / 60 * 60; s+600 <= wm.Unix(); s += 60 {
		counts := map[string]int{}
		for _, e := range evs {
			if e.at >= s && e.at < s+600 {
				counts["action="+e.action]++
				counts["category="+e.category]++
			}
		}
		for k, n := range counts {
			want[time.Unix(s, 0).UTC().Format(time.RFC3339)+" "+k] = fmt.Sprint(n)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d window rows, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("window %s: got %s want %s", k, got[k], v)
		}
	}
	// The topic: the same counts, one record per window and key (no batch was replayed),
	// keyed dimension:key, with the batch's headers.
	fromTopic := map[string]string{}
	for _, r := range readTopic(t, addrs, "window_counts", len(got)) {
		var v struct {
			Start          time.Time `json:"window_start"`
			Dimension, Key string
			Events         int64
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != v.Dimension+":"+v.Key || len(r.Headers) != 2 || r.Headers[1].Key != streaming.HeaderBatchID {
			t.Fatalf("record key %q, headers %v for %s", r.Key, r.Headers, r.Value)
		}
		fromTopic[v.Start.Format(time.RFC3339)+" "+v.Dimension+"="+v.Key] = fmt.Sprint(v.Events)
	}
	if fmt.Sprint(fromTopic) != fmt.Sprint(got) {
		t.Fatalf("window counts topic differs from rt_window_counts:\n%v\n%v", fromTopic, got)
	}
	lateRows := rows(t, wh, TableLate, "action", "event_time", "watermark")
	if len(lateRows) != 2 {
		t.Fatalf("late rows %v", lateRows)
	}
	for _, r := range lateRows {
		if r["watermark"] <= r["event_time"] {
			t.Fatalf("late row not below its watermark: %v", r)
		}
	}
}

// createTopic creates topic (3 partitions) with kadm.
func createTopic(t *testing.T, addrs []string, topic string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

// readTopic reads the first n records of topic (all partitions) with kgo.
func readTopic(t *testing.T, addrs []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), n, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// TestResumeWithoutCheckpoint: the checkpoint is lost; the engine resumes from the
// tables' snapshot properties and nothing is written twice.
func TestResumeWithoutCheckpoint(t *testing.T) {
	addrs := testkafka.Start(t, "kfake", "events", 2)
	line := func(i int) testkafka.Record {
		return testkafka.Record{Partition: int32(i % 2), Value: []byte(fmt.Sprintf("u%d,i%d,c,pv,%d", i, i, 1511544070+i))}
	}
	var recs []testkafka.Record
	for i := range 3000 {
		recs = append(recs, line(i))
	}
	testkafka.Produce(t, addrs, "events", recs)
	wh := openWarehouse(t, t.TempDir())
	po := DefaultOptions()
	po.Interval = 20 * time.Millisecond
	w := newWaiter()
	cp := t.TempDir()
	_, e := startEvents(t, addrs, wh, cp, po, w)
	w.wait(t, e, 3000)
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(cp); err != nil {
		t.Fatal(err)
	}
	recs = recs[:0]
	for i := 3000; i < 4000; i++ {
		recs = append(recs, line(i))
	}
	testkafka.Produce(t, addrs, "events", recs)
	w2 := newWaiter()
	_, e = startEvents(t, addrs, wh, t.TempDir(), po, w2)
	w2.wait(t, e, 1000) // the replayed last batch is counted too; wait for the new ones
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// The count first: a batch committed after it counts past it, so the wait below
		// cannot miss the batch that brings the table to 4000 rows.
		seen := w2.count()
		if len(rows(t, wh, TableDWD, "offset")) >= 4000 {
			break
		}
		w2.wait(t, e, seen+1)
	}
	if err := e.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	dwd := rows(t, wh, TableDWD, "user_id")
	if len(dwd) != 4000 {
		t.Fatalf("dwd has %d rows, want 4000", len(dwd))
	}
	seen := map[string]bool{}
	for _, r := range dwd {
		if seen[r["user_id"]] {
			t.Fatalf("duplicate %s", r["user_id"])
		}
		seen[r["user_id"]] = true
	}
}

func TestBadConfig(t *testing.T) {
	wh := openWarehouse(t, t.TempDir())
	for _, o := range []Options{
		{Warehouse: wh, Formats: map[string]event.Options{"x": {Format: "csv", Header: true}}},
		{Warehouse: wh, Default: event.Options{Format: "xml"}},
		{Warehouse: wh, Windows: WindowOptions{Length: time.Minute, Slide: 7 * time.Second}},
		{},
	} {
		if _, err := NewEvents(context.Background(), o); err == nil {
			t.Errorf("accepted %+v", o)
		}
	}
}

// TestParsedStringsStayInTheirBatch: parsed strings view the records' bytes (valid for
// the batch only); window keys kept for later batches must not. The first batch's
// record bytes are overwritten before the batch that closes its windows runs.
func TestParsedStringsStayInTheirBatch(t *testing.T) {
	wh := openWarehouse(t, t.TempDir())
	po := DefaultOptions()
	po.Warehouse = wh
	po.Windows = WindowOptions{Length: time.Minute, Slide: time.Minute}
	ev, err := NewEvents(context.Background(), po)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC).Unix()
	var recs []streaming.Record
	for i := range 30 {
		recs = append(recs, streaming.Record{Topic: "events", Offset: int64(i), Time: time.Unix(base, 0),
			Value: fmt.Appendf(nil, "u%d,i%d,cat%d,%s,%d", i, i, i%3, [...]string{"pv", "buy"}[i%2], base+int64(i))})
	}
	run := func(id int64, rs []streaming.Record) {
		if err := ev.Job.RunBatch(context.Background(), streaming.BatchInfo{ID: id, Time: time.Unix(base+id, 0)}, rs); err != nil {
			t.Fatal(err)
		}
	}
	run(0, recs)
	for _, r := range recs {
		for i := range r.Value {
			r.Value[i] = 'X'
		}
	}
	run(1, []streaming.Record{{Topic: "events", Offset: 30, Time: time.Unix(base, 0), Value: fmt.Appendf(nil, "u,i,cat9,pv,%d", base+3600)}})
	got := map[string]string{}
	for _, r := range rows(t, wh, TableWindowCounts, "dimension", "key", "events") {
		got[r["dimension"]+"="+r["key"]] = r["events"]
	}
	want := map[string]string{"action=pv": "15", "action=buy": "15", "category=cat0": "10", "category=cat1": "10", "category=cat2": "10"}
	if !maps.Equal(got, want) {
		t.Fatalf("window counts %v, want %v", got, want)
	}
	users := rows(t, wh, TableDWD, "user_id")
	if len(users) != 31 || users[0]["user_id"] != "u0" {
		t.Fatalf("dwd users %v", users)
	}
}
