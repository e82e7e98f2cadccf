package broker

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	kgsasl "github.com/segmentio/kafka-go/sasl"
	kgplain "github.com/segmentio/kafka-go/sasl/plain"
	kgscram "github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	xscram "github.com/xdg-go/scram"
)

// testPKI is a throwaway CA, a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
	untrustedClient           tls.Certificate // signed by another CA
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	p := &testPKI{dir: dir, pool: x509.NewCertPool()}
	ca, caKey := makeCert(t, nil, nil, "tagpipe test CA", true)
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	srv, srvKey := makeCert(t, ca, caKey, "127.0.0.1", false)
	p.certFile = writePEM(t, dir, "server.pem", "CERTIFICATE", srv.Raw)
	p.keyFile = writeKey(t, dir, "server-key.pem", srvKey)
	cli, cliKey := makeCert(t, ca, caKey, "alice", false)
	p.client = tls.Certificate{Certificate: [][]byte{cli.Raw}, PrivateKey: cliKey}
	other, otherKey := makeCert(t, nil, nil, "other CA", true)
	bad, badKey := makeCert(t, other, otherKey, "mallory", false)
	p.untrustedClient = tls.Certificate{Certificate: [][]byte{bad.Raw}, PrivateKey: badKey}
	return p
}

func makeCert(t testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
	} else if ip := net.ParseIP(cn); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeKey(t testing.TB, dir, name string, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name, "PRIVATE KEY", der)
}

// clientTLS trusts the test CA; with a client certificate when cert is given.
func (p *testPKI) clientTLS(cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

const (
	testUser      = "alice"
	testPassword  = "alice-secret"
	wrongPassword = "not-alices-password"
)

// secureOptions: a PLAINTEXT listener first (Addr), then SSL, SASL_PLAINTEXT and
// SASL_SSL, all on free ports, with every mechanism enabled and one user.
func secureOptions(t testing.TB, p *testPKI) Options {
	o := testOptions(t)
	o.DefaultPartitions = 1
	o.Listeners = []Listener{
		{Name: "INTERNAL", Listen: "127.0.0.1:0"},
		{Name: "SSL", Listen: "127.0.0.1:0"},
		{Name: "SASL_PLAINTEXT", Listen: "127.0.0.1:0"},
		{Name: "EXTERNAL", Listen: "127.0.0.1:0", SecurityProtocol: SASLSSL},
	}
	o.TLS = TLSOptions{CertFile: p.certFile, KeyFile: p.keyFile}
	o.SASL = SASLOptions{Mechanisms: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"},
		Users: map[string]string{testUser: testPassword, "bob": "bob-secret"}}
	return o
}

// secureCase is one way of connecting: a listener, TLS or not, a mechanism or none.
type secureCase struct {
	listener  string
	tls       bool
	mechanism string // "" = no SASL
}

func (sc secureCase) String() string {
	if sc.mechanism == "" {
		return sc.listener
	}
	return sc.listener + "/" + sc.mechanism
}

var secureCases = []secureCase{
	{"SSL", true, ""},
	{"EXTERNAL", true, "PLAIN"},
	{"EXTERNAL", true, "SCRAM-SHA-256"},
	{"EXTERNAL", true, "SCRAM-SHA-512"},
	{"SASL_PLAINTEXT", false, "SCRAM-SHA-256"},
}

func kgoSASL(mechanism, user, pass string) sasl.Mechanism {
	switch mechanism {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	panic(mechanism)
}

func kgoSecureOpts(p *testPKI, sc secureCase, addr, pass string) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.RetryTimeout(5 * time.Second)}
	if sc.tls {
		opts = append(opts, kgo.DialTLSConfig(p.clientTLS(nil)))
	}
	if sc.mechanism != "" {
		opts = append(opts, kgo.SASL(kgoSASL(sc.mechanism, testUser, pass)))
	}
	return opts
}

func kafkaGoSASL(t testing.TB, mechanism, user, pass string) kgsasl.Mechanism {
	switch mechanism {
	case "":
		return nil
	case "PLAIN":
		return kgplain.Mechanism{Username: user, Password: pass}
	}
	algo := kgscram.SHA256
	if mechanism == "SCRAM-SHA-512" {
		algo = kgscram.SHA512
	}
	m, err := kgscram.Mechanism(algo, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// saramaSCRAM adapts xdg-go/scram to sarama's SCRAMClient.
type saramaSCRAM struct {
	hash func() hash.Hash
	conv *xscram.ClientConversation
}

func (s *saramaSCRAM) Begin(user, pass, authzID string) error {
	c, err := xscram.HashGeneratorFcn(s.hash).NewClient(user, pass, authzID)
	if err != nil {
		return err
	}
	s.conv = c.NewConversation()
	return nil
}

func (s *saramaSCRAM) Step(challenge string) (string, error) { return s.conv.Step(challenge) }
func (s *saramaSCRAM) Done() bool                            { return s.conv.Done() }

func saramaSecureConfig(p *testPKI, sc secureCase, pass string, handshake int16) *sarama.Config {
	cfg := saramaConfig("none")
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Metadata.Retry.Max = 0
	if sc.tls {
		cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, p.clientTLS(nil)
	}
	if sc.mechanism != "" {
		cfg.Net.SASL.Enable = true
		cfg.Net.SASL.User, cfg.Net.SASL.Password = testUser, pass
		cfg.Net.SASL.Mechanism = sarama.SASLMechanism(sc.mechanism)
		cfg.Net.SASL.Version = handshake
		if handshake == sarama.SASLHandshakeV0 {
			cfg.ApiVersionsRequest = false // sarama's rule for v0 (the pre-KIP-35 exchange)
		}
		switch sc.mechanism {
		case "SCRAM-SHA-256":
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{hash: sha256.New} }
		case "SCRAM-SHA-512":
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &saramaSCRAM{hash: sha512.New} }
		}
	}
	return cfg
}

// TestSecureListenersClients: franz-go, kafka-go and sarama each produce to and consume
// from the SSL, SASL_SSL (every mechanism) and SASL_PLAINTEXT listeners; sarama with
// both handshake versions (v0: raw SASL tokens).
func TestSecureListenersClients(t *testing.T) {
	p := newTestPKI(t)
	b := startBroker(t, secureOptions(t, p))
	const n = 20
	for _, sc := range secureCases {
		addr := b.ListenerAddr(sc.listener)
		t.Run("franz-go/"+sc.String(), func(t *testing.T) {
			topic := "kgo-" + strings.NewReplacer("/", "-", "_", "-").Replace(sc.String())
			cl, err := kgo.NewClient(append(kgoSecureOpts(p, sc, addr, testPassword), kgo.AllowAutoTopicCreation(), kgo.ConsumeTopics(topic))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx := testCtx(t)
			for i := 0; i < n; i++ {
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: value(i)}).FirstErr(); err != nil {
					t.Fatalf("produce: %v", err)
				}
			}
			var got int
			for got < n {
				fs := cl.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatalf("fetch: %v", err)
				}
				fs.EachRecord(func(r *kgo.Record) {
					if parseSeq(t, r.Value) != got {
						t.Fatalf("record %d: %q", got, r.Value)
					}
					got++
				})
			}
		})
		t.Run("kafka-go/"+sc.String(), func(t *testing.T) {
			topic := "kafkago-" + strings.NewReplacer("/", "-", "_", "-").Replace(sc.String())
			var tlsCfg *tls.Config
			if sc.tls {
				tlsCfg = p.clientTLS(nil)
			}
			mech := kafkaGoSASL(t, sc.mechanism, testUser, testPassword)
			tr := &kafka.Transport{TLS: tlsCfg, SASL: mech}
			defer tr.CloseIdleConnections()
			w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Transport: tr, AllowAutoTopicCreation: true, BatchSize: 1}
			ctx := testCtx(t)
			for i := 0; i < n; i++ {
				var err error
				for try := 0; try < 20; try++ { // the first write may race the topic's creation
					if err = w.WriteMessages(ctx, kafka.Message{Value: value(i)}); err == nil {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond,
				Dialer: &kafka.Dialer{Timeout: 5 * time.Second, TLS: tlsCfg, SASLMechanism: mech}})
			defer r.Close()
			for i := 0; i < n; i++ {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if parseSeq(t, m.Value) != i {
					t.Fatalf("record %d: %q", i, m.Value)
				}
			}
		})
		versions := []int16{sarama.SASLHandshakeV1}
		if sc.mechanism != "" {
			versions = append(versions, sarama.SASLHandshakeV0)
		}
		for _, hv := range versions {
			t.Run(fmt.Sprintf("sarama/%s/handshake-v%d", sc, hv), func(t *testing.T) {
				saramaLog(t)
				topic := fmt.Sprintf("sarama-%s-v%d", strings.NewReplacer("/", "-", "_", "-").Replace(sc.String()), hv)
				cfg := saramaSecureConfig(p, sc, testPassword, hv)
				prod, err := sarama.NewSyncProducer([]string{addr}, cfg)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(value(i))}); err != nil {
						t.Fatalf("produce: %v", err)
					}
				}
				_ = prod.Close()
				cons, err := sarama.NewConsumer([]string{addr}, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer cons.Close()
				pc, err := cons.ConsumePartition(topic, 0, sarama.OffsetOldest)
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
				timeout := time.After(30 * time.Second)
				for i := 0; i < n; i++ {
					select {
					case m := <-pc.Messages():
						if parseSeq(t, m.Value) != i {
							t.Fatalf("record %d: %q", i, m.Value)
						}
					case <-timeout:
						t.Fatalf("consumed %d of %d", i, n)
					}
				}
			})
		}
	}
}

// TestSASLWrongPassword: each client reports an authentication failure, and the broker
// closes the connection after answering.
func TestSASLWrongPassword(t *testing.T) {
	p := newTestPKI(t)
	o := secureOptions(t, p)
	logs := &lockedBuffer{}
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := startBroker(t, o)
	defer func() { // neither password, right or wrong, is ever logged
		if l := logs.String(); strings.Contains(l, testPassword) || strings.Contains(l, wrongPassword) || !strings.Contains(l, "authentication failed") {
			t.Errorf("broker log:\n%s", l)
		}
	}()
	for _, sc := range secureCases[1:] {
		addr := b.ListenerAddr(sc.listener)
		t.Run("franz-go/"+sc.String(), func(t *testing.T) {
			cl, err := kgo.NewClient(kgoSecureOpts(p, sc, addr, wrongPassword)...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			err = cl.Ping(testCtx(t))
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("ping with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
		})
		t.Run("kafka-go/"+sc.String(), func(t *testing.T) {
			d := &kafka.Dialer{Timeout: 5 * time.Second, SASLMechanism: kafkaGoSASL(t, sc.mechanism, testUser, wrongPassword)}
			if sc.tls {
				d.TLS = p.clientTLS(nil)
			}
			_, err := d.DialContext(testCtx(t), "tcp", addr)
			if !errors.Is(err, kafka.SASLAuthenticationFailed) {
				t.Fatalf("dial with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
		})
		t.Run("sarama/"+sc.String(), func(t *testing.T) {
			saramaLog(t)
			_, err := sarama.NewClient([]string{addr}, saramaSecureConfig(p, sc, wrongPassword, sarama.SASLHandshakeV1))
			if !errors.Is(err, sarama.ErrSASLAuthenticationFailed) {
				t.Fatalf("client with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
			}
		})
	}
	// An unknown user fails the same way.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.ListenerAddr("SASL_PLAINTEXT")), kgo.RequestRetries(0),
		kgo.SASL(kgoSASL("SCRAM-SHA-512", "nobody", testPassword)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Ping(testCtx(t)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("unknown user: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
}

func saslHandshakeReq(v int16, mechanism string) *kmsg.SASLHandshakeRequest {
	r := kmsg.NewPtrSASLHandshakeRequest()
	r.Version, r.Mechanism = v, mechanism
	return r
}

func saslAuthenticateReq(v int16, auth []byte) *kmsg.SASLAuthenticateRequest {
	r := kmsg.NewPtrSASLAuthenticateRequest()
	r.Version, r.SASLAuthBytes = v, auth
	return r
}

// TestSASLProtocol speaks the exchange by hand on the SASL_PLAINTEXT listener.
func TestSASLProtocol(t *testing.T) {
	p := newTestPKI(t)
	b := startBroker(t, secureOptions(t, p))
	addr := b.ListenerAddr("SASL_PLAINTEXT")
	plainMsg := func(user, pass string) []byte { return []byte("\x00" + user + "\x00" + pass) }

	t.Run("request before authentication closes", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(metadataReq(12))
		c.expectClosed()
	})
	t.Run("request between handshake and authenticate closes", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(apiVersionsReq(3), saslHandshakeReq(1, "PLAIN"))
		resp := c.readInOrder([]kmsg.Request{apiVersionsReq(3), saslHandshakeReq(1, "PLAIN")})
		if code := resp[1].(*kmsg.SASLHandshakeResponse).ErrorCode; code != 0 {
			t.Fatalf("handshake: error %d", code)
		}
		c.send(metadataReq(12))
		c.expectClosed()
	})
	t.Run("unsupported mechanism", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(saslHandshakeReq(1, "GSSAPI"))
		resp := c.readInOrder([]kmsg.Request{saslHandshakeReq(1, "GSSAPI")})[0].(*kmsg.SASLHandshakeResponse)
		if resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || strings.Join(resp.SupportedMechanisms, ",") != "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512" {
			t.Fatalf("handshake GSSAPI: %+v", resp)
		}
		c.expectClosed()
	})
	t.Run("wrong password answered then closed", func(t *testing.T) {
		c := dialRaw(t, addr)
		reqs := []kmsg.Request{saslHandshakeReq(1, "PLAIN"), saslAuthenticateReq(2, plainMsg(testUser, "wrong"))}
		c.send(reqs...)
		resp := c.readInOrder(reqs)[1].(*kmsg.SASLAuthenticateResponse)
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil ||
			*resp.ErrorMessage != "Authentication failed: Invalid username or password" {
			t.Fatalf("authenticate: %+v", resp)
		}
		c.expectClosed()
	})
	t.Run("v1 handshake then authenticated", func(t *testing.T) {
		c := dialRaw(t, addr)
		reqs := []kmsg.Request{apiVersionsReq(3), saslHandshakeReq(1, "PLAIN"), saslAuthenticateReq(1, plainMsg(testUser, testPassword)), metadataReq(12),
			saslHandshakeReq(1, "PLAIN"), saslAuthenticateReq(0, nil)}
		c.send(reqs...)
		resp := c.readInOrder(reqs)
		if a := resp[2].(*kmsg.SASLAuthenticateResponse); a.ErrorCode != 0 || a.SessionLifetimeMillis != 0 {
			t.Fatalf("authenticate: %+v", a)
		}
		if m := resp[3].(*kmsg.MetadataResponse); len(m.Brokers) != 1 || fmt.Sprintf("%s:%d", m.Brokers[0].Host, m.Brokers[0].Port) != addr {
			t.Fatalf("metadata after authentication: %+v", m.Brokers)
		}
		if h := resp[4].(*kmsg.SASLHandshakeResponse); h.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("second handshake: %+v", h)
		}
		if a := resp[5].(*kmsg.SASLAuthenticateResponse); a.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("authenticate after authentication: %+v", a)
		}
	})
	t.Run("v0 handshake raw tokens", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(saslHandshakeReq(0, "PLAIN"))
		c.readInOrder([]kmsg.Request{saslHandshakeReq(0, "PLAIN")})
		tok := plainMsg(testUser, testPassword)
		if _, err := c.nc.Write(binary.BigEndian.AppendUint32(nil, uint32(len(tok)))); err != nil {
			t.Fatal(err)
		}
		if _, err := c.nc.Write(tok); err != nil {
			t.Fatal(err)
		}
		var size [4]byte
		if _, err := io.ReadFull(c.r, size[:]); err != nil || binary.BigEndian.Uint32(size[:]) != 0 {
			t.Fatalf("raw PLAIN answer: %v %x, want an empty token", err, size)
		}
		c.send(metadataReq(12))
		c.readInOrder([]kmsg.Request{metadataReq(12)})
	})
	t.Run("v0 raw token wrong password closes", func(t *testing.T) {
		c := dialRaw(t, addr)
		c.send(saslHandshakeReq(0, "PLAIN"))
		c.readInOrder([]kmsg.Request{saslHandshakeReq(0, "PLAIN")})
		tok := plainMsg(testUser, "wrong")
		if _, err := c.nc.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(tok))), tok...)); err != nil {
			t.Fatal(err)
		}
		c.expectClosed()
	})
	t.Run("handshake on a PLAINTEXT listener", func(t *testing.T) {
		c := dialRaw(t, b.ListenerAddr("INTERNAL"))
		c.send(saslHandshakeReq(1, "PLAIN"))
		if h := c.readInOrder([]kmsg.Request{saslHandshakeReq(1, "PLAIN")})[0].(*kmsg.SASLHandshakeResponse); h.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("handshake on PLAINTEXT: %+v", h)
		}
	})
	if v := metricValue(b.metrics.authFailures); v < 3 {
		t.Errorf("authentication failures counted: %v", v)
	}
}

// TestTLSListenerRefusesPlaintext: a PLAINTEXT client on a TLS listener gets its
// connection closed (the broker logs the failed handshake), and no connection is left.
func TestTLSListenerRefusesPlaintext(t *testing.T) {
	p := newTestPKI(t)
	b := startBroker(t, secureOptions(t, p))
	for _, name := range []string{"SSL", "EXTERNAL"} {
		c := dialRaw(t, b.ListenerAddr(name))
		c.send(apiVersionsReq(3))
		c.expectClosed()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.ListenerAddr("SSL")), kgo.RequestRetries(0), kgo.DialTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err == nil {
		t.Fatal("a PLAINTEXT client pinged a TLS listener")
	}
	cl.Close()
	waitNoConns(t, b)
}

func waitNoConns(t *testing.T, b *Broker) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.connMu.Lock()
		n := len(b.conns)
		b.connMu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMutualTLS: with ssl_client_auth required, a client without a certificate, or with
// one from another CA, is refused; one with a certificate from the CA is served.
// "requested" serves a client without a certificate too.
func TestMutualTLS(t *testing.T) {
	p := newTestPKI(t)
	for _, auth := range []string{"required", "requested"} {
		t.Run(auth, func(t *testing.T) {
			o := secureOptions(t, p)
			o.TLS.CAFile, o.TLS.ClientAuth = p.caFile, auth
			b := startBroker(t, o)
			addr := b.ListenerAddr("SSL")
			ping := func(cert *tls.Certificate) error {
				cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.DialTLSConfig(p.clientTLS(cert)))
				if err != nil {
					t.Fatal(err)
				}
				defer cl.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return cl.Ping(ctx)
			}
			if err := ping(&p.client); err != nil {
				t.Fatalf("client with a certificate: %v", err)
			}
			// (With requested, Go's client sends no certificate the server's CA list does
			// not name, and is served as one without a certificate.)
			if err := ping(&p.untrustedClient); auth == "required" && err == nil {
				t.Fatal("a client certificate from another CA was accepted")
			}
			err := ping(nil)
			if auth == "required" && err == nil {
				t.Fatal("a client without a certificate was accepted")
			}
			if auth == "requested" && err != nil {
				t.Fatalf("client without a certificate, client auth requested: %v", err)
			}
			waitNoConns(t, b)
		})
	}
}

// TestListenersAdvertiseTheirOwnAddress: Metadata, FindCoordinator and DescribeCluster
// answer with the advertised address of the listener the request came in on.
func TestListenersAdvertiseTheirOwnAddress(t *testing.T) {
	p := newTestPKI(t)
	o := secureOptions(t, p)
	o.Listeners = []Listener{
		{Name: "INTERNAL", Listen: "127.0.0.1:0", AdvertisedHost: "internal.example", AdvertisedPort: 1111},
		{Name: "EXTERNAL", Listen: "127.0.0.1:0", AdvertisedHost: "external.example", AdvertisedPort: 2222, SecurityProtocol: SSL},
		{Name: "OTHER", Listen: "127.0.0.1:0"}, // advertises its own address
	}
	b := startBroker(t, o)
	for _, tc := range []struct{ name, want string }{
		{"INTERNAL", "internal.example:1111"}, {"EXTERNAL", "external.example:2222"}, {"OTHER", b.ListenerAddr("OTHER")},
	} {
		c := dialRaw(t, b.ListenerAddr(tc.name))
		if tc.name == "EXTERNAL" {
			cfg := p.clientTLS(nil)
			cfg.ServerName = "127.0.0.1"
			tc := tls.Client(c.nc, cfg)
			c.nc, c.r = tc, bufio.NewReader(tc)
		}
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.Version, fc.CoordinatorKeys = 4, []string{"g"}
		dc := kmsg.NewPtrDescribeClusterRequest()
		reqs := []kmsg.Request{metadataReq(12), fc, dc}
		c.send(reqs...)
		resp := c.readInOrder(reqs)
		m := resp[0].(*kmsg.MetadataResponse).Brokers[0]
		f := resp[1].(*kmsg.FindCoordinatorResponse).Coordinators[0]
		d := resp[2].(*kmsg.DescribeClusterResponse).Brokers[0]
		for api, got := range map[string]string{
			"Metadata":        net.JoinHostPort(m.Host, fmt.Sprint(m.Port)),
			"FindCoordinator": net.JoinHostPort(f.Host, fmt.Sprint(f.Port)),
			"DescribeCluster": net.JoinHostPort(d.Host, fmt.Sprint(d.Port)),
		} {
			if got != tc.want {
				t.Errorf("%s on %s: %s, want %s", api, tc.name, got, tc.want)
			}
		}
	}
	// DescribeConfigs lists every listener.
	_, adm := newAdmin(t, b.ListenerAddr("OTHER"))
	rc, err := adm.DescribeBrokerConfigs(testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc[0].Configs {
		got[c.Key] = c.MaybeValue()
	}
	if want := "INTERNAL://internal.example:1111,EXTERNAL://external.example:2222,OTHER://" + b.ListenerAddr("OTHER"); got["advertised.listeners"] != want {
		t.Errorf("advertised.listeners %q, want %q", got["advertised.listeners"], want)
	}
	if want := "INTERNAL:PLAINTEXT,EXTERNAL:SSL,OTHER:PLAINTEXT"; got["listener.security.protocol.map"] != want {
		t.Errorf("listener.security.protocol.map %q, want %q", got["listener.security.protocol.map"], want)
	}
}

// TestDescribeUserSCRAMCredentialsConfigured: the configured users are listed with the
// enabled SCRAM mechanisms and 4096 iterations; without a SCRAM mechanism
// AlterUserScramCredentials is refused.
func TestDescribeUserSCRAMCredentialsConfigured(t *testing.T) {
	p := newTestPKI(t)
	b := startBroker(t, secureOptions(t, p))
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	all, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("users: %+v", all)
	}
	for _, u := range []string{"alice", "bob"} {
		d := all[u]
		if d.Err != nil || len(d.CredInfos) != 2 || d.CredInfos[0].Mechanism != kadm.ScramSha256 || d.CredInfos[1].Mechanism != kadm.ScramSha512 ||
			d.CredInfos[0].Iterations != 4096 || d.CredInfos[1].Iterations != 4096 {
			t.Errorf("%s: %+v", u, d)
		}
	}
	one, err := adm.DescribeUserSCRAMs(ctx, "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	if one["bob"].Err != nil || !errors.Is(one["carol"].Err, kerr.ResourceNotFound) {
		t.Errorf("bob and carol: %+v", one)
	}
	// Without a SCRAM mechanism on a SASL listener, alterations are refused.
	o := secureOptions(t, p)
	o.SASL.Mechanisms = []string{"PLAIN"}
	_, plainAdm := newAdmin(t, startBroker(t, o).Addr())
	alt, err := plainAdm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(alt["carol"].Err, kerr.UnsupportedVersion) {
		t.Errorf("alter without SCRAM: %+v", alt)
	}
	if none, err := plainAdm.DescribeUserSCRAMs(ctx); err != nil || len(none) != 0 {
		t.Errorf("describe without SCRAM: %+v %v", none, err)
	}
}

// credsOf looks users up in creds (a scramServer without a broker).
func credsOf(creds map[string]scramCred) func(string) (scramCred, bool) {
	return func(user string) (scramCred, bool) { c, ok := creds[user]; return c, ok }
}

// TestSCRAMServerRFC7677: the RFC 7677 SCRAM-SHA-256 example exchange (user, password,
// nonces and salt fixed) gives the RFC's server-first and server-final messages.
func TestSCRAMServerRFC7677(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	cred, err := scramCredWithSalt(sha256.New, "pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	s := &scramServer{mech: scramMechs[0], lookup: credsOf(map[string]scramCred{"user": cred})}
	s.testNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	first, done, err := s.step([]byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil || done || string(first) != "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096" {
		t.Fatalf("server-first %q %v %v", first, done, err)
	}
	final, done, err := s.step([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || !done || string(final) != "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" {
		t.Fatalf("server-final %q %v %v", final, done, err)
	}
	if s.user() != "user" {
		t.Fatalf("user %q", s.user())
	}
}

// TestBrokerProcessSASLSSL: `tagpipe broker` configured through the environment
// (broker.listeners, ssl_*, sasl_users) serves a SASL_SSL listener to a SCRAM client.
func TestBrokerProcessSASLSSL(t *testing.T) {
	p := newTestPKI(t)
	bp := startBrokerProc(t, t.TempDir(),
		`TAGPIPE_BROKER_LISTENERS=[{name: EXTERNAL, listen: "127.0.0.1:0", security_protocol: SASL_SSL}, {name: INTERNAL, listen: "127.0.0.1:0"}]`,
		"TAGPIPE_BROKER_SSL_CERT_FILE="+p.certFile, "TAGPIPE_BROKER_SSL_KEY_FILE="+p.keyFile,
		"TAGPIPE_BROKER_SASL_USERS={"+testUser+": "+testPassword+"}")
	sc := secureCase{"EXTERNAL", true, "SCRAM-SHA-512"}
	cl, err := kgo.NewClient(append(kgoSecureOpts(p, sc, bp.addr, testPassword), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("proc"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce over SASL_SSL: %v", err)
	}
	bad, err := kgo.NewClient(kgoSecureOpts(p, sc, bp.addr, wrongPassword)...)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.Ping(testCtx(t)); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestSCRAMNonceForms: the client-final nonce must be server-first's; librdkafka's form
// (its client nonce again in front, which Kafka accepted until 3.x) is accepted too, any
// other prefix is refused.
func TestSCRAMNonceForms(t *testing.T) {
	salt := []byte("0123456789abcdef")
	cred, err := scramCredWithSalt(sha256.New, "pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	final := func(nonce string) string { // a correct proof for this nonce
		salted, _ := pbkdf2.Key(sha256.New, "pencil", salt, 4096, 32)
		clientKey := hmacOf(sha256.New, salted, []byte("Client Key"))
		withoutProof := "c=biws,r=" + nonce
		serverFirst := "r=cnonce" + "snonce,s=" + base64.StdEncoding.EncodeToString(salt) + ",i=4096"
		sig := hmacOf(sha256.New, hashOf(sha256.New, clientKey), []byte("n=user,r=cnonce,"+serverFirst+","+withoutProof))
		for i := range clientKey {
			clientKey[i] ^= sig[i]
		}
		return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(clientKey)
	}
	for nonce, ok := range map[string]bool{"cnoncesnonce": true, "cnoncecnoncesnonce": true, "xcnoncesnonce": false, "cnonce": false} {
		s := &scramServer{mech: scramMechs[0], lookup: credsOf(map[string]scramCred{"user": cred}), testNonce: "snonce"}
		if _, _, err := s.step([]byte("n,,n=user,r=cnonce")); err != nil {
			t.Fatal(err)
		}
		_, done, err := s.step([]byte(final(nonce)))
		if done != ok || (err == nil) != ok {
			t.Errorf("nonce %q: done %v, err %v; want accepted %v", nonce, done, err, ok)
		}
	}
}
