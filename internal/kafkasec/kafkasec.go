// Package kafkasec turns tagpipe's Kafka security settings — the kafka: config section,
// a kafka source's or sink's own keys, or a Kafka client properties file — into what
// each Kafka client library needs: TLS and a SASL mechanism for kafka-go's Transport and
// Dialer, kgo options for franz-go, and an authenticated connection for the requests
// tagpipe encodes itself with kmsg (streaming's topic ids).
//
// Supported: security.protocol PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL; SASL
// mechanisms PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512; a PEM CA file, a PEM client
// certificate and key (mutual TLS), a server name and skipping verification. Not
// supported: GSSAPI (Kerberos), OAUTHBEARER, AWS_MSK_IAM, JKS/PKCS12 stores.
package kafkasec

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	kgosasl "github.com/segmentio/kafka-go/sasl"
	"github.com/twmb/franz-go/pkg/sasl"
)

// The security protocols (Kafka's security.protocol).
const (
	Plaintext     = "PLAINTEXT"
	SSL           = "SSL"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
)

// The SASL mechanisms (Kafka's sasl.mechanism).
const (
	Plain       = "PLAIN"
	ScramSHA256 = "SCRAM-SHA-256"
	ScramSHA512 = "SCRAM-SHA-512"
)

// Protocols and Mechanisms list the security protocols and the SASL mechanisms, in
// Kafka's order (the broker's listeners take the same names).
var (
	Protocols  = []string{Plaintext, SSL, SASLPlaintext, SASLSSL}
	Mechanisms = []string{Plain, ScramSHA256, ScramSHA512}
)

// Config is one Kafka cluster's security settings, with Kafka's names snake_cased. The
// zero value is PLAINTEXT. config.Kafka has the same fields and converts to it.
type Config struct {
	// SecurityProtocol: PLAINTEXT (""), SSL, SASL_PLAINTEXT or SASL_SSL.
	SecurityProtocol string `yaml:"security_protocol"`
	// SASLMechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* only).
	SASLMechanism string `yaml:"sasl_mechanism"`
	SASLUsername  string `yaml:"sasl_username"`
	SASLPassword  string `yaml:"sasl_password"`
	// SSLCAFile is a PEM file of the CA certificates to trust; "" = the system's.
	SSLCAFile string `yaml:"ssl_ca_file"`
	// SSLCertFile and SSLKeyFile are a PEM client certificate (chain) and its unencrypted
	// key, for brokers that require client certificates (ssl.client.auth=required).
	SSLCertFile string `yaml:"ssl_cert_file"`
	SSLKeyFile  string `yaml:"ssl_key_file"`
	// SSLServerName is the name the broker certificates are checked against; "" = the
	// host of each broker address.
	SSLServerName string `yaml:"ssl_server_name"`
	// SSLInsecureSkipVerify accepts any broker certificate (testing only).
	SSLInsecureSkipVerify bool `yaml:"ssl_insecure_skip_verify"`
}

// Protocol is SecurityProtocol in upper case, PLAINTEXT when empty.
func (c Config) Protocol() string {
	if c.SecurityProtocol == "" {
		return Plaintext
	}
	return strings.ToUpper(strings.TrimSpace(c.SecurityProtocol))
}

// Mechanism is SASLMechanism in upper case.
func (c Config) Mechanism() string { return strings.ToUpper(strings.TrimSpace(c.SASLMechanism)) }

// UsesTLS reports whether the protocol is SSL or SASL_SSL.
func (c Config) UsesTLS() bool { p := c.Protocol(); return p == SSL || p == SASLSSL }

// UsesSASL reports whether the protocol is SASL_PLAINTEXT or SASL_SSL.
func (c Config) UsesSASL() bool { p := c.Protocol(); return p == SASLPlaintext || p == SASLSSL }

// IsSet reports whether any setting differs from PLAINTEXT's zero value.
func (c Config) IsSet() bool { return c != Config{} }

// String describes the settings for logs and errors, without the password.
func (c Config) String() string {
	s := c.Protocol()
	if c.UsesSASL() {
		s += fmt.Sprintf(" (%s as %q)", c.Mechanism(), c.SASLUsername)
	}
	return s
}

// Problem is one unacceptable setting: the key (security_protocol, …) and why.
type Problem struct {
	Key    string
	Reason string
}

func (p Problem) Error() string { return p.Key + ": " + p.Reason }

// Check lists what is wrong with c, the files included (they are read and parsed). An
// empty list means New will succeed.
func (c Config) Check() []Problem {
	var ps []Problem
	fail := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Reason: fmt.Sprintf(format, args...)})
	}
	switch c.Protocol() {
	case Plaintext, SSL, SASLPlaintext, SASLSSL:
	default:
		fail("security_protocol", "must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL, got %q", c.SecurityProtocol)
		return ps
	}
	if c.UsesSASL() {
		switch m := c.Mechanism(); m {
		case Plain, ScramSHA256, ScramSHA512:
		case "":
			fail("sasl_mechanism", "is required with security_protocol %s (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", c.Protocol())
		case "GSSAPI", "OAUTHBEARER", "AWS_MSK_IAM":
			fail("sasl_mechanism", "%s is not supported (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", m)
		default:
			fail("sasl_mechanism", "must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, got %q", c.SASLMechanism)
		}
		if c.SASLUsername == "" {
			fail("sasl_username", "is required with security_protocol %s", c.Protocol())
		}
	} else {
		for _, kv := range []struct{ key, v string }{{"sasl_mechanism", c.SASLMechanism}, {"sasl_username", c.SASLUsername}, {"sasl_password", c.SASLPassword}} {
			if kv.v != "" {
				fail(kv.key, "is set but security_protocol is %s: SASL needs SASL_SSL or SASL_PLAINTEXT", c.Protocol())
			}
		}
	}
	if !c.UsesTLS() {
		for _, kv := range []struct{ key, v string }{{"ssl_ca_file", c.SSLCAFile}, {"ssl_cert_file", c.SSLCertFile}, {"ssl_key_file", c.SSLKeyFile}, {"ssl_server_name", c.SSLServerName}} {
			if kv.v != "" {
				fail(kv.key, "is set but security_protocol is %s: TLS needs SSL or SASL_SSL", c.Protocol())
			}
		}
		if c.SSLInsecureSkipVerify {
			fail("ssl_insecure_skip_verify", "is set but security_protocol is %s: TLS needs SSL or SASL_SSL", c.Protocol())
		}
		return ps
	}
	if c.SSLCAFile != "" {
		if _, err := readCAs(c.SSLCAFile); err != nil {
			fail("ssl_ca_file", "%v", err)
		}
	}
	switch {
	case c.SSLCertFile != "" && c.SSLKeyFile == "":
		fail("ssl_key_file", "is required with ssl_cert_file (a client certificate needs its key)")
	case c.SSLCertFile == "" && c.SSLKeyFile != "":
		fail("ssl_cert_file", "is required with ssl_key_file (a client key needs its certificate)")
	case c.SSLCertFile != "":
		if _, err := tls.LoadX509KeyPair(c.SSLCertFile, c.SSLKeyFile); err != nil {
			fail("ssl_cert_file", "cannot load the client certificate and key (%s, %s): %v", c.SSLCertFile, c.SSLKeyFile, err)
		}
	}
	return ps
}

// readCAs reads a PEM file of CA certificates.
func readCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate (a JKS or PKCS12 truststore must be converted to PEM first)", path)
	}
	return pool, nil
}

// Security is a checked Config with its files loaded, ready to configure clients. A nil
// *Security is PLAINTEXT: every method then leaves clients as they are.
type Security struct {
	cfg     Config
	tls     *tls.Config
	kafkaGo kgosasl.Mechanism
	franz   sasl.Mechanism
}

// New checks c and loads its files; PLAINTEXT gives nil.
func New(c Config) (*Security, error) {
	if ps := c.Check(); len(ps) > 0 {
		errs := make([]error, len(ps))
		for i, p := range ps {
			errs[i] = p
		}
		return nil, errors.Join(errs...)
	}
	if c.Protocol() == Plaintext {
		return nil, nil
	}
	c.SecurityProtocol, c.SASLMechanism = c.Protocol(), c.Mechanism()
	s := &Security{cfg: c}
	if c.UsesTLS() {
		t := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.SSLServerName, InsecureSkipVerify: c.SSLInsecureSkipVerify}
		if c.SSLCAFile != "" {
			pool, err := readCAs(c.SSLCAFile)
			if err != nil {
				return nil, fmt.Errorf("ssl_ca_file: %w", err)
			}
			t.RootCAs = pool
		}
		if c.SSLCertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.SSLCertFile, c.SSLKeyFile)
			if err != nil {
				return nil, fmt.Errorf("ssl_cert_file: %w", err)
			}
			t.Certificates = []tls.Certificate{cert}
		}
		s.tls = t
	}
	if c.UsesSASL() {
		m, err := kafkaGoSASL(c)
		if err != nil {
			return nil, err
		}
		s.kafkaGo, s.franz = m, franzSASL(c)
	}
	return s, nil
}

// Config returns the settings s was made from (PLAINTEXT for nil).
func (s *Security) Config() Config {
	if s == nil {
		return Config{SecurityProtocol: Plaintext}
	}
	return s.cfg
}

// String describes s for logs, without the password.
func (s *Security) String() string { return s.Config().String() }

// TLS returns a copy of the TLS configuration, nil without TLS.
func (s *Security) TLS() *tls.Config {
	if s == nil || s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

// tlsFor is TLS with ServerName set to addr's host when no ssl_server_name is given.
func (s *Security) tlsFor(addr string) *tls.Config {
	t := s.TLS()
	if t != nil && t.ServerName == "" {
		t.ServerName = hostOf(addr)
	}
	return t
}

func hostOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		addr = addr[:i]
	}
	return strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
}
