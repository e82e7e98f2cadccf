package broker

// SASL servers for PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802, RFC 7677), as
// Kafka's PlainSaslServer and ScramSaslServer answer them. The Kafka side of the
// exchange (SaslHandshake, SaslAuthenticate, the v0 raw tokens, what is allowed before
// authentication) is in 17_sasl_handshake.go and 36_sasl_authenticate.go.

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// SASLOptions are the SASL settings of the broker's SASL_PLAINTEXT and SASL_SSL listeners.
type SASLOptions struct {
	// Mechanisms are the enabled mechanisms (Kafka's sasl.enabled.mechanisms): PLAIN,
	// SCRAM-SHA-256, SCRAM-SHA-512.
	Mechanisms []string
	// Users maps a user name to its password. SCRAM credentials are derived from it at
	// start, with a random salt and ScramIterations iterations. These users are static,
	// as Kafka's JAAS users: AlterUserScramCredentials cannot change them; other users'
	// SCRAM credentials are set by it and stored (scram_store.go).
	Users map[string]string
}

// saslMechanisms are the mechanisms this broker can serve, in the order Kafka lists them.
var saslMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// ScramIterations is the iteration count of the SCRAM credentials derived at start (the
// minimum Kafka accepts, and its kafka-configs.sh default).
const ScramIterations = 4096

// scramMech is one SCRAM mechanism: its hash and its DescribeUserScramCredentials code.
type scramMech struct {
	name string
	hash func() hash.Hash
	code int8 // ScramMechanism: 1 SCRAM-SHA-256, 2 SCRAM-SHA-512
}

var scramMechs = []scramMech{
	{"SCRAM-SHA-256", sha256.New, 1},
	{"SCRAM-SHA-512", sha512.New, 2},
}

// scramCred is a user's stored credential for one mechanism (RFC 5802 section 3).
type scramCred struct {
	salt                 []byte
	storedKey, serverKey []byte
	iterations           int
}

// saslAuth holds the enabled mechanisms and the users' credentials. Passwords are kept
// for PLAIN only when PLAIN is enabled.
type saslAuth struct {
	mechanisms []string
	plain      map[string]string
	// static are the credentials derived from SASLOptions.Users for the enabled SCRAM
	// mechanisms (mechanism → user → credential); configured names those users, whose
	// SCRAM credentials are the static ones only (the configuration wins).
	static     map[string]map[string]scramCred
	configured map[string]bool

	// stored are the credentials set by AlterUserScramCredentials (scram_store.go),
	// for users not configured, any SCRAM mechanism. Each alteration replaces the whole
	// map (copy on write), so authentications read it without a lock; alterMu
	// serializes alterations and the file writes. path is the file; "" until loaded.
	// writeFile, when set, replaces fsutil.WriteFile (tests make it fail); alterMu
	// guards it.
	stored    atomic.Pointer[scramCreds]
	alterMu   sync.Mutex
	path      string
	writeFile func(path string, data []byte) error
}

// scramCreds: mechanism → user → credential.
type scramCreds map[string]map[string]scramCred

func newSASLAuth(o SASLOptions) (*saslAuth, error) {
	a := &saslAuth{mechanisms: slices.Clone(o.Mechanisms), static: map[string]map[string]scramCred{},
		configured: make(map[string]bool, len(o.Users))}
	a.stored.Store(&scramCreds{})
	for u := range o.Users {
		a.configured[u] = true
	}
	for _, m := range a.mechanisms {
		if m == "PLAIN" {
			a.plain = make(map[string]string, len(o.Users))
			for u, p := range o.Users {
				a.plain[u] = p
			}
		}
		for _, sm := range scramMechs {
			if m != sm.name {
				continue
			}
			creds := make(map[string]scramCred, len(o.Users))
			for u, p := range o.Users {
				c, err := newScramCred(sm.hash, p, ScramIterations)
				if err != nil {
					return nil, fmt.Errorf("broker: cannot derive the %s credential of user %q: %w", m, u, err)
				}
				creds[u] = c
			}
			a.static[m] = creds
		}
	}
	return a, nil
}

// scramEnabled: some SCRAM mechanism is enabled, so SCRAM credentials can be stored.
func (a *saslAuth) scramEnabled() bool {
	return a != nil && len(a.static) > 0
}

// lookup is user's credential for mechanism: the configured one for a configured user,
// else the stored one, as of now (a new connection sees an alteration at once).
func (a *saslAuth) lookup(mechanism, user string) (scramCred, bool) {
	if a.configured[user] {
		c, ok := a.static[mechanism][user]
		return c, ok
	}
	c, ok := (*a.stored.Load())[mechanism][user]
	return c, ok
}

func newScramCred(h func() hash.Hash, password string, iterations int) (scramCred, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return scramCred{}, err
	}
	return scramCredWithSalt(h, password, salt, iterations)
}

func scramCredWithSalt(h func() hash.Hash, password string, salt []byte, iterations int) (scramCred, error) {
	salted, err := pbkdf2.Key(h, password, salt, iterations, h().Size())
	if err != nil {
		return scramCred{}, err
	}
	return scramCredFromSalted(h, salted, salt, iterations), nil
}

// scramCredFromSalted is the credential of a salted password (Hi(password, salt, i)),
// as AlterUserScramCredentials carries it: the stored and server keys are kept, the
// salted password is not.
func scramCredFromSalted(h func() hash.Hash, salted, salt []byte, iterations int) scramCred {
	clientKey := hmacOf(h, salted, []byte("Client Key"))
	return scramCred{salt: slices.Clone(salt), storedKey: hashOf(h, clientKey), serverKey: hmacOf(h, salted, []byte("Server Key")), iterations: iterations}
}

func hmacOf(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

func hashOf(h func() hash.Hash, b []byte) []byte {
	d := h()
	d.Write(b)
	return d.Sum(nil)
}

// scramUsers lists, per user with SCRAM credentials, the mechanisms and iterations
// (DescribeUserScramCredentials): the configured users with the enabled SCRAM
// mechanisms, and the stored users, users sorted by name.
func (a *saslAuth) scramUsers() (names []string, creds map[string][]scramInfo) {
	creds = map[string][]scramInfo{}
	if a == nil {
		return nil, creds
	}
	stored := *a.stored.Load()
	for _, sm := range scramMechs {
		add := func(u string, c scramCred) {
			if _, ok := creds[u]; !ok {
				names = append(names, u)
			}
			creds[u] = append(creds[u], scramInfo{sm.code, int32(c.iterations)})
		}
		for u, c := range a.static[sm.name] {
			add(u, c)
		}
		for u, c := range stored[sm.name] {
			if !a.configured[u] {
				add(u, c)
			}
		}
	}
	sort.Strings(names)
	return names, creds
}

type scramInfo struct {
	mechanism  int8
	iterations int32
}

// saslServer is one connection's exchange for the mechanism it chose.
type saslServer interface {
	// step takes the client's next message and returns the reply and whether the
	// exchange is complete (the client is authenticated). An *authError means the
	// client failed to authenticate.
	step(msg []byte) (reply []byte, done bool, err error)
	// user is the authenticated user, once done.
	user() string
}

// authError is a failed authentication; msg is what the client is told.
type authError struct {
	msg    string
	reason string // for the broker's log, never a password
}

func (e *authError) Error() string { return e.msg + " (" + e.reason + ")" }

func (a *saslAuth) server(mechanism string) (saslServer, bool) {
	if !slices.Contains(a.mechanisms, mechanism) {
		return nil, false
	}
	if mechanism == "PLAIN" {
		return &plainServer{users: a.plain}, true
	}
	for _, sm := range scramMechs {
		if sm.name == mechanism {
			return &scramServer{mech: sm, lookup: func(user string) (scramCred, bool) { return a.lookup(mechanism, user) }}, true
		}
	}
	return nil, false
}

// plainServer: one message, authzid NUL authcid NUL password.
type plainServer struct {
	users map[string]string
	name  string
}

func (s *plainServer) user() string { return s.name }

func (s *plainServer) step(msg []byte) ([]byte, bool, error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return nil, false, &authError{"Invalid SASL/PLAIN response: expected 3 tokens, got " + fmt.Sprint(len(parts)), "malformed PLAIN message"}
	}
	authzid, user, pass := string(parts[0]), string(parts[1]), parts[2]
	if user == "" {
		return nil, false, &authError{"Authentication failed: username not specified", "no user"}
	}
	if len(pass) == 0 {
		return nil, false, &authError{"Authentication failed: password not specified", "no password"}
	}
	want, ok := s.users[user]
	// Compare in constant time, and compare something for unknown users too.
	if subtle.ConstantTimeCompare(pass, []byte(want)) != 1 || !ok {
		return nil, false, &authError{"Authentication failed: Invalid username or password", "bad credentials for user " + strconvQuote(user)}
	}
	if authzid != "" && authzid != user {
		return nil, false, &authError{"Authentication failed: Client requested an authorization id that is different from username", "authzid differs for user " + strconvQuote(user)}
	}
	s.name = user
	return []byte{}, true, nil
}

// scramServer runs RFC 5802's exchange: client-first → server-first, client-final →
// server-final.
type scramServer struct {
	mech   scramMech
	lookup func(user string) (scramCred, bool) // the user's credential, looked up at client-first
	state  int                                 // 0: expecting client-first, 1: expecting client-final, 2: done

	name            string
	cred            scramCred
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	clientNonce     string
	nonce           string // client nonce + server nonce
	testNonce       string // the server nonce, fixed by a test (RFC 7677's example)
}

func (s *scramServer) user() string { return s.name }

// errScramCreds is what a client with an unknown user or a wrong password is told.
const errScramCreds = "Authentication failed: Invalid user credentials"

func (s *scramServer) step(msg []byte) ([]byte, bool, error) {
	var reply []byte
	var err error
	switch s.state {
	case 0:
		reply, err = s.clientFirst(string(msg))
	case 1:
		reply, err = s.clientFinal(string(msg))
	default:
		return nil, false, &authError{"Authentication failed: unexpected SCRAM message", "message after the exchange ended"}
	}
	if err != nil {
		return nil, false, err
	}
	s.state++
	return reply, s.state == 2, nil
}

func malformedScram(what string) error {
	return &authError{"Authentication failed: Invalid SCRAM message: " + what, "malformed SCRAM message: " + what}
}

// clientFirst parses "n,[a=authzid],n=user,r=nonce[,ext…]" and answers
// "r=nonce+server nonce,s=salt,i=iterations".
func (s *scramServer) clientFirst(msg string) ([]byte, error) {
	// gs2 header: cbind flag, authzid, then the bare message.
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return nil, malformedScram("no GS2 header")
	}
	switch {
	case flag == "n" || flag == "y":
	case strings.HasPrefix(flag, "p="):
		return nil, malformedScram("channel binding is not supported")
	default:
		return nil, malformedScram("bad GS2 flag")
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok || (authz != "" && !strings.HasPrefix(authz, "a=")) {
		return nil, malformedScram("bad authzid")
	}
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") || len(attrs[1]) == 2 {
		return nil, malformedScram("want n=user,r=nonce")
	}
	for _, a := range attrs[2:] { // extensions (Kafka's tokenauth): none is acted on
		if strings.HasPrefix(a, "m=") {
			return nil, malformedScram("mandatory extension not supported")
		}
	}
	user, err := saslName(attrs[0][2:])
	if err != nil {
		return nil, err
	}
	if authz != "" {
		if az, err := saslName(authz[2:]); err != nil || az != user {
			return nil, &authError{"Authentication failed: Client requested an authorization id that is different from username", "authzid differs for user " + strconvQuote(user)}
		}
	}
	cred, ok := s.lookup(user)
	if !ok {
		return nil, &authError{errScramCreds, "unknown user " + strconvQuote(user)}
	}
	serverNonce := s.testNonce
	if serverNonce == "" {
		nonce := make([]byte, 24)
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
		serverNonce = base64.RawStdEncoding.EncodeToString(nonce)
	}
	s.name, s.cred = user, cred
	s.gs2Header = flag + "," + authz + ","
	s.clientFirstBare = bare
	s.clientNonce = attrs[1][2:]
	s.nonce = s.clientNonce + serverNonce
	s.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", s.nonce, base64.StdEncoding.EncodeToString(cred.salt), cred.iterations)
	return []byte(s.serverFirst), nil
}

// clientFinal checks "c=gs2 header,r=nonce[,ext…],p=proof" and answers "v=signature".
func (s *scramServer) clientFinal(msg string) ([]byte, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, malformedScram("no proof")
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, malformedScram("want c=…,r=…")
	}
	if cb, err := base64.StdEncoding.DecodeString(attrs[0][2:]); err != nil || string(cb) != s.gs2Header {
		return nil, malformedScram("channel binding does not match the GS2 header")
	}
	// The nonce is the one server-first sent; librdkafka (up to 2.10 at least) sends the
	// client nonce in front of it again, which Kafka accepted until 3.x (endsWith):
	// accepted too, that exact form only. The proof covers the nonce either way.
	if n := attrs[1][2:]; n != s.nonce && n != s.clientNonce+s.nonce {
		return nil, malformedScram("nonce does not match")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	h := s.mech.hash
	if err != nil || len(proof) != h().Size() {
		return nil, malformedScram("bad proof")
	}
	authMessage := []byte(s.clientFirstBare + "," + s.serverFirst + "," + withoutProof)
	sig := hmacOf(h, s.cred.storedKey, authMessage)
	clientKey := make([]byte, len(proof))
	for j := range proof {
		clientKey[j] = proof[j] ^ sig[j]
	}
	if subtle.ConstantTimeCompare(hashOf(h, clientKey), s.cred.storedKey) != 1 {
		return nil, &authError{errScramCreds, "bad proof for user " + strconvQuote(s.name)}
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacOf(h, s.cred.serverKey, authMessage))), nil
}

// saslName decodes RFC 5802's saslname: "=2C" is ',' and "=3D" is '='.
func saslName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", malformedScram("bad saslname escape")
		}
		i += 2
	}
	return b.String(), nil
}

func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return fmt.Sprintf("%q", s)
}
