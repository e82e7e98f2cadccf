package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
	"github.com/tagpipe/tagpipe/internal/kafkasec/kafkasectest"
)

func writeTestFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKafkaCommandsSecured: topics list, produce and consume against a SASL_SSL
// cluster, secured by --command-config (a Kafka tools' client.properties) or by the
// config file's kafka: section; a wrong password says authentication failed.
func TestKafkaCommandsSecured(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	cluster := kafkasectest.Cluster(t, true, certs.ServerTLS(false), kfake.SeedTopics(1, "events"))
	addr := cluster.ListenAddrs()[0]
	props := func(password string) string {
		return writeTestFile(t, "client.properties", "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"+
			"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n"+
			"    username=\""+kafkasectest.User+"\" password=\""+password+"\";\n"+
			"ssl.truststore.location="+certs.CAFile+"\nssl.truststore.type=PEM\nclient.dns.lookup=use_all_dns_ips\n")
	}
	dir := t.TempDir()
	out, err := runTagpipeErr("--data-dir", dir, "topics", "list", "--bootstrap-server", addr, "--command-config", props(kafkasectest.Password))
	if err != nil || !strings.Contains(out, "events") || !strings.Contains(out, "not used (tagpipe reads security.protocol, sasl.* and ssl.* from it): client.dns.lookup") {
		t.Fatalf("topics list --command-config: %v\n%s", err, out)
	}
	out, err = runTagpipeErr("--data-dir", dir, "topics", "list", "--bootstrap-server", addr, "--command-config", props("wrong"), "--request-timeout", "5s")
	if err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("wrong password: %v\n%s", err, out)
	}
	// Without security the broker hangs up on the client.
	if _, err := runTagpipeErr("--data-dir", dir, "topics", "list", "--bootstrap-server", addr, "--request-timeout", "2s"); err == nil {
		t.Fatal("PLAINTEXT to a SASL_SSL cluster: no error")
	}

	// The config file's kafka: section, password from the environment.
	cfg := writeTestFile(t, "tagpipe.yaml", "broker:\n  enabled: false\nkafka:\n  security_protocol: SASL_SSL\n"+
		"  sasl_mechanism: PLAIN\n  sasl_username: "+kafkasectest.User+"\n  ssl_ca_file: "+certs.CAFile+"\n")
	t.Setenv("TAGPIPE_KAFKA_SASL_PASSWORD", kafkasectest.Password)
	run := func(stdin string, args ...string) string {
		t.Helper()
		var out, errw bytes.Buffer
		root := newRootCmd(&out, &errw)
		root.SetIn(strings.NewReader(stdin))
		root.SetArgs(append([]string{"--config", cfg, "--data-dir", dir}, append(args, "--bootstrap-server", addr)...))
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errw.String())
		}
		return out.String()
	}
	run("a\nb\nc\n", "produce", "--topic", "events")
	if out := run("", "consume", "--topic", "events", "--from-beginning", "--max-messages", "3"); !strings.Contains(out, "a\nb\nc\n") {
		t.Fatalf("consume printed %q", out)
	}
}

// TestKafkaConfigChecks: the kafka: section's checks and its masked password.
func TestKafkaConfigChecks(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	dir := t.TempDir()
	off := "broker:\n  enabled: false\n"
	for _, tc := range []struct{ body, want string }{
		{off + "kafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: GSSAPI\n  sasl_username: a\n", "kafka.sasl_mechanism: GSSAPI is not supported"},
		{off + "kafka:\n  security_protocol: SSL\n  ssl_cert_file: " + certs.ClientCert + "\n", "kafka.ssl_key_file: is required with ssl_cert_file"},
		{"kafka:\n  security_protocol: SASL_PLAINTEXT\n  sasl_mechanism: PLAIN\n  sasl_username: a\n", "the built-in broker (broker.enabled: true) speaks PLAINTEXT only"},
	} {
		_, err := runTagpipeErr("--config", writeTestFile(t, "tagpipe.yaml", tc.body), "--data-dir", dir, "config", "print")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: %v, want %q", tc.body, err, tc.want)
		}
	}
	t.Setenv("TAGPIPE_KAFKA_SASL_PASSWORD", "pw-do-not-print")
	cfg := writeTestFile(t, "tagpipe.yaml", off+"kafka:\n  security_protocol: "+kafkasec.SASLSSL+"\n  sasl_mechanism: SCRAM-SHA-256\n  sasl_username: a\n")
	out, err := runTagpipeErr("--config", cfg, "--data-dir", dir, "config", "print")
	if err != nil || strings.Contains(out, "pw-do-not-print") || !strings.Contains(out, `sasl_password: "********"`) {
		t.Fatalf("config print: %v\n%s", err, out)
	}
}
