package broker

// OffsetFetch v1–9.
//
// Behaviour: a group's committed offsets (offset -1, metadata "" and no error for
// partitions without one); a null topic list (v2+) means every committed partition. v8 batches groups.
//
// Version notes: v2 null = all, top-level ErrorCode; v3 throttle; v5 LeaderEpoch; v6
// flexible; v7 RequireStable: a partition whose offset an open transaction has staged
// (TxnOffsetCommit) gets UNSTABLE_OFFSET_COMMIT, as Kafka answers (without it, the last
// committed offset); v8 groups; v9 adds each group's
// MemberID/MemberEpoch (KIP-848), which classic groups do not check (epoch -1).

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

func (b *Broker) fetchOffsets(group string, topics []offsetFetchTopic, all, requireStable bool) []kmsg.OffsetFetchResponseTopic {
	committed := b.groups.Fetch(group)
	if all {
		topics = nil
		for t := range committed {
			topics = append(topics, offsetFetchTopic{name: t})
		}
		sort.Slice(topics, func(i, j int) bool { return topics[i].name < topics[j].name })
	}
	var out []kmsg.OffsetFetchResponseTopic
	for _, t := range topics {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.name
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
			if requireStable && b.txns.pendingOffset(group, t.name, p) {
				sp.Offset, sp.LeaderEpoch, sp.ErrorCode = -1, -1, kerr.UnstableOffsetCommit.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		out = append(out, st)
	}
	return out
}

func handleOffsetFetch(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		var topics []offsetFetchTopic
		for _, t := range req.Topics {
			topics = append(topics, offsetFetchTopic{name: t.Topic, parts: t.Partitions})
		}
		resp.Topics = b.fetchOffsets(req.Group, topics, req.Topics == nil && req.Version >= 2, req.RequireStable)
		return resp, nil
	}
	for _, rg := range req.Groups {
		var topics []offsetFetchTopic
		for _, t := range rg.Topics {
			topics = append(topics, offsetFetchTopic{name: t.Topic, parts: t.Partitions})
		}
		g := kmsg.NewOffsetFetchResponseGroup()
		g.Group = rg.Group
		for _, t := range b.fetchOffsets(rg.Group, topics, rg.Topics == nil, req.RequireStable) {
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
