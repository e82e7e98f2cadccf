package broker

// AlterUserScramCredentials v0.
//
// Behaviour: served when a SASL listener has a SCRAM mechanism enabled (KIP-554, as
// kafka-configs.sh --alter --add-config 'SCRAM-SHA-256=[…]' --entity-type users and
// kadm's AlterUserSCRAMs send it). Each upsertion carries a mechanism, iterations, salt
// and salted password (computed by the client); the broker keeps the salt, iterations
// and the stored and server keys derived from it (scram_store.go), never a password.
// Deletions and upsertions of one request are applied at once: the file
// (scram_credentials.json, FORMAT.md) is rewritten and synced before the answer, and new
// connections authenticate against the new credentials from then on; connections
// already authenticated stay open, as in Kafka. If the file cannot be written nothing
// changes and every user that would have changed gets UNKNOWN_SERVER_ERROR.
//
// Users are checked as Kafka's ScramControlManager.alterCredentials does, deletions
// first, then upsertions: a user named a second time (in either list, whatever the
// mechanism) is DUPLICATE_RESOURCE ("A user credential cannot be altered twice in the
// same request") and its earlier change is dropped; once a user has an error, later
// mentions are not answered again. An empty name is UNACCEPTABLE_CREDENTIAL ("Username
// must not be empty"), a mechanism other than 1 (SCRAM-SHA-256) or 2 (SCRAM-SHA-512)
// UNSUPPORTED_SASL_MECHANISM ("Unknown SCRAM mechanism"), iterations outside
// 4096..16384 UNACCEPTABLE_CREDENTIAL ("Too few iterations" / "Too many iterations"),
// deleting a credential that does not exist RESOURCE_NOT_FOUND ("Attempt to delete a
// user credential that does not exist"). A mechanism may be stored without being
// enabled on a listener, as in Kafka (the controller does not know the listeners).
//
// Differences: a user of broker.sasl_users is static, as Kafka's JAAS users are: its
// credentials come from the configuration at every start and cannot be altered here
// (INVALID_REQUEST, "… is set in the broker's configuration (broker.sasl_users)"). An
// empty salt or salted password is UNACCEPTABLE_CREDENTIAL (Kafka fails computing the
// keys). Results are in the order users were first named (Kafka's order is a hash
// map's). Without a SCRAM mechanism on a SASL listener every user named is refused
// once with UNSUPPORTED_VERSION ("SCRAM credentials cannot be stored: …"), as Kafka's
// controller refuses users when its metadata version cannot store SCRAM credentials.
// There are no ACLs: any client that may send requests may alter credentials, as in
// Kafka without an authorizer (a PLAINTEXT listener included); before SASL
// authentication the request closes the connection (17_sasl_handshake.go).
//
// Version notes: v0 flexible.

import (
	"errors"

	"github.com/tagpipe/tagpipe/internal/fsutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(51, 0, 0, handleAlterUserSCRAMCredentials) }

func handleAlterUserSCRAMCredentials(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	a := c.b.sasl
	if !c.allowedCluster(kmsg.ACLOperationAlter) { // as Kafka's handleAlterUserScramCredentialsRequest
		refuseSCRAMAlterations(req, resp, terr(kerr.ClusterAuthorizationFailed, "%s", kerr.ClusterAuthorizationFailed.Description))
		return resp, nil
	}
	if !a.scramEnabled() {
		refuseSCRAMAlterations(req, resp, terr(kerr.UnsupportedVersion, "SCRAM credentials cannot be stored: no SASL listener has a SCRAM mechanism enabled (broker.sasl_enabled_mechanisms)"))
		return resp, nil
	}
	a.alterMu.Lock()
	defer a.alterMu.Unlock()
	stored := *a.stored.Load()

	var order []string                  // users in the order first named
	errs := map[string]*topicError{}    // users refused
	changes := map[string]scramChange{} // users accepted so far
	name := func(user string) bool {    // false: the user already has an error
		if _, bad := errs[user]; bad {
			return false
		}
		if _, dup := changes[user]; dup {
			delete(changes, user)
			errs[user] = terr(kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
			return false
		}
		order = append(order, user)
		return true
	}
	check := func(user string, code int8) (scramMech, *topicError) {
		sm, ok := scramMechByCode(code)
		switch {
		case user == "":
			return sm, terr(kerr.UnacceptableCredential, "Username must not be empty")
		case !ok:
			return sm, terr(kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
		case a.configured[user]:
			return sm, terr(kerr.InvalidRequest, "The SCRAM credentials of user %s are set in the broker's configuration (broker.sasl_users): change them there", user)
		}
		return sm, nil
	}
	for _, d := range req.Deletions {
		if !name(d.Name) {
			continue
		}
		sm, e := check(d.Name, d.Mechanism)
		if e == nil {
			if _, ok := stored[sm.name][d.Name]; !ok {
				e = terr(kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist")
			}
		}
		if e != nil {
			errs[d.Name] = e
			continue
		}
		changes[d.Name] = scramChange{user: d.Name, mechanism: sm.name, del: true}
	}
	for _, u := range req.Upsertions {
		if !name(u.Name) {
			continue
		}
		sm, e := check(u.Name, u.Mechanism)
		switch {
		case e != nil:
		case u.Iterations < scramMinIterations:
			e = terr(kerr.UnacceptableCredential, "Too few iterations")
		case u.Iterations > scramMaxIterations:
			e = terr(kerr.UnacceptableCredential, "Too many iterations")
		case len(u.Salt) == 0 || len(u.SaltedPassword) == 0:
			e = terr(kerr.UnacceptableCredential, "The salt and the salted password must not be empty")
		}
		if e != nil {
			errs[u.Name] = e
			continue
		}
		changes[u.Name] = scramChange{user: u.Name, mechanism: sm.name,
			cred: scramCredFromSalted(sm.hash, u.SaltedPassword, u.Salt, int(u.Iterations))}
	}

	if len(changes) > 0 {
		list := make([]scramChange, 0, len(changes))
		for _, user := range order {
			if ch, ok := changes[user]; ok {
				list = append(list, ch)
			}
		}
		if err := a.applyStoredLocked(list); err != nil {
			if !errors.Is(err, fsutil.ErrNotSynced) {
				c.b.log.Error("cannot store SCRAM credentials", "err", err)
				for _, ch := range list {
					errs[ch.user] = terr(kerr.UnknownServerError, "Cannot store SCRAM credentials: %v", err)
				}
			} else {
				c.b.log.Warn("SCRAM credentials stored, directory not synced", "err", err)
			}
		}
		for _, ch := range list {
			if _, bad := errs[ch.user]; !bad {
				op := "set"
				if ch.del {
					op = "deleted"
				}
				c.b.log.Info("SCRAM credential "+op, "user", ch.user, "mechanism", ch.mechanism, "principal", c.principal)
			}
		}
	}
	for _, user := range order {
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = user
		if e, bad := errs[user]; bad {
			e.set(&r.ErrorCode, &r.ErrorMessage)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

// refuseSCRAMAlterations answers every user named once with UNSUPPORTED_VERSION: no
// SASL listener has a SCRAM mechanism enabled, so there is nothing to store for.
func refuseSCRAMAlterations(req *kmsg.AlterUserSCRAMCredentialsRequest, resp *kmsg.AlterUserSCRAMCredentialsResponse, e *topicError) {
	names := make([]string, 0, len(req.Deletions)+len(req.Upsertions))
	for _, d := range req.Deletions {
		names = append(names, d.Name)
	}
	for _, u := range req.Upsertions {
		names = append(names, u.Name)
	}
	answered := map[string]bool{}
	for _, name := range names {
		if answered[name] {
			continue
		}
		answered[name] = true
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = name
		e.set(&r.ErrorCode, &r.ErrorMessage)
		resp.Results = append(resp.Results, r)
	}
}
