package pgwire

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it: no channel binding, the user
// name comes from the startup message (the SCRAM n= attribute is ignored).
const scramIterations = 4096

var errAuth = errors.New("password authentication failed")

// authenticate runs the configured password exchange; nil means the client proved it
// knows the password.
func (c *conn) authenticate(user string) error {
	if c.srv.opts.Password == "" {
		return nil
	}
	var err error
	if c.srv.opts.Auth == "md5" {
		err = c.authMD5(user)
	} else {
		err = c.authSCRAM()
	}
	if err == nil && subtle.ConstantTimeCompare([]byte(user), []byte(c.srv.opts.User)) != 1 {
		err = errAuth
	}
	return err
}

func (c *conn) authMD5(user string) error {
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	c.be.Send(&pgproto3.AuthenticationMD5Password{Salt: salt})
	if err := c.be.Flush(); err != nil {
		return err
	}
	if err := c.be.SetAuthType(pgproto3.AuthTypeMD5Password); err != nil {
		return err
	}
	msg, err := c.be.Receive()
	if err != nil {
		return err
	}
	pm, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		return fmt.Errorf("want a password message, got %T", msg)
	}
	inner := md5.Sum([]byte(c.srv.opts.Password + user))
	outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), salt[:]...))
	want := "md5" + hex.EncodeToString(outer[:])
	if subtle.ConstantTimeCompare([]byte(pm.Password), []byte(want)) != 1 {
		return errAuth
	}
	return nil
}

func (c *conn) authSCRAM() error {
	c.be.Send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}})
	if err := c.be.Flush(); err != nil {
		return err
	}
	if err := c.be.SetAuthType(pgproto3.AuthTypeSASL); err != nil {
		return err
	}
	msg, err := c.be.Receive()
	if err != nil {
		return err
	}
	first, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok {
		return fmt.Errorf("want SASLInitialResponse, got %T", msg)
	}
	if first.AuthMechanism != "SCRAM-SHA-256" {
		return fmt.Errorf("unsupported SASL mechanism %q", first.AuthMechanism)
	}
	clientFirst := string(first.Data)
	// gs2-header: "n,," (no channel binding) or "y,," (client could, server does not).
	parts := strings.SplitN(clientFirst, ",", 3)
	if len(parts) != 3 || (parts[0] != "n" && parts[0] != "y") {
		return fmt.Errorf("malformed SCRAM client-first-message")
	}
	gs2 := parts[0] + "," + parts[1] + ","
	clientFirstBare := parts[2]
	clientNonce := scramAttr(clientFirstBare, 'r')
	if clientNonce == "" {
		return fmt.Errorf("SCRAM client-first-message has no nonce")
	}
	var snonce [18]byte
	var salt [16]byte
	_, _ = rand.Read(snonce[:])
	_, _ = rand.Read(salt[:])
	nonce := clientNonce + base64.StdEncoding.EncodeToString(snonce[:])
	serverFirst := "r=" + nonce + ",s=" + base64.StdEncoding.EncodeToString(salt[:]) + ",i=" + strconv.Itoa(scramIterations)
	c.be.Send(&pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)})
	if err := c.be.Flush(); err != nil {
		return err
	}
	if err := c.be.SetAuthType(pgproto3.AuthTypeSASLContinue); err != nil {
		return err
	}
	msg, err = c.be.Receive()
	if err != nil {
		return err
	}
	resp, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		return fmt.Errorf("want SASLResponse, got %T", msg)
	}
	clientFinal := string(resp.Data)
	i := strings.LastIndex(clientFinal, ",p=")
	if i < 0 {
		return fmt.Errorf("SCRAM client-final-message has no proof")
	}
	withoutProof := clientFinal[:i]
	proof, err := base64.StdEncoding.DecodeString(clientFinal[i+3:])
	if err != nil || len(proof) != sha256.Size {
		return errAuth
	}
	if scramAttr(withoutProof, 'c') != base64.StdEncoding.EncodeToString([]byte(gs2)) || scramAttr(withoutProof, 'r') != nonce {
		return errAuth
	}
	salted, err := pbkdf2.Key(sha256.New, c.srv.opts.Password, salt[:], scramIterations, sha256.Size)
	if err != nil {
		return err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	authMessage := clientFirstBare + "," + serverFirst + "," + withoutProof
	sig := hmacSHA256(storedKey[:], authMessage)
	got := make([]byte, len(proof))
	for k := range proof {
		got[k] = proof[k] ^ sig[k]
	}
	// got is the client key the proof claims; it must hash to the stored key.
	gotStored := sha256.Sum256(got)
	if subtle.ConstantTimeCompare(gotStored[:], storedKey[:]) != 1 {
		return errAuth
	}
	serverSig := hmacSHA256(hmacSHA256(salted, "Server Key"), authMessage)
	c.be.Send(&pgproto3.AuthenticationSASLFinal{Data: []byte("v=" + base64.StdEncoding.EncodeToString(serverSig))})
	return nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// scramAttr finds "k=value" in a comma-separated SCRAM message.
func scramAttr(msg string, k byte) string {
	for _, p := range strings.Split(msg, ",") {
		if len(p) >= 2 && p[0] == k && p[1] == '=' {
			return p[2:]
		}
	}
	return ""
}
