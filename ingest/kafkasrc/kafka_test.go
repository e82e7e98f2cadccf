package kafkasrc

import (
	"context"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/channel"
	"github.com/tagpipe/tagpipe/ingest/internal/chantest"
	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// start runs a source reading topic "in" from the start, in small batches, into ch.
func start(t *testing.T, name, addr, group string, ch ingest.Channel, mod func(*Options)) (*Source, *ingest.Counters) {
	t.Helper()
	c := ingest.NewMetrics(nil).Component("a", "source", name, "kafka")
	o := DefaultOptions()
	o.Brokers, o.Topics, o.GroupID, o.StartLatest = []string{addr}, []string{"in"}, group, false
	o.BatchSize, o.BatchDuration = 100, 50*time.Millisecond
	// kfake's smallest session timeout is 6 s; heartbeats often, so a member learns of
	// a rebalance quickly.
	o.SessionTimeout, o.HeartbeatInterval, o.RebalanceTimeout = 10*time.Second, 100*time.Millisecond, 10*time.Second
	o.TopicRefresh = 300 * time.Millisecond
	o.Log, o.C = testLog(), c
	if mod != nil {
		mod(&o)
	}
	s, err := New(name, o, &ingest.Processor{Channels: []ingest.Channel{ch}, C: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Stop(ctx)
	})
	return s, c
}

// startBroker starts a backend with topics; it stops after the sources (cleanups run
// last first).
func startBroker(t *testing.T, be kafkatest.Backend, topics map[string]int32) (string, *kadm.Client) {
	t.Helper()
	b := be.Start(t, t.TempDir(), 0, topics)
	t.Cleanup(b.Stop)
	return b.Addr(), admin(t, b.Addr())
}

func admin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// produce writes records n0..n1-1 to topic: value "v<n>", key "k<n>" for even n (odd
// ones have none), headers h=<n> and, every tenth, a repeated header.
func produce(t *testing.T, addr, topic string, n0, n1 int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for n := n0; n < n1; n++ {
		r := &kgo.Record{Topic: topic, Value: []byte("v" + strconv.Itoa(n)),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte(strconv.Itoa(n))}}}
		if n%2 == 0 {
			r.Key = []byte("k" + strconv.Itoa(n))
		}
		if n%10 == 0 {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: "h", Value: []byte("last")})
		}
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committed sums the group's committed offsets of topic (the records it read, when the
// topic's partitions start at 0).
func committed(t *testing.T, adm *kadm.Client, group, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	var n int64
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.Topic == topic && o.At > 0 {
			n += o.At
		}
	})
	return n
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// number is the n of an event "v<n>".
func number(t *testing.T, e ingest.Event) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(string(e.Body), "v"))
	if err != nil {
		t.Fatalf("event body %q", e.Body)
	}
	return n
}

// TestRecordsToChannel: 1000 records (keys, headers, one over-long value) arrive as
// events with the record's headers and the source's (topic, partition, offset,
// timestamp, key, event_id); the group's offsets reach the end once they are in the
// channel.
func TestRecordsToChannel(t *testing.T) {
	for _, be := range kafkatest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			addr, adm := startBroker(t, be, map[string]int32{"in": 3})
			produce(t, addr, "in", 0, 1000)
			long := strings.Repeat("x", 300)
			cl, _ := kgo.NewClient(kgo.SeedBrokers(addr))
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Value: []byte(long),
				Headers: []kgo.RecordHeader{{Key: "event_id", Value: []byte("upstream-1")}, {Key: "topic", Value: []byte("elsewhere")}}}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			cl.Close()
			ch := channel.NewMemory("m", channel.MemoryOptions{Capacity: 5000})
			before := time.Now().Add(-time.Minute).UnixMilli()
			_, c := start(t, "k", addr, "g", ch, func(o *Options) { o.MaxLineBytes = 200 })
			evs := chantest.Take(t, ch, 1001)
			seen := map[int]bool{}
			ids := map[string]bool{}
			for _, e := range evs {
				h := e.Headers.Map()
				ids[h["event_id"]] = true
				if len(e.Body) == 200 {
					if h["error"] != "line too long: 300 bytes, cut at 200" || h["event_id"] != "upstream-1" || h["topic"] != "elsewhere" {
						t.Fatalf("over-long value: headers %v", h)
					}
					continue
				}
				n := number(t, e)
				if seen[n] {
					t.Fatalf("record %d twice", n)
				}
				seen[n] = true
				wantH := strconv.Itoa(n)
				if n%10 == 0 {
					wantH = "last"
				}
				ts, _ := strconv.ParseInt(h["timestamp"], 10, 64)
				if h["h"] != wantH || h["topic"] != "in" || h["partition"] == "" || h["offset"] == "" || ts < before ||
					h["event_id"] != "kafka-in-"+h["partition"]+"-"+h["offset"] || h["error"] != "" {
					t.Fatalf("record %d: headers %v", n, h)
				}
				if k, ok := h["key"]; (n%2 == 0) != ok || (ok && k != "k"+strconv.Itoa(n)) {
					t.Fatalf("record %d: key %q (set %v)", n, k, ok)
				}
			}
			if len(seen) != 1000 || len(ids) != 1001 {
				t.Fatalf("%d records, %d event ids", len(seen), len(ids))
			}
			waitFor(t, "offsets committed to the end", 10*time.Second, func() bool { return committed(t, adm, "g", "in") == 1001 })
			if c.Get("accepted") != 1001 || c.Get("bad_input") != 1 || c.Get("commits") == 0 || c.Get("commit_failures") != 0 {
				t.Fatalf("counters accepted %d bad_input %d commits %d commit_failures %d", c.Get("accepted"),
					c.Get("bad_input"), c.Get("commits"), c.Get("commit_failures"))
			}
		})
	}
}

// TestNothingCommittedBeforePut: while the channel refuses puts nothing is committed
// and the put is retried; once it accepts, every record arrives and is committed.
func TestNothingCommittedBeforePut(t *testing.T) {
	addr, adm := startBroker(t, kafkatest.Backends()[0], map[string]int32{"in": 2})
	produce(t, addr, "in", 0, 300)
	g := &chantest.Gate{Channel: channel.NewMemory("m", channel.MemoryOptions{})}
	_, c := start(t, "k", addr, "g", g, nil)
	waitFor(t, "refused puts", 10*time.Second, func() bool { return c.Get("put_failures") >= 3 })
	if n := committed(t, adm, "g", "in"); n != 0 || c.Get("commits") != 0 || c.Get("accepted") != 0 {
		t.Fatalf("committed %d records (%d commits, %d accepted) before the channel took any", n, c.Get("commits"), c.Get("accepted"))
	}
	g.Open.Store(true)
	evs := chantest.Take(t, g, 300)
	seen := map[int]bool{}
	for _, e := range evs {
		seen[number(t, e)] = true
	}
	if len(seen) != 300 {
		t.Fatalf("%d distinct records of 300", len(seen))
	}
	waitFor(t, "offsets committed", 10*time.Second, func() bool { return committed(t, adm, "g", "in") == 300 })
}

// TestRestartReadsOn: a source stopped while its put waits for room does not commit
// that batch; one started again with the same group reads on from the committed
// offsets: every record arrives, and only the batch that was in flight may come twice.
func TestRestartReadsOn(t *testing.T) {
	for _, be := range kafkatest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			addr, adm := startBroker(t, be, map[string]int32{"in": 2})
			produce(t, addr, "in", 0, 1000)
			// Room for two batches of 100: the third put waits.
			small := channel.NewMemory("small", channel.MemoryOptions{Capacity: 250})
			s1, c1 := start(t, "k1", addr, "g", small, nil)
			waitFor(t, "two batches put and committed", 10*time.Second, func() bool {
				return c1.Get("accepted") == 200 && committed(t, adm, "g", "in") == 200
			})
			time.Sleep(200 * time.Millisecond) // the third batch waits for room
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			if err := s1.Stop(ctx); err == nil {
				t.Fatal("Stop returned nil although the put was still waiting")
			}
			cancel()
			if n := committed(t, adm, "g", "in"); n != 200 || c1.Get("accepted") != 200 {
				t.Fatalf("after stop: committed %d, accepted %d, want 200 (the waiting batch not committed)", n, c1.Get("accepted"))
			}
			first := chantest.Take(t, small, 200)

			produce(t, addr, "in", 1000, 1500)
			big := channel.NewMemory("big", channel.MemoryOptions{})
			start(t, "k2", addr, "g", big, nil)
			rest := chantest.Take(t, big, 1300)
			count := map[int]int{}
			for _, e := range append(first, rest...) {
				count[number(t, e)]++
			}
			for n := 0; n < 1500; n++ {
				if count[n] != 1 {
					t.Fatalf("record %d arrived %d times", n, count[n])
				}
			}
			waitFor(t, "offsets committed to the end", 10*time.Second, func() bool { return committed(t, adm, "g", "in") == 1500 })
		})
	}
}

// TestGracefulStopCommits: Stop puts the batch read so far and commits it, so a source
// started again reads nothing twice.
func TestGracefulStopCommits(t *testing.T) {
	addr, adm := startBroker(t, kafkatest.Backends()[0], map[string]int32{"in": 1})
	produce(t, addr, "in", 0, 50)
	ch := channel.NewMemory("m", channel.MemoryOptions{})
	// Batches would be put only after a minute: Stop puts what was read.
	s1, c1 := start(t, "k1", addr, "g", ch, func(o *Options) { o.BatchDuration = time.Minute })
	time.Sleep(1500 * time.Millisecond) // the records are read, the batch is not due
	if c1.Get("accepted") != 0 {
		t.Fatalf("accepted %d before the batch was due", c1.Get("accepted"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	got := c1.Get("accepted")
	if n := committed(t, adm, "g", "in"); got == 0 || n != got {
		t.Fatalf("after stop: committed %d, accepted %d", n, got)
	}
	chantest.Take(t, ch, int(got))
	produce(t, addr, "in", 50, 60)
	start(t, "k2", addr, "g", ch, nil)
	for i, e := range chantest.Take(t, ch, 60-int(got)) {
		if n := number(t, e); n != int(got)+i {
			t.Fatalf("after a graceful stop at %d records, record %d came as %d", got, n, i)
		}
	}
}

// TestGroups: two sources of one group split the partitions (each record once); two
// groups each read every record.
func TestGroups(t *testing.T) {
	for _, be := range kafkatest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			addr, adm := startBroker(t, be, map[string]int32{"in": 4})
			q1 := channel.NewMemory("q1", channel.MemoryOptions{})
			q2 := channel.NewMemory("q2", channel.MemoryOptions{})
			p1 := channel.NewMemory("p1", channel.MemoryOptions{})
			p2 := channel.NewMemory("p2", channel.MemoryOptions{})
			start(t, "q1", addr, "queue", q1, nil)
			start(t, "q2", addr, "queue", q2, nil)
			start(t, "p1", addr, "sub1", p1, nil)
			start(t, "p2", addr, "sub2", p2, nil)
			waitFor(t, "two stable members of group queue owning 4 partitions", 30*time.Second, func() bool {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				gs, err := adm.DescribeGroups(ctx, "queue", "sub1", "sub2")
				if err != nil {
					return false
				}
				for name, members := range map[string]int{"queue": 2, "sub1": 1, "sub2": 1} {
					g := gs[name]
					assigned := 0
					for _, m := range g.Members {
						if ca, ok := m.Assigned.AsConsumer(); ok {
							for _, tp := range ca.Topics {
								assigned += len(tp.Partitions)
							}
						}
					}
					if g.State != "Stable" || len(g.Members) != members || assigned != 4 {
						return false
					}
				}
				return true
			})
			produce(t, addr, "in", 0, 400)
			for _, ch := range []ingest.Channel{p1, p2} {
				seen := map[int]bool{}
				for _, e := range chantest.Take(t, ch, 400) {
					seen[number(t, e)] = true
				}
				if len(seen) != 400 {
					t.Fatalf("group of %s read %d distinct records of 400", ch.Name(), len(seen))
				}
			}
			// The queue's two members share the 400 records, each from its own partitions.
			var got [2]map[string]int
			total := map[int]int{}
			for i, ch := range []ingest.Channel{q1, q2} {
				got[i] = map[string]int{}
				waitFor(t, "records in "+ch.Name(), 10*time.Second, func() bool { return ch.Stats().Events > 0 })
			}
			waitFor(t, "400 records across the queue", 10*time.Second, func() bool {
				return q1.Stats().Events+q2.Stats().Events >= 400
			})
			for i, ch := range []ingest.Channel{q1, q2} {
				for _, e := range chantest.Take(t, ch, int(ch.Stats().Events)) {
					total[number(t, e)]++
					got[i][e.Headers.Get("partition")]++
				}
			}
			for n := 0; n < 400; n++ {
				if total[n] != 1 {
					t.Fatalf("record %d read %d times by the queue group", n, total[n])
				}
			}
			for p := range got[0] {
				if got[1][p] > 0 {
					t.Fatalf("partition %s read by both members: %v %v", p, got[0], got[1])
				}
			}
		})
	}
}

// TestTopicsRegex: a regex subscription reads the matching topics (whole names only)
// and picks up a matching topic created later.
func TestTopicsRegex(t *testing.T) {
	addr, _ := startBroker(t, kafkatest.Backends()[0], map[string]int32{"logs.a": 1, "logs.b": 1, "xlogs.a": 1})
	produce(t, addr, "logs.a", 0, 10)
	produce(t, addr, "logs.b", 10, 20)
	produce(t, addr, "xlogs.a", 100, 110)
	ch := channel.NewMemory("m", channel.MemoryOptions{})
	_, c := start(t, "k", addr, "g", ch, func(o *Options) { o.Topics, o.TopicsRegex = nil, regexp.MustCompile(`logs\..*`) })
	topics := map[string]int{}
	for _, e := range chantest.Take(t, ch, 20) {
		topics[e.Headers.Get("topic")]++
	}
	if topics["logs.a"] != 10 || topics["logs.b"] != 10 {
		t.Fatalf("topics read: %v", topics)
	}
	kafkatest.CreateTopic(t, addr, "logs.c", 1)
	produce(t, addr, "logs.c", 20, 30)
	for _, e := range chantest.Take(t, ch, 10) {
		if e.Headers.Get("topic") != "logs.c" {
			t.Fatalf("unexpected event %q from %s", e.Body, e.Headers.Get("topic"))
		}
	}
	if c.Get("subscriptions") < 2 {
		t.Fatalf("subscriptions %d, want a second one for logs.c", c.Get("subscriptions"))
	}
	time.Sleep(300 * time.Millisecond)
	if n := ch.Stats().Events; n != 0 {
		t.Fatalf("%d more events (from xlogs.a?)", n)
	}
}

func TestOptionsChecked(t *testing.T) {
	if _, err := New("k", Options{Topics: []string{"in"}}, nil); err == nil || !strings.Contains(err.Error(), "no brokers") {
		t.Fatalf("no brokers: %v", err)
	}
	if _, err := New("k", Options{Brokers: []string{"x:1"}}, nil); err == nil || !strings.Contains(err.Error(), "no topics") {
		t.Fatalf("no topics: %v", err)
	}
}
