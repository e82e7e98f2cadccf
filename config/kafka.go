package config

import (
	"strings"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// Kafka is how tagpipe's Kafka clients (collector, streaming, audience export, console,
// the topics/produce/consume/groups/transactions commands) secure their connections:
// Kafka's security.protocol, sasl.* and ssl.* settings, snake_cased (kafkasec.Config's
// fields: security_protocol, sasl_mechanism, sasl_username, sasl_password — masked by
// config print, best given as TAGPIPE_KAFKA_SASL_PASSWORD —, ssl_ca_file, ssl_cert_file,
// ssl_key_file, ssl_server_name, ssl_insecure_skip_verify). The kafka sources and sinks
// of ingest agents may set their own (for another cluster). tagpipe's own parts reach
// the built-in broker on broker.listen, always a PLAINTEXT listener (its TLS and SASL
// listeners are for outside clients).
type Kafka kafkasec.Config

// Security is the section as kafkasec takes it.
func (k Kafka) Security() kafkasec.Config { return kafkasec.Config(k) }

func (k *Kafka) validate(ch *check) {
	for _, p := range k.Security().Check() {
		ch.fail(p.Key, "%s", p.Reason)
	}
}

// checkBuiltinBroker refuses security settings that clients would use on the built-in
// broker, which tagpipe's own parts reach on broker.listen, a PLAINTEXT listener: with
// broker.enabled, the collector and the streaming engine talk to it unless their
// bootstrap_servers name another cluster.
func (c *Config) checkBuiltinBroker(ch *check) {
	p := c.Kafka.Security().Protocol()
	if !c.Broker.Enabled || p == kafkasec.Plaintext {
		return
	}
	var users []string
	if c.Ingest.Enabled && len(c.Ingest.BootstrapServers) == 0 {
		users = append(users, "the collector (ingest.bootstrap_servers is empty)")
	}
	if c.Streaming.Enabled && len(c.Streaming.BootstrapServers) == 0 {
		users = append(users, "the streaming engine (streaming.bootstrap_servers is empty)")
	}
	if len(users) == 0 {
		return
	}
	ch.fail("security_protocol", "is %s, but the built-in broker (broker.enabled: true) speaks PLAINTEXT only to tagpipe's own parts (on broker.listen; "+
		"its TLS and SASL listeners are for outside clients) and %s would talk to it: "+
		"set broker.enabled: false and bootstrap_servers to the secured cluster, or security_protocol: PLAINTEXT", p, strings.Join(users, " and "))
}
