package main

import (
	"context"
	"errors"
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
		var group, topic, toDatetime string
		var toEarliest, toLatest, execute bool
		var shiftBy int64

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

		reset := &cobra.Command{Use: "reset-offsets", Short: "Move a group's committed offsets (dry run unless --execute; the group must have no members)", Args: cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, _ *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error {
				n := 0
				for _, b := range []bool{toEarliest, toLatest, toDatetime != "", cmd.Flags().Changed("shift-by")} {
					if b {
						n++
					}
				}
				if n != 1 {
					return errors.New("give exactly one of --to-earliest, --to-latest, --to-datetime, --shift-by")
				}
				committed, err := adm.FetchOffsets(ctx, group)
				if err != nil {
					return fmt.Errorf("cannot fetch offsets of %q: %w", group, err)
				}
				topics := committed.Offsets().TopicsSet().Topics()
				if topic != "" {
					topics = []string{topic}
				}
				if len(topics) == 0 {
					return fmt.Errorf("group %q has no committed offsets; name a --topic", group)
				}
				starts, err := adm.ListStartOffsets(ctx, topics...)
				if err != nil {
					return err
				}
				ends, err := adm.ListEndOffsets(ctx, topics...)
				if err != nil {
					return err
				}
				var byTime kadm.ListedOffsets
				if toDatetime != "" {
					ts, err := time.Parse(time.RFC3339, toDatetime)
					if err != nil {
						return fmt.Errorf("bad --to-datetime %q: want RFC 3339, e.g. 2026-01-02T15:04:05Z: %w", toDatetime, err)
					}
					if byTime, err = adm.ListOffsetsAfterMilli(ctx, ts.UnixMilli(), topics...); err != nil {
						return err
					}
				}
				next := kadm.Offsets{}
				ends.Each(func(e kadm.ListedOffset) {
					s, _ := starts.Lookup(e.Topic, e.Partition)
					cur, has := committed.Lookup(e.Topic, e.Partition)
					at := e.Offset
					switch {
					case toEarliest:
						at = s.Offset
					case toLatest:
						at = e.Offset
					case toDatetime != "":
						if o, ok := byTime.Lookup(e.Topic, e.Partition); ok && o.Offset >= 0 {
							at = o.Offset
						}
					default:
						base := s.Offset
						if has {
							base = cur.At
						}
						at = min(max(base+shiftBy, s.Offset), e.Offset)
					}
					next.Add(kadm.Offset{Topic: e.Topic, Partition: e.Partition, At: at, LeaderEpoch: -1})
				})
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET")
				for _, o := range next.Sorted() { // by topic and partition, as describe prints them
					cur := "-"
					if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.At >= 0 {
						cur = strconv.FormatInt(c.At, 10)
					}
					fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", o.Topic, o.Partition, cur, o.At)
				}
				_ = tw.Flush()
				if !execute {
					fmt.Fprintln(cmd.OutOrStdout(), "Dry run: nothing changed (add --execute).")
					return nil
				}
				rs, err := adm.CommitOffsets(ctx, group, next)
				if err != nil {
					return fmt.Errorf("cannot commit offsets of %q: %w", group, err)
				}
				if err := rs.Error(); err != nil {
					return fmt.Errorf("cannot commit offsets of %q (it must have no active members): %w", group, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Reset offsets of group %s.\n", group)
				return nil
			})}
		reset.Flags().StringVar(&group, "group", "", "consumer group")
		reset.Flags().StringVar(&topic, "topic", "", "only this topic (default: every topic the group committed)")
		reset.Flags().BoolVar(&toEarliest, "to-earliest", false, "to each partition's log start offset")
		reset.Flags().BoolVar(&toLatest, "to-latest", false, "to each partition's end offset")
		reset.Flags().StringVar(&toDatetime, "to-datetime", "", "to the first record at or after this time (RFC 3339)")
		reset.Flags().Int64Var(&shiftBy, "shift-by", 0, "move each committed offset by N (negative: back)")
		reset.Flags().BoolVar(&execute, "execute", false, "apply the change (default: only show it)")
		_ = reset.MarkFlagRequired("group")

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

		cmd.AddCommand(list, describe, reset, del)
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
