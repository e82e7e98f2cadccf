package acl

// Decisions, with Kafka's StandardAuthorizer rules (StandardAuthorizerData.findAclRule):
// the ACLs that apply to a resource are its literal name's, the literal wildcard's and
// every prefixed pattern the name starts with; among those whose principal (or User:*)
// and host (or *) match, a DENY for the operation (or ALL) refuses, else an ALLOW for
// it, for ALL or for an operation implying it allows; a resource with no ACL at all is
// allowed only with AllowEveryoneIfNoACLFound.

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// index is one immutable set of ACLs, arranged for Authorize.
type index struct {
	all    []Binding
	byType map[kmsg.ACLResourceType]*typeIndex
}

type typeIndex struct {
	literal  map[string][]Binding
	prefixed []Binding
}

func newIndex(acls []Binding) *index {
	ix := &index{all: acls, byType: map[kmsg.ACLResourceType]*typeIndex{}}
	for _, b := range acls {
		ti := ix.byType[b.ResourceType]
		if ti == nil {
			ti = &typeIndex{literal: map[string][]Binding{}}
			ix.byType[b.ResourceType] = ti
		}
		if b.PatternType == kmsg.ACLResourcePatternTypePrefixed {
			ti.prefixed = append(ti.prefixed, b)
		} else {
			ti.literal[b.ResourceName] = append(ti.literal[b.ResourceName], b)
		}
	}
	return ix
}

// implies says whether an ALLOW for granted allows op.
func implies(granted, op kmsg.ACLOperation) bool {
	if granted == op || granted == kmsg.ACLOperationAll {
		return true
	}
	switch op {
	case kmsg.ACLOperationDescribe:
		switch granted {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return granted == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// IsSuperUser says whether principal is one of Options.SuperUsers.
func (a *Authorizer) IsSuperUser(principal string) bool { return a.super[principal] }

// Authorize says whether principal, connected from host, may do op on the resource.
func (a *Authorizer) Authorize(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	if a.super[principal] {
		return true
	}
	ti := a.cur.Load().byType[rt]
	if ti == nil {
		return a.opts.AllowEveryoneIfNoACLFound
	}
	var found, allow bool
	// check scans the ACLs of one pattern; it reports a matching DENY.
	check := func(bs []Binding) bool {
		for i := range bs {
			b := &bs[i]
			found = true
			if b.Principal != principal && b.Principal != WildcardPrincipal || b.Host != host && b.Host != Wildcard {
				continue
			}
			if b.Permission == kmsg.ACLPermissionTypeDeny {
				if b.Operation == op || b.Operation == kmsg.ACLOperationAll {
					return true
				}
			} else if implies(b.Operation, op) {
				allow = true
			}
		}
		return false
	}
	if check(ti.literal[name]) {
		return false
	}
	if name != Wildcard && check(ti.literal[Wildcard]) {
		return false
	}
	for i := range ti.prefixed {
		if strings.HasPrefix(name, ti.prefixed[i].ResourceName) && check(ti.prefixed[i:i+1]) {
			return false
		}
	}
	if allow {
		return true
	}
	return !found && a.opts.AllowEveryoneIfNoACLFound
}

// AuthorizeAny says whether principal may do op on some resource of type rt (Kafka's
// Authorizer.authorizeByResourceType, e.g. an idempotent producer's WRITE on any
// topic): an ALLOW for op (or ALL) on a pattern no DENY covers, or on the wildcard.
// Implied operations do not count here, as in Kafka.
func (a *Authorizer) AuthorizeAny(principal, host string, op kmsg.ACLOperation, rt kmsg.ACLResourceType) bool {
	// Kafka asks first for a made-up name: super users, and the no-ACL default.
	if a.Authorize(principal, host, op, rt, "hardcode") {
		return true
	}
	ti := a.cur.Load().byType[rt]
	if ti == nil {
		return false
	}
	denyLiteral, denyPrefix := map[string]bool{}, map[string]bool{}
	var allowLiteral, allowPrefix []string
	wildAllow := false
	visit := func(b *Binding) bool {
		if b.Principal != principal && b.Principal != WildcardPrincipal || b.Host != host && b.Host != Wildcard ||
			b.Operation != op && b.Operation != kmsg.ACLOperationAll {
			return false
		}
		literal := b.PatternType == kmsg.ACLResourcePatternTypeLiteral
		switch {
		case b.Permission == kmsg.ACLPermissionTypeDeny && literal && b.ResourceName == Wildcard:
			return true
		case b.Permission == kmsg.ACLPermissionTypeDeny && literal:
			denyLiteral[b.ResourceName] = true
		case b.Permission == kmsg.ACLPermissionTypeDeny:
			denyPrefix[b.ResourceName] = true
		case literal && b.ResourceName == Wildcard:
			wildAllow = true
		case literal:
			allowLiteral = append(allowLiteral, b.ResourceName)
		default:
			allowPrefix = append(allowPrefix, b.ResourceName)
		}
		return false
	}
	for _, bs := range ti.literal {
		for i := range bs {
			if visit(&bs[i]) {
				return false
			}
		}
	}
	for i := range ti.prefixed {
		if visit(&ti.prefixed[i]) {
			return false
		}
	}
	if wildAllow {
		return true
	}
	dominated := func(s string) bool {
		for n := 1; n <= len(s); n++ {
			if denyPrefix[s[:n]] {
				return true
			}
		}
		return false
	}
	for _, s := range allowLiteral {
		if !denyLiteral[s] && !dominated(s) {
			return true
		}
	}
	for _, s := range allowPrefix {
		if !dominated(s) {
			return true
		}
	}
	return false
}

// Operations is the KIP-430 bit field of the operations among ops that principal may
// do on the resource.
func (a *Authorizer) Operations(principal, host string, rt kmsg.ACLResourceType, name string, ops []kmsg.ACLOperation) int32 {
	var v int32
	for _, op := range ops {
		if a.Authorize(principal, host, op, rt, name) {
			v |= 1 << op
		}
	}
	return v
}
