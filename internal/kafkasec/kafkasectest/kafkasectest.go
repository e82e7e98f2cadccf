// Package kafkasectest makes what tests of secured Kafka clients need: a throwaway CA
// with a server certificate for 127.0.0.1 and a client certificate, written as PEM
// files, and a kfake cluster serving SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and TLS
// on 127.0.0.1.
package kafkasectest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// The SASL user every Cluster knows, under each mechanism.
const (
	User     = "alice"
	Password = "alice-secret"
)

// Certs are PEM files in a test's temporary directory.
type Certs struct {
	CAFile                string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
	caPool                *x509.CertPool
	server                tls.Certificate
}

// NewCerts makes a CA, a server certificate (127.0.0.1, localhost) and a client
// certificate signed by it.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tagpipe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	c := &Certs{CAFile: filepath.Join(dir, "ca.pem"), caPool: x509.NewCertPool()}
	c.caPool.AddCert(ca)
	writePEM(t, c.CAFile, "CERTIFICATE", caDER)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "PRIVATE KEY", keyDER)
		return certFile, keyFile
	}
	c.ServerCert, c.ServerKey = leaf(2, "broker", x509.ExtKeyUsageServerAuth)
	c.ClientCert, c.ClientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	if c.server, err = tls.LoadX509KeyPair(c.ServerCert, c.ServerKey); err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ServerTLS is the brokers' TLS configuration; requireClientCert asks clients for a
// certificate signed by the CA (Kafka's ssl.client.auth=required).
func (c *Certs) ServerTLS(requireClientCert bool) *tls.Config {
	t := &tls.Config{Certificates: []tls.Certificate{c.server}, MinVersion: tls.VersionTLS12}
	if requireClientCert {
		t.ClientAuth, t.ClientCAs = tls.RequireAndVerifyClientCert, c.caPool
	}
	return t
}

// Cluster starts a one-broker kfake cluster on 127.0.0.1 with SASL (User/Password
// under PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512) when sasl is true and TLS when
// serverTLS is not nil; it is closed when the test ends.
func Cluster(t testing.TB, sasl bool, serverTLS *tls.Config, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	o := []kfake.Opt{kfake.NumBrokers(1), kfake.ListenFn(func(network, _ string) (net.Listener, error) {
		return net.Listen(network, "127.0.0.1:0")
	})}
	if sasl {
		o = append(o, kfake.EnableSASL(),
			kfake.Superuser(kafkasec.Plain, User, Password),
			kfake.Superuser(kafkasec.ScramSHA256, User, Password),
			kfake.Superuser(kafkasec.ScramSHA512, User, Password))
	}
	if serverTLS != nil {
		o = append(o, kfake.TLS(serverTLS))
	}
	cl, err := kfake.NewCluster(append(o, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// Config is the client side of a Cluster: protocol and mechanism as given, the
// test user, and the CA file when the protocol uses TLS.
func (c *Certs) Config(protocol, mechanism string) kafkasec.Config {
	k := kafkasec.Config{SecurityProtocol: protocol}
	if k.UsesSASL() {
		k.SASLMechanism, k.SASLUsername, k.SASLPassword = mechanism, User, Password
	}
	if k.UsesTLS() {
		k.SSLCAFile = c.CAFile
	}
	return k
}

// SASLSSL starts a SASL_SSL cluster and returns it with the clients' security
// (SCRAM-SHA-512).
func SASLSSL(t testing.TB, opts ...kfake.Opt) (*kfake.Cluster, *kafkasec.Security) {
	c := NewCerts(t)
	cl := Cluster(t, true, c.ServerTLS(false), opts...)
	s, err := kafkasec.New(c.Config(kafkasec.SASLSSL, kafkasec.ScramSHA512))
	if err != nil {
		t.Fatal(err)
	}
	return cl, s
}
