package broker

// DescribeLogDirs v1–4.
//
// Behaviour: one log dir (Options.Dir, as an absolute path like Kafka's) holding every
// partition, each with its size on disk (all segments and indexes); a null topic list
// means all topics. `tagpipe topics describe` shows these sizes. Volume totals (v4) are reported from statfs where
// available, else -1.
//
// Version notes: v1 same as v0 (v0 is not served); v2 flexible; v3 ErrorCode; v4
// TotalBytes/UsableBytes.

import (
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(35, 1, 4, handleDescribeLogDirs) }

func handleDescribeLogDirs(c *conn, kreq kmsg.Request) (kmsg.Response, error) {
	b := c.b
	req := kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.opts.Dir
	if abs, err := filepath.Abs(b.opts.Dir); err == nil {
		dir.Dir = abs // Kafka names a log dir by its absolute path
	}
	dir.TotalBytes, dir.UsableBytes = diskSpace(b.opts.Dir)
	add := func(t *topic, only []int32) {
		s := b.snapshot(t)
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = s.name
		for _, p := range s.parts {
			if only != nil && !containsInt32(only, p.index) {
				continue
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition, dp.Size = p.index, p.log.Size()
			dt.Partitions = append(dt.Partitions, dp)
		}
		dir.Topics = append(dir.Topics, dt)
	}
	if req.Topics == nil {
		for _, name := range b.topicNames() {
			if t := b.topic(name); t != nil {
				add(t, nil)
			}
		}
	} else {
		for _, rt := range req.Topics {
			if t := b.topic(rt.Topic); t != nil {
				add(t, rt.Partitions)
			}
		}
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return resp, nil
}

func containsInt32(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
