package broker

// DeleteTopics v0–6.
//
// Behaviour: removes each topic from topics.json, then deletes its partition
// directories. An unknown topic is UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID by id).
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
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
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
		if t := b.topic(name); t != nil {
			st.TopicID = t.id
		}
		if te := b.deleteTopic(name); te != nil {
			te.set(&st.ErrorCode, &st.ErrorMessage)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
