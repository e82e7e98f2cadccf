package broker

// DescribeUserScramCredentials v0.
//
// Behaviour: there is no SASL here, so no user has SCRAM credentials (none can be set:
// 51_alter_user_scram_credentials.go). Answered as Kafka's ScramImage.describe answers
// with none stored: a null or empty user list (all users) lists nobody; each user named
// is RESOURCE_NOT_FOUND ("Attempt to describe a user credential that does not exist:
// …"), except a user named more than once, answered once with DUPLICATE_RESOURCE
// ("Cannot describe SCRAM credentials for the same user twice in a single request: …").
// Users are answered in the order first named.
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
	names := make([]string, len(req.Users))
	for i, u := range req.Users {
		names[i] = u.Name
	}
	dup := findDups(names)
	for _, name := range names {
		isDup, first := dup.take(name)
		if isDup && !first {
			continue
		}
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User = name
		te := terr(kerr.ResourceNotFound, "Attempt to describe a user credential that does not exist: %s", name)
		if isDup {
			te = terr(kerr.DuplicateResource, "Cannot describe SCRAM credentials for the same user twice in a single request: %s", name)
		}
		te.set(&r.ErrorCode, &r.ErrorMessage)
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
