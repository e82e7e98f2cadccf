package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	register(func(a *app) *cobra.Command {
		var (
			kf          kafkaFlags
			topic       string
			keySep      string
			nullMarker  string
			partition   int32
			acks        string
			compression string
			linger      time.Duration
			props       []string
		)
		cmd := &cobra.Command{
			Use:   "produce",
			Short: "Send stdin lines as records to a topic (like kafka-console-producer.sh)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				// kafka-console-producer.sh's reader properties: a key only with parse.key,
				// split at key.separator (a tab unless set).
				var parseKey bool
				sepProp := ""
				if err := consoleProperties(props, map[string]func(string) error{
					"parse.key":     boolProperty(&parseKey),
					"key.separator": func(v string) error { sepProp = v; return nil },
					"null.marker":   func(v string) error { nullMarker = v; return nil },
				}); err != nil {
					return err
				}
				switch {
				case parseKey && sepProp != "":
					keySep = sepProp
				case parseKey && keySep == "":
					keySep = "\t"
				}
				// A record not acknowledged within --request-timeout fails the command (the
				// client's default is to retry it for ever).
				opts := []kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(linger), kgo.RecordDeliveryTimeout(kf.timeout)}
				po, err := producerOpts(acks, compression)
				if err != nil {
					return err
				}
				opts = append(opts, po...)
				if partition >= 0 {
					opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
				}
				cl, err := kf.client(a, opts...)
				if err != nil {
					return err
				}
				defer cl.Close()
				n, err := produceLines(cmd.Context(), cl, cmd.InOrStdin(), keySep, nullMarker, partition)
				if err != nil {
					return fmt.Errorf("produced %d records, then: %w", n, produceError(err, topic))
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "produced %s to %s\n", plural(int(n), "record", "records"), topic)
				return nil
			},
		}
		kf.add(cmd)
		cmd.Flags().StringVar(&topic, "topic", "", "topic to produce to")
		cmd.Flags().StringArrayVar(&props, "property", nil, "kafka-console-producer.sh's reader properties, key=value: parse.key=true (split each line into key and value), key.separator (default a tab), null.marker")
		cmd.Flags().StringVar(&keySep, "key-separator", "", "split each line at the first separator into key and value (default: no key)")
		cmd.Flags().StringVar(&nullMarker, "null-marker", "", "a key or value equal to this is sent as null (a null value: a tombstone), as the console producer's null.marker")
		cmd.Flags().Int32Var(&partition, "partition", -1, "send every record to this partition (default: by key hash, or sticky round-robin without a key)")
		cmd.Flags().StringVar(&acks, "acks", "all", "all, 1 or 0")
		cmd.Flags().StringVar(&compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
		cmd.Flags().DurationVar(&linger, "linger", 5*time.Millisecond, "wait this long to fill a batch")
		_ = cmd.MarkFlagRequired("topic")
		return cmd
	})
}

// produceError says what a producer's authorization failures mean and which ACL to add.
// CLUSTER_AUTHORIZATION_FAILED is what Kafka's producer calls "not authorized to do
// idempotent sends": an idempotent producer's InitProducerId needs IdempotentWrite on the
// cluster or Write on some topic (KIP-679), so a user who may describe the topic but
// not write it is refused with the cluster's code, not the topic's.
func produceError(err error, topic string) error {
	acl := "tagpipe acls add --allow-principal User:NAME --operation Write --topic " + topic
	switch {
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return fmt.Errorf("the producer is not authorized to do idempotent sends (%w): it needs Write on the topic (%s) or IdempotentWrite on the cluster", err, acl)
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		return fmt.Errorf("not authorized to write to topic %s (%w): it needs Write on it (%s)", topic, err, acl)
	}
	return internalTopicError(err, topic)
}

// producerOpts are the client options of --acks (all/-1, 1, 0: idempotence only with
// all, as Kafka's producer requires) and --compression.
func producerOpts(acks, compression string) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	switch acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fmt.Errorf("bad --acks %q: want all, 1 or 0", acks)
	}
	codec, err := parseCodec(compression)
	if err != nil {
		return nil, err
	}
	return append(opts, kgo.ProducerBatchCompression(codec)), nil
}

func parseCodec(s string) (kgo.CompressionCodec, error) {
	switch s {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("bad compression %q: want none, gzip, snappy, lz4 or zstd", s)
}

// produceLines sends one record per line and waits until every one is acknowledged.
// A key or value equal to nullMarker (when not empty) is sent as null.
func produceLines(ctx context.Context, cl *kgo.Client, in io.Reader, keySep, nullMarker string, partition int32) (int64, error) {
	var (
		mu       sync.Mutex
		firstErr error
		acked    int64
	)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		r := &kgo.Record{Value: []byte(line)}
		if keySep != "" {
			if k, v, ok := strings.Cut(line, keySep); ok {
				r.Key, r.Value = []byte(k), []byte(v)
			}
		}
		if nullMarker != "" {
			if string(r.Key) == nullMarker {
				r.Key = nil
			}
			if string(r.Value) == nullMarker {
				r.Value = nil
			}
		}
		if partition >= 0 {
			r.Partition = partition
		}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if err == nil {
				acked++
			}
		})
	}
	ferr := cl.Flush(ctx)
	mu.Lock()
	defer mu.Unlock()
	if err := sc.Err(); err != nil {
		return acked, fmt.Errorf("cannot read input: %w", err)
	}
	if firstErr != nil {
		return acked, firstErr
	}
	return acked, ferr
}
