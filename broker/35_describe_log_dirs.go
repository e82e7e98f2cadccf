package broker

// DescribeLogDirs v0–4.
//
// Behaviour: one log dir (Options.Dir, as an absolute path like Kafka's) holding every
// partition, each with its size on disk (all segments and indexes). A null topic list
// asks for every partition; otherwise, as in Kafka, every topic is still listed, with
// only the partitions asked for (none for a topic not named). `tagpipe topics describe`
// shows these sizes. Volume totals (v4) are reported from statfs where available, else
// -1.
//
// Version notes: v1 same as v0 (request and response; Kafka 3.x serves v0, deprecated,
// and 4.0 dropped it); v2 flexible; v3 ErrorCode; v4 TotalBytes/UsableBytes.

import (
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(35, 0, 4, handleDescribeLogDirs) }

func handleDescribeLogDirs(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !c.allowedCluster(kmsg.ACLOperationDescribe) { // v3+ says why; before, no dirs
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.opts.Dir
	if abs, err := filepath.Abs(b.opts.Dir); err == nil {
		dir.Dir = abs // Kafka names a log dir by its absolute path
	}
	dir.TotalBytes, dir.UsableBytes = diskSpace(b.opts.Dir)
	// As Kafka's ReplicaManager.describeLogDirs: every topic in the dir is listed, each
	// with the partitions asked for (all of them for a null topic list, so a topic not
	// asked for has none).
	var wanted map[topicPartition]bool
	if req.Topics != nil {
		wanted = map[topicPartition]bool{}
		for _, rt := range req.Topics {
			for _, p := range rt.Partitions {
				wanted[topicPartition{rt.Topic, p}] = true
			}
		}
	}
	for _, name := range b.topicNames() {
		t := b.topic(name)
		if t == nil {
			continue // deleted meanwhile
		}
		s := b.snapshot(t)
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = s.name
		for _, p := range s.parts {
			if wanted != nil && !wanted[topicPartition{s.name, p.index}] {
				continue
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition, dp.Size = p.index, p.log.Size()
			dt.Partitions = append(dt.Partitions, dp)
		}
		dir.Topics = append(dir.Topics, dt)
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return resp, nil
}
