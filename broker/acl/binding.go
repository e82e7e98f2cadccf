package acl

// Bindings and filters: what an ACL is, which ACLs a DescribeAcls or DeleteAcls filter
// selects (Kafka's AclBindingFilter), and which creations Kafka refuses.

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClusterName is the only name of the CLUSTER resource (Kafka's CLUSTER_NAME).
const ClusterName = "kafka-cluster"

// Wildcard is the resource name, principal name and host that match every one.
const Wildcard = "*"

// WildcardPrincipal matches every user principal.
const WildcardPrincipal = "User:*"

// Binding is one ACL: a resource pattern and an access control entry.
type Binding struct {
	ResourceType kmsg.ACLResourceType
	PatternType  kmsg.ACLResourcePatternType // LITERAL or PREFIXED
	ResourceName string
	Principal    string // "User:alice", "User:*"
	Host         string // an IP address or "*"
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType // ALLOW or DENY
}

func (b Binding) String() string {
	return fmt.Sprintf("(pattern=%s:%s:%s, principal=%s, host=%s, operation=%s, permission=%s)",
		b.ResourceType, b.PatternType, b.ResourceName, b.Principal, b.Host, b.Operation, b.Permission)
}

// Validate reports why Kafka's controller refuses to create b, or nil: an
// *InvalidError with Kafka's message (which the broker answers as INVALID_REQUEST).
func (b Binding) Validate() error {
	switch b.ResourceType {
	case kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeCluster,
		kmsg.ACLResourceTypeTransactionalId, kmsg.ACLResourceTypeDelegationToken, kmsg.ACLResourceTypeUser:
	default:
		return &InvalidError{Msg: fmt.Sprintf("Invalid resourceType %s", b.ResourceType)}
	}
	switch b.PatternType {
	case kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed:
	default:
		return &InvalidError{Msg: fmt.Sprintf("Invalid patternType %s", b.PatternType)}
	}
	if b.Operation < kmsg.ACLOperationAll || b.Operation > kmsg.ACLOperationDescribeTokens {
		return &InvalidError{Msg: fmt.Sprintf("Invalid operation %s", b.Operation)}
	}
	if b.Permission != kmsg.ACLPermissionTypeAllow && b.Permission != kmsg.ACLPermissionTypeDeny {
		return &InvalidError{Msg: fmt.Sprintf("Invalid permissionType %s", b.Permission)}
	}
	if b.ResourceName == "" {
		return &InvalidError{Msg: "Invalid empty resource name"}
	}
	if b.ResourceType == kmsg.ACLResourceTypeCluster && b.ResourceName != ClusterName {
		return &InvalidError{Msg: fmt.Sprintf("The only valid name for the CLUSTER resource is %s", ClusterName)}
	}
	if !strings.Contains(b.Principal, ":") {
		return &InvalidError{Msg: fmt.Sprintf("Could not parse principal from `%s` (no colon is present separating the principal type from the principal name)", b.Principal)}
	}
	return nil
}

// Filter selects ACLs: ANY (resource type, pattern type, operation, permission) and a
// nil name, principal or host match every value; MATCH selects the patterns that would
// apply to the named resource (the literal name, the literal wildcard, and every prefix
// of it). Kafka's AclBindingFilter.
type Filter struct {
	ResourceType kmsg.ACLResourceType
	PatternType  kmsg.ACLResourcePatternType
	ResourceName *string
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// Matches says whether f selects b.
func (f Filter) Matches(b Binding) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != b.ResourceType {
		return false
	}
	if f.PatternType != kmsg.ACLResourcePatternTypeAny && f.PatternType != kmsg.ACLResourcePatternTypeMatch &&
		f.PatternType != b.PatternType {
		return false
	}
	if f.ResourceName != nil {
		name := *f.ResourceName
		switch {
		case f.PatternType != kmsg.ACLResourcePatternTypeMatch:
			if name != b.ResourceName {
				return false
			}
		case b.PatternType == kmsg.ACLResourcePatternTypeLiteral:
			if name != b.ResourceName && b.ResourceName != Wildcard {
				return false
			}
		case b.PatternType == kmsg.ACLResourcePatternTypePrefixed:
			if !strings.HasPrefix(name, b.ResourceName) {
				return false
			}
		default:
			return false
		}
	}
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && f.Operation != b.Operation {
		return false
	}
	return f.Permission == kmsg.ACLPermissionTypeAny || f.Permission == b.Permission
}
