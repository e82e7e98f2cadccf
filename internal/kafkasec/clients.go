package kafkasec

import (
	"fmt"

	"github.com/segmentio/kafka-go"
	kgosasl "github.com/segmentio/kafka-go/sasl"
	kgoplain "github.com/segmentio/kafka-go/sasl/plain"
	kgoscram "github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kafkaGoSASL builds the kafka-go SASL mechanism.
func kafkaGoSASL(c Config) (kgosasl.Mechanism, error) {
	var algo kgoscram.Algorithm
	switch c.SASLMechanism {
	case Plain:
		return kgoplain.Mechanism{Username: c.SASLUsername, Password: c.SASLPassword}, nil
	case ScramSHA256:
		algo = kgoscram.SHA256
	default:
		algo = kgoscram.SHA512
	}
	m, err := kgoscram.Mechanism(algo, c.SASLUsername, c.SASLPassword)
	if err != nil {
		// SASLprep refused the username or password.
		return nil, fmt.Errorf("SASL %s: %w", c.SASLMechanism, err)
	}
	return m, nil
}

// KafkaGoSASL is the kafka-go SASL mechanism, nil without SASL.
func (s *Security) KafkaGoSASL() kgosasl.Mechanism {
	if s == nil {
		return nil
	}
	return s.kafkaGo
}

// Transport sets tr's TLS and SASL (kafka-go's Transport: Writers, Clients) and
// returns it. TLS is done by its Dial (see DialFunc), so tr.TLS stays nil.
func (s *Security) Transport(tr *kafka.Transport) *kafka.Transport {
	if s != nil {
		tr.Dial, tr.TLS, tr.SASL = s.DialFunc(), nil, s.KafkaGoSASL()
	}
	return tr
}

// Dialer sets d's TLS and SASL (kafka-go's Dialer: Readers, Conns) and returns it;
// TLS is done by its DialFunc.
func (s *Security) Dialer(d *kafka.Dialer) *kafka.Dialer {
	if s != nil {
		d.DialFunc, d.TLS, d.SASLMechanism = s.DialFunc(), nil, s.KafkaGoSASL()
	}
	return d
}

// franzSASL builds the franz-go SASL mechanism.
func franzSASL(c Config) sasl.Mechanism {
	switch c.SASLMechanism {
	case Plain:
		return plain.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsMechanism()
	case ScramSHA256:
		return scram.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsSha256Mechanism()
	default:
		return scram.Auth{User: c.SASLUsername, Pass: c.SASLPassword}.AsSha512Mechanism()
	}
}

// FranzSASL is the franz-go SASL mechanism, nil without SASL.
func (s *Security) FranzSASL() sasl.Mechanism {
	if s == nil {
		return nil
	}
	return s.franz
}

// KgoOpts are franz-go client options for TLS and SASL (none for PLAINTEXT): TLS in
// kgo.Dialer (DialFunc, rather than kgo.DialTLSConfig, so a broker hanging up on a bad
// password says authentication failed), the mechanism in kgo.SASL.
func (s *Security) KgoOpts() []kgo.Opt {
	if s == nil {
		return nil
	}
	var opts []kgo.Opt
	if s.tls != nil || s.cfg.UsesSASL() {
		opts = append(opts, kgo.Dialer(s.DialFunc()))
	}
	if m := s.FranzSASL(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}
