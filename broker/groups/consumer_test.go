package groups

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicList is a settable Options.Topics.
type topicList struct {
	mu sync.Mutex
	ts []TopicMeta
}

func (l *topicList) get() []TopicMeta {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ts)
}

func (l *topicList) set(ts ...TopicMeta) { l.mu.Lock(); l.ts = ts; l.mu.Unlock() }

func tid(b byte) [16]byte { return [16]byte{b} }

func newConsumerTest(t *testing.T, ts ...TopicMeta) (*Coordinator, *clock, *topicList) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	tl := &topicList{ts: ts}
	o := DefaultOptions()
	o.Dir = t.TempDir()
	o.Now = clk.now
	o.Tick = time.Hour // tests call expire() themselves
	o.Topics = tl.get
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, clk, tl
}

func hbReq(group, member string, epoch int32, owned parts, topics ...string) *kmsg.ConsumerGroupHeartbeatRequest {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group, r.MemberID, r.MemberEpoch = group, member, epoch
	r.RebalanceTimeoutMillis = 10_000
	r.SubscribedTopicNames = append([]string{}, topics...)
	r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	for _, id := range sortedIDs(owned) {
		r.Topics = append(r.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id, Partitions: owned[id]})
	}
	return r
}

func (c *Coordinator) hb(t *testing.T, req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	t.Helper()
	return c.ConsumerHeartbeat(ConsumerHeartbeatRequest{Req: req, ClientID: "c", ClientHost: "/127.0.0.1"})
}

func assigned(r *kmsg.ConsumerGroupHeartbeatResponse) parts {
	if r.Assignment == nil {
		return nil
	}
	out := parts{}
	for _, t := range r.Assignment.Topics {
		out[t.TopicID] = t.Partitions
	}
	return out
}

// settle heartbeats every member (full requests owning what they were told) until the
// group is Stable; it returns each member's partitions.
func settle(t *testing.T, c *Coordinator, group string, subs map[string][]string) map[string]parts {
	t.Helper()
	owned := map[string]parts{}
	epochs := map[string]int32{}
	for id := range subs {
		gi, _ := c.DescribeConsumer(group)
		for _, m := range gi.Members {
			if m.ID == id {
				epochs[id], owned[id] = m.Epoch, m.Assigned
			}
		}
	}
	for i := 0; i < 20; i++ {
		for _, id := range sortedKeys(subs) {
			r := c.hb(t, hbReq(group, id, epochs[id], owned[id], subs[id]...))
			if r.ErrorCode != 0 {
				t.Fatalf("heartbeat of %s: %v", id, kerr.ErrorForCode(r.ErrorCode))
			}
			epochs[id] = r.MemberEpoch
			if a := assigned(r); a != nil {
				owned[id] = a
			}
		}
		if gi, _ := c.DescribeConsumer(group); gi.State == "Stable" {
			return owned
		}
	}
	gi, _ := c.DescribeConsumer(group)
	t.Fatalf("group not stable: %+v", gi)
	return nil
}

func counts(ps map[string]parts) map[string]int {
	out := map[string]int{}
	for id, p := range ps {
		out[id] = p.count()
	}
	return out
}

func TestUniformAssignorIsBalancedAndSticky(t *testing.T) {
	c, _, _ := newConsumerTest(t, TopicMeta{Name: "t", ID: tid(1), Partitions: 12})
	subs := map[string][]string{}
	for _, id := range []string{"a", "b", "c"} {
		subs[id] = []string{"t"}
		if r := c.hb(t, hbReq("g", id, 0, nil, "t")); r.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(r.ErrorCode))
		}
	}
	before := settle(t, c, "g", subs)
	if n := counts(before); n["a"] != 4 || n["b"] != 4 || n["c"] != 4 {
		t.Fatalf("three members: %v", n)
	}
	subs["d"] = []string{"t"}
	c.hb(t, hbReq("g", "d", 0, nil, "t"))
	after := settle(t, c, "g", subs)
	moved := 0
	for _, id := range []string{"a", "b", "c"} {
		for _, p := range before[id][tid(1)] {
			if !after[id].has(tid(1), p) {
				moved++
			}
		}
	}
	if n := counts(after); n["a"] != 3 || n["b"] != 3 || n["c"] != 3 || n["d"] != 3 || moved != 3 {
		t.Fatalf("after d joined: %v, %d partitions moved (want 3)", n, moved)
	}
	// b leaves: only its partitions move.
	c.hb(t, hbReq("g", "b", -1, nil))
	delete(subs, "b")
	final := settle(t, c, "g", subs)
	for _, id := range []string{"a", "c", "d"} {
		for _, p := range after[id][tid(1)] {
			if !final[id].has(tid(1), p) {
				t.Fatalf("%s lost partition %d when b left", id, p)
			}
		}
		if final[id].count() != 4 {
			t.Fatalf("after b left: %v", counts(final))
		}
	}
}

// Members subscribe to different topics: each partition goes to a subscriber of its
// topic, spread as evenly as the subscriptions allow; a regex subscription matches
// whole names.
func TestUniformAssignorMixedSubscriptions(t *testing.T) {
	c, _, _ := newConsumerTest(t, TopicMeta{Name: "t1", ID: tid(1), Partitions: 4}, TopicMeta{Name: "t2", ID: tid(2), Partitions: 4},
		TopicMeta{Name: "xt1", ID: tid(3), Partitions: 2})
	c.hb(t, hbReq("g", "a", 0, nil, "t1", "t2"))
	r := hbReq("g", "b", 0, nil)
	r.SubscribedTopicNames = nil
	re := "t2"
	r.SubscribedTopicRegex = &re
	c.hb(t, r)
	owned := settle(t, c, "g", map[string][]string{"a": {"t1", "t2"}, "b": nil})
	if len(owned["a"][tid(1)]) != 4 || len(owned["b"][tid(1)]) != 0 || len(owned["a"][tid(3)])+len(owned["b"][tid(3)]) != 0 {
		t.Fatalf("t1 is a's alone, xt1 nobody's: %v", owned)
	}
	if len(owned["b"][tid(2)]) != 4 {
		t.Fatalf("b, with fewer partitions, takes t2: %v", owned)
	}
}

func TestRangeAssignor(t *testing.T) {
	c, _, _ := newConsumerTest(t, TopicMeta{Name: "t", ID: tid(1), Partitions: 7})
	subs := map[string][]string{}
	for _, id := range []string{"c", "a", "b"} {
		subs[id] = []string{"t"}
		r := hbReq("g", id, 0, nil, "t")
		rng := "range"
		r.ServerAssignor = &rng
		c.hb(t, r)
	}
	owned := settle(t, c, "g", subs)
	want := map[string][]int32{"a": {0, 1, 2}, "b": {3, 4}, "c": {5, 6}}
	for id, ps := range want {
		if !slices.Equal(owned[id][tid(1)], ps) {
			t.Fatalf("range: %s has %v, want %v", id, owned[id][tid(1)], ps)
		}
	}
	if gi, _ := c.DescribeConsumer("g"); gi.Assignor != "range" {
		t.Fatalf("assignor %q", gi.Assignor)
	}
}

// A member that does not revoke within its rebalance timeout is fenced, and one that
// stops heartbeating is removed after the session timeout; their partitions go on.
func TestConsumerTimeouts(t *testing.T) {
	c, clk, _ := newConsumerTest(t, TopicMeta{Name: "t", ID: tid(1), Partitions: 4})
	a := c.hb(t, hbReq("g", "a", 0, nil, "t"))
	if assigned(a).count() != 4 {
		t.Fatalf("a: %v", assigned(a))
	}
	c.hb(t, hbReq("g", "b", 0, nil, "t"))
	// a is told to give two up, and keeps sending keepalives without doing it.
	ra := c.hb(t, hbReq("g", "a", a.MemberEpoch, assigned(a), "t"))
	if assigned(ra).count() != 2 {
		t.Fatalf("a told to keep %v", assigned(ra))
	}
	keep := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	keep.Group, keep.MemberID, keep.MemberEpoch = "g", "a", ra.MemberEpoch
	clk.add(5 * time.Second)
	c.hb(t, keep)
	rb := c.hb(t, hbReq("g", "b", 2, nil, "t"))
	c.expire()
	if gi, _ := c.DescribeConsumer("g"); len(gi.Members) != 2 || assigned(rb).count() != 0 {
		t.Fatalf("before the rebalance timeout: %+v, b has %v", gi, assigned(rb))
	}
	clk.add(6 * time.Second) // past a's 10 s rebalance timeout
	c.hb(t, hbReq("g", "b", rb.MemberEpoch, nil, "t"))
	c.expire()
	if r := c.hb(t, keep); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("fenced member's heartbeat: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// b, still at the epoch it joined at (it got nothing yet), now gets everything.
	rb = c.hb(t, hbReq("g", "b", rb.MemberEpoch, nil, "t"))
	if rb.ErrorCode != 0 {
		t.Fatalf("b after a was fenced: %v", kerr.ErrorForCode(rb.ErrorCode))
	}
	if assigned(rb).count() != 4 {
		t.Fatalf("b after a was fenced: %v", assigned(rb))
	}
	// b goes silent: removed after group.consumer.session.timeout.ms (45 s).
	clk.add(44 * time.Second)
	c.expire()
	if gi, _ := c.DescribeConsumer("g"); len(gi.Members) != 1 {
		t.Fatalf("before the session timeout: %+v", gi)
	}
	clk.add(2 * time.Second)
	c.expire()
	if gi, _ := c.DescribeConsumer("g"); gi.State != "Empty" {
		t.Fatalf("after the session timeout: %+v", gi)
	}
}

// A subscribed topic's new partitions, a created topic that matches, a deleted one:
// each bumps the group epoch at the next heartbeat and is assigned.
func TestConsumerMetadataChanges(t *testing.T) {
	c, _, tl := newConsumerTest(t, TopicMeta{Name: "t", ID: tid(1), Partitions: 2})
	r := c.hb(t, hbReq("g", "a", 0, nil, "t", "u"))
	if r.MemberEpoch != 1 || assigned(r).count() != 2 {
		t.Fatalf("join: epoch %d, %v", r.MemberEpoch, assigned(r))
	}
	tl.set(TopicMeta{Name: "t", ID: tid(1), Partitions: 3})
	r = c.hb(t, hbReq("g", "a", r.MemberEpoch, assigned(r), "t", "u"))
	if r.MemberEpoch != 2 || assigned(r).count() != 3 {
		t.Fatalf("after CreatePartitions: epoch %d, %v", r.MemberEpoch, assigned(r))
	}
	tl.set(TopicMeta{Name: "t", ID: tid(1), Partitions: 3}, TopicMeta{Name: "u", ID: tid(2), Partitions: 1}, TopicMeta{Name: "v", ID: tid(3), Partitions: 1})
	r = c.hb(t, hbReq("g", "a", r.MemberEpoch, assigned(r), "t", "u"))
	if r.MemberEpoch != 3 || assigned(r).count() != 4 {
		t.Fatalf("after u was created: epoch %d, %v", r.MemberEpoch, assigned(r))
	}
	// An unrelated topic changes nothing.
	tl.set(TopicMeta{Name: "t", ID: tid(1), Partitions: 3}, TopicMeta{Name: "u", ID: tid(2), Partitions: 1})
	r = c.hb(t, hbReq("g", "a", r.MemberEpoch, assigned(r), "t", "u"))
	if r.MemberEpoch != 3 {
		t.Fatalf("after v was deleted: epoch %d", r.MemberEpoch)
	}
	// t is deleted: its partitions are revoked (the member still lists them) and then gone.
	tl.set(TopicMeta{Name: "u", ID: tid(2), Partitions: 1})
	r = c.hb(t, hbReq("g", "a", r.MemberEpoch, assigned(r), "t", "u"))
	if assigned(r).count() != 1 {
		t.Fatalf("after t was deleted: %v", assigned(r))
	}
	r = c.hb(t, hbReq("g", "a", r.MemberEpoch, assigned(r), "t", "u"))
	if gi, _ := c.DescribeConsumer("g"); gi.State != "Stable" || r.MemberEpoch != gi.Epoch || gi.Epoch != 4 {
		t.Fatalf("after the revocation: %+v, member epoch %d", gi, r.MemberEpoch)
	}
}

// Offset commits of a consumer group's members: at the member's epoch, or at an older
// one for partitions it already had then (KIP-1251); transactional commits say
// ILLEGAL_GENERATION where plain ones say STALE_MEMBER_EPOCH; v8 is refused.
func TestConsumerCommitEpochs(t *testing.T) {
	c, _, _ := newConsumerTest(t, TopicMeta{Name: "t", ID: tid(1), Partitions: 4})
	a := c.hb(t, hbReq("g", "a", 0, nil, "t"))
	b := c.hb(t, hbReq("g", "b", 0, nil, "t"))
	a = c.hb(t, hbReq("g", "a", a.MemberEpoch, assigned(a), "t")) // told to revoke two
	a = c.hb(t, hbReq("g", "a", a.MemberEpoch, assigned(a), "t")) // revoked: epoch 2
	b = c.hb(t, hbReq("g", "b", b.MemberEpoch, nil, "t"))
	if a.MemberEpoch != 2 || b.MemberEpoch != 2 || assigned(a).count() != 2 || assigned(b).count() != 2 {
		t.Fatalf("a: epoch %d %v, b: epoch %d %v", a.MemberEpoch, assigned(a), b.MemberEpoch, assigned(b))
	}
	pa, pb := assigned(a)[tid(1)][0], assigned(b)[tid(1)][0]
	commit := func(member string, epoch int32, version int16, p int32) int16 {
		return c.CommitVersion("g", member, nil, epoch, version, map[string]map[int32]Committed{"t": {p: {Offset: 1}}})
	}
	for _, tc := range []struct {
		what    string
		member  string
		epoch   int32
		version int16
		p       int32
		want    *kerr.Error
	}{
		{"a at its epoch", "a", 2, 9, pa, nil},
		{"a at epoch 1, a partition it had then", "a", 1, 9, pa, nil},
		{"b at epoch 1, a partition it got at 2", "b", 1, 9, pb, kerr.StaleMemberEpoch},
		{"b ahead of its epoch", "b", 3, 9, pb, kerr.StaleMemberEpoch},
		{"b over v8", "b", 2, 8, pb, kerr.UnsupportedVersion},
		{"an unknown member", "z", 2, 9, pb, kerr.UnknownMemberID},
		{"no member, no epoch, while the group has members", "", -1, 9, pb, kerr.UnknownMemberID},
	} {
		want := int16(0)
		if tc.want != nil {
			want = tc.want.Code
		}
		if got := commit(tc.member, tc.epoch, tc.version, tc.p); got != want {
			t.Errorf("%s: %v, want %v", tc.what, kerr.ErrorForCode(got), tc.want)
		}
	}
	if got := c.CheckTxnMember("g", "b", nil, 1); got != kerr.IllegalGeneration.Code {
		t.Errorf("transactional commit at an old epoch: %v", kerr.ErrorForCode(got))
	}
	if got := c.CheckTxnMember("g", "b", nil, 2); got != 0 {
		t.Errorf("transactional commit at the epoch: %v", kerr.ErrorForCode(got))
	}
	if got := c.CheckFetch("g", nil, -1); got != 0 {
		t.Errorf("admin fetch: %v", kerr.ErrorForCode(got))
	}
}
