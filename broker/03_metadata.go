package broker

// Metadata v0–12.
//
// Behaviour: this node is the only broker, controller, and the leader and only replica of
// every partition (leader epoch 0). A null topic list (an empty one before v1) means all
// topics. Unknown topics are created with the default partition count when auto-creation
// is on and the request allows it (v4+ AllowAutoTopicCreation; always before v4);
// otherwise they are answered UNKNOWN_TOPIC_OR_PARTITION. A topic named twice is answered
// once, as Kafka's requested-topic set does. The broker's host/port are the advertised
// ones. With an authorizer, a topic named without DESCRIBE on it is
// TOPIC_AUTHORIZATION_FAILED, one not created for want of CREATE (on the cluster or the
// topic) too, and a listing of all topics leaves out those the client may not describe.
//
// Version notes: v1 controller, IsInternal, null = all topics; v2 ClusterID; v3
// throttle; v4 AllowAutoTopicCreation; v5 OfflineReplicas; v7 LeaderEpoch; v8
// authorized operations (when asked for: those the ACLs allow, every operation Kafka
// supports on the resource without an authorizer, authorize.go); v9 flexible; v10 topic
// IDs; v11 drops the cluster's authorized operations (DescribeCluster has them); v12
// lookup by topic ID.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/acl"
)

func init() { register(3, 0, 12, handleMetadata) }

func handleMetadata(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	br := kmsg.NewMetadataResponseBroker()
	br.NodeID = b.opts.NodeID
	br.Host, br.Port = c.advertised()
	resp.Brokers = []kmsg.MetadataResponseBroker{br}
	resp.ClusterID = &b.clusterID
	resp.ControllerID = b.opts.NodeID
	if req.Version >= 8 && req.Version <= 10 && req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = 0 // without DESCRIBE on the cluster, as Kafka
		if c.allowedSilently(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, acl.ClusterName) {
			resp.AuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeCluster, acl.ClusterName)
		}
	}
	if req.IncludeTopicAuthorizedOperations {
		defer func() {
			for i := range resp.Topics {
				if t := &resp.Topics[i]; t.ErrorCode == 0 && t.Topic != nil {
					t.AuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeTopic, *t.Topic)
				}
			}
		}()
	}
	// denied answers a topic the client may not describe (by name or id), as Kafka.
	denied := func(name *string, id [16]byte) {
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic, mt.ErrorCode = name, kerr.TopicAuthorizationFailed.Code
		if name == nil {
			mt.TopicID = id
		}
		resp.Topics = append(resp.Topics, mt)
	}

	addTopic := func(t *topic) {
		s := b.snapshot(t)
		mt := kmsg.NewMetadataResponseTopic()
		name := s.name
		mt.Topic, mt.TopicID = &name, s.id
		mt.IsInternal = isInternalTopic(name)
		for _, p := range s.parts {
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Partition, mp.Leader, mp.LeaderEpoch = p.index, b.opts.NodeID, 0
			mp.Replicas = []int32{b.opts.NodeID}
			mp.ISR = []int32{b.opts.NodeID}
			mp.OfflineReplicas = []int32{}
			mt.Partitions = append(mt.Partitions, mp)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	allowCreate := req.Version < 4 || req.AllowAutoTopicCreation
	if req.Topics == nil || req.Version == 0 && len(req.Topics) == 0 {
		for _, name := range b.topicNames() {
			if !c.allowedSilently(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, name) {
				continue // hidden, as Kafka lists only the topics one may describe
			}
			if t := b.topic(name); t != nil {
				addTopic(t)
			}
		}
		return resp, nil
	}
	// Kafka collects the requested topics into a set: a topic named twice is answered once.
	seenNames, seenIDs := map[string]bool{}, map[[16]byte]bool{}
	for _, rt := range req.Topics {
		if rt.Topic != nil && *rt.Topic != "" {
			if seenNames[*rt.Topic] {
				continue
			}
			seenNames[*rt.Topic] = true
		} else {
			if seenIDs[rt.TopicID] {
				continue
			}
			seenIDs[rt.TopicID] = true
		}
		if rt.Topic == nil || *rt.Topic == "" {
			t := b.topicByID(rt.TopicID)
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			if !c.allowedTopic(kmsg.ACLOperationDescribe, t.name) {
				denied(nil, rt.TopicID)
				continue
			}
			addTopic(t)
			continue
		}
		name := *rt.Topic
		if !c.allowedTopic(kmsg.ACLOperationDescribe, name) {
			denied(&name, [16]byte{})
			continue
		}
		t := b.topic(name)
		var te *topicError
		if t == nil && allowCreate {
			t, te = c.autoCreate(name)
		}
		if t == nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = &name
			mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if te != nil {
				mt.ErrorCode = te.err.Code
			}
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		addTopic(t)
	}
	return resp, nil
}
