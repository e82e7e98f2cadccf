package broker

// DeleteTopics v0–6.
//
// Behaviour: removes each topic from topics.json, then deletes its partition
// directories. An unknown topic is UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID by id).
// A name or id named twice is answered once with INVALID_REQUEST and not deleted; so is
// a v6 entry with both a name and an id, or neither (Kafka's ControllerApis.deleteTopics).
//
// Version notes: v1 throttle; v4 flexible; v5 ErrorMessage; v6 topics by name or ID.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(20, 0, 6, handleDeleteTopics) }

func handleDeleteTopics(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version < 6 {
		for i := range req.TopicNames {
			targets = append(targets, target{name: &req.TopicNames[i]})
		}
	} else {
		for _, t := range req.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	}
	// As in Kafka (ControllerApis.deleteTopics): a name or id given more than once is
	// answered once with INVALID_REQUEST and not deleted, as is an entry with both a name
	// and an id, or neither.
	var names []string
	var ids [][16]byte
	for _, tg := range targets {
		if tg.name != nil {
			names = append(names, *tg.name)
		} else {
			ids = append(ids, tg.id)
		}
	}
	dupNames, dupIDs := findDups(names), findDups(ids)
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		invalid := func(msg string) {
			st.ErrorCode, st.ErrorMessage = kerr.InvalidRequest.Code, &msg
			resp.Topics = append(resp.Topics, st)
		}
		switch {
		case tg.name == nil && tg.id == [16]byte{}:
			invalid("Neither topic name nor id were specified.")
			continue
		case tg.name != nil && tg.id != [16]byte{}:
			invalid("You may not specify both topic name and topic id.")
			continue
		}
		if tg.name != nil {
			if isDup, first := dupNames.take(*tg.name); isDup {
				if first {
					invalid("Duplicate topic name.")
				}
				continue
			}
		} else if isDup, first := dupIDs.take(tg.id); isDup {
			if first {
				invalid("Duplicate topic id.")
			}
			continue
		}
		name := ""
		if tg.name != nil {
			name = *tg.name
		} else if t := b.topicByID(tg.id); t != nil {
			name = t.name
			st.Topic = &name
		} else {
			st.ErrorCode = kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if !c.allowedTopic(kmsg.ACLOperationDelete, name) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			if tg.name == nil {
				st.Topic = nil // a topic found by id is not named to one who may not delete it
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if t := b.topic(name); t != nil {
			st.TopicID = t.id
		}
		if isInternalTopic(name) {
			// Kafka's controller would delete it (kafka-topics.sh refuses); here the group
			// coordinator writes it, so it stays.
			msg := "Topic " + name + " is a kafka internal topic and is not allowed to be marked for deletion."
			st.ErrorCode, st.ErrorMessage = kerr.InvalidTopicException.Code, &msg
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if te := b.deleteTopic(name); te != nil {
			te.set(&st.ErrorCode, &st.ErrorMessage)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
