// Package quota holds the broker's client quotas (Kafka's KIP-13 and KIP-546): the
// quota entities and their limits, stored in the broker's directory
// (client_quotas.json, store.go), the resolution of the quota that applies to a
// user and client id by Kafka's precedence and to a client ip (KIP-612, this file), the
// windowed rates they are measured with (rate.go) and the throttle times computed from
// them as Kafka's ClientQuotaManager and ConnectionQuotas do (manager.go). The broker
// records into it, mutes the channels and delays the accepts; this package has no
// network code.
package quota

import "net/netip"

// Type is a kind of quota, as Kafka's ClientQuotaType: each is resolved and measured on
// its own (a user's producer quota says nothing about its consumer quota).
type Type uint8

const (
	Produce Type = iota // producer_byte_rate: request bytes produced per second
	Fetch               // consumer_byte_rate: response bytes fetched per second
	Request             // request_percentage: percent of one thread's time handling requests
	// ConnectionCreation is connection_creation_rate: new connections per second, of an
	// ip entity (KIP-612); the broker-wide max.connection.creation.rate is measured
	// under this type too, with empty tags.
	ConnectionCreation
	numTypes
)

// Keys are the quota config keys (Kafka's QuotaConfigs) of the types, in Type order.
var Keys = [numTypes]string{"producer_byte_rate", "consumer_byte_rate", "request_percentage", "connection_creation_rate"}

func (t Type) String() string {
	return [numTypes]string{"produce", "fetch", "request", "connection_creation"}[t]
}

// TypeForKey is the type a quota config key sets.
func TypeForKey(key string) (Type, bool) {
	for t, k := range Keys {
		if k == key {
			return Type(t), true
		}
	}
	return 0, false
}

// Kind says what a Name of an entity is.
type Kind uint8

const (
	Absent  Kind = iota // the entity has no component of this type
	Default             // the default entity (<default>, a null name in the protocol)
	Named               // a user, client id or ip by name
)

// Name is one component of an entity: absent, the default, or a name.
type Name struct {
	Kind Kind
	Name string
}

// N is the component naming s.
func N(s string) Name { return Name{Kind: Named, Name: s} }

// DefaultName is the default component, <default>.
var DefaultName = Name{Kind: Default}

func (n Name) String() string {
	switch n.Kind {
	case Default:
		return "<default>"
	case Named:
		return n.Name
	}
	return ""
}

// Entity is a quota entity: a user, a client id, or a user and a client id, each named
// or the default, carrying byte-rate and request quotas; or an ip, named (an IP
// address as the client gave it) or the default, alone, carrying
// connection_creation_rate (Kafka's ClientQuotaEntity never combines ip with the
// others). It is comparable and used as a map key.
type Entity struct {
	User     Name
	ClientID Name
	IP       Name
}

// String renders an entity as Kafka's config paths do: /users/alice/clients/<default>,
// /ips/127.0.0.1.
func (e Entity) String() string {
	s := ""
	if e.User.Kind != Absent {
		s += "/users/" + e.User.String()
	}
	if e.ClientID.Kind != Absent {
		s += "/clients/" + e.ClientID.String()
	}
	if e.IP.Kind != Absent {
		s += "/ips/" + e.IP.String()
	}
	return s
}

// Tags identify the rate an entity's requests are measured in (Kafka's quota metric
// tags): every connection whose quota resolves to the same tags shares one rate. A quota
// on /users/alice is shared by all of alice's clients (tags alice, ""); a default
// quota gives each user or client its own rate.
// An ip's connection rate is kept under its address (IP, in Go's canonical form), each
// ip its own rate whether its quota is its own or the default's, as Kafka's
// ConnectionQuotas keeps one sensor per InetAddress.
type Tags struct {
	User     string
	ClientID string
	IP       string
}

// resolveOrder is Kafka's quota precedence (ClientQuotaManager, DefaultQuotaCallback):
// the first entity in this order that has a quota of the type applies. user and client
// are whether the metric tags keep the user and the client id.
var resolveOrder = [...]struct {
	user, client Kind
	tagUser      bool
	tagClient    bool
}{
	{Named, Named, true, true},     // /users/<user>/clients/<client-id>
	{Named, Default, true, true},   // /users/<user>/clients/<default>
	{Named, Absent, true, false},   // /users/<user>
	{Default, Named, true, true},   // /users/<default>/clients/<client-id>
	{Default, Default, true, true}, // /users/<default>/clients/<default>
	{Default, Absent, true, false}, // /users/<default>
	{Absent, Named, false, true},   // /clients/<client-id>
	{Absent, Default, false, true}, // /clients/<default>
}

// CanonicalIP is ip in the form the broker keeps ip quotas and connection counts
// under (net.IP's String: 127.0.0.1, ::1); ok is false when ip is not an IP address.
func CanonicalIP(ip string) (string, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "", false
	}
	return a.Unmap().String(), true
}

// ConnectionRate is the connection_creation_rate that applies to connections from ip
// (canonical, see CanonicalIP): its own entity's, else the default ip's (Kafka's
// ConnectionQuotas.connectionRateForIp); ok is false when neither is set.
func (q *Quotas) ConnectionRate(ip string) (limit float64, ok bool) {
	if q == nil || q.count[ConnectionCreation] == 0 {
		return 0, false
	}
	if v, found := q.ips[ip]; found {
		return v, true
	}
	if v, found := q.entities[Entity{IP: DefaultName}]; found && v[ConnectionCreation] > 0 {
		return v[ConnectionCreation], true
	}
	return 0, false
}

// Resolve returns the entity whose t quota applies to a connection of user with
// clientID, the metric tags its rate is kept under and the limit; ok is false when no
// quota of type t applies.
func (q *Quotas) Resolve(t Type, user, clientID string) (e Entity, tags Tags, limit float64, ok bool) {
	if q == nil || q.count[t] == 0 {
		return Entity{}, Tags{}, 0, false
	}
	for _, r := range resolveOrder {
		e = Entity{User: Name{Kind: r.user}, ClientID: Name{Kind: r.client}}
		if r.user == Named {
			e.User.Name = user
		}
		if r.client == Named {
			e.ClientID.Name = clientID
		}
		v, found := q.entities[e]
		if !found || v[t] == 0 {
			continue
		}
		if r.tagUser {
			tags.User = user
		}
		if r.tagClient {
			tags.ClientID = clientID
		}
		return e, tags, v[t], true
	}
	return Entity{}, Tags{}, 0, false
}
