package broker

// DescribeCluster v0–1.
//
// Behaviour: this node, with its advertised host/port, is the whole cluster and its
// controller. Authorized operations, when asked for, are those the ACLs allow (0
// without DESCRIBE on the cluster, as Kafka), every cluster operation without an
// authorizer (authorize.go).
//
// Version notes: v0 flexible; v1 EndpointType (only brokers, 1, is served).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/broker/acl"
)

func init() { register(60, 0, 1, handleDescribeCluster) }

func handleDescribeCluster(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "only broker endpoints (1) are served"
		resp.ErrorMessage = &msg
		return resp, nil
	}
	resp.EndpointType = 1
	resp.ClusterID = b.clusterID
	resp.ControllerID = b.opts.NodeID
	if req.IncludeClusterAuthorizedOperations {
		// As Kafka: 0 without DESCRIBE on the cluster.
		resp.ClusterAuthorizedOperations = 0
		if c.allowedSilently(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeCluster, acl.ClusterName) {
			resp.ClusterAuthorizedOperations = c.authorizedOps(kmsg.ACLResourceTypeCluster, acl.ClusterName)
		}
	}
	br := kmsg.NewDescribeClusterResponseBroker()
	br.NodeID = b.opts.NodeID
	br.Host, br.Port = c.advertised()
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{br}
	return resp, nil
}
