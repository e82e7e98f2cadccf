package broker

// ConsumerGroupHeartbeat / ConsumerGroupDescribe and the offset APIs of consumer groups
// at the protocol level (kmsg over a real connection): every error Kafka answers, and
// the reconciliation steps of a member that must give partitions up.

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/tagpipe/tagpipe/broker/groups"
)

type hbClient struct {
	t  *testing.T
	cl *kgo.Client
}

func (h hbClient) send(req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	h.t.Helper()
	resp, err := req.RequestWith(context.Background(), h.cl)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp
}

// join is a full epoch-0 heartbeat of member id subscribing to topics.
func join(group, id string, topics ...string) *kmsg.ConsumerGroupHeartbeatRequest {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Group, req.MemberID, req.MemberEpoch = group, id, 0
	req.RebalanceTimeoutMillis = 60000
	req.SubscribedTopicNames = append([]string{}, topics...)
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	return req
}

// beat is a full heartbeat of a member at epoch that owns what a gave it.
func beat(group, id string, epoch int32, owned *kmsg.ConsumerGroupHeartbeatResponseAssignment, topics ...string) *kmsg.ConsumerGroupHeartbeatRequest {
	req := join(group, id, topics...)
	req.MemberEpoch = epoch
	if owned != nil {
		for _, t := range owned.Topics {
			rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
			rt.TopicID, rt.Partitions = t.TopicID, t.Partitions
			req.Topics = append(req.Topics, rt)
		}
	}
	return req
}

func countParts(a *kmsg.ConsumerGroupHeartbeatResponseAssignment) int {
	if a == nil {
		return -1
	}
	n := 0
	for _, t := range a.Topics {
		n += len(t.Partitions)
	}
	return n
}

// wantCode fails unless got is want's code (nil: no error).
func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	code := int16(0)
	if want != nil {
		code = want.Code
	}
	if got != code {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func TestConsumerGroupHeartbeatErrors(t *testing.T) {
	b := startBroker(t, kip848Options(t))
	cl, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 4, 1, nil, "pe"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	h := hbClient{t, cl}
	str := func(s string) *string { return &s }

	invalid := []struct {
		name string
		mod  func(*kmsg.ConsumerGroupHeartbeatRequest)
		msg  string
	}{
		{"no member id (v1)", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, "MemberId can't be empty."},
		{"empty instance id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = str("") }, "InstanceId can't be empty."},
		{"empty rack id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RackID = str("") }, "RackId can't be empty."},
		{"join without rebalance timeout", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = -1 }, "RebalanceTimeoutMs must be provided in first request."},
		{"join owning partitions", func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{{Partitions: []int32{0}}}
		}, "TopicPartitions must be empty when (re-)joining."},
		{"join with null owned partitions", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Topics = nil }, "TopicPartitions must be empty when (re-)joining."},
		{"join without subscription", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.SubscribedTopicNames = nil },
			"Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining."},
		{"static leave without instance id", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -2 }, "InstanceId can't be null."},
		{"epoch below -2", func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -3 }, "MemberEpoch is invalid."},
	}
	for _, c := range invalid {
		req := join("pg", "m-invalid", "pe")
		c.mod(req)
		resp := h.send(req)
		wantCode(t, c.name, resp.ErrorCode, kerr.InvalidRequest)
		if resp.ErrorMessage == nil || *resp.ErrorMessage != c.msg {
			t.Fatalf("%s: message %v, want %q", c.name, resp.ErrorMessage, c.msg)
		}
	}
	req := join("pg", "m1", "pe")
	req.ServerAssignor = str("sticky")
	resp := h.send(req)
	wantCode(t, "unknown assignor", resp.ErrorCode, kerr.UnsupportedAssignor)
	if resp.ErrorMessage == nil || *resp.ErrorMessage != "ServerAssignor sticky is not supported. Supported assignors: uniform, range." {
		t.Fatalf("unknown assignor message %v", resp.ErrorMessage)
	}
	req = join("pg", "m1")
	req.SubscribedTopicNames, req.SubscribedTopicRegex = nil, str("pe(")
	wantCode(t, "bad regex", h.send(req).ErrorCode, kerr.InvalidRegularExpression)

	// An empty group id, straight to the broker (a coordinator lookup would fail first).
	empty := raw[*kmsg.ConsumerGroupHeartbeatResponse](t, cl, join("", "m1", "pe"))
	wantCode(t, "empty group id", empty.ErrorCode, kerr.InvalidRequest)
	if empty.ErrorMessage == nil || *empty.ErrorMessage != "GroupId can't be empty." || empty.HeartbeatIntervalMillis != 0 {
		t.Fatalf("empty group id: %+v", empty)
	}
	// v0: the coordinator names a member that comes without an id.
	v0 := cappedClient(t, b.Addr(), kmsg.ConsumerGroupHeartbeat, 0)
	r0, err := join("pg0", "", "pe").RequestWith(ctx, v0)
	if err != nil || r0.Version != 0 || r0.ErrorCode != 0 || r0.MemberID == nil || *r0.MemberID == "" || r0.MemberEpoch != 1 || countParts(r0.Assignment) != 4 {
		t.Fatalf("v0 join without a member id: %+v %v", r0, err)
	}
	wantCode(t, "a heartbeat (epoch > 0) without a member id", h.send(beat("pg0", "", 1, nil, "pe")).ErrorCode, kerr.InvalidRequest)

	// Nothing above created the group.
	wantCode(t, "leave of an unknown group", h.send(beat("pg", "m1", -1, nil)).ErrorCode, kerr.GroupIDNotFound)

	// A member joins: all four partitions, epoch 1; the heartbeat interval is the broker's.
	j := h.send(join("pg", "m1", "pe"))
	if j.ErrorCode != 0 || j.MemberEpoch != 1 || *j.MemberID != "m1" || countParts(j.Assignment) != 4 || j.HeartbeatIntervalMillis != 100 {
		t.Fatalf("join: %+v", j)
	}
	wantCode(t, "unknown member", h.send(beat("pg", "nobody", 1, nil, "pe")).ErrorCode, kerr.UnknownMemberID)
	wantCode(t, "greater epoch", h.send(beat("pg", "m1", 2, j.Assignment, "pe")).ErrorCode, kerr.FencedMemberEpoch)
	wantCode(t, "leave of an unknown member", h.send(beat("pg", "nobody", -1, nil)).ErrorCode, kerr.UnknownMemberID)
	// A keepalive (nothing but group, member and epoch) gets no assignment.
	ka := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	ka.Group, ka.MemberID, ka.MemberEpoch = "pg", "m1", 1
	if r := h.send(ka); r.ErrorCode != 0 || r.MemberEpoch != 1 || r.Assignment != nil {
		t.Fatalf("keepalive: %+v", r)
	}

	// A second member: m1 must give two partitions up first, at its epoch; m2 gets the
	// new epoch and nothing until m1's heartbeat no longer lists them.
	j2 := h.send(join("pg", "m2", "pe"))
	if j2.ErrorCode != 0 || j2.MemberEpoch != 2 || countParts(j2.Assignment) != 0 {
		t.Fatalf("second join: %+v (%d partitions)", j2, countParts(j2.Assignment))
	}
	r1 := h.send(beat("pg", "m1", 1, j.Assignment, "pe"))
	if r1.ErrorCode != 0 || r1.MemberEpoch != 1 || countParts(r1.Assignment) != 2 {
		t.Fatalf("m1 told to revoke: %+v (%d partitions)", r1, countParts(r1.Assignment))
	}
	if r := h.send(beat("pg", "m2", 2, j2.Assignment, "pe")); r.ErrorCode != 0 || countParts(r.Assignment) != 0 {
		t.Fatalf("m2 before m1 revoked: %d partitions", countParts(r.Assignment))
	}
	// A keepalive of m1 still owns them as far as the coordinator knows.
	if r := h.send(ka); r.ErrorCode != 0 || r.MemberEpoch != 1 {
		t.Fatalf("m1 keepalive while revoking: %+v", r)
	}
	g := describeConsumerGroup(t, cl, "pg")
	if g.State != "Reconciling" || g.Epoch != 2 || g.AssignmentEpoch != 2 || g.AssignorName != "uniform" {
		t.Fatalf("while reconciling: state %s epoch %d/%d assignor %s", g.State, g.Epoch, g.AssignmentEpoch, g.AssignorName)
	}
	r1 = h.send(beat("pg", "m1", 1, r1.Assignment, "pe")) // revoked
	if r1.ErrorCode != 0 || r1.MemberEpoch != 2 || countParts(r1.Assignment) != 2 {
		t.Fatalf("m1 after revoking: %+v", r1)
	}
	r2 := h.send(beat("pg", "m2", 2, j2.Assignment, "pe"))
	if r2.ErrorCode != 0 || r2.MemberEpoch != 2 || countParts(r2.Assignment) != 2 {
		t.Fatalf("m2 after m1 revoked: %+v", r2)
	}
	for _, a := range r2.Assignment.Topics[0].Partitions {
		if slices.Contains(r1.Assignment.Topics[0].Partitions, a) {
			t.Fatalf("partition %d given to both members", a)
		}
	}
	if g := describeConsumerGroup(t, cl, "pg"); g.State != "Stable" || len(g.Members) != 2 {
		t.Fatalf("after reconciliation: %+v", g)
	}
	// The previous epoch is taken while the member owns only its current partitions
	// (the response with the new one may have been lost), not otherwise.
	if r := h.send(beat("pg", "m1", 1, r1.Assignment, "pe")); r.ErrorCode != 0 || r.MemberEpoch != 2 {
		t.Fatalf("previous epoch with a subset: %+v", r)
	}
	wantCode(t, "previous epoch owning more", h.send(beat("pg", "m1", 1, j.Assignment, "pe")).ErrorCode, kerr.FencedMemberEpoch)

	// Offsets: a member commits at its epoch; another epoch is STALE_MEMBER_EPOCH, an
	// unknown member UNKNOWN_MEMBER_ID, the same commit over v8 UNSUPPORTED_VERSION.
	commit := func(c *kgo.Client, member string, epoch int32, part int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.MemberID, req.Generation = "pg", member, epoch
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "pe"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = part, 7
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	p1 := r1.Assignment.Topics[0].Partitions[0]
	wantCode(t, "commit at the epoch", commit(cl, "m1", 2, p1), nil)
	wantCode(t, "commit ahead of the epoch", commit(cl, "m1", 3, p1), kerr.StaleMemberEpoch)
	wantCode(t, "commit of an unknown member", commit(cl, "nobody", 2, p1), kerr.UnknownMemberID)
	wantCode(t, "admin commit to a group with members", commit(cl, "", -1, p1), kerr.UnknownMemberID)
	wantCode(t, "commit over v8", commit(cappedClient(t, b.Addr(), kmsg.OffsetCommit, 8), "m1", 2, p1), kerr.UnsupportedVersion)

	fetch := func(member *string, epoch int32) int16 {
		req := kmsg.NewPtrOffsetFetchRequest()
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group, rg.MemberID, rg.MemberEpoch = "pg", member, epoch
		req.Groups = append(req.Groups, rg)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Groups[0].ErrorCode
	}
	wantCode(t, "fetch at the epoch", fetch(str("m1"), 2), nil)
	wantCode(t, "fetch at another epoch", fetch(str("m1"), 1), kerr.StaleMemberEpoch)
	wantCode(t, "fetch of an unknown member", fetch(str("nobody"), 2), kerr.UnknownMemberID)
	wantCode(t, "admin fetch", fetch(nil, -1), nil)

	// Both leave: the group is Empty, its offsets stay.
	for _, m := range []string{"m1", "m2"} {
		if r := h.send(beat("pg", m, -1, nil)); r.ErrorCode != 0 || r.MemberEpoch != -1 {
			t.Fatalf("leave of %s: %+v", m, r)
		}
	}
	if g := describeConsumerGroup(t, cl, "pg"); g.State != "Empty" || len(g.Members) != 0 {
		t.Fatalf("after the leaves: %+v", g)
	}
	wantCode(t, "admin commit to the empty group", commit(cl, "", -1, p1), nil)
}

// cappedClient is a client that sends the API key at most at version v.
func cappedClient(t *testing.T, addr string, key kmsg.Key, v int16) *kgo.Client {
	t.Helper()
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(key), v)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxVersions(vs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func describeConsumerGroup(t *testing.T, cl *kgo.Client, group string) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Groups[0]
}

// Static membership: a member with an instance id leaves with epoch -2 and keeps its
// partitions for its next incarnation, which takes them over; a second member with the
// same instance id is refused while the first is in the group, and the replaced one is
// fenced.
func TestConsumerGroupStaticMembers(t *testing.T) {
	b := startBroker(t, kip848Options(t))
	cl, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 4, 1, nil, "ps"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	h := hbClient{t, cl}
	inst := "i-1"
	static := func(id string) *kmsg.ConsumerGroupHeartbeatRequest {
		r := join("sg", id, "ps")
		r.InstanceID = &inst
		return r
	}
	a := h.send(static("a"))
	o := h.send(join("sg", "other", "ps"))
	if a.ErrorCode != 0 || o.ErrorCode != 0 {
		t.Fatalf("joins: %+v %+v", a, o)
	}
	// Settle: a revokes what goes to other.
	a = h.send(beat("sg", "a", a.MemberEpoch, a.Assignment, "ps"))
	a = h.send(beat("sg", "a", a.MemberEpoch, a.Assignment, "ps"))
	o = h.send(beat("sg", "other", o.MemberEpoch, o.Assignment, "ps"))
	if countParts(a.Assignment) != 2 || countParts(o.Assignment) != 2 {
		t.Fatalf("settled: a %d, other %d partitions", countParts(a.Assignment), countParts(o.Assignment))
	}
	wantCode(t, "same instance id while a is in", h.send(static("b")).ErrorCode, kerr.UnreleasedInstanceID)
	leave := beat("sg", "a", -2, nil)
	leave.InstanceID = &inst
	if r := h.send(leave); r.ErrorCode != 0 || r.MemberEpoch != -2 {
		t.Fatalf("static leave: %+v", r)
	}
	epoch := describeConsumerGroup(t, cl, "sg").Epoch
	bj := h.send(static("b"))
	if bj.ErrorCode != 0 || countParts(bj.Assignment) != 2 {
		t.Fatalf("new incarnation: %+v (%d partitions)", bj, countParts(bj.Assignment))
	}
	if !slices.Equal(bj.Assignment.Topics[0].Partitions, a.Assignment.Topics[0].Partitions) {
		t.Fatalf("new incarnation got %v, its predecessor had %v", bj.Assignment.Topics[0].Partitions, a.Assignment.Topics[0].Partitions)
	}
	if g := describeConsumerGroup(t, cl, "sg"); g.Epoch != epoch || len(g.Members) != 2 {
		t.Fatalf("a static member's return moved the epoch %d → %d or the members: %+v", epoch, g.Epoch, g.Members)
	}
	old := beat("sg", "a", a.MemberEpoch, a.Assignment, "ps")
	old.InstanceID = &inst
	wantCode(t, "the replaced incarnation", h.send(old).ErrorCode, kerr.FencedInstanceID)
}

// A group's type decides who may join: an Empty classic group (offsets only) becomes a
// consumer group at its first heartbeat and keeps its offsets; a classic group with
// members is not one (GROUP_ID_NOT_FOUND), and a classic JoinGroup to a consumer group
// with members is INCONSISTENT_GROUP_PROTOCOL (online migration is not served).
func TestConsumerGroupClassicConversion(t *testing.T) {
	o := kip848Options(t)
	b := startBroker(t, o)
	cl, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "cc"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	h := hbClient{t, cl}
	// Offsets only (an admin commit): an Empty classic group.
	if code := b.groups.Commit("conv", "", -1, map[string]map[int32]groups.Committed{"cc": {0: {Offset: 5}}}); code != 0 {
		t.Fatal(kerr.ErrorForCode(code))
	}
	if lg, err := adm.ListGroups(ctx); err != nil || lg["conv"].State != "Empty" {
		t.Fatalf("list: %v %v", lg, err)
	}
	j := h.send(join("conv", "m1", "cc"))
	if j.ErrorCode != 0 || countParts(j.Assignment) != 2 {
		t.Fatalf("join of the empty classic group: %+v", j)
	}
	offs, err := adm.FetchOffsets(ctx, "conv")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("cc", 0); o.At != 5 {
		t.Fatalf("offset after the conversion: %+v", o)
	}
	// Classic consumers cannot join while it has members.
	jr := kmsg.NewPtrJoinGroupRequest()
	jr.Group, jr.SessionTimeoutMillis, jr.RebalanceTimeoutMillis, jr.ProtocolType = "conv", 10000, 10000, "consumer"
	jr.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0}}}
	jresp, err := jr.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "classic join to a consumer group", jresp.ErrorCode, kerr.InconsistentGroupProtocol)
	// Once empty, a classic join converts it back.
	h.send(beat("conv", "m1", -1, nil))
	cg, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("conv"), kgo.ConsumeTopics("cc"),
		kgo.SessionTimeout(2*time.Second), kgo.HeartbeatInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	waitFor(t, "a classic member", func() bool {
		gs, err := adm.DescribeGroups(ctx, "conv")
		return err == nil && gs["conv"].State == "Stable" && len(gs["conv"].Members) == 1
	})
	r := h.send(join("conv", "m2", "cc"))
	wantCode(t, "heartbeat to a classic group with members", r.ErrorCode, kerr.GroupIDNotFound)
	if r.ErrorMessage == nil || *r.ErrorMessage != "Group conv is not a consumer group." {
		t.Fatalf("message %v", r.ErrorMessage)
	}
	if d := describeConsumerGroup(t, cl, "conv"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("ConsumerGroupDescribe of a classic group: %v", kerr.ErrorForCode(d.ErrorCode))
	}
}
