package broker

// DescribeUserScramCredentials v0.
//
// Behaviour: when a SASL listener has a SCRAM mechanism enabled, the users with SCRAM
// credentials are broker.sasl_users, each with a credential per enabled SCRAM mechanism
// and 4096 iterations, derived at start, and the users whose credentials were set by
// AlterUserScramCredentials (51_alter_user_scram_credentials.go), with the mechanisms
// and iterations stored; mechanisms are listed SCRAM-SHA-256, then SCRAM-SHA-512. Answered as Kafka's
// ScramImage.describe: a null or empty user list (all users) lists every such user, by
// name; a user named without credentials is RESOURCE_NOT_FOUND ("Attempt to describe a
// user credential that does not exist: …"), a user named more than once is answered
// once with DUPLICATE_RESOURCE ("Cannot describe SCRAM credentials for the same user
// twice in a single request: …"). Named users are answered in the order first named.
//
// Version notes: v0 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(50, 0, 0, handleDescribeUserSCRAMCredentials) }

func handleDescribeUserSCRAMCredentials(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !c.allowedCluster(kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		return resp, nil
	}
	users, creds := c.b.sasl.scramUsers()
	names := make([]string, len(req.Users))
	for i, u := range req.Users {
		names[i] = u.Name
	}
	if len(names) == 0 {
		names = users
	}
	dup := findDups(names)
	for _, name := range names {
		isDup, first := dup.take(name)
		if isDup && !first {
			continue
		}
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User = name
		switch infos, ok := creds[name]; {
		case isDup:
			terr(kerr.DuplicateResource, "Cannot describe SCRAM credentials for the same user twice in a single request: %s", name).set(&r.ErrorCode, &r.ErrorMessage)
		case !ok:
			terr(kerr.ResourceNotFound, "Attempt to describe a user credential that does not exist: %s", name).set(&r.ErrorCode, &r.ErrorMessage)
		default:
			for _, in := range infos {
				ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				ci.Mechanism, ci.Iterations = in.mechanism, in.iterations
				r.CredentialInfos = append(r.CredentialInfos, ci)
			}
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
