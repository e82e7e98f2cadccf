package main

import (
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/tagpipe/tagpipe/broker"
	"github.com/tagpipe/tagpipe/internal/logging"
)

// TestConfigsCommand: tagpipe configs as kafka-configs.sh against the built-in broker:
// topic configs set (a bracketed list value), described (dynamic ones, or --all) and
// deleted; broker configs described, and their alteration refused with the broker's
// reason; user and user+client quotas; ip quotas; a SCRAM credential set from --add-config that
// then authenticates, described, and deleted.
func TestConfigsCommand(t *testing.T) {
	b := startTestBrokerWith(t, func(o *broker.Options) {
		o.Listeners = []broker.Listener{{Name: "INTERNAL", Listen: "127.0.0.1:0"}, {Name: "SASL_PLAINTEXT", Listen: "127.0.0.1:0"}}
		o.SASL = broker.SASLOptions{Mechanisms: []string{"SCRAM-SHA-512"}, Users: map[string]string{"admin": "admin-secret"}}
	})
	addr, dir := b.ListenerAddr("INTERNAL"), t.TempDir()
	c := configsCLI{t, addr, dir}
	must, expect, fails := c.must, c.expect, c.fails
	runTagpipe(t, "--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", "t", "--partitions", "1")

	topic := []string{"--entity-type", "topics", "--entity-name", "t"}
	expect("Completed updating config for topic t.\n", append([]string{"--alter", "--add-config", "retention.ms=1000,cleanup.policy=[compact,delete]"}, topic...)...)
	expect("Dynamic configs for topic t are:\n"+
		"  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete, DEFAULT_CONFIG:log.cleanup.policy=delete}\n"+
		"  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000, DEFAULT_CONFIG:log.retention.ms=604800000}\n",
		append([]string{"--describe"}, topic...)...)
	out := must(append([]string{"--describe", "--all"}, topic...)...)
	if !strings.HasPrefix(out, "All configs for topic t are:\n") || !strings.Contains(out, "\n  segment.bytes=") || !strings.Contains(out, "\n  retention.ms=1000 ") {
		t.Errorf("describe --all:\n%s", out)
	}
	expect("Completed updating config for topic t.\n", append([]string{"--alter", "--delete-config", "retention.ms"}, topic...)...)
	if out := must(append([]string{"--describe"}, topic...)...); strings.Contains(out, "retention.ms") {
		t.Errorf("retention.ms still set after --delete-config:\n%s", out)
	}
	// As kafka-configs.sh: a key that is not set on the topic (gone now, a default, or
	// unknown) is refused and nothing is changed, not even the keys that are set.
	fails("Invalid config(s): retention.ms,no.such", append([]string{"--alter", "--delete-config", "cleanup.policy,retention.ms,no.such"}, topic...)...)
	fails("Invalid config(s): segment.bytes", append([]string{"--alter", "--add-config", "retention.ms=5", "--delete-config", "segment.bytes"}, topic...)...)
	if out := must(append([]string{"--describe"}, topic...)...); !strings.Contains(out, "cleanup.policy=compact,delete ") || strings.Contains(out, "retention.ms") {
		t.Errorf("a refused --delete-config changed the topic:\n%s", out)
	}
	fails(`topic "nosuch" does not exist`, "--alter", "--entity-type", "topics", "--entity-name", "nosuch", "--delete-config", "retention.ms")
	fails("Invalid config(s): log.retention.ms", "--alter", "--entity-type", "brokers", "--entity-default", "--delete-config", "log.retention.ms")
	// Every topic, the internal __consumer_offsets (Kafka's overrides) first.
	if out := must("--describe", "--entity-type", "topics"); !strings.HasPrefix(out, "Dynamic configs for topic __consumer_offsets are:\n  cleanup.policy=compact ") ||
		!strings.Contains(out, "Dynamic configs for topic t are:\n  cleanup.policy=") {
		t.Errorf("describe every topic:\n%s", out)
	}
	fails(`topic "nosuch" does not exist`, "--describe", "--entity-type", "topics", "--entity-name", "nosuch")

	expect("Dynamic configs for broker 0 are:\nDefault configs for brokers in the cluster are:\n", "--describe", "--entity-type", "brokers")
	out = must("--describe", "--entity-type", "brokers", "--entity-name", "0", "--all")
	if !regexp.MustCompile(`^All configs for broker 0 are:\n(  \S+=.* sensitive=(true|false) synonyms=\{.*\}\n)+$`).MatchString(out) {
		t.Errorf("describe broker 0 --all:\n%s", out)
	}
	fails("broker settings come from tagpipe.yaml", "--alter", "--entity-type", "brokers", "--entity-default", "--add-config", "log.retention.ms=1000")

	expect("Completed updating config for user alice.\n", "--alter", "--entity-type", "users", "--entity-name", "alice", "--add-config", "producer_byte_rate=1048576")
	// clients first: the names pair with the types in order, as kafka-configs.sh's.
	expect("Completed updating config for user alice.\n", "--alter", "--entity-type", "clients", "--entity-default", "--entity-type", "users", "--entity-name", "alice", "--add-config", "consumer_byte_rate=2048")
	expect("Quota configs for user-principal 'alice' are producer_byte_rate=1048576.0\n", "--describe", "--entity-type", "users", "--entity-name", "alice")
	expect("Quota configs for user-principal 'alice', the default client-id are consumer_byte_rate=2048.0\n", "--describe", "--entity-type", "users", "--entity-type", "clients")
	// Quotas as Kafka's alterQuotaConfigs: only a quota set on that very entity can be
	// deleted (alice's consumer_byte_rate is set on alice with the default client).
	fails("Invalid config(s): consumer_byte_rate", "--alter", "--entity-type", "users", "--entity-name", "alice", "--delete-config", "consumer_byte_rate")
	fails("Invalid config(s): producer_byte_rate", "--alter", "--entity-type", "clients", "--entity-name", "c1", "--delete-config", "producer_byte_rate")
	expect("Completed updating config for user alice.\n", "--alter", "--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients", "--entity-default", "--delete-config", "consumer_byte_rate")
	if out := must("--describe", "--entity-type", "users", "--entity-type", "clients"); strings.Contains(out, "consumer_byte_rate") {
		t.Errorf("consumer_byte_rate still set after --delete-config:\n%s", out)
	}

	ping := func(pass string) error { return scramPing(t, b.ListenerAddr("SASL_PLAINTEXT"), "carol", pass) }
	carol := []string{"--entity-type", "users", "--entity-name", "carol"}
	expect("Completed updating config for user carol.\n", append([]string{"--alter", "--add-config", "SCRAM-SHA-512=[iterations=8192,password=carol-secret]"}, carol...)...)
	if err := ping("carol-secret"); err != nil {
		t.Fatalf("carol after --add-config SCRAM-SHA-512: %v", err)
	}
	expect("SCRAM credential configs for user-principal 'carol' are SCRAM-SHA-512=iterations=8192\n", append([]string{"--describe"}, carol...)...)
	out = must("--describe", "--entity-type", "users")
	for _, want := range []string{"Quota configs for user-principal 'alice' are producer_byte_rate=1048576.0\n",
		"SCRAM credential configs for user-principal 'admin' are SCRAM-SHA-512=iterations=4096\n",
		"SCRAM credential configs for user-principal 'carol' are SCRAM-SHA-512=iterations=8192\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe every user lacks %q:\n%s", want, out)
		}
	}
	expect("Completed updating config for user carol.\n", append([]string{"--alter", "--delete-config", "SCRAM-SHA-512"}, carol...)...)
	if err := ping("carol-secret"); err == nil {
		t.Fatal("carol authenticated after --delete-config SCRAM-SHA-512")
	}
	// A SCRAM credential that is not there: kafka-configs.sh does not check, the broker
	// refuses (RESOURCE_NOT_FOUND).
	fails("RESOURCE_NOT_FOUND", append([]string{"--alter", "--delete-config", "SCRAM-SHA-512"}, carol...)...)

	// ip quotas (KIP-612): a named ip and the default ip, as kafka-configs.sh prints them.
	expect("Completed updating config for ip 127.0.0.1.\n", "--alter", "--entity-type", "ips", "--entity-name", "127.0.0.1", "--add-config", "connection_creation_rate=5")
	expect("Completed updating default config for ips in the cluster.\n", "--alter", "--entity-type", "ips", "--entity-default", "--add-config", "connection_creation_rate=100")
	expect("Quota configs for ip '127.0.0.1' are connection_creation_rate=5.0\n", "--describe", "--entity-type", "ips", "--entity-name", "127.0.0.1")
	expect("Quota configs for ip '127.0.0.1' are connection_creation_rate=5.0\nQuota configs for the default ip are connection_creation_rate=100.0\n",
		"--describe", "--entity-type", "ips")
	fails("Invalid config(s): connection_creation_rate", "--alter", "--entity-type", "ips", "--entity-name", "10.9.9.9", "--delete-config", "connection_creation_rate")
	expect("Completed updating default config for ips in the cluster.\n", "--alter", "--entity-type", "ips", "--entity-default", "--delete-config", "connection_creation_rate")
	expect("Completed updating config for ip 127.0.0.1.\n", "--alter", "--entity-type", "ips", "--entity-name", "127.0.0.1", "--delete-config", "connection_creation_rate")
	expect("", "--describe", "--entity-type", "ips")

	for _, tc := range []struct {
		want string
		args []string
	}{
		{"exactly one of --describe or --alter", []string{"--describe", "--alter", "--entity-type", "topics"}},
		{"bad --entity-type", []string{"--describe", "--entity-type", "nosuch"}},
		{"--entity-type groups is not supported: group configs (KIP-848", []string{"--describe", "--entity-type", "groups"}},
		{"supported: topics, brokers, broker-loggers, users, clients or ips", []string{"--describe", "--entity-type", "groups"}},
		{"only users and clients", []string{"--describe", "--entity-type", "ips", "--entity-type", "users"}},
		{"is not a valid IP or resolvable host", []string{"--alter", "--entity-type", "ips", "--entity-name", "not-an-ip", "--add-config", "connection_creation_rate=5"}},
		{"connection_creation_rate cannot be a fractional value", []string{"--alter", "--entity-type", "ips", "--entity-default", "--add-config", "connection_creation_rate=2.5"}},
		{"Invalid configuration key producer_byte_rate", []string{"--alter", "--entity-type", "ips", "--entity-default", "--add-config", "producer_byte_rate=5"}},
		{"--entity-type client-metrics is not supported", []string{"--alter", "--entity-type", "client-metrics", "--entity-name", "m", "--add-config", "interval.ms=1000"}},
		{"only users and clients", []string{"--describe", "--entity-type", "topics", "--entity-type", "users"}},
		{"needs an --entity-name", []string{"--alter", "--entity-type", "topics", "--add-config", "a=b"}},
		{"not of clients", []string{"--alter", "--entity-type", "clients", "--entity-name", "c", "--add-config", "SCRAM-SHA-512=[password=x]"}},
		{"not allowed with SCRAM", []string{"--alter", "--entity-type", "users", "--entity-default", "--add-config", "SCRAM-SHA-512=[password=x]"}},
		{"both quotas and SCRAM", []string{"--alter", "--entity-type", "users", "--entity-name", "u", "--add-config", "SCRAM-SHA-512=[password=x],producer_byte_rate=1"}},
		{"invalid character", []string{"--alter", "--entity-type", "topics", "--entity-name", "t", "--add-config", "a b=1"}},
		{`every config must be "key=val"`, []string{"--alter", "--entity-type", "topics", "--entity-name", "t", "--add-config", "retention.ms"}},
		{"4096 to 16384", []string{"--alter", "--entity-type", "users", "--entity-name", "u", "--add-config", "SCRAM-SHA-512=[iterations=10,password=x]"}},
	} {
		fails(tc.want, tc.args...)
	}
}

// configsCLI runs tagpipe configs against the broker at addr.
type configsCLI struct {
	t         *testing.T
	addr, dir string
}

func (c configsCLI) run(args ...string) (string, error) {
	return runTagpipeErr(append([]string{"--data-dir", c.dir, "configs"}, append(args, "--bootstrap-server", c.addr)...)...)
}

func (c configsCLI) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("configs %v: %v\n%s", args, err, out)
	}
	return out
}

func (c configsCLI) expect(want string, args ...string) {
	c.t.Helper()
	if out := c.must(args...); out != want {
		c.t.Errorf("configs %v printed\n%q\nwant\n%q", args, out, want)
	}
}

func (c configsCLI) fails(want string, args ...string) {
	c.t.Helper()
	if out, err := c.run(args...); err == nil || !strings.Contains(err.Error(), want) {
		c.t.Errorf("configs %v: %v (printed %q); want an error with %q", args, err, out, want)
	}
}

// TestConfigsAddConfigFile: --add-config-file reads a Java properties file (# and !
// comments, ':' and '=' separators, a \ continuation, a comma in a value without
// brackets) for topics, users' quotas and SCRAM credentials, and clients; it and
// --add-config exclude each other, and a missing or empty file is named.
func TestConfigsAddConfigFile(t *testing.T) {
	b := startTestBrokerWith(t, func(o *broker.Options) {
		o.Listeners = []broker.Listener{{Name: "INTERNAL", Listen: "127.0.0.1:0"}, {Name: "SASL_PLAINTEXT", Listen: "127.0.0.1:0"}}
		o.SASL = broker.SASLOptions{Mechanisms: []string{"SCRAM-SHA-512"}, Users: map[string]string{"admin": "admin-secret"}}
	})
	c := configsCLI{t, b.ListenerAddr("INTERNAL"), t.TempDir()}
	runTagpipe(t, "--data-dir", c.dir, "topics", "create", "--bootstrap-server", c.addr, "--topic", "t", "--partitions", "1")
	topic := []string{"--entity-type", "topics", "--entity-name", "t"}
	file := writeTestFile(t, "t.properties", "# retention for t\n"+
		"! a comment too\n"+
		"retention.ms = 1000\n"+
		"cleanup.policy: compact,delete\n"+
		"segment.bytes=10\\\n"+
		"    48576\n")
	c.expect("Completed updating config for topic t.\n", append([]string{"--alter", "--add-config-file", file}, topic...)...)
	c.expect("Dynamic configs for topic t are:\n"+
		"  cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete, DEFAULT_CONFIG:log.cleanup.policy=delete}\n"+
		"  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000, DEFAULT_CONFIG:log.retention.ms=604800000}\n"+
		"  segment.bytes=1048576 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:segment.bytes=1048576, DEFAULT_CONFIG:log.segment.bytes=1073741824}\n",
		append([]string{"--describe"}, topic...)...)
	// With --delete-config in the same command, as kafka-configs.sh allows.
	c.expect("Completed updating config for topic t.\n", append([]string{"--alter", "--add-config-file", writeTestFile(t, "r.properties", "retention.ms=2000\n"), "--delete-config", "segment.bytes"}, topic...)...)
	if out := c.must(append([]string{"--describe"}, topic...)...); !strings.Contains(out, "  retention.ms=2000 ") || strings.Contains(out, "segment.bytes") {
		t.Errorf("after --add-config-file with --delete-config:\n%s", out)
	}

	quotas := writeTestFile(t, "q.properties", "producer_byte_rate=1048576\nconsumer_byte_rate 2048\n")
	c.expect("Completed updating config for user alice.\n", "--alter", "--entity-type", "users", "--entity-name", "alice", "--add-config-file", quotas)
	c.expect("Quota configs for user-principal 'alice' are consumer_byte_rate=2048.0, producer_byte_rate=1048576.0\n", "--describe", "--entity-type", "users", "--entity-name", "alice")
	c.expect("Completed updating default config for clients in the cluster.\n", "--alter", "--entity-type", "clients", "--entity-default", "--add-config-file", quotas)
	c.expect("Quota configs for the default client-id are consumer_byte_rate=2048.0, producer_byte_rate=1048576.0\n", "--describe", "--entity-type", "clients", "--entity-default")
	scram := writeTestFile(t, "s.properties", "SCRAM-SHA-512=iterations=8192,password=carol-secret\n")
	c.expect("Completed updating config for user carol.\n", "--alter", "--entity-type", "users", "--entity-name", "carol", "--add-config-file", scram)
	if err := scramPing(t, b.ListenerAddr("SASL_PLAINTEXT"), "carol", "carol-secret"); err != nil {
		t.Fatalf("carol after --add-config-file: %v", err)
	}
	c.fails("broker settings come from tagpipe.yaml", "--alter", "--entity-type", "brokers", "--entity-name", "0", "--add-config-file", writeTestFile(t, "b.properties", "log.retention.ms=1000\n"))

	c.fails("give only one of --add-config or --add-config-file", append([]string{"--alter", "--add-config", "retention.ms=1", "--add-config-file", file}, topic...)...)
	c.fails("--add-config-file: open /nonexistent/x.properties", append([]string{"--alter", "--add-config-file", "/nonexistent/x.properties"}, topic...)...)
	c.fails("has no configs", append([]string{"--alter", "--add-config-file", writeTestFile(t, "e.properties", "# nothing\n")}, topic...)...)
	c.fails(`invalid character in config key "a\\b"`, append([]string{"--alter", "--add-config-file", writeTestFile(t, "k.properties", "a\\\\b=1\n")}, topic...)...)
	c.fails("go with --alter", append([]string{"--describe", "--add-config-file", file}, topic...)...)
}

// TestConfigsBrokerLoggers: --entity-type broker-loggers as kafka-configs.sh's: the
// broker's loggers and levels described, a level set (--add-config and
// --add-config-file) and removed (the logger follows the root again); an unknown logger,
// level, broker or the root's removal refused.
func TestConfigsBrokerLoggers(t *testing.T) {
	b := startTestBrokerWith(t, func(o *broker.Options) {
		log, err := logging.New(io.Discard, "info", "text")
		if err != nil {
			t.Fatal(err)
		}
		o.Logger = log
	})
	c := configsCLI{t, b.Addr(), t.TempDir()}
	logger0 := []string{"--entity-type", "broker-loggers", "--entity-name", "0"}
	levels := func(broker, groups, root string) string {
		return "Dynamic configs for broker-logger 0 are:\n" +
			"  broker=" + broker + " sensitive=false synonyms={}\n" +
			"  groups=" + groups + " sensitive=false synonyms={}\n" +
			"  root=" + root + " sensitive=false synonyms={}\n"
	}
	c.expect(levels("INFO", "INFO", "INFO"), append([]string{"--describe"}, logger0...)...)
	c.expect("Completed updating config for broker-logger 0.\n", append([]string{"--alter", "--add-config", "broker=DEBUG"}, logger0...)...)
	c.expect(levels("DEBUG", "INFO", "INFO"), append([]string{"--describe"}, logger0...)...)
	c.expect("Completed updating config for broker-logger 0.\n", append([]string{"--alter", "--add-config-file", writeTestFile(t, "log.properties", "groups=TRACE\nroot: WARN\n")}, logger0...)...)
	c.expect(levels("DEBUG", "TRACE", "WARN"), append([]string{"--describe"}, logger0...)...)
	c.expect("Completed updating config for broker-logger 0.\n", append([]string{"--alter", "--delete-config", "broker,groups"}, logger0...)...)
	c.expect(strings.Replace(levels("WARN", "WARN", "WARN"), "Dynamic", "All", 1), append([]string{"--describe", "--all"}, logger0...)...)
	c.expect("The broker-logger '5' doesn't exist and doesn't have dynamic config.\n", "--describe", "--entity-type", "broker-loggers", "--entity-name", "5")

	c.fails("Invalid broker logger(s): kafka.server,nosuch", append([]string{"--alter", "--delete-config", "kafka.server", "--add-config", "nosuch=INFO,broker=INFO"}, logger0...)...)
	c.fails("Cannot set the log level of broker to LOUD as it is not a supported log level. Valid log levels are FATAL, ERROR, WARN, INFO, DEBUG, TRACE", append([]string{"--alter", "--add-config", "broker=LOUD"}, logger0...)...)
	c.fails("Removing the log level of the root logger is not allowed", append([]string{"--alter", "--delete-config", "root"}, logger0...)...)
	c.fails("there is no broker 5", "--alter", "--entity-type", "broker-loggers", "--entity-name", "5", "--add-config", "root=INFO")
	c.fails("must be a broker id, found: x", "--describe", "--entity-type", "broker-loggers", "--entity-name", "x")
	c.fails("needs the broker id as --entity-name", "--describe", "--entity-type", "broker-loggers")
	c.fails("not broker-loggers", "--alter", "--entity-type", "broker-loggers", "--entity-default", "--add-config", "root=INFO")
	c.expect(levels("WARN", "WARN", "WARN"), append([]string{"--describe"}, logger0...)...)
}

// TestTopicsAlterDeleteConfig: topics alter --delete-config refuses a key that is not set
// on the topic with the words of configs --delete-config (kafka-configs.sh's "Invalid
// config(s): k"), changing nothing, on every topic --topic matches.
func TestTopicsAlterDeleteConfig(t *testing.T) {
	dir, addr := t.TempDir(), startTestBroker(t).Addr()
	topics := func(args ...string) (string, error) {
		return runTagpipeErr(append([]string{"--data-dir", dir, "topics"}, append(args, "--bootstrap-server", addr)...)...)
	}
	for _, name := range []string{"a1", "a2"} {
		runTagpipe(t, "--data-dir", dir, "topics", "create", "--bootstrap-server", addr, "--topic", name, "--partitions", "1", "--config", "retention.ms=1000")
	}
	runTagpipe(t, "--data-dir", dir, "topics", "alter", "--bootstrap-server", addr, "--topic", "a2", "--config", "segment.ms=5000")
	const want = "Invalid config(s): segment.ms"
	if out, err := topics("alter", "--topic", "a[12]", "--delete-config", "segment.ms", "--config", "retention.ms=7"); err == nil || !strings.Contains(err.Error(), `topic "a1": `+want) {
		t.Fatalf("topics alter --delete-config of a key a1 lacks: %v\n%s", err, out)
	}
	c := configsCLI{t, addr, dir}
	c.fails(want, "--alter", "--entity-type", "topics", "--entity-name", "a1", "--delete-config", "segment.ms")
	for _, name := range []string{"a1", "a2"} {
		if out := runTagpipe(t, "--data-dir", dir, "topics", "describe", "--bootstrap-server", addr, "--topic", name); !strings.Contains(out, "retention.ms=1000 (dynamic_topic)") {
			t.Errorf("a refused topics alter changed %s:\n%s", name, out)
		}
	}
	// k1,k2 is two keys, as configs --delete-config takes them.
	if out, err := topics("alter", "--topic", "a2", "--delete-config", "segment.ms,retention.ms"); err != nil || out != "Altered topic a2.\n" {
		t.Fatalf("topics alter --delete-config of two set keys: %v\n%s", err, out)
	}
	if out := runTagpipe(t, "--data-dir", dir, "topics", "describe", "--bootstrap-server", addr, "--topic", "a2"); strings.Contains(out, "segment.ms=5000") || strings.Contains(out, "retention.ms=1000") {
		t.Errorf("segment.ms or retention.ms still set on a2:\n%s", out)
	}
}

// TestParseAddConfig: kafka-configs.sh's --add-config syntax: commas inside brackets
// stay in the value, the brackets go; an empty value is kept.
func TestParseAddConfig(t *testing.T) {
	got, err := parseAddConfig([]string{"k1=v1,k2=[a,b,c],k3=", "SCRAM-SHA-256=[iterations=8192,password=p=w]"})
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{{"k1", "v1"}, {"k2", "a,b,c"}, {"k3", ""}, {"SCRAM-SHA-256", "iterations=8192,password=p=w"}}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("pair %d: %q, want %q", i, got[i], want[i])
		}
	}
	if it, pw, err := parseScramCredential(got[3][1]); err != nil || it != 8192 || pw != "p=w" {
		t.Errorf("credential: %d %q %v", it, pw, err)
	}
	if it, pw, err := parseScramCredential("password=x"); err != nil || it != 4096 || pw != "x" {
		t.Errorf("credential without iterations: %d %q %v", it, pw, err)
	}
}
