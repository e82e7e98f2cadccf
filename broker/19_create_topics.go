package broker

// CreateTopics v0–7.
//
// Behaviour: creates each topic with its partition count (-1: the broker default) and
// config overrides, validated first (unknown or unsupported configs: INVALID_CONFIG).
// Replication factor must be 1 or -1 on a single node; a manual replica assignment may
// only name this node. ValidateOnly checks without creating. A topic named twice in one
// request is answered once, with INVALID_REQUEST, and not created (as Kafka's
// ControllerApis.createTopics).
//
// Version notes: v1 ErrorMessage, ValidateOnly; v2 throttle; v4 -1 defaults (KIP-464);
// v5 flexible, the created topic's configs, partitions and replication in the response;
// v7 TopicID.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(19, 0, 7, handleCreateTopics) }

func handleCreateTopics(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	names := make([]string, len(req.Topics))
	for i, rt := range req.Topics {
		names[i] = rt.Topic
	}
	dup := findDups(names)
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		fail := func(e *topicError) { e.set(&st.ErrorCode, &st.ErrorMessage) }
		n := rt.NumPartitions
		configs := map[string]string{}
		var te *topicError
		if isDup, first := dup.take(rt.Topic); isDup {
			if !first {
				continue // answered already
			}
			te = terr(kerr.InvalidRequest, "Duplicate topic name.")
		}
		// CREATE on the cluster or the topic (Kafka's handleCreateTopicsRequest).
		if te == nil && !c.allowedToCreate(rt.Topic) {
			te = terr(kerr.TopicAuthorizationFailed, "Authorization failed.")
		}
		if te == nil && len(rt.ReplicaAssignment) > 0 {
			if n != -1 || rt.ReplicationFactor != -1 {
				te = terr(kerr.InvalidRequest, "replica assignment needs partitions and replication factor of -1")
			}
			for i, ra := range rt.ReplicaAssignment {
				if ra.Partition != int32(i) || len(ra.Replicas) != 1 || ra.Replicas[0] != b.opts.NodeID {
					te = terr(kerr.InvalidReplicaAssignment, "partitions must be 0..n-1, each on broker %d alone", b.opts.NodeID)
					break
				}
			}
			n = int32(len(rt.ReplicaAssignment))
		}
		for _, cfg := range rt.Configs {
			if te != nil {
				break
			}
			if err := validateConfig(cfg.Name, cfg.Value); err != nil {
				te = terr(kerr.InvalidConfig, "%v", err)
				break
			}
			configs[cfg.Name] = *cfg.Value
		}
		var t *topic
		if te == nil {
			t, te = b.createTopic(rt.Topic, n, rt.ReplicationFactor, configs, req.ValidateOnly)
		}
		if te != nil {
			fail(te)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.TopicID = t.id
		st.NumPartitions = int32(len(t.parts))
		st.ReplicationFactor = 1
		if req.Version >= 5 && !c.allowedTopic(kmsg.ACLOperationDescribeConfigs, rt.Topic) {
			st.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code // the configs are not shown
			resp.Topics = append(resp.Topics, st)
			continue
		}
		for i := range topicConfigs {
			d := &topicConfigs[i]
			v, src := b.effective(d, configs)
			rc := kmsg.NewCreateTopicsResponseTopicConfig()
			rc.Name, rc.Value, rc.Source = d.name, &v, int8(src)
			st.Configs = append(st.Configs, rc)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
