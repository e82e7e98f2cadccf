package broker

// Consumer groups (KIP-848) with franz-go's server-side balancer: the broker assigns
// the partitions (uniform and range), members join, leave, time out and survive a
// broker restart, and no partition is ever owned by two members at once.

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func kip848Options(t testing.TB) Options {
	o := groupTestOptions(t)
	o.Groups.ConsumerHeartbeatInterval = 100 * time.Millisecond
	o.Groups.ConsumerSessionTimeout = 3 * time.Second
	return o
}

// ownership follows, through the members' assignment callbacks, which member owns
// each partition, and counts the records consumed.
type ownership struct {
	mu         sync.Mutex
	owner      map[string]map[int32]string // topic → partition → member
	violations []string
	counts     map[int]int
	byMember   map[string]map[int32]bool // partitions each member read from
}

func newOwnership() *ownership {
	return &ownership{owner: map[string]map[int32]string{}, counts: map[int]int{}, byMember: map[string]map[int32]bool{}}
}

func (o *ownership) assigned(name string, m map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for t, ps := range m {
		if o.owner[t] == nil {
			o.owner[t] = map[int32]string{}
		}
		for _, p := range ps {
			if cur, ok := o.owner[t][p]; ok && cur != name {
				o.violations = append(o.violations, fmt.Sprintf("%s-%d given to %s while %s owns it", t, p, name, cur))
			}
			o.owner[t][p] = name
		}
	}
}

func (o *ownership) released(name string, m map[string][]int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for t, ps := range m {
		for _, p := range ps {
			if o.owner[t][p] == name {
				delete(o.owner[t], p)
			}
		}
	}
}

func (o *ownership) consumed(name string, r *kgo.Record) {
	n, _ := strconv.Atoi(string(r.Value))
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counts[n]++
	if o.byMember[name] == nil {
		o.byMember[name] = map[int32]bool{}
	}
	o.byMember[name][r.Partition] = true
}

// missing counts the records of [from, to) not consumed yet.
func (o *ownership) missing(from, to int) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for i := from; i < to; i++ {
		if o.counts[i] == 0 {
			n++
		}
	}
	return n
}

func (o *ownership) check(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.violations) > 0 {
		t.Fatalf("a partition had two owners: %v", o.violations)
	}
}

type member848 struct {
	name   string
	cl     *kgo.Client
	d      *cutDialer
	done   chan struct{}
	closed sync.Once
}

// startMember848 starts a consumer of topic in group with the server-side balancer
// (StickyBalancer: the broker's "uniform" assignor, RangeBalancer: "range").
func startMember848(t *testing.T, addr, group, topic, name string, bal kgo.GroupBalancer, own *ownership, extra ...kgo.Opt) *member848 {
	t.Helper()
	m := &member848{name: name, d: &cutDialer{}, done: make(chan struct{})}
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.Dialer(m.d.dial), kgo.ClientID(name),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ServerSideBalancer(), kgo.Balancers(bal),
		kgo.AutoCommitInterval(100 * time.Millisecond), kgo.RebalanceTimeout(5 * time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.MetadataMinAge(100 * time.Millisecond), kgo.MetadataMaxAge(500 * time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) { own.assigned(name, a) }),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			// As the default revoke callback with autocommit: commit what was polled
			// before the partitions go.
			_ = cl.CommitUncommittedOffsets(ctx)
			own.released(name, r)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) { own.released(name, l) }),
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	go func() {
		defer close(m.done)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			fs := cl.PollFetches(ctx)
			cancel()
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) { own.consumed(name, r) })
		}
	}()
	return m
}

func (m *member848) close() {
	m.closed.Do(func() {
		m.cl.Close() // leaves the group (epoch -1)
		<-m.done
	})
}

// waitConsumerGroup waits until the group is Stable with n members that own every
// partition of topic (parts of them) between them, and returns it.
func waitConsumerGroup(t *testing.T, adm *kadm.Client, group, topic string, n, parts int) kadm.DescribedConsumerGroup {
	t.Helper()
	var last kadm.DescribedConsumerGroup
	waitFor(t, fmt.Sprintf("%d members owning %d partitions", n, parts), func() bool {
		gs, err := adm.DescribeConsumerGroups(context.Background(), group)
		if err != nil {
			return false
		}
		last = gs[group]
		owned := 0
		for _, m := range last.Members {
			owned += len(m.Assignment[topic])
		}
		return last.Err == nil && last.State == "Stable" && len(last.Members) == n && owned == parts
	})
	return last
}

func TestConsumerGroupServerAssignors(t *testing.T) {
	for _, tc := range []struct {
		assignor string
		bal      kgo.GroupBalancer
	}{{"uniform", kgo.StickyBalancer()}, {"range", kgo.RangeBalancer()}} {
		t.Run(tc.assignor, func(t *testing.T) { testServerAssignor(t, tc.assignor, tc.bal) })
	}
}

func testServerAssignor(t *testing.T, assignor string, bal kgo.GroupBalancer) {
	b := startBroker(t, kip848Options(t))
	addr := b.Addr()
	_, adm := newAdmin(t, addr)
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 6, 1, nil, "k6"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	own := newOwnership()
	var ms []*member848
	defer func() {
		for _, m := range ms {
			m.close()
		}
	}()
	for i := 0; i < 3; i++ {
		ms = append(ms, startMember848(t, addr, "g848", "k6", fmt.Sprintf("m%d", i), bal, own))
	}
	g := waitConsumerGroup(t, adm, "g848", "k6", 3, 6)
	if g.AssignorName != assignor {
		t.Fatalf("assignor %q, want %q", g.AssignorName, assignor)
	}
	for _, m := range g.Members {
		if len(m.Assignment["k6"]) != 2 || m.MemberEpoch != g.Epoch || m.MemberType != 1 {
			t.Fatalf("member %s: assignment %v, epoch %d (group %d), type %d; want 2 partitions at the group's epoch", m.MemberID, m.Assignment, m.MemberEpoch, g.Epoch, m.MemberType)
		}
	}
	if assignor == "range" {
		// Members in member-id order take partitions 0-1, 2-3, 4-5.
		for i, m := range g.Members {
			ps := m.Assignment["k6"]
			_, a := ps[int32(2*i)]
			_, b := ps[int32(2*i+1)]
			if !a || !b {
				t.Fatalf("range: member %d of %d has %v", i, len(g.Members), ps)
			}
		}
	}
	produceSeq(t, addr, "k6", 0, 600)
	waitFor(t, "600 records", func() bool { return own.missing(0, 600) == 0 })
	own.mu.Lock()
	for n, c := range own.counts {
		if c != 1 {
			t.Fatalf("record %d consumed %d times", n, c)
		}
	}
	for name, ps := range own.byMember {
		if len(ps) != 2 {
			t.Fatalf("member %s read partitions %v, want 2 of the 6", name, ps)
		}
	}
	own.mu.Unlock()
	own.check(t)

	// A member leaves: the two others take its partitions, from its commits.
	ms[0].close()
	ms = ms[1:]
	waitConsumerGroup(t, adm, "g848", "k6", 2, 6)
	produceSeq(t, addr, "k6", 600, 1200)
	waitFor(t, "records after a member left", func() bool { return own.missing(0, 1200) == 0 })
	own.check(t)

	// One joins: partitions move to it only once released.
	ms = append(ms, startMember848(t, addr, "g848", "k6", "m3", bal, own))
	g = waitConsumerGroup(t, adm, "g848", "k6", 3, 6)
	for _, m := range g.Members {
		if len(m.Assignment["k6"]) != 2 {
			t.Fatalf("after a join: member %s has %v", m.MemberID, m.Assignment)
		}
	}
	produceSeq(t, addr, "k6", 1200, 1800)
	waitFor(t, "records after a member joined", func() bool { return own.missing(0, 1800) == 0 })
	own.check(t)

	// New partitions are picked up (the group's epoch moves with the topic's metadata).
	before := g.Epoch
	if _, err := adm.UpdatePartitions(ctx, 9, "k6"); err != nil {
		t.Fatal(err)
	}
	g = waitConsumerGroup(t, adm, "g848", "k6", 3, 9)
	if g.Epoch <= before {
		t.Fatalf("group epoch %d after CreatePartitions, was %d", g.Epoch, before)
	}
	produceSeq(t, addr, "k6", 1800, 2700)
	waitFor(t, "records of the new partitions", func() bool { return own.missing(0, 2700) == 0 })
	own.check(t)
	own.mu.Lock()
	read := map[int32]bool{}
	for _, ps := range own.byMember {
		for p := range ps {
			read[p] = true
		}
	}
	own.mu.Unlock()
	if len(read) != 9 {
		t.Fatalf("partitions read: %v, want all 9", read)
	}
}

func (o *ownership) releaseAll(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ps := range o.owner {
		for p, n := range ps {
			if n == name {
				delete(ps, p)
			}
		}
	}
}

// A member that stops heartbeating is fenced after group.consumer.session.timeout.ms;
// the others take its partitions and read on from its commits.
func TestConsumerGroupSessionTimeout(t *testing.T) {
	o := kip848Options(t)
	o.Groups.ConsumerSessionTimeout = time.Second
	addr, adm, own, ms, g := threeMembersOn(t, startBroker(t, o), "gst", "st6", kgo.StickyBalancer())
	// m0 is cut off: no leave, no heartbeat. The coordinator fences it once its
	// session is over; as far as the group goes it owns nothing from then on.
	ms[0].d.cutNow()
	own.releaseAll("m0")
	after := waitConsumerGroup(t, adm, "gst", "st6", 2, 6)
	if after.Epoch <= g.Epoch {
		t.Fatalf("epoch %d after the member was fenced, was %d", after.Epoch, g.Epoch)
	}
	for _, m := range after.Members {
		if m.ClientID == "m0" {
			t.Fatalf("the silent member is still in the group: %+v", after.Members)
		}
	}
	produceSeq(t, addr, "st6", 300, 600)
	waitFor(t, "records after the session timeout", func() bool { return own.missing(0, 600) == 0 })
	own.check(t)
	own.mu.Lock()
	defer own.mu.Unlock()
	for n := 0; n < 300; n++ {
		if own.counts[n] != 1 {
			t.Fatalf("record %d, committed before m0 went silent, consumed %d times", n, own.counts[n])
		}
	}
}

// Group membership is not kept across a broker restart (the committed offsets are):
// the members hear UNKNOWN_MEMBER_ID, rejoin and read on from their commits.
func TestConsumerGroupBrokerRestart(t *testing.T) {
	o := kip848Options(t)
	b := startBroker(t, o)
	_, _, own, ms, before := threeMembersOn(t, b, "grs", "rs6", kgo.RangeBalancer())
	b2 := restartBroker(t, b, o)
	defer func() { // before b2 stops: they leave the group
		for _, m := range ms {
			m.close()
		}
	}()
	// The members' old assignments die with the old broker; they rejoin.
	for _, m := range ms {
		own.releaseAll(m.name)
	}
	_, adm2 := newAdmin(t, b2.Addr())
	after := waitConsumerGroup(t, adm2, "grs", "rs6", 3, 6)
	for _, m := range after.Members {
		for _, old := range before.Members {
			if m.MemberID == old.MemberID {
				t.Fatalf("member %s kept its id across the restart: it was not told it is unknown", m.MemberID)
			}
		}
	}
	produceSeq(t, b2.Addr(), "rs6", 300, 600)
	waitFor(t, "records after the restart", func() bool { return own.missing(0, 600) == 0 })
	own.mu.Lock()
	defer own.mu.Unlock()
	for n := 0; n < 300; n++ {
		if own.counts[n] != 1 {
			t.Fatalf("record %d, committed before the restart, consumed %d times", n, own.counts[n])
		}
	}
}

// waitCommitted waits until the group's committed offsets add up to n (every record of
// a topic produced from offset 0 is committed once they are its record count).
func waitCommitted(t *testing.T, adm *kadm.Client, group string, n int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d records committed", n), func() bool {
		offs, err := adm.FetchOffsets(context.Background(), group)
		if err != nil || offs.Error() != nil {
			return false
		}
		total := int64(0)
		offs.Each(func(o kadm.OffsetResponse) { total += o.At })
		return total == n
	})
}

// A regex subscription (ConsumerGroupHeartbeat v1 SubscribedTopicRegex, RE2 as Kafka's
// RE2J): the broker resolves it, and a topic created later that matches is assigned.
func TestConsumerGroupRegexSubscription(t *testing.T) {
	b := startBroker(t, kip848Options(t))
	addr := b.Addr()
	_, adm := newAdmin(t, addr)
	ctx := testCtx(t)
	for _, topic := range []string{"rx-a", "rx-b", "other"} {
		if r, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatal(err, r.Err)
		}
	}
	own := newOwnership()
	m := startMember848(t, addr, "grx", "^rx-.*", "m0", kgo.StickyBalancer(), own, kgo.ConsumeRegex())
	defer m.close()
	waitFor(t, "the matching topics assigned", func() bool {
		gs, err := adm.DescribeConsumerGroups(ctx, "grx")
		if err != nil || len(gs["grx"].Members) != 1 {
			return false
		}
		mb := gs["grx"].Members[0]
		return mb.SubscribedTopicRegex != nil && len(mb.Assignment["rx-a"]) == 2 && len(mb.Assignment["rx-b"]) == 2 && len(mb.Assignment["other"]) == 0
	})
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "rx-c"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	waitFor(t, "the new topic assigned", func() bool {
		gs, err := adm.DescribeConsumerGroups(ctx, "grx")
		return err == nil && len(gs["grx"].Members) == 1 && len(gs["grx"].Members[0].Assignment["rx-c"]) == 1
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, topic := range []string{"rx-a", "rx-b", "rx-c", "other"} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the matching topics' records", func() bool { return own.missing(0, 3) == 0 })
	if own.missing(3, 4) != 1 {
		t.Fatal("a record of a topic the regex does not match was consumed")
	}
}

// threeMembersOn creates a topic of six partitions on b and starts three members of
// group on it (closed when the test ends); once the group is Stable, 300 records are
// produced, consumed and committed.
func threeMembersOn(t *testing.T, b *Broker, group, topic string, bal kgo.GroupBalancer) (string, *kadm.Client, *ownership, []*member848, kadm.DescribedConsumerGroup) {
	t.Helper()
	addr := b.Addr()
	_, adm := newAdmin(t, addr)
	if r, err := adm.CreateTopic(testCtx(t), 6, 1, nil, topic); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	own := newOwnership()
	var ms []*member848
	for i := 0; i < 3; i++ {
		m := startMember848(t, addr, group, topic, fmt.Sprintf("m%d", i), bal, own)
		t.Cleanup(m.close)
		ms = append(ms, m)
	}
	g := waitConsumerGroup(t, adm, group, topic, 3, 6)
	produceSeq(t, addr, topic, 0, 300)
	waitFor(t, "300 records", func() bool { return own.missing(0, 300) == 0 })
	waitCommitted(t, adm, group, 300)
	return addr, adm, own, ms, g
}
