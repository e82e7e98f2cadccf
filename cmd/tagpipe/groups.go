package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	register(func(a *app) *cobra.Command {
		var kf kafkaFlags
		cmd := &cobra.Command{Use: "groups", Short: "List, describe (with lag), reset and delete consumer groups (like kafka-consumer-groups.sh)"}
		kf.add(cmd)
		withAdmin := func(fn func(ctx context.Context, cl *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
			return kf.withAdmin(a, fn)
		}
		var group string

		list := &cobra.Command{Use: "list", Short: "List consumer groups and their state", Args: cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, _ *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error {
				lgs, err := adm.ListGroups(ctx)
				if err != nil {
					return fmt.Errorf("cannot list groups: %w", err)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE")
				for _, g := range lgs.Sorted() {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Group, g.State, g.ProtocolType)
				}
				return tw.Flush()
			})}

		describe := &cobra.Command{Use: "describe", Short: "Members, assignments, committed offsets and lag (records and seconds) per partition", Args: cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, cl *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error {
				lags, err := adm.Lag(ctx, group)
				if err != nil {
					return fmt.Errorf("cannot describe group %q: %w", group, err)
				}
				l, ok := lags[group]
				if !ok {
					return fmt.Errorf("group %q not described", group)
				}
				if l.DescribeErr != nil {
					return fmt.Errorf("cannot describe group %q: %w", group, l.DescribeErr)
				}
				if l.FetchErr != nil {
					return fmt.Errorf("cannot fetch offsets of group %q: %w", group, l.FetchErr)
				}
				// A group the coordinator does not know is described as Dead with nothing in
				// it (Kafka's tool: "Consumer group 'G' does not exist.").
				if l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0 {
					return fmt.Errorf("group %q does not exist (tagpipe groups list shows the groups)", group)
				}
				secs := lagSeconds(ctx, a, &kf, l.Lag)
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "Group: %s\tState: %s\tProtocol: %s\tMembers: %d\n", l.Group, l.State, l.Protocol, len(l.Members))
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tLAG-SECONDS\tMEMBER\tCLIENT-ID\tHOST")
				for _, ml := range l.Lag.Sorted() {
					member, clientID, host := "-", "-", "-"
					if ml.Member != nil {
						member, clientID, host = ml.Member.MemberID, ml.Member.ClientID, ml.Member.ClientHost
					}
					cur := "-"
					if ml.Commit.At >= 0 {
						cur = strconv.FormatInt(ml.Commit.At, 10)
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", ml.Topic, ml.Partition, cur, ml.End.Offset, ml.Lag,
						secs[tp{ml.Topic, ml.Partition}], member, clientID, host)
				}
				return tw.Flush()
			})}
		describe.Flags().StringVar(&group, "group", "", "consumer group")
		_ = describe.MarkFlagRequired("group")

		reset := resetOffsetsCmd(withAdmin)

		del := &cobra.Command{Use: "delete", Short: "Delete an empty group and its committed offsets", Args: cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, _ *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error {
				r, err := adm.DeleteGroup(ctx, group)
				if err == nil {
					err = r.Err
				}
				if err != nil {
					return fmt.Errorf("cannot delete group %q: %w", group, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted group %s.\n", group)
				return nil
			})}
		del.Flags().StringVar(&group, "group", "", "consumer group")
		_ = del.MarkFlagRequired("group")

		cmd.AddCommand(list, describe, reset, del, deleteOffsetsCmd(withAdmin))
		return cmd
	})
}

type tp struct {
	topic     string
	partition int32
}

// lagSeconds is, per lagging partition, how old the first record not yet consumed is
// (now minus its timestamp); "0" when caught up, "-" when unknown.
func lagSeconds(ctx context.Context, a *app, kf *kafkaFlags, lag kadm.GroupLag) map[tp]string {
	out := map[tp]string{}
	offsets := map[string]map[int32]kgo.Offset{}
	want := 0
	for _, ml := range lag.Sorted() {
		k := tp{ml.Topic, ml.Partition}
		switch {
		case ml.Lag == 0:
			out[k] = "0"
		case ml.Lag > 0 && ml.Commit.At >= 0:
			out[k] = "-"
			if offsets[ml.Topic] == nil {
				offsets[ml.Topic] = map[int32]kgo.Offset{}
			}
			offsets[ml.Topic][ml.Partition] = kgo.NewOffset().At(ml.Commit.At)
			want++
		default:
			out[k] = "-"
		}
	}
	if want == 0 {
		return out
	}
	cl, err := kf.client(a, kgo.ConsumePartitions(offsets))
	if err != nil {
		return out
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now := time.Now()
	seen := map[tp]bool{}
	for len(seen) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			k := tp{r.Topic, r.Partition}
			if !seen[k] {
				seen[k] = true
				out[k] = strconv.FormatFloat(max(0, now.Sub(r.Timestamp).Seconds()), 'f', 1, 64)
			}
		})
	}
	return out
}
