package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(func(a *app) *cobra.Command {
		var kf kafkaFlags
		cmd := &cobra.Command{Use: "groups", Short: "List, describe (with lag), reset and delete consumer groups (like kafka-consumer-groups.sh)"}
		kf.add(cmd)
		withAdmin := func(fn func(ctx context.Context, cl *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
			return kf.withAdmin(a, fn)
		}
		var groups groupsFlag

		var listStates, listTypes string
		list := &cobra.Command{Use: "list [--state [S,S]] [--type T,T]", Short: "List consumer groups, their state and type (classic, or consumer: KIP-848)",
			RunE: withAdmin(func(ctx context.Context, cl *kgo.Client, _ *kadm.Client, cmd *cobra.Command) error {
				states, err := parseGroupStates(listStates)
				if err != nil {
					return err
				}
				types, err := parseGroupTypes(listTypes)
				if err != nil {
					return err
				}
				gs, err := listGroups(ctx, cl, states, types)
				if err != nil {
					return fmt.Errorf("cannot list groups: %w", err)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "GROUP\tSTATE\tTYPE\tPROTOCOL-TYPE")
				for _, g := range gs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Group, g.GroupState, g.GroupType, g.ProtocolType)
				}
				return tw.Flush()
			})}
		list.Flags().StringVar(&listTypes, "type", "", "only groups of these types (comma-separated: classic, consumer)")
		list.Flags().StringVar(&listStates, "state", "", "only groups in these states (comma-separated: Stable, Empty, PreparingRebalance, CompletingRebalance, Dead, Assigning, Reconciling); without a value, all")
		list.Flags().Lookup("state").NoOptDefVal = " "
		// --state's value is optional, so pflag takes it only as --state=S; "--state S" (as
		// Kafka's tool takes it) leaves S as an argument, read here.
		list.Args = cobra.MaximumNArgs(1)
		list.PreRunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			if listStates != " " {
				return fmt.Errorf("unexpected argument %q", args[0])
			}
			listStates = args[0]
			return nil
		}

		var members, verbose, showState, offsets bool
		describe := &cobra.Command{Use: "describe (--group G … | --all-groups) [--offsets | --members [--verbose] | --state]",
			Short: "Per group: committed offsets and lag (records and seconds) per partition (--offsets, the default), members (--members; --verbose: assignments) or state (--state)",
			Args:  cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, _ *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error {
				ids, err := groups.resolve(ctx, adm)
				if err != nil {
					return err
				}
				n := 0
				for _, b := range []bool{members, showState, offsets} {
					if b {
						n++
					}
				}
				if n > 1 {
					return errors.New("give one of --offsets, --members or --state")
				}
				if verbose && !members && !showState {
					return errors.New("--verbose goes with --members (or --state)")
				}
				var errs []error
				for i, id := range ids {
					if i > 0 {
						fmt.Fprintln(cmd.OutOrStdout())
					}
					var err error
					switch {
					case members:
						err = describeGroupMembers(ctx, adm, cmd, id, verbose)
					case showState:
						err = describeGroupState(ctx, adm, cmd, id)
					default:
						err = describeGroupOffsets(ctx, a, &kf, adm, cmd, id)
					}
					if err != nil {
						errs = append(errs, err)
					}
				}
				return errors.Join(errs...)
			})}
		groups.add(describe, "describe")
		df := describe.Flags()
		df.BoolVar(&offsets, "offsets", false, "committed offset, log end offset and lag per partition (the default)")
		df.BoolVar(&members, "members", false, "the members: id, host, client id, partition count")
		df.BoolVar(&verbose, "verbose", false, "with --members: each member's assigned partitions")
		df.BoolVar(&showState, "state", false, "the group's coordinator, assignment strategy, state and member count")

		reset := resetOffsetsCmd(withAdmin)

		var delGroups groupsFlag
		del := &cobra.Command{Use: "delete (--group G … | --all-groups)",
			Short: "Delete groups without members and their committed offsets (as kafka-consumer-groups.sh, no prompt: a group with members is refused, NON_EMPTY_GROUP)",
			Args:  cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, _ *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error {
				ids, err := delGroups.resolve(ctx, adm)
				if err != nil {
					return err
				}
				if len(ids) == 0 {
					fmt.Fprintln(cmd.ErrOrStderr(), "No consumer groups to delete.")
					return nil
				}
				rs, err := adm.DeleteGroups(ctx, ids...)
				if err != nil {
					return fmt.Errorf("cannot delete groups: %w", err)
				}
				return printDeletedGroups(cmd, ids, rs)
			})}
		delGroups.add(del, "delete")

		cmd.AddCommand(list, describe, reset, del, deleteOffsetsCmd(withAdmin))
		return cmd
	})
}

// listGroups is ListGroups (v5: with each group's type) of every broker, filtered by
// state and type, sorted by name. A broker that ignores a filter (older than v4 for
// states, v5 for types) is filtered here; a group it gives no type is "classic".
func listGroups(ctx context.Context, cl *kgo.Client, states, types []string) ([]kmsg.ListGroupsResponseGroup, error) {
	req := kmsg.NewPtrListGroupsRequest()
	req.StatesFilter, req.TypesFilter = states, types
	var out []kmsg.ListGroupsResponseGroup
	for _, sh := range cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			return nil, sh.Err
		}
		resp := sh.Resp.(*kmsg.ListGroupsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return nil, err
		}
		for _, g := range resp.Groups {
			if g.GroupType == "" {
				g.GroupType = "classic"
			}
			if len(states) > 0 && !slices.Contains(states, g.GroupState) || len(types) > 0 && !slices.Contains(types, g.GroupType) {
				continue
			}
			out = append(out, g)
		}
	}
	slices.SortFunc(out, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
	return out, nil
}

// parseGroupTypes reads --type's comma-separated group types.
func parseGroupTypes(s string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		switch f {
		case "":
		case "classic", "consumer":
			out = append(out, f)
		default:
			return nil, fmt.Errorf("bad --type %q: valid types are classic, consumer", f)
		}
	}
	return out, nil
}

type tp struct {
	topic     string
	partition int32
}

// lagSeconds is, per lagging partition, how old the first record not yet consumed is
// (now minus its timestamp); "0" when caught up, "-" when unknown or when nothing is
// committed (no lag, as LAG).
func lagSeconds(ctx context.Context, a *app, kf *kafkaFlags, lag kadm.GroupLag) map[tp]string {
	out := map[tp]string{}
	offsets := map[string]map[int32]kgo.Offset{}
	want := 0
	for _, ml := range lag.Sorted() {
		k := tp{ml.Topic, ml.Partition}
		switch {
		case ml.Lag == 0 && ml.Commit.At >= 0:
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
