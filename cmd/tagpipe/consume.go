package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tagpipe/tagpipe/broker/groups"
)

func init() {
	register(func(a *app) *cobra.Command {
		var (
			kf            kafkaFlags
			topic         string
			fromBeginning bool
			offset        int64
			partition     int32
			maxMessages   int64
			printKey      bool
			printOffset   bool
			printTime     bool
			printHeaders  bool
			timeoutMS     int64
			keySep        string
			idle          time.Duration
			group         string
			formatter     string
			props         []string
		)
		cmd := &cobra.Command{
			Use:   "consume",
			Short: "Print a topic's records to stdout, one per line (like kafka-console-consumer.sh)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := consoleProperties(props, map[string]func(string) error{
					"print.key":       boolProperty(&printKey),
					"print.timestamp": boolProperty(&printTime),
					"print.headers":   boolProperty(&printHeaders),
					"print.offset":    boolProperty(&printOffset),
					"key.separator":   func(v string) error { keySep = v; return nil },
				}); err != nil {
					return err
				}
				if timeoutMS > 0 {
					if cmd.Flags().Changed("idle-timeout") {
						return errors.New("give --idle-timeout or --timeout-ms, not both")
					}
					idle = time.Duration(timeoutMS) * time.Millisecond
				}
				format, err := consumeFormatter(formatter)
				if err != nil {
					return err
				}
				start := kgo.NewOffset().AtEnd()
				switch {
				case offset >= 0:
					start = kgo.NewOffset().At(offset)
				case fromBeginning:
					start = kgo.NewOffset().AtStart()
				}
				var opts []kgo.Opt
				if group != "" {
					if partition >= 0 || offset >= 0 {
						return errors.New("--group assigns partitions itself: drop --partition/--offset")
					}
					// A group resumes from its committed offsets; --from-beginning applies
					// only where it has none. Only printed records are committed.
					opts = append(opts, kgo.ConsumerGroup(group), kgo.AutoCommitMarks())
				}
				if partition >= 0 {
					opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: start}}))
				} else {
					if offset >= 0 {
						return errors.New("--offset needs --partition")
					}
					opts = append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start))
				}
				cl, err := kf.client(a, opts...)
				if err != nil {
					return err
				}
				defer cl.Close()
				// As kafka-console-consumer.sh, a topic that does not exist yet is waited
				// for (consumers do not create topics); but say so, or a misspelt topic
				// looks like one without new records.
				mctx, mcancel := context.WithTimeout(cmd.Context(), kf.timeout)
				td, err := kadm.NewClient(cl).ListTopics(mctx, topic)
				mcancel()
				if err == nil && (!td.Has(topic) || errors.Is(td[topic].Err, kerr.UnknownTopicOrPartition)) {
					fmt.Fprintf(cmd.ErrOrStderr(), "tagpipe: topic %q does not exist (yet): waiting for it (tagpipe topics list shows the topics)\n", topic)
				} else if n := len(td[topic].Partitions); err == nil && partition >= 0 && td[topic].Err == nil && int(partition) >= n {
					// The client would wait for it in silence.
					return fmt.Errorf("topic %q has no partition %d: its partitions are 0 to %d (tagpipe topics describe --topic %s)", topic, partition, n-1, topic)
				}
				w := bufio.NewWriter(cmd.OutOrStdout())
				defer w.Flush()
				var n int64
				for maxMessages <= 0 || n < maxMessages {
					ctx := cmd.Context()
					var cancel context.CancelFunc = func() {}
					if idle > 0 {
						ctx, cancel = context.WithTimeout(ctx, idle)
					}
					fs := cl.PollFetches(ctx)
					cancel()
					if fs.IsClientClosed() || errors.Is(cmd.Context().Err(), context.Canceled) {
						break
					}
					if ctx.Err() != nil && fs.NumRecords() == 0 {
						break // idle timeout
					}
					if err := fetchError(fs); err != nil {
						return err
					}
					for it := fs.RecordIter(); !it.Done() && (maxMessages <= 0 || n < maxMessages); {
						r := it.Next()
						if format != nil {
							line, ok := format(r.Key, r.Value)
							if group != "" {
								cl.MarkCommitRecords(r)
							}
							if !ok {
								continue // the other formatter's records
							}
							w.Write(line)
							w.WriteByte('\n')
							n++
							continue
						}
						if printTime {
							typ := "CreateTime"
							if r.Attrs.TimestampType() == 1 {
								typ = "LogAppendTime"
							}
							fmt.Fprintf(w, "%s:%d%s", typ, r.Timestamp.UnixMilli(), keySep)
						}
						if printOffset {
							fmt.Fprintf(w, "%d%s%d%s", r.Partition, keySep, r.Offset, keySep)
						}
						if printHeaders {
							writeHeaders(w, r.Headers)
							w.WriteString(keySep)
						}
						if printKey {
							writeNullable(w, r.Key)
							w.WriteString(keySep)
						}
						writeNullable(w, r.Value)
						w.WriteByte('\n')
						n++
						if group != "" {
							cl.MarkCommitRecords(r) // only printed records count as consumed
						}
					}
					w.Flush()
				}
				if group != "" {
					ctx, cancel := context.WithTimeout(context.Background(), kf.timeout)
					err := cl.CommitMarkedOffsets(ctx)
					cancel()
					if err != nil {
						return fmt.Errorf("consumed %d records, then could not commit: %w", n, err)
					}
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "consumed %s\n", plural(int(n), "record", "records"))
				return nil
			},
		}
		kf.add(cmd)
		cmd.Flags().StringVar(&topic, "topic", "", "topic to read")
		cmd.Flags().BoolVar(&fromBeginning, "from-beginning", false, "start at the earliest offset (default: only new records)")
		cmd.Flags().Int64Var(&offset, "offset", -1, "start at this offset (needs --partition)")
		cmd.Flags().Int32Var(&partition, "partition", -1, "read only this partition")
		cmd.Flags().Int64Var(&maxMessages, "max-messages", 0, "exit after this many records (0: never)")
		cmd.Flags().BoolVar(&printKey, "print-key", false, "print the key before the value")
		cmd.Flags().BoolVar(&printOffset, "print-offset", false, "print partition and offset before the record")
		cmd.Flags().StringVar(&keySep, "separator", "\t", "separator after the partition, offset and key")
		cmd.Flags().DurationVar(&idle, "idle-timeout", 0, "exit when no record arrives for this long (0: wait forever)")
		cmd.Flags().Int64Var(&timeoutMS, "timeout-ms", 0, "kafka-console-consumer.sh's spelling of --idle-timeout, in milliseconds")
		cmd.Flags().BoolVar(&printTime, "print-timestamp", false, "print the record's timestamp first (CreateTime:ms or LogAppendTime:ms)")
		cmd.Flags().BoolVar(&printHeaders, "print-headers", false, "print the headers (k:v,k2:v2, or NO_HEADERS) before the key and value")
		cmd.Flags().StringVar(&formatter, "formatter", "", "decode __consumer_offsets as kafka-console-consumer.sh's formatters print it, one JSON line a record: offsets (OffsetsMessageFormatter: commits) or group-metadata (GroupMetadataMessageFormatter); Kafka's class names work too")
		cmd.Flags().StringVar(&group, "group", "", "consume as a member of this consumer group (resumes from its committed offsets)")
		cmd.Flags().StringArrayVar(&props, "property", nil, "kafka-console-consumer.sh's formatter properties, key=value: print.key, print.timestamp, print.headers, print.offset (partition and offset) = true|false; key.separator")
		_ = cmd.MarkFlagRequired("topic")
		return cmd
	})
}

// fetchError is the first error of a poll that is not the poll's own timeout or
// cancellation (those only end the poll), naming its partition.
func fetchError(fs kgo.Fetches) error {
	var ferr error
	fs.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
			ferr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
		}
	})
	return ferr
}

// writeHeaders writes headers as kafka-console-consumer.sh's print.headers does:
// key:value pairs joined by commas, a null value as "null", NO_HEADERS when there are
// none.
func writeHeaders(w *bufio.Writer, hs []kgo.RecordHeader) {
	if len(hs) == 0 {
		w.WriteString("NO_HEADERS")
		return
	}
	for i, h := range hs {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString(h.Key)
		w.WriteByte(':')
		writeNullable(w, h.Value)
	}
}

// writeNullable writes b, or "null" for a null key or value (a tombstone's value), as
// kafka-console-consumer.sh prints them.
func writeNullable(w *bufio.Writer, b []byte) {
	if b == nil {
		w.WriteString("null")
		return
	}
	w.Write(b)
}

// consumeFormatter is --formatter: nil for the default, or the function that prints a
// record (ok=false: not this formatter's record, skipped). Kafka's class names
// (org.apache.kafka.tools.consumer.OffsetsMessageFormatter,
// kafka.coordinator.group.GroupMetadataManager$OffsetsMessageFormatter, …) name the same.
func consumeFormatter(name string) (func(key, value []byte) ([]byte, bool), error) {
	short := name
	if i := strings.LastIndexAny(short, ".$"); i >= 0 {
		short = short[i+1:]
	}
	var f groups.Formatter
	switch short {
	case "":
		return nil, nil
	case "offsets", "OffsetsMessageFormatter":
		f = groups.FormatOffsets
	case "group-metadata", "GroupMetadataMessageFormatter":
		f = groups.FormatGroupMetadata
	default:
		return nil, fmt.Errorf("unknown --formatter %q: offsets (OffsetsMessageFormatter) or group-metadata (GroupMetadataMessageFormatter), for __consumer_offsets", name)
	}
	return func(key, value []byte) ([]byte, bool) { return groups.FormatRecord(f, key, value) }, nil
}

// consoleProperties applies the --property key=value pairs of Kafka's console tools
// through set, refusing keys it does not have by name.
func consoleProperties(props []string, set map[string]func(string) error) error {
	for _, kv := range props {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("bad --property %q: want key=value", kv)
		}
		f, known := set[strings.TrimSpace(k)]
		if !known {
			names := slices.Sorted(maps.Keys(set))
			return fmt.Errorf("--property %s is not supported (supported: %s)", k, strings.Join(names, ", "))
		}
		if err := f(v); err != nil {
			return fmt.Errorf("bad --property %q: %w", kv, err)
		}
	}
	return nil
}

// boolProperty sets *b from true or false, in any case, as Kafka's formatters read them.
func boolProperty(b *bool) func(string) error {
	return func(v string) error {
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "true":
			*b = true
		case "false":
			*b = false
		default:
			return errors.New("want true or false")
		}
		return nil
	}
}
