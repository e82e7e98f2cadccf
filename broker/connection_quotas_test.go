package broker

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/quota"
)

const localIP = "127.0.0.1"

// served fails unless the connection answers an ApiVersions request.
func (c *rawConn) served() {
	c.t.Helper()
	c.send(apiVersionsReq(3))
	resp := &kmsg.ApiVersionsResponse{Version: 3}
	c.read(resp)
	if resp.ErrorCode != 0 {
		c.t.Fatalf("ApiVersions: error %d", resp.ErrorCode)
	}
}

// refused fails unless the broker closes a new connection without answering its
// ApiVersions request.
func refused(t *testing.T, addr string) {
	t.Helper()
	c := dialRaw(t, addr)
	c.send(apiVersionsReq(3))
	c.expectClosed()
}

// connBroker starts a broker with the connection limits set by opt and a frozen quota
// clock with windows of 11 × 100 ms (a throttle is at most 100 ms), and a registry.
func connBroker(t *testing.T, opt func(*Options)) (*Broker, *quotaClock) {
	t.Helper()
	o := testOptions(t)
	clk := &quotaClock{t: time.Unix(1_000_000, 0)}
	o.Quotas = quota.Options{WindowNum: 11, WindowSize: 100 * time.Millisecond, Now: clk.now}
	o.Registry = prometheus.NewRegistry()
	if opt != nil {
		opt(&o)
	}
	return startBroker(t, o), clk
}

// waitConnState waits (bounded) until the broker counts fromIP connections from
// 127.0.0.1 and has blocked acceptors waiting.
func waitConnState(t *testing.T, b *Broker, fromIP, blocked int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, _, bl := b.connQuotas.state(localIP)
		if n == fromIP && bl == blocked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections from %s: %d (want %d), acceptors blocked: %d (want %d)", localIP, n, fromIP, bl, blocked)
		}
		time.Sleep(time.Millisecond)
	}
}

func counterValue(t *testing.T, b *Broker, vec string, reason string) float64 {
	t.Helper()
	m := map[string]*prometheus.CounterVec{"refused": b.metrics.connsRefused, "delayed": b.metrics.acceptDelayed}[vec]
	return metricValue(m.WithLabelValues(reason))
}

// max_connections_per_ip: a connection over the limit is closed at once (before any
// request is read) and counted; once one of the others closes, the next is served.
func TestMaxConnectionsPerIP(t *testing.T) {
	b, _ := connBroker(t, func(o *Options) { o.MaxConnectionsPerIP = 2 })
	c1, c2 := dialRaw(t, b.Addr()), dialRaw(t, b.Addr())
	c1.served()
	c2.served()
	refused(t, b.Addr())
	if got := counterValue(t, b, "refused", reasonMaxConnsPerIP); got != 1 {
		t.Fatalf("refused for max_connections_per_ip: %v, want 1", got)
	}
	c1.nc.Close()
	waitConnState(t, b, 1, 0)
	dialRaw(t, b.Addr()).served()
	c2.served() // the others were never touched
}

// max_connections_per_ip_overrides replace the limit for their hosts: 127.0.0.1 may
// have 3 while others have 1; an override of 0 refuses every connection.
func TestMaxConnectionsPerIPOverrides(t *testing.T) {
	b, _ := connBroker(t, func(o *Options) {
		o.MaxConnectionsPerIP = 1
		o.MaxConnectionsPerIPOverrides = map[string]int{localIP: 3, "10.1.2.3": 7}
	})
	for range 3 {
		dialRaw(t, b.Addr()).served()
	}
	refused(t, b.Addr())

	b2, _ := connBroker(t, func(o *Options) {
		o.MaxConnectionsPerIPOverrides = map[string]int{localIP: 0}
	})
	refused(t, b2.Addr())
	if got := counterValue(t, b2, "refused", reasonMaxConnsPerIP); got != 1 {
		t.Fatalf("refused for an override of 0: %v, want 1", got)
	}
	if _, err := New(Options{Dir: t.TempDir(), MaxConnectionsPerIPOverrides: map[string]int{"no-such-host.invalid": 1}}); err == nil {
		t.Fatal("an override host that does not resolve was accepted")
	}
}

// max_connections: at the limit the acceptor waits (the new connection is accepted
// by the kernel but not served) until a connection closes; then it is served.
func TestMaxConnections(t *testing.T) {
	msgs := make(messages, 64)
	b, _ := connBroker(t, func(o *Options) { o.MaxConnections = 2; o.Logger = slog.New(msgs) })
	c1, c2 := dialRaw(t, b.Addr()), dialRaw(t, b.Addr())
	c1.served()
	c2.served()
	c3 := dialRaw(t, b.Addr())
	c3.send(apiVersionsReq(3))
	waitConnState(t, b, 2, 1) // the acceptor waits with c3
	// The client sees a connect that is not answered; the broker's log says why.
	waitMessage(t, msgs, "max_connections reached: new connections wait, unanswered, until an open one closes")
	if got := counterValue(t, b, "delayed", reasonMaxConns); got != 1 {
		t.Fatalf("accepts delayed for max_connections: %v, want 1", got)
	}
	c1.nc.Close()
	resp := &kmsg.ApiVersionsResponse{Version: 3}
	c3.read(resp) // served once c1 is gone
	if resp.ErrorCode != 0 {
		t.Fatalf("ApiVersions: error %d", resp.ErrorCode)
	}
	waitConnState(t, b, 2, 0)
}

// The broker-wide max_connection_creation_rate: with Kafka's windows (here 11 × 100
// ms on a frozen clock) a new broker takes 10 windows' worth (2/s × 1 s = 2) at once;
// the third connection makes the rate 3/s, 50% over: the throttle, bounded by one
// window, is 100 ms, which the acceptor waits before serving it. Nothing is refused.
func TestMaxConnectionCreationRate(t *testing.T) {
	b, _ := connBroker(t, func(o *Options) { o.MaxConnectionCreationRate = 2 })
	for i := range 3 {
		dialRaw(t, b.Addr()).served()
		if got, want := counterValue(t, b, "delayed", reasonBrokerConnRate), float64(max(i-1, 0)); got != want {
			t.Fatalf("connection %d: accepts delayed by the rate: %v, want %v", i+1, got, want)
		}
	}
	st, ok := b.quotas.Stat(quota.ConnectionCreation, quota.Tags{})
	if !ok || st.Total != 3 || st.Throttled != 1 || st.ThrottleTime != 100*time.Millisecond || st.Limit != 2 {
		t.Fatalf("broker-wide connection rate: %+v %v", st, ok)
	}
}

// An ip's connection_creation_rate quota, as Kafka's ConnectionQuotas enforces it: the
// connections within the quota are served; the one over it is taken back out of the
// rate, not counted, held unread for the throttle time (bounded by one window: 100 ms)
// and closed. Once the windows have passed, the ip connects again; the default ip's
// quota applies to an ip with none of its own; removing the quotas ends it.
func TestIPConnectionRateQuota(t *testing.T) {
	b, clk := connBroker(t, func(o *Options) { o.MaxConnectionCreationRate = 100 })
	setIP := func(ip *string, v float64, remove bool) {
		t.Helper()
		e := quota.Entity{IP: quota.DefaultName}
		if ip != nil {
			e.IP = quota.N(*ip)
		}
		a := quota.Alteration{Entity: e}
		if remove {
			a.Remove = []quota.Type{quota.ConnectionCreation}
		} else {
			a.Set = map[quota.Type]float64{quota.ConnectionCreation: v}
		}
		if err := b.quotas.Store().Alter([]quota.Alteration{a}); err != nil {
			t.Fatal(err)
		}
	}
	ip := localIP
	setIP(&ip, 2, false)
	c1, c2 := dialRaw(t, b.Addr()), dialRaw(t, b.Addr())
	c1.served()
	c2.served()
	refused(t, b.Addr()) // no answer: held, then closed
	st, ok := b.quotas.Stat(quota.ConnectionCreation, quota.Tags{IP: localIP})
	if !ok || st.Total != 2 || st.Throttled != 1 || st.ThrottleTime != 100*time.Millisecond || st.Limit != 2 {
		t.Fatalf("ip's connection rate: %+v %v", st, ok)
	}
	if got := counterValue(t, b, "refused", reasonIPConnRate); got != 1 {
		t.Fatalf("refused for the ip's rate: %v, want 1", got)
	}
	// The refused connection was taken out of the broker-wide rate too.
	if bs, _ := b.quotas.Stat(quota.ConnectionCreation, quota.Tags{}); bs.Total != 2 {
		t.Fatalf("broker-wide connections recorded: %v, want 2", bs.Total)
	}
	if n, _, _ := b.connQuotas.state(localIP); n != 2 {
		t.Fatalf("connections counted from %s: %d, want 2", localIP, n)
	}

	// 11 windows later the ip's samples have expired.
	clk.advance(1100 * time.Millisecond)
	dialRaw(t, b.Addr()).served()

	// The default ip's quota applies when the ip has none of its own.
	setIP(&ip, 0, true)
	setIP(nil, 1, false)
	clk.advance(1100 * time.Millisecond)
	dialRaw(t, b.Addr()).served() // 1 over the 1 s span: at the quota
	refused(t, b.Addr())
	if got := counterValue(t, b, "refused", reasonIPConnRate); got != 2 {
		t.Fatalf("refused for the ip's rate: %v, want 2", got)
	}
	// No quota: no refusal.
	setIP(nil, 0, true)
	for range 3 {
		dialRaw(t, b.Addr()).served()
	}
	if !gatherHas(t, b.opts.Registry, "tagpipe_broker_quota_throttled_total", localIP) {
		t.Fatal("no tagpipe_broker_quota_throttled_total series for the ip")
	}
}

// ip quotas through the admin API: kadm sets a named and the default ip quota,
// DescribeClientQuotas finds them by Kafka's filters (and an ip filter combined with
// user is refused), they survive a restart in client_quotas.json, and DescribeConfigs
// of the broker shows the connection limits with Kafka's names.
func TestIPQuotasAdmin(t *testing.T) {
	o := quotaOptions(t)
	o.MaxConnections, o.MaxConnectionsPerIPOverrides = 50, map[string]int{"127.0.0.1": 20, "10.0.0.9": 5}
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	ip, alice := localIP, "alice"
	alterQuotas(t, adm,
		kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: &ip}},
			Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 50}}},
		kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "ip"}},
			Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 10}}},
		kadm.AlterClientQuotaEntry{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &alice}},
			Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1024}}},
	)
	want := []string{"user=alice producer_byte_rate=1024", "ip=<default> connection_creation_rate=10", "ip=127.0.0.1 connection_creation_rate=50"}
	check := func(when string) {
		t.Helper()
		if got := describeAll(t, adm, false); !slices.Equal(got, want) {
			t.Fatalf("%s: all: %v, want %v", when, got, want)
		}
		if got := describeAll(t, adm, true, kadm.DescribeClientQuotaComponent{Type: "ip", MatchType: kmsg.QuotasMatchTypeAny}); !slices.Equal(got, want[1:]) {
			t.Fatalf("%s: any ip: %v", when, got)
		}
		if got := describeAll(t, adm, false, kadm.DescribeClientQuotaComponent{Type: "ip", MatchName: &ip, MatchType: kmsg.QuotasMatchTypeExact}); !slices.Equal(got, want[2:]) {
			t.Fatalf("%s: ip 127.0.0.1: %v", when, got)
		}
		if got := describeAll(t, adm, false, kadm.DescribeClientQuotaComponent{Type: "ip", MatchType: kmsg.QuotasMatchTypeDefault}); !slices.Equal(got, want[1:2]) {
			t.Fatalf("%s: default ip: %v", when, got)
		}
	}
	check("before restart")
	if _, err := adm.DescribeClientQuotas(testCtx(t), false, []kadm.DescribeClientQuotaComponent{
		{Type: "ip", MatchType: kmsg.QuotasMatchTypeAny}, {Type: "user", MatchType: kmsg.QuotasMatchTypeAny}}); err == nil ||
		!strings.Contains(err.Error(), "INVALID_REQUEST") {
		t.Fatalf("ip with user filter: %v", err)
	}
	b = restartBroker(t, b, o)
	_, adm = newAdmin(t, b.Addr())
	check("after restart")

	rcs, err := adm.DescribeBrokerConfigs(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if strings.HasPrefix(c.Key, "max.connection") {
				got[c.Key] = c.MaybeValue() + " " + c.Source.String()
			}
		}
	}
	wantCfg := map[string]string{
		"max.connections":                  "50 STATIC_BROKER_CONFIG",
		"max.connections.per.ip":           "2147483647 DEFAULT_CONFIG",
		"max.connections.per.ip.overrides": "10.0.0.9:5,127.0.0.1:20 STATIC_BROKER_CONFIG",
		"max.connection.creation.rate":     "2147483647 DEFAULT_CONFIG",
	}
	for k, v := range wantCfg {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
