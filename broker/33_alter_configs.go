package broker

// AlterConfigs v0–2.
//
// Behaviour: replaces a topic's whole set of overrides with the given configs (the
// non-incremental Kafka semantics: configs left out return to their defaults). Every
// value is validated first; one bad value fails the resource and changes nothing (a null
// value: INVALID_REQUEST, as Kafka's ConfigAdminManager). The new
// settings are persisted in topics.json and applied to the open logs at once. Broker
// configs are static here (tagpipe.yaml): altering them is INVALID_REQUEST. A resource
// named twice in one request is answered once with INVALID_REQUEST and left unchanged.
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
	keys := make([]configResource, len(req.Resources))
	for i, rr := range req.Resources {
		keys[i] = configResource{rr.ResourceType, rr.ResourceName}
	}
	dup := findDups(keys)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if isDup, first := dup.take(configResource{rr.ResourceType, rr.ResourceName}); isDup {
			if first {
				msg := "Duplicate resource."
				sr.ErrorCode, sr.ErrorMessage = kerr.InvalidRequest.Code, &msg
				resp.Resources = append(resp.Resources, sr)
			}
			continue
		}
		if code := c.configDenied(kmsg.ACLOperationAlterConfigs, rr.ResourceType, rr.ResourceName); code != 0 {
			sr.ErrorCode = code
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		te := b.alterTopicConfigs(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, *topicError) {
			var nulls []string
			for _, cfg := range rr.Configs {
				if cfg.Value == nil {
					nulls = append(nulls, cfg.Name)
				}
			}
			if nulls != nil {
				return nil, nullValues(nulls)
			}
			configs := map[string]string{} // the whole set: configs left out return to their defaults
			for _, cfg := range rr.Configs {
				if err := validateConfig(cfg.Name, cfg.Value); err != nil {
					return nil, terr(kerr.InvalidConfig, "%v", err)
				}
				configs[cfg.Name] = *cfg.Value
			}
			return configs, nil
		})
		if te != nil {
			te.set(&sr.ErrorCode, &sr.ErrorMessage)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}
