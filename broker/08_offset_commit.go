package broker

// OffsetCommit v0–9.
//
// Behaviour: stores the offsets (with leader epoch and metadata string, which round-trip
// through OffsetFetch) durably in the group coordinator's commit log before answering.
// A commit from a group member is checked against its generation; generation -1 with no
// member id is a "simple" commit (assign-only consumers), allowed while the group has no
// members; a replaced static member (v7+ InstanceID) gets FENCED_INSTANCE_ID. Offsets of
// unknown topics/partitions are refused per partition, and so, with
// OFFSET_METADATA_TOO_LARGE, is a metadata string longer than Kafka's default
// offset.metadata.max.bytes (4096 characters; OffsetMetadataManager.commitOffset).
//
// Version notes: v1 generation/member; v2–4 RetentionTime (ignored: broker retention
// applies); v3 throttle; v6 LeaderEpoch; v7 InstanceID; v8 flexible; v9 renames the
// generation to GenerationIDOrMemberEpoch (KIP-848): a classic group's generation, a
// consumer group member's epoch. A consumer group's commit must come from a member at
// its current epoch (STALE_MEMBER_EPOCH otherwise, UNKNOWN_MEMBER_ID for an unknown
// member), over v9+ (UNSUPPORTED_VERSION below), unless the group has no members and
// the commit names no epoch (-1), as Kafka's ConsumerGroup.validateOffsetCommit.

import (
	"strings"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/groups"
)

func init() { register(8, 0, 9, handleOffsetCommit) }

// putCommitted adds a partition's offset to offs; the topic and the metadata are cloned
// out of the request frame.
func putCommitted(offs map[string]map[int32]groups.Committed, topic string, part int32, offset int64, epoch int32, metadata *string) {
	if offs[topic] == nil {
		offs[strings.Clone(topic)] = map[int32]groups.Committed{}
	}
	md := ""
	if metadata != nil {
		md = strings.Clone(*metadata)
	}
	offs[topic][part] = groups.Committed{Offset: offset, LeaderEpoch: epoch, Metadata: md}
}

func handleOffsetCommit(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	// Authorization, as Kafka's handleOffsetCommitRequest: READ on the group (else every
	// partition is refused), READ on each topic.
	if !c.allowedGroup(kmsg.ACLOperationRead, req.Group) {
		return commitRefused(req, kerr.GroupAuthorizationFailed.Code), nil
	}
	denied := c.deniedTopics(kmsg.ACLOperationRead, namesOf(req.Topics, func(t *kmsg.OffsetCommitRequestTopic) string { return t.Topic }))
	offs := map[string]map[int32]groups.Committed{}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if denied[rt.Topic] || b.partition(rt.Topic, rp.Partition) == nil || metadataTooLarge(rp.Metadata) {
				continue
			}
			putCommitted(offs, rt.Topic, rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata)
		}
	}
	gen, member := req.Generation, req.MemberID
	if req.Version == 0 {
		gen, member = -1, ""
	}
	code := int16(0)
	if req.Group == "" {
		code = kerr.InvalidGroupID.Code
	} else {
		code = b.groups.CommitVersion(strings.Clone(req.Group), member, req.InstanceID, gen, req.Version, offs)
	}
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, b.commitCode(rt.Topic, rp.Partition, rp.Metadata, code)
			if denied[rt.Topic] {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// commitRefused answers every partition of an offset commit with code.
func commitRefused(req *kmsg.OffsetCommitRequest, code int16) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// commitCode is one partition's answer to an offset commit (OffsetCommit,
// TxnOffsetCommit) whose group-level outcome is code: as Kafka, a partition that does not
// exist is UNKNOWN_TOPIC_OR_PARTITION whatever the group says, and metadata over
// offset.metadata.max.bytes is OFFSET_METADATA_TOO_LARGE (neither was committed).
func (b *Broker) commitCode(topic string, part int32, md *string, code int16) int16 {
	switch {
	case b.partition(topic, part) == nil:
		return kerr.UnknownTopicOrPartition.Code
	case code == 0 && metadataTooLarge(md):
		return kerr.OffsetMetadataTooLarge.Code
	}
	return code
}

// maxOffsetMetadata is Kafka's offset.metadata.max.bytes default. Kafka compares it with
// the Java string's length, in UTF-16 code units.
const maxOffsetMetadata = 4096

func metadataTooLarge(md *string) bool {
	if md == nil || len(*md) <= maxOffsetMetadata {
		return false // UTF-16 units never outnumber UTF-8 bytes
	}
	n := 0
	for _, r := range *md {
		n += utf16.RuneLen(r)
		if n > maxOffsetMetadata {
			return true
		}
	}
	return false
}
