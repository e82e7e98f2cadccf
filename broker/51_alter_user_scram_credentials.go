package broker

// AlterUserScramCredentials v0.
//
// Behaviour: SCRAM credentials come from the broker's configuration (broker.sasl_users,
// derived at start: 50_describe_user_scram_credentials.go) and cannot be changed or
// stored through the Admin API. Every user named, by a deletion or an upsertion, is refused once
// with UNSUPPORTED_VERSION, as Kafka's ScramControlManager.alterCredentials refuses each
// user when its metadata version cannot store SCRAM credentials: that check comes
// before the mechanism and iteration checks, and a user named again after being refused
// is not answered again (so no DUPLICATE_RESOURCE either). Users are answered in the
// order first named, deletions before upsertions, as Kafka walks them.
//
// Version notes: v0 flexible.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(51, 0, 0, handleAlterUserSCRAMCredentials) }

func handleAlterUserSCRAMCredentials(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	names := make([]string, 0, len(req.Deletions)+len(req.Upsertions))
	for _, d := range req.Deletions {
		names = append(names, d.Name)
	}
	for _, u := range req.Upsertions {
		names = append(names, u.Name)
	}
	answered := map[string]bool{}
	for _, name := range names {
		if answered[name] {
			continue
		}
		answered[name] = true
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = name
		terr(kerr.UnsupportedVersion, "SCRAM credentials cannot be stored: they are set in the broker's configuration (broker.sasl_users)").set(&r.ErrorCode, &r.ErrorMessage)
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
