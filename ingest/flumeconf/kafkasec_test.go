package flumeconf

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/ingest/internal/kafkatest"
	"github.com/tagpipe/tagpipe/internal/kafkasec"
	"github.com/tagpipe/tagpipe/internal/kafkasec/kafkasectest"
)

// TestFlumeKafkaSecurity: a KafkaSource (SCRAM-SHA-256) and a KafkaSink (PLAIN) of a
// Flume file, on a SASL_SSL cluster with a PEM truststore, copy topic in to out.
func TestFlumeKafkaSecurity(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	cl := kafkasectest.Cluster(t, true, certs.ServerTLS(false), kfake.SeedTopics(1, "in", "out"))
	addr := cl.ListenAddrs()[0]
	jaas := func(module string) string {
		return "org.apache.kafka.common.security." + module + " required username=\"" + kafkasectest.User +
			"\" password=\"" + kafkasectest.Password + "\";"
	}
	text := `a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r1.kafka.bootstrap.servers = ` + addr + `
a1.sources.r1.kafka.topics = in
a1.sources.r1.kafka.consumer.group.id = sec
a1.sources.r1.kafka.consumer.auto.offset.reset = earliest
a1.sources.r1.kafka.consumer.heartbeat.interval.ms = 100
a1.sources.r1.kafka.consumer.security.protocol = SASL_SSL
a1.sources.r1.kafka.consumer.sasl.mechanism = SCRAM-SHA-256
a1.sources.r1.kafka.consumer.sasl.jaas.config = ` + jaas("scram.ScramLoginModule") + `
a1.sources.r1.kafka.consumer.ssl.truststore.location = ` + certs.CAFile + `
a1.sources.r1.kafka.consumer.ssl.truststore.type = PEM
a1.sources.r1.setTopicHeader = false
a1.sources.r1.batchDurationMillis = 50
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink
a1.sinks.k1.channel = c1
a1.sinks.k1.kafka.bootstrap.servers = ` + addr + `
a1.sinks.k1.kafka.topic = out
a1.sinks.k1.kafka.producer.security.protocol = SASL_SSL
a1.sinks.k1.kafka.producer.sasl.mechanism = PLAIN
a1.sinks.k1.kafka.producer.sasl.jaas.config = ` + jaas("plain.PlainLoginModule") + `
a1.sinks.k1.kafka.producer.ssl.truststore.location = ` + certs.CAFile + `
a1.sinks.k1.kafka.producer.ssl.endpoint.identification.algorithm = https
`
	want := map[string]string{"type": "kafka", "brokers": addr, "topics": "in", "group_id": "sec", "auto_offset_reset": "earliest",
		"heartbeat_interval": "100", "set_topic_header": "false", "batch_duration": "50", "channels": "c1",
		"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256", "sasl_username": kafkasectest.User,
		"sasl_password": kafkasectest.Password, "ssl_ca_file": certs.CAFile}
	spec, err := Convert(convertAndRun(t, text, t.TempDir(), want), "a1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(spec.Sinks["k1"]), fmt.Sprint(map[string]string{"type": "kafka", "channel": "c1", "brokers": addr, "topic": "out",
		"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": kafkasectest.User,
		"sasl_password": kafkasectest.Password, "ssl_ca_file": certs.CAFile}); got != want {
		t.Fatalf("sink %s, want %s", got, want)
	}
	s, err := kafkasec.New(certs.Config(kafkasec.SASLSSL, kafkasec.ScramSHA512))
	if err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(append(s.KgoOpts(), kgo.SeedBrokers(addr))...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for _, v := range []string{"one", "two", "three"} {
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	kafkatest.WaitCount(t, addr, "out", 3, 30*time.Second, s.KgoOpts()...)
}

// TestFlumeKafkaSecurityRefused: a JKS truststore, an unsupported login module and an
// unknown ssl.* property are refused by their Flume keys.
func TestFlumeKafkaSecurityRefused(t *testing.T) {
	jks := filepath.Join(t.TempDir(), "truststore.jks")
	if err := os.WriteFile(jks, []byte("\xfe\xed\xfe\xed\x00\x00\x00\x02"), 0o600); err != nil {
		t.Fatal(err)
	}
	props := map[string]string{"a1.sources": "r1", "a1.channels": "c1", "a1.sinks": "k1", "a1.channels.c1.type": "memory",
		"a1.sources.r1.type": "org.apache.flume.source.kafka.KafkaSource", "a1.sources.r1.channels": "c1",
		"a1.sources.r1.kafka.bootstrap.servers": "h:9093", "a1.sources.r1.kafka.topics": "in",
		"a1.sources.r1.kafka.consumer.security.protocol":       "SSL",
		"a1.sources.r1.kafka.consumer.ssl.truststore.location": jks,
		"a1.sinks.k1.type": "org.apache.flume.sink.kafka.KafkaSink", "a1.sinks.k1.channel": "c1",
		"a1.sinks.k1.kafka.producer.security.protocol":        "SASL_SSL",
		"a1.sinks.k1.kafka.producer.sasl.mechanism":           "GSSAPI",
		"a1.sinks.k1.kafka.producer.sasl.jaas.config":         `com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;`,
		"a1.sinks.k1.kafka.producer.ssl.keymanager.algorithm": "SunX509"}
	_, err := Convert(props, "a1")
	for _, w := range []string{
		`a1.sources.r1.kafka.consumer.ssl.truststore.location: ` + jks + ` is not a PEM file (a JKS or PKCS12 truststore?): convert it to PEM`,
		`a1.sinks.k1.kafka.producer.sasl.jaas.config: login module com.sun.security.auth.module.Krb5LoginModule is not supported`,
		`a1.sinks.k1.kafka.producer.ssl.keymanager.algorithm: is not supported by tagpipe`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}
