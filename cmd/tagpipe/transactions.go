package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// `tagpipe transactions list|describe`: kafka-transactions.sh's list and describe, over
// the Kafka protocol (ListTransactions, DescribeTransactions), so they work against real
// Kafka too.
func init() {
	register(func(a *app) *cobra.Command {
		var kf kafkaFlags
		cmd := &cobra.Command{Use: "transactions", Short: "List and describe transactional producers' transactions (like kafka-transactions.sh)"}
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
		cmd.AddCommand(list, describe)
		return cmd
	})
}
