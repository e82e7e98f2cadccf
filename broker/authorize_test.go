package broker

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
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
	return newAdmin(t, b.ListenerAddr("SASL_PLAINTEXT"), append([]kgo.Opt{kgo.RequestRetries(0), kgo.MetadataMinAge(10 * time.Millisecond),
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

// raw sends req straight to the broker cl was seeded with (no coordinator lookup, no
// retries) and returns the response.
func raw[R kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	resp, err := cl.SeedBrokers()[0].Request(testCtx(t), req)
	if err != nil {
		t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	return resp.(R)
}

// grant creates ACLs as the super user, failing the test on any error.
func grant(t *testing.T, adm *kadm.Client, bld *kadm.ACLBuilder) {
	t.Helper()
	rs, err := adm.CreateACLs(testCtx(t), bld)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Err != nil {
			t.Fatalf("create ACL %s %s: %v", r.Type, r.Name, r.Err)
		}
	}
}

func produceErr(t *testing.T, cl *kgo.Client, topic string) error {
	t.Helper()
	return cl.ProduceSync(testCtx(t), &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr()
}

// TestACLEnforcement: a SCRAM user without ACLs is refused produce, consume and group
// membership with Kafka's error codes, and allowed once ACLs are added; DENY beats
// ALLOW; prefixed and wildcard patterns; the super user needs no ACL; ANONYMOUS on the
// PLAINTEXT listener may not alter SCRAM credentials; kafka-go sees the same.
func TestACLEnforcement(t *testing.T) {
	b := startBroker(t, aclOptions(t))
	_, adm := userClient(t, b, "admin")
	ctx := testCtx(t)
	for _, topic := range []string{"orders", "logs-app", "other"} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatalf("super user creating %s: %v", topic, err)
		}
	}
	alice, _ := userClient(t, b, "alice", kgo.DisableIdempotentWrite(), kgo.RecordDeliveryTimeout(5*time.Second))
	idem, _ := userClient(t, b, "alice", kgo.RecordDeliveryTimeout(5*time.Second))
	// list lists the topics as user, on a new client (kadm's metadata cache would
	// answer with the errors a producer's client met before).
	list := func(user string) ([]string, error) {
		cl, adm := userClient(t, b, user)
		defer cl.Close()
		ts, err := adm.ListTopics(ctx)
		return ts.Names(), err
	}

	// Nothing allowed yet.
	if err := produceErr(t, alice, "orders"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce without ACL: %v", err)
	}
	ipid := kmsg.NewPtrInitProducerIDRequest()
	if r := raw[*kmsg.InitProducerIDResponse](t, alice, ipid); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("InitProducerId without ACL: %+v", r)
	}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version, fetch.ReplicaID, fetch.MaxBytes = 12, -1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "orders"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	if r := raw[*kmsg.FetchResponse](t, alice, fetch); r.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("fetch without ACL: %+v", r.Topics[0].Partitions[0])
	}
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys = []string{"g"}
	if r := raw[*kmsg.FindCoordinatorResponse](t, alice, fc); r.Coordinators[0].ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("find coordinator without ACL: %+v", r)
	}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group, join.ProtocolType, join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = "g", "consumer", 10000, 10000
	join.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{}}}
	if r := raw[*kmsg.JoinGroupResponse](t, alice, join); r.ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("join without ACL: %+v", r)
	}
	if ts, err := list("alice"); err != nil || len(ts) != 0 {
		t.Fatalf("alice lists topics she may not describe: %v %v", ts, err)
	}

	// WRITE on orders: produce works, idempotent too (KIP-679: WRITE on a topic is enough).
	grant(t, adm, kadm.NewACLs().Topics("orders").Allow("User:alice").AllowHosts().Operations(kadm.OpWrite))
	for _, cl := range []*kgo.Client{alice, idem} {
		for i := 0; i < 3; i++ {
			if err := produceErr(t, cl, "orders"); err != nil {
				t.Fatalf("produce with WRITE: %v", err)
			}
		}
	}
	if err := produceErr(t, alice, "other"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to another topic: %v", err)
	}
	if ts, err := list("alice"); err != nil || strings.Join(ts, ",") != "orders" {
		t.Fatalf("alice lists %v %v, want orders (WRITE implies DESCRIBE)", ts, err)
	}

	// READ on the topic and the group: a consumer group reads and commits.
	grant(t, adm, kadm.NewACLs().Topics("orders").Groups("g").Allow("User:alice").AllowHosts().Operations(kadm.OpRead))
	cons, _ := userClient(t, b, "alice", kgo.ConsumerGroup("g"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	got := 0
	for got < 6 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume with READ: %v", err)
		}
		got += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit with READ: %v", err)
	}
	cons.Close()

	// DENY beats ALLOW.
	grant(t, adm, kadm.NewACLs().Topics("orders").Deny("User:alice").DenyHosts().Operations(kadm.OpRead))
	if r := raw[*kmsg.FetchResponse](t, alice, fetch); r.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("fetch with a DENY: %+v", r.Topics[0].Partitions[0])
	}
	commit := kmsg.NewPtrOffsetCommitRequest()
	commit.Group, commit.Generation = "g", -1
	ct := kmsg.NewOffsetCommitRequestTopic()
	ct.Topic = "orders"
	ct.Partitions = []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}
	commit.Topics = append(commit.Topics, ct)
	if r := raw[*kmsg.OffsetCommitResponse](t, alice, commit); r.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("commit with a DENY on the topic: %+v", r.Topics[0].Partitions[0])
	}
	commit.Group = "h"
	if r := raw[*kmsg.OffsetCommitResponse](t, alice, commit); r.Topics[0].Partitions[0].ErrorCode != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("commit to another group: %+v", r.Topics[0].Partitions[0])
	}

	// A prefixed pattern; a wildcard principal and resource.
	if err := produceErr(t, alice, "logs-app"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce to logs-app before the prefix ACL: %v", err)
	}
	grant(t, adm, kadm.NewACLs().Topics("logs-").ResourcePatternType(kadm.ACLPatternPrefixed).Allow("User:alice").AllowHosts().Operations(kadm.OpWrite))
	if err := produceErr(t, alice, "logs-app"); err != nil {
		t.Fatalf("produce to logs-app with the prefix ACL: %v", err)
	}
	if ts, err := list("bob"); err != nil || len(ts) != 0 {
		t.Fatalf("bob lists %v %v", ts, err)
	}
	grant(t, adm, kadm.NewACLs().Topics("*").Allow("User:*").AllowHosts().Operations(kadm.OpDescribe))
	if ts, err := list("bob"); err != nil || len(ts) != 3 {
		t.Fatalf("bob lists %v %v after User:* DESCRIBE on *", ts, err)
	}

	// ANONYMOUS (PLAINTEXT) may not change SCRAM credentials; the super user may.
	_, anon := newAdmin(t, b.Addr(), kgo.RequestRetries(0))
	rs, err := anon.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "mallory", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "x"}})
	if !errors.Is(err, kerr.ClusterAuthorizationFailed) && !errors.Is(rs["mallory"].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("ANONYMOUS altering SCRAM credentials: %v %+v", err, rs)
	}
	if _, err := anon.DescribeUserSCRAMs(ctx); !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("ANONYMOUS describing SCRAM credentials: %v", err)
	}
	if rs, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "carol-secret"}}); err != nil || rs.Error() != nil {
		t.Fatalf("super user altering SCRAM credentials: %v %+v", err, rs)
	}

	// kafka-go: refused, then allowed.
	tr := &kafka.Transport{SASL: kafkaGoSASL(t, "SCRAM-SHA-256", "bob", "bob-secret")}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(b.ListenerAddr("SASL_PLAINTEXT")), Topic: "other", Transport: tr, MaxAttempts: 1, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	var we kafka.WriteErrors
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("x")}); !errors.As(err, &we) || !errors.Is(we[0], kafka.TopicAuthorizationFailed) {
		t.Fatalf("kafka-go write without ACL: %v", err)
	}
	grant(t, adm, kadm.NewACLs().Topics("other").Allow("User:bob").AllowHosts().Operations(kadm.OpWrite))
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("x")}); err != nil {
		t.Fatalf("kafka-go write with WRITE: %v", err)
	}
}

// TestACLAllowEveryoneIfNoACLFound: with allow_everyone_if_no_acl_found, a topic no ACL
// names is open to everyone (ANONYMOUS too), one with an ACL only to whom it allows.
func TestACLAllowEveryoneIfNoACLFound(t *testing.T) {
	o := aclOptions(t)
	o.Authorizer.AllowEveryoneIfNoACLFound = true
	b := startBroker(t, o)
	_, adm := userClient(t, b, "admin")
	grant(t, adm, kadm.NewACLs().Topics("owned").Allow("User:alice").AllowHosts().Operations(kadm.OpAll))
	anon, _ := newAdmin(t, b.Addr(), kgo.RecordDeliveryTimeout(5*time.Second), kgo.AllowAutoTopicCreation())
	if err := produceErr(t, anon, "free"); err != nil {
		t.Fatalf("ANONYMOUS producing to a topic without ACLs (auto-created): %v", err)
	}
	bob, _ := userClient(t, b, "bob", kgo.DisableIdempotentWrite(), kgo.RecordDeliveryTimeout(5*time.Second))
	if err := produceErr(t, bob, "owned"); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("bob producing to alice's topic: %v", err)
	}
	alice, _ := userClient(t, b, "alice", kgo.RecordDeliveryTimeout(5*time.Second), kgo.AllowAutoTopicCreation())
	if err := produceErr(t, alice, "owned"); err != nil {
		t.Fatalf("alice producing to her topic (ALL: created too): %v", err)
	}
}

// TestSASLListenerWithStoredUsersOnly: a SASL listener starts without configured users;
// a user added with AlterUserScramCredentials over the PLAINTEXT listener (ANONYMOUS a
// super user there, as Kafka setups bootstrap) authenticates, before and after a restart.
func TestSASLListenerWithStoredUsersOnly(t *testing.T) {
	o := aclOptions(t)
	o.SASL.Users = nil
	o.Authorizer.SuperUsers = []string{"User:ANONYMOUS"}
	b := startBroker(t, o)
	_, anon := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	if rs, err := anon.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "dave", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "dave-secret"}}); err != nil || rs.Error() != nil {
		t.Fatalf("storing dave: %v %+v", err, rs)
	}
	grant(t, anon, kadm.NewACLs().Topics("t").Allow("User:dave").AllowHosts().Operations(kadm.OpAll))
	for i := 0; i < 2; i++ {
		dave, _ := userClient(t, b, "dave", kgo.AllowAutoTopicCreation(), kgo.RecordDeliveryTimeout(5*time.Second))
		if err := produceErr(t, dave, "t"); err != nil {
			t.Fatalf("round %d: dave producing: %v", i, err)
		}
		dave.Close()
		b = restartBroker(t, b, o)
	}
}
