package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/broker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tagTable answers the console's tag queries the way the sql room would, from fixed rows.
func tagTable(_ context.Context, sql string, args ...any) (*Table, error) {
	switch {
	case strings.Contains(sql, "least(floor"):
		return &Table{Columns: []string{"b", "n"}, Rows: [][]any{{int32(2), int64(5)}, {int32(9), int64(1)}}}, nil
	case strings.Contains(sql, "GROUP BY tag"):
		return &Table{Columns: []string{"tag", "users", "w"}, Rows: [][]any{{"Comedy", int64(40), 0.4}, {"Drama", int64(30), 0.3}}}, nil
	case strings.Contains(sql, "information_schema.tables"):
		return &Table{Columns: []string{"n"}, Rows: [][]any{{int64(1)}}}, nil
	case strings.Contains(sql, "WHERE CAST(user_id"):
		return &Table{Columns: []string{"rank", "tag"}, Rows: [][]any{{int64(1), "Comedy <b>"}}}, nil
	}
	return &Table{Columns: []string{"q"}, Rows: [][]any{{sql}}}, nil
}

func TestConsolePagesAndStatus(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("events"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	// A group that has read 4 of the 10 records: lag 6.
	gcl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumerGroup("readers"),
		kgo.ConsumeTopics("events"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	var seen []*kgo.Record
	for len(seen) < 10 {
		fs := gcl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, fs.Records()...)
	}
	var commit []*kgo.Record
	for _, r := range seen {
		if r.Partition == seen[0].Partition {
			commit = append(commit, r)
		}
	}
	if err := gcl.CommitRecords(ctx, commit...); err != nil {
		t.Fatal(err)
	}
	gcl.Close()

	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tagpipe_ingest_events_received_total", Help: "lines read"}, []string{"source"})
	reg.MustRegister(c)
	c.WithLabelValues("spool").Add(7)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	con := New(Options{
		Bootstrap: cluster.ListenAddrs(),
		Gatherer:  reg,
		Query:     tagTable,
		Batches: func() []Batch {
			return []Batch{{Pipeline: "events", ID: 1, Time: now, Records: 10, InputRate: 2, ProcessingTime: time.Second},
				{Pipeline: "events", ID: 2, Time: now.Add(5 * time.Second), Records: 20, InputRate: 4, ProcessingTime: 2 * time.Second}}
		},
		JobRuns: func(context.Context, int) ([]JobRun, error) {
			return []JobRun{{Job: "tags", DS: "2018-09-24", State: "success", Attempt: 1, Start: now, End: now.Add(3 * time.Second), Rows: 100}}, nil
		},
		JobPools: func(context.Context) ([]JobPool, error) {
			return []JobPool{{Name: "default_pool", Slots: 4, Used: 1, Open: 3},
				{Name: "warehouse_db", Slots: 2, Shared: true, Used: 2, Queued: 3, Holders: []string{"slot-0: h:12 tags/2018-09-24", "slot-1: h:13 rfm/2018-09-24"}}}, nil
		},
	})
	defer con.Close()

	st := con.Status(ctx)
	if len(st.Errors) != 0 {
		t.Fatalf("errors: %v", st.Errors)
	}
	if len(st.Topics) != 1 || st.Topics[0].Records != 10 || len(st.Topics[0].Partitions) != 3 {
		t.Fatalf("topics: %+v", st.Topics)
	}
	if len(st.Groups) != 1 || st.Groups[0].Name != "readers" || st.Groups[0].Lag != int64(10-len(commit)) {
		t.Fatalf("groups: %+v (committed %d)", st.Groups, len(commit))
	}
	if len(st.Ingest) != 1 || st.Ingest[0].Value != 7 {
		t.Fatalf("ingest: %+v", st.Ingest)
	}
	if len(st.Tags) != 2 || st.Weights[2].Count != 5 || st.Weights[9].Count != 1 {
		t.Fatalf("tags: %+v %+v", st.Tags, st.Weights)
	}
	if len(st.Pools) != 2 || st.Pools[1].Queued != 3 {
		t.Fatalf("pools: %+v", st.Pools)
	}
	var text strings.Builder
	if err := st.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^== job pools\nPOOL\s+SLOTS\s+USED\s+OPEN\s+QUEUED\s+SCOPE\ndefault_pool\s+4\s+1\s+3\s+0\s+slots: this scheduler; queued: data dir\nwarehouse_db\s+2\s+2\s+0\s+3\s+data dir$`).MatchString(text.String()) {
		t.Fatalf("tagpipe status text lacks the pools:\n%s", text.String())
	}

	srv := httptest.NewServer(con.Handler())
	defer srv.Close()
	for _, p := range pages {
		resp, err := http.Get(srv.URL + "/console/" + p.path + "?id=7")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", p.path, resp.StatusCode, body)
		}
		page := string(body)
		if !strings.Contains(page, "<title>tagpipe · "+p.title) || strings.Contains(page, "class=\"err\"") {
			t.Fatalf("%s: unexpected page:\n%s", p.path, page)
		}
		if p.tmpl != "user" && p.tmpl != "sql" && !strings.Contains(page, "<svg") {
			t.Fatalf("%s: no chart", p.path)
		}
		if strings.Contains(page, "no data yet") {
			t.Fatalf("%s: empty chart on a page with data:\n%s", p.path, page)
		}
		if p.tmpl == "user" && !strings.Contains(page, "Comedy &lt;b&gt;") {
			t.Fatalf("user page must show escaped tags:\n%s", page)
		}
		if p.tmpl == "jobs" && !regexp.MustCompile(`<tr><td>warehouse_db</td><td class="n">2</td><td class="n">2</td><td class="n">0</td><td class="n">3</td><td>data dir</td><td>slot-0: h:12 tags/2018-09-24<br>slot-1: h:13 rfm/2018-09-24</td></tr>`).MatchString(page) {
			t.Fatalf("jobs page lacks the pools:\n%s", page)
		}
	}
	resp, err := http.PostForm(srv.URL+"/console/sql", url.Values{"q": {"SELECT 42"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "<td>SELECT 42</td>") {
		t.Fatalf("sql box result missing:\n%s", body)
	}
	resp, err = http.Get(srv.URL + "/console/status.json")
	if err != nil {
		t.Fatal(err)
	}
	var got Status
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || len(got.Topics) != 1 || len(got.Jobs) != 1 || len(got.Pools) != 2 {
		t.Fatalf("status.json: %v %+v", err, got)
	}
	http.DefaultClient.CloseIdleConnections()
}

// A page gathers only the panels it shows: the jobs page runs no tag query and asks no
// broker (none is configured here, so asking would show an error).
func TestPagesGatherOnlyTheirPanels(t *testing.T) {
	var queries atomic.Int64
	con := New(Options{
		Query: func(ctx context.Context, sql string, args ...any) (*Table, error) {
			queries.Add(1)
			return tagTable(ctx, sql, args...)
		},
		JobRuns: func(context.Context, int) ([]JobRun, error) { return []JobRun{{Job: "tags", State: "success"}}, nil },
	})
	defer con.Close()
	srv := httptest.NewServer(con.Handler())
	defer srv.Close()
	get := func(path string) string {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if page := get("/console/jobs"); strings.Contains(page, "class=\"err\"") || queries.Load() != 0 {
		t.Errorf("jobs page ran %d tag queries or showed an error:\n%s", queries.Load(), page)
	}
	if get("/console/tags"); queries.Load() == 0 {
		t.Error("tags page ran no tag query")
	}
	if page := get("/console/"); !strings.Contains(page, "no Kafka bootstrap servers configured") {
		t.Errorf("overview does not report the missing broker:\n%s", page)
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestUnknownPageIsNotFound: a page the console does not have is a 404, not the overview
// (the overview's pattern matched everything under /console/).
func TestUnknownPageIsNotFound(t *testing.T) {
	con := New(Options{})
	defer con.Close()
	srv := httptest.NewServer(con.Handler())
	defer srv.Close()
	for path, want := range map[string]int{"/console/": 200, "/console/nosuch": 404, "/console/tables": 404, "/": 200} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestNoTagsYet: before the first tag run there is no ads_user_interest_tags table; the
// tag panels are empty with a note saying what to run, not an error.
func TestNoTagsYet(t *testing.T) {
	con := New(Options{Query: func(_ context.Context, sql string, _ ...any) (*Table, error) {
		if strings.Contains(sql, "information_schema.tables") {
			return &Table{Columns: []string{"n"}, Rows: [][]any{{int64(0)}}}, nil
		}
		return nil, errors.New("Catalog Error: Table with name ads_user_interest_tags does not exist!")
	}})
	defer con.Close()
	st := con.status(context.Background(), panelTags)
	if len(st.Errors) != 0 || st.TagsNote != noTagsYet || len(st.Tags) != 0 {
		t.Fatalf("errors %v, note %q, tags %v", st.Errors, st.TagsNote, st.Tags)
	}
	var b strings.Builder
	if err := st.WriteText(&b); err != nil || !strings.Contains(b.String(), "tagpipe tags run") || strings.Contains(b.String(), "== errors") {
		t.Fatalf("text: %v\n%s", err, b.String())
	}
}

// A KIP-848 consumer group (group.protocol=consumer), which DescribeGroups answers Dead,
// is shown with its state, members and lag (ConsumerGroupDescribe). Against the built-in
// broker: kfake's ConsumerGroupDescribe leaves the topic names out.
func TestConsoleConsumerProtocolGroup(t *testing.T) {
	o := broker.DefaultOptions()
	o.Dir, o.Listen = t.TempDir(), "127.0.0.1:0"
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := broker.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Stop(context.Background())
	addrs := []string{b.Addr()}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("events"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	gcl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup("next-gen"), kgo.ClientID("reader-1"),
		kgo.ConsumeTopics("events"), kgo.ServerSideBalancer(), kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer gcl.Close()
	var seen []*kgo.Record
	for len(seen) < 10 {
		fs := gcl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, fs.Records()...)
	}
	if err := gcl.CommitRecords(ctx, seen[0]); err != nil { // offset 1
		t.Fatal(err)
	}
	con := New(Options{Bootstrap: addrs, Query: tagTable})
	defer con.Close()
	st := con.Status(ctx)
	if len(st.Groups) != 1 {
		t.Fatalf("groups: %+v (errors %v)", st.Groups, st.Errors)
	}
	g := st.Groups[0]
	// The sticky partitioner put the 10 records in one partition: lag 9 there, 0 in the other.
	if g.Name != "next-gen" || g.State != "Stable" || g.Members != 1 || g.Lag != 9 || len(g.Partitions) != 2 {
		t.Fatalf("group: %+v", g)
	}
	for _, p := range g.Partitions {
		if p.Member != "reader-1" {
			t.Fatalf("partition %d owner %q, want reader-1: %+v", p.Partition, p.Member, g)
		}
	}
}
