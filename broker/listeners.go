package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Security protocols of a listener (Kafka's listener.security.protocol.map values).
const (
	Plaintext     = "PLAINTEXT"
	SSL           = "SSL"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
)

// Listener is one of the broker's listeners (Kafka's listeners / advertised.listeners
// entry, with its listener.security.protocol.map value).
type Listener struct {
	// Name is the listener name (Kafka's INTERNAL, EXTERNAL, …); empty means the
	// security protocol's name.
	Name string
	// Listen is host:port; port 0 picks a free one (see ListenerAddr).
	Listen string
	// AdvertisedHost / AdvertisedPort are what Metadata, FindCoordinator and
	// DescribeCluster answer to a client connected to this listener; empty / 0 means the
	// listener's actual host / port.
	AdvertisedHost string
	AdvertisedPort int
	// SecurityProtocol is PLAINTEXT (empty), SSL, SASL_PLAINTEXT or SASL_SSL; a name that
	// is one of these and no protocol means that protocol, as in Kafka.
	SecurityProtocol string
}

func (l Listener) tls() bool { return l.SecurityProtocol == SSL || l.SecurityProtocol == SASLSSL }
func (l Listener) sasl() bool {
	return l.SecurityProtocol == SASLPlaintext || l.SecurityProtocol == SASLSSL
}

// TLSOptions are the broker's certificate and client-certificate policy, shared by its
// SSL and SASL_SSL listeners (Kafka's ssl.* broker settings, with PEM files).
type TLSOptions struct {
	// CertFile and KeyFile are the server certificate (chain) and its key, PEM.
	CertFile, KeyFile string
	// CAFile holds the PEM certificates that client certificates must chain to.
	CAFile string
	// ClientAuth is Kafka's ssl.client.auth: none (empty), requested or required.
	ClientAuth string
}

// listener is a started Listener: its socket and the address it advertises.
type listener struct {
	Listener
	ln      net.Listener
	advHost string
	advPort int32
	tlsCfg  *tls.Config // SSL and SASL_SSL listeners
}

var listenerNameRe = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// checkListeners fills in opts.Listeners (one PLAINTEXT listener from Listen and the
// advertised pair when none is given) and refuses what cannot work: duplicate names,
// unknown protocols, a TLS listener without a certificate, a SASL listener without
// mechanisms or users.
func checkListeners(opts *Options) error {
	if len(opts.Listeners) == 0 {
		opts.Listeners = []Listener{{Name: Plaintext, Listen: opts.Listen,
			AdvertisedHost: opts.AdvertisedHost, AdvertisedPort: opts.AdvertisedPort, SecurityProtocol: Plaintext}}
	} else {
		opts.Listeners = slices.Clone(opts.Listeners)
	}
	seen := map[string]bool{}
	var anyTLS, anySASL bool
	for i := range opts.Listeners {
		l := &opts.Listeners[i]
		if l.SecurityProtocol == "" {
			l.SecurityProtocol = Plaintext
			if isProtocol(strings.ToUpper(l.Name)) {
				l.SecurityProtocol = strings.ToUpper(l.Name)
			}
		}
		if !isProtocol(l.SecurityProtocol) {
			return fmt.Errorf("broker: listener %q: security protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", l.Name, l.SecurityProtocol)
		}
		if l.Name == "" {
			l.Name = l.SecurityProtocol
		}
		if !listenerNameRe.MatchString(l.Name) {
			return fmt.Errorf("broker: listener name %q: want letters, digits and _", l.Name)
		}
		if seen[strings.ToUpper(l.Name)] {
			return fmt.Errorf("broker: listener name %q used twice", l.Name)
		}
		seen[strings.ToUpper(l.Name)] = true
		if _, _, err := net.SplitHostPort(l.Listen); err != nil {
			return fmt.Errorf("broker: listener %q: address %q: %v", l.Name, l.Listen, err)
		}
		if l.AdvertisedPort < 0 || l.AdvertisedPort > 65535 {
			return fmt.Errorf("broker: listener %q: advertised port %d", l.Name, l.AdvertisedPort)
		}
		anyTLS = anyTLS || l.tls()
		anySASL = anySASL || l.sasl()
	}
	if anySASL {
		if len(opts.SASL.Mechanisms) == 0 {
			return errors.New("broker: a SASL listener needs at least one SASL mechanism")
		}
		for _, m := range opts.SASL.Mechanisms {
			if !slices.Contains(saslMechanisms, m) {
				return fmt.Errorf("broker: SASL mechanism %q: want one of %s", m, strings.Join(saslMechanisms, ", "))
			}
		}
		// With SCRAM, the users may all be stored ones (scram_store.go), as in Kafka;
		// PLAIN's come from the options only.
		scram := slices.ContainsFunc(opts.SASL.Mechanisms, func(m string) bool { return strings.HasPrefix(m, "SCRAM-") })
		if len(opts.SASL.Users) == 0 && !scram {
			return errors.New("broker: a SASL listener with PLAIN only needs at least one SASL user")
		}
	}
	if anyTLS && (opts.TLS.CertFile == "" || opts.TLS.KeyFile == "") {
		return errors.New("broker: an SSL or SASL_SSL listener needs a certificate and its key (TLS.CertFile, TLS.KeyFile)")
	}
	return nil
}

func isProtocol(p string) bool {
	return p == Plaintext || p == SSL || p == SASLPlaintext || p == SASLSSL
}

// serverTLSConfig loads the certificate, key and client CA for the TLS listeners.
func serverTLSConfig(o TLSOptions) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("broker: cannot load the TLS certificate %q and key %q: %w", o.CertFile, o.KeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch o.ClientAuth {
	case "", "none":
		cfg.ClientAuth = tls.NoClientCert
	case "requested":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "required":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, fmt.Errorf("broker: TLS client auth %q: want none, requested or required", o.ClientAuth)
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("broker: cannot read the TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker: TLS CA file %q holds no PEM certificate", o.CAFile)
		}
		cfg.ClientCAs = pool
	} else if cfg.ClientAuth != tls.NoClientCert {
		return nil, fmt.Errorf("broker: TLS client auth %q needs a CA file to check client certificates against", o.ClientAuth)
	}
	return cfg, nil
}

// listen opens every listener; on failure it closes those it opened.
func (b *Broker) listen(ctx context.Context) error {
	var lc net.ListenConfig
	for _, l := range b.opts.Listeners {
		ln, err := lc.Listen(ctx, "tcp", l.Listen)
		if err != nil {
			b.closeListeners()
			return fmt.Errorf("cannot listen on %q (listener %s): %w", l.Listen, l.Name, err)
		}
		bl := &listener{Listener: l, ln: ln}
		host, port, _ := net.SplitHostPort(ln.Addr().String())
		bl.advHost = host
		if l.AdvertisedHost != "" {
			bl.advHost = l.AdvertisedHost
		}
		p, _ := strconv.Atoi(port)
		if l.AdvertisedPort != 0 {
			p = l.AdvertisedPort
		}
		bl.advPort = int32(p)
		if l.tls() {
			bl.tlsCfg = b.tlsCfg
		}
		b.listeners = append(b.listeners, bl)
	}
	return nil
}

func (b *Broker) closeListeners() {
	for _, l := range b.listeners {
		_ = l.ln.Close()
	}
}

// ListenerAddr is the address the named listener is bound to (useful with port 0); empty
// before Start or for an unknown name.
func (b *Broker) ListenerAddr(name string) string {
	for _, l := range b.listeners {
		if strings.EqualFold(l.Name, name) {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// tlsHandshakeTimeout bounds a TLS handshake, so a client that connects and says nothing
// (or speaks plaintext and waits for an answer) does not hold a connection.
const tlsHandshakeTimeout = 10 * time.Second

// handshake completes the TLS handshake of a connection on a TLS listener; a failure is
// logged and the connection is closed by the caller.
func (c *conn) handshake() error {
	tc := c.nc.(*tls.Conn)
	ctx, cancel := context.WithTimeout(c.ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		c.principal = "User:" + certs[0].Subject.String()
		c.b.log.Debug("TLS client certificate", "remote", c.remote, "listener", c.l.Name, "principal", c.principal)
	}
	return nil
}

// listenerList is the listener list for DescribeConfigs, NAME://host:port,… (bound or
// advertised addresses), and the listener.security.protocol.map, NAME:PROTOCOL,…
func (b *Broker) listenerList(advertised bool) (list, protocols string) {
	var ls, ps []string
	for _, l := range b.listeners {
		addr := l.ln.Addr().String()
		if advertised {
			addr = net.JoinHostPort(l.advHost, strconv.Itoa(int(l.advPort)))
		}
		ls = append(ls, l.Name+"://"+addr)
		ps = append(ps, l.Name+":"+l.SecurityProtocol)
	}
	return strings.Join(ls, ","), strings.Join(ps, ",")
}

// advertised is the address the connection's listener advertises (Metadata,
// FindCoordinator, DescribeCluster), as Kafka answers per listener name.
func (c *conn) advertised() (string, int32) {
	if c.l == nil { // a conn built by a test, without a listener
		return "", -1
	}
	return c.l.advHost, c.l.advPort
}
