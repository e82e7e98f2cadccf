package agent

import (
	"slices"
	"strings"
	"time"

	"github.com/tagpipe/tagpipe/ingest"
	"github.com/tagpipe/tagpipe/ingest/kafkasrc"
	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// kafkaSinkEnd is what the loop guard knows of a kafka sink: where it writes.
type kafkaSinkEnd struct {
	name, channel string
	brokers       []string
	topics        []string // topic and dead_letter_topic
}

// kafkaSourceOptions reads a kafka source's keys (Flume's KafkaSource, snake_case).
func (a *Agent) kafkaSourceOptions(p *Props) kafkasrc.Options {
	o := kafkasrc.DefaultOptions()
	o.Brokers = p.List("brokers")
	if len(o.Brokers) == 0 {
		o.Brokers = a.env.Brokers
	}
	if len(o.Brokers) == 0 {
		p.fail("brokers", "is required (there is no collector-wide broker to default to)")
	}
	o.Security = a.kafkaSecurity(p)
	o.Topics = p.List("topics")
	o.TopicsRegex = p.Regexp("topics_regex")
	switch {
	case len(o.Topics) > 0 && p.Has("topics_regex"):
		p.fail("topics_regex", "set topics or topics_regex, not both")
	case len(o.Topics) == 0 && !p.Has("topics_regex"):
		p.fail("topics", "is required (or topics_regex)")
	}
	o.GroupID = p.Str("group_id", o.GroupID)
	if o.GroupID == "" {
		p.fail("group_id", "is empty")
	}
	o.BatchSize = int(p.Int("batch_size", int64(o.BatchSize)))
	o.BatchDuration = p.Dur("batch_duration", o.BatchDuration, time.Millisecond)
	o.TopicHeader = p.Str("topic_header", o.TopicHeader)
	if !p.Bool("set_topic_header", true) {
		o.TopicHeader = ""
	} else if o.TopicHeader == "" {
		p.fail("topic_header", "is empty (set set_topic_header: false for no topic header)")
	}
	o.StartLatest = p.OneOf("auto_offset_reset", "latest", "latest", "earliest") == "latest"
	o.MaxLineBytes = int(p.Int("max_line_bytes", int64(o.MaxLineBytes)))
	o.MaxFetchBytes = int(p.Int("max_fetch_bytes", int64(o.MaxFetchBytes)))
	o.MaxWait = p.Dur("max_wait", o.MaxWait, time.Millisecond)
	o.SessionTimeout = p.Dur("session_timeout", o.SessionTimeout, time.Millisecond)
	o.HeartbeatInterval = p.Dur("heartbeat_interval", o.HeartbeatInterval, time.Millisecond)
	o.TopicRefresh = p.Dur("topic_refresh", o.TopicRefresh, time.Millisecond)
	a.checkKafkaLoop(p, o)
	return o
}

// kafkaSecurity reads a kafka source's or sink's security keys (security_protocol,
// sasl_*, ssl_*: kafkasec.Keys). When one is set they replace the collector's settings
// (Env.Security) whole, as for another cluster; else the collector's apply.
func (a *Agent) kafkaSecurity(p *Props) *kafkasec.Security {
	c, own := a.env.Security, false
	for _, k := range kafkasec.Keys {
		own = own || p.Has(k)
	}
	if own {
		c = kafkasec.Config{}
		for _, k := range kafkasec.Keys {
			if v, ok := p.raw(k); ok {
				if err := c.Set(k, v); err != nil {
					p.fail(k, "%v", err)
				}
			}
		}
		for _, pr := range c.Check() {
			p.fail(pr.Key, "%s", pr.Reason)
		}
	}
	s, err := kafkasec.New(c)
	if err != nil && !own {
		p.fail("security_protocol", "the collector's kafka settings: %v", err)
	}
	return s
}

// checkKafkaLoop refuses a kafka source that would read back what a kafka sink of the
// same agent writes on the same brokers: the sink's topic (or dead-letter topic) is one
// the source reads, or the source puts each record's topic in the "topic" header, which
// the sink obeys, into a channel the sink takes from (FLUME-3046's loop).
func (a *Agent) checkKafkaLoop(p *Props, o kafkasrc.Options) {
	channels := p.List("channels")
	for _, k := range a.kafkaSinks {
		if !sameBrokers(o.Brokers, k.brokers) {
			continue
		}
		for _, t := range k.topics {
			if t != "" && o.Reads(t) {
				key := "topics"
				if o.TopicsRegex != nil {
					key = "topics_regex"
				}
				p.fail(key, "reads topic %q, which sink %s of this agent writes to on the same brokers: a loop", t, k.name)
			}
		}
		if o.TopicHeader == ingest.HeaderTopic && slices.Contains(channels, k.channel) {
			p.fail("set_topic_header", "the \"topic\" header makes sink %s (channel %s) write each record back to the topic it was read from, on the same brokers: a loop; set set_topic_header: false or another topic_header", k.name, k.channel)
		}
	}
}

// sameBrokers reports whether two bootstrap lists share an address (as written: a
// host name and its IP address are not matched).
func sameBrokers(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if strings.EqualFold(strings.TrimSpace(x), strings.TrimSpace(y)) {
				return true
			}
		}
	}
	return false
}
