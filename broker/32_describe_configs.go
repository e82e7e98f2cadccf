package broker

// DescribeConfigs v0–4.
//
// Behaviour: for a topic (an illegal name: INVALID_TOPIC_EXCEPTION, an unknown one:
// UNKNOWN_TOPIC_OR_PARTITION), every topic config this broker knows (configs.go) with its
// effective value and source: DYNAMIC_TOPIC_CONFIG when set on the topic,
// STATIC_BROKER_CONFIG when the broker's config file changed Kafka's default, else
// DEFAULT_CONFIG; with IncludeSynonyms the whole chain (topic → broker key → default).
// For the broker (resource name: this node's id) the broker-level settings, all
// read-only. The resource name "" asks for the cluster-wide dynamic broker defaults (Kafka's
// ConfigHelper answers currentDynamicDefaultConfigs): there are none here, as broker
// settings are static, so the answer is an empty list. A broker logger (resource name:
// this node's id) lists the process's loggers and their levels (loggers.go). ConfigNames
// filters; unknown names are left out, and an empty list means all, as Kafka does.
//
// Version notes: v1 Source, synonyms; v3 ConfigType, Documentation; v4 flexible.

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(32, 0, 4, handleDescribeConfigs) }

func handleDescribeConfigs(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		if code := c.configDenied(kmsg.ACLOperationDescribeConfigs, rr.ResourceType, rr.ResourceName); code != 0 {
			sr.ErrorCode = code
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		want := func(name string) bool {
			if len(rr.ConfigNames) == 0 { // null or empty: all, as Kafka's ConfigHelper
				return true
			}
			for _, n := range rr.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if err := validateTopicName(rr.ResourceName); err != nil { // Kafka's ConfigHelper: Topic.validate first
				msg := err.Error()
				sr.ErrorCode, sr.ErrorMessage = kerr.InvalidTopicException.Code, &msg
				break
			}
			t := b.topic(rr.ResourceName)
			if t == nil {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				msg := "topic " + strconv.Quote(rr.ResourceName) + " does not exist"
				sr.ErrorMessage = &msg
				break
			}
			overrides := b.snapshot(t).configs
			for i := range topicConfigs {
				if d := &topicConfigs[i]; want(d.name) {
					sr.Configs = append(sr.Configs, b.describeTopicConfig(req, d, overrides))
				}
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName == "" {
				break // no dynamic cluster-wide defaults
			}
			if rr.ResourceName != strconv.Itoa(int(b.opts.NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				msg := "this is broker " + strconv.Itoa(int(b.opts.NodeID))
				sr.ErrorMessage = &msg
				break
			}
			for _, bc := range b.brokerConfigs() {
				if want(bc.name) {
					sr.Configs = append(sr.Configs, describeBrokerConfig(req, bc))
				}
			}
		case kmsg.ConfigResourceTypeBrokerLogger:
			if te := b.checkLoggerBroker(rr.ResourceName); te != nil {
				te.set(&sr.ErrorCode, &sr.ErrorMessage)
				break
			}
			sr.Configs = b.describeLoggers(want)
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "only topic (2), broker (4) and broker logger (8) resources are described"
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

func (b *Broker) describeTopicConfig(req *kmsg.DescribeConfigsRequest, d *configDef, overrides map[string]string) kmsg.DescribeConfigsResponseResourceConfig {
	rc := kmsg.NewDescribeConfigsResponseResourceConfig()
	v, src := b.effective(d, overrides)
	rc.Name, rc.Value, rc.Source = d.name, &v, src
	rc.IsDefault = src == kmsg.ConfigSourceDefaultConfig
	rc.ConfigType = d.typ
	if req.IncludeDocumentation {
		doc := d.doc
		rc.Documentation = &doc
	}
	if req.IncludeSynonyms {
		add := func(name, value string, s kmsg.ConfigSource) {
			syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			syn.Name, syn.Value, syn.Source = name, &value, s
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, syn)
		}
		if ov, ok := overrides[d.name]; ok {
			add(d.name, ov, kmsg.ConfigSourceDynamicTopicConfig)
		}
		if bv := d.brokerValue(&b.opts); bv != d.kafkaDefault {
			add(d.brokerName, bv, kmsg.ConfigSourceStaticBrokerConfig)
		}
		add(d.brokerName, d.kafkaDefault, kmsg.ConfigSourceDefaultConfig)
	}
	return rc
}

type brokerConfig struct {
	name, value, kafkaDefault, doc string
	typ                            kmsg.ConfigType
}

// brokerConfigs are the broker-level settings DescribeConfigs shows for this node.
func (b *Broker) brokerConfigs() []brokerConfig {
	o := &b.opts
	advertised, protocols := b.listenerList(true)
	listeners, _ := b.listenerList(false)
	out := []brokerConfig{
		{"advertised.listeners", advertised, "", "Where clients are told to connect, per listener.", kmsg.ConfigTypeList},
		{"auto.create.topics.enable", strconv.FormatBool(o.AutoCreateTopics), "true", "Create unknown topics on Metadata/Produce.", kmsg.ConfigTypeBoolean},
		{"broker.id", strconv.Itoa(int(o.NodeID)), "-1", "This node's id.", kmsg.ConfigTypeInt},
		{"group.consumer.heartbeat.interval.ms", i64(b.groupOpts().ConsumerHeartbeatInterval.Milliseconds()), "5000", "How often consumer-group (KIP-848) members are told to heartbeat.", kmsg.ConfigTypeInt},
		{"group.consumer.session.timeout.ms", i64(b.groupOpts().ConsumerSessionTimeout.Milliseconds()), "45000", "A consumer-group (KIP-848) member silent this long is fenced.", kmsg.ConfigTypeInt},
		{"listener.security.protocol.map", protocols, "", "Each listener's security protocol.", kmsg.ConfigTypeString},
		{"listeners", listeners, "", "The Kafka listeners.", kmsg.ConfigTypeList},
		{"log.dirs", o.Dir, "", "Where partition logs live.", kmsg.ConfigTypeString},
		{"log.retention.check.interval.ms", i64(o.RetentionCheckInterval.Milliseconds()), "300000", "How often retention runs.", kmsg.ConfigTypeLong},
		{"max.connection.creation.rate", kafkaLimit(o.MaxConnectionCreationRate), "2147483647", "New connections per second accepted by the whole broker; over it, accepting waits.", kmsg.ConfigTypeInt},
		{"max.connections", kafkaLimit(o.MaxConnections), "2147483647", "Open connections of all listeners together; at the limit, accepting waits until one closes.", kmsg.ConfigTypeInt},
		{"max.connections.per.ip", kafkaLimit(o.MaxConnectionsPerIP), "2147483647", "Open connections from one ip; one more is closed at once.", kmsg.ConfigTypeInt},
		{"max.connections.per.ip.overrides", overridesString(o.MaxConnectionsPerIPOverrides), "", "Per-host (ip or name) limits replacing max.connections.per.ip: host:n,host:n.", kmsg.ConfigTypeString},
		{"max.incremental.fetch.session.cache.slots", strconv.Itoa(o.MaxIncrementalFetchSessionCacheSlots), "1000", "Fetch sessions (KIP-227) the broker keeps; 0 = none, every fetch is full.", kmsg.ConfigTypeInt},
		{"num.partitions", i64(int64(o.DefaultPartitions)), "1", "Partitions of an auto-created topic.", kmsg.ConfigTypeInt},
		{"socket.request.max.bytes", i64(int64(o.MaxRequestBytes)), "104857600", "Larger request frames are refused.", kmsg.ConfigTypeInt},
	}
	for i := range topicConfigs {
		d := &topicConfigs[i]
		out = append(out, brokerConfig{d.brokerName, d.brokerValue(o), d.kafkaDefault, d.doc, d.typ})
	}
	return out
}

func describeBrokerConfig(req *kmsg.DescribeConfigsRequest, bc brokerConfig) kmsg.DescribeConfigsResponseResourceConfig {
	rc := kmsg.NewDescribeConfigsResponseResourceConfig()
	v := bc.value
	rc.Name, rc.Value, rc.ReadOnly, rc.ConfigType = bc.name, &v, true, bc.typ
	rc.Source = kmsg.ConfigSourceStaticBrokerConfig
	if bc.value == bc.kafkaDefault {
		rc.Source, rc.IsDefault = kmsg.ConfigSourceDefaultConfig, true
	}
	if req.IncludeDocumentation {
		doc := bc.doc
		rc.Documentation = &doc
	}
	if req.IncludeSynonyms {
		syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		syn.Name, syn.Value, syn.Source = bc.name, &v, rc.Source
		rc.ConfigSynonyms = append(rc.ConfigSynonyms, syn)
	}
	return rc
}
