package agent

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
	"github.com/tagpipe/tagpipe/internal/kafkasec"
	"github.com/tagpipe/tagpipe/internal/kafkasec/kafkasectest"
)

// TestKafkaSASLSSL: a kafka sink writes to a SASL_SSL cluster with the collector's
// settings (Env.Security); a kafka source reads that cluster with its own keys into a
// kafka sink on a PLAINTEXT cluster (security_protocol: PLAINTEXT of its own).
func TestKafkaSASLSSL(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	secured := kafkasectest.Cluster(t, true, certs.ServerTLS(false), kfake.SeedTopics(1, "events"))
	plain := kafkasectest.Cluster(t, false, nil, kfake.SeedTopics(1, "copy"))
	sec := certs.Config(kafkasec.SASLSSL, kafkasec.ScramSHA256)
	s, err := kafkasec.New(sec)
	if err != nil {
		t.Fatal(err)
	}
	addr := secured.ListenAddrs()[0]

	// The collector's settings: an exec source → kafka sink to the secured cluster.
	build(t, Spec{Name: "w", Where: "ingest.agents.w",
		Sources:  map[string]map[string]string{"cmd": {"type": "exec", "channels": "c", "command": "seq 1 50"}},
		Channels: map[string]map[string]string{"c": {"type": "memory"}},
		Sinks:    map[string]map[string]string{"k": {"type": "kafka", "channel": "c", "topic": "events", "linger": "5"}},
	}, Env{DataDir: t.TempDir(), Brokers: []string{addr}, Security: sec})
	kafkatest.WaitCount(t, addr, "events", 50, 30*time.Second, s.KgoOpts()...)
	var got []string
	for _, r := range kafkatest.ReadAll(t, addr, "events", s.KgoOpts()...) {
		got = append(got, r.Value)
	}
	if len(got) != 50 || got[0] != "1" || got[49] != "50" {
		t.Fatalf("events holds %d records: %v", len(got), got)
	}

	// A source's own keys (SASL_SSL, SCRAM-SHA-512) beside a sink with its own
	// PLAINTEXT; the collector default (Env.Security) is SASL_SSL with a wrong password.
	wrong := sec
	wrong.SASLPassword = "wrong"
	build(t, Spec{Name: "r", Where: "ingest.agents.r",
		Sources: map[string]map[string]string{"k": {"type": "kafka", "channels": "c", "brokers": addr, "topics": "events",
			"group_id": "sec", "auto_offset_reset": "earliest", "set_topic_header": "false", "batch_duration": "50",
			"heartbeat_interval": "100ms", "session_timeout": "10s",
			"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": kafkasectest.User,
			"sasl_password": kafkasectest.Password, "ssl_ca_file": certs.CAFile}},
		Channels: map[string]map[string]string{"c": {"type": "memory"}},
		Sinks: map[string]map[string]string{"out": {"type": "kafka", "channel": "c", "brokers": plain.ListenAddrs()[0],
			"topic": "copy", "security_protocol": "PLAINTEXT"}},
	}, Env{DataDir: t.TempDir(), Security: wrong})
	kafkatest.WaitCount(t, plain.ListenAddrs()[0], "copy", 50, 30*time.Second)
	n := 0
	for _, r := range kafkatest.ReadAll(t, plain.ListenAddrs()[0], "copy") {
		if v, err := strconv.Atoi(r.Value); err != nil || v < 1 || v > 50 {
			t.Fatalf("copy record %+v", r)
		}
		n++
	}
	if n != 50 {
		t.Fatalf("copy holds %d records", n)
	}
}

// TestKafkaSecurityKeysChecked: a component's security keys are checked by name.
func TestKafkaSecurityKeysChecked(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	spec := Spec{Name: "a1", Where: "ingest.agents.a1",
		Sources: map[string]map[string]string{"k": {"type": "kafka", "channels": "c", "brokers": "127.0.0.1:1", "topics": "in",
			"security_protocol": "SASL_SSL", "sasl_username": "u", "ssl_insecure_skip_verify": "maybe"}},
		Channels: map[string]map[string]string{"c": {"type": "memory"}},
		Sinks: map[string]map[string]string{"s": {"type": "kafka", "channel": "c", "brokers": "127.0.0.1:1", "topic": "out",
			"security_protocol": "SSL", "ssl_cert_file": certs.ClientCert}},
	}
	a, err := Build(spec, Env{DataDir: t.TempDir()})
	if err == nil {
		a.Stop(context.Background())
		t.Fatal("built")
	}
	for _, w := range []string{
		`ingest.agents.a1.sources.k.sasl_mechanism: is required with security_protocol SASL_SSL`,
		`ingest.agents.a1.sources.k.ssl_insecure_skip_verify: bad value "maybe"`,
		`ingest.agents.a1.sinks.s.ssl_key_file: is required with ssl_cert_file`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}
