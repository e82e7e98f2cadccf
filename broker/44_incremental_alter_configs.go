package broker

// IncrementalAlterConfigs v0–1.
//
// Behaviour: applies SET / DELETE (back to the default) / APPEND / SUBTRACT (list
// configs only, i.e. cleanup.policy) to a topic's overrides. Every operation of a
// resource is validated before any is applied; one bad one fails the resource and
// changes nothing. Naming a config twice in one resource is INVALID_REQUEST, and so is a
// null value for any operation but DELETE (Kafka's ConfigAdminManager.preprocess). Broker
// configs are static here: INVALID_REQUEST. A broker logger's level is SET or DELETEd
// (loggers.go). A resource named twice in one request is
// answered once with INVALID_REQUEST and left unchanged, as in Kafka.
//
// Version notes: v1 flexible.

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	keys := make([]configResource, len(req.Resources))
	for i, rr := range req.Resources {
		keys[i] = configResource{rr.ResourceType, rr.ResourceName}
	}
	dup := findDups(keys)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
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
		if rr.ResourceType == kmsg.ConfigResourceTypeBrokerLogger {
			if te := b.alterLoggers(&rr, req.ValidateOnly); te != nil {
				te.set(&sr.ErrorCode, &sr.ErrorMessage)
			}
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		te := b.alterTopicConfigs(rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(configs map[string]string) (map[string]string, *topicError) {
			var nulls []string
			for _, cfg := range rr.Configs {
				if cfg.Value == nil && cfg.Op != kmsg.IncrementalAlterConfigOpDelete {
					nulls = append(nulls, cfg.Name)
				}
			}
			if nulls != nil {
				return nil, nullValues(nulls)
			}
			seen := map[string]bool{}
			for _, cfg := range rr.Configs {
				if seen[cfg.Name] {
					return nil, terr(kerr.InvalidRequest, "config %q is named more than once", cfg.Name)
				}
				seen[cfg.Name] = true
				d := findConfig(cfg.Name)
				if d == nil {
					return nil, terr(kerr.InvalidConfig, "unknown topic config %q", cfg.Name)
				}
				switch cfg.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					if err := validateConfig(cfg.Name, cfg.Value); err != nil {
						return nil, terr(kerr.InvalidConfig, "%v", err)
					}
					configs[cfg.Name] = *cfg.Value
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(configs, cfg.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					if d.typ != kmsg.ConfigTypeList {
						return nil, terr(kerr.InvalidConfig, "config %q is not a list: APPEND/SUBTRACT do not apply", cfg.Name)
					}
					if cfg.Value == nil {
						return nil, terr(kerr.InvalidConfig, "config %q: null value", cfg.Name)
					}
					cur, _ := b.effective(d, configs)
					items := splitList(cur)
					for _, v := range splitList(*cfg.Value) {
						if cfg.Op == kmsg.IncrementalAlterConfigOpAppend && !slices.Contains(items, v) {
							items = append(items, v)
						} else if cfg.Op == kmsg.IncrementalAlterConfigOpSubtract {
							items = slices.DeleteFunc(items, func(s string) bool { return s == v })
						}
					}
					nv := strings.Join(items, ",")
					if err := validateConfig(cfg.Name, &nv); err != nil {
						return nil, terr(kerr.InvalidConfig, "%v", err)
					}
					configs[cfg.Name] = nv
				default:
					return nil, terr(kerr.InvalidRequest, "unknown operation %d on %q", cfg.Op, cfg.Name)
				}
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

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
