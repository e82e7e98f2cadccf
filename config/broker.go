package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// Broker configures the built-in Kafka-protocol broker. Per-topic settings
// (retention.ms, …) default to these values and can be changed per topic with
// `tagpipe topics alter`.
type Broker struct {
	// Enabled runs the built-in broker in `tagpipe up`; false means use bootstrap_servers.
	Enabled bool `yaml:"enabled"`
	// Listen is the Kafka protocol listener, PLAINTEXT, when Listeners is empty; with
	// Listeners, the address of the PLAINTEXT listener tagpipe's own components (ingest,
	// streaming, topics) connect to.
	Listen string `yaml:"listen"`
	// AdvertisedHost/Port are what Metadata tells clients to connect to; empty/0 = listen's.
	// Without Listeners only (each listener has its own).
	AdvertisedHost string `yaml:"advertised_host"`
	AdvertisedPort int    `yaml:"advertised_port"`
	// Listeners are Kafka's listeners / advertised.listeners with their security
	// protocols; empty = one PLAINTEXT listener on Listen.
	Listeners []BrokerListener `yaml:"listeners"`
	// SSLCertFile / SSLKeyFile are the PEM certificate (chain) and key of the SSL and
	// SASL_SSL listeners; SSLCAFile the PEM CAs client certificates must chain to, and
	// SSLClientAuth Kafka's ssl.client.auth: none, requested or required.
	SSLCertFile   string `yaml:"ssl_cert_file"`
	SSLKeyFile    string `yaml:"ssl_key_file"`
	SSLCAFile     string `yaml:"ssl_ca_file"`
	SSLClientAuth string `yaml:"ssl_client_auth"`
	// SASLEnabledMechanisms are served on the SASL_PLAINTEXT and SASL_SSL listeners:
	// PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (Kafka's sasl.enabled.mechanisms).
	SASLEnabledMechanisms []string `yaml:"sasl_enabled_mechanisms"`
	// SASLUsers maps user names to passwords (SCRAM credentials are derived at start).
	// They are static: AlterUserScramCredentials manages other users only (the broker
	// stores those in its data dir).
	// `config print` masks the passwords.
	SASLUsers Passwords `yaml:"sasl_users"`
	// Authorizer is none (every client may do everything) or acl (ACLs managed with
	// CreateAcls/DeleteAcls, kept in the data dir and enforced: Kafka's
	// authorizer.class.name=StandardAuthorizer).
	Authorizer string `yaml:"authorizer"`
	// SuperUsers are principals ("User:admin") allowed everything with authorizer acl
	// (Kafka's super.users).
	SuperUsers []string `yaml:"super_users"`
	// AllowEveryoneIfNoACLFound, with authorizer acl, allows an operation on a resource
	// no ACL names (Kafka's allow.everyone.if.no.acl.found).
	AllowEveryoneIfNoACLFound bool `yaml:"allow_everyone_if_no_acl_found"`
	// QuotaWindowNum and QuotaWindowSize: client quota rates are measured over this
	// many samples of this length (Kafka's quota.window.num, quota.window.size.seconds).
	QuotaWindowNum  int           `yaml:"quota_window_num"`
	QuotaWindowSize time.Duration `yaml:"quota_window_size"`
	// NodeID is this broker's id in Metadata.
	NodeID int32 `yaml:"node_id"`
	// AutoCreateTopics creates unknown topics on Metadata/Produce with DefaultPartitions.
	AutoCreateTopics  bool  `yaml:"auto_create_topics"`
	DefaultPartitions int32 `yaml:"default_partitions"`
	// RetentionMS / RetentionBytes: -1 = unlimited (Kafka's log.retention.ms/bytes).
	RetentionMS    int64 `yaml:"retention_ms"`
	RetentionBytes int64 `yaml:"retention_bytes"`
	SegmentBytes   int64 `yaml:"segment_bytes"`
	SegmentMS      int64 `yaml:"segment_ms"`
	// CompressionType is the topics' default compression.type: producer (batches as
	// produced), uncompressed, gzip, snappy, lz4 or zstd (re-encoded on append).
	CompressionType string `yaml:"compression_type"`
	// MaxMessageBytes is the largest record batch accepted (Kafka's message.max.bytes).
	MaxMessageBytes int32 `yaml:"max_message_bytes"`
	// Flush is "os" (ack after write to the page cache), "always" (fsync before ack) or a
	// duration like "1s" (fsync at that interval).
	Flush string `yaml:"flush"`
	// RetentionCheckInterval is how often retention runs (log.retention.check.interval.ms).
	RetentionCheckInterval time.Duration `yaml:"retention_check_interval"`
	// LogCleanerBackoff is how often the log cleaner looks for compacted topics'
	// partitions to clean (log.cleaner.backoff.ms).
	LogCleanerBackoff time.Duration `yaml:"log_cleaner_backoff"`
	// MaxRequestBytes refuses larger request frames before reading them
	// (socket.request.max.bytes).
	MaxRequestBytes int32 `yaml:"max_request_bytes"`
	// MaxConnections bounds the open connections of all listeners together (Kafka's
	// max.connections): at the limit, accepting waits until one closes. 0 = unlimited.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP bounds the open connections from one client ip
	// (max.connections.per.ip): one more is closed at once. 0 = unlimited.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
	// MaxConnectionsPerIPOverrides replace MaxConnectionsPerIP for their hosts, an IP
	// address or a host name resolved at start (max.connections.per.ip.overrides); 0
	// refuses every connection from the host.
	MaxConnectionsPerIPOverrides map[string]int `yaml:"max_connections_per_ip_overrides"`
	// MaxConnectionCreationRate bounds the new connections per second of the whole
	// broker, every listener together (Kafka's broker-level
	// max.connection.creation.rate), measured over the quota windows: over it,
	// accepting waits. 0 = unlimited. Per-ip rates are quotas (tagpipe configs
	// --entity-type ips).
	MaxConnectionCreationRate int `yaml:"max_connection_creation_rate"`
	// MaxIncrementalFetchSessionCacheSlots bounds the fetch sessions (KIP-227) the broker
	// keeps (max.incremental.fetch.session.cache.slots, 1000); 0 creates none, so
	// consumers send full fetch requests.
	MaxIncrementalFetchSessionCacheSlots int `yaml:"max_incremental_fetch_session_cache_slots"`
	// GroupInitialRebalanceDelay holds a new group's first rebalance open for members
	// starting together (group.initial.rebalance.delay.ms).
	GroupInitialRebalanceDelay time.Duration `yaml:"group_initial_rebalance_delay"`
	// GroupMinSessionTimeout / GroupMaxSessionTimeout bound consumers' session timeouts.
	GroupMinSessionTimeout time.Duration `yaml:"group_min_session_timeout"`
	GroupMaxSessionTimeout time.Duration `yaml:"group_max_session_timeout"`
	// GroupConsumerSessionTimeout fences a consumer-group member (KIP-848,
	// group.protocol=consumer) silent this long (group.consumer.session.timeout.ms);
	// GroupConsumerHeartbeatInterval is how often its members are told to heartbeat
	// (group.consumer.heartbeat.interval.ms).
	GroupConsumerSessionTimeout    time.Duration `yaml:"group_consumer_session_timeout"`
	GroupConsumerHeartbeatInterval time.Duration `yaml:"group_consumer_heartbeat_interval"`
	// OffsetsRetention drops the committed offsets of a group empty this long
	// (offsets.retention.minutes).
	OffsetsRetention time.Duration `yaml:"offsets_retention"`
	// OffsetsTopicNumPartitions is the partition count the internal __consumer_offsets
	// topic is created with (offsets.topic.num.partitions); an existing one keeps its own.
	OffsetsTopicNumPartitions int32 `yaml:"offsets_topic_num_partitions"`
	// TransactionMaxTimeout is the largest transaction timeout a transactional producer
	// may ask for (transaction.max.timeout.ms).
	TransactionMaxTimeout time.Duration `yaml:"transaction_max_timeout"`
	// TransactionAbortInterval is how often transactions past their timeout are aborted
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms).
	TransactionAbortInterval time.Duration `yaml:"transaction_abort_interval"`
	// TransactionalIDExpiration forgets a transactional id whose last transaction ended
	// this long ago (transactional.id.expiration.ms).
	TransactionalIDExpiration time.Duration `yaml:"transactional_id_expiration"`
}

// BrokerListener is one entry of broker.listeners.
type BrokerListener struct {
	// Name is the listener name (INTERNAL, EXTERNAL, …); empty = the security protocol.
	Name   string `yaml:"name"`
	Listen string `yaml:"listen"`
	// AdvertisedHost/Port are what clients connected to this listener are told to
	// connect to; empty/0 = listen's.
	AdvertisedHost string `yaml:"advertised_host"`
	AdvertisedPort int    `yaml:"advertised_port"`
	// SecurityProtocol is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; empty = the name
	// when it is one of these, else PLAINTEXT (as Kafka).
	SecurityProtocol string `yaml:"security_protocol"`
}

// Protocol is the listener's security protocol with Kafka's default applied.
func (l BrokerListener) Protocol() string {
	if l.SecurityProtocol != "" {
		return l.SecurityProtocol
	}
	if n := strings.ToUpper(l.Name); slices.Contains(kafkasec.Protocols, n) {
		return n
	}
	return kafkasec.Plaintext
}

// Passwords maps user names to passwords. It prints masked, so `config print` output
// can be shared; set passwords in the file or whole in the environment
// (TAGPIPE_BROKER_SASL_USERS='{alice: …}').
type Passwords map[string]string

// MarshalYAML masks every password.
func (p Passwords) MarshalYAML() (any, error) {
	out := make(map[string]string, len(p))
	for u := range p {
		out[u] = masked
	}
	return out, nil
}

func (b *Broker) validate(ch *check) {
	ch.addr("listen", b.Listen)
	b.validateSecurity(ch)
	ch.positive("default_partitions", int64(b.DefaultPartitions))
	ch.positive("segment_bytes", b.SegmentBytes)
	ch.positive("segment_ms", b.SegmentMS)
	ch.positive("max_message_bytes", int64(b.MaxMessageBytes))
	ch.positive("retention_check_interval", int64(b.RetentionCheckInterval))
	ch.positive("log_cleaner_backoff", int64(b.LogCleanerBackoff))
	ch.positive("max_request_bytes", int64(b.MaxRequestBytes))
	for key, v := range map[string]int{"max_connections": b.MaxConnections, "max_connections_per_ip": b.MaxConnectionsPerIP,
		"max_connection_creation_rate": b.MaxConnectionCreationRate} {
		if v < 0 {
			ch.fail(key, "must be 0 (unlimited) or more, got %d", v)
		}
	}
	if b.MaxIncrementalFetchSessionCacheSlots < 0 {
		ch.fail("max_incremental_fetch_session_cache_slots", "must be 0 (no fetch sessions) or more, got %d", b.MaxIncrementalFetchSessionCacheSlots)
	}
	for host, n := range b.MaxConnectionsPerIPOverrides {
		if strings.TrimSpace(host) == "" {
			ch.fail("max_connections_per_ip_overrides", "a host is empty")
		}
		if n < 0 {
			ch.fail("max_connections_per_ip_overrides", "%s: must be 0 (no connection) or more, got %d", host, n)
		}
	}
	ch.positive("group_min_session_timeout", int64(b.GroupMinSessionTimeout))
	ch.positive("offsets_retention", int64(b.OffsetsRetention))
	ch.positive("group_consumer_session_timeout", int64(b.GroupConsumerSessionTimeout))
	ch.positive("group_consumer_heartbeat_interval", int64(b.GroupConsumerHeartbeatInterval))
	if b.GroupConsumerHeartbeatInterval >= b.GroupConsumerSessionTimeout && b.GroupConsumerSessionTimeout > 0 {
		// Kafka refuses it too: a member would be fenced between two heartbeats.
		ch.fail("group_consumer_heartbeat_interval", "must be less than group_consumer_session_timeout (%v), got %v", b.GroupConsumerSessionTimeout, b.GroupConsumerHeartbeatInterval)
	}
	ch.positive("offsets_topic_num_partitions", int64(b.OffsetsTopicNumPartitions))
	ch.positive("transaction_max_timeout", int64(b.TransactionMaxTimeout))
	ch.positive("transaction_abort_interval", int64(b.TransactionAbortInterval))
	ch.positive("transactional_id_expiration", int64(b.TransactionalIDExpiration))
	ch.positive("quota_window_num", int64(b.QuotaWindowNum))
	ch.positive("quota_window_size", int64(b.QuotaWindowSize))
	if b.GroupMaxSessionTimeout < b.GroupMinSessionTimeout {
		ch.fail("group_max_session_timeout", "must be >= group_min_session_timeout (%v), got %v", b.GroupMinSessionTimeout, b.GroupMaxSessionTimeout)
	}
	if b.GroupInitialRebalanceDelay < 0 {
		ch.fail("group_initial_rebalance_delay", "must be >= 0, got %v", b.GroupInitialRebalanceDelay)
	}
	if b.AdvertisedPort < 0 || b.AdvertisedPort > 65535 {
		ch.fail("advertised_port", "must be 0 (the listen port) or a port number, got %d", b.AdvertisedPort)
	}
	// broker/storage's compression.type names (config imports no room).
	ch.oneOf("compression_type", b.CompressionType, "producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")
	if b.RetentionMS < -1 || b.RetentionMS == 0 {
		ch.fail("retention_ms", "must be > 0 or -1 (unlimited), got %d", b.RetentionMS)
	}
	if b.RetentionBytes < -1 || b.RetentionBytes == 0 {
		ch.fail("retention_bytes", "must be > 0 or -1 (unlimited), got %d", b.RetentionBytes)
	}
	if b.Flush != "os" && b.Flush != "always" {
		if d, err := time.ParseDuration(b.Flush); err != nil || d <= 0 {
			ch.fail("flush", `must be "os", "always" or a duration like "1s", got %q`, b.Flush)
		}
	}
}

// validateSecurity checks listeners, TLS and SASL: names unique, addresses parse, a TLS
// listener has a readable certificate and key, a SASL listener mechanisms and users.
func (b *Broker) validateSecurity(ch *check) {
	var anyTLS, anySASL, internal bool
	names := map[string]int{}
	for i, l := range b.Listeners {
		key := fmt.Sprintf("listeners[%d]", i)
		p := l.Protocol()
		name := l.Name
		if name == "" {
			name = p
		}
		if j, dup := names[strings.ToUpper(name)]; dup {
			ch.fail(key+".name", "listener name %q is already used by listeners[%d]", name, j)
		}
		names[strings.ToUpper(name)] = i
		if !listenerName(name) {
			ch.fail(key+".name", "want letters, digits and _, got %q", name)
		}
		if l.Listen == "" {
			ch.fail(key+".listen", "must be set (host:port)")
		}
		ch.addr(key+".listen", l.Listen)
		if l.AdvertisedPort < 0 || l.AdvertisedPort > 65535 {
			ch.fail(key+".advertised_port", "must be 0 (the listen port) or a port number, got %d", l.AdvertisedPort)
		}
		if !slices.Contains(kafkasec.Protocols, p) {
			ch.fail(key+".security_protocol", "must be one of %s, got %q", strings.Join(kafkasec.Protocols, ", "), l.SecurityProtocol)
		}
		anyTLS = anyTLS || p == "SSL" || p == "SASL_SSL"
		anySASL = anySASL || p == "SASL_PLAINTEXT" || p == "SASL_SSL"
		internal = internal || (p == "PLAINTEXT" && l.Listen == b.Listen)
	}
	if len(b.Listeners) > 0 {
		if b.AdvertisedHost != "" {
			ch.fail("advertised_host", "is for broker.listen alone: with broker.listeners set advertised_host per listener")
		}
		if b.AdvertisedPort != 0 {
			ch.fail("advertised_port", "is for broker.listen alone: with broker.listeners set advertised_port per listener")
		}
		if !internal {
			ch.fail("listen", "tagpipe's own components (ingest, streaming, topics) connect to broker.listen over PLAINTEXT: "+
				"with broker.listeners it must be the listen address of a PLAINTEXT listener, got %q", b.Listen)
		}
	}
	ch.oneOf("ssl_client_auth", b.SSLClientAuth, "none", "requested", "required")
	switch {
	case (b.SSLCertFile == "") != (b.SSLKeyFile == ""):
		ch.fail("ssl_cert_file", "ssl_cert_file and ssl_key_file go together: set both or neither")
	case b.SSLCertFile != "":
		if _, err := tls.LoadX509KeyPair(b.SSLCertFile, b.SSLKeyFile); err != nil {
			ch.fail("ssl_cert_file", "cannot load the certificate with ssl_key_file %q: %v", b.SSLKeyFile, err)
		}
	case anyTLS:
		ch.fail("ssl_cert_file", "an SSL or SASL_SSL listener needs ssl_cert_file and ssl_key_file (PEM)")
	}
	if b.SSLCAFile != "" {
		if pem, err := os.ReadFile(b.SSLCAFile); err != nil {
			ch.fail("ssl_ca_file", "cannot read: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			ch.fail("ssl_ca_file", "%q holds no PEM certificate", b.SSLCAFile)
		}
	} else if b.SSLClientAuth == "requested" || b.SSLClientAuth == "required" {
		ch.fail("ssl_ca_file", "ssl_client_auth %s needs ssl_ca_file, the CA client certificates are checked against", b.SSLClientAuth)
	}
	seen := map[string]bool{}
	for _, m := range b.SASLEnabledMechanisms {
		ch.oneOf("sasl_enabled_mechanisms", m, kafkasec.Mechanisms...)
		if seen[m] {
			ch.fail("sasl_enabled_mechanisms", "%s listed twice", m)
		}
		seen[m] = true
	}
	for u, p := range b.SASLUsers {
		if u == "" {
			ch.fail("sasl_users", "a user name is empty")
		}
		if p == "" {
			ch.fail("sasl_users", "user %q has an empty password", u)
		}
	}
	if anySASL {
		if len(b.SASLEnabledMechanisms) == 0 {
			ch.fail("sasl_enabled_mechanisms", "a SASL_PLAINTEXT or SASL_SSL listener needs at least one mechanism")
		}
		// With a SCRAM mechanism, users may all be stored ones (AlterUserScramCredentials,
		// kept in the data dir), as in Kafka; PLAIN users come from here only.
		scram := slices.ContainsFunc(b.SASLEnabledMechanisms, func(m string) bool { return strings.HasPrefix(m, "SCRAM-") })
		if len(b.SASLUsers) == 0 && !scram {
			ch.fail("sasl_users", "a SASL_PLAINTEXT or SASL_SSL listener with PLAIN only needs at least one user")
		}
	}
	ch.oneOf("authorizer", b.Authorizer, "none", "acl")
	for _, u := range b.SuperUsers {
		if i := strings.IndexByte(u, ':'); i <= 0 || i == len(u)-1 {
			ch.fail("super_users", "%q is not a principal like User:admin", u)
		}
	}
}

func listenerName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}
