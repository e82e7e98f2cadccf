package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// `tagpipe transactions list|describe|describe-producers`: kafka-transactions.sh's list,
// describe and describe-producers, over the Kafka protocol (ListTransactions,
// DescribeTransactions, DescribeProducers), so they work against real Kafka too.
func init() {
	register(func(a *app) *cobra.Command {
		var kf kafkaFlags
		cmd := &cobra.Command{Use: "transactions", Short: "List and describe transactions and a partition's producers (like kafka-transactions.sh)"}
		kf.add(cmd)
		withAdmin := func(fn func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
			return kf.withAdminOnly(a, fn)
		}
		var states []string
		list := &cobra.Command{Use: "list [--state Ongoing]", Short: "Transactional ids with their producer id and state", Args: cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				ls, err := adm.ListTransactions(ctx, nil, states)
				if err != nil {
					return fmt.Errorf("cannot list transactions: %w", err)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TRANSACTIONAL-ID\tCOORDINATOR\tPRODUCER-ID\tSTATE")
				for _, t := range ls.Sorted() {
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", t.TxnID, t.Coordinator, t.ProducerID, t.State)
				}
				return tw.Flush()
			})}
		list.Flags().StringSliceVar(&states, "state", nil, "only these states (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort)")

		var id string
		describe := &cobra.Command{Use: "describe --transactional-id ID", Short: "A transactional id's producer, epoch, state, timeout, start and partitions", Args: cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				ds, err := adm.DescribeTransactions(ctx, id)
				if err != nil {
					return fmt.Errorf("cannot describe transaction %q: %w", id, err)
				}
				d, ok := ds[id]
				if !ok {
					return fmt.Errorf("transaction %q not described", id)
				}
				if d.Err != nil {
					return fmt.Errorf("cannot describe transaction %q: %w", id, d.Err)
				}
				start := "-"
				if d.StartTimestamp > 0 {
					start = time.UnixMilli(d.StartTimestamp).UTC().Format(time.RFC3339)
				}
				var parts []string
				for topic, ps := range d.Topics {
					for p := range ps {
						parts = append(parts, fmt.Sprintf("%s-%d", topic, p))
					}
				}
				sort.Strings(parts)
				if len(parts) == 0 {
					parts = []string{"-"}
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TRANSACTIONAL-ID\tCOORDINATOR\tPRODUCER-ID\tEPOCH\tSTATE\tTIMEOUT-MS\tSTART\tPARTITIONS")
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d\t%s\t%s\n", d.TxnID, d.Coordinator, d.ProducerID, d.ProducerEpoch, d.State,
					d.TimeoutMillis, start, strings.Join(parts, ","))
				return tw.Flush()
			})}
		describe.Flags().StringVar(&id, "transactional-id", "", "the transactional id")
		_ = describe.MarkFlagRequired("transactional-id")

		var topic string
		var partition int32
		producers := &cobra.Command{Use: "describe-producers --topic T --partition P",
			Short: "A partition's active idempotent and transactional producers: epoch, last sequence and timestamp, open transaction",
			Args:  cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				var s kadm.TopicsSet
				s.Add(topic, partition)
				ds, err := adm.DescribeProducers(ctx, s)
				if err != nil {
					return noPartition(ctx, adm, fmt.Errorf("cannot describe the producers of %s-%d: %w", topic, partition, err), topic, partition)
				}
				d, ok := ds[topic].Partitions[partition]
				if !ok {
					return fmt.Errorf("partition %s-%d not described", topic, partition)
				}
				if d.Err != nil {
					return noPartition(ctx, adm, fmt.Errorf("cannot describe the producers of %s-%d: %w", topic, partition, d.Err), topic, partition)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PRODUCER-ID\tPRODUCER-EPOCH\tLATEST-COORDINATOR-EPOCH\tLAST-SEQUENCE\tLAST-TIMESTAMP\tCURRENT-TRANSACTION-START-OFFSET")
				for _, p := range d.ActiveProducers.Sorted() {
					last, start := "-", "-"
					if p.LastTimestamp >= 0 {
						last = time.UnixMilli(p.LastTimestamp).UTC().Format(time.RFC3339)
					}
					if p.CurrentTxnStartOffset >= 0 {
						start = strconv.FormatInt(p.CurrentTxnStartOffset, 10)
					}
					fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\n", p.ProducerID, p.ProducerEpoch, p.CoordinatorEpoch, p.LastSequence, last, start)
				}
				return tw.Flush()
			})}
		producers.Flags().StringVar(&topic, "topic", "", "the topic")
		producers.Flags().Int32Var(&partition, "partition", 0, "the partition")
		_ = producers.MarkFlagRequired("topic")
		_ = producers.MarkFlagRequired("partition")
		cmd.AddCommand(list, describe, producers)
		return cmd
	})
}

// noPartition is missingTopic for a partition: UNKNOWN_TOPIC_OR_PARTITION is either a
// topic that does not exist or a partition the topic does not have.
func noPartition(ctx context.Context, adm *kadm.Client, err error, topic string, partition int32) error {
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return err
	}
	if td, lerr := adm.ListTopics(ctx, topic); lerr == nil && td.Has(topic) && td[topic].Err == nil {
		return fmt.Errorf("topic %q has no partition %d (it has %d)", topic, partition, len(td[topic].Partitions))
	}
	return missingTopic(err, topic)
}
