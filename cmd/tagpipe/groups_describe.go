package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// groupsFlag is kafka-consumer-groups.sh's repeatable --group and --all-groups.
type groupsFlag struct {
	groups []string
	all    bool
}

func (g *groupsFlag) add(cmd *cobra.Command, verb string) {
	cmd.Flags().StringArrayVar(&g.groups, "group", nil, "the consumer group to "+verb+" (repeatable)")
	cmd.Flags().BoolVar(&g.all, "all-groups", false, verb+" every consumer group")
}

// resolve returns the groups named, or with --all-groups the cluster's consumer groups
// (protocol type consumer, or none for a group that only committed offsets), sorted.
func (g *groupsFlag) resolve(ctx context.Context, adm *kadm.Client) ([]string, error) {
	switch {
	case g.all && len(g.groups) > 0:
		return nil, errors.New("give --group or --all-groups, not both")
	case !g.all && len(g.groups) == 0:
		return nil, errors.New("give --group G (repeatable) or --all-groups")
	case !g.all:
		return g.groups, nil
	}
	lgs, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot list groups: %w", err)
	}
	var ids []string
	for _, l := range lgs.Sorted() {
		if l.ProtocolType == "consumer" || l.ProtocolType == "" {
			ids = append(ids, l.Group)
		}
	}
	return ids, nil
}

// groupStates are the states kafka-consumer-groups.sh --list --state accepts (classic
// and KIP-848 consumer groups).
var groupStates = []string{"PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty", "Assigning", "Reconciling"}

// parseGroupStates reads --state's comma-separated states, in any case, as their
// protocol names; blank is no filter.
func parseGroupStates(s string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		i := slices.IndexFunc(groupStates, func(st string) bool { return strings.EqualFold(st, f) })
		if i < 0 {
			return nil, fmt.Errorf("bad --state %q: valid states are %s", f, strings.Join(groupStates, ", "))
		}
		out = append(out, groupStates[i])
	}
	return out, nil
}

// describeGroup describes one group; a group the coordinator does not know (Dead with
// no members) is an error, as kafka-consumer-groups.sh's "Consumer group 'G' does not
// exist."
func describeGroup(ctx context.Context, adm *kadm.Client, group string) (kadm.DescribedGroup, error) {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return kadm.DescribedGroup{}, fmt.Errorf("cannot describe group %q: %w", group, err)
	}
	d, ok := ds[group]
	if !ok {
		return d, fmt.Errorf("group %q not described", group)
	}
	if d.Err != nil {
		return d, fmt.Errorf("cannot describe group %q: %w", group, brokerError(d.Err, d.ErrMessage))
	}
	if d.State == "Dead" && len(d.Members) == 0 {
		return d, fmt.Errorf("group %q does not exist (tagpipe groups list shows the groups)", group)
	}
	return d, nil
}

// describeGroupMembers is --describe --members [--verbose]: one row a member, as
// kafka-consumer-groups.sh prints it; the verbose ASSIGNMENT column lists the member's
// partitions as topic:p,p;topic2:p.
func describeGroupMembers(ctx context.Context, adm *kadm.Client, cmd *cobra.Command, group string, verbose bool) error {
	if cg, ok := consumerGroupOf(ctx, adm, group); ok {
		return printConsumerGroupMembers(cmd, cg, verbose)
	}
	d, err := describeGroup(ctx, adm, group)
	if err != nil {
		return err
	}
	var head []string
	if verbose {
		head = []string{"ASSIGNMENT"}
	}
	rows := make([]memberRow, 0, len(d.Members))
	for _, m := range d.Members {
		assigned := kadm.TopicsSet{}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				assigned.Add(t.Topic, t.Partitions...)
			}
		}
		a, n := assignmentString(assigned)
		r := memberRow{id: m.MemberID, instance: m.InstanceID, host: m.ClientHost, clientID: m.ClientID, partitions: n}
		if verbose {
			r.extra = []string{a}
		}
		rows = append(rows, r)
	}
	return printMemberRows(cmd, group, head, rows)
}

// memberRow is one member as describe --members prints it; extra are the values of the
// --verbose columns.
type memberRow struct {
	id, host, clientID string
	instance           *string
	partitions         int
	extra              []string
}

// printMemberRows prints kafka-consumer-groups.sh's member table: GROUP, CONSUMER-ID,
// GROUP-INSTANCE-ID when a member has one, HOST, CLIENT-ID, #PARTITIONS, then the
// columns named in verboseHead.
func printMemberRows(cmd *cobra.Command, group string, verboseHead []string, rows []memberRow) error {
	if len(rows) == 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "Consumer group '%s' has no active members.\n", group)
		return nil
	}
	withInstance := slices.ContainsFunc(rows, func(r memberRow) bool { return r.instance != nil })
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	head := []string{"GROUP", "CONSUMER-ID"}
	if withInstance {
		head = append(head, "GROUP-INSTANCE-ID")
	}
	head = append(append(head, "HOST", "CLIENT-ID", "#PARTITIONS"), verboseHead...)
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rows {
		row := []string{group, r.id}
		if withInstance {
			inst := "-"
			if r.instance != nil {
				inst = *r.instance
			}
			row = append(row, inst)
		}
		row = append(append(row, r.host, r.clientID, strconv.Itoa(r.partitions)), r.extra...)
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// describeGroupState is --describe --state: coordinator, assignment strategy, state and
// member count, as kafka-consumer-groups.sh prints them.
func describeGroupState(ctx context.Context, adm *kadm.Client, cmd *cobra.Command, group string) error {
	if cg, ok := consumerGroupOf(ctx, adm, group); ok {
		return printConsumerGroupState(cmd, cg)
	}
	d, err := describeGroup(ctx, adm, group)
	if err != nil {
		return err
	}
	strategy := d.Protocol
	if strategy == "" {
		strategy = "-"
	}
	coord := net.JoinHostPort(d.Coordinator.Host, strconv.Itoa(int(d.Coordinator.Port))) + "  (" + strconv.Itoa(int(d.Coordinator.NodeID)) + ")"
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tCOORDINATOR (ID)\tASSIGNMENT-STRATEGY\tSTATE\t#MEMBERS")
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", group, coord, strategy, d.State, len(d.Members))
	return tw.Flush()
}

// describeGroupOffsets is --describe [--offsets]: the group line, then per partition
// the committed offset, the log end, the lag in records and in seconds, and the member.
func describeGroupOffsets(ctx context.Context, a *app, kf *kafkaFlags, adm *kadm.Client, cmd *cobra.Command, group string) error {
	if cg, ok := consumerGroupOf(ctx, adm, group); ok {
		return printConsumerGroupOffsets(ctx, a, kf, adm, cmd, cg)
	}
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
	// A group the coordinator does not know is described as Dead with nothing in it
	// (Kafka's tool: "Consumer group 'G' does not exist.").
	if l.State == "Dead" && len(l.Members) == 0 && len(l.Lag) == 0 {
		return fmt.Errorf("group %q does not exist (tagpipe groups list shows the groups)", group)
	}
	secs := lagSeconds(ctx, a, kf, l.Lag)
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Group: %s\tState: %s\tProtocol: %s\tMembers: %d\n", l.Group, l.State, l.Protocol, len(l.Members))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tLAG-SECONDS\tMEMBER\tCLIENT-ID\tHOST")
	for _, ml := range l.Lag.Sorted() {
		member, clientID, host := "-", "-", "-"
		if ml.Member != nil {
			member, clientID, host = ml.Member.MemberID, ml.Member.ClientID, ml.Member.ClientHost
		}
		cur, end, lag := lagCells(ml)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ml.Topic, ml.Partition, cur, end, lag,
			secs[tp{ml.Topic, ml.Partition}], member, clientID, host)
	}
	return tw.Flush()
}

// lagCells are one partition's CURRENT-OFFSET, LOG-END-OFFSET and LAG cells as
// kafka-consumer-groups.sh prints them: "-" for what is unknown. A partition with no
// committed offset has no lag ("-", where kadm counts the whole log as lag), and one
// whose end offset could not be listed has neither end nor lag.
func lagCells(ml kadm.GroupMemberLag) (cur, end, lag string) {
	cur, end, lag = "-", "-", "-"
	if ml.Commit.At >= 0 {
		cur = strconv.FormatInt(ml.Commit.At, 10)
	}
	if ml.End.Err == nil {
		end = strconv.FormatInt(ml.End.Offset, 10)
	}
	if ml.Commit.At >= 0 && ml.Err == nil && ml.Lag >= 0 {
		lag = strconv.FormatInt(ml.Lag, 10)
	}
	return cur, end, lag
}

// printDeletedGroups reports DeleteGroups as kafka-consumer-groups.sh --delete: one
// line for the groups deleted, and an error naming each group that was not, and why.
func printDeletedGroups(cmd *cobra.Command, ids []string, rs kadm.DeleteGroupResponses) error {
	var ok, failed []string
	for _, id := range ids {
		r, found := rs[id]
		switch {
		case !found:
			failed = append(failed, fmt.Sprintf("* Group '%s' could not be deleted due to: no answer for it", id))
		case r.Err != nil:
			failed = append(failed, fmt.Sprintf("* Group '%s' could not be deleted due to: %v", id, brokerError(r.Err, r.ErrMessage)))
		default:
			ok = append(ok, "'"+id+"'")
		}
	}
	if len(failed) == 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "Deletion of requested consumer groups (%s) was successful.\n", strings.Join(ok, ", "))
		return nil
	}
	if len(ok) > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "These consumer groups were deleted successfully: %s\n", strings.Join(ok, ", "))
	}
	return fmt.Errorf("deletion of some consumer groups failed:\n%s", strings.Join(failed, "\n"))
}
