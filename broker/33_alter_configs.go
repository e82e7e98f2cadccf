package broker

// AlterConfigs v0–2.
//
// Behaviour: replaces a topic's whole set of overrides with the given configs (the
// non-incremental Kafka semantics: configs left out return to their defaults). Every
// value is validated first; one bad value fails the resource and changes nothing. The new
// settings are persisted in topics.json and applied to the open logs at once. Broker
// configs are static here (tagpipe.yaml): altering them is INVALID_REQUEST.
//
// Version notes: v1 same as v0; v2 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		te := func() *topicError {
			if rr.ResourceType != kmsg.ConfigResourceTypeTopic {
				return terr(kerr.InvalidRequest, "only topic configs can be altered; broker settings come from tagpipe.yaml")
			}
			if b.topic(rr.ResourceName) == nil {
				return terr(kerr.UnknownTopicOrPartition, "topic %q does not exist", rr.ResourceName)
			}
			configs := map[string]string{}
			for _, cfg := range rr.Configs {
				if err := validateConfig(cfg.Name, cfg.Value); err != nil {
					return terr(kerr.InvalidConfig, "%v", err)
				}
				configs[cfg.Name] = *cfg.Value
			}
			if req.ValidateOnly {
				return nil
			}
			return b.setTopicConfigs(rr.ResourceName, configs)
		}()
		if te != nil {
			sr.ErrorCode = te.err.Code
			msg := te.msg
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}
