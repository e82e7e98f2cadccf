package broker

// OffsetFetch v1–9.
//
// Behaviour: a group's committed offsets (offset -1, metadata "" and no error for
// partitions without one); a null topic list (v2+) means every committed partition. v8 batches groups.
//
// Version notes: v2 null = all, top-level ErrorCode; v3 throttle; v5 LeaderEpoch; v6
// flexible; v7 RequireStable: a partition whose offset an open transaction has staged
// (TxnOffsetCommit) gets UNSTABLE_OFFSET_COMMIT, as Kafka answers (without it, the last
// committed offset); v8 groups; v9 adds each group's MemberID/MemberEpoch (KIP-848):
// for a consumer group, a request naming a member must come from it at its current
// epoch (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH as the group's error, Kafka's
// validateOffsetFetch); classic groups and requests without a member are not checked.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(9, 1, 9, handleOffsetFetch) }

type offsetFetchTopic struct {
	name  string
	parts []int32 // nil: all committed
}

// fetchOffsets answers one group's topics (all of them when all is set). Without
// DESCRIBE on a topic, a named one's partitions are TOPIC_AUTHORIZATION_FAILED and,
// when all are asked for, it is left out, as Kafka's handleOffsetFetchRequest.
func (c *conn) fetchOffsets(group string, topics []offsetFetchTopic, all, requireStable bool) []kmsg.OffsetFetchResponseTopic {
	b := c.b
	committed := b.groups.Fetch(group)
	if all {
		topics = nil
		for t := range committed {
			if c.allowedSilently(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t) {
				topics = append(topics, offsetFetchTopic{name: t})
			}
		}
		sort.Slice(topics, func(i, j int) bool { return topics[i].name < topics[j].name })
	}
	var out []kmsg.OffsetFetchResponseTopic
	for _, t := range topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.name
		denied := !all && !c.allowedTopic(kmsg.ACLOperationDescribe, t.name)
		parts := t.parts
		if parts == nil {
			for p := range committed[t.name] {
				parts = append(parts, p)
			}
			sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		}
		for _, p := range parts {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			// No commit: offset -1, metadata "" (not null), as Kafka's OffsetMetadataManager.
			noMetadata := ""
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata = p, -1, -1, &noMetadata
			if o, ok := committed[t.name][p]; ok {
				md := o.Metadata
				sp.Offset, sp.LeaderEpoch, sp.Metadata = o.Offset, o.LeaderEpoch, &md
			}
			if denied {
				sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = -1, -1, &noMetadata, kerr.TopicAuthorizationFailed.Code
			} else if requireStable && b.txns.pendingOffset(group, t.name, p) {
				sp.Offset, sp.LeaderEpoch, sp.ErrorCode = -1, -1, kerr.UnstableOffsetCommit.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		out = append(out, st)
	}
	return out
}

func handleOffsetFetch(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		var topics []offsetFetchTopic
		for _, t := range req.Topics {
			topics = append(topics, offsetFetchTopic{name: t.Topic, parts: t.Partitions})
		}
		// Without DESCRIBE on the group: GROUP_AUTHORIZATION_FAILED, at the top from v2,
		// in each named partition before (Kafka's OffsetFetchResponse for v0–1).
		if !c.allowedGroup(kmsg.ACLOperationDescribe, req.Group) {
			resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
			if req.Version < 2 {
				for _, t := range req.Topics {
					st := kmsg.NewOffsetFetchResponseTopic()
					st.Topic = t.Topic
					for _, p := range t.Partitions {
						sp := kmsg.NewOffsetFetchResponseTopicPartition()
						sp.Partition, sp.Offset, sp.ErrorCode = p, -1, kerr.GroupAuthorizationFailed.Code
						st.Partitions = append(st.Partitions, sp)
					}
					resp.Topics = append(resp.Topics, st)
				}
			}
			return resp, nil
		}
		resp.Topics = c.fetchOffsets(req.Group, topics, req.Topics == nil && req.Version >= 2, req.RequireStable)
		return resp, nil
	}
	for _, rg := range req.Groups {
		var topics []offsetFetchTopic
		for _, t := range rg.Topics {
			topics = append(topics, offsetFetchTopic{name: t.Topic, parts: t.Partitions})
		}
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group = rg.Group
		if !c.allowedGroup(kmsg.ACLOperationDescribe, rg.Group) {
			g.ErrorCode = kerr.GroupAuthorizationFailed.Code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		if req.Version >= 9 {
			if code := c.b.groups.CheckFetch(rg.Group, rg.MemberID, rg.MemberEpoch); code != 0 {
				g.ErrorCode = code
				resp.Groups = append(resp.Groups, g)
				continue
			}
		}
		for _, t := range c.fetchOffsets(rg.Group, topics, rg.Topics == nil, req.RequireStable) {
			gt := kmsg.NewOffsetFetchResponseGroupTopic()
			gt.Topic = t.Topic
			for _, p := range t.Partitions {
				gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata, gp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
				gt.Partitions = append(gt.Partitions, gp)
			}
			g.Topics = append(g.Topics, gt)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
