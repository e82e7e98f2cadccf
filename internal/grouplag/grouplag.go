// Package grouplag computes the lag of a KIP-848 consumer group (group.protocol=consumer)
// as kafka-consumer-groups.sh shows it. kadm's Lag describes groups with DescribeGroups,
// which answers such a group Dead (as Kafka 4 does); ConsumerGroupDescribe has its
// members and their assignments instead. Used by `tagpipe groups describe` and the
// console's status.
package grouplag

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TP is a topic partition.
type TP struct {
	Topic     string
	Partition int32
}

// Describe describes the groups that are consumer groups (ConsumerGroupDescribe); the
// others (classic groups, or every group on a broker without the API) are left out.
func Describe(ctx context.Context, adm *kadm.Client, groups ...string) map[string]kadm.DescribedConsumerGroup {
	out := map[string]kadm.DescribedConsumerGroup{}
	if len(groups) == 0 {
		return out
	}
	ds, err := adm.DescribeConsumerGroups(ctx, groups...)
	if err != nil {
		return out
	}
	for name, d := range ds {
		if d.Err == nil {
			out[name] = d
		}
	}
	return out
}

// Consumer is the lag of a consumer group per partition it owns or committed:
// the committed offset's distance to the log end (from the log start without a
// commit), and who owns the partition.
func Consumer(ctx context.Context, adm *kadm.Client, d kadm.DescribedConsumerGroup) (kadm.GroupLag, map[TP]*kadm.ConsumerGroupMember, error) {
	commits, err := adm.FetchOffsets(ctx, d.Group)
	if err == nil {
		err = commits.Error()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cannot fetch offsets of group %q: %w", d.Group, err)
	}
	owners := map[TP]*kadm.ConsumerGroupMember{}
	set := kadm.TopicsSet{}
	for i := range d.Members {
		m := &d.Members[i]
		for t, ps := range m.Assignment {
			if t == "" { // a broker that names topics by id only (kfake): nothing to look up
				continue
			}
			for p := range ps {
				owners[TP{t, p}] = m
				set.Add(t, p)
			}
		}
	}
	commits.Each(func(o kadm.OffsetResponse) { set.Add(o.Topic, o.Partition) })
	lag := kadm.GroupLag{}
	if len(set) == 0 {
		return lag, owners, nil
	}
	starts, err := adm.ListStartOffsets(ctx, set.Topics()...)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot list the start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, set.Topics()...)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot list the end offsets: %w", err)
	}
	for t, ps := range set {
		lag[t] = map[int32]kadm.GroupMemberLag{}
		for p := range ps {
			ml := kadm.GroupMemberLag{Topic: t, Partition: p, Commit: kadm.Offset{Topic: t, Partition: p, At: -1}}
			if c, ok := commits.Lookup(t, p); ok {
				ml.Commit = c.Offset
			}
			ml.Start, _ = starts.Lookup(t, p)
			end, ok := ends.Lookup(t, p)
			ml.End = end
			switch {
			case !ok || end.Err != nil:
				ml.Lag, ml.Err = -1, end.Err
			case ml.Commit.At >= 0:
				ml.Lag = max(0, end.Offset-ml.Commit.At)
			default:
				ml.Lag = max(0, end.Offset-ml.Start.Offset)
			}
			lag[t][p] = ml
		}
	}
	return lag, owners, nil
}
