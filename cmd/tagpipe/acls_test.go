package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tagpipe/tagpipe/broker"
)

// TestACLsCommands: acls add, list and remove against the built-in broker with
// authorizer acl, as the super user through --command-config (SASL SCRAM); ANONYMOUS
// on the PLAINTEXT listener is refused; bad flags are refused before anything is sent.
func TestACLsCommands(t *testing.T) {
	b := startTestBrokerWith(t, func(o *broker.Options) {
		o.Listeners = []broker.Listener{{Name: "INTERNAL", Listen: "127.0.0.1:0"}, {Name: "SASL_PLAINTEXT", Listen: "127.0.0.1:0"}}
		o.SASL = broker.SASLOptions{Mechanisms: []string{"SCRAM-SHA-256"}, Users: map[string]string{"admin": "admin-secret", "carol": "carol-secret"}}
		o.Authorizer = broker.AuthorizerOptions{Mode: broker.AuthorizerACL, SuperUsers: []string{"User:admin"}}
	})
	dir := t.TempDir()
	props := writeTestFile(t, "admin.properties", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"+
		"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"admin-secret\";\n")
	run := func(args ...string) (string, error) {
		var out, errw bytes.Buffer
		root := newRootCmd(&out, &errw)
		root.SetArgs(append([]string{"--data-dir", dir, "acls"}, append(args, "--request-timeout", "10s")...))
		err := root.ExecuteContext(context.Background())
		return out.String() + errw.String(), err
	}
	admin := func(args ...string) string {
		t.Helper()
		out, err := run(append(args, "--bootstrap-server", b.ListenerAddr("SASL_PLAINTEXT"), "--command-config", props)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	if out := admin("add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Describe", "--topic", "orders", "--group", "g"); !strings.Contains(out, "added 4 ACL(s)") {
		t.Fatalf("add: %s", out)
	}
	admin("add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.1", "--operation", "Write", "--topic", "logs-", "--resource-pattern-type", "prefixed")
	admin("add", "--allow-principal", "User:alice", "--operation", "IdempotentWrite", "--cluster")
	admin("add", "--allow-principal", "User:alice", "--transactional-id", "tx") // operation All

	out := admin("list")
	for _, want := range []string{
		`(?m)^TOPIC\s+orders\s+LITERAL\s+User:alice\s+\*\s+READ\s+ALLOW$`,
		`(?m)^TOPIC\s+logs-\s+PREFIXED\s+User:bob\s+10\.0\.0\.1\s+WRITE\s+DENY$`,
		`(?m)^GROUP\s+g\s+LITERAL\s+User:alice\s+\*\s+DESCRIBE\s+ALLOW$`,
		`(?m)^CLUSTER\s+kafka-cluster\s+LITERAL\s+User:alice\s+\*\s+IDEMPOTENT_WRITE\s+ALLOW$`,
		`(?m)^TRANSACTIONAL_ID\s+tx\s+LITERAL\s+User:alice\s+\*\s+ALL\s+ALLOW$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("list lacks %s:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 8 { // header + 7 ACLs
		t.Errorf("list: %d lines\n%s", n, out)
	}
	// Filters: a resource (literal), MATCH, a principal.
	if out := admin("list", "--topic", "orders"); strings.Count(out, "\n") != 3 {
		t.Errorf("list --topic orders:\n%s", out)
	}
	if out := admin("list", "--topic", "logs-app", "--resource-pattern-type", "match"); strings.Count(out, "\n") != 2 || !strings.Contains(out, "logs-") {
		t.Errorf("list --topic logs-app match:\n%s", out)
	}
	if out := admin("list", "--principal", "User:bob"); strings.Count(out, "\n") != 2 {
		t.Errorf("list --principal User:bob:\n%s", out)
	}

	// Remove: one operation of a resource, then all of a resource.
	if out := admin("remove", "--topic", "orders", "--allow-principal", "User:alice", "--operation", "Describe"); !strings.Contains(out, "removed 1 ACL(s)") ||
		!regexp.MustCompile(`(?m)^TOPIC\s+orders\s+LITERAL\s+User:alice\s+\*\s+DESCRIBE\s+ALLOW$`).MatchString(out) {
		t.Fatalf("remove Describe:\n%s", out)
	}
	if out := admin("remove", "--group", "g", "--force"); !strings.Contains(out, "removed 2 ACL(s)") { // --force as kafka-acls.sh scripts pass it
		t.Fatalf("remove --group g:\n%s", out)
	}
	if out := admin("list"); strings.Count(out, "\n") != 5 || strings.Contains(out, "GROUP") {
		t.Fatalf("list after remove:\n%s", out)
	}

	// ANONYMOUS (PLAINTEXT) is refused; flags checked before sending.
	if out, err := run("list", "--bootstrap-server", b.ListenerAddr("INTERNAL")); err == nil || !strings.Contains(err.Error(), "CLUSTER_AUTHORIZATION_FAILED") {
		t.Errorf("ANONYMOUS list: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "--topic", "t", "--operation", "Read"}, "--allow-principal"},
		{[]string{"add", "--allow-principal", "User:x", "--operation", "Read"}, "give a resource"},
		{[]string{"add", "--allow-principal", "User:x", "--topic", "t", "--operation", "Fly"}, "--operation"},
		{[]string{"add", "--allow-principal", "User:x", "--topic", "t", "--resource-pattern-type", "match"}, "literal or prefixed"},
		{[]string{"remove", "--allow-principal", "User:x"}, "give a resource"},
	} {
		if out, err := run(append(tc.args, "--bootstrap-server", b.ListenerAddr("INTERNAL"))...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q\n%s", tc.args, err, tc.want, out)
		}
	}

	// A user with no ACL on the topic is refused it; one who may only read it is refused
	// the idempotent producer's InitProducerId with the cluster's code. Produce says what
	// each means and which ACL to add.
	carol := writeTestFile(t, "carol.properties", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"+
		"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"carol\" password=\"carol-secret\";\n")
	produce := func() error {
		var pout, perr bytes.Buffer
		root := newRootCmd(&pout, &perr)
		root.SetIn(strings.NewReader("x\n"))
		root.SetArgs([]string{"--data-dir", dir, "produce", "--topic", "orders", "--request-timeout", "10s",
			"--bootstrap-server", b.ListenerAddr("SASL_PLAINTEXT"), "--command-config", carol})
		return root.ExecuteContext(context.Background())
	}
	const hint = "it needs Write on the topic (tagpipe acls add --allow-principal User:NAME --operation Write --topic orders)"
	if err := produce(); err == nil || !errors.Is(err, kerr.TopicAuthorizationFailed) ||
		!strings.Contains(err.Error(), "not authorized to write to topic orders") || !strings.Contains(err.Error(), "--operation Write --topic orders") {
		t.Errorf("produce without an ACL: %v", err)
	}
	runTagpipe(t, "--data-dir", dir, "topics", "create", "--topic", "orders", "--partitions", "1",
		"--bootstrap-server", b.ListenerAddr("SASL_PLAINTEXT"), "--command-config", props)
	admin("add", "--allow-principal", "User:carol", "--operation", "Read", "--topic", "orders")
	if err := produce(); err == nil || !errors.Is(err, kerr.ClusterAuthorizationFailed) ||
		!strings.Contains(err.Error(), "not authorized to do idempotent sends") || !strings.Contains(err.Error(), hint) {
		t.Errorf("produce with Read only: %v", err)
	}
}

// TestACLsWithoutAuthorizer: a broker without an authorizer answers SECURITY_DISABLED;
// the command adds where to turn one on.
func TestACLsWithoutAuthorizer(t *testing.T) {
	dir, addr := t.TempDir(), startTestBroker(t).Addr()
	for _, args := range [][]string{
		{"list"},
		{"add", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "orders"},
	} {
		out, err := runTagpipeErr(append([]string{"--data-dir", dir, "acls"}, append(args, "--bootstrap-server", addr)...)...)
		if err == nil || !strings.Contains(err.Error(), "SECURITY_DISABLED") || !strings.Contains(err.Error(), "set broker.authorizer: acl") {
			t.Fatalf("acls %v without an authorizer: %v\n%s", args, err, out)
		}
	}
}
