package broker

import (
	"context"
	"crypto/rand"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/quota"
)

// quotaOptions are test options with short quota windows (11 × 50 ms), so a throttled
// run takes a second or two instead of Kafka's 11 s windows.
func quotaOptions(t *testing.T) Options {
	o := testOptions(t)
	o.Quotas = quota.Options{WindowNum: 11, WindowSize: 50 * time.Millisecond}
	o.Registry = prometheus.NewRegistry()
	return o
}

// throttleHook counts the throttles a kgo client is told of.
type throttleHook struct {
	n     atomic.Int64
	after atomic.Int64 // of them, applied after the response (KIP-219)
	mu    sync.Mutex
	max   time.Duration
}

func (h *throttleHook) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, after bool) {
	if d <= 0 {
		return
	}
	h.n.Add(1)
	if after {
		h.after.Add(1)
	}
	h.mu.Lock()
	h.max = max(h.max, d)
	h.mu.Unlock()
}

func alterQuotas(t *testing.T, adm *kadm.Client, entries ...kadm.AlterClientQuotaEntry) {
	t.Helper()
	rs, err := adm.AlterClientQuotas(testCtx(t), entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Err != nil {
			t.Fatalf("alter %v: %v %s", r.Entity, r.Err, r.ErrMessage)
		}
	}
}

// describeAll renders every stored quota, sorted, as "entity key=value ...".
func describeAll(t *testing.T, adm *kadm.Client, strict bool, comps ...kadm.DescribeClientQuotaComponent) []string {
	t.Helper()
	qs, err := adm.DescribeClientQuotas(testCtx(t), strict, comps)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, q := range qs {
		var sb strings.Builder
		for _, e := range q.Entity {
			name := "<default>"
			if e.Name != nil {
				name = *e.Name
			}
			sb.WriteString(e.Type + "=" + name + " ")
		}
		for _, v := range q.Values {
			sb.WriteString(v.Key + "=" + strconv.FormatFloat(v.Value, 'f', -1, 64) + " ")
		}
		out = append(out, strings.TrimSpace(sb.String()))
	}
	return out
}

// kadm round trip: set user, client-id, user+client-id and default entities, describe
// them with Kafka's filters, restart, see them again; validate_only and removals.
func TestClientQuotasRoundTrip(t *testing.T) {
	o := quotaOptions(t)
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	alice, app := "alice", "app"
	alterQuotas(t, adm,
		kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}},
			Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1048576}, {Key: "request_percentage", Value: 12.5}}},
		kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}, {Type: "client-id", Name: &app}},
			Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: 2048}}},
		kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "user"}},
			Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 4096}}},
		kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "client-id"}},
			Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: 8192}}},
	)
	// validate_only checks and stores nothing.
	rs, err := adm.ValidateAlterClientQuotas(testCtx(t), []kadm.AlterClientQuotaEntry{{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &app}},
		Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1}}}})
	if err != nil || rs[0].Err != nil {
		t.Fatalf("validate: %v %v", rs, err)
	}
	want := []string{
		"client-id=<default> consumer_byte_rate=8192",
		"user=<default> producer_byte_rate=4096",
		"user=alice producer_byte_rate=1048576 request_percentage=12.5",
		"client-id=app user=alice consumer_byte_rate=2048",
	}
	check := func(when string) {
		t.Helper()
		if got := describeAll(t, adm, false); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s: all:\n%s\nwant:\n%s", when, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		exactAlice := kadm.DescribeClientQuotaComponent{Type: "user", MatchName: &alice, MatchType: kmsg.QuotasMatchTypeExact}
		if got := describeAll(t, adm, false, exactAlice); len(got) != 2 || got[0] != want[2] || got[1] != want[3] {
			t.Fatalf("%s: user alice: %v", when, got)
		}
		if got := describeAll(t, adm, true, exactAlice); len(got) != 1 || got[0] != want[2] {
			t.Fatalf("%s: user alice strict: %v", when, got)
		}
		if got := describeAll(t, adm, true, kadm.DescribeClientQuotaComponent{Type: "user", MatchType: kmsg.QuotasMatchTypeDefault}); len(got) != 1 || got[0] != want[1] {
			t.Fatalf("%s: default user: %v", when, got)
		}
		if got := describeAll(t, adm, false, kadm.DescribeClientQuotaComponent{Type: "client-id", MatchType: kmsg.QuotasMatchTypeAny}); len(got) != 2 || got[0] != want[0] || got[1] != want[3] {
			t.Fatalf("%s: any client-id: %v", when, got)
		}
	}
	check("before restart")
	if _, err := os.Stat(filepath.Join(o.Dir, quota.FileName)); err != nil {
		t.Fatal(err)
	}
	b = restartBroker(t, b, o)
	_, adm = newAdmin(t, b.Addr())
	check("after restart")
	// Removing the last quota of an entity removes the entity; removing one not set is fine.
	alterQuotas(t, adm, kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "client-id"}},
		Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Remove: true}, {Key: "producer_byte_rate", Remove: true}}})
	want = want[1:]
	if got := describeAll(t, adm, false); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after removal: %v", got)
	}
}

// produceFor produces records of size bytes until n bytes were acknowledged.
func produceFor(t *testing.T, cl *kgo.Client, topic string, size, n int) {
	t.Helper()
	for sent := 0; sent < n; {
		var rs []*kgo.Record
		for range 8 {
			val := make([]byte, size)
			_, _ = rand.Read(val) // incompressible: the quota counts bytes on the wire
			rs = append(rs, &kgo.Record{Topic: topic, Value: val})
		}
		if err := cl.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		sent += 8 * size
	}
}

// A franz-go producer over its producer_byte_rate quota is throttled: the broker tells
// it so (HookBrokerThrottle, after the response: KIP-219) and its rate, as the broker
// measures it, stays near the quota; removing the quota stops the throttling.
func TestProduceQuotaThrottles(t *testing.T) {
	o := quotaOptions(t)
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	const rate = 100 << 10 // bytes/s; the first 10 windows (0.5 s) pass unthrottled: 50 KiB
	client := "quota-producer"
	alterQuotas(t, adm, kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &client}},
		Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: rate}}})
	var hook throttleHook
	cl, _ := newAdmin(t, b.Addr(), kgo.ClientID(client), kgo.WithHooks(&hook), kgo.DefaultProduceTopic("pq"),
		kgo.ProducerBatchMaxBytes(16<<10), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0))
	produceFor(t, cl, "pq", 1000, 200<<10)
	if hook.n.Load() == 0 || hook.after.Load() != hook.n.Load() {
		t.Fatalf("throttles seen by the client: %d (after the response: %d)", hook.n.Load(), hook.after.Load())
	}
	st, ok := b.quotas.Stat(quota.Produce, quota.Tags{ClientID: client})
	t.Logf("broker: %d B recorded, rate %.0f B/s over %v, %d throttles (%v), client saw %d", int(st.Total), st.Rate, st.Window, st.Throttled, st.ThrottleTime, hook.n.Load())
	if !ok || st.Throttled == 0 || st.Total < 200<<10 {
		t.Fatalf("broker's accounting: %+v %v", st, ok)
	}
	// The broker's rate over its window: near the quota (one 16 KiB request over the
	// 0.55 s window is 29 KiB/s above it at most).
	if st.Rate > 1.5*rate || st.Rate < 0.25*rate {
		t.Fatalf("measured rate %.0f B/s over %v, quota %d", st.Rate, st.Window, rate)
	}
	// Metrics carry the entity.
	if !gatherHas(t, o.Registry, "tagpipe_broker_quota_throttled_total", client) {
		t.Fatal("no tagpipe_broker_quota_throttled_total series for the client")
	}
	// Removing the quota stops the throttling at once.
	alterQuotas(t, adm, kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "client-id", Name: &client}},
		Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Remove: true}}})
	before := hook.n.Load()
	produceFor(t, cl, "pq", 1000, 200<<10)
	if hook.n.Load() != before {
		t.Fatalf("%d throttles after the quota was removed", hook.n.Load()-before)
	}
}

// A default-user consumer quota throttles a franz-go consumer (an ANONYMOUS user here):
// throttled fetches are answered empty, every record still arrives, and the broker's
// measured rate stays near the quota.
func TestFetchQuotaThrottles(t *testing.T) {
	o := quotaOptions(t)
	b := startBroker(t, o)
	p, adm := newAdmin(t, b.Addr(), kgo.DefaultProduceTopic("fq"), kgo.AllowAutoTopicCreation(), kgo.ProducerBatchMaxBytes(8<<10))
	produceFor(t, p, "fq", 1000, 200<<10)
	const rate = 100 << 10
	alterQuotas(t, adm, kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "user"}},
		Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: rate}}})
	var hook throttleHook
	cl, _ := newAdmin(t, b.Addr(), kgo.ClientID("quota-consumer"), kgo.WithHooks(&hook), kgo.ConsumeTopics("fq"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	want := 0
	for _, pt := range b.topic("fq").parts {
		want += int(pt.log.HighWatermark())
	}
	got := 0
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for got < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", got, want, err)
		}
		got += fs.NumRecords()
	}
	if hook.n.Load() == 0 {
		t.Fatal("the consumer was never throttled")
	}
	st, ok := b.quotas.Stat(quota.Fetch, quota.Tags{User: anonymousUser})
	t.Logf("broker: %d B recorded, rate %.0f B/s over %v, %d throttles (%v), client saw %d", int(st.Total), st.Rate, st.Window, st.Throttled, st.ThrottleTime, hook.n.Load())
	if !ok || st.Throttled == 0 {
		t.Fatalf("broker's accounting: %+v %v", st, ok)
	}
	// A fetch is capped at 10 windows of quota (50 KiB); partitions are 8 KiB batches.
	if st.Rate > 1.5*rate {
		t.Fatalf("measured rate %.0f B/s over %v, quota %d", st.Rate, st.Window, rate)
	}
}

// acks=0 produce gets no response to carry a throttle: the connection is just muted,
// and the broker's rate stays near the quota.
func TestProduceQuotaAcksZero(t *testing.T) {
	o := quotaOptions(t)
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	createTopicRaw(t, b.Addr(), "pz")
	const rate = 100 << 10
	alterQuotas(t, adm, kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: kmsg.StringPtr(anonymousUser)}},
		Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: rate}}})
	cl, _ := newAdmin(t, b.Addr(), kgo.DefaultProduceTopic("pz"), kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchMaxBytes(16<<10), kgo.ProducerLinger(0))
	produceFor(t, cl, "pz", 1000, 150<<10)
	if err := cl.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	// Wait (bounded) for the broker to have read everything sent.
	deadline := time.Now().Add(30 * time.Second)
	var st quota.Stat
	for time.Now().Before(deadline) {
		st, _ = b.quotas.Stat(quota.Produce, quota.Tags{User: anonymousUser})
		if st.Total >= 150<<10 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Throttled == 0 || st.Total < 150<<10 {
		t.Fatalf("broker's accounting: %+v", st)
	}
	if st.Rate > 1.5*rate {
		t.Fatalf("measured rate %.0f B/s, quota %d", st.Rate, rate)
	}
}

func gatherHas(t *testing.T, reg *prometheus.Registry, name, label string) bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return true
				}
			}
		}
	}
	return false
}

// quotaClock is the quota manager's clock in tests: it reads t and then moves it on by
// tick, so each reading is a known instant and a request's measured time is a known
// number of readings.
type quotaClock struct {
	mu   sync.Mutex
	t    time.Time
	tick time.Duration
}

func (c *quotaClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.tick)
	return t
}

func (c *quotaClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *quotaClock) setTick(d time.Duration) {
	c.mu.Lock()
	c.tick = d
	c.mu.Unlock()
}

// startQuotaClockBroker starts a broker whose quotas use Kafka's windows (11 × 1 s) on
// a quotaClock, frozen until the test sets its tick, with topic created.
func startQuotaClockBroker(t *testing.T, topic string) (*Broker, *quotaClock) {
	t.Helper()
	o := testOptions(t)
	clk := &quotaClock{t: time.Unix(1_000_000, 0)}
	o.Quotas = quota.Options{WindowNum: 11, WindowSize: time.Second, Now: clk.now}
	b := startBroker(t, o)
	createTopicRaw(t, b.Addr(), topic)
	return b, clk
}

// setQuota sets one quota on the client id "test" (the raw connections' client id).
func setQuota(t *testing.T, b *Broker, typ quota.Type, v float64) {
	t.Helper()
	if err := b.quotas.Store().Alter([]quota.Alteration{{Entity: quota.Entity{ClientID: quota.N("test")},
		Set: map[quota.Type]float64{typ: v}}}); err != nil {
		t.Fatal(err)
	}
}

// Kafka's numbers for a consumer over its consumer_byte_rate, with a frozen clock and
// Kafka's windows (11 × 1 s): a response of S bytes against a quota of S/10 per second
// passes (S over the 10 windows a new client is measured over); a second one at the
// same instant is throttled (2S over 10 s is twice the quota: (2-1)/1 × 10 s) and
// answered empty, its bytes taken back out; 10 s later the first response is still in
// the window, so the retry is throttled 10 s again; 20 s after the first it has expired
// and the fetch is served. The client gets S per 20 s, half its quota: Kafka's
// behaviour (KafkaApis.handleFetchRequest unrecords a throttled fetch's bytes but
// throttles it as if they were sent), and why a consumer is throttled more than a
// producer of the same bytes: a throttled Produce's bytes stay recorded, so its throttle
// pays for them (here 10 s, then 20 s for the third request: 3R over 10 s).
func TestFetchQuotaThrottleTimesAsKafka(t *testing.T) {
	b, clk := startQuotaClockBroker(t, "ft")
	if _, err := b.partition("ft", 0).log.Append(batch(20, 1000, make([]byte, 1000))); err != nil {
		t.Fatal(err)
	}
	fetch := func() *kmsg.FetchResponse { // a fresh connection each: no waiting out the mute
		return roundTrip[*kmsg.FetchResponse](t, b.Addr(), fetchReq("ft", 0, 0, 0))
	}
	// Kafka's FetchResponse.sizeOf: the size field and the body.
	size := 4 + len(fetch().AppendTo(nil))
	setQuota(t, b, quota.Fetch, float64(size)/10)
	served := func(step string, r *kmsg.FetchResponse) {
		t.Helper()
		if r.ThrottleMillis != 0 || len(r.Topics) != 1 || len(r.Topics[0].Partitions[0].RecordBatches) == 0 {
			t.Fatalf("%s: throttle %d ms, %d topics: want the records, unthrottled", step, r.ThrottleMillis, len(r.Topics))
		}
		if got := 4 + len(r.AppendTo(nil)); got != size {
			t.Fatalf("%s: response of %d bytes, want %d", step, got, size)
		}
	}
	throttled := func(step string, r *kmsg.FetchResponse, ms int32) {
		t.Helper()
		if r.ThrottleMillis != ms || len(r.Topics) != 0 || r.ErrorCode != 0 || r.SessionID != 0 {
			t.Fatalf("%s: throttle %d ms, %d topics, error %d, session %d: want %d ms and an empty answer",
				step, r.ThrottleMillis, len(r.Topics), r.ErrorCode, r.SessionID, ms)
		}
	}
	served("first", fetch())
	throttled("second, same instant", fetch(), 10_000)
	clk.advance(10 * time.Second)
	throttled("after the throttle", fetch(), 10_000)
	clk.advance(10 * time.Second)
	served("20 s on", fetch())
	st, _ := b.quotas.Stat(quota.Fetch, quota.Tags{ClientID: "test"})
	if st.Total != float64(2*size) || st.Throttled != 2 || st.ThrottleTime != 20*time.Second {
		t.Fatalf("broker's accounting: %v recorded (want %d), %d throttles for %v", st.Total, 2*size, st.Throttled, st.ThrottleTime)
	}

	// The producer: the request's size (header and body), kept when throttled.
	req := produceReq(1, "ft", 1, batch(20, 1000, make([]byte, 1000)))
	reqSize := len(frameRequest(req, 1)) - 4
	setQuota(t, b, quota.Produce, float64(reqSize)/10)
	produce := func() int32 {
		r := roundTrip[*kmsg.ProduceResponse](t, b.Addr(), req)
		if ec := r.Topics[0].Partitions[0].ErrorCode; ec != 0 {
			t.Fatalf("produce: error %d", ec)
		}
		return r.ThrottleMillis
	}
	if ms := produce(); ms != 0 {
		t.Fatalf("first produce throttled %d ms", ms)
	}
	if ms := produce(); ms != 10_000 {
		t.Fatalf("second produce throttled %d ms, want 10000", ms)
	}
	clk.advance(10 * time.Second)
	if ms := produce(); ms != 20_000 {
		t.Fatalf("third produce throttled %d ms, want 20000 (its bytes and the throttled one's count)", ms)
	}
}

// request_percentage counts the time a request keeps its connection's goroutine
// working (decoding, handling, encoding: Kafka's request-handler and network thread
// time) and not a Fetch's long-poll: with a clock that moves 1 ms per reading, a
// Metadata request is busy 1 ms (start to handled) and encodes 1 ms (counted without a
// throttle check, as Kafka's network-thread time), and a Fetch that long-polls for 5 s
// is busy 2 ms and encodes 1 ms. A request busy longer than the window is throttled
// one window (Kafka's bound for request quotas).
func TestRequestQuotaCountsWorkNotWaits(t *testing.T) {
	b, clk := startQuotaClockBroker(t, "rq")
	setQuota(t, b, quota.Request, 1) // 1% of a thread: 100 ms per 10 s
	clk.setTick(time.Millisecond)
	total := func() float64 {
		st, _ := b.quotas.Stat(quota.Request, quota.Tags{ClientID: "test"})
		return st.Total
	}
	if r := roundTrip[*kmsg.MetadataResponse](t, b.Addr(), metadataReq(12, "rq")); r.ThrottleMillis != 0 {
		t.Fatalf("metadata throttled %d ms", r.ThrottleMillis)
	}
	if got := total(); got != 0.2 { // percent-seconds: 2 ms
		t.Fatalf("metadata recorded %v percent-seconds, want 0.2 (1 ms handling, 1 ms encoding)", got)
	}
	c := dialRaw(t, b.Addr())
	c.send(fetchReq("rq", 0, 0, 600_000))
	waitFetchWaiting(t, b)
	clk.advance(5 * time.Second) // the long-poll lasts 5 s on the quota clock
	if _, err := b.partition("rq", 0).log.Append(batch(1, 1000, []byte("wake"))); err != nil {
		t.Fatal(err)
	}
	resp := &kmsg.FetchResponse{Version: 12}
	c.read(resp)
	if resp.ThrottleMillis != 0 || len(resp.Topics) != 1 {
		t.Fatalf("long-polled fetch throttled %d ms (%d topics)", resp.ThrottleMillis, len(resp.Topics))
	}
	if got := total(); got != 0.2+0.3 {
		t.Fatalf("after the long-poll: %v percent-seconds, want 0.5 (its 5 s wait not counted)", got)
	}
	// JoinGroup (and SyncGroup): the coordinator's call counts as waiting, decoding and
	// encoding count: one reading before the call, one after it, one after encoding.
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version, join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 9, "g", "consumer", 10_000, 10_000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1}}}
	if r := roundTrip[*kmsg.JoinGroupResponse](t, b.Addr(), join); r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("join: error %d", r.ErrorCode)
	}
	if got := total(); math.Abs(got-(0.5+0.3)) > 1e-9 {
		t.Fatalf("after a JoinGroup: %v percent-seconds, want 0.8 (2 ms decoding and answering, 1 ms encoding)", got)
	}
	// A request busy 10 s (one reading to the next) is far over 1%: throttled one window.
	clk.setTick(10 * time.Second)
	if r := roundTrip[*kmsg.MetadataResponse](t, b.Addr(), metadataReq(12, "rq")); r.ThrottleMillis != 1000 {
		t.Fatalf("busy metadata throttled %d ms, want the 1000 ms bound", r.ThrottleMillis)
	}
}
