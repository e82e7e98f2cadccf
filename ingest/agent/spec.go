package agent

import (
	"fmt"
	"sort"
	"strings"
)

// Spec is one agent's configuration: its components as flat properties with tagpipe's
// key names. Both the YAML config section and Flume .properties files become a Spec.
type Spec struct {
	Name string
	// Where prefixes keys in errors: "ingest.agents.a1" or "a1" (Flume file).
	Where      string
	Sources    map[string]map[string]string
	Channels   map[string]map[string]string
	Sinks      map[string]map[string]string
	SinkGroups map[string]map[string]string
}

// FromYAML turns the YAML form (nested maps and lists per component) into a Spec.
// Nested maps become dotted keys; lists of scalars become space-separated values; a list
// of maps (interceptors) becomes names i1, i2, … with their keys below.
func FromYAML(name, where string, sources, channels, sinks, groups map[string]map[string]any) (Spec, error) {
	s := Spec{Name: name, Where: where}
	var err error
	conv := func(in map[string]map[string]any, kind string) map[string]map[string]string {
		out := map[string]map[string]string{}
		for n, m := range in {
			flat := map[string]string{}
			if e := flatten(flat, "", m); e != nil && err == nil {
				err = fmt.Errorf("%s.%s.%s: %w", where, kind, n, e)
			}
			out[n] = flat
		}
		return out
	}
	s.Sources = conv(sources, "sources")
	s.Channels = conv(channels, "channels")
	s.Sinks = conv(sinks, "sinks")
	s.SinkGroups = conv(groups, "sinkgroups")
	return s, err
}

func flatten(out map[string]string, prefix string, v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if err := flatten(out, join(prefix, k), x); err != nil {
				return err
			}
		}
	case []any:
		var names []string
		allMaps := len(v) > 0
		for _, x := range v {
			if _, ok := x.(map[string]any); !ok {
				allMaps = false
			}
		}
		for i, x := range v {
			if allMaps {
				n := fmt.Sprintf("i%d", i+1)
				if m := x.(map[string]any); m["name"] != nil {
					n = fmt.Sprint(m["name"])
					delete(m, "name")
				}
				names = append(names, n)
				if err := flatten(out, join(prefix, n), x); err != nil {
					return err
				}
				continue
			}
			names = append(names, fmt.Sprint(x))
		}
		out[prefix] = strings.Join(names, " ")
	case nil:
		out[prefix] = ""
	default:
		out[prefix] = fmt.Sprint(v)
	}
	return nil
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
