package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a throwaway certificate and key (PEM) and returns their paths.
func selfSigned(t *testing.T) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestBrokerSecurity(t *testing.T) {
	cert, key := selfSigned(t)
	body := `broker:
  listeners:
    - {name: INTERNAL, listen: "127.0.0.1:9092"}
    - name: EXTERNAL
      listen: "0.0.0.0:9093"
      advertised_host: kafka.example.com
      security_protocol: SASL_SSL
    - {name: SSL, listen: "0.0.0.0:9094"}
  ssl_cert_file: ` + cert + `
  ssl_key_file: ` + key + `
  ssl_ca_file: ` + cert + `
  ssl_client_auth: requested
  sasl_enabled_mechanisms: [SCRAM-SHA-512]
  sasl_users: {alice: from-the-file}
`
	c, err := Load(LoadOptions{File: writeFile(t, body), Environ: []string{"TAGPIPE_BROKER_SASL_USERS={alice: from-env, bob: b0b}"}})
	if err != nil {
		t.Fatal(err)
	}
	b := c.Broker
	if len(b.Listeners) != 3 || b.Listeners[1].AdvertisedHost != "kafka.example.com" || b.Listeners[1].Protocol() != "SASL_SSL" ||
		b.Listeners[0].Protocol() != "PLAINTEXT" || b.Listeners[2].Protocol() != "SSL" {
		t.Fatalf("listeners: %+v", b.Listeners)
	}
	if b.SASLUsers["alice"] != "from-env" || b.SASLUsers["bob"] != "b0b" || len(b.SASLEnabledMechanisms) != 1 {
		t.Fatalf("sasl: %v %v", b.SASLEnabledMechanisms, len(b.SASLUsers))
	}
	var buf bytes.Buffer
	if err := c.Print(&buf); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); strings.Contains(out, "from-env") || strings.Contains(out, "b0b") || !strings.Contains(out, `alice: "********"`) {
		t.Fatalf("config print shows passwords or no users:\n%s", out)
	}
}

func TestBrokerSecurityChecks(t *testing.T) {
	cert, key := selfSigned(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	internal := `    - {name: INTERNAL, listen: "127.0.0.1:9092"}` + "\n"
	cases := []struct {
		name, body string
		want       []string
	}{
		{"duplicate names", "broker:\n  listeners:\n" + internal + `    - {name: internal, listen: "127.0.0.1:9093"}` + "\n",
			[]string{"broker.listeners[1].name", "already used by listeners[0]"}},
		{"bad address", "broker:\n  listeners:\n" + internal + `    - {name: X, listen: "nowhere"}` + "\n", []string{"broker.listeners[1].listen", "host:port"}},
		{"bad protocol", "broker:\n  listeners:\n" + internal + `    - {name: X, listen: ":1", security_protocol: TLS}` + "\n",
			[]string{"broker.listeners[1].security_protocol", "SASL_SSL"}},
		{"bad name", "broker:\n  listeners:\n" + internal + `    - {name: "a-b", listen: ":1"}` + "\n", []string{"broker.listeners[1].name"}},
		{"listen not a PLAINTEXT listener", "broker:\n  listeners:\n" + `    - {name: SSL, listen: "127.0.0.1:9092"}` + "\n  ssl_cert_file: " + cert + "\n  ssl_key_file: " + key + "\n",
			[]string{"broker.listen", "PLAINTEXT listener"}},
		{"advertised with listeners", "broker:\n  advertised_port: 1\n  listeners:\n" + internal, []string{"broker.advertised_port", "per listener"}},
		{"TLS listener without certificate", "broker:\n  listeners:\n" + internal + `    - {name: SSL, listen: ":1"}` + "\n", []string{"broker.ssl_cert_file", "needs"}},
		{"cert without key", "broker:\n  ssl_cert_file: " + cert + "\n", []string{"broker.ssl_cert_file", "together"}},
		{"unreadable key", "broker:\n  ssl_cert_file: " + cert + "\n  ssl_key_file: " + missing + "\n", []string{"broker.ssl_cert_file", "missing.pem"}},
		{"key of another cert", "broker:\n  ssl_cert_file: " + cert + "\n  ssl_key_file: " + cert + "\n", []string{"broker.ssl_cert_file", "cannot load"}},
		{"bad CA file", "broker:\n  ssl_ca_file: " + key + "\n", []string{"broker.ssl_ca_file", "no PEM certificate"}},
		{"client auth without CA", "broker:\n  ssl_client_auth: required\n", []string{"broker.ssl_ca_file", "required"}},
		{"bad client auth", "broker:\n  ssl_client_auth: want\n", []string{"broker.ssl_client_auth", "requested"}},
		{"bad mechanism", "broker:\n  sasl_enabled_mechanisms: [GSSAPI]\n", []string{"broker.sasl_enabled_mechanisms", "GSSAPI"}},
		{"PLAIN-only SASL listener without users", "broker:\n  sasl_enabled_mechanisms: [PLAIN]\n  listeners:\n" + internal + `    - {name: SASL_PLAINTEXT, listen: ":1"}` + "\n", []string{"broker.sasl_users", "at least one user"}},
		{"bad authorizer", "broker:\n  authorizer: simple\n", []string{"broker.authorizer", "acl"}},
		{"bad super user", "broker:\n  authorizer: acl\n  super_users: [admin]\n", []string{"broker.super_users", "User:admin"}},
		{"SASL listener without mechanisms", "broker:\n  sasl_enabled_mechanisms: []\n  sasl_users: {a: b}\n  listeners:\n" + internal + `    - {name: SASL_PLAINTEXT, listen: ":1"}` + "\n",
			[]string{"broker.sasl_enabled_mechanisms", "at least one mechanism"}},
		{"empty password", "broker:\n  sasl_users: {a: \"\"}\n", []string{"broker.sasl_users", "empty password"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			loadFails(t, LoadOptions{File: writeFile(t, tc.body), Environ: []string{}}, tc.want...)
		})
	}
}

// TestBrokerAuthorizer: the authorizer keys load and print; a SCRAM-enabled SASL
// listener needs no configured user (stored ones may be the only users).
func TestBrokerAuthorizer(t *testing.T) {
	body := `broker:
  listeners:
    - {name: INTERNAL, listen: "127.0.0.1:9092"}
    - {name: SASL_PLAINTEXT, listen: "127.0.0.1:9093"}
  sasl_enabled_mechanisms: [SCRAM-SHA-256]
  authorizer: acl
  super_users: [User:admin, User:ANONYMOUS]
  allow_everyone_if_no_acl_found: true
`
	c, err := Load(LoadOptions{File: writeFile(t, body), Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Broker; b.Authorizer != "acl" || len(b.SuperUsers) != 2 || !b.AllowEveryoneIfNoACLFound || len(b.SASLUsers) != 0 {
		t.Fatalf("broker: %+v", b)
	}
	var buf bytes.Buffer
	if err := c.Print(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`authorizer: "acl"`, "User:ANONYMOUS", "allow_everyone_if_no_acl_found: true"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("config print lacks %q", want)
		}
	}
	d, err := Load(LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Broker.Authorizer != "none" || d.Broker.AllowEveryoneIfNoACLFound || len(d.Broker.SuperUsers) != 0 {
		t.Fatalf("defaults: %q %v %v", d.Broker.Authorizer, d.Broker.AllowEveryoneIfNoACLFound, d.Broker.SuperUsers)
	}
}

func TestBrokerQuotaWindow(t *testing.T) {
	c, err := Load(LoadOptions{Environ: []string{}, Overrides: map[string]string{"broker.quota_window_num": "5", "broker.quota_window_size": "200ms"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.QuotaWindowNum != 5 || c.Broker.QuotaWindowSize != 200*time.Millisecond {
		t.Fatalf("quota window %d × %s", c.Broker.QuotaWindowNum, c.Broker.QuotaWindowSize)
	}
	loadFails(t, LoadOptions{Environ: []string{}, Overrides: map[string]string{"broker.quota_window_num": "0"}}, "broker.quota_window_num")
}

// The connection limits: unlimited by default, set from the file and the environment,
// negative values refused with the key.
func TestBrokerConnectionLimits(t *testing.T) {
	d, err := Load(LoadOptions{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if b := d.Broker; b.MaxConnections != 0 || b.MaxConnectionsPerIP != 0 || len(b.MaxConnectionsPerIPOverrides) != 0 || b.MaxConnectionCreationRate != 0 {
		t.Fatalf("defaults: %+v", b)
	}
	body := `broker:
  max_connections: 1000
  max_connections_per_ip: 50
  max_connections_per_ip_overrides: {127.0.0.1: 200, build.example.com: 0}
`
	c, err := Load(LoadOptions{File: writeFile(t, body), Environ: []string{"TAGPIPE_BROKER_MAX_CONNECTION_CREATION_RATE=20"}})
	if err != nil {
		t.Fatal(err)
	}
	b := c.Broker
	if b.MaxConnections != 1000 || b.MaxConnectionsPerIP != 50 || b.MaxConnectionCreationRate != 20 ||
		len(b.MaxConnectionsPerIPOverrides) != 2 || b.MaxConnectionsPerIPOverrides["127.0.0.1"] != 200 {
		t.Fatalf("loaded: %+v", b)
	}
	loadFails(t, LoadOptions{Environ: []string{}, Overrides: map[string]string{"broker.max_connections_per_ip": "-1"}}, "broker.max_connections_per_ip", "0 (unlimited)")
	if d.Broker.MaxIncrementalFetchSessionCacheSlots != 1000 || b.MaxIncrementalFetchSessionCacheSlots != 1000 {
		t.Fatalf("fetch session slots: default %d, loaded %d; want Kafka's 1000", d.Broker.MaxIncrementalFetchSessionCacheSlots, b.MaxIncrementalFetchSessionCacheSlots)
	}
	loadFails(t, LoadOptions{Environ: []string{}, Overrides: map[string]string{"broker.max_incremental_fetch_session_cache_slots": "-1"}},
		"broker.max_incremental_fetch_session_cache_slots", "0 (no fetch sessions)")
	loadFails(t, LoadOptions{File: writeFile(t, "broker:\n  max_connections_per_ip_overrides: {10.0.0.1: -2}\n"), Environ: []string{}},
		"broker.max_connections_per_ip_overrides", "10.0.0.1")
}
