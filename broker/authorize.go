package broker

// Authorization: the helpers every handler uses to ask the authorizer (broker/acl)
// whether the connection's principal may do an operation, one per resource shape. With
// `authorizer: none` (Options.Authorizer.Mode) b.acl is nil and each helper answers yes
// at the cost of one nil check: nothing is allocated or locked per request.

import (
	"iter"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/acl"
)

// AuthorizerOptions choose the authorizer (Kafka's authorizer.class.name, super.users,
// allow.everyone.if.no.acl.found).
type AuthorizerOptions struct {
	// Mode is "none" (or empty: every client may do everything, ACL requests answer
	// SECURITY_DISABLED) or "acl" (ACLs kept in Dir/acls.json and enforced).
	Mode string
	// SuperUsers ("User:admin") may do everything.
	SuperUsers []string
	// AllowEveryoneIfNoACLFound allows operations on resources no ACL names.
	AllowEveryoneIfNoACLFound bool
}

// Authorizer modes.
const (
	AuthorizerNone = "none"
	AuthorizerACL  = "acl"
)

// anonymous is the principal of a connection that did not authenticate (PLAINTEXT, SSL
// without a client certificate), as Kafka's KafkaPrincipal.ANONYMOUS.
const anonymous = "User:ANONYMOUS"

// Supported operations per resource type (Kafka's AclEntry.supportedOperations), in
// the order KIP-430 answers them.
var (
	topicOps   = []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs}
	clusterOps = []kmsg.ACLOperation{kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe}
	// Kafka 3.8+ adds DESCRIBE_CONFIGS/ALTER_CONFIGS for groups (KIP-848 group configs),
	// which this broker does not serve.
	groupOps = []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete}
)

// opBits is the KIP-430 bit field of ops.
func opBits(ops []kmsg.ACLOperation) int32 {
	var v int32
	for _, op := range ops {
		v |= 1 << op
	}
	return v
}

// openAuthorizer opens the ACL store when the authorizer is on.
func (b *Broker) openAuthorizer(path string) error {
	if b.opts.Authorizer.Mode != AuthorizerACL {
		return nil
	}
	a, err := acl.Open(acl.Options{Path: path, SuperUsers: b.opts.Authorizer.SuperUsers,
		AllowEveryoneIfNoACLFound: b.opts.Authorizer.AllowEveryoneIfNoACLFound})
	if err != nil {
		return err
	}
	b.acl = a
	b.log.Info("authorizer on", "acls", a.Len(), "super_users", len(b.opts.Authorizer.SuperUsers),
		"allow_everyone_if_no_acl_found", b.opts.Authorizer.AllowEveryoneIfNoACLFound)
	return nil
}

// who is the connection's principal and client address for the authorizer.
func (c *conn) who() (principal, host string) {
	principal = c.principal
	if principal == "" {
		principal = anonymous
	}
	if c.host == "" {
		c.host = c.remote
		if h, _, err := net.SplitHostPort(c.remote); err == nil {
			c.host = h
		}
	}
	return principal, c.host
}

// allowed says whether the connection may do op on the resource.
func (c *conn) allowed(op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	a := c.b.acl
	if a == nil {
		return true
	}
	p, h := c.who()
	ok := a.Authorize(p, h, op, rt, name)
	if !ok {
		c.b.metrics.authorizationFailures.Inc()
		c.b.log.Debug("authorization failed", "principal", p, "host", h, "operation", op, "resource_type", rt, "resource", name)
	}
	return ok
}

func (c *conn) allowedTopic(op kmsg.ACLOperation, topic string) bool {
	return c.allowed(op, kmsg.ACLResourceTypeTopic, topic)
}

func (c *conn) allowedGroup(op kmsg.ACLOperation, group string) bool {
	return c.allowed(op, kmsg.ACLResourceTypeGroup, group)
}

func (c *conn) allowedTxnID(op kmsg.ACLOperation, id string) bool {
	return c.allowed(op, kmsg.ACLResourceTypeTransactionalId, id)
}

func (c *conn) allowedCluster(op kmsg.ACLOperation) bool {
	return c.allowed(op, kmsg.ACLResourceTypeCluster, acl.ClusterName)
}

// allowedSilently is allowed without the failure counted or logged: for filtering
// what a listing shows (Metadata of all topics, ListGroups), as Kafka's
// logIfDenied=false.
func (c *conn) allowedSilently(op kmsg.ACLOperation, rt kmsg.ACLResourceType, name string) bool {
	a := c.b.acl
	if a == nil {
		return true
	}
	p, h := c.who()
	return a.Authorize(p, h, op, rt, name)
}

// allowedAnyTopic says whether the connection may do op on some topic (Kafka's
// authorizeByResourceType: an idempotent producer's WRITE).
func (c *conn) allowedAnyTopic(op kmsg.ACLOperation) bool {
	a := c.b.acl
	if a == nil {
		return true
	}
	p, h := c.who()
	return a.AuthorizeAny(p, h, op, kmsg.ACLResourceTypeTopic)
}

// authorizedOps is the KIP-430 field for a resource: every supported operation without
// an authorizer, else those the ACLs allow.
func (c *conn) authorizedOps(rt kmsg.ACLResourceType, name string) int32 {
	var ops []kmsg.ACLOperation
	switch rt {
	case kmsg.ACLResourceTypeTopic:
		ops = topicOps
	case kmsg.ACLResourceTypeGroup:
		ops = groupOps
	case kmsg.ACLResourceTypeCluster:
		ops = clusterOps
	}
	a := c.b.acl
	if a == nil {
		return opBits(ops)
	}
	p, h := c.who()
	return a.Operations(p, h, rt, name, ops)
}

// autoCreate is b.autoCreate for this connection: with an authorizer, a missing topic
// is created only with CREATE on the cluster or on the topic (Kafka's Metadata
// auto-creation), else it is TOPIC_AUTHORIZATION_FAILED.
func (c *conn) autoCreate(name string) (*topic, *topicError) {
	if c.b.acl != nil && c.b.opts.AutoCreateTopics && c.b.topic(name) == nil && !c.allowedToCreate(name) {
		return nil, &topicError{err: kerr.TopicAuthorizationFailed, msg: "not authorized to create topic " + name}
	}
	return c.b.autoCreate(name)
}

// allowedToCreate says whether the connection may create topic: CREATE on the cluster
// (asked silently, as Kafka does) or on the topic.
func (c *conn) allowedToCreate(topic string) bool {
	return c.allowedSilently(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeCluster, acl.ClusterName) ||
		c.allowedTopic(kmsg.ACLOperationCreate, topic)
}

// deniedTopics are the topics among names the connection may not do op on; nil when
// it may do it on every one (always without an authorizer).
func (c *conn) deniedTopics(op kmsg.ACLOperation, names iter.Seq[string]) map[string]bool {
	if c.b.acl == nil {
		return nil
	}
	var denied map[string]bool
	for name := range names {
		if denied[name] {
			continue
		}
		if !c.allowedTopic(op, name) {
			if denied == nil {
				denied = map[string]bool{}
			}
			denied[name] = true
		}
	}
	return denied
}

// namesOf is the names of a request's items (topics), for deniedTopics.
func namesOf[T any](items []T, name func(*T) string) iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range items {
			if !yield(name(&items[i])) {
				return
			}
		}
	}
}

// allNames is every one of names, as a set.
func allNames(names iter.Seq[string]) map[string]bool {
	m := map[string]bool{}
	for n := range names {
		m[n] = true
	}
	return m
}

// configDenied is the error for a config resource the connection may not do op on
// (DESCRIBE_CONFIGS, ALTER_CONFIGS): a topic's on the topic, a broker's on the cluster,
// as Kafka's ConfigAdminManager; 0 when allowed.
func (c *conn) configDenied(op kmsg.ACLOperation, rt kmsg.ConfigResourceType, name string) int16 {
	switch rt {
	case kmsg.ConfigResourceTypeTopic:
		if !c.allowedTopic(op, name) {
			return kerr.TopicAuthorizationFailed.Code
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !c.allowedCluster(op) {
			return kerr.ClusterAuthorizationFailed.Code
		}
	}
	return 0
}
