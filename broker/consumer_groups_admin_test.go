package broker

// Consumer groups (KIP-848) through the admin APIs: ListGroups v5 (types), DescribeGroups
// (Dead, as Kafka 4 answers), DeleteGroups, OffsetDelete, ApiVersions, DescribeConfigs,
// and the ACLs of ConsumerGroupHeartbeat / ConsumerGroupDescribe.

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestConsumerGroupAdmin(t *testing.T) {
	b := startBroker(t, kip848Options(t))
	cl, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	if r, err := adm.CreateTopic(ctx, 2, 1, nil, "ad"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "other"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	h := hbClient{t, cl}
	j := h.send(join("cg", "m1", "ad"))
	if j.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(j.ErrorCode))
	}
	// An offsets-only classic group next to it.
	if _, err := adm.CommitOffsets(ctx, "classic", kadm.Offsets{"other": {0: {Topic: "other", Partition: 0, At: 1, LeaderEpoch: -1}}}); err != nil {
		t.Fatal(err)
	}

	rc := dialRaw(t, b.Addr())
	avReq := apiVersionsReq(3)
	rc.send(avReq)
	versions := rc.readInOrder([]kmsg.Request{avReq})[0].(*kmsg.ApiVersionsResponse)
	want := map[int16][2]int16{68: {0, 1}, 69: {0, 1}, 16: {0, 5}}
	for _, k := range versions.ApiKeys {
		if w, ok := want[k.ApiKey]; ok {
			if k.MinVersion != w[0] || k.MaxVersion != w[1] {
				t.Fatalf("api %d: versions %d-%d, want %d-%d", k.ApiKey, k.MinVersion, k.MaxVersion, w[0], w[1])
			}
			delete(want, k.ApiKey)
		}
	}
	if len(want) > 0 {
		t.Fatalf("not advertised: %v", want)
	}

	lreq := kmsg.NewPtrListGroupsRequest()
	list := func(types ...string) map[string]kmsg.ListGroupsResponseGroup {
		lreq.TypesFilter = types
		out := map[string]kmsg.ListGroupsResponseGroup{}
		for _, g := range raw[*kmsg.ListGroupsResponse](t, cl, lreq).Groups {
			out[g.Group] = g
		}
		return out
	}
	all := list()
	if g := all["cg"]; g.GroupType != "consumer" || g.ProtocolType != "consumer" || g.GroupState != "Stable" {
		t.Fatalf("listed consumer group: %+v", g)
	}
	if g := all["classic"]; g.GroupType != "classic" || g.GroupState != "Empty" {
		t.Fatalf("listed classic group: %+v", g)
	}
	if gs := list(" Consumer "); len(gs) != 1 || gs["cg"].Group != "cg" {
		t.Fatalf("types filter consumer: %v", gs)
	}
	if gs := list("classic"); len(gs) != 1 || gs["classic"].Group != "classic" {
		t.Fatalf("types filter classic: %v", gs)
	}
	if lg, err := adm.ListGroups(ctx, "Stable"); err != nil || len(lg) != 1 || lg["cg"].State != "Stable" {
		t.Fatalf("state filter: %v %v", lg, err)
	}
	dg, err := adm.DescribeGroups(ctx, "cg")
	if err != nil || dg["cg"].State != "Dead" || len(dg["cg"].Members) != 0 {
		t.Fatalf("DescribeGroups of a consumer group: %+v %v", dg["cg"], err)
	}
	// What the group metrics (tagpipe_broker_group_members) count.
	if gi, _ := b.groups.Describe("cg"); gi.Type != "consumer" || len(gi.Members) != 1 || gi.State != "Stable" {
		t.Fatalf("coordinator's Describe of a consumer group: %+v", gi)
	}
	cgs, err := adm.DescribeConsumerGroups(ctx, "cg")
	if err != nil {
		t.Fatal(err)
	}
	d := cgs["cg"]
	if d.Err != nil || d.State != "Stable" || len(d.Members) != 1 || len(d.Members[0].Assignment["ad"]) != 2 ||
		len(d.Members[0].TargetAssignment["ad"]) != 2 || d.Members[0].SubscribedTopics[0] != "ad" || d.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("DescribeConsumerGroups: %+v", d)
	}
	if unknown := describeConsumerGroup(t, cl, "nope"); unknown.ErrorCode != kerr.GroupIDNotFound.Code || *unknown.ErrorMessage != "Group nope not found." {
		t.Fatalf("unknown group: %+v", unknown)
	}

	// Offsets of a subscribed topic cannot be deleted; others can.
	if r, err := adm.CommitOffsets(ctx, "cg", kadm.Offsets{"other": {0: {Topic: "other", Partition: 0, At: 1, LeaderEpoch: -1}}}); err != nil || r.Error() != kerr.UnknownMemberID {
		t.Fatalf("an admin commit to a group with members: %v %v", err, r.Error())
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.MemberID, commit.Generation = "cg", "m1", j.MemberEpoch
	for _, topic := range []string{"ad", "other"} {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = 1
		rt.Partitions = append(rt.Partitions, rp)
		commit.Topics = append(commit.Topics, rt)
	}
	if resp, err := commit.RequestWith(ctx, cl); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 || resp.Topics[1].Partitions[0].ErrorCode != 0 {
		t.Fatalf("member commit: %+v %v", resp, err)
	}
	dr, err := adm.DeleteOffsets(ctx, "cg", kadm.TopicsSet{"ad": {0: {}}, "other": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e := dr["ad"][0]; e != kerr.GroupSubscribedToTopic {
		t.Fatalf("deleting a subscribed topic's offset: %v", e)
	}
	if e := dr["other"][0]; e != nil {
		t.Fatalf("deleting an unsubscribed topic's offset: %v", e)
	}

	// A group with members cannot be deleted; once they leave it can, offsets and all.
	if rs, err := adm.DeleteGroups(ctx, "cg"); err != nil || rs["cg"].Err != kerr.NonEmptyGroup {
		t.Fatalf("delete with members: %+v %v", rs, err)
	}
	h.send(beat("cg", "m1", -1, nil))
	if rs, err := adm.DeleteGroups(ctx, "cg"); err != nil || rs["cg"].Err != nil {
		t.Fatalf("delete once empty: %+v %v", rs, err)
	}
	if lg, err := adm.ListGroups(ctx); err != nil || len(lg) != 1 {
		t.Fatalf("groups after the delete: %v %v", lg, err)
	}

	bcs, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range bcs {
		for _, c := range r.Configs {
			got[c.Key] = c.MaybeValue()
		}
	}
	if got["group.consumer.session.timeout.ms"] != "3000" || got["group.consumer.heartbeat.interval.ms"] != "100" {
		t.Fatalf("broker configs: session %q heartbeat %q", got["group.consumer.session.timeout.ms"], got["group.consumer.heartbeat.interval.ms"])
	}
}

// ConsumerGroupHeartbeat needs READ on the group and DESCRIBE on each subscribed topic;
// ConsumerGroupDescribe DESCRIBE on the group and on the topics its members use.
func TestConsumerGroupACLs(t *testing.T) {
	b := startBroker(t, aclOptions(t))
	adminCl, admin := userClient(t, b, "admin")
	ctx := testCtx(t)
	for _, topic := range []string{"secret", "open"} {
		if _, err := admin.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	alice, _ := userClient(t, b, "alice")
	hb := func(topic string) int16 {
		// Straight to the broker: the coordinator lookup would fail first.
		return raw[*kmsg.ConsumerGroupHeartbeatResponse](t, alice, join("ag", "a1", topic)).ErrorCode
	}
	wantCode(t, "heartbeat without READ on the group", hb("open"), kerr.GroupAuthorizationFailed)
	grant(t, admin, kadm.NewACLs().Allow("User:alice").ResourcePatternType(kadm.ACLPatternLiteral).Groups("ag").Operations(kadm.OpRead, kadm.OpDescribe))
	wantCode(t, "heartbeat subscribing to a topic it may not describe", hb("secret"), kerr.TopicAuthorizationFailed)
	grant(t, admin, kadm.NewACLs().Allow("User:alice").ResourcePatternType(kadm.ACLPatternLiteral).Topics("open").Operations(kadm.OpDescribe))
	wantCode(t, "heartbeat with the ACLs", hb("open"), nil)
	if d := describeConsumerGroup(t, alice, "ag"); d.ErrorCode != 0 || len(d.Members) != 1 {
		t.Fatalf("describe with the ACLs: %+v", d)
	}
	// bob may describe the group but not the topic its member reads.
	bob, _ := userClient(t, b, "bob")
	grant(t, admin, kadm.NewACLs().Allow("User:bob").ResourcePatternType(kadm.ACLPatternLiteral).Groups("ag").Operations(kadm.OpDescribe))
	if d := describeConsumerGroup(t, bob, "ag"); d.ErrorCode != kerr.TopicAuthorizationFailed.Code || len(d.Members) != 0 {
		t.Fatalf("describe without DESCRIBE on the topic: %+v", d)
	}
	if d := describeConsumerGroup(t, adminCl, "other"); d.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("super user, unknown group: %+v", d)
	}
}
