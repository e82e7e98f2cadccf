package acl

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	topic   = kmsg.ACLResourceTypeTopic
	group   = kmsg.ACLResourceTypeGroup
	literal = kmsg.ACLResourcePatternTypeLiteral
	prefix  = kmsg.ACLResourcePatternTypePrefixed
	allow   = kmsg.ACLPermissionTypeAllow
	deny    = kmsg.ACLPermissionTypeDeny
	read    = kmsg.ACLOperationRead
	write   = kmsg.ACLOperationWrite
	descr   = kmsg.ACLOperationDescribe
)

func open(t *testing.T, opts Options) *Authorizer {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), FileName)
	}
	a, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustCreate(t *testing.T, a *Authorizer, bs ...Binding) {
	t.Helper()
	for i, err := range a.Create(bs) {
		if err != nil {
			t.Fatalf("create %s: %v", bs[i], err)
		}
	}
}

func bind(rt kmsg.ACLResourceType, pt kmsg.ACLResourcePatternType, name, principal string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) Binding {
	return Binding{ResourceType: rt, PatternType: pt, ResourceName: name, Principal: principal, Host: "*", Operation: op, Permission: perm}
}

func TestAuthorizeRules(t *testing.T) {
	a := open(t, Options{SuperUsers: []string{"User:admin"}})
	mustCreate(t, a,
		bind(topic, literal, "orders", "User:alice", read, allow),
		bind(topic, prefix, "logs-", "User:alice", write, allow),
		bind(topic, prefix, "logs-secret", "User:alice", kmsg.ACLOperationAll, deny),
		bind(topic, literal, "*", "User:*", descr, allow),
		bind(topic, literal, "*", "User:mallory", descr, deny),
		bind(group, literal, "g", "User:alice", read, allow),
		Binding{ResourceType: topic, PatternType: literal, ResourceName: "hosts", Principal: "User:bob", Host: "10.0.0.1", Operation: read, Permission: allow},
	)
	for _, c := range []struct {
		principal, host string
		op              kmsg.ACLOperation
		rt              kmsg.ACLResourceType
		name            string
		want            bool
	}{
		{"User:alice", "127.0.0.1", read, topic, "orders", true},
		{"User:alice", "127.0.0.1", write, topic, "orders", false},
		{"User:alice", "127.0.0.1", descr, topic, "orders", true}, // READ implies DESCRIBE, and the wildcard
		{"User:bob", "127.0.0.1", read, topic, "orders", false},
		{"User:bob", "127.0.0.1", descr, topic, "orders", true}, // User:* on *
		{"User:mallory", "127.0.0.1", descr, topic, "orders", false},
		{"User:alice", "127.0.0.1", write, topic, "logs-app", true},
		{"User:alice", "127.0.0.1", write, topic, "logs-secret-1", false}, // DENY ALL beats the prefix ALLOW
		{"User:alice", "127.0.0.1", descr, topic, "logs-secret-1", false},
		{"User:alice", "127.0.0.1", read, group, "g", true},
		{"User:alice", "127.0.0.1", read, group, "h", false},
		{"User:admin", "127.0.0.1", kmsg.ACLOperationDelete, topic, "logs-secret-1", true}, // super user
		{"User:bob", "10.0.0.1", read, topic, "hosts", true},
		{"User:bob", "10.0.0.2", read, topic, "hosts", false},
		{"User:alice", "127.0.0.1", read, kmsg.ACLResourceTypeTransactionalId, "x", false}, // no ACL: denied
	} {
		if got := a.Authorize(c.principal, c.host, c.op, c.rt, c.name); got != c.want {
			t.Errorf("Authorize(%s %s %s %s %q) = %v, want %v", c.principal, c.host, c.op, c.rt, c.name, got, c.want)
		}
	}
	// ALTER_CONFIGS implies DESCRIBE_CONFIGS; a DENY of DESCRIBE is not implied by a DENY of READ.
	mustCreate(t, a, bind(topic, literal, "cfg", "User:carol", kmsg.ACLOperationAlterConfigs, allow),
		bind(topic, literal, "cfg", "User:carol", read, deny))
	if !a.Authorize("User:carol", "h", kmsg.ACLOperationDescribeConfigs, topic, "cfg") {
		t.Error("ALTER_CONFIGS does not imply DESCRIBE_CONFIGS")
	}
	if !a.Authorize("User:carol", "h", descr, topic, "cfg") {
		t.Error("a DENY of READ refused DESCRIBE (User:* may describe every topic)")
	}
}

func TestAllowEveryoneIfNoACLFound(t *testing.T) {
	a := open(t, Options{AllowEveryoneIfNoACLFound: true})
	if !a.Authorize("User:x", "h", write, topic, "free") {
		t.Fatal("no ACL at all: refused")
	}
	mustCreate(t, a, bind(topic, literal, "owned", "User:alice", write, allow))
	if !a.Authorize("User:x", "h", write, topic, "free") {
		t.Error("a topic no ACL names: refused")
	}
	if a.Authorize("User:x", "h", write, topic, "owned") {
		t.Error("a topic with ACLs for someone else: allowed")
	}
}

func TestAuthorizeAny(t *testing.T) {
	a := open(t, Options{})
	if a.AuthorizeAny("User:alice", "h", write, topic) {
		t.Fatal("no ACL: allowed")
	}
	mustCreate(t, a, bind(topic, prefix, "a-", "User:alice", write, allow), bind(topic, prefix, "a", "User:alice", write, deny))
	if a.AuthorizeAny("User:alice", "h", write, topic) {
		t.Error("the only ALLOW is dominated by a prefix DENY: allowed")
	}
	mustCreate(t, a, bind(topic, literal, "b", "User:alice", write, allow))
	if !a.AuthorizeAny("User:alice", "h", write, topic) {
		t.Error("a literal ALLOW: refused")
	}
	mustCreate(t, a, bind(topic, literal, "*", "User:alice", write, deny))
	if a.AuthorizeAny("User:alice", "h", write, topic) {
		t.Error("a wildcard DENY: allowed")
	}
}

func TestFilterMatches(t *testing.T) {
	lit := bind(topic, literal, "orders", "User:alice", read, allow)
	wild := bind(topic, literal, "*", "User:alice", read, allow)
	pre := bind(topic, prefix, "ord", "User:alice", read, allow)
	other := bind(group, literal, "orders", "User:bob", write, deny)
	name := func(s string) *string { return &s }
	all := []Binding{lit, wild, pre, other}
	for _, c := range []struct {
		f    Filter
		want []Binding
	}{
		{Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, all},
		{Filter{ResourceType: topic, PatternType: kmsg.ACLResourcePatternTypeAny, ResourceName: name("orders"), Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, []Binding{lit}},
		{Filter{ResourceType: topic, PatternType: kmsg.ACLResourcePatternTypeMatch, ResourceName: name("orders"), Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, []Binding{lit, wild, pre}},
		{Filter{ResourceType: topic, PatternType: prefix, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, []Binding{pre}},
		{Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Principal: name("User:bob"), Operation: kmsg.ACLOperationAny, Permission: deny}, []Binding{other}},
		{Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Host: name("1.2.3.4"), Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, nil},
	} {
		var got []Binding
		for _, b := range all {
			if c.f.Matches(b) {
				got = append(got, b)
			}
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("filter %+v matched %v, want %v", c.f, got, c.want)
		}
	}
}

func TestStorePersistsAndValidates(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	a := open(t, Options{Path: path})
	good := bind(topic, literal, "t", "User:alice", read, allow)
	errs := a.Create([]Binding{
		good, good, // a duplicate is no error, and kept once
		bind(kmsg.ACLResourceTypeCluster, literal, "other", "User:alice", kmsg.ACLOperationAlter, allow),
		bind(topic, literal, "", "User:alice", read, allow),
		bind(topic, literal, "t", "alice", read, allow),
		bind(topic, kmsg.ACLResourcePatternTypeMatch, "t", "User:alice", read, allow),
	})
	for i, want := range []bool{false, false, true, true, true, true} {
		var inv *InvalidError
		if got := errors.As(errs[i], &inv); got != want {
			t.Errorf("creation %d: error %v, want invalid=%v", i, errs[i], want)
		}
	}
	if a.Len() != 1 {
		t.Fatalf("%d ACLs stored, want 1", a.Len())
	}
	b := open(t, Options{Path: path})
	if got := b.Describe(Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}); !reflect.DeepEqual(got, []Binding{good}) {
		t.Fatalf("after reopening: %v", got)
	}
	// A failed write changes nothing.
	b.opts.WriteFile = func(string, []byte) error { return errors.New("disk full") }
	if _, err := b.Delete([]Filter{{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}}); err == nil {
		t.Fatal("delete with a failing write: no error")
	}
	if b.Len() != 1 || !b.Authorize("User:alice", "h", read, topic, "t") {
		t.Fatal("a failed delete removed the ACL")
	}
	if err := os.WriteFile(path, []byte(`{"version":1,"acls":[{"resource_type":"TOPIC","pattern_type":"MATCH","resource_name":"x","principal":"User:a","host":"*","operation":"READ","permission":"ALLOW"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Path: path}); err == nil {
		t.Fatal("a MATCH pattern in the file was accepted")
	}
}

func BenchmarkAuthorize(b *testing.B) {
	a, _ := Open(Options{Path: filepath.Join(b.TempDir(), FileName)})
	a.Create([]Binding{bind(topic, literal, "orders", "User:alice", write, allow), bind(topic, prefix, "logs-", "User:bob", write, allow)})
	b.ReportAllocs()
	for b.Loop() {
		if !a.Authorize("User:alice", "127.0.0.1", write, topic, "orders") {
			b.Fatal("refused")
		}
	}
}

// TestFileFormatFrozen freezes acls.json (broker/FORMAT.md): change both together.
func TestFileFormatFrozen(t *testing.T) {
	want := `{
 "version": 1,
 "acls": [
  {
   "resource_type": "TOPIC",
   "pattern_type": "PREFIXED",
   "resource_name": "logs-",
   "principal": "User:alice",
   "host": "*",
   "operation": "WRITE",
   "permission": "ALLOW"
  }
 ]
}
`
	b := bind(topic, prefix, "logs-", "User:alice", write, allow)
	if got := string(marshalFile([]Binding{b})); got != want {
		t.Fatalf("acls.json:\n%s\nwant:\n%s", got, want)
	}
	got, err := parseFile([]byte(want))
	if err != nil || !reflect.DeepEqual(got, []Binding{b}) {
		t.Fatalf("parse: %v %v", got, err)
	}
}
