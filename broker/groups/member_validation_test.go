package groups

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's ClassicGroup.validateMember / classicGroupLeave: once a static member
// (group.instance.id) has been replaced by a restart, its old incarnation's Heartbeat,
// SyncGroup, JoinGroup and LeaveGroup, naming the instance id with the old member id, get
// FENCED_INSTANCE_ID (fatal in the clients: the old process stops) instead of
// UNKNOWN_MEMBER_ID, which made it rejoin and replace its successor in turn; and its
// LeaveGroup does not remove the successor; its OffsetCommit (v7+ InstanceID) is fenced
// too (validateOffsetCommit). SyncGroup v5 naming another protocol than
// the group's is INCONSISTENT_GROUP_PROTOCOL (validateSyncGroup).
func TestStaticMemberOldIncarnationFenced(t *testing.T) {
	c, _ := newTest(t)
	static := func(member string) *kmsg.JoinGroupRequest {
		r := joinReq(5, "g", member, "range")
		r.InstanceID = kmsg.StringPtr("host-1")
		return r
	}
	old := recv(t, joinAsync(c, static("")))
	cur := recv(t, joinAsync(c, static(""))) // the restart: replaces old
	if old.ErrorCode != 0 || cur.ErrorCode != 0 || cur.MemberID == old.MemberID {
		t.Fatalf("static joins: %d %d", old.ErrorCode, cur.ErrorCode)
	}
	iid := kmsg.StringPtr("host-1")

	hb := &kmsg.HeartbeatRequest{Version: 3, Group: "g", MemberID: old.MemberID, Generation: cur.Generation, InstanceID: iid}
	if code := c.Heartbeat(hb); code != kerr.FencedInstanceID.Code {
		t.Errorf("old heartbeat: %d, want FENCED_INSTANCE_ID", code)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version, sync.Group, sync.MemberID, sync.Generation, sync.InstanceID = 5, "g", old.MemberID, cur.Generation, iid
	if r := c.SyncGroup(context.Background(), sync); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Errorf("old sync: %d, want FENCED_INSTANCE_ID", r.ErrorCode)
	}
	if r := recv(t, joinAsync(c, static(old.MemberID))); r.ErrorCode != kerr.FencedInstanceID.Code {
		t.Errorf("old rejoin: %d, want FENCED_INSTANCE_ID", r.ErrorCode)
	}
	offs := map[string]map[int32]Committed{"t": {0: {Offset: 1}}}
	if code := c.CommitFrom("g", old.MemberID, iid, cur.Generation, offs); code != kerr.FencedInstanceID.Code {
		t.Errorf("old commit: %d, want FENCED_INSTANCE_ID", code)
	}
	if codes := c.LeaveGroup("g", []string{old.MemberID}, []string{"host-1"}); codes[0] != kerr.FencedInstanceID.Code {
		t.Errorf("old leave: %d, want FENCED_INSTANCE_ID", codes[0])
	}
	gi, _ := c.Describe("g")
	if len(gi.Members) != 1 || gi.Members[0].ID != cur.MemberID {
		t.Fatalf("members after the old incarnation's requests: %+v", gi.Members)
	}

	// The current incarnation: a SyncGroup v5 naming another protocol is refused, the
	// right one is served.
	sync.MemberID, sync.Protocol, sync.ProtocolType = cur.MemberID, kmsg.StringPtr("roundrobin"), kmsg.StringPtr("consumer")
	if r := c.SyncGroup(context.Background(), sync); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Errorf("sync with protocol roundrobin in a range group: %d, want INCONSISTENT_GROUP_PROTOCOL", r.ErrorCode)
	}
	sync.Protocol = kmsg.StringPtr("range")
	if r := c.SyncGroup(context.Background(), sync); r.ErrorCode != 0 {
		t.Errorf("current sync: %d", r.ErrorCode)
	}
	hb.MemberID = cur.MemberID
	if code := c.Heartbeat(hb); code != 0 {
		t.Errorf("current heartbeat: %d", code)
	}
	// Leaving by instance id alone (kafka-consumer-groups.sh --delete of a static member)
	// removes the current incarnation.
	if codes := c.LeaveGroup("g", []string{""}, []string{"host-1"}); codes[0] != 0 {
		t.Errorf("leave by instance id: %d", codes[0])
	}
	// Generation -1 in a group without members is the admin client's (or a consumer's
	// without group management) commit, allowed whatever member id it names.
	if code := c.CommitFrom("g", "some-member", nil, -1, offs); code != 0 {
		t.Errorf("generation -1 commit in the emptied group: %d", code)
	}
}

// Kafka's ClassicGroup.validateOffsetDelete refuses OffsetDelete with NON_EMPTY_GROUP
// while a group of another protocol type than "consumer" (Kafka Connect's "connect", …)
// has members: only consumer subscriptions can be read to spare the topics in use.
func TestDeleteOffsetsNonConsumerGroupWithMembers(t *testing.T) {
	c, _ := newTest(t)
	jr := joinReq(3, "connect-g", "", "sessioned")
	jr.ProtocolType = "connect"
	if r := recv(t, joinAsync(c, jr)); r.ErrorCode != 0 {
		t.Fatalf("join: %d", r.ErrorCode)
	}
	if code, _ := c.DeleteOffsets("connect-g", map[string][]int32{"t": {0}}); code != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete offsets of a connect group with a member: %d, want NON_EMPTY_GROUP", code)
	}
}
