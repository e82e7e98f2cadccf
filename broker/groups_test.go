package broker

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func groupTestOptions(t testing.TB) Options {
	o := testOptions(t)
	o.Groups.MinSessionTimeout = 500 * time.Millisecond
	o.Groups.InitialRebalanceDelay = 300 * time.Millisecond
	o.Groups.Tick = 20 * time.Millisecond
	return o
}

// cutDialer lets a test take a client off the network without it leaving its group.
type cutDialer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (d *cutDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errors.New("network cut by the test")
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *cutDialer) cutNow() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
}

func produceSeq(t *testing.T, addr, topic string, from, to int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKgoGroupSharesPartitionsAndFailsOver(t *testing.T) {
	b := startBroker(t, groupTestOptions(t))
	addr := b.Addr()
	_, adm := newAdmin(t, addr)
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 6, 1, nil, "grp"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	var (
		mu     sync.Mutex
		counts = map[int]int{}
		byCons = map[int]map[int32]bool{}
	)
	type consumer struct {
		cl   *kgo.Client
		d    *cutDialer
		done chan struct{}
	}
	var cons []*consumer
	var stopped atomic.Bool
	for i := 0; i < 3; i++ {
		d := &cutDialer{}
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.Dialer(d.dial), kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("grp"),
			kgo.SessionTimeout(1500*time.Millisecond), kgo.HeartbeatInterval(100*time.Millisecond),
			kgo.RebalanceTimeout(5*time.Second), kgo.AutoCommitInterval(100*time.Millisecond),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		c := &consumer{cl: cl, d: d, done: make(chan struct{})}
		cons = append(cons, c)
		byCons[i] = map[int32]bool{}
		go func(i int) {
			defer close(c.done)
			for !stopped.Load() {
				pctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				fs := cl.PollFetches(pctx)
				cancel()
				if fs.IsClientClosed() {
					return
				}
				fs.EachRecord(func(r *kgo.Record) {
					n, _ := strconv.Atoi(string(r.Value))
					mu.Lock()
					counts[n]++
					byCons[i][r.Partition] = true
					mu.Unlock()
				})
			}
		}(i)
	}
	defer func() {
		stopped.Store(true)
		for _, c := range cons {
			c.cl.Close()
			<-c.done
		}
	}()
	// All three members in one stable generation before any record exists.
	waitFor(t, "3 stable members", func() bool {
		gs, err := adm.DescribeGroups(ctx, "g1")
		if err != nil {
			return false
		}
		g := gs["g1"]
		assigned := 0
		for _, m := range g.Members {
			if ca, ok := m.Assigned.AsConsumer(); ok && len(ca.Topics) > 0 {
				assigned += len(ca.Topics[0].Partitions)
			}
		}
		return g.State == "Stable" && len(g.Members) == 3 && assigned == 6
	})
	produceSeq(t, addr, "grp", 0, 600)
	waitFor(t, "600 records", func() bool { mu.Lock(); defer mu.Unlock(); return len(counts) == 600 })
	mu.Lock()
	for n, c := range counts {
		if c != 1 {
			t.Fatalf("record %d consumed %d times", n, c)
		}
	}
	for i := 0; i < 3; i++ {
		if len(byCons[i]) != 2 {
			t.Fatalf("consumer %d read partitions %v, want 2 of the 6", i, byCons[i])
		}
	}
	mu.Unlock()
	// Wait for the commits of everything consumed so far.
	waitFor(t, "offsets committed", func() bool {
		lag, err := adm.Lag(ctx, "g1")
		if err != nil {
			return false
		}
		total := int64(0)
		lag.Each(func(l kadm.DescribedGroupLag) { total += l.Lag.Total() })
		return total == 0
	})

	// Consumer 0 dies without leaving: its session expires and the others take over its
	// partitions from the committed offsets.
	cons[0].d.cutNow()
	produceSeq(t, addr, "grp", 600, 1200)
	waitFor(t, "all 1200 records after failover", func() bool { mu.Lock(); defer mu.Unlock(); return len(counts) == 1200 })
	mu.Lock()
	defer mu.Unlock()
	for n := 0; n < 600; n++ {
		if counts[n] != 1 {
			t.Fatalf("record %d from before the failover consumed %d times", n, counts[n])
		}
	}
}

// Two groups each get every record (publish-subscribe); committed offsets survive a
// restart of the broker.
func TestGroupsPubSubAndOffsetsSurviveRestart(t *testing.T) {
	o := groupTestOptions(t)
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 3, 1, nil, "pubsub"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	produceSeq(t, b.Addr(), "pubsub", 0, 90)
	for _, g := range []string{"ga", "gb"} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup(g), kgo.ConsumeTopics("pubsub"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.SessionTimeout(2*time.Second), kgo.HeartbeatInterval(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for len(seen) < 90 {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("group %s read %d of 90", g, len(seen))
			}
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}
	before, err := adm.FetchOffsets(ctx, "ga")
	if err != nil || before.Error() != nil {
		t.Fatal(err, before.Error())
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := startBroker(t, o)
	_, adm2 := newAdmin(t, b2.Addr())
	after, err := adm2.FetchOffsets(ctx, "ga")
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	after.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 90 || len(after) != len(before) {
		t.Fatalf("after restart committed %d (want 90): %v", total, after)
	}
	lgs, err := adm2.ListGroups(ctx)
	if err != nil || len(lgs) != 2 {
		t.Fatalf("groups %v %v", lgs, err)
	}
}

func TestGroupMetrics(t *testing.T) {
	o := groupTestOptions(t)
	o.Registry = prometheus.NewRegistry()
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "lagged"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	produceSeq(t, b.Addr(), "lagged", 0, 10)
	commitOffset(t, ctx, adm, "mg", "lagged", 3)
	mfs, err := o.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lag float64 = -1
	for _, mf := range mfs {
		if mf.GetName() == "tagpipe_broker_group_lag_records" {
			lag = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if lag != 7 {
		t.Fatalf("group lag metric %v, want 7", lag)
	}
}
