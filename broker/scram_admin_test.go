package broker

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// scramPing authenticates user with pass over the SASL_PLAINTEXT listener (a new
// connection) and returns the client (open, for reuse) and the ping's error.
func scramPing(t *testing.T, b *Broker, mechanism, user, pass string) (*kgo.Client, error) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.ListenerAddr("SASL_PLAINTEXT")), kgo.RequestRetries(0),
		kgo.SASL(kgoSASL(mechanism, user, pass)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, cl.Ping(testCtx(t))
}

// TestAlterUserSCRAMCredentials: kadm's AlterUserSCRAMs stores credentials that franz-go
// clients then authenticate with (SCRAM-SHA-256 and -512) without a restart; a deletion
// makes the next authentication fail but leaves an authenticated connection open; the
// credentials survive a restart; the data dir holds neither the password nor the salted
// password.
func TestAlterUserSCRAMCredentials(t *testing.T) {
	p := newTestPKI(t)
	o := secureOptions(t, p)
	b := startBroker(t, o)
	_, adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)

	salt, salted := []byte("dave's salt, 16+"), bytes.Repeat([]byte{0xd5}, 64) // a known salted password
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "carol", Mechanism: kadm.ScramSha256, Iterations: 8192, Password: "carol-secret"},
		{User: "dave", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "dave-secret"},
	})
	if err != nil || res.Error() != nil {
		t.Fatalf("upsert: %v %+v", err, res)
	}
	for _, tc := range []struct{ mech, user, pass string }{{"SCRAM-SHA-256", "carol", "carol-secret"}, {"SCRAM-SHA-512", "dave", "dave-secret"}} {
		if _, err := scramPing(t, b, tc.mech, tc.user, tc.pass); err != nil {
			t.Fatalf("%s %s after upsert: %v", tc.mech, tc.user, err)
		}
		if _, err := scramPing(t, b, tc.mech, tc.user, "wrong"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("%s %s wrong password: %v", tc.mech, tc.user, err)
		}
	}
	if _, err := scramPing(t, b, "SCRAM-SHA-512", "carol", "carol-secret"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("carol has no SCRAM-SHA-512 credential: %v", err)
	}
	d, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 4 || len(d["carol"].CredInfos) != 1 || d["carol"].CredInfos[0] != (kadm.CredInfo{Mechanism: kadm.ScramSha256, Iterations: 8192}) ||
		len(d["dave"].CredInfos) != 1 || d["dave"].CredInfos[0] != (kadm.CredInfo{Mechanism: kadm.ScramSha512, Iterations: 4096}) || len(d["alice"].CredInfos) != 2 {
		t.Fatalf("describe: %+v", d)
	}

	// Changing a password: the new one works, the old one no longer does.
	if res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "dave", Mechanism: kadm.ScramSha512, Iterations: 4096, Salt: salt, SaltedPassword: salted}}); err != nil || res.Error() != nil {
		t.Fatalf("upsert with a salted password: %v %+v", err, res)
	}
	if _, err := scramPing(t, b, "SCRAM-SHA-512", "dave", "dave-secret"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("dave's old password after the change: %v", err)
	}

	// Deleting carol: her open connection stays, a new one fails.
	carol, err := scramPing(t, b, "SCRAM-SHA-256", "carol", "carol-secret")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "carol", Mechanism: kadm.ScramSha256}}, nil); err != nil || res.Error() != nil {
		t.Fatalf("delete: %v %+v", err, res)
	}
	if _, err := scramPing(t, b, "SCRAM-SHA-256", "carol", "carol-secret"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("carol after deletion: %v", err)
	}
	if err := carol.Ping(ctx); err != nil {
		t.Fatalf("carol's authenticated connection after deletion: %v", err)
	}

	// A restart loads the stored credentials; carol stays deleted.
	carol.Close()
	b = restartBroker(t, b, o)
	_, adm = newAdmin(t, b.Addr())
	d, err = adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d["carol"]; ok || len(d) != 3 || d["dave"].CredInfos[0] != (kadm.CredInfo{Mechanism: kadm.ScramSha512, Iterations: 4096}) {
		t.Fatalf("describe after restart: %+v", d)
	}
	if got, ok := b.sasl.lookup("SCRAM-SHA-512", "dave"); !ok || !got.equal(scramCredFromSalted(scramMechs[1].hash, salted, salt, 4096)) {
		t.Fatalf("dave's credential after restart: %+v", got)
	}
	if _, err := scramPing(t, b, "SCRAM-SHA-256", "carol", "carol-secret"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("carol after restart: %v", err)
	}
	if _, err := scramPing(t, b, "SCRAM-SHA-512", testUser, testPassword); err != nil {
		t.Fatalf("configured user after restart: %v", err)
	}
	// dave's credential was loaded; authenticate with one set from a password.
	if res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "dave", Mechanism: kadm.ScramSha512, Iterations: 16384, Password: "dave-new-secret"}}); err != nil || res.Error() != nil {
		t.Fatalf("upsert: %v %+v", err, res)
	}
	b = restartBroker(t, b, o)
	if _, err := scramPing(t, b, "SCRAM-SHA-512", "dave", "dave-new-secret"); err != nil {
		t.Fatalf("dave after restart: %v", err)
	}

	// Nothing in the data dir holds a password or the salted password.
	secrets := [][]byte{[]byte("carol-secret"), []byte("dave-secret"), []byte("dave-new-secret"), salted,
		[]byte(base64.StdEncoding.EncodeToString(salted))}
	err = filepath.WalkDir(o.Dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range secrets {
			if bytes.Contains(data, s) {
				t.Errorf("%s holds %q", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(o.Dir, scramFile)); err != nil || !strings.Contains(string(data), `"user": "dave"`) {
		t.Fatalf("%s: %v\n%s", scramFile, err, data)
	}
}

func (c scramCred) equal(o scramCred) bool {
	return bytes.Equal(c.salt, o.salt) && bytes.Equal(c.storedKey, o.storedKey) && bytes.Equal(c.serverKey, o.serverKey) && c.iterations == o.iterations
}

// scramDeletion and scramUpsertion build one user's change.
func scramDeletion(user string, mech int8) kmsg.AlterUserSCRAMCredentialsRequestDeletion {
	d := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	d.Name, d.Mechanism = user, mech
	return d
}

func scramUpsertion(user string, mech int8, iterations int32) kmsg.AlterUserSCRAMCredentialsRequestUpsertion {
	u := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
	u.Name, u.Mechanism, u.Iterations = user, mech, iterations
	u.Salt, u.SaltedPassword = []byte("salt"), bytes.Repeat([]byte{1}, 32)
	return u
}

// TestAlterUserSCRAMCredentialsErrors: each user is checked as Kafka's controller
// does; the users without an error are applied; a failed write changes nothing.
func TestAlterUserSCRAMCredentialsErrors(t *testing.T) {
	p := newTestPKI(t)
	b := startBroker(t, secureOptions(t, p))
	cl, _ := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	alter := func(dels []kmsg.AlterUserSCRAMCredentialsRequestDeletion, ups []kmsg.AlterUserSCRAMCredentialsRequestUpsertion) map[string]string {
		t.Helper()
		req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		req.Deletions, req.Upsertions = dels, ups
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range resp.Results {
			if _, dup := got[r.User]; dup {
				t.Errorf("user %q answered twice", r.User)
			}
			s := "OK"
			if r.ErrorCode != 0 {
				s = kerr.ErrorForCode(r.ErrorCode).(*kerr.Error).Message + ": " + *r.ErrorMessage
			}
			got[r.User] = s
		}
		return got
	}
	if got := alter(nil, []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{scramUpsertion("gina", 1, 4096)}); got["gina"] != "OK" {
		t.Fatalf("gina: %v", got)
	}
	got := alter(
		[]kmsg.AlterUserSCRAMCredentialsRequestDeletion{scramDeletion("missing", 1), scramDeletion("unknown-mech", 3),
			scramDeletion("gina", 2), scramDeletion("gina", 1), scramDeletion(testUser, 1), scramDeletion("", 1)},
		[]kmsg.AlterUserSCRAMCredentialsRequestUpsertion{scramUpsertion("few", 1, 4095), scramUpsertion("many", 2, 16385),
			scramUpsertion("gina", 1, 4096), scramUpsertion("hank", 2, 16384), scramUpsertion("bob", 1, 4096),
			scramUpsertion("ivy", 0, 4096), scramUpsertion("hank", 1, 4096), scramUpsertion("jo", 1, 8192)},
	)
	want := map[string]string{
		"missing":      "RESOURCE_NOT_FOUND: Attempt to delete a user credential that does not exist",
		"unknown-mech": "UNSUPPORTED_SASL_MECHANISM: Unknown SCRAM mechanism",
		"gina":         "RESOURCE_NOT_FOUND: Attempt to delete a user credential that does not exist", // SCRAM-SHA-512: none; later mentions unanswered
		testUser:       "INVALID_REQUEST: The SCRAM credentials of user alice are set in the broker's configuration (broker.sasl_users): change them there",
		"":             "UNACCEPTABLE_CREDENTIAL: Username must not be empty",
		"few":          "UNACCEPTABLE_CREDENTIAL: Too few iterations",
		"many":         "UNACCEPTABLE_CREDENTIAL: Too many iterations",
		"hank":         "DUPLICATE_RESOURCE: A user credential cannot be altered twice in the same request",
		"bob":          "INVALID_REQUEST: The SCRAM credentials of user bob are set in the broker's configuration (broker.sasl_users): change them there",
		"ivy":          "UNSUPPORTED_SASL_MECHANISM: Unknown SCRAM mechanism",
		"jo":           "OK",
	}
	for u, w := range want {
		if got[u] != w {
			t.Errorf("%q: %q, want %q", u, got[u], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("results: %v", got)
	}
	// A user in both lists.
	got = alter([]kmsg.AlterUserSCRAMCredentialsRequestDeletion{scramDeletion("gina", 1)},
		[]kmsg.AlterUserSCRAMCredentialsRequestUpsertion{scramUpsertion("gina", 2, 4096)})
	if got["gina"] != "DUPLICATE_RESOURCE: A user credential cannot be altered twice in the same request" {
		t.Errorf("gina in both lists: %v", got)
	}
	names, creds := b.sasl.scramUsers()
	if strings.Join(names, ",") != "alice,bob,gina,jo" || len(creds["gina"]) != 1 || creds["gina"][0] != (scramInfo{1, 4096}) || creds["jo"][0] != (scramInfo{1, 8192}) {
		t.Errorf("users: %v %v", names, creds)
	}

	// A failed write: nothing changes, every change is answered UNKNOWN_SERVER_ERROR.
	b.sasl.alterMu.Lock()
	b.sasl.writeFile = func(string, []byte) error { return errors.New("disk full") }
	b.sasl.alterMu.Unlock()
	got = alter([]kmsg.AlterUserSCRAMCredentialsRequestDeletion{scramDeletion("gina", 1)},
		[]kmsg.AlterUserSCRAMCredentialsRequestUpsertion{scramUpsertion("kim", 1, 4096), scramUpsertion("few", 1, 1)})
	if !strings.HasPrefix(got["gina"], "UNKNOWN_SERVER_ERROR: Cannot store SCRAM credentials: disk full") || got["kim"] != got["gina"] ||
		got["few"] != "UNACCEPTABLE_CREDENTIAL: Too few iterations" {
		t.Errorf("failed write: %v", got)
	}
	if names2, _ := b.sasl.scramUsers(); strings.Join(names2, ",") != strings.Join(names, ",") {
		t.Errorf("users after a failed write: %v", names2)
	}
}

// TestAlterUserSCRAMCredentialsBeforeAuthentication: on a SASL listener, the request
// before authentication closes the connection unanswered.
func TestAlterUserSCRAMCredentialsBeforeAuthentication(t *testing.T) {
	p := newTestPKI(t)
	b := startBroker(t, secureOptions(t, p))
	c := dialRaw(t, b.ListenerAddr("SASL_PLAINTEXT"))
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Upsertions = append(req.Upsertions, scramUpsertion("mallory", 1, 4096))
	c.send(req)
	c.expectClosed()
	if names, _ := b.sasl.scramUsers(); strings.Join(names, ",") != "alice,bob" {
		t.Errorf("users: %v", names)
	}
}

// TestSCRAMFileChecked: a broken credentials file stops the start.
func TestSCRAMFileChecked(t *testing.T) {
	p := newTestPKI(t)
	for _, data := range []string{"{", `{"version":2,"credentials":[]}`,
		`{"version":1,"credentials":[{"user":"x","mechanism":"SCRAM-SHA-1","iterations":4096,"salt":"AA==","stored_key":"","server_key":""}]}`,
		`{"version":1,"credentials":[{"user":"x","mechanism":"SCRAM-SHA-256","iterations":4096,"salt":"AA==","stored_key":"AA==","server_key":"AA=="}]}`} {
		o := secureOptions(t, p)
		if err := os.WriteFile(filepath.Join(o.Dir, scramFile), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(testCtx(t)); err == nil || !strings.Contains(err.Error(), "SCRAM credentials") {
			t.Errorf("%s: start: %v", data, err)
			_ = b.Stop(testCtx(t))
		}
	}
}
