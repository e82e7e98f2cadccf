package broker

// AlterClientQuotas v0–1.
//
// Behaviour: this broker enforces no client quota (throttle is always 0), so a quota
// cannot be set here, and an entry that would set one is refused with
// UNSUPPORTED_VERSION: that is Kafka's answer for an admin change a node cannot carry out
// in its mode (KafkaApis' shouldAlwaysForward / shouldNeverReceive throw
// UnsupportedVersionException, which AlterClientQuotasRequest.getErrorResponse puts on
// every entry) and the one Kafka's ScramControlManager gives per user when its metadata
// version cannot store SCRAM credentials; accepting the quota and dropping it would make
// DescribeClientQuotas contradict the answer. Before that, each entry is checked as
// Kafka's ClientQuotaControlManager checks it, with its messages, INVALID_REQUEST: an
// empty entity, an entity type other than user, client-id and ip, an empty name, ip
// with user or client-id, an ip entity that is not an IP address (Kafka also resolves
// host names; this broker does not look them up), a quota key named twice, a key
// unknown for the entity type (user and client-id: producer_byte_rate,
// consumer_byte_rate, request_percentage, controller_mutation_rate; ip:
// connection_creation_rate), a byte rate that is not a whole number. An entry whose ops
// only remove quotas succeeds, as in Kafka (there is nothing to remove). An entity named
// by more than one entry is answered once with INVALID_REQUEST ("Ignoring duplicate
// entity"), as Kafka answers it (its results are keyed by entity). An entity type named
// twice within one entry keeps the last name, as Kafka's request parsing does.
// ValidateOnly changes nothing: there is nothing to apply.
//
// Version notes: v1 flexible.

import (
	"math"
	"net"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(49, 0, 1, handleAlterClientQuotas) }

// quotaKeys are Kafka's quota config keys (QuotaConfigs) by entity kind, each with
// whether its value must be a whole number (a LONG config).
var (
	clientQuotaKeys = map[string]bool{"producer_byte_rate": true, "consumer_byte_rate": true, "request_percentage": false, "controller_mutation_rate": false}
	ipQuotaKeys     = map[string]bool{"connection_creation_rate": false}
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
		if isDup {
			te = terr(kerr.InvalidRequest, "Ignoring duplicate entity %s", quotaEntityString(entities[i]))
		} else {
			te = alterQuotaEntryError(entities[i], e.Ops)
		}
		if te != nil {
			te.set(&re.ErrorCode, &re.ErrorMessage)
		}
		resp.Entries = append(resp.Entries, re)
	}
	return resp, nil
}

// alterQuotaEntryError is an entry's answer: Kafka's validation error, else
// UNSUPPORTED_VERSION if it would set a quota, else nil (removals only).
func alterQuotaEntryError(entity map[string]*string, ops []kmsg.AlterClientQuotasRequestEntryOp) *topicError {
	seen := map[string]bool{}
	for _, op := range ops {
		if seen[op.Key] {
			return terr(kerr.InvalidRequest, "Duplicate quota key %s not updating quota for this entity %s", op.Key, quotaEntityString(entity))
		}
		seen[op.Key] = true
	}
	if len(entity) == 0 {
		return terr(kerr.InvalidRequest, "Invalid empty client quota entity")
	}
	for _, typ := range sortedQuotaTypes(entity) {
		if typ != quotaUser && typ != quotaClientID && typ != quotaIP {
			return terr(kerr.InvalidRequest, "Unhandled client quota entity type: %s", typ)
		}
		if name := entity[typ]; name != nil && *name == "" {
			return terr(kerr.InvalidRequest, "Empty %s not supported", typ)
		}
	}
	_, hasIP := entity[quotaIP]
	valid := clientQuotaKeys
	if hasIP {
		if len(entity) > 1 {
			return terr(kerr.InvalidRequest, "Invalid empty client quota entity")
		}
		if ip := entity[quotaIP]; ip != nil && net.ParseIP(*ip) == nil {
			return terr(kerr.InvalidRequest, "%s is not a valid IP or resolvable host.", *ip)
		}
		valid = ipQuotaKeys
	}
	sets := false
	for _, op := range ops {
		if op.Remove {
			continue
		}
		whole, ok := valid[op.Key]
		if !ok {
			return terr(kerr.InvalidRequest, "Invalid configuration key %s", op.Key)
		}
		if whole && math.Abs(float64(int64(op.Value+1e-6))-op.Value) > 1e-6 { // Kafka's LONG check
			return terr(kerr.InvalidRequest, "Configuration %s must be a Long value", op.Key)
		}
		sets = true
	}
	if sets {
		return terr(kerr.UnsupportedVersion, "client quotas cannot be set: this broker enforces none")
	}
	return nil
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
