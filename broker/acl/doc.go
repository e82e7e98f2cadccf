// Package acl is the broker's authorizer: ACL bindings (resource pattern, principal,
// host, operation, permission), their store in the broker's data dir (acls.json, see
// broker/FORMAT.md), the filters of DescribeAcls and DeleteAcls, and the decision an
// operation on a resource gets, with the rules of Kafka's StandardAuthorizer: super
// users may do everything, a matching DENY wins over any ALLOW, READ/WRITE/DELETE/ALTER
// imply DESCRIBE and ALTER_CONFIGS implies DESCRIBE_CONFIGS (for ALLOW only), and a
// resource no ACL names is refused unless allow-everyone-if-no-ACL-found is set.
//
// It knows nothing of requests or connections: the broker asks it with the
// connection's principal and host (broker/authorize.go).
package acl
