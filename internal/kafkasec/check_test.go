package kafkasec_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
	"github.com/tagpipe/tagpipe/internal/kafkasec/kafkasectest"
)

func problems(ps []kafkasec.Problem) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Error())
	}
	return strings.Join(s, "\n")
}

func TestCheck(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name string
		c    kafkasec.Config
		want string // "" = no problem
	}{
		{"plaintext", kafkasec.Config{}, ""},
		{"lower case", kafkasec.Config{SecurityProtocol: "sasl_ssl", SASLMechanism: "scram-sha-512", SASLUsername: "u"}, ""},
		{"bad protocol", kafkasec.Config{SecurityProtocol: "TLS"}, "security_protocol: must be one of"},
		{"no mechanism", kafkasec.Config{SecurityProtocol: "SASL_SSL", SASLUsername: "u"}, "sasl_mechanism: is required with security_protocol SASL_SSL"},
		{"bad mechanism", kafkasec.Config{SecurityProtocol: "SASL_SSL", SASLMechanism: "SCRAM-SHA-1", SASLUsername: "u"}, "sasl_mechanism: must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"},
		{"gssapi", kafkasec.Config{SecurityProtocol: "SASL_PLAINTEXT", SASLMechanism: "GSSAPI", SASLUsername: "u"}, "GSSAPI is not supported"},
		{"no username", kafkasec.Config{SecurityProtocol: "SASL_SSL", SASLMechanism: "PLAIN"}, "sasl_username: is required"},
		{"sasl without SASL_", kafkasec.Config{SASLUsername: "u"}, "sasl_username: is set but security_protocol is PLAINTEXT"},
		{"tls file without SSL", kafkasec.Config{SecurityProtocol: "SASL_PLAINTEXT", SASLMechanism: "PLAIN", SASLUsername: "u", SSLCAFile: certs.CAFile}, "ssl_ca_file: is set but security_protocol is SASL_PLAINTEXT"},
		{"ca missing", kafkasec.Config{SecurityProtocol: "SSL", SSLCAFile: missing}, "ssl_ca_file: cannot read"},
		{"ca not PEM", kafkasec.Config{SecurityProtocol: "SSL", SSLCAFile: writeFile(t, "ca.jks", "\xfe\xed\xfe\xed")}, "holds no PEM certificate"},
		{"cert without key", kafkasec.Config{SecurityProtocol: "SSL", SSLCertFile: certs.ClientCert}, "ssl_key_file: is required with ssl_cert_file"},
		{"key without cert", kafkasec.Config{SecurityProtocol: "SSL", SSLKeyFile: certs.ClientKey}, "ssl_cert_file: is required with ssl_key_file"},
		{"key of another cert", kafkasec.Config{SecurityProtocol: "SSL", SSLCertFile: certs.ClientCert, SSLKeyFile: certs.ServerKey}, "cannot load the client certificate and key"},
		{"mtls", kafkasec.Config{SecurityProtocol: "SSL", SSLCAFile: certs.CAFile, SSLCertFile: certs.ClientCert, SSLKeyFile: certs.ClientKey}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(tc.c.Check())
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Fatalf("Check() = %q, want %q", got, tc.want)
			}
			if _, err := kafkasec.New(tc.c); (err == nil) != (tc.want == "") {
				t.Fatalf("New() = %v", err)
			}
		})
	}
}

func writeFile(t *testing.T, name, text string) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFromProperties(t *testing.T) {
	certs := kafkasectest.NewCerts(t)
	jks := writeFile(t, "truststore.jks", "\xfe\xed\xfe\xed\x00\x00")
	clientPEM := writeFile(t, "client.pem", readFile(t, certs.ClientKey)+readFile(t, certs.ClientCert))
	for _, tc := range []struct {
		name  string
		props map[string]string
		want  kafkasec.Config
		err   string
	}{
		{"scram", map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
			"sasl.jaas.config":        `org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="p\"w;d";`,
			"ssl.truststore.location": certs.CAFile, "ssl.truststore.type": "PEM", "client.dns.lookup": "use_all_dns_ips"},
			kafkasec.Config{SecurityProtocol: "SASL_SSL", SASLMechanism: "SCRAM-SHA-512", SASLUsername: "alice", SASLPassword: `p"w;d`, SSLCAFile: certs.CAFile}, ""},
		{"plain unquoted", map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
			"sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required\n  username=bob\n  password=pw;"},
			kafkasec.Config{SecurityProtocol: "SASL_PLAINTEXT", SASLMechanism: "PLAIN", SASLUsername: "bob", SASLPassword: "pw"}, ""},
		{"pem keystore", map[string]string{"security.protocol": "SSL", "ssl.truststore.location": certs.CAFile,
			"ssl.keystore.location": clientPEM, "ssl.keystore.type": "PEM", "ssl.endpoint.identification.algorithm": "https"},
			kafkasec.Config{SecurityProtocol: "SSL", SSLCAFile: certs.CAFile, SSLCertFile: clientPEM, SSLKeyFile: clientPEM}, ""},
		{"jks by type", map[string]string{"security.protocol": "SSL", "ssl.truststore.location": certs.CAFile, "ssl.truststore.type": "JKS"},
			kafkasec.Config{}, "ssl.truststore.location: truststore type JKS is not supported: convert it to PEM"},
		{"jks by content", map[string]string{"security.protocol": "SSL", "ssl.truststore.location": jks},
			kafkasec.Config{}, "is not a PEM file (a JKS or PKCS12 truststore?): convert it to PEM"},
		{"module misfit", map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
			"sasl.jaas.config": `org.apache.kafka.common.security.scram.ScramLoginModule required username="a" password="b";`},
			kafkasec.Config{}, "does not fit sasl.mechanism PLAIN"},
		{"kerberos", map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "GSSAPI",
			"sasl.jaas.config": `com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;`},
			kafkasec.Config{}, "Krb5LoginModule is not supported"},
		{"no mechanism", map[string]string{"security.protocol": "SASL_SSL",
			"sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="b";`},
			kafkasec.Config{}, "sasl.mechanism: is required (Kafka's default, GSSAPI, is not supported"},
		{"unsupported", map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER",
			"sasl.login.callback.handler.class": "x"}, kafkasec.Config{}, "sasl.login.callback.handler.class: is not supported"},
		{"no protocol", map[string]string{"sasl.mechanism": "PLAIN"}, kafkasec.Config{}, "security.protocol: is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ps := kafkasec.FromProperties(tc.props)
			got := problems(ps)
			if tc.err == "" {
				if got != "" || c != tc.want {
					t.Fatalf("FromProperties = %+v, %q; want %+v", c, got, tc.want)
				}
				return
			}
			if !strings.Contains(got, tc.err) {
				t.Fatalf("problems %q, want %q", got, tc.err)
			}
		})
	}
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
