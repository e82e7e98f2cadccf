package broker

// The admin APIs management tools call (AKHQ, Kafbat, Redpanda Console, kafka-acls.sh,
// kafka-leader-election.sh, kadm) and Java consumers' position validation, answered as a
// single Kafka node without an authorizer answers them: through kadm where it has the
// call, raw kmsg requests over TCP otherwise.

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's Partition.lastOffsetForLeaderEpoch with LeaderEpochFileCache.endOffsetFor on a
// cache of one epoch (0, from the log start): epoch 0 ends at the log end, -1 and newer
// epochs are unknown (no error, -1/-1), older ones end at the log start;
// CurrentLeaderEpoch fences as in ListOffsets.
func TestOffsetForLeaderEpoch(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "ofle")
	p := b.partition("ofle", 0)
	for range 3 {
		if _, err := p.log.Append(batch(4, 1000, []byte("e"))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.log.DeleteRecordsBefore(2); err != nil {
		t.Fatal(err)
	}

	_, adm := newAdmin(t, b.Addr())
	var req kadm.OffsetForLeaderEpochRequest
	req.Add("ofle", 0, 0)
	req.Add("ofle", 1, 0)
	res, err := adm.OffsetForLeaderEpoch(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	if r := res["ofle"][0]; r.Err != nil || r.LeaderEpoch != 0 || r.EndOffset != 12 {
		t.Errorf("kadm partition 0 epoch 0: %+v, want epoch 0 end 12", r)
	}
	if r := res["ofle"][1]; r.Err != nil || r.LeaderEpoch != 0 || r.EndOffset != 0 {
		t.Errorf("kadm empty partition 1 epoch 0: %+v, want epoch 0 end 0", r)
	}

	type want struct {
		code  int16
		epoch int32
		end   int64
	}
	cases := []struct {
		name           string
		topic          string
		partition      int32
		current, epoch int32
		want           want
	}{
		{"epoch 0", "ofle", 0, -1, 0, want{0, 0, 12}},
		{"epoch 0, current 0", "ofle", 0, 0, 0, want{0, 0, 12}},
		{"undefined epoch", "ofle", 0, -1, -1, want{0, -1, -1}},
		{"newer epoch", "ofle", 0, -1, 5, want{0, -1, -1}},
		{"older epoch", "ofle", 0, -1, -3, want{0, -3, 2}},
		{"current newer", "ofle", 0, 3, 0, want{kerr.UnknownLeaderEpoch.Code, -1, -1}},
		{"current older", "ofle", 0, -2, 0, want{kerr.FencedLeaderEpoch.Code, -1, -1}},
		{"unknown partition", "ofle", 9, -1, 0, want{kerr.UnknownTopicOrPartition.Code, -1, -1}},
		{"unknown topic", "nope", 0, -1, 0, want{kerr.UnknownTopicOrPartition.Code, -1, -1}},
	}
	for v := int16(0); v <= 4; v++ {
		raw := kmsg.NewPtrOffsetForLeaderEpochRequest()
		raw.Version, raw.ReplicaID = v, 0 // a follower's id: answered from the leader all the same
		for _, tc := range cases {
			if v < 2 && tc.current != -1 {
				continue // CurrentLeaderEpoch is v2+
			}
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = tc.topic
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = tc.partition, tc.current, tc.epoch
			rt.Partitions = append(rt.Partitions, rp)
			raw.Topics = append(raw.Topics, rt) // one entry per case: the same topic repeats
		}
		resp := roundTrip[*kmsg.OffsetForLeaderEpochResponse](t, b.Addr(), raw)
		i := 0
		for _, tc := range cases {
			if v < 2 && tc.current != -1 {
				continue
			}
			if i >= len(resp.Topics) || len(resp.Topics[i].Partitions) != 1 {
				t.Fatalf("v%d: %d topic entries for %d asked", v, len(resp.Topics), len(raw.Topics))
			}
			rt, rp := resp.Topics[i], resp.Topics[i].Partitions[0]
			i++
			w := tc.want
			if v == 0 {
				w.epoch = -1 // not in v0: decoded as the field's default
			}
			if rt.Topic != tc.topic || rp.Partition != tc.partition || rp.ErrorCode != w.code || rp.LeaderEpoch != w.epoch || rp.EndOffset != w.end {
				t.Errorf("v%d %s: %s/%d error %d epoch %d end %d, want error %d epoch %d end %d", v, tc.name,
					rt.Topic, rp.Partition, rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset, w.code, w.epoch, w.end)
			}
		}
	}
}

// aclUnknownClosesConnection sends req, which names an UNKNOWN (0) ACL element, and
// expects the connection to close, as Kafka refuses such a request while it parses.
func aclUnknownClosesConnection(t *testing.T, addr string, req kmsg.Request) {
	t.Helper()
	c := dialRaw(t, addr)
	c.send(req)
	c.expectClosed()
}

// Kafka's AclApis.handleDescribeAcls without an authorizer: SECURITY_DISABLED, "No
// Authorizer is configured on the broker", no resources.
func TestDescribeACLsSecurityDisabled(t *testing.T) {
	b := startBroker(t, testOptions(t))
	_, adm := newAdmin(t, b.Addr())
	rs, err := adm.DescribeACLs(testCtx(t), kadm.NewACLs().AnyResource().Allow().AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		t.Fatal("no results")
	}
	for _, r := range rs {
		if !errors.Is(r.Err, kerr.SecurityDisabled) || r.ErrMessage != "No Authorizer is configured on the broker" || len(r.Described) != 0 {
			t.Errorf("kadm describe: %v %q %v", r.Err, r.ErrMessage, r.Described)
		}
	}
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrDescribeACLsRequest()
		req.Version = v
		req.ResourceType, req.Operation, req.PermissionType = kmsg.ACLResourceTypeTopic, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
		resp := roundTrip[*kmsg.DescribeACLsResponse](t, b.Addr(), req)
		if resp.ErrorCode != kerr.SecurityDisabled.Code || resp.ErrorMessage == nil || len(resp.Resources) != 0 {
			t.Errorf("v%d: %+v", v, resp)
		}
	}
	req := kmsg.NewPtrDescribeACLsRequest()
	req.Version = 3
	req.ResourceType, req.Operation, req.PermissionType = kmsg.ACLResourceTypeTopic, kmsg.ACLOperationAny, 0 // UNKNOWN
	aclUnknownClosesConnection(t, b.Addr(), req)
}

// Kafka's AclApis.handleCreateAcls without an authorizer: every creation
// SECURITY_DISABLED, "No Authorizer is configured.".
func TestCreateACLsSecurityDisabled(t *testing.T) {
	b := startBroker(t, testOptions(t))
	_, adm := newAdmin(t, b.Addr())
	rs, err := adm.CreateACLs(testCtx(t), kadm.NewACLs().Topics("a", "b").Allow("User:x").Operations(kadm.OpRead))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2", len(rs))
	}
	for _, r := range rs {
		if !errors.Is(r.Err, kerr.SecurityDisabled) || r.ErrMessage != "No Authorizer is configured." {
			t.Errorf("kadm create %s: %v %q", r.Name, r.Err, r.ErrMessage)
		}
	}
	creation := func(op kmsg.ACLOperation) kmsg.CreateACLsRequestCreation {
		cr := kmsg.NewCreateACLsRequestCreation()
		cr.ResourceType, cr.ResourceName, cr.Principal, cr.Host = kmsg.ACLResourceTypeTopic, "t", "User:x", "*"
		cr.Operation, cr.PermissionType = op, kmsg.ACLPermissionTypeAllow
		return cr
	}
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrCreateACLsRequest()
		req.Version = v
		req.Creations = append(req.Creations, creation(kmsg.ACLOperationRead), creation(kmsg.ACLOperationWrite), creation(kmsg.ACLOperationRead))
		resp := roundTrip[*kmsg.CreateACLsResponse](t, b.Addr(), req)
		if len(resp.Results) != 3 {
			t.Fatalf("v%d: %d results for 3 creations", v, len(resp.Results))
		}
		for _, r := range resp.Results {
			if r.ErrorCode != kerr.SecurityDisabled.Code || r.ErrorMessage == nil || *r.ErrorMessage != "No Authorizer is configured." {
				t.Errorf("v%d: %+v", v, r)
			}
		}
	}
	req := kmsg.NewPtrCreateACLsRequest()
	req.Version = 3
	req.Creations = append(req.Creations, creation(kmsg.ACLOperationRead), creation(0)) // UNKNOWN operation
	aclUnknownClosesConnection(t, b.Addr(), req)
}

// Kafka's AclApis.handleDeleteAcls without an authorizer: every filter
// SECURITY_DISABLED, "No Authorizer is configured.", nothing matched.
func TestDeleteACLsSecurityDisabled(t *testing.T) {
	b := startBroker(t, testOptions(t))
	_, adm := newAdmin(t, b.Addr())
	rs, err := adm.DeleteACLs(testCtx(t), kadm.NewACLs().Topics("a").Groups("g").Allow().AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		t.Fatal("no results")
	}
	for _, r := range rs {
		if !errors.Is(r.Err, kerr.SecurityDisabled) || r.ErrMessage != "No Authorizer is configured." || len(r.Deleted) != 0 {
			t.Errorf("kadm delete: %v %q %v", r.Err, r.ErrMessage, r.Deleted)
		}
	}
	filter := func(perm kmsg.ACLPermissionType) kmsg.DeleteACLsRequestFilter {
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.Operation, f.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLOperationAny, perm
		return f
	}
	for v := int16(0); v <= 3; v++ {
		req := kmsg.NewPtrDeleteACLsRequest()
		req.Version = v
		req.Filters = append(req.Filters, filter(kmsg.ACLPermissionTypeAny), filter(kmsg.ACLPermissionTypeDeny))
		resp := roundTrip[*kmsg.DeleteACLsResponse](t, b.Addr(), req)
		if len(resp.Results) != 2 {
			t.Fatalf("v%d: %d results for 2 filters", v, len(resp.Results))
		}
		for _, r := range resp.Results {
			if r.ErrorCode != kerr.SecurityDisabled.Code || r.ErrorMessage == nil || len(r.MatchingACLs) != 0 {
				t.Errorf("v%d: %+v", v, r)
			}
		}
	}
	req := kmsg.NewPtrDeleteACLsRequest()
	req.Version = 3
	req.Filters = append(req.Filters, filter(0)) // UNKNOWN permission type
	aclUnknownClosesConnection(t, b.Addr(), req)
}

// No quota is set here: a valid filter describes nothing; a bad one is answered as
// Kafka's ClientQuotasImage.describe refuses it (top-level error, null entries).
func TestDescribeClientQuotasNone(t *testing.T) {
	b := startBroker(t, testOptions(t))
	_, adm := newAdmin(t, b.Addr())
	alice := "alice"
	qs, err := adm.DescribeClientQuotas(testCtx(t), false, []kadm.DescribeClientQuotaComponent{
		{Type: "user", MatchName: &alice, MatchType: kmsg.QuotasMatchTypeExact},
		{Type: "client-id", MatchType: kmsg.QuotasMatchTypeAny},
	})
	if err != nil || len(qs) != 0 {
		t.Fatalf("kadm describe: %v %v", qs, err)
	}
	if _, err := adm.DescribeClientQuotas(testCtx(t), true, nil); err != nil {
		t.Fatalf("kadm describe everything: %v", err)
	}
	comp := func(typ string, mt kmsg.QuotasMatchType, match *string) kmsg.DescribeClientQuotasRequestComponent {
		c := kmsg.NewDescribeClientQuotasRequestComponent()
		c.EntityType, c.MatchType, c.Match = typ, mt, match
		return c
	}
	exact, dflt, specified := kmsg.QuotasMatchTypeExact, kmsg.QuotasMatchTypeDefault, kmsg.QuotasMatchTypeAny
	cases := []struct {
		name  string
		comps []kmsg.DescribeClientQuotasRequestComponent
		code  int16
	}{
		{"all", nil, 0},
		{"default user", []kmsg.DescribeClientQuotasRequestComponent{comp("user", dflt, nil)}, 0},
		{"ip", []kmsg.DescribeClientQuotasRequestComponent{comp("ip", specified, nil)}, 0},
		{"empty type", []kmsg.DescribeClientQuotasRequestComponent{comp("", specified, nil)}, kerr.InvalidRequest.Code},
		{"type twice", []kmsg.DescribeClientQuotasRequestComponent{comp("user", specified, nil), comp("user", exact, &alice)}, kerr.InvalidRequest.Code},
		{"custom type", []kmsg.DescribeClientQuotasRequestComponent{comp("tenant", specified, nil)}, kerr.UnsupportedVersion.Code},
		{"exact null", []kmsg.DescribeClientQuotasRequestComponent{comp("user", exact, nil)}, kerr.InvalidRequest.Code},
		{"default with name", []kmsg.DescribeClientQuotasRequestComponent{comp("user", dflt, &alice)}, kerr.InvalidRequest.Code},
		{"specified with name", []kmsg.DescribeClientQuotasRequestComponent{comp("user", specified, &alice)}, kerr.InvalidRequest.Code},
		{"unknown match type", []kmsg.DescribeClientQuotasRequestComponent{comp("user", 7, nil)}, kerr.InvalidRequest.Code},
		{"ip with user", []kmsg.DescribeClientQuotasRequestComponent{comp("ip", specified, nil), comp("user", specified, nil)}, kerr.InvalidRequest.Code},
	}
	for v := int16(0); v <= 1; v++ {
		for _, tc := range cases {
			req := kmsg.NewPtrDescribeClientQuotasRequest()
			req.Version, req.Components = v, tc.comps
			resp := roundTrip[*kmsg.DescribeClientQuotasResponse](t, b.Addr(), req)
			if resp.ErrorCode != tc.code || (tc.code == 0) != (resp.Entries != nil) || len(resp.Entries) != 0 || (tc.code != 0) != (resp.ErrorMessage != nil) {
				t.Errorf("v%d %s: error %d %v, entries %v (nil %v); want error %d", v, tc.name, resp.ErrorCode, resp.ErrorMessage, resp.Entries, resp.Entries == nil, tc.code)
			}
		}
	}
}

// What Kafka's ClientQuotaControlManager refuses is INVALID_REQUEST as there; the quota
// this broker does not enforce (controller_mutation_rate) is UNSUPPORTED_VERSION;
// validate_only stores nothing; removals succeed; an entity named twice is answered once.
func TestAlterClientQuotasValidation(t *testing.T) {
	b := startBroker(t, testOptions(t))
	_, adm := newAdmin(t, b.Addr())
	alice := "alice"
	user := kadm.ClientQuotaEntity{{Type: "user", Name: &alice}}
	for _, validate := range []bool{true, false} {
		alter := adm.AlterClientQuotas
		if validate {
			alter = adm.ValidateAlterClientQuotas
		}
		rs, err := alter(testCtx(t), []kadm.AlterClientQuotaEntry{
			{Entity: user, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1024}}},
			{Entity: kadm.ClientQuotaEntity{{Type: "client-id"}}, Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Remove: true}}},
		})
		if err != nil || len(rs) != 2 {
			t.Fatalf("kadm alter (validate %v): %v %v", validate, rs, err)
		}
		if rs[0].Err != nil || rs[1].Err != nil {
			t.Errorf("kadm alter (validate %v): %v %v", validate, rs[0].Err, rs[1].Err)
		}
		if validate {
			if qs, err := adm.DescribeClientQuotas(testCtx(t), false, nil); err != nil || len(qs) != 0 {
				t.Fatalf("after validate_only: %v %v", qs, err)
			}
		}
	}
	if qs, err := adm.DescribeClientQuotas(testCtx(t), false, nil); err != nil || len(qs) != 1 || qs[0].Values[0].Value != 1024 {
		t.Fatalf("after the alter: %v %v", qs, err)
	}

	ip, host, empty := "10.0.0.1", "not an ip", ""
	entity := func(kv ...*string) []kmsg.AlterClientQuotasRequestEntryEntity {
		var out []kmsg.AlterClientQuotasRequestEntryEntity
		for i := 0; i < len(kv); i += 2 {
			e := kmsg.NewAlterClientQuotasRequestEntryEntity()
			e.Type, e.Name = *kv[i], kv[i+1]
			out = append(out, e)
		}
		return out
	}
	s := kmsg.StringPtr
	set := func(key string, v float64) kmsg.AlterClientQuotasRequestEntryOp {
		op := kmsg.NewAlterClientQuotasRequestEntryOp()
		op.Key, op.Value = key, v
		return op
	}
	remove := func(key string) kmsg.AlterClientQuotasRequestEntryOp {
		op := set(key, 0)
		op.Remove = true
		return op
	}
	inv, unsup := kerr.InvalidRequest.Code, kerr.UnsupportedVersion.Code
	cases := []struct {
		name   string
		entity []kmsg.AlterClientQuotasRequestEntryEntity
		ops    []kmsg.AlterClientQuotasRequestEntryOp
		code   int16
	}{
		{"set user", entity(s("user"), &alice), []kmsg.AlterClientQuotasRequestEntryOp{set("request_percentage", 12.5)}, 0},
		{"set default client", entity(s("client-id"), nil), []kmsg.AlterClientQuotasRequestEntryOp{set("producer_byte_rate", 10)}, 0},
		{"set ip", entity(s("ip"), &ip), []kmsg.AlterClientQuotasRequestEntryOp{set("connection_creation_rate", 5)}, 0},
		{"remove ip", entity(s("ip"), nil), []kmsg.AlterClientQuotasRequestEntryOp{remove("connection_creation_rate")}, 0},
		{"set ipv6", entity(s("ip"), s("::1")), []kmsg.AlterClientQuotasRequestEntryOp{set("connection_creation_rate", 2147483647)}, 0},
		{"fractional ip rate", entity(s("ip"), s("10.0.0.2")), []kmsg.AlterClientQuotasRequestEntryOp{set("connection_creation_rate", 2.5)}, inv},
		{"ip rate above INT", entity(s("ip"), s("10.0.0.3")), []kmsg.AlterClientQuotasRequestEntryOp{set("connection_creation_rate", 1<<31)}, inv},
		{"zero ip rate", entity(s("ip"), s("10.0.0.5")), []kmsg.AlterClientQuotasRequestEntryOp{set("connection_creation_rate", 0)}, inv},
		{"byte rate on an ip", entity(s("ip"), s("10.0.0.4")), []kmsg.AlterClientQuotasRequestEntryOp{set("producer_byte_rate", 10)}, inv},
		{"ip with client", entity(s("client-id"), nil, s("ip"), nil), []kmsg.AlterClientQuotasRequestEntryOp{set("connection_creation_rate", 5)}, inv},
		{"set mutation rate", entity(s("user"), s("gina")), []kmsg.AlterClientQuotasRequestEntryOp{set("controller_mutation_rate", 5)}, unsup},
		{"zero rate", entity(s("user"), s("hank")), []kmsg.AlterClientQuotasRequestEntryOp{set("producer_byte_rate", 0)}, inv},
		{"negative percentage", entity(s("user"), s("ivy")), []kmsg.AlterClientQuotasRequestEntryOp{set("request_percentage", -1)}, inv},
		{"remove only", entity(s("user"), &alice, s("client-id"), s("app")), []kmsg.AlterClientQuotasRequestEntryOp{remove("producer_byte_rate")}, 0},
		{"empty entity", nil, []kmsg.AlterClientQuotasRequestEntryOp{set("producer_byte_rate", 10)}, inv},
		{"custom type", entity(s("tenant"), &alice), []kmsg.AlterClientQuotasRequestEntryOp{set("producer_byte_rate", 10)}, inv},
		{"empty name", entity(s("client-id"), &empty), []kmsg.AlterClientQuotasRequestEntryOp{set("producer_byte_rate", 10)}, inv},
		{"ip with user", entity(s("ip"), &ip, s("user"), s("bob")), []kmsg.AlterClientQuotasRequestEntryOp{set("connection_creation_rate", 5)}, inv},
		{"bad ip", entity(s("ip"), &host), []kmsg.AlterClientQuotasRequestEntryOp{set("connection_creation_rate", 5)}, inv},
		{"key twice", entity(s("user"), s("carol")), []kmsg.AlterClientQuotasRequestEntryOp{remove("producer_byte_rate"), remove("producer_byte_rate")}, inv},
		{"unknown key", entity(s("user"), s("dave")), []kmsg.AlterClientQuotasRequestEntryOp{set("no_such_rate", 1)}, inv},
		{"ip key on a user", entity(s("user"), s("erin")), []kmsg.AlterClientQuotasRequestEntryOp{set("connection_creation_rate", 1)}, inv},
		{"fractional byte rate", entity(s("user"), s("frank")), []kmsg.AlterClientQuotasRequestEntryOp{set("consumer_byte_rate", 1.5)}, inv},
	}
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrAlterClientQuotasRequest()
		req.Version = v
		for _, tc := range cases {
			e := kmsg.NewAlterClientQuotasRequestEntry()
			e.Entity, e.Ops = tc.entity, tc.ops
			req.Entries = append(req.Entries, e)
		}
		resp := roundTrip[*kmsg.AlterClientQuotasResponse](t, b.Addr(), req)
		if len(resp.Entries) != len(cases) {
			t.Fatalf("v%d: %d entries answered, %d asked", v, len(resp.Entries), len(cases))
		}
		for i, tc := range cases {
			r := resp.Entries[i]
			if r.ErrorCode != tc.code || (tc.code != 0) != (r.ErrorMessage != nil) || len(r.Entity) != len(tc.entity) {
				t.Errorf("v%d %s: error %d %v entity %v, want error %d", v, tc.name, r.ErrorCode, r.ErrorMessage, r.Entity, tc.code)
			}
		}
	}

	// The same entity twice (its components in another order): answered once, refused.
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.Version = 1
	for _, ent := range [][]kmsg.AlterClientQuotasRequestEntryEntity{
		entity(s("user"), &alice, s("client-id"), s("app")),
		entity(s("client-id"), nil),
		entity(s("client-id"), s("app"), s("user"), &alice),
	} {
		e := kmsg.NewAlterClientQuotasRequestEntry()
		e.Entity, e.Ops = ent, []kmsg.AlterClientQuotasRequestEntryOp{remove("producer_byte_rate")}
		req.Entries = append(req.Entries, e)
	}
	resp := roundTrip[*kmsg.AlterClientQuotasResponse](t, b.Addr(), req)
	if len(resp.Entries) != 2 || resp.Entries[0].ErrorCode != inv || resp.Entries[1].ErrorCode != 0 {
		t.Fatalf("duplicate entity: %+v", resp.Entries)
	}
}

// No reassignment is ever in progress on one node: nothing is listed, for existing,
// unknown or all topics (Kafka leaves unknown topics out).
func TestListPartitionReassignmentsNone(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "lpr")
	_, adm := newAdmin(t, b.Addr())
	ts := make(kadm.TopicsSet)
	ts.Add("lpr", 0, 1)
	ts.Add("no-such-topic", 0)
	rs, err := adm.ListPartitionReassignments(testCtx(t), ts)
	if err != nil || len(rs) != 0 {
		t.Fatalf("kadm list: %v %v", rs, err)
	}
	req := kmsg.NewPtrListPartitionReassignmentsRequest() // null topics: all
	resp := roundTrip[*kmsg.ListPartitionReassignmentsResponse](t, b.Addr(), req)
	if resp.ErrorCode != 0 || resp.ErrorMessage != nil || len(resp.Topics) != 0 {
		t.Fatalf("list all: %+v", resp)
	}
}

// Kafka's ReplicationControlManager.alterPartitionReassignment on one broker: this node
// alone is the current assignment (no-op success); anything else is refused.
func TestAlterPartitionReassignmentsOneNode(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "apr")
	_, adm := newAdmin(t, b.Addr())
	node := b.opts.NodeID
	var areq kadm.AlterPartitionAssignmentsReq
	areq.Assign("apr", 0, []int32{node})
	areq.Assign("apr", 1, []int32{node + 1})
	areq.CancelAssign("apr", 2)
	rs, err := adm.AlterPartitionAssignments(testCtx(t), areq)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]error{0: nil, 1: kerr.InvalidReplicaAssignment, 2: kerr.NoReassignmentInProgress}
	for p, w := range want {
		if r := rs["apr"][p]; !errors.Is(r.Err, w) && r.Err != w {
			t.Errorf("kadm partition %d: %v %q, want %v", p, r.Err, r.ErrMessage, w)
		}
	}

	cases := []struct {
		name      string
		topic     string
		partition int32
		replicas  []int32
		code      int16
	}{
		{"itself", "apr", 0, []int32{node}, 0},
		{"itself again", "apr", 0, []int32{node}, 0},
		{"other broker", "apr", 1, []int32{node, node + 7}, kerr.InvalidReplicaAssignment.Code},
		{"twice", "apr", 1, []int32{node, node}, kerr.InvalidReplicaAssignment.Code},
		{"empty", "apr", 1, []int32{}, kerr.InvalidReplicaAssignment.Code},
		{"cancel", "apr", 2, nil, kerr.NoReassignmentInProgress.Code},
		{"unknown partition", "apr", 9, []int32{node}, kerr.UnknownTopicOrPartition.Code},
		{"unknown topic", "nope", 0, []int32{node}, kerr.UnknownTopicOrPartition.Code},
	}
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		req.Version, req.AllowReplicationFactorChange = v, false
		for _, tc := range cases {
			rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
			rt.Topic = tc.topic
			rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
			rp.Partition, rp.Replicas = tc.partition, tc.replicas
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
		}
		resp := roundTrip[*kmsg.AlterPartitionAssignmentsResponse](t, b.Addr(), req)
		if resp.ErrorCode != 0 || len(resp.Topics) != len(cases) || (v >= 1 && resp.AllowReplicationFactorChange) {
			t.Fatalf("v%d: error %d, %d topics for %d, allow rf change %v", v, resp.ErrorCode, len(resp.Topics), len(cases), resp.AllowReplicationFactorChange)
		}
		for i, tc := range cases {
			rp := resp.Topics[i].Partitions[0]
			if rp.ErrorCode != tc.code || (tc.code != 0) != (rp.ErrorMessage != nil) {
				t.Errorf("v%d %s: error %d %v, want %d", v, tc.name, rp.ErrorCode, rp.ErrorMessage, tc.code)
			}
		}
	}
}

// One node is every partition's preferred leader: Kafka's electLeader answers
// ELECTION_NOT_NEEDED for each existing partition (preferred and unclean), and a null
// topic list lists each topic with none of them.
func TestElectLeadersNotNeeded(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "el")
	_, adm := newAdmin(t, b.Addr())
	for _, how := range []kadm.ElectLeadersHow{kadm.ElectPreferredReplica, kadm.ElectLiveReplica} {
		ts := make(kadm.TopicsSet)
		ts.Add("el", 0, 2, 7)
		rs, err := adm.ElectLeaders(testCtx(t), how, ts)
		if err != nil {
			t.Fatal(err)
		}
		for p, w := range map[int32]error{0: kerr.ElectionNotNeeded, 2: kerr.ElectionNotNeeded, 7: kerr.UnknownTopicOrPartition} {
			if r := rs["el"][p]; !errors.Is(r.Err, w) || r.ErrMessage == "" {
				t.Errorf("kadm %v partition %d: %v %q, want %v", how, p, r.Err, r.ErrMessage, w)
			}
		}
	}
	topic := func(name string, ps ...int32) kmsg.ElectLeadersRequestTopic {
		rt := kmsg.NewElectLeadersRequestTopic()
		rt.Topic, rt.Partitions = name, ps
		return rt
	}
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrElectLeadersRequest()
		req.Version = v
		req.Topics = []kmsg.ElectLeadersRequestTopic{topic("el", 1, 1), topic("nope", 0), topic("el", 0)}
		resp := roundTrip[*kmsg.ElectLeadersResponse](t, b.Addr(), req)
		var got []int16
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				got = append(got, rp.ErrorCode)
			}
		}
		nn, unk := kerr.ElectionNotNeeded.Code, kerr.UnknownTopicOrPartition.Code
		if resp.ErrorCode != 0 || len(resp.Topics) != 3 || len(got) != 4 || got[0] != nn || got[1] != nn || got[2] != unk || got[3] != nn {
			t.Errorf("v%d: error %d, codes %v", v, resp.ErrorCode, got)
		}

		req.Topics = nil // every partition: each topic (the internal one too), none needing an election
		resp = roundTrip[*kmsg.ElectLeadersResponse](t, b.Addr(), req)
		if resp.ErrorCode != 0 || len(resp.Topics) != 2 || resp.Topics[0].Topic != offsetsTopic || resp.Topics[1].Topic != "el" ||
			len(resp.Topics[0].Partitions) != 0 || len(resp.Topics[1].Partitions) != 0 {
			t.Errorf("v%d all: %+v", v, resp)
		}
	}
	req := kmsg.NewPtrElectLeadersRequest()
	req.Version, req.ElectionType = 2, 5
	req.Topics = []kmsg.ElectLeadersRequestTopic{topic("el", 0, 1)}
	resp := roundTrip[*kmsg.ElectLeadersResponse](t, b.Addr(), req)
	inv := kerr.InvalidRequest.Code
	if resp.ErrorCode != inv || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 2 || resp.Topics[0].Partitions[0].ErrorCode != inv || resp.Topics[0].Partitions[1].ErrorCode != inv {
		t.Errorf("election type 5: %+v", resp)
	}
}

// No user has SCRAM credentials: Kafka's ScramImage.describe with none stored.
func TestDescribeUserSCRAMCredentialsNone(t *testing.T) {
	b := startBroker(t, testOptions(t))
	_, adm := newAdmin(t, b.Addr())
	all, err := adm.DescribeUserSCRAMs(testCtx(t))
	if err != nil || len(all) != 0 {
		t.Fatalf("kadm describe all: %v %v", all, err)
	}
	rs, err := adm.DescribeUserSCRAMs(testCtx(t), "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if r := rs[u]; !errors.Is(r.Err, kerr.ResourceNotFound) || r.ErrMessage != "Attempt to describe a user credential that does not exist: "+u {
			t.Errorf("kadm %s: %v %q", u, r.Err, r.ErrMessage)
		}
	}
	req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	for _, n := range []string{"carol", "dave", "carol", "carol"} {
		u := kmsg.NewDescribeUserSCRAMCredentialsRequestUser()
		u.Name = n
		req.Users = append(req.Users, u)
	}
	resp := roundTrip[*kmsg.DescribeUserSCRAMCredentialsResponse](t, b.Addr(), req)
	if resp.ErrorCode != 0 || len(resp.Results) != 2 ||
		resp.Results[0].User != "carol" || resp.Results[0].ErrorCode != kerr.DuplicateResource.Code ||
		resp.Results[1].User != "dave" || resp.Results[1].ErrorCode != kerr.ResourceNotFound.Code {
		t.Fatalf("carol dave carol carol: %+v", resp)
	}
	req.Users = []kmsg.DescribeUserSCRAMCredentialsRequestUser{} // empty: every user, none
	if resp := roundTrip[*kmsg.DescribeUserSCRAMCredentialsResponse](t, b.Addr(), req); resp.ErrorCode != 0 || len(resp.Results) != 0 {
		t.Fatalf("empty list: %+v", resp)
	}
}

// No SCRAM credential can be stored: each user named is refused once with
// UNSUPPORTED_VERSION, as Kafka's ScramControlManager refuses users when SCRAM is not
// supported.
func TestAlterUserSCRAMCredentialsRefused(t *testing.T) {
	b := startBroker(t, testOptions(t))
	_, adm := newAdmin(t, b.Addr())
	rs, err := adm.AlterUserSCRAMs(testCtx(t),
		[]kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha256}},
		[]kadm.UpsertSCRAM{{User: "bob", Mechanism: kadm.ScramSha512, Password: "secret"}})
	if err != nil || len(rs) != 2 {
		t.Fatalf("kadm alter: %v %v", rs, err)
	}
	for _, u := range []string{"alice", "bob"} {
		if r := rs[u]; !errors.Is(r.Err, kerr.UnsupportedVersion) || r.ErrMessage == "" {
			t.Errorf("kadm %s: %v %q", u, r.Err, r.ErrMessage)
		}
	}
	if d, err := adm.DescribeUserSCRAMs(testCtx(t)); err != nil || len(d) != 0 {
		t.Fatalf("described after the refused alter: %v %v", d, err)
	}
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	for _, n := range []string{"carol", "carol"} {
		d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		d.Name, d.Mechanism = n, 9 // an unknown mechanism: the SCRAM check comes first
		req.Deletions = append(req.Deletions, d)
	}
	for _, n := range []string{"dave", "carol"} {
		u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		u.Name, u.Mechanism, u.Iterations = n, 1, 4096
		req.Upsertions = append(req.Upsertions, u)
	}
	resp := roundTrip[*kmsg.AlterUserSCRAMCredentialsResponse](t, b.Addr(), req)
	unsup := kerr.UnsupportedVersion.Code
	if len(resp.Results) != 2 || resp.Results[0].User != "carol" || resp.Results[0].ErrorCode != unsup ||
		resp.Results[1].User != "dave" || resp.Results[1].ErrorCode != unsup {
		t.Fatalf("carol carol / dave carol: %+v", resp.Results)
	}
}

// DescribeLogDirs v0 is v1 (request and response): the same answer at both versions.
func TestDescribeLogDirsV0(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "ld")
	var got [2]*kmsg.DescribeLogDirsResponse
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrDescribeLogDirsRequest()
		req.Version = v
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = "ld", []int32{0, 2}
		req.Topics = append(req.Topics, rt)
		got[v] = roundTrip[*kmsg.DescribeLogDirsResponse](t, b.Addr(), req)
	}
	for v, r := range got {
		// Every topic is listed, the internal one (none of its partitions asked for) too.
		if len(r.Dirs) != 1 || r.Dirs[0].ErrorCode != 0 || len(r.Dirs[0].Topics) != 2 || r.Dirs[0].Topics[1].Topic != "ld" ||
			len(r.Dirs[0].Topics[0].Partitions) != 0 || len(r.Dirs[0].Topics[1].Partitions) != 2 {
			t.Fatalf("v%d: %+v", v, r)
		}
	}
	if got[0].Dirs[0].Dir != got[1].Dirs[0].Dir {
		t.Fatalf("v0 dir %q, v1 %q", got[0].Dirs[0].Dir, got[1].Dirs[0].Dir)
	}
}
