package broker

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/quota"
)

// A sessionless fetch (epoch -1) is served whatever its session id; an incremental fetch
// on an unknown session is refused with FETCH_SESSION_ID_NOT_FOUND.
func TestFetchSessionEpochs(t *testing.T) {
	b := startBroker(t, testOptions(t))
	c := dialRaw(t, b.Addr())
	c.send(produceReq(-1, "sessions", 0, batch(3, 1000, []byte("r"))))
	c.read(&kmsg.ProduceResponse{Version: 9})

	req := fetchReq("sessions", 0, 0, 0)
	req.SessionID, req.SessionEpoch = -1, -1
	c.send(req)
	resp := &kmsg.FetchResponse{Version: 12}
	c.read(resp)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("sessionless fetch with id -1: %+v", resp)
	}

	req = fetchReq("sessions", 0, 0, 0)
	req.SessionID, req.SessionEpoch = 42, 3
	c.send(req)
	resp = &kmsg.FetchResponse{Version: 12}
	c.read(resp)
	if resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("incremental fetch on unknown session: error %d", resp.ErrorCode)
	}
}

// sessionFetch is a Fetch v12 on session id at epoch, naming parts (partition → fetch
// offset) of topic and forgetting forget; maxWait 0 answers at once.
func sessionFetch(id, epoch int32, topic string, parts map[int32]int64, forget []int32, maxWait int32) *kmsg.FetchRequest {
	r := fetchReq(topic, 0, 0, maxWait)
	r.SessionID, r.SessionEpoch = id, epoch
	r.Topics = nil
	if len(parts) > 0 {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		for p := int32(0); p < 100; p++ {
			if off, ok := parts[p]; ok {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, 1<<20
				rt.Partitions = append(rt.Partitions, rp)
			}
		}
		r.Topics = append(r.Topics, rt)
	}
	if len(forget) > 0 {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.Partitions = topic, forget
		r.ForgottenTopics = append(r.ForgottenTopics, ft)
	}
	return r
}

func (c *rawConn) fetch(req *kmsg.FetchRequest) *kmsg.FetchResponse {
	c.t.Helper()
	c.send(req)
	resp := &kmsg.FetchResponse{Version: req.Version}
	c.read(resp)
	return resp
}

// answered lists the partitions of topic in resp, each with its record bytes' length
// (0: none) and error code, as "p:records/error".
func answered(resp *kmsg.FetchResponse) []string {
	var out []string
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			rec := "none"
			if len(sp.RecordBatches) > 0 {
				rec = "records"
			}
			out = append(out, fmt.Sprintf("%s-%d:%s/%d", st.Topic, sp.Partition, rec, sp.ErrorCode))
		}
	}
	return out
}

func produceTo(t *testing.T, b *Broker, topic string, partition int32, n int) {
	t.Helper()
	if _, err := b.partition(topic, partition).log.Append(batch(n, 1000, []byte("v"))); err != nil {
		t.Fatal(err)
	}
}

// The protocol of an incremental session, step by step, against Kafka's FetchSession
// rules: a full fetch at epoch 0 opens a session; incremental fetches answer only the
// partitions with news (records, a moved high watermark, an error), add the partitions
// they name and drop the forgotten ones; a replayed epoch is INVALID_FETCH_SESSION_EPOCH;
// the session outlives its connection; a long-poll on it wakes on an append; FINAL
// (epoch -1) closes it.
func TestFetchSessionIncrementalProtocol(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "inc") // 3 partitions
	produceTo(t, b, "inc", 0, 2)
	c := dialRaw(t, b.Addr())
	expect := func(step string, resp *kmsg.FetchResponse, id int32, want ...string) {
		t.Helper()
		got := answered(resp)
		if resp.ErrorCode != 0 || resp.SessionID != id || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: error %d, session %d, partitions %v; want session %d, partitions %v", step, resp.ErrorCode, resp.SessionID, got, id, want)
		}
	}

	full := c.fetch(sessionFetch(0, 0, "inc", map[int32]int64{0: 0, 1: 0, 2: 0}, nil, 0))
	id := full.SessionID
	if id == 0 {
		t.Fatal("a full fetch at epoch 0 got no session")
	}
	expect("full", full, id, "inc-0:records/0", "inc-1:none/0", "inc-2:none/0")
	if n := metricValue(b.fetchSessions.gauge); n != 1 {
		t.Fatalf("%v sessions cached, want 1", n)
	}

	// Partition 0 read to its end: nothing new anywhere, so nothing answered.
	expect("epoch 1, caught up", c.fetch(sessionFetch(id, 1, "inc", map[int32]int64{0: 2}, nil, 0)), id)
	// A record on partition 1: only it is answered, from the offset the session holds.
	produceTo(t, b, "inc", 1, 1)
	expect("epoch 2, news on 1", c.fetch(sessionFetch(id, 2, "inc", nil, nil, 0)), id, "inc-1:records/0")
	// The same epoch again: refused, and the session is still there at the next one.
	r := c.fetch(sessionFetch(id, 2, "inc", nil, nil, 0))
	if r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || len(r.Topics) != 0 {
		t.Fatalf("replayed epoch 2: error %d, %d topics; want INVALID_FETCH_SESSION_EPOCH", r.ErrorCode, len(r.Topics))
	}
	r = c.fetch(sessionFetch(id, 9, "inc", nil, nil, 0))
	if r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("epoch 9 (session at 3): error %d", r.ErrorCode)
	}
	// Partition 1 advanced, partition 2 forgotten: a record on 2 is no news for the session.
	produceTo(t, b, "inc", 2, 1)
	expect("epoch 3, forget 2", c.fetch(sessionFetch(id, 3, "inc", map[int32]int64{1: 1}, []int32{2}, 0)), id)
	// An unknown partition added: answered with its error every time.
	r = c.fetch(sessionFetch(id, 4, "inc", map[int32]int64{7: 0}, nil, 0))
	expect("epoch 4, unknown partition", r, id, "inc-7:none/3")
	expect("epoch 5, still unknown", c.fetch(sessionFetch(id, 5, "inc", nil, nil, 0)), id, "inc-7:none/3")
	expect("epoch 6, forget 7", c.fetch(sessionFetch(id, 6, "inc", nil, []int32{7}, 0)), id)
	if n := metricValue(b.fetchSessions.partsGauge); n != 2 {
		t.Fatalf("%v partitions cached, want 2 (0 and 1)", n)
	}

	// Another connection goes on with the session, long-polling until an append wakes it.
	c2 := dialRaw(t, b.Addr())
	c2.send(sessionFetch(id, 7, "inc", nil, nil, 600_000))
	waitFetchWaiting(t, b)
	produceTo(t, b, "inc", 0, 1)
	r = &kmsg.FetchResponse{Version: 12}
	c2.read(r)
	expect("epoch 7 on a new connection, long-poll", r, id, "inc-0:records/0")
	// The log start moving is news too (DeleteRecords).
	if _, err := b.partition("inc", 1).log.DeleteRecordsBefore(1); err != nil {
		t.Fatal(err)
	}
	expect("epoch 8, log start moved", c2.fetch(sessionFetch(id, 8, "inc", map[int32]int64{0: 3}, nil, 0)), id, "inc-1:none/0")

	// FINAL closes the session: a full, sessionless answer, then the id is unknown.
	expect("final", c2.fetch(sessionFetch(id, -1, "inc", map[int32]int64{0: 3}, nil, 0)), 0, "inc-0:none/0")
	r = c2.fetch(sessionFetch(id, 9, "inc", nil, nil, 0))
	if r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("after FINAL: error %d, want FETCH_SESSION_ID_NOT_FOUND", r.ErrorCode)
	}
	if n := metricValue(b.fetchSessions.gauge); n != 0 {
		t.Fatalf("%v sessions cached after FINAL, want 0", n)
	}

	// Forgetting every partition closes a session too (sessionless answer).
	id = c.fetch(sessionFetch(0, 0, "inc", map[int32]int64{0: 0}, nil, 0)).SessionID
	expect("forget all", c.fetch(sessionFetch(id, 1, "inc", nil, []int32{0}, 0)), 0)
	if r := c.fetch(sessionFetch(id, 2, "inc", nil, nil, 0)); r.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("after forgetting all: error %d", r.ErrorCode)
	}
	if n := metricValue(b.fetchSessions.incrementalFetches); n != 8 {
		t.Fatalf("%v incremental fetches counted, want 8", n)
	}
}

// Partitions that got records move to the end of the session, so a MaxBytes too small for
// all of them serves each in turn (Kafka's fairness rule).
func TestFetchSessionRoundRobin(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "rr")
	for p := int32(0); p < 3; p++ {
		produceTo(t, b, "rr", p, 1)
	}
	c := dialRaw(t, b.Addr())
	req := sessionFetch(0, 0, "rr", map[int32]int64{0: 0, 1: 0, 2: 0}, nil, 0)
	req.MaxBytes = 1 // the first partition with records only (KIP-74)
	r := c.fetch(req)
	id := r.SessionID
	if got := fmt.Sprint(answered(r)); got != "[rr-0:records/0 rr-1:none/0 rr-2:none/0]" {
		t.Fatalf("full: %s", got)
	}
	// The full fetch keeps the request's order (0, 1, 2); 0 is at its end, 1 is served
	// and moves behind 2.
	step := func(epoch int32, offsets map[int32]int64, want string) {
		t.Helper()
		req := sessionFetch(id, epoch, "rr", offsets, nil, 0)
		req.MaxBytes = 1
		if got := fmt.Sprint(answered(c.fetch(req))); got != want {
			t.Fatalf("epoch %d: %s, want %s", epoch, got, want)
		}
	}
	step(1, map[int32]int64{0: 1}, "[rr-1:records/0]")
	// Order 0, 2, 1: with records on 0 and 2, 0 first; then 2, 1, 0 with records on 2 and
	// 1: 2, and 1 answered without records for its new high watermark; then 1, 0, 2: 1.
	produceTo(t, b, "rr", 0, 1)
	step(2, map[int32]int64{1: 1}, "[rr-0:records/0]")
	produceTo(t, b, "rr", 1, 1)
	step(3, map[int32]int64{0: 2}, "[rr-2:records/0 rr-1:none/0]")
	step(4, map[int32]int64{2: 1}, "[rr-1:records/0]")
}

type sessionClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *sessionClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *sessionClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Kafka's FetchSessionCache.tryEvict with one slot: a newcomer gets no session while the
// one cached is young; it evicts one created over 120 s ago only with more partitions;
// any session unused for over 120 s goes first. With no slots, no session at all.
func TestFetchSessionCacheEviction(t *testing.T) {
	o := testOptions(t)
	o.MaxIncrementalFetchSessionCacheSlots = 1
	clk := &sessionClock{t: time.Now()}
	o.Now = clk.now
	b := startBroker(t, o)
	createTopicRaw(t, b.Addr(), "ev")
	c := dialRaw(t, b.Addr())
	open := func(n int) int32 {
		parts := map[int32]int64{}
		for p := int32(0); p < int32(n); p++ {
			parts[p] = 0
		}
		return c.fetch(sessionFetch(0, 0, "ev", parts, nil, 0)).SessionID
	}
	alive := func(id, epoch int32) bool {
		r := c.fetch(sessionFetch(id, epoch, "ev", nil, nil, 0))
		return r.ErrorCode == 0 && r.SessionID == id
	}
	a := open(2)
	if a == 0 {
		t.Fatal("no session in an empty cache")
	}
	if id := open(3); id != 0 {
		t.Fatalf("a newcomer evicted a session created just now: %d", id)
	}
	clk.advance(100 * time.Second)
	if !alive(a, 1) {
		t.Fatal("session lost")
	}
	clk.advance(30 * time.Second) // created 130 s ago, used 30 s ago
	if id := open(2); id != 0 {
		t.Fatalf("a newcomer of the same size evicted: %d", id)
	}
	bigger := open(3)
	if bigger == 0 || bigger == a {
		t.Fatalf("a newcomer with more partitions got session %d", bigger)
	}
	if alive(a, 2) {
		t.Fatal("the evicted session still answers")
	}
	clk.advance(121 * time.Second) // unused too long: anyone takes its slot
	small := open(1)
	if small == 0 || alive(bigger, 1) {
		t.Fatalf("stale session not evicted: new %d", small)
	}
	if n := metricValue(b.fetchSessions.evictions); n != 2 {
		t.Fatalf("%v evictions, want 2", n)
	}
	_, adm := newAdmin(t, b.Addr())
	rcs, err := adm.DescribeBrokerConfigs(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	slots := "missing"
	for _, rc := range rcs {
		for _, kv := range rc.Configs {
			if kv.Key == "max.incremental.fetch.session.cache.slots" {
				slots = kv.MaybeValue() + " " + kv.Source.String()
			}
		}
	}
	if slots != "1 STATIC_BROKER_CONFIG" {
		t.Fatalf("max.incremental.fetch.session.cache.slots: %s, want 1 STATIC_BROKER_CONFIG", slots)
	}

	o = testOptions(t)
	o.MaxIncrementalFetchSessionCacheSlots = 0
	off := startBroker(t, o)
	createTopicRaw(t, off.Addr(), "ev")
	if r := dialRaw(t, off.Addr()).fetch(sessionFetch(0, 0, "ev", map[int32]int64{0: 0}, nil, 0)); r.SessionID != 0 || len(r.Topics) != 1 {
		t.Fatalf("sessions off: session %d, %d topics", r.SessionID, len(r.Topics))
	}
}

// franz-go uses fetch sessions on its own: a consumer of a wide topic gets a session and
// then sends incremental fetches, and still reads every record in order.
func TestFetchSessionFranzGoConsumer(t *testing.T) {
	b := startBroker(t, testOptions(t))
	ctx := testCtx(t)
	adm, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ct := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "wide", 16, 1
	ct.Topics = append(ct.Topics, rt)
	if _, err := ct.RequestWith(ctx, adm); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("wide"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("wide"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	next := map[int32]int64{}
	got := 0
	for round := 0; round < 5; round++ {
		// A few partitions get a record per round; the others have nothing new.
		for _, p := range []int32{int32(round), int32(round + 7)} {
			r := &kgo.Record{Partition: p, Value: []byte(fmt.Sprintf("%d/%d", p, round))}
			if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		for want := got + 2; got < want; {
			fs := cons.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("round %d: consumed %d: %v", round, got, err)
			}
			fs.EachError(func(_ string, p int32, err error) { t.Fatalf("partition %d: %v", p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				if r.Offset != next[r.Partition] {
					t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
				}
				next[r.Partition]++
				got++
			})
		}
	}
	if n := metricValue(b.fetchSessions.gauge); n < 1 {
		t.Fatalf("%v sessions cached: franz-go got none", n)
	}
	if n := metricValue(b.fetchSessions.incrementalFetches); n < 5 {
		t.Fatalf("%v incremental fetches: franz-go's fetches were not incremental", n)
	}
	if n := metricValue(b.fetchSessions.errorFetches); n != 0 {
		t.Fatalf("%v session errors", n)
	}
}

// A fetch throttled by a consumer quota is answered empty (quota.go) and, as Kafka's
// FetchContext.getThrottledResponse: a full fetch creates no session (id 0), an
// incremental one keeps its session id and epoch; what it would have answered is not
// remembered, so the next fetch reports the partition again.
func TestFetchSessionThrottled(t *testing.T) {
	b, clk := startQuotaClockBroker(t, "ft")
	produceTo(t, b, "ft", 0, 20)
	fetch := func(id, epoch int32, offset int64) *kmsg.FetchResponse {
		return roundTrip[*kmsg.FetchResponse](t, b.Addr(), sessionFetch(id, epoch, "ft", map[int32]int64{0: offset}, nil, 0))
	}
	size := 4 + len(fetch(0, 0, 0).AppendTo(nil)) // a session's answer, before any quota
	setQuota(t, b, quota.Fetch, float64(size)/10)
	first := fetch(0, 0, 0) // the whole quota's worth: served
	id := first.SessionID
	if id == 0 || len(answered(first)) != 1 {
		t.Fatalf("first fetch: session %d, %v", id, answered(first))
	}
	if r := fetch(0, 0, 0); r.ThrottleMillis == 0 || r.SessionID != 0 || len(r.Topics) != 0 {
		t.Fatalf("throttled full fetch: throttle %d ms, session %d, %d topics", r.ThrottleMillis, r.SessionID, len(r.Topics))
	}
	if n := metricValue(b.fetchSessions.gauge); n != 2 {
		t.Fatalf("%v sessions, want 2: the throttled full fetch created one", n)
	}
	if r := fetch(id, 1, 20); r.ThrottleMillis == 0 || r.SessionID != id || r.ErrorCode != 0 || len(r.Topics) != 0 {
		t.Fatalf("throttled incremental fetch: throttle %d ms, session %d, error %d, %d topics", r.ThrottleMillis, r.SessionID, r.ErrorCode, len(r.Topics))
	}
	clk.advance(20 * time.Second)
	if r := fetch(id, 2, 20); r.ThrottleMillis != 0 || r.SessionID != id || fmt.Sprint(answered(r)) != "[ft-0:none/0]" {
		t.Fatalf("after the throttle: throttle %d ms, session %d, %v; want ft-0 reported again", r.ThrottleMillis, r.SessionID, answered(r))
	}
}

// Two fetches on one session at once (two connections): the one that began first ends
// after the other moved the session on. It is answered INVALID_FETCH_SESSION_EPOCH with
// no partitions even though it had read records to send by file section, and the broker
// goes on (those sections are released, not looked for in the response); likewise a
// partition the other fetch forgot is left out of its answer.
func TestFetchSessionConcurrentFetches(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "clash") // 3 partitions
	c := dialRaw(t, b.Addr())
	id := c.fetch(sessionFetch(0, 0, "clash", map[int32]int64{0: 0, 1: 0}, nil, 0)).SessionID
	if id == 0 {
		t.Fatal("no session")
	}
	// Epoch 1 long-polls on connection 2; epoch 2 on connection 1 moves the session on
	// while it waits; then a record wakes the first.
	c2 := dialRaw(t, b.Addr())
	c2.send(sessionFetch(id, 1, "clash", nil, nil, 600_000))
	waitFetchWaiting(t, b)
	if r := c.fetch(sessionFetch(id, 2, "clash", nil, nil, 0)); r.ErrorCode != 0 {
		t.Fatalf("epoch 2: error %d", r.ErrorCode)
	}
	produceTo(t, b, "clash", 0, 3)
	r := &kmsg.FetchResponse{Version: 12}
	c2.read(r)
	if r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || len(r.Topics) != 0 {
		t.Fatalf("the overtaken fetch: error %d, %d topics; want INVALID_FETCH_SESSION_EPOCH and none", r.ErrorCode, len(r.Topics))
	}
	// Partition 1 forgotten by epoch 4 while epoch 3 waits; records on both wake epoch 3,
	// which still answers partition 0's.
	c2.send(sessionFetch(id, 3, "clash", map[int32]int64{0: 3}, nil, 600_000))
	waitFetchWaiting(t, b)
	c3 := dialRaw(t, b.Addr())
	r4 := c3.fetch(sessionFetch(id, 4, "clash", nil, []int32{1}, 0))
	if r4.ErrorCode != 0 {
		t.Fatalf("epoch 4: error %d", r4.ErrorCode)
	}
	produceTo(t, b, "clash", 1, 1)
	r = &kmsg.FetchResponse{Version: 12}
	c2.read(r)
	if r.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("epoch 3 after epoch 4: error %d", r.ErrorCode)
	}
	// The broker still serves the session.
	produceTo(t, b, "clash", 0, 1)
	if got := answered(c.fetch(sessionFetch(id, 5, "clash", nil, nil, 0))); fmt.Sprint(got) != "[clash-0:records/0]" {
		t.Fatalf("epoch 5: %v", got)
	}
}
