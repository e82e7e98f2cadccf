package broker

// AlterClientQuotas v0–1.
//
// Behaviour: sets and removes the client quotas the broker enforces (quota.go,
// connection_quotas.go, broker/quota): producer_byte_rate, consumer_byte_rate and
// request_percentage of a user, a client id, or a user and client id, each named or the
// default (a null name); connection_creation_rate of an ip, named or the default ip
// (KIP-612). Each entry is checked as Kafka's ClientQuotaControlManager checks it, with
// its messages, INVALID_REQUEST: an empty entity, an entity type other than user,
// client-id and ip, an empty name, ip with user or client-id, an ip entity that is not
// an IP address (Kafka also resolves host names; this broker does not look them up), a
// quota key named twice, a key unknown for the entity type (user and client-id:
// producer_byte_rate, consumer_byte_rate, request_percentage,
// controller_mutation_rate; ip: connection_creation_rate), a byte rate that is not a
// whole number, a connection_creation_rate that is not a whole number or is above
// Int.MaxValue (an INT config in Kafka); and a value not above 0. Setting
// controller_mutation_rate, which this broker does not enforce (it has no controller
// mutations to throttle), is refused with UNSUPPORTED_VERSION (Kafka's answer for an
// admin change a node cannot carry out) so that DescribeClientQuotas never shows a
// quota that has no effect; removing it succeeds (there is nothing to remove). An
// entry with an error changes nothing; the others are applied together:
// client_quotas.json is replaced (synced) and live connections are measured against the
// new quotas from their next request, new connections from their accept. Removing a
// quota that is not set succeeds, and an entity left without quotas is gone, as in
// Kafka. An entity named by more than one entry is answered once with INVALID_REQUEST
// ("Ignoring duplicate entity"), as Kafka answers it (its results are keyed by entity).
// An entity type named twice within one entry keeps the last name, as Kafka's request
// parsing does. ValidateOnly checks everything and changes nothing. A failed write of
// the file answers every entry that would have changed UNKNOWN_SERVER_ERROR and changes
// nothing.
//
// Version notes: v1 flexible.

import (
	"errors"
	"math"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/quota"
	"github.com/tagpipe/tagpipe/internal/fsutil"
)

func init() { register(49, 0, 1, handleAlterClientQuotas) }

// quotaKeys are Kafka's quota config keys (QuotaConfigs) by entity kind, each with
// whether its value must be a whole number (a LONG or INT config).
var (
	clientQuotaKeys = map[string]bool{"producer_byte_rate": true, "consumer_byte_rate": true, "request_percentage": false, "controller_mutation_rate": false}
	ipQuotaKeys     = map[string]bool{"connection_creation_rate": true}
)

func handleAlterClientQuotas(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	entities := make([]map[string]*string, len(req.Entries))
	keys := make([]string, len(req.Entries))
	for i, e := range req.Entries {
		entities[i] = map[string]*string{}
		for _, ent := range e.Entity {
			entities[i][ent.Type] = ent.Name // a type named twice keeps its last name
		}
		keys[i] = quotaEntityKey(entities[i])
	}
	dup := findDups(keys)
	var alts []quota.Alteration
	var altEntries []int // resp.Entries index of each alteration
	allowed := c.allowedCluster(kmsg.ACLOperationAlterConfigs)
	for i, e := range req.Entries {
		isDup, first := dup.take(keys[i])
		if isDup && !first {
			continue
		}
		re := kmsg.NewAlterClientQuotasResponseEntry()
		for _, typ := range sortedQuotaTypes(entities[i]) {
			ent := kmsg.NewAlterClientQuotasResponseEntryEntity()
			ent.Type, ent.Name = typ, entities[i][typ]
			re.Entity = append(re.Entity, ent)
		}
		var te *topicError
		if !allowed {
			te = terr(kerr.ClusterAuthorizationFailed, "%s", kerr.ClusterAuthorizationFailed.Description)
		} else if isDup {
			te = terr(kerr.InvalidRequest, "Ignoring duplicate entity %s", quotaEntityString(entities[i]))
		} else {
			var alt quota.Alteration
			var change bool
			te, alt, change = alterQuotaEntry(entities[i], e.Ops)
			if te == nil && change {
				alts = append(alts, alt)
				altEntries = append(altEntries, len(resp.Entries))
			}
		}
		if te != nil {
			te.set(&re.ErrorCode, &re.ErrorMessage)
		}
		resp.Entries = append(resp.Entries, re)
	}
	if len(alts) == 0 || req.ValidateOnly {
		return resp, nil
	}
	if err := c.b.quotas.Store().Alter(alts); err != nil && !errors.Is(err, fsutil.ErrNotSynced) {
		c.b.log.Error("cannot store client quotas", "err", err)
		te := terr(kerr.UnknownServerError, "cannot store the client quotas: %v", err)
		for _, i := range altEntries {
			te.set(&resp.Entries[i].ErrorCode, &resp.Entries[i].ErrorMessage)
		}
		return resp, nil
	}
	for _, a := range alts {
		c.b.log.Info("client quota altered", "entity", a.Entity.String(), "principal", c.principal)
	}
	return resp, nil
}

// alterQuotaEntry checks an entry and returns its answer (Kafka's validation error, or
// this broker's refusal of a quota it does not enforce) or, when it is valid, the
// alteration and whether it changes anything here.
func alterQuotaEntry(entity map[string]*string, ops []kmsg.AlterClientQuotasRequestEntryOp) (*topicError, quota.Alteration, bool) {
	var alt quota.Alteration
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.Key] {
			return terr(kerr.InvalidRequest, "Duplicate quota key %s not updating quota for this entity %s", op.Key, quotaEntityString(entity)), alt, false
		}
		seen[op.Key] = true
	}
	if len(entity) == 0 {
		return terr(kerr.InvalidRequest, "Invalid empty client quota entity"), alt, false
	}
	for _, typ := range sortedQuotaTypes(entity) {
		if typ != quotaUser && typ != quotaClientID && typ != quotaIP {
			return terr(kerr.InvalidRequest, "Unhandled client quota entity type: %s", typ), alt, false
		}
		if name := entity[typ]; name != nil && *name == "" {
			return terr(kerr.InvalidRequest, "Empty %s not supported", typ), alt, false
		}
	}
	_, hasIP := entity[quotaIP]
	valid := clientQuotaKeys
	if hasIP {
		if len(entity) > 1 {
			return terr(kerr.InvalidRequest, "Invalid empty client quota entity"), alt, false
		}
		if ip := entity[quotaIP]; ip != nil && !isIP(*ip) {
			return terr(kerr.InvalidRequest, "%s is not a valid IP or resolvable host.", *ip), alt, false
		}
		valid = ipQuotaKeys
	}
	for _, op := range ops {
		if op.Remove {
			continue
		}
		whole, ok := valid[op.Key]
		if !ok {
			return terr(kerr.InvalidRequest, "Invalid configuration key %s", op.Key), alt, false
		}
		if hasIP { // an INT config (Kafka's getErrorForIntegralQuotaValue)
			if !(op.Value > 0) {
				return terr(kerr.InvalidRequest, "Quota %s must be greater than 0", op.Key), alt, false
			}
			if op.Value > math.MaxInt32 {
				return terr(kerr.InvalidRequest, "Proposed value for %s is too large for an INT.", op.Key), alt, false
			}
			if math.Abs(math.Mod(op.Value, 1)) > 1e-6 {
				return terr(kerr.InvalidRequest, "%s cannot be a fractional value.", op.Key), alt, false
			}
		}
		if whole && math.Abs(float64(int64(op.Value+1e-6))-op.Value) > 1e-6 { // Kafka's LONG check
			return terr(kerr.InvalidRequest, "Configuration %s must be a Long value", op.Key), alt, false
		}
		if !(op.Value > 0) {
			return terr(kerr.InvalidRequest, "Quota %s must be greater than 0", op.Key), alt, false
		}
		if _, enforced := quota.TypeForKey(op.Key); !enforced {
			return terr(kerr.UnsupportedVersion, "%s quotas are not enforced by this broker", op.Key), alt, false
		}
	}
	alt.Entity = quotaEntityOf(entity)
	for _, op := range ops {
		t, ok := quota.TypeForKey(op.Key)
		switch {
		case !ok: // removing a quota this broker never stores
		case op.Remove:
			alt.Remove = append(alt.Remove, t)
		default:
			if alt.Set == nil {
				alt.Set = map[quota.Type]float64{}
			}
			alt.Set[t] = op.Value
		}
	}
	return nil, alt, len(alt.Set) > 0 || len(alt.Remove) > 0
}

// quotaEntityOf is a validated entity as the quota store keeps it.
func quotaEntityOf(entity map[string]*string) quota.Entity {
	name := func(typ string) quota.Name {
		n, ok := entity[typ]
		switch {
		case !ok:
			return quota.Name{}
		case n == nil:
			return quota.DefaultName
		}
		return quota.N(*n)
	}
	return quota.Entity{User: name(quotaUser), ClientID: name(quotaClientID), IP: name(quotaIP)}
}

func sortedQuotaTypes(entity map[string]*string) []string {
	types := make([]string, 0, len(entity))
	for typ := range entity {
		types = append(types, typ)
	}
	slices.Sort(types)
	return types
}

// quotaEntityKey identifies an entity (its types and names; a null name, the default
// entity, differs from every name).
func quotaEntityKey(entity map[string]*string) string {
	var sb strings.Builder
	for _, typ := range sortedQuotaTypes(entity) {
		sb.WriteString(typ)
		if name := entity[typ]; name != nil {
			sb.WriteString("\x00=")
			sb.WriteString(*name)
		}
		sb.WriteString("\x00;")
	}
	return sb.String()
}

// quotaEntityString renders an entity for a message, types in order.
func quotaEntityString(entity map[string]*string) string {
	parts := make([]string, 0, len(entity))
	for _, typ := range sortedQuotaTypes(entity) {
		name := "null"
		if n := entity[typ]; n != nil {
			name = *n
		}
		parts = append(parts, typ+"="+name)
	}
	return "ClientQuotaEntity(entries={" + strings.Join(parts, ", ") + "})"
}

// isIP reports whether an ip entity's name is an IP address (as the quota store keeps
// them: quota.CanonicalIP).
func isIP(s string) bool {
	_, ok := quota.CanonicalIP(s)
	return ok
}
