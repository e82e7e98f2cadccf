package config

import (
	"fmt"
	"sort"
)

// Ingest configures the collector (sources → channels → sinks). With no agents, one
// agent named "default" runs: spooldir at spool_dir → file channel below
// data_dir/ingest/ → kafka sink to topic, keyed by user id where one can be found.
type Ingest struct {
	Enabled bool `yaml:"enabled"`
	// BootstrapServers is the Kafka cluster kafka sinks write to unless they name their
	// own brokers; empty means the built-in broker (broker.listen).
	BootstrapServers []string `yaml:"bootstrap_servers"`
	// Topic is the default topic of kafka sinks.
	Topic string `yaml:"topic"`
	// DeadLetterTopic receives the default agent's bad input (over-long lines, invalid
	// UTF-8, binary data); empty keeps it in Topic with an "error" header.
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// SpoolDir is the default agent's drop directory; empty = data_dir/spool/events.
	SpoolDir string `yaml:"spool_dir"`
	// FlumeConf is a Flume agent .properties file to run instead of agents (with
	// FlumeAgent naming the agent, like flume-ng -f … -n …).
	FlumeConf  string `yaml:"flume_conf"`
	FlumeAgent string `yaml:"flume_agent"`
	// Agents by name. Each component is a mapping with a type and that type's keys, see
	// README "Collector"; keys are checked when the agent is built.
	Agents map[string]IngestAgent `yaml:"agents"`
}

// IngestAgent is one agent: components by name.
type IngestAgent struct {
	Sources    map[string]map[string]any `yaml:"sources"`
	Channels   map[string]map[string]any `yaml:"channels"`
	Sinks      map[string]map[string]any `yaml:"sinks"`
	SinkGroups map[string]map[string]any `yaml:"sinkgroups"`
}

func (i *Ingest) validate(ch *check) {
	if i.Topic == "" {
		ch.fail("topic", "must not be empty")
	}
	if i.FlumeConf != "" && i.FlumeAgent == "" {
		ch.fail("flume_agent", "must name the agent of flume_conf")
	}
	names := make([]string, 0, len(i.Agents))
	for n := range i.Agents {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := i.Agents[n]
		if len(a.Sources) == 0 {
			ch.fail(fmt.Sprintf("agents.%s.sources", n), "an agent needs at least one source")
		}
		for kind, comps := range map[string]map[string]map[string]any{"sources": a.Sources, "channels": a.Channels, "sinks": a.Sinks} {
			for cn, c := range comps {
				if t, ok := c["type"].(string); !ok || t == "" {
					ch.fail(fmt.Sprintf("agents.%s.%s.%s.type", n, kind, cn), "is required")
				}
			}
		}
	}
}
