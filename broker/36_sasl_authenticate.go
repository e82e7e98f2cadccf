package broker

// SaslAuthenticate v0–2.
//
// Behaviour: after a v1 SaslHandshake, each request carries the client's next SASL
// message for the chosen mechanism and is answered with the server's (KIP-152): PLAIN
// takes one message (empty answer), SCRAM two (server-first, then server-final). A
// failed authentication is answered with SASL_AUTHENTICATION_FAILED and the mechanism's
// message (PLAIN "Authentication failed: Invalid username or password", SCRAM
// "Authentication failed: Invalid user credentials"), then the connection is closed, as
// Kafka's SaslServerAuthenticator does. After authentication, and on listeners without
// SASL, the request is answered with ILLEGAL_SASL_STATE ("SaslAuthenticate request
// received after successful authentication", KafkaApis).
//
// Version notes: v1 SessionLifetimeMillis (KIP-368), always 0 here: sessions do not
// expire and re-authentication is not served; v2 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(36, 0, 2, handleSASLAuthenticate) }

func handleSASLAuthenticate(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if !c.unauth || c.sasl == nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate request received after successful authentication"
		resp.ErrorMessage = &msg
		return resp, nil
	}
	reply, done, err := c.sasl.step(req.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := err.Error()
		if ae, ok := err.(*authError); ok {
			msg = ae.msg
		}
		resp.ErrorMessage = &msg
		return resp, err
	}
	resp.SASLAuthBytes = reply
	if done {
		c.authenticated()
	}
	return resp, nil
}
