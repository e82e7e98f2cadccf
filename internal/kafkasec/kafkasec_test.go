package kafkasec_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
	"github.com/tagpipe/tagpipe/internal/kafkasec/kafkasectest"
)

// autoCreate: topics are made on first use, with one partition (the Reader reads 0).
var autoCreate = []kfake.Opt{kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1)}

// roundTripKafkaGo writes one record with a kafka-go Writer and reads it back with a
// Reader, both secured by s.
func roundTripKafkaGo(ctx context.Context, s *kafkasec.Security, addr, topic string) error {
	tr := s.Transport(&kafka.Transport{DialTimeout: 2 * time.Second})
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Transport: tr, AllowAutoTopicCreation: true,
		BatchTimeout: time.Millisecond, MaxAttempts: 2, WriteBackoffMin: 10 * time.Millisecond, WriteBackoffMax: 50 * time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("kafka-go " + topic)}); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond,
		Dialer: s.Dialer(&kafka.Dialer{Timeout: 2 * time.Second})})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(m.Value) != "kafka-go "+topic {
		return fmt.Errorf("read %q", m.Value)
	}
	return nil
}

// roundTripFranz produces one record with a kgo client and consumes it with another.
func roundTripFranz(ctx context.Context, s *kafkasec.Security, addr, topic string) error {
	cl, err := kgo.NewClient(append(s.KgoOpts(), kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.RetryTimeout(2*time.Second))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("franz " + topic)}).FirstErr(); err != nil {
		return fmt.Errorf("produce: %w", err)
	}
	cons, err := kgo.NewClient(append(s.KgoOpts(), kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	defer cons.Close()
	fs := cons.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	if rs := fs.Records(); len(rs) != 1 || string(rs[0].Value) != "franz "+topic {
		return fmt.Errorf("consumed %d records", len(rs))
	}
	return nil
}

// pingFranz is what tagpipe's CLI does first: Ping (an error, not retries until the
// deadline, when the broker refuses).
func pingFranz(ctx context.Context, s *kafkasec.Security, addr string) error {
	cl, err := kgo.NewClient(append(s.KgoOpts(), kgo.SeedBrokers(addr))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.Ping(ctx)
}

// metadataRaw asks for Metadata over a Conn from Security.Dial.
func metadataRaw(ctx context.Context, s *kafkasec.Security, addr string) error {
	c, err := s.Dial(ctx, addr, "kafkasec-test")
	if err != nil {
		return err
	}
	defer c.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 10
	resp := kmsg.NewPtrMetadataResponse()
	if err := c.RoundTrip(ctx, req, resp); err != nil {
		return err
	}
	if len(resp.Brokers) != 1 {
		return fmt.Errorf("metadata lists %d brokers", len(resp.Brokers))
	}
	return nil
}

// TestMechanismsTLS: every mechanism, with TLS and without, for kafka-go, franz-go and
// the raw connection, against kfake.
func TestMechanismsTLS(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	plainCl := kafkasectest.Cluster(t, true, nil, autoCreate...)
	tlsCl := kafkasectest.Cluster(t, true, certs.ServerTLS(false), autoCreate...)
	for _, proto := range []string{kafkasec.SASLPlaintext, kafkasec.SASLSSL} {
		addr := plainCl.ListenAddrs()[0]
		if proto == kafkasec.SASLSSL {
			addr = tlsCl.ListenAddrs()[0]
		}
		for _, mech := range []string{kafkasec.Plain, kafkasec.ScramSHA256, kafkasec.ScramSHA512} {
			t.Run(proto+"/"+mech, func(t *testing.T) {
				s, err := kafkasec.New(certs.Config(proto, mech))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				topic := strings.ToLower(strings.ReplaceAll(proto+"-"+mech, "_", "-"))
				if err := roundTripKafkaGo(ctx, s, addr, "kg-"+topic); err != nil {
					t.Errorf("kafka-go: %v", err)
				}
				if err := roundTripFranz(ctx, s, addr, "fr-"+topic); err != nil {
					t.Errorf("franz-go: %v", err)
				}
				if err := metadataRaw(ctx, s, addr); err != nil {
					t.Errorf("raw: %v", err)
				}
			})
		}
	}
}

// TestSSLOnly: TLS without SASL.
func TestSSLOnly(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	cl := kafkasectest.Cluster(t, false, certs.ServerTLS(false), autoCreate...)
	s, err := kafkasec.New(certs.Config(kafkasec.SSL, ""))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addr := cl.ListenAddrs()[0]
	if err := roundTripKafkaGo(ctx, s, addr, "kg-ssl"); err != nil {
		t.Errorf("kafka-go: %v", err)
	}
	if err := roundTripFranz(ctx, s, addr, "fr-ssl"); err != nil {
		t.Errorf("franz-go: %v", err)
	}
	if err := metadataRaw(ctx, s, addr); err != nil {
		t.Errorf("raw: %v", err)
	}
}

// allClients runs every client kind against addr and returns their errors by name.
func allClients(t *testing.T, s *kafkasec.Security, addr, topic string) map[string]error {
	t.Helper()
	errs := map[string]error{}
	for name, fn := range map[string]func(context.Context) error{
		"kafka-go": func(ctx context.Context) error { return roundTripKafkaGo(ctx, s, addr, "kg-"+topic) },
		"franz-go": func(ctx context.Context) error { return pingFranz(ctx, s, addr) },
		"raw":      func(ctx context.Context) error { return metadataRaw(ctx, s, addr) },
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs[name] = fn(ctx)
		cancel()
	}
	return errs
}

// TestWrongPassword: each client's error says authentication failed.
func TestWrongPassword(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	cl := kafkasectest.Cluster(t, true, certs.ServerTLS(false), autoCreate...)
	for _, mech := range []string{kafkasec.Plain, kafkasec.ScramSHA256, kafkasec.ScramSHA512} {
		c := certs.Config(kafkasec.SASLSSL, mech)
		c.SASLPassword = "wrong"
		s, err := kafkasec.New(c)
		if err != nil {
			t.Fatal(err)
		}
		for name, err := range allClients(t, s, cl.ListenAddrs()[0], "wrong") {
			if err == nil || !strings.Contains(err.Error(), "authentication failed") {
				t.Errorf("%s %s: got %v, want an error saying authentication failed", mech, name, err)
			}
		}
	}
}

// TestUnknownCA: a broker certificate from another CA is refused, saying certificate.
func TestUnknownCA(t *testing.T) {
	certs, other := kafkasectest.NewCerts(t), kafkasectest.NewCerts(t)
	cl := kafkasectest.Cluster(t, true, certs.ServerTLS(false), autoCreate...)
	s, err := kafkasec.New(other.Config(kafkasec.SASLSSL, kafkasec.Plain))
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range allClients(t, s, cl.ListenAddrs()[0], "ca") {
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: got %v, want an error about the certificate", name, err)
		}
	}
}

// TestMutualTLS: a broker that requires client certificates takes ours and refuses a
// client without one.
func TestMutualTLS(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	cl := kafkasectest.Cluster(t, false, certs.ServerTLS(true), autoCreate...)
	c := certs.Config(kafkasec.SSL, "")
	without, err := kafkasec.New(c)
	if err != nil {
		t.Fatal(err)
	}
	c.SSLCertFile, c.SSLKeyFile = certs.ClientCert, certs.ClientKey
	with, err := kafkasec.New(c)
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range allClients(t, with, cl.ListenAddrs()[0], "mtls") {
		if err != nil {
			t.Errorf("%s with a client certificate: %v", name, err)
		}
	}
	for name, err := range allClients(t, without, cl.ListenAddrs()[0], "no-mtls") {
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s without a client certificate: got %v, want an error about the certificate", name, err)
		}
	}
}
