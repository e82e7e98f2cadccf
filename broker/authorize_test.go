package broker

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/acl"
)

// aclOptions: `authorizer: acl` with super user admin, a PLAINTEXT listener (Addr:
// User:ANONYMOUS) and a SASL_PLAINTEXT one with the users admin, alice and bob.
func aclOptions(t testing.TB) Options {
	o := testOptions(t)
	o.DefaultPartitions = 1
	o.Listeners = []Listener{{Name: "INTERNAL", Listen: "127.0.0.1:0"}, {Name: "SASL_PLAINTEXT", Listen: "127.0.0.1:0"}}
	o.SASL = SASLOptions{Mechanisms: []string{"PLAIN", "SCRAM-SHA-256"},
		Users: map[string]string{"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}}
	o.Authorizer = AuthorizerOptions{Mode: AuthorizerACL, SuperUsers: []string{"User:admin"}}
	return o
}

// userClient is a franz-go client authenticated as user (SCRAM-SHA-256, password
// "<user>-secret") on the SASL_PLAINTEXT listener.
func userClient(t testing.TB, b *Broker, user string, opts ...kgo.Opt) (*kgo.Client, *kadm.Client) {
	t.Helper()
	return newAdmin(t, b.ListenerAddr("SASL_PLAINTEXT"), append([]kgo.Opt{kgo.RequestRetries(0),
		kgo.SASL(kgoSASL("SCRAM-SHA-256", user, user+"-secret"))}, opts...)...)
}

// aclStrings describes every ACL as "TYPE:PATTERN:name principal host OP PERM", sorted.
func aclStrings(t *testing.T, adm *kadm.Client) []string {
	t.Helper()
	rs, err := adm.DescribeACLs(testCtx(t), kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().
		Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if r.Err != nil {
			t.Fatalf("describe: %v %s", r.Err, r.ErrMessage)
		}
		for _, d := range r.Described {
			out = append(out, strings.Join([]string{d.Type.String() + ":" + d.Pattern.String() + ":" + d.Name, d.Principal, d.Host,
				d.Operation.String(), d.Permission.String()}, " "))
		}
	}
	sort.Strings(out)
	return slicesCompact(out)
}

func slicesCompact(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// TestACLsRoundTrip: kadm creates, describes (ANY and MATCH filters) and deletes ACLs
// through a super user; they survive a restart and are kept in acls.json; ANONYMOUS on
// the PLAINTEXT listener is refused the three APIs with CLUSTER_AUTHORIZATION_FAILED;
// creations Kafka's controller refuses get INVALID_REQUEST one by one.
func TestACLsRoundTrip(t *testing.T) {
	o := aclOptions(t)
	b := startBroker(t, o)
	admCl, adm := userClient(t, b, "admin")
	ctx := testCtx(t)

	create := func(bld *kadm.ACLBuilder) {
		t.Helper()
		rs, err := adm.CreateACLs(ctx, bld)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Err != nil {
				t.Fatalf("create %s %s: %v %s", r.Type, r.Name, r.Err, r.ErrMessage)
			}
		}
	}
	create(kadm.NewACLs().Topics("orders").Allow("User:alice").Operations(kadm.OpRead, kadm.OpDescribe))
	create(kadm.NewACLs().Groups("app-").ResourcePatternType(kadm.ACLPatternPrefixed).Allow("User:alice").Operations(kadm.OpRead))
	create(kadm.NewACLs().Topics("*").Deny("User:bob").DenyHosts("10.0.0.1").Operations(kadm.OpWrite))
	create(kadm.NewACLs().Topics("orders").Allow("User:alice").Operations(kadm.OpRead)) // exists: no error, kept once
	want := []string{
		"GROUP:PREFIXED:app- User:alice * READ ALLOW",
		"TOPIC:LITERAL:* User:bob 10.0.0.1 WRITE DENY",
		"TOPIC:LITERAL:orders User:alice * DESCRIBE ALLOW",
		"TOPIC:LITERAL:orders User:alice * READ ALLOW",
	}
	if got := aclStrings(t, adm); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("described:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// MATCH: the ACLs that apply to topic orders (its literal ones and the wildcard).
	match := kmsg.NewPtrDescribeACLsRequest()
	match.ResourceType, match.ResourceName, match.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.StringPtr("orders"), kmsg.ACLResourcePatternTypeMatch
	match.Operation, match.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	mr, err := match.RequestWith(ctx, admCl)
	if err != nil {
		t.Fatal(err)
	}
	if mr.ErrorCode != 0 || len(mr.Resources) != 2 || mr.Resources[0].ResourceName != "*" || mr.Resources[1].ResourceName != "orders" || len(mr.Resources[1].ACLs) != 2 {
		t.Fatalf("MATCH orders: %+v", mr)
	}

	// Invalid creations, each answered on its own.
	cr := kmsg.NewPtrCreateACLsRequest()
	for _, c := range []struct {
		rt   kmsg.ACLResourceType
		name string
		pt   kmsg.ACLResourcePatternType
		p    string
	}{
		{kmsg.ACLResourceTypeCluster, "other", kmsg.ACLResourcePatternTypeLiteral, "User:alice"},
		{kmsg.ACLResourceTypeTopic, "t", kmsg.ACLResourcePatternTypeMatch, "User:alice"},
		{kmsg.ACLResourceTypeTopic, "t", kmsg.ACLResourcePatternTypeLiteral, "alice"},
		{kmsg.ACLResourceTypeCluster, acl.ClusterName, kmsg.ACLResourcePatternTypeLiteral, "User:carol"},
	} {
		x := kmsg.NewCreateACLsRequestCreation()
		x.ResourceType, x.ResourceName, x.ResourcePatternType, x.Principal, x.Host = c.rt, c.name, c.pt, c.p, "*"
		x.Operation, x.PermissionType = kmsg.ACLOperationDescribe, kmsg.ACLPermissionTypeAllow
		cr.Creations = append(cr.Creations, x)
	}
	cresp, err := cr.RequestWith(ctx, admCl)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, 0} {
		if cresp.Results[i].ErrorCode != want {
			t.Errorf("creation %d: %+v, want code %d", i, cresp.Results[i], want)
		}
	}
	if m := cresp.Results[0].ErrorMessage; m == nil || *m != "The only valid name for the CLUSTER resource is kafka-cluster" {
		t.Errorf("cluster name message: %v", m)
	}

	// ANONYMOUS (PLAINTEXT) and alice (no cluster ACL) are refused.
	_, anon := newAdmin(t, b.Addr(), kgo.RequestRetries(0))
	_, alice := userClient(t, b, "alice")
	for who, cl := range map[string]*kadm.Client{"ANONYMOUS": anon, "alice": alice} {
		rs, err := cl.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
		if err != nil || len(rs) == 0 || !errors.Is(rs[0].Err, kerr.ClusterAuthorizationFailed) {
			t.Errorf("%s describe: %v %+v", who, err, rs)
		}
		cs, err := cl.CreateACLs(ctx, kadm.NewACLs().Topics("x").Allow("User:mallory").Operations(kadm.OpAll))
		if err != nil || len(cs) != 1 || !errors.Is(cs[0].Err, kerr.ClusterAuthorizationFailed) {
			t.Errorf("%s create: %v %+v", who, err, cs)
		}
		ds, err := cl.DeleteACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
		if err != nil || len(ds) == 0 || !errors.Is(ds[0].Err, kerr.ClusterAuthorizationFailed) || len(ds[0].Deleted) != 0 {
			t.Errorf("%s delete: %v %+v", who, err, ds)
		}
	}

	// A restart keeps them.
	want = append([]string{"CLUSTER:LITERAL:kafka-cluster User:carol * DESCRIBE ALLOW"}, want...)
	b = restartBroker(t, b, o)
	_, adm = userClient(t, b, "admin")
	if got := aclStrings(t, adm); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after restart:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	data, err := os.ReadFile(filepath.Join(o.Dir, acl.FileName))
	if err != nil || !strings.Contains(string(data), `"resource_name": "app-"`) {
		t.Fatalf("acls.json: %v\n%s", err, data)
	}

	// Delete: each filter gets the ACLs it matched.
	ds, err := adm.DeleteACLs(ctx, kadm.NewACLs().Topics("orders").Allow("User:alice").AllowHosts().Operations(kadm.OpAny))
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, d := range ds {
		if d.Err != nil {
			t.Fatalf("delete: %v", d.Err)
		}
		for _, x := range d.Deleted {
			deleted = append(deleted, x.Name+" "+x.Operation.String())
		}
	}
	sort.Strings(deleted)
	if strings.Join(deleted, ",") != "orders DESCRIBE,orders READ" {
		t.Fatalf("deleted %v", deleted)
	}
	if got := aclStrings(t, adm); len(got) != 3 {
		t.Fatalf("after delete: %v", got)
	}
	ds, err = adm.DeleteACLs(ctx, kadm.NewACLs().Topics("nothing").Allow().AllowHosts().Operations(kadm.OpAny))
	if err != nil || len(ds) != 1 || ds[0].Err != nil || len(ds[0].Deleted) != 0 {
		t.Fatalf("delete matching nothing: %v %+v", err, ds)
	}
}
