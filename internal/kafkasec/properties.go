package kafkasec

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Keys are Config's settings as a kafka component's keys (and the kafka: section's):
// its yaml names.
var Keys = func() []string {
	t := reflect.TypeFor[Config]()
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i] = t.Field(i).Tag.Get("yaml")
	}
	return keys
}()

// field is the setting under key, one of Keys.
func (c *Config) field(key string) (reflect.Value, bool) {
	v := reflect.ValueOf(c).Elem()
	for i, k := range Keys {
		if k == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// Get returns the setting under key (one of Keys) as text; "" when unset.
func (c Config) Get(key string) string {
	f, ok := c.field(key)
	switch {
	case !ok:
		return ""
	case f.Kind() == reflect.Bool:
		if f.Bool() {
			return "true"
		}
		return ""
	}
	return f.String()
}

// Set assigns text to the setting under key (one of Keys).
func (c *Config) Set(key, text string) error {
	f, ok := c.field(key)
	switch {
	case !ok:
		return fmt.Errorf("no security key %q", key)
	case f.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("bad value %q: want true or false", text)
		}
		f.SetBool(b)
	default:
		f.SetString(text)
	}
	return nil
}

// kafkaNames are the Kafka client properties each key comes from in FromProperties.
var kafkaNames = map[string]string{"security_protocol": "security.protocol", "sasl_mechanism": "sasl.mechanism",
	"sasl_username": "sasl.jaas.config", "sasl_password": "sasl.jaas.config",
	"ssl_ca_file": "ssl.truststore.location", "ssl_cert_file": "ssl.keystore.location", "ssl_key_file": "ssl.keystore.location"}

// IsSecurityProperty reports whether a Kafka client property is one FromProperties
// reads or refuses: security.protocol, sasl.* and ssl.*.
func IsSecurityProperty(name string) bool {
	return name == "security.protocol" || strings.HasPrefix(name, "sasl.") || strings.HasPrefix(name, "ssl.")
}

// FromProperties reads the security settings of Kafka client properties (a Kafka
// tools' --command-config file, or Flume's kafka.producer.* / kafka.consumer.* with the
// prefix taken off): security.protocol, sasl.mechanism, sasl.jaas.config (username and
// password of a PlainLoginModule or ScramLoginModule line), ssl.truststore.location
// and ssl.keystore.location when they are PEM files (ssl.*.type PEM, or the file is
// PEM), ssl.endpoint.identification.algorithm https. Other security properties
// (IsSecurityProperty) are refused by name; the rest are not looked at. Problems name
// the property; the files are checked as Check does.
func FromProperties(props map[string]string) (Config, []Problem) {
	var c Config
	var ps []Problem
	fail := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Reason: fmt.Sprintf(format, args...)})
	}
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := strings.TrimSpace(props[k])
		switch k {
		case "security.protocol":
			c.SecurityProtocol = v
		case "sasl.mechanism":
			c.SASLMechanism = v
		case "sasl.jaas.config":
			user, pass, err := parseJAAS(v, props["sasl.mechanism"])
			if err != nil {
				fail(k, "%v", err)
			}
			c.SASLUsername, c.SASLPassword = user, pass
		case "ssl.truststore.location":
			if err := pemStore(v, props["ssl.truststore.type"], "truststore",
				"keytool -exportcert -rfc -alias <alias> -keystore truststore.jks > ca.pem"); err != nil {
				fail(k, "%v", err)
			}
			c.SSLCAFile = v
		case "ssl.keystore.location":
			if err := pemStore(v, props["ssl.keystore.type"], "keystore",
				"keytool -importkeystore -srckeystore keystore.jks -destkeystore keystore.p12 -deststoretype PKCS12, then openssl pkcs12 -in keystore.p12 -nodes -out client.pem"); err != nil {
				fail(k, "%v", err)
			}
			// A PEM keystore holds the private key and the certificate chain.
			c.SSLCertFile, c.SSLKeyFile = v, v
		case "ssl.truststore.type", "ssl.keystore.type":
			// Read with the location above; PEM is the only type taken.
		case "ssl.truststore.password", "ssl.keystore.password":
			// A JKS or PKCS12 store's password: PEM files are read without one.
		case "ssl.key.password":
			if v != "" {
				fail(k, "encrypted private keys are not supported: write the key unencrypted (openssl pkey -in key.pem -out plain-key.pem)")
			}
		case "ssl.endpoint.identification.algorithm":
			if !strings.EqualFold(v, "https") {
				fail(k, "only https (the broker's host name is checked) is supported, not %q; set kafka.ssl_server_name to the name in the broker certificates", v)
			}
		case "ssl.protocol", "ssl.enabled.protocols":
			// TLS 1.2 or 1.3, as Go's TLS negotiates.
		default:
			if IsSecurityProperty(k) {
				fail(k, "is not supported by tagpipe (security.protocol, sasl.mechanism, sasl.jaas.config, ssl.truststore.location and ssl.keystore.location are)")
			}
		}
	}
	if c.SecurityProtocol == "" && c.IsSet() {
		// Kafka's default security.protocol is PLAINTEXT, which takes none of these.
		fail("security.protocol", "is required with sasl.* or ssl.* settings")
	}
	if c.UsesSASL() && c.SASLMechanism == "" {
		fail("sasl.mechanism", "is required (Kafka's default, GSSAPI, is not supported: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
	}
	if len(ps) > 0 {
		return c, ps
	}
	for _, p := range c.Check() {
		if n, ok := kafkaNames[p.Key]; ok {
			p.Key = n
		}
		ps = append(ps, p)
	}
	return c, ps
}

// pemStore refuses a trust- or keystore that is not PEM, saying how to convert it.
func pemStore(path, typ, what, convert string) error {
	if typ != "" && !strings.EqualFold(typ, "PEM") {
		return fmt.Errorf("%s type %s is not supported: convert it to PEM (%s) and set ssl.%s.type=PEM", what, typ, convert, what)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read: %w", err)
	}
	if !bytes.Contains(data, []byte("-----BEGIN ")) {
		return fmt.Errorf("%s is not a PEM file (a JKS or PKCS12 %s?): convert it to PEM (%s)", path, what, convert)
	}
	return nil
}

// The JAAS login modules of the supported mechanisms.
const (
	plainModule = "org.apache.kafka.common.security.plain.PlainLoginModule"
	scramModule = "org.apache.kafka.common.security.scram.ScramLoginModule"
)

// parseJAAS reads the username and password of a sasl.jaas.config line:
//
//	org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="secret";
//
// The module must fit mechanism (PlainLoginModule for PLAIN, ScramLoginModule for
// SCRAM-*), when mechanism is given.
func parseJAAS(s, mechanism string) (user, pass string, err error) {
	toks, err := jaasTokens(s)
	if err != nil {
		return "", "", err
	}
	if len(toks) < 2 {
		return "", "", fmt.Errorf("want \"<LoginModule> required username=\\\"…\\\" password=\\\"…\\\";\", got %q", s)
	}
	module, flag := toks[0], strings.ToLower(toks[1])
	switch module {
	case plainModule, scramModule:
	default:
		return "", "", fmt.Errorf("login module %s is not supported (PlainLoginModule or ScramLoginModule: GSSAPI, OAUTHBEARER and AWS IAM are not)", module)
	}
	if flag != "required" && flag != "requisite" && flag != "sufficient" && flag != "optional" {
		return "", "", fmt.Errorf("want a control flag (required) after %s, got %q", module, toks[1])
	}
	m := strings.ToUpper(strings.TrimSpace(mechanism))
	if m == Plain && module != plainModule || strings.HasPrefix(m, "SCRAM-") && module != scramModule {
		return "", "", fmt.Errorf("login module %s does not fit sasl.mechanism %s", module, m)
	}
	var haveUser, havePass bool
	for _, t := range toks[2:] {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			return "", "", fmt.Errorf("want option=value, got %q", t)
		}
		switch k {
		case "username":
			user, haveUser = v, true
		case "password":
			pass, havePass = v, true
		}
	}
	if !haveUser || !havePass {
		return "", "", fmt.Errorf("needs username and password options")
	}
	return user, pass, nil
}

// jaasTokens splits one JAAS entry into words and option=value pairs, unquoting
// double-quoted values; the entry ends at ';'.
func jaasTokens(s string) ([]string, error) {
	var toks []string
	var b strings.Builder
	inTok, ended := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ended:
			if ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' {
				return nil, fmt.Errorf("one login module only: text after ';'")
			}
		case ch == '"':
			inTok = true
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j == len(s) {
				return nil, fmt.Errorf("unterminated quote")
			}
			i = j
		case ch == ';' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			if inTok {
				toks, inTok = append(toks, b.String()), false
				b.Reset()
			}
			ended = ch == ';'
		default:
			inTok = true
			b.WriteByte(ch)
		}
	}
	if !ended {
		return nil, fmt.Errorf("the login module line must end with ';'")
	}
	return toks, nil
}
