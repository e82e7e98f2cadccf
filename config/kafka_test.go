package config

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tagpipe/tagpipe/internal/kafkasec/kafkasectest"
)

// secured is a kafka: section for a SASL_SSL cluster with the built-in broker off.
func secured(ca string) string {
	return "broker:\n  enabled: false\nkafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: SCRAM-SHA-512\n" +
		"  sasl_username: alice\n  ssl_ca_file: " + ca + "\n"
}

func TestKafkaSection(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	c, err := Load(LoadOptions{File: writeFile(t, secured(certs.CAFile)),
		Environ: []string{"TAGPIPE_KAFKA_SASL_PASSWORD=s3cret-pw"}})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Kafka.Security()
	if s.SASLPassword != "s3cret-pw" || s.SASLUsername != "alice" || !s.UsesTLS() || !s.UsesSASL() {
		t.Fatalf("security = %+v", s)
	}
	if got := c.SourceOf("kafka.sasl_password").String(); got != "env TAGPIPE_KAFKA_SASL_PASSWORD" {
		t.Fatalf("source = %q", got)
	}
	var buf bytes.Buffer
	if err := c.Print(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "s3cret-pw") || !strings.Contains(buf.String(), `sasl_password: "********"`) {
		t.Fatalf("config print shows the password or does not mask it:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), `security_protocol: "SASL_SSL"`) {
		t.Fatalf("print output:\n%s", buf.String())
	}
	if d := Default().Kafka.Security(); d.Protocol() != "PLAINTEXT" || d.UsesSASL() || d.UsesTLS() {
		t.Fatalf("default = %+v", d)
	}
}

func TestKafkaChecks(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	off := "broker:\n  enabled: false\n"
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"bad mechanism", off + "kafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: SCRAM-SHA-1\n  sasl_username: a\n",
			[]string{"kafka.sasl_mechanism", "SCRAM-SHA-1", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", "tagpipe.yaml:5"}},
		{"no mechanism", off + "kafka:\n  security_protocol: SASL_PLAINTEXT\n  sasl_username: a\n",
			[]string{"kafka.sasl_mechanism: is required with security_protocol SASL_PLAINTEXT"}},
		{"bad protocol", off + "kafka:\n  security_protocol: TLS\n", []string{"kafka.security_protocol", `"TLS"`}},
		{"cert without key", off + "kafka:\n  security_protocol: SSL\n  ssl_cert_file: " + certs.ClientCert + "\n",
			[]string{"kafka.ssl_key_file: is required with ssl_cert_file"}},
		{"unreadable CA", off + "kafka:\n  security_protocol: SSL\n  ssl_ca_file: /nonexistent/ca.pem\n",
			[]string{"kafka.ssl_ca_file: cannot read", "/nonexistent/ca.pem"}},
		{"built-in broker", "kafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: PLAIN\n  sasl_username: a\n",
			[]string{"kafka.security_protocol: is SASL_SSL, but the built-in broker", "PLAINTEXT only", "the collector", "the streaming engine", "broker.enabled: false"}},
		{"built-in broker, streaming only", "ingest:\n  bootstrap_servers: [kafka:9093]\nkafka:\n  security_protocol: SSL\n",
			[]string{"the streaming engine (streaming.bootstrap_servers is empty)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loadFails(t, LoadOptions{File: writeFile(t, tc.body), Environ: []string{}}, tc.want...)
		})
	}
	// The built-in broker may run beside a secured cluster the clients use.
	body := "ingest:\n  bootstrap_servers: [kafka:9093]\nstreaming:\n  bootstrap_servers: [kafka:9093]\nkafka:\n  security_protocol: SSL\n"
	if _, err := Load(LoadOptions{File: writeFile(t, body), Environ: []string{}}); err != nil {
		t.Fatal(err)
	}
}

// TestPrintMasksAgentPasswords: an agent's kafka sink's own sasl_password is masked too.
func TestPrintMasksAgentPasswords(t *testing.T) {
	body := "ingest:\n  agents:\n    a1:\n      sources:\n        s: {type: exec, command: date, channels: c}\n" +
		"      channels:\n        c: {type: memory}\n      sinks:\n        k: {type: kafka, channel: c, sasl_password: agent-pw-secret, topic: t}\n"
	c, err := Load(LoadOptions{File: writeFile(t, body), Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Print(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "agent-pw-secret") || !strings.Contains(buf.String(), "sasl_password: \"********\"") {
		t.Fatalf("print output:\n%s", buf.String())
	}
	if c.Ingest.Agents["a1"].Sinks["k"]["sasl_password"] != "agent-pw-secret" {
		t.Fatal("the config's own value was masked")
	}
}
