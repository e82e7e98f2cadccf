package main

// groups describe for consumer groups (KIP-848, group.protocol=consumer): the broker
// assigns their partitions, DescribeGroups reports them Dead (as Kafka 4 does), and
// ConsumerGroupDescribe says the rest: epochs, assignor, each member's current and
// target assignment. The columns follow Kafka 4's kafka-consumer-groups.sh.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tagpipe/tagpipe/internal/grouplag"
)

// consumerGroupOf describes group with ConsumerGroupDescribe; ok is false when it is
// not a consumer group (or the broker does not know the API).
func consumerGroupOf(ctx context.Context, adm *kadm.Client, group string) (kadm.DescribedConsumerGroup, bool) {
	d, ok := grouplag.Describe(ctx, adm, group)[group]
	return d, ok
}

// assignmentString is topic:p,p;topic2:p, or "-" when empty.
func assignmentString(s kadm.TopicsSet) (string, int) {
	var parts []string
	n := 0
	for _, t := range s.Sorted() {
		ps := slices.Clone(t.Partitions)
		slices.Sort(ps)
		strs := make([]string, len(ps))
		for i, p := range ps {
			strs[i] = strconv.Itoa(int(p))
		}
		parts = append(parts, t.Topic+":"+strings.Join(strs, ","))
		n += len(ps)
	}
	if len(parts) == 0 {
		return "-", 0
	}
	return strings.Join(parts, ";"), n
}

// printConsumerGroupMembers is --describe --members [--verbose] of a consumer group;
// --verbose adds each member's epoch and assignment, and its target.
func printConsumerGroupMembers(cmd *cobra.Command, d kadm.DescribedConsumerGroup, verbose bool) error {
	var head []string
	if verbose {
		head = []string{"CURRENT-EPOCH", "CURRENT-ASSIGNMENT", "TARGET-EPOCH", "TARGET-ASSIGNMENT"}
	}
	rows := make([]memberRow, 0, len(d.Members))
	for _, m := range d.Members {
		cur, n := assignmentString(m.Assignment)
		r := memberRow{id: m.MemberID, instance: m.InstanceID, host: m.ClientHost, clientID: m.ClientID, partitions: n}
		if verbose {
			target, _ := assignmentString(m.TargetAssignment)
			r.extra = []string{strconv.Itoa(int(m.MemberEpoch)), cur, strconv.Itoa(int(d.AssignmentEpoch)), target}
		}
		rows = append(rows, r)
	}
	return printMemberRows(cmd, d.Group, head, rows)
}

// printConsumerGroupState is --describe --state of a consumer group: its assignor,
// state, group epoch and target assignment epoch.
func printConsumerGroupState(cmd *cobra.Command, d kadm.DescribedConsumerGroup) error {
	coord := net.JoinHostPort(d.Coordinator.Host, strconv.Itoa(int(d.Coordinator.Port))) + "  (" + strconv.Itoa(int(d.Coordinator.NodeID)) + ")"
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tCOORDINATOR (ID)\tASSIGNMENT-STRATEGY\tSTATE\tGROUP-EPOCH\tTARGET-ASSIGNMENT-EPOCH\t#MEMBERS")
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\n", d.Group, coord, d.AssignorName, d.State, d.Epoch, d.AssignmentEpoch, len(d.Members))
	return tw.Flush()
}

// printConsumerGroupOffsets is --describe [--offsets] of a consumer group, as for a
// classic one.
func printConsumerGroupOffsets(ctx context.Context, a *app, kf *kafkaFlags, adm *kadm.Client, cmd *cobra.Command, d kadm.DescribedConsumerGroup) error {
	lag, owners, err := grouplag.Consumer(ctx, adm, d)
	if err != nil {
		return err
	}
	secs := lagSeconds(ctx, a, kf, lag)
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Group: %s\tState: %s\tProtocol: %s\tMembers: %d\n", d.Group, d.State, d.AssignorName, len(d.Members))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tLAG-SECONDS\tMEMBER\tCLIENT-ID\tHOST")
	for _, ml := range lag.Sorted() {
		member, clientID, host := "-", "-", "-"
		if m := owners[grouplag.TP{Topic: ml.Topic, Partition: ml.Partition}]; m != nil {
			member, clientID, host = m.MemberID, m.ClientID, m.ClientHost
		}
		cur, end, lag := lagCells(ml)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", ml.Topic, ml.Partition, cur, end, lag,
			secs[tp{ml.Topic, ml.Partition}], member, clientID, host)
	}
	return tw.Flush()
}
