package broker

// SaslHandshake v0–1.
//
// Behaviour: on a SASL_PLAINTEXT or SASL_SSL listener, before authentication, the client
// names its mechanism (KIP-43). An enabled one (sasl.enabled.mechanisms: PLAIN,
// SCRAM-SHA-256, SCRAM-SHA-512) is answered with NONE and the enabled list; then v1
// continues with SaslAuthenticate requests (KIP-152) and v0 with raw SASL tokens, each
// a size-prefixed message without a Kafka header, answered the same way (an empty
// answer for PLAIN). Another mechanism gets UNSUPPORTED_SASL_MECHANISM with the enabled
// list and the connection is closed, as Kafka's SaslServerAuthenticator does.
//
// Before authentication only ApiVersions (before the handshake), one SaslHandshake and
// then SaslAuthenticate are served; any other request closes the connection without an
// answer (Kafka: "Unexpected Kafka request of type … during SASL handshake"). After
// authentication, and on listeners without SASL, a SaslHandshake is answered with
// ILLEGAL_SASL_STATE, as Kafka's KafkaApis does (no re-authentication, KIP-368).
//
// Version notes: v1 means SaslAuthenticate follows instead of raw tokens.

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(17, 0, 1, handleSASLHandshake) }

func handleSASLHandshake(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	if !c.unauth || c.b.sasl == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	resp.SupportedMechanisms = slices.Clone(c.b.sasl.mechanisms)
	srv, ok := c.b.sasl.server(req.Mechanism)
	if !ok {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return resp, &authError{msg: "Unsupported SASL mechanism " + req.Mechanism,
			reason: fmt.Sprintf("client asked for SASL mechanism %s", strconvQuote(req.Mechanism))}
	}
	c.sasl, c.saslMech, c.saslRaw = srv, req.Mechanism, req.Version == 0
	return resp, nil
}

// allowedBeforeAuth says which requests a connection on a SASL listener may send before
// it is authenticated (see above); anything else closes the connection.
func (c *conn) allowedBeforeAuth(key int16) bool {
	switch key {
	case 18, 17: // ApiVersions, SaslHandshake: before the handshake
		return c.sasl == nil
	case 36: // SaslAuthenticate: after a v1 handshake
		return c.sasl != nil
	}
	return false
}

// rawSASLToken answers one SASL token after a v0 handshake: the reply goes back
// size-prefixed. A failure closes the connection without an answer, as Kafka does.
func (c *conn) rawSASLToken(tok []byte) (*outFrame, error) {
	reply, done, err := c.sasl.step(tok)
	if err != nil {
		return nil, err
	}
	if done {
		c.authenticated()
	}
	buf := make([]byte, 4+len(reply))
	buf[0], buf[1], buf[2], buf[3] = byte(len(reply)>>24), byte(len(reply)>>16), byte(len(reply)>>8), byte(len(reply))
	copy(buf[4:], reply)
	return &outFrame{pieces: []outPiece{{b: buf}}}, nil
}

// authenticated ends the SASL exchange: every request is served from now on.
func (c *conn) authenticated() {
	c.unauth, c.saslRaw = false, false
	c.principal = "User:" + c.sasl.user()
	c.b.log.Debug("client authenticated", "remote", c.remote, "listener", c.l.Name, "mechanism", c.saslMech, "principal", c.principal)
}
