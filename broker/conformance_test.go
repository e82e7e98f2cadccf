package broker

// Conformance with Apache Kafka's answers to requests a real client can send at an
// advertised version, where the protocol leaves room for a different answer: duplicates,
// leader epochs, errors that end a long poll. Each test names the Kafka source it follows.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// roundTrip sends one request on a fresh connection and decodes its response.
func roundTrip[T kmsg.Response](t *testing.T, addr string, req kmsg.Request) T {
	t.Helper()
	c := dialRaw(t, addr)
	c.send(req)
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	c.read(resp)
	return resp.(T)
}

// createTopicRaw creates a topic through the wire (auto-creation by Metadata).
func createTopicRaw(t *testing.T, addr, topic string) {
	t.Helper()
	r := roundTrip[*kmsg.MetadataResponse](t, addr, metadataReq(12, topic))
	if len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %q: %+v", topic, r.Topics)
	}
}

// Kafka (KafkaApis.handleListOffsetRequest) answers every copy of a partition named twice
// in one request with INVALID_REQUEST; Partition.checkCurrentLeaderEpoch answers a
// CurrentLeaderEpoch newer than the leader's with UNKNOWN_LEADER_EPOCH (retriable: the
// client's metadata is ahead) and an older one with FENCED_LEADER_EPOCH.
func TestListOffsetsDuplicatesAndLeaderEpoch(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "lo")
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 7
	req.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "lo"
	for _, pe := range [][2]int32{{0, -1}, {0, -1}, {1, 5}, {2, 0}, {2, 0}} {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.CurrentLeaderEpoch, lp.Timestamp = pe[0], pe[1], -1
		lt.Partitions = append(lt.Partitions, lp)
	}
	one := kmsg.NewListOffsetsRequestTopicPartition()
	one.Partition, one.CurrentLeaderEpoch, one.Timestamp = 1, 0, -2
	other := kmsg.NewListOffsetsRequestTopic()
	other.Topic = "lo"
	other.Partitions = append(other.Partitions, one) // partition 1 again, in a second topic entry
	req.Topics = append(req.Topics, lt, other)
	resp := roundTrip[*kmsg.ListOffsetsResponse](t, b.Addr(), req)
	var got []int16
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			got = append(got, rp.ErrorCode)
			if rp.ErrorCode != 0 && (rp.Offset != -1 || rp.Timestamp != -1) {
				t.Errorf("partition %d with error %d has offset %d timestamp %d", rp.Partition, rp.ErrorCode, rp.Offset, rp.Timestamp)
			}
		}
	}
	inv := kerr.InvalidRequest.Code
	want := []int16{inv, inv, inv, inv, inv, inv}
	if len(got) != len(want) {
		t.Fatalf("got %d partitions, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("error codes %v, want %v", got, want)
		}
	}

	req.Topics = req.Topics[:1]
	req.Topics[0].Partitions = req.Topics[0].Partitions[1:4] // 0 (epoch -1), 1 (epoch 5), 2 (epoch 0)
	resp = roundTrip[*kmsg.ListOffsetsResponse](t, b.Addr(), req)
	ps := resp.Topics[0].Partitions
	if ps[0].ErrorCode != 0 || ps[0].Offset != 0 {
		t.Errorf("epoch -1: %+v", ps[0])
	}
	if ps[1].ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("epoch 5 (newer than the leader's 0): error %d, want UNKNOWN_LEADER_EPOCH", ps[1].ErrorCode)
	}
	if ps[2].ErrorCode != 0 || ps[2].Offset != 0 {
		t.Errorf("epoch 0: %+v", ps[2])
	}
}

// Kafka's ReplicaManager.fetchMessages answers at once when reading any partition gave an
// error (with -1 for that partition's offsets), whatever MinBytes and MaxWaitMillis say: a consumer whose offset is out of range
// learns it without waiting out the long poll. The wait here is ten minutes; the
// connection's read deadline (dialRaw) is far shorter, so a broker that waits fails the
// test.
func TestFetchErrorEndsLongPoll(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "fe")

	// Offset 100 of an empty partition: OFFSET_OUT_OF_RANGE.
	req := fetchReq("fe", 0, 100, 600_000)
	resp := roundTrip[*kmsg.FetchResponse](t, b.Addr(), req)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("out of range fetch: error %d", p.ErrorCode)
	}
	// Kafka answers a partition error without offsets (ReplicaManager.createLogReadResult).
	noOffsets := func(what string, p kmsg.FetchResponseTopicPartition) {
		t.Helper()
		if p.HighWatermark != -1 || p.LastStableOffset != -1 || p.LogStartOffset != -1 {
			t.Errorf("%s: high watermark %d, last stable offset %d, log start offset %d; Kafka answers -1",
				what, p.HighWatermark, p.LastStableOffset, p.LogStartOffset)
		}
	}
	noOffsets("out of range", resp.Topics[0].Partitions[0])

	// A caught-up partition next to one whose CurrentLeaderEpoch is newer than the
	// leader's: the error ends the wait too.
	req = fetchReq("fe", 0, 0, 600_000)
	ep := req.Topics[0].Partitions[0]
	ep.Partition, ep.CurrentLeaderEpoch = 1, 7
	req.Topics[0].Partitions = append(req.Topics[0].Partitions, ep)
	resp = roundTrip[*kmsg.FetchResponse](t, b.Addr(), req)
	ps := resp.Topics[0].Partitions
	if ps[0].ErrorCode != 0 || ps[1].ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("caught up + epoch 7: errors %d, %d", ps[0].ErrorCode, ps[1].ErrorCode)
	}
	noOffsets("epoch 7", ps[1])
	if ps[0].HighWatermark != 0 || ps[0].LogStartOffset != 0 {
		t.Errorf("caught up: high watermark %d, log start offset %d", ps[0].HighWatermark, ps[0].LogStartOffset)
	}
}

// Kafka's ControllerApis.deleteTopics answers a topic named twice once, with
// INVALID_REQUEST, and deletes nothing for it; a v6 entry with both a name and an id, or
// neither, is INVALID_REQUEST too.
func TestDeleteTopicsDuplicatesAndNameWithID(t *testing.T) {
	b := startBroker(t, testOptions(t))
	for _, name := range []string{"dt-a", "dt-b", "dt-c"} {
		createTopicRaw(t, b.Addr(), name)
	}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 5
	req.TimeoutMillis = 5000
	req.TopicNames = []string{"dt-a", "dt-b", "dt-a"}
	resp := roundTrip[*kmsg.DeleteTopicsResponse](t, b.Addr(), req)
	codes := map[string][]int16{}
	for _, rt := range resp.Topics {
		codes[*rt.Topic] = append(codes[*rt.Topic], rt.ErrorCode)
	}
	if len(resp.Topics) != 2 || len(codes["dt-a"]) != 1 || codes["dt-a"][0] != kerr.InvalidRequest.Code || codes["dt-b"][0] != 0 {
		t.Fatalf("v5 [a b a]: %v", codes)
	}
	if b.topic("dt-a") == nil || b.topic("dt-b") != nil {
		t.Fatalf("after v5 [a b a]: a exists %v, b exists %v; want a kept, b deleted", b.topic("dt-a") != nil, b.topic("dt-b") != nil)
	}

	c := b.topic("dt-c")
	req = kmsg.NewPtrDeleteTopicsRequest()
	req.Version = 6
	req.TimeoutMillis = 5000
	both := kmsg.NewDeleteTopicsRequestTopic()
	both.Topic, both.TopicID = kmsg.StringPtr("dt-c"), c.id
	neither := kmsg.NewDeleteTopicsRequestTopic()
	req.Topics = append(req.Topics, both, neither)
	resp = roundTrip[*kmsg.DeleteTopicsResponse](t, b.Addr(), req)
	if len(resp.Topics) != 2 || resp.Topics[0].ErrorCode != kerr.InvalidRequest.Code || resp.Topics[1].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("v6 name+id, neither: %+v", resp.Topics)
	}
	if b.topic("dt-c") == nil {
		t.Fatal("dt-c deleted by an entry naming it by both name and id")
	}
}

// A resource named twice in one AlterConfigs or IncrementalAlterConfigs request is
// answered once with INVALID_REQUEST and none of its changes apply (Kafka's
// ControllerApis.handleLegacyAlterConfigs / handleIncrementalAlterConfigs).
func TestAlterConfigsDuplicateResource(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "ac")
	createTopicRaw(t, b.Addr(), "ac-other")

	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	inc.Version = 1
	for _, v := range []string{"1000", "2000"} {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "ac"
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = "retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(v)
		r.Configs = append(r.Configs, c)
		inc.Resources = append(inc.Resources, r)
	}
	ok := kmsg.NewIncrementalAlterConfigsRequestResource()
	ok.ResourceType, ok.ResourceName = kmsg.ConfigResourceTypeTopic, "ac-other"
	oc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	oc.Name, oc.Op, oc.Value = "retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("3000")
	ok.Configs = append(ok.Configs, oc)
	inc.Resources = append(inc.Resources, ok)
	iresp := roundTrip[*kmsg.IncrementalAlterConfigsResponse](t, b.Addr(), inc)
	if len(iresp.Resources) != 2 || iresp.Resources[0].ErrorCode != kerr.InvalidRequest.Code || iresp.Resources[1].ErrorCode != 0 {
		t.Fatalf("incremental [ac ac ac-other]: %+v", iresp.Resources)
	}
	if v, set := b.snapshot(b.topic("ac")).configs["retention.ms"]; set {
		t.Fatalf("ac got retention.ms=%s from a duplicated resource", v)
	}
	if v := b.snapshot(b.topic("ac-other")).configs["retention.ms"]; v != "3000" {
		t.Fatalf("ac-other retention.ms=%q, want 3000", v)
	}

	alt := kmsg.NewPtrAlterConfigsRequest()
	alt.Version = 2
	for range 2 {
		r := kmsg.NewAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "ac"
		c := kmsg.NewAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("4000")
		r.Configs = append(r.Configs, c)
		alt.Resources = append(alt.Resources, r)
	}
	aresp := roundTrip[*kmsg.AlterConfigsResponse](t, b.Addr(), alt)
	if len(aresp.Resources) != 1 || aresp.Resources[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("legacy [ac ac]: %+v", aresp.Resources)
	}
	if v, set := b.snapshot(b.topic("ac")).configs["retention.ms"]; set {
		t.Fatalf("ac got retention.ms=%s from a duplicated resource", v)
	}
}

// commitOffset commits offset at of partition 0 of topic for group, as an admin tool
// does (no member, no generation).
func commitOffset(t *testing.T, ctx context.Context, adm *kadm.Client, group, topic string, at int64) {
	t.Helper()
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: at, LeaderEpoch: -1})
	if r, err := adm.CommitOffsets(ctx, group, offs); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
}

// Kafka's KafkaApis.handleOffsetDeleteRequest answers a partition that does not exist
// with UNKNOWN_TOPIC_OR_PARTITION before the group coordinator sees the request (franz-go
// kadm, like the Java AdminClient behind kafka-consumer-groups.sh --delete-offsets,
// reports it per partition).
func TestOffsetDeleteUnknownPartition(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "od")
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	commitOffset(t, ctx, adm, "g-od", "od", 5)
	resp, err := adm.DeleteOffsets(ctx, "g-od", kadm.TopicsSet{"od": {0: {}, 99: {}}, "od-missing": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := resp["od"][0]; err != nil {
		t.Errorf("od/0: %v", err)
	}
	for _, tp := range []struct {
		topic string
		p     int32
	}{{"od", 99}, {"od-missing", 0}} {
		if err := resp[tp.topic][tp.p]; !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Errorf("%s/%d: %v, want UNKNOWN_TOPIC_OR_PARTITION", tp.topic, tp.p, err)
		}
	}
}

// Kafka's ConfigHelper answers a broker resource named "" (kadm.DescribeBrokerConfigs with
// no ids; kafka-configs.sh --entity-type brokers --entity-default) with the cluster-wide
// dynamic defaults only, not one broker's whole configuration. This broker's settings are
// static, so there are none; its own id still lists them all.
func TestDescribeConfigsBrokerDefaultResource(t *testing.T) {
	b := startBroker(t, testOptions(t))
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	rcs, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("describe \"\": %v %+v", err, rcs)
	}
	if len(rcs[0].Configs) != 0 {
		t.Fatalf("describe \"\": %d configs, want none (no dynamic defaults); first %+v", len(rcs[0].Configs), rcs[0].Configs[0])
	}
	rcs, err = adm.DescribeBrokerConfigs(ctx, b.opts.NodeID)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil || len(rcs[0].Configs) < len(topicConfigs) {
		t.Fatalf("describe broker %d: %v %+v", b.opts.NodeID, err, rcs)
	}
}

// Asked for authorized operations (KIP-430: Metadata v8+, DescribeCluster,
// DescribeGroups v3+), Kafka without an authorizer (AuthHelper.authorizedOperations)
// answers every operation AclEntry.supportedOperations lists for the resource; the Java
// AdminClient turns that into describeTopics/describeCluster/describeConsumerGroups'
// authorizedOperations(). Not asked for, the field keeps its default MinInt32 (null there).
func TestAuthorizedOperationsWithoutACLs(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "ops")
	const notAsked = -2147483648
	// READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS
	topicOps := int32(1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11)
	// CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE
	clusterOps := int32(1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12)
	groupOps := int32(1<<3 | 1<<6 | 1<<8) // READ DELETE DESCRIBE

	md := metadataReq(10, "ops")
	md.IncludeClusterAuthorizedOperations, md.IncludeTopicAuthorizedOperations = true, true
	mresp := roundTrip[*kmsg.MetadataResponse](t, b.Addr(), md)
	if mresp.AuthorizedOperations != clusterOps || mresp.Topics[0].AuthorizedOperations != topicOps {
		t.Errorf("metadata v10 asked: cluster %b topic %b, want %b %b", mresp.AuthorizedOperations, mresp.Topics[0].AuthorizedOperations, clusterOps, topicOps)
	}
	mresp = roundTrip[*kmsg.MetadataResponse](t, b.Addr(), metadataReq(10, "ops"))
	if mresp.AuthorizedOperations != notAsked || mresp.Topics[0].AuthorizedOperations != notAsked {
		t.Errorf("metadata v10 not asked: cluster %d topic %d", mresp.AuthorizedOperations, mresp.Topics[0].AuthorizedOperations)
	}

	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.IncludeClusterAuthorizedOperations = true
	if r := roundTrip[*kmsg.DescribeClusterResponse](t, b.Addr(), dc); r.ClusterAuthorizedOperations != clusterOps {
		t.Errorf("describe cluster asked: %b, want %b", r.ClusterAuthorizedOperations, clusterOps)
	}

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Version = 5
	dg.Groups = []string{"no-such-group"}
	dg.IncludeAuthorizedOperations = true
	if r := roundTrip[*kmsg.DescribeGroupsResponse](t, b.Addr(), dg); r.Groups[0].AuthorizedOperations != groupOps {
		t.Errorf("describe groups asked: %b, want %b", r.Groups[0].AuthorizedOperations, groupOps)
	}
}

// Kafka's ReplicationControlManager.createPartitions refuses a manual assignment whose
// length is not the number of partitions added (INVALID_REPLICA_ASSIGNMENT) and adds none.
func TestCreatePartitionsAssignmentCount(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "cp") // 3 partitions
	req := func(count int32, assignments int) *kmsg.CreatePartitionsRequest {
		r := kmsg.NewPtrCreatePartitionsRequest()
		r.Version = 3
		r.TimeoutMillis = 5000
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "cp", count
		for range assignments {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = []int32{b.opts.NodeID}
			rt.Assignment = append(rt.Assignment, a)
		}
		r.Topics = append(r.Topics, rt)
		return r
	}
	r := roundTrip[*kmsg.CreatePartitionsResponse](t, b.Addr(), req(5, 1))
	if r.Topics[0].ErrorCode != kerr.InvalidReplicaAssignment.Code {
		t.Fatalf("3→5 with 1 assignment: error %d, want INVALID_REPLICA_ASSIGNMENT", r.Topics[0].ErrorCode)
	}
	if n := len(b.snapshot(b.topic("cp")).parts); n != 3 {
		t.Fatalf("after a refused request: %d partitions", n)
	}
	r = roundTrip[*kmsg.CreatePartitionsResponse](t, b.Addr(), req(5, 2))
	if r.Topics[0].ErrorCode != 0 || len(b.snapshot(b.topic("cp")).parts) != 5 {
		t.Fatalf("3→5 with 2 assignments: error %d, %d partitions", r.Topics[0].ErrorCode, len(b.snapshot(b.topic("cp")).parts))
	}
}

// Kafka's GroupMetadataManager.listGroups compares ListGroups v4's StatesFilter ignoring
// case and surrounding spaces: "empty" lists the Empty groups.
func TestListGroupsStatesFilterIgnoresCase(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "lg")
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	commitOffset(t, ctx, adm, "g-lg", "lg", 1)
	for _, filter := range []string{"Empty", "empty", " EMPTY "} {
		req := kmsg.NewPtrListGroupsRequest()
		req.Version = 4
		req.StatesFilter = []string{filter}
		r := roundTrip[*kmsg.ListGroupsResponse](t, b.Addr(), req)
		if len(r.Groups) != 1 || r.Groups[0].Group != "g-lg" || r.Groups[0].GroupState != "Empty" {
			t.Errorf("filter %q: %+v", filter, r.Groups)
		}
	}
}

// Kafka's OffsetMetadataManager.commitOffset refuses, per partition, a metadata string
// longer than offset.metadata.max.bytes (4096 by default) with OFFSET_METADATA_TOO_LARGE
// and commits the other partitions.
func TestOffsetCommitMetadataTooLarge(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "om")
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: "om", Partition: 0, At: 7, LeaderEpoch: -1, Metadata: strings.Repeat("m", 4096)})
	offs.Add(kadm.Offset{Topic: "om", Partition: 1, At: 8, LeaderEpoch: -1, Metadata: strings.Repeat("m", 4097)})
	// 2049 characters outside the BMP: 4098 UTF-16 units, as Java counts them.
	offs.Add(kadm.Offset{Topic: "om", Partition: 2, At: 9, LeaderEpoch: -1, Metadata: strings.Repeat("😀", 2049)})
	r, err := adm.CommitOffsets(ctx, "g-om", offs)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32]error{0: nil, 1: kerr.OffsetMetadataTooLarge, 2: kerr.OffsetMetadataTooLarge} {
		got, _ := r.Lookup("om", p)
		if !errors.Is(got.Err, want) || (want == nil && got.Err != nil) {
			t.Errorf("partition %d: %v, want %v", p, got.Err, want)
		}
	}
	fetched, err := adm.FetchOffsets(ctx, "g-om")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("om", 0); !ok || o.At != 7 {
		t.Errorf("partition 0 not committed: %+v", o)
	}
	if o, ok := fetched.Lookup("om", 1); ok && o.At == 8 {
		t.Errorf("partition 1 committed at %d despite its metadata", o.At)
	}
}

// Kafka's Partition.deleteRecordsOnLeader refuses DeleteRecords on a topic whose
// cleanup.policy has no delete (compact alone) with POLICY_VIOLATION; compact,delete
// allows it.
func TestDeleteRecordsCompactedTopic(t *testing.T) {
	b := startBroker(t, testOptions(t))
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	for _, policy := range []string{"compact", "compact,delete"} {
		topic := "dr-" + strings.ReplaceAll(policy, ",", "-")
		if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kmsg.StringPtr(policy)}, topic); err != nil {
			t.Fatal(err)
		}
		var offs kadm.Offsets
		offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: -1})
		drs, err := adm.DeleteRecords(ctx, offs)
		if err != nil {
			t.Fatal(err)
		}
		dr, _ := drs.Lookup(topic, 0)
		want := error(nil)
		if policy == "compact" {
			want = kerr.PolicyViolation
		}
		if !errors.Is(dr.Err, want) || want == nil && dr.Err != nil {
			t.Errorf("cleanup.policy=%s: %v, want %v", policy, dr.Err, want)
		}
	}
}

// Kafka answers a topic named twice in CreateTopics or CreatePartitions once, with
// INVALID_REQUEST "Duplicate topic name.", and acts on neither copy
// (ControllerApis.createTopics/createPartitions); Metadata collects its topics into a set
// (KafkaApis.handleTopicMetadataRequest), so a name asked twice is answered once.
func TestDuplicateTopicsAnsweredOnce(t *testing.T) {
	b := startBroker(t, testOptions(t))
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 7
	ct.TimeoutMillis = 5000
	for _, name := range []string{"dup", "single", "dup", "dup"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		ct.Topics = append(ct.Topics, rt)
	}
	cresp := roundTrip[*kmsg.CreateTopicsResponse](t, b.Addr(), ct)
	if len(cresp.Topics) != 2 || cresp.Topics[0].Topic != "dup" || cresp.Topics[0].ErrorCode != kerr.InvalidRequest.Code ||
		cresp.Topics[1].Topic != "single" || cresp.Topics[1].ErrorCode != 0 {
		var got []string
		for _, rt := range cresp.Topics {
			got = append(got, rt.Topic+":"+strconv.Itoa(int(rt.ErrorCode)))
		}
		t.Fatalf("create [dup single dup dup]: %v, want [dup:42 single:0]", got)
	}
	if b.topic("dup") != nil {
		t.Fatal("dup created")
	}

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Version = 3
	cp.TimeoutMillis = 5000
	for range 2 {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = "single", 2
		cp.Topics = append(cp.Topics, rt)
	}
	presp := roundTrip[*kmsg.CreatePartitionsResponse](t, b.Addr(), cp)
	if len(presp.Topics) != 1 || presp.Topics[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("create partitions [single single]: %+v", presp.Topics)
	}
	if n := len(b.snapshot(b.topic("single")).parts); n != 1 {
		t.Fatalf("single grown to %d partitions", n)
	}

	md := metadataReq(12, "single", "single", "auto", "auto")
	mresp := roundTrip[*kmsg.MetadataResponse](t, b.Addr(), md)
	if len(mresp.Topics) != 2 || *mresp.Topics[0].Topic != "single" || *mresp.Topics[1].Topic != "auto" {
		t.Fatalf("metadata [single single auto auto]: %d topics", len(mresp.Topics))
	}
}

// Kafka's FetchManager.newContext treats session epoch 0 (INITIAL) or -1 (FINAL) as a
// full fetch whatever the session id (a named session is closed): INITIAL creates a
// session (its id in the answer), FINAL none; any other epoch is incremental, and on a
// session the broker does not have, id 0 included, FETCH_SESSION_ID_NOT_FOUND.
func TestFetchSessionFullAndIncremental(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "fs")
	for _, c := range []struct {
		id, epoch int32
		want      int16
		session   bool
	}{
		{12345, 0, 0, true}, // a full fetch that would close session 12345, opening one
		{12345, -1, 0, false},
		{0, 0, 0, true},
		{0, -1, 0, false},
		{0, 3, kerr.FetchSessionIDNotFound.Code, false},
		{12345, 3, kerr.FetchSessionIDNotFound.Code, false},
	} {
		req := fetchReq("fs", 0, 0, 0)
		req.SessionID, req.SessionEpoch = c.id, c.epoch
		resp := roundTrip[*kmsg.FetchResponse](t, b.Addr(), req)
		if resp.ErrorCode != c.want {
			t.Errorf("session %d epoch %d: error %d, want %d", c.id, c.epoch, resp.ErrorCode, c.want)
		}
		if c.want == 0 && ((resp.SessionID != 0) != c.session || len(resp.Topics) != 1) {
			t.Errorf("session %d epoch %d: session %d (want one: %v), %d topics", c.id, c.epoch, resp.SessionID, c.session, len(resp.Topics))
		}
	}
}

// Kafka's ConfigHelper describes every config when ConfigNames is null or empty.
func TestDescribeConfigsEmptyNamesMeansAll(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "dc")
	for _, names := range [][]string{nil, {}} {
		req := kmsg.NewPtrDescribeConfigsRequest()
		req.Version = 4
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, "dc", names
		req.Resources = append(req.Resources, rr)
		resp := roundTrip[*kmsg.DescribeConfigsResponse](t, b.Addr(), req)
		if r := resp.Resources[0]; r.ErrorCode != 0 || len(r.Configs) != len(topicConfigs) {
			t.Errorf("names %#v: error %d, %d configs, want %d", names, r.ErrorCode, len(r.Configs), len(topicConfigs))
		}
	}
}

// Kafka's ConfigAdminManager refuses a null config value with INVALID_REQUEST "Null value
// not supported for : <names>" in AlterConfigs, and in IncrementalAlterConfigs for every
// operation but DELETE; nothing of the resource changes.
func TestAlterConfigsNullValue(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "nv")
	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	inc.Version = 1
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, "nv"
	set := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	set.Name, set.Op, set.Value = "segment.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("60000")
	null := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	null.Name, null.Op = "retention.ms", kmsg.IncrementalAlterConfigOpSet
	r.Configs = append(r.Configs, set, null)
	inc.Resources = append(inc.Resources, r)
	iresp := roundTrip[*kmsg.IncrementalAlterConfigsResponse](t, b.Addr(), inc)
	if ir := iresp.Resources[0]; ir.ErrorCode != kerr.InvalidRequest.Code || ir.ErrorMessage == nil || *ir.ErrorMessage != "Null value not supported for : retention.ms" {
		t.Errorf("incremental SET null: error %d %v", ir.ErrorCode, ir.ErrorMessage)
	}
	if _, set := b.snapshot(b.topic("nv")).configs["segment.ms"]; set {
		t.Error("segment.ms set by a refused resource")
	}
	null.Op = kmsg.IncrementalAlterConfigOpDelete // DELETE takes no value
	inc.Resources[0].Configs[1] = null
	if ir := roundTrip[*kmsg.IncrementalAlterConfigsResponse](t, b.Addr(), inc).Resources[0]; ir.ErrorCode != 0 {
		t.Errorf("incremental DELETE null: error %d", ir.ErrorCode)
	}

	alt := kmsg.NewPtrAlterConfigsRequest()
	alt.Version = 2
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeTopic, "nv"
	ac := kmsg.NewAlterConfigsRequestResourceConfig()
	ac.Name = "retention.ms"
	ar.Configs = append(ar.Configs, ac)
	alt.Resources = append(alt.Resources, ar)
	if lr := roundTrip[*kmsg.AlterConfigsResponse](t, b.Addr(), alt).Resources[0]; lr.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("legacy null: error %d", lr.ErrorCode)
	}
	if v := b.snapshot(b.topic("nv")).configs["segment.ms"]; v != "60000" {
		t.Errorf("segment.ms %q after a refused legacy AlterConfigs, want 60000", v)
	}
}

// Kafka's TransactionCoordinator.handleInitProducerId answers an idempotent producer
// (null transactional id) with a new producer id whatever id it names, and an empty
// transactional id with INVALID_REQUEST. A producer id this broker never issued (one the
// client got from another broker) gets a new id, not INVALID_PRODUCER_ID_MAPPING.
func TestInitProducerIDUnknownIDAndEmptyTransactionalID(t *testing.T) {
	b := startBroker(t, testOptions(t))
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	req.ProducerID, req.ProducerEpoch = 1<<40, 3
	r := roundTrip[*kmsg.InitProducerIDResponse](t, b.Addr(), req)
	if r.ErrorCode != 0 || r.ProducerID < 0 || r.ProducerID == 1<<40 || r.ProducerEpoch != 0 {
		t.Errorf("unknown id: error %d, id %d epoch %d; want a new id, epoch 0", r.ErrorCode, r.ProducerID, r.ProducerEpoch)
	}
	req = kmsg.NewPtrInitProducerIDRequest()
	req.Version = 4
	req.TransactionalID = kmsg.StringPtr("")
	req.ProducerID, req.ProducerEpoch = -1, -1
	if r := roundTrip[*kmsg.InitProducerIDResponse](t, b.Addr(), req); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("empty transactional id: error %d, want INVALID_REQUEST", r.ErrorCode)
	}
}

// Kafka's OffsetMetadataManager.fetchOffsets answers a partition without a committed
// offset with offset -1, leader epoch -1 and metadata "" (not null), at every version.
func TestOffsetFetchNoCommitHasEmptyMetadata(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "of")
	for _, v := range []int16{1, 7, 8} {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version = v
		var metas []*string
		if v < 8 {
			req.Group = "g-of"
			rt := kmsg.NewOffsetFetchRequestTopic()
			rt.Topic, rt.Partitions = "of", []int32{0}
			req.Topics = append(req.Topics, rt)
			resp := roundTrip[*kmsg.OffsetFetchResponse](t, b.Addr(), req)
			p := resp.Topics[0].Partitions[0]
			if p.Offset != -1 || p.LeaderEpoch != -1 && v >= 5 {
				t.Errorf("v%d: offset %d epoch %d", v, p.Offset, p.LeaderEpoch)
			}
			metas = append(metas, p.Metadata)
		} else {
			rg := kmsg.NewOffsetFetchRequestGroup()
			rg.Group = "g-of"
			rt := kmsg.NewOffsetFetchRequestGroupTopic()
			rt.Topic, rt.Partitions = "of", []int32{0}
			rg.Topics = append(rg.Topics, rt)
			req.Groups = append(req.Groups, rg)
			resp := roundTrip[*kmsg.OffsetFetchResponse](t, b.Addr(), req)
			metas = append(metas, resp.Groups[0].Topics[0].Partitions[0].Metadata)
		}
		if metas[0] == nil || *metas[0] != "" {
			t.Errorf("v%d: metadata %v, want \"\"", v, metas[0])
		}
	}
}

// Kafka answers a ListOffsets partition with an error, or a timestamp with no offset at or
// after it, with offset -1, timestamp -1 and leader epoch -1 (the schema default), not
// epoch 0.
func TestListOffsetsUnknownOffsetEpoch(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "le")
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 7
	req.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "le"
	for _, p := range []int32{0, 99} {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = p, 1000 // nothing written: no offset at or after 1000
		lt.Partitions = append(lt.Partitions, lp)
	}
	req.Topics = append(req.Topics, lt)
	resp := roundTrip[*kmsg.ListOffsetsResponse](t, b.Addr(), req)
	for _, p := range resp.Topics[0].Partitions {
		if p.Offset != -1 || p.Timestamp != -1 || p.LeaderEpoch != -1 {
			t.Errorf("partition %d (error %d): offset %d timestamp %d epoch %d, want -1 -1 -1", p.Partition, p.ErrorCode, p.Offset, p.Timestamp, p.LeaderEpoch)
		}
	}
}

// Kafka checks a topic resource's name before looking the topic up: DescribeConfigs
// (ConfigHelper: Topic.validate) and AlterConfigs/IncrementalAlterConfigs
// (ControllerConfigurationValidator) answer an illegal name INVALID_TOPIC_EXCEPTION, and
// the alters answer the empty name (a default-topic resource) INVALID_REQUEST.
func TestConfigsIllegalTopicName(t *testing.T) {
	b := startBroker(t, testOptions(t))
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Version = 4
	for _, name := range []string{"bad name", ""} {
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, name
		dc.Resources = append(dc.Resources, rr)
	}
	for i, r := range roundTrip[*kmsg.DescribeConfigsResponse](t, b.Addr(), dc).Resources {
		if r.ErrorCode != kerr.InvalidTopicException.Code {
			t.Errorf("describe %q: error %d, want INVALID_TOPIC_EXCEPTION", dc.Resources[i].ResourceName, r.ErrorCode)
		}
	}
	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	inc.Version = 1
	for _, name := range []string{"bad name", ""} {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, name
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = "retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("1000")
		r.Configs = append(r.Configs, c)
		inc.Resources = append(inc.Resources, r)
	}
	iresp := roundTrip[*kmsg.IncrementalAlterConfigsResponse](t, b.Addr(), inc)
	if c := iresp.Resources[0].ErrorCode; c != kerr.InvalidTopicException.Code {
		t.Errorf("alter \"bad name\": error %d, want INVALID_TOPIC_EXCEPTION", c)
	}
	if c := iresp.Resources[1].ErrorCode; c != kerr.InvalidRequest.Code {
		t.Errorf("alter \"\": error %d, want INVALID_REQUEST", c)
	}
}

// Kafka names each log dir in DescribeLogDirs by its absolute path
// (kafka-log-dirs.sh prints it); a broker started on a relative data dir answers the same.
func TestDescribeLogDirsAbsolutePath(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	o := testOptions(t)
	o.Dir = filepath.Join("data", "broker")
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	dirs, err := adm.DescribeAllLogDirs(testCtx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	dirs.Each(func(d kadm.DescribedLogDir) { got = append(got, d.Dir) })
	want, _ := filepath.Abs(o.Dir)
	if len(got) != 1 || got[0] != want {
		t.Fatalf("log dirs %q, want [%q]", got, want)
	}
}

// Kafka (ProduceRequest.validateRecords, called by KafkaApis before the append, v3+)
// refuses a partition's records holding more than one batch with INVALID_RECORD, before
// checking any CRC; only a whole second batch counts, so a torn tail is still the
// append's CORRUPT_MESSAGE. The partition's other batches are not appended either.
func TestProduceMoreThanOneBatch(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "two")
	badCRC := batch(2, 1000, []byte("b"))
	badCRC[len(badCRC)-1] ^= 1
	one := batch(1, 1000, []byte("a"))
	for _, c := range []struct {
		name    string
		records []byte
		want    *kerr.Error
	}{
		{"two batches", append(batch(1, 1000, []byte("a")), batch(3, 1000, []byte("b"))...), kerr.InvalidRecord},
		{"second batch with a bad crc", append(batch(1, 1000, []byte("a")), badCRC...), kerr.InvalidRecord},
		{"three batches", append(append(batch(1, 1000, nil), one...), one...), kerr.InvalidRecord},
		{"torn second batch", append(batch(1, 1000, []byte("a")), one[:len(one)-1]...), kerr.CorruptMessage},
	} {
		resp := roundTrip[*kmsg.ProduceResponse](t, b.Addr(), produceReq(-1, "two", 0, c.records))
		if got := resp.Topics[0].Partitions[0].ErrorCode; got != c.want.Code {
			t.Errorf("%s: %v, want %v", c.name, kerr.ErrorForCode(got), c.want)
		}
	}
	if hwm := b.partition("two", 0).log.HighWatermark(); hwm != 0 {
		t.Fatalf("refused records appended: high watermark %d", hwm)
	}
	resp := roundTrip[*kmsg.ProduceResponse](t, b.Addr(), produceReq(-1, "two", 0, one))
	if sp := resp.Topics[0].Partitions[0]; sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Fatalf("one batch: %v at %d", kerr.ErrorForCode(sp.ErrorCode), sp.BaseOffset)
	}
}

// Kafka (UnifiedLog.fetchOffsetByTimestamp) answers the special timestamps past -3
// without an error: with no tiered storage, -4 (earliest local, KIP-405) is the log
// start offset, -5 (latest tiered, KIP-1005) offset -1 with leader epoch -1, and any
// other negative timestamp is searched for like a real one, which finds the first record
// from the log start (this broker answers INVALID_REQUEST no more).
func TestListOffsetsSpecialTimestampsPastMax(t *testing.T) {
	b := startBroker(t, testOptions(t))
	createTopicRaw(t, b.Addr(), "special")
	p := b.partition("special", 0)
	for _, ts := range []int64{1000, 2000, 3000} {
		if _, err := p.log.Append(batch(2, ts, []byte("s"))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.log.DeleteRecordsBefore(2); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version, req.ReplicaID = 7, -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "special"
	cases := []struct{ ts, offset, timestamp int64 }{
		{-4, 2, -1},
		{-5, -1, -1},
		{-6, 2, 2000},
		{-1 << 62, 2, 2000},
	}
	for _, c := range cases {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = c.ts
		lt.Partitions = append(lt.Partitions, lp)
		req.Topics = []kmsg.ListOffsetsRequestTopic{lt}
		resp := roundTrip[*kmsg.ListOffsetsResponse](t, b.Addr(), req)
		lt.Partitions = lt.Partitions[:0]
		sp := resp.Topics[0].Partitions[0]
		wantEpoch := int32(0)
		if c.offset == -1 {
			wantEpoch = -1
		}
		if sp.ErrorCode != 0 || sp.Offset != c.offset || sp.Timestamp != c.timestamp || sp.LeaderEpoch != wantEpoch {
			t.Errorf("timestamp %d: %v offset %d timestamp %d epoch %d, want offset %d timestamp %d epoch %d",
				c.ts, kerr.ErrorForCode(sp.ErrorCode), sp.Offset, sp.Timestamp, sp.LeaderEpoch, c.offset, c.timestamp, wantEpoch)
		}
	}
}

// Kafka's ReplicaManager.describeLogDirs lists every topic of the log dir, each with the
// partitions the request names (all of them for a null topic list): a topic not named is
// listed with no partitions, and a named topic that does not exist is not listed.
func TestDescribeLogDirsTopicList(t *testing.T) {
	o := testOptions(t)
	o.DefaultPartitions = 2
	b := startBroker(t, o)
	for _, name := range []string{"ld-a", "ld-b"} {
		createTopicRaw(t, b.Addr(), name)
	}
	describe := func(topics []kmsg.DescribeLogDirsRequestTopic) map[string][]int32 {
		req := kmsg.NewPtrDescribeLogDirsRequest()
		req.Version = 4
		req.Topics = topics
		resp := roundTrip[*kmsg.DescribeLogDirsResponse](t, b.Addr(), req)
		if len(resp.Dirs) != 1 {
			t.Fatalf("%d log dirs", len(resp.Dirs))
		}
		got := map[string][]int32{}
		for _, dt := range resp.Dirs[0].Topics {
			got[dt.Topic] = []int32{}
			for _, dp := range dt.Partitions {
				got[dt.Topic] = append(got[dt.Topic], dp.Partition)
			}
		}
		return got
	}
	named := func(topic string, parts ...int32) kmsg.DescribeLogDirsRequestTopic {
		rt := kmsg.NewDescribeLogDirsRequestTopic()
		rt.Topic, rt.Partitions = topic, parts
		return rt
	}
	if got := fmt.Sprint(describe(nil)); got != "map[__consumer_offsets:[0] ld-a:[0 1] ld-b:[0 1]]" {
		t.Errorf("null topic list: %s", got)
	}
	got := fmt.Sprint(describe([]kmsg.DescribeLogDirsRequestTopic{named("ld-a", 1, 7), named("missing", 0)}))
	if got != "map[__consumer_offsets:[] ld-a:[1] ld-b:[]]" {
		t.Errorf("ld-a/1, ld-a/7 and missing/0: %s, want map[__consumer_offsets:[] ld-a:[1] ld-b:[]]", got)
	}
}
