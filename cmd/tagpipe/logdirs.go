package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// `tagpipe log-dirs --describe`: kafka-log-dirs.sh over DescribeLogDirs: each broker's
// log directories with their partitions' sizes, as the same JSON document.
func init() {
	register(func(a *app) *cobra.Command {
		var kf kafkaFlags
		var describe bool
		var topicList, brokerList string
		cmd := &cobra.Command{
			Use:   "log-dirs --describe [--topic-list a,b] [--broker-list 0,1]",
			Short: "Each broker's log directories and the size of every partition in them, as JSON (like kafka-log-dirs.sh)",
			Args:  cobra.NoArgs,
		}
		kf.add(cmd)
		cmd.RunE = kf.withAdminOnly(a, func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
			if !describe {
				return errors.New("give --describe (the only action, as kafka-log-dirs.sh)")
			}
			var wantBrokers []int32
			for f := range strings.SplitSeq(brokerList, ",") {
				if f = strings.TrimSpace(f); f == "" {
					continue
				}
				n, err := strconv.ParseInt(f, 10, 32)
				if err != nil {
					return fmt.Errorf("bad --broker-list %q: want broker ids, e.g. 0,1,2", brokerList)
				}
				wantBrokers = append(wantBrokers, int32(n))
			}
			var topics []string
			for f := range strings.SplitSeq(topicList, ",") {
				if f = strings.TrimSpace(f); f != "" {
					topics = append(topics, f)
				}
			}
			doc, brokers, err := describeLogDirs(ctx, adm, wantBrokers, topics)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "Querying brokers for log directories information")
			fmt.Fprintf(out, "Received log directory information from brokers %s\n", joinInt32(brokers))
			b, err := json.Marshal(doc)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(out, "%s\n", b)
			return err
		})
		f := cmd.Flags()
		f.BoolVar(&describe, "describe", false, "describe the log directories of the brokers")
		f.StringVar(&topicList, "topic-list", "", "only these topics, a,b,c (default: all)")
		f.StringVar(&brokerList, "broker-list", "", "only these brokers, 0,1,2 (default: all)")
		return cmd
	})
}

// The JSON document of kafka-log-dirs.sh --describe, fields in its order.
type logDirsDoc struct {
	Version int             `json:"version"`
	Brokers []logDirsBroker `json:"brokers"`
}

type logDirsBroker struct {
	Broker  int32        `json:"broker"`
	LogDirs []logDirsDir `json:"logDirs"`
}

type logDirsDir struct {
	LogDir     string              `json:"logDir"`
	Error      *string             `json:"error"`
	Partitions []logDirsPartitions `json:"partitions"`
}

type logDirsPartitions struct {
	Partition string `json:"partition"`
	Size      int64  `json:"size"`
	OffsetLag int64  `json:"offsetLag"`
	IsFuture  bool   `json:"isFuture"`
}

// describeLogDirs asks each broker (those in want, else every one) for all its log
// dirs and keeps the partitions of topics (all when empty), sorted by topic and
// partition. It returns the document and the brokers asked.
func describeLogDirs(ctx context.Context, adm *kadm.Client, want []int32, topics []string) (logDirsDoc, []int32, error) {
	doc := logDirsDoc{Version: 1, Brokers: []logDirsBroker{}}
	bs, err := adm.ListBrokers(ctx)
	if err != nil {
		return doc, nil, fmt.Errorf("cannot list brokers: %w", err)
	}
	cluster := bs.NodeIDs()
	slices.Sort(cluster)
	brokers := cluster
	if len(want) > 0 {
		var missing []int32
		for _, id := range want {
			if !slices.Contains(cluster, id) {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return doc, nil, fmt.Errorf("the given brokers do not exist from --broker-list: %s. Current existent brokers: %s", joinInt32(missing), joinInt32(cluster))
		}
		brokers = slices.Clone(want)
		slices.Sort(brokers)
		brokers = slices.Compact(brokers)
	}
	for _, id := range brokers {
		ds, err := adm.DescribeBrokerLogDirs(ctx, id, nil)
		if err != nil {
			return doc, nil, fmt.Errorf("cannot describe the log dirs of broker %d: %w", id, err)
		}
		b := logDirsBroker{Broker: id, LogDirs: []logDirsDir{}}
		for _, d := range ds.Sorted() {
			dir := logDirsDir{LogDir: d.Dir, Partitions: []logDirsPartitions{}}
			if d.Err != nil {
				msg := d.Err.Error()
				dir.Error = &msg
			}
			for _, p := range d.Topics.Sorted() {
				if len(topics) > 0 && !slices.Contains(topics, p.Topic) {
					continue
				}
				dir.Partitions = append(dir.Partitions, logDirsPartitions{
					Partition: p.Topic + "-" + strconv.Itoa(int(p.Partition)), Size: p.Size, OffsetLag: p.OffsetLag, IsFuture: p.IsFuture,
				})
			}
			b.LogDirs = append(b.LogDirs, dir)
		}
		doc.Brokers = append(doc.Brokers, b)
	}
	return doc, brokers, nil
}

func joinInt32(xs []int32) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(int(x))
	}
	return strings.Join(s, ",")
}
