package broker

import (
	"context"
	"crypto/rand"
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
