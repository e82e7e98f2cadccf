package quota

// The quota store: every entity's quotas, kept in one JSON file (client_quotas.json in
// the broker's directory, FORMAT.md) that each alteration replaces atomically, and read
// by the connections through an atomic pointer to an immutable Quotas, so a change takes
// effect for live connections at their next request and a request never waits on an
// alteration's fsync.

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/tagpipe/tagpipe/internal/fsutil"
)

// FileName is the store's file in the broker's directory.
const FileName = "client_quotas.json"

// fileVersion is the version field of client_quotas.json.
const fileVersion = 1

// Values are an entity's quotas by type; 0 is no quota of that type (a quota is > 0).
type Values [numTypes]float64

// Quotas is an immutable set of entities and their quotas.
type Quotas struct {
	entities map[Entity]Values
	count    [numTypes]int // entities with a quota of each type
	// ips are the named ip entities' connection_creation_rate by canonical address
	// (CanonicalIP): two names of one address ("::1", "0:0:0:0:0:0:0:1") are two
	// entities, as in Kafka, and the first in name order applies.
	ips map[string]float64
}

// Empty reports whether no quota of any type is set.
func (q *Quotas) Empty() bool { return q == nil || len(q.entities) == 0 }

// Has reports whether some entity has a quota of type t.
func (q *Quotas) Has(t Type) bool { return q != nil && q.count[t] > 0 }

// Get returns an entity's quotas.
func (q *Quotas) Get(e Entity) (Values, bool) {
	if q == nil {
		return Values{}, false
	}
	v, ok := q.entities[e]
	return v, ok
}

func newQuotas(m map[Entity]Values) *Quotas {
	q := &Quotas{entities: m, ips: map[string]float64{}}
	ipNames := map[string]string{}
	for e, v := range m {
		for t := range numTypes {
			if v[t] != 0 {
				q.count[t]++
			}
		}
		if e.IP.Kind != Named || v[ConnectionCreation] == 0 {
			continue
		}
		ip, ok := CanonicalIP(e.IP.Name)
		if !ok {
			panic(fmt.Sprintf("BUG: ip quota entity %q is not an IP address", e.IP.Name))
		}
		if prev, dup := ipNames[ip]; !dup || e.IP.Name < prev {
			ipNames[ip] = e.IP.Name
			q.ips[ip] = v[ConnectionCreation]
		}
	}
	return q
}

// EntityQuotas is one entity with its quotas, as DescribeClientQuotas lists it.
type EntityQuotas struct {
	Entity Entity
	Values Values
}

// Match is one component of a DescribeClientQuotas filter.
type Match uint8

const (
	MatchNone    Match = iota // the filter does not name this entity type
	MatchExact                // the entity's component is this name
	MatchDefault              // the entity's component is the default
	MatchAny                  // the entity has a component of this type (named or default)
)

// Filter is a DescribeClientQuotas filter over the user, client-id and ip components.
// Strict: an entity matches only if it has no component the filter does not name.
type Filter struct {
	User, ClientID, IP             Match
	UserName, ClientIDName, IPName string // with MatchExact
	Strict                         bool
}

// Describe lists the entities that match f, as Kafka's ClientQuotasImage.describe
// matches them, sorted by entity.
func (q *Quotas) Describe(f Filter) []EntityQuotas {
	var out []EntityQuotas
	if q == nil {
		return out
	}
	for e, v := range q.entities {
		if matches(e.User, f.User, f.UserName, f.Strict) && matches(e.ClientID, f.ClientID, f.ClientIDName, f.Strict) &&
			matches(e.IP, f.IP, f.IPName, f.Strict) {
			out = append(out, EntityQuotas{Entity: e, Values: v})
		}
	}
	slices.SortFunc(out, func(a, b EntityQuotas) int { return compareEntity(a.Entity, b.Entity) })
	return out
}

func matches(n Name, m Match, name string, strict bool) bool {
	switch m {
	case MatchNone:
		return !strict || n.Kind == Absent
	case MatchExact:
		return n.Kind == Named && n.Name == name
	case MatchDefault:
		return n.Kind == Default
	default: // MatchAny
		return n.Kind != Absent
	}
}

func compareName(a, b Name) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
}

func compareEntity(a, b Entity) int {
	return cmp.Or(compareName(a.IP, b.IP), compareName(a.User, b.User), compareName(a.ClientID, b.ClientID))
}

// Alteration changes one entity's quotas: Set values (> 0) and Remove types. Removing a
// quota that is not set is no change.
type Alteration struct {
	Entity Entity
	Set    map[Type]float64
	Remove []Type
}

// Store holds the current Quotas and the file they are kept in.
type Store struct {
	path string
	// mu serializes alterations and the file; readers only load cur.
	mu  sync.Mutex
	cur atomic.Pointer[Quotas]
	// writeFile replaces the file (fsutil.WriteFile; tests inject failures).
	writeFile func(path string, data []byte) error
}

// Open loads the store kept at path; a missing file is no quotas.
func Open(path string) (*Store, error) {
	s := &Store{path: path, writeFile: fsutil.WriteFile}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		s.cur.Store(newQuotas(map[Entity]Values{}))
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read client quotas: %w", err)
	}
	q, err := parseFile(data)
	if err != nil {
		return nil, fmt.Errorf("client quotas file %q: %w", path, err)
	}
	s.cur.Store(q)
	return s, nil
}

// Load returns the current quotas (never nil once opened; nil on a nil Store).
func (s *Store) Load() *Quotas {
	if s == nil {
		return nil
	}
	return s.cur.Load()
}

// Alter applies the alterations together: the file is replaced (synced) first, and
// connections see the new quotas once it is in place. On an error nothing changed,
// unless the error is fsutil.ErrNotSynced (the file was replaced, its directory not
// synced): the change is then in effect.
func (s *Store) Alter(alts []Alteration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	next := make(map[Entity]Values, len(old.entities)+len(alts))
	for e, v := range old.entities {
		next[e] = v
	}
	for _, a := range alts {
		v := next[a.Entity]
		for _, t := range a.Remove {
			v[t] = 0
		}
		for t, val := range a.Set {
			if !(val > 0) {
				panic(fmt.Sprintf("BUG: quota %s of %s set to %v", Keys[t], a.Entity, val))
			}
			v[t] = val
		}
		if v == (Values{}) {
			delete(next, a.Entity) // as Kafka: an entity with no quota left is gone
			continue
		}
		next[a.Entity] = v
	}
	q := newQuotas(next)
	err := s.writeFile(s.path, marshalFile(q))
	if err == nil || errors.Is(err, fsutil.ErrNotSynced) {
		s.cur.Store(q)
	}
	return err
}

type fileJSON struct {
	Version int          `json:"version"`
	Quotas  []entityJSON `json:"quotas"`
}

type entityJSON struct {
	// Entity maps an entity type (user, client-id, ip) to its name; null is the default.
	Entity map[string]*string `json:"entity"`
	Values map[string]float64 `json:"values"`
}

func marshalFile(q *Quotas) []byte {
	f := fileJSON{Version: fileVersion, Quotas: []entityJSON{}}
	for _, eq := range q.Describe(Filter{}) {
		ej := entityJSON{Entity: map[string]*string{}, Values: map[string]float64{}}
		for typ, n := range map[string]Name{"user": eq.Entity.User, "client-id": eq.Entity.ClientID, "ip": eq.Entity.IP} {
			switch n.Kind {
			case Named:
				ej.Entity[typ] = &n.Name
			case Default:
				ej.Entity[typ] = nil
			}
		}
		for t, v := range eq.Values {
			if v != 0 {
				ej.Values[Keys[t]] = v
			}
		}
		f.Quotas = append(f.Quotas, ej)
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		panic("BUG: cannot encode client quotas: " + err.Error())
	}
	return append(data, '\n')
}

func parseFile(data []byte) (*Quotas, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("cannot parse: %w", err)
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("version %d, want %d", f.Version, fileVersion)
	}
	m := make(map[Entity]Values, len(f.Quotas))
	for i, ej := range f.Quotas {
		var e Entity
		for typ, name := range ej.Entity {
			n := DefaultName
			if name != nil {
				if *name == "" {
					return nil, fmt.Errorf("quota %d: empty %s name", i, typ)
				}
				n = N(*name)
			}
			switch typ {
			case "user":
				e.User = n
			case "client-id":
				e.ClientID = n
			case "ip":
				if name != nil {
					if _, ok := CanonicalIP(*name); !ok {
						return nil, fmt.Errorf("quota %d: ip %q is not an IP address", i, *name)
					}
				}
				e.IP = n
			default:
				return nil, fmt.Errorf("quota %d: unknown entity type %q", i, typ)
			}
		}
		if e == (Entity{}) {
			return nil, fmt.Errorf("quota %d: empty entity", i)
		}
		if e.IP.Kind != Absent && (e.User.Kind != Absent || e.ClientID.Kind != Absent) {
			return nil, fmt.Errorf("quota %d: entity %s combines ip with user or client-id", i, e)
		}
		if _, dup := m[e]; dup {
			return nil, fmt.Errorf("quota %d: entity %s listed twice", i, e)
		}
		var v Values
		for key, val := range ej.Values {
			t, ok := TypeForKey(key)
			if !ok {
				return nil, fmt.Errorf("quota %d (%s): unknown key %q", i, e, key)
			}
			if !(val > 0) {
				return nil, fmt.Errorf("quota %d (%s): %s is %v, want > 0", i, e, key, val)
			}
			if (t == ConnectionCreation) != (e.IP.Kind != Absent) {
				return nil, fmt.Errorf("quota %d (%s): key %q is not a quota of this entity type", i, e, key)
			}
			v[t] = val
		}
		if v == (Values{}) {
			return nil, fmt.Errorf("quota %d (%s): no values", i, e)
		}
		m[e] = v
	}
	return newQuotas(m), nil
}
