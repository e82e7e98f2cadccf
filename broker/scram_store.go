package broker

// Stored SCRAM credentials: those set by AlterUserScramCredentials
// (51_alter_user_scram_credentials.go), kept in Dir/scram_credentials.json (FORMAT.md)
// and loaded at start. Like Kafka's credential records, a credential is its salt,
// iterations, stored key and server key: neither the password nor the salted password
// is kept.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"

	"github.com/tagpipe/tagpipe/internal/fsutil"
)

// scramFile is the stored credentials' file name in the broker's directory.
const scramFile = "scram_credentials.json"

// scramFileVersion is the version field of scram_credentials.json.
const scramFileVersion = 1

// Iteration bounds of a stored credential, as Kafka's controller checks them (its
// SCRAM mechanisms' minimum and ScramControlManager.MAX_ITERATIONS).
const (
	scramMinIterations = 4096
	scramMaxIterations = 16384
)

type scramFileJSON struct {
	Version     int              `json:"version"`
	Credentials []scramEntryJSON `json:"credentials"`
}

type scramEntryJSON struct {
	User       string `json:"user"`
	Mechanism  string `json:"mechanism"`
	Iterations int    `json:"iterations"`
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// scramMechByName and scramMechByCode find a SCRAM mechanism.
func scramMechByName(name string) (scramMech, bool) {
	i := slices.IndexFunc(scramMechs, func(m scramMech) bool { return m.name == name })
	if i < 0 {
		return scramMech{}, false
	}
	return scramMechs[i], true
}

func scramMechByCode(code int8) (scramMech, bool) {
	i := slices.IndexFunc(scramMechs, func(m scramMech) bool { return m.code == code })
	if i < 0 {
		return scramMech{}, false
	}
	return scramMechs[i], true
}

// loadStored reads path (a missing file is no credentials) and keeps it as the file
// alterations write. It returns the stored users that are also configured: the
// configuration wins for them, their stored credentials are kept but not used.
func (a *saslAuth) loadStored(path string) (shadowed []string, err error) {
	a.alterMu.Lock()
	defer a.alterMu.Unlock()
	a.path = path
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read SCRAM credentials: %w", err)
	}
	creds, err := parseScramFile(data)
	if err != nil {
		return nil, fmt.Errorf("SCRAM credentials file %q: %w", path, err)
	}
	seen := map[string]bool{}
	for _, users := range creds {
		for u := range users {
			if a.configured[u] && !seen[u] {
				seen[u] = true
				shadowed = append(shadowed, u)
			}
		}
	}
	sort.Strings(shadowed)
	a.stored.Store(&creds)
	return shadowed, nil
}

func parseScramFile(data []byte) (scramCreds, error) {
	var f scramFileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, err
	}
	if f.Version != scramFileVersion {
		return nil, fmt.Errorf("version %d, want %d", f.Version, scramFileVersion)
	}
	creds := scramCreds{}
	for _, e := range f.Credentials {
		sm, ok := scramMechByName(e.Mechanism)
		switch {
		case !ok:
			return nil, fmt.Errorf("user %q: unknown mechanism %q", e.User, e.Mechanism)
		case e.User == "":
			return nil, errors.New("a user name is empty")
		case e.Iterations < scramMinIterations || e.Iterations > scramMaxIterations:
			return nil, fmt.Errorf("user %q %s: iterations %d", e.User, e.Mechanism, e.Iterations)
		case len(e.Salt) == 0:
			return nil, fmt.Errorf("user %q %s: no salt", e.User, e.Mechanism)
		case len(e.StoredKey) != sm.hash().Size() || len(e.ServerKey) != sm.hash().Size():
			return nil, fmt.Errorf("user %q %s: keys of %d and %d bytes, want %d", e.User, e.Mechanism, len(e.StoredKey), len(e.ServerKey), sm.hash().Size())
		}
		if creds[sm.name] == nil {
			creds[sm.name] = map[string]scramCred{}
		}
		if _, dup := creds[sm.name][e.User]; dup {
			return nil, fmt.Errorf("user %q %s listed twice", e.User, e.Mechanism)
		}
		creds[sm.name][e.User] = scramCred{salt: e.Salt, storedKey: e.StoredKey, serverKey: e.ServerKey, iterations: e.Iterations}
	}
	return creds, nil
}

// marshalScramFile is the file for creds: entries sorted by user, then mechanism.
func marshalScramFile(creds scramCreds) []byte {
	f := scramFileJSON{Version: scramFileVersion, Credentials: []scramEntryJSON{}}
	for _, sm := range scramMechs {
		for u, c := range creds[sm.name] {
			f.Credentials = append(f.Credentials, scramEntryJSON{User: u, Mechanism: sm.name, Iterations: c.iterations,
				Salt: c.salt, StoredKey: c.storedKey, ServerKey: c.serverKey})
		}
	}
	sort.SliceStable(f.Credentials, func(i, j int) bool { return f.Credentials[i].User < f.Credentials[j].User })
	data, _ := json.MarshalIndent(f, "", " ")
	return append(data, '\n')
}

// scramChange is one user's alteration: a deletion (cred unset) or an upsertion.
type scramChange struct {
	user, mechanism string
	del             bool
	cred            scramCred
}

// applyStoredLocked applies changes to the stored credentials at once: the file is
// rewritten (synced) first, and new connections see the new credentials once it is
// in place. On an error nothing changed, unless the error is fsutil.ErrNotSynced (the
// file was replaced, its directory not synced): the change is then in effect.
// alterMu must be held.
func (a *saslAuth) applyStoredLocked(changes []scramChange) error {
	old := *a.stored.Load()
	next := make(scramCreds, len(old)+1)
	for m, users := range old {
		next[m] = make(map[string]scramCred, len(users)+1)
		for u, c := range users {
			next[m][u] = c
		}
	}
	for _, ch := range changes {
		if ch.del {
			delete(next[ch.mechanism], ch.user)
			if len(next[ch.mechanism]) == 0 {
				delete(next, ch.mechanism)
			}
			continue
		}
		if next[ch.mechanism] == nil {
			next[ch.mechanism] = map[string]scramCred{}
		}
		next[ch.mechanism][ch.user] = ch.cred
	}
	write := fsutil.WriteFile
	if a.writeFile != nil {
		write = a.writeFile
	}
	err := write(a.path, marshalScramFile(next))
	if err == nil || errors.Is(err, fsutil.ErrNotSynced) {
		a.stored.Store(&next)
	}
	return err
}
