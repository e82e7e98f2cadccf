package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/ingest/flumeconf"
	"github.com/tagpipe/tagpipe/internal/kafkasec"
)

// kafkaFlags are the connection flags of the Kafka-client subcommands (topics, produce,
// consume, groups, transactions). They speak only the Kafka protocol, so they work
// against real Kafka too, secured as the config's kafka: section or --command-config
// says.
type kafkaFlags struct {
	bootstrap     []string
	timeout       time.Duration
	commandConfig string
}

func (k *kafkaFlags) add(cmd *cobra.Command) {
	cmd.PersistentFlags().StringSliceVar(&k.bootstrap, "bootstrap-server", nil, "Kafka brokers host:port (default: the built-in broker's broker.listen, with broker.advertised_host/advertised_port when set)")
	cmd.PersistentFlags().DurationVar(&k.timeout, "request-timeout", 30*time.Second, "give up on a request after this long")
	cmd.PersistentFlags().StringVar(&k.commandConfig, "command-config", "", "Kafka client properties file (security.protocol, sasl.mechanism, sasl.jaas.config, ssl.truststore.location, ssl.keystore.location), as Kafka's tools take; instead of the config's kafka: section")
}

// security is how the command connects: --command-config's properties when given
// (other properties than security.protocol, sasl.* and ssl.* are not used, and said
// so), else the config's kafka: section.
func (k *kafkaFlags) security(a *app) (*kafkasec.Security, error) {
	if k.commandConfig == "" {
		return a.kafka, nil
	}
	f, err := os.Open(k.commandConfig)
	if err != nil {
		return nil, fmt.Errorf("--command-config: %w", err)
	}
	defer f.Close()
	props, err := flumeconf.ReadProperties(f)
	if err != nil {
		return nil, fmt.Errorf("--command-config %s: %w", k.commandConfig, err)
	}
	var unused []string
	for name := range props {
		if !kafkasec.IsSecurityProperty(name) {
			unused = append(unused, name)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		fmt.Fprintf(a.errw, "--command-config %s: not used (tagpipe reads security.protocol, sasl.* and ssl.* from it): %s\n",
			k.commandConfig, strings.Join(unused, ", "))
	}
	c, problems := kafkasec.FromProperties(props)
	if len(problems) > 0 {
		errs := make([]error, len(problems))
		for i, p := range problems {
			errs[i] = fmt.Errorf("--command-config %s: %w", k.commandConfig, p)
		}
		return nil, errors.Join(errs...)
	}
	return kafkasec.New(c)
}

// seeds returns the bootstrap servers: the flag, else the built-in broker's address.
func (k *kafkaFlags) seeds(cfg *config.Config) []string {
	if len(k.bootstrap) > 0 {
		return k.bootstrap
	}
	host, port, err := net.SplitHostPort(cfg.Broker.Listen)
	if err != nil {
		return []string{cfg.Broker.Listen}
	}
	if cfg.Broker.AdvertisedHost != "" {
		host = cfg.Broker.AdvertisedHost
	}
	if cfg.Broker.AdvertisedPort != 0 {
		port = strconv.Itoa(cfg.Broker.AdvertisedPort)
	}
	return []string{net.JoinHostPort(host, port)}
}

// withAdmin is a command's RunE: it connects with the flags, bounds the command by the
// request timeout and runs fn with the client and an admin client over it.
func (k *kafkaFlags) withAdmin(a *app, fn func(ctx context.Context, cl *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		cl, err := k.client(a)
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(cmd.Context(), k.timeout)
		defer cancel()
		return fn(ctx, cl, kadm.NewClient(cl), cmd)
	}
}

// withAdminOnly is withAdmin for commands that need the admin client alone.
func (k *kafkaFlags) withAdminOnly(a *app, fn func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
	return k.withAdmin(a, func(ctx context.Context, _ *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error {
		return fn(ctx, adm, cmd)
	})
}

func (k *kafkaFlags) client(a *app, opts ...kgo.Opt) (*kgo.Client, error) {
	cfg := a.cfg
	sec, err := k.security(a)
	if err != nil {
		return nil, err
	}
	opts = append(append(sec.KgoOpts(), kgo.SeedBrokers(k.seeds(cfg)...), kgo.RequestTimeoutOverhead(k.timeout), kgo.RetryTimeout(k.timeout)), opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot create Kafka client: %w", err)
	}
	// Fail at once, and say why, when no broker answers: produce would otherwise retry
	// forever, and consume wait silently for records that cannot come.
	ctx, cancel := context.WithTimeout(context.Background(), k.timeout)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("cannot reach a Kafka broker at %s with %s (is `tagpipe up` or `tagpipe broker` running? --bootstrap-server names another): %w",
			strings.Join(k.seeds(cfg), ","), sec, err)
	}
	return cl, nil
}

// missingTopic says a topic does not exist, and how to see those that do, where the
// broker answered UNKNOWN_TOPIC_OR_PARTITION ("This server does not host this
// topic-partition"); other errors pass unchanged.
func missingTopic(err error, topic string) error {
	if err != nil && topic != "" && errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("topic %q does not exist (tagpipe topics list shows the topics)", topic)
	}
	return err
}

// internalTopicError says why a write to an internal topic was refused: the responses
// that refuse it (Produce before v8, DeleteRecords) carry only INVALID_TOPIC_EXCEPTION,
// whose description ("an invalid topic") is no help.
func internalTopicError(err error, topic string) error {
	if err != nil && strings.HasPrefix(topic, "__") && errors.Is(err, kerr.InvalidTopicException) {
		return fmt.Errorf("%w (%s is an internal topic: only the broker writes it)", err, topic)
	}
	return err
}

// brokerError is a per-resource error of an admin response as the commands print it: the
// error code's name and the broker's message, when it sent one, instead of kerr's generic
// description of the code ("This most likely occurs because of a request being malformed
// by the client library…" before "Invalid configuration key x"). errors.Is still finds
// the code.
func brokerError(code error, msg string) error {
	if msg == "" {
		return code
	}
	return &brokerErr{code: code, msg: msg}
}

type brokerErr struct {
	code error
	msg  string
}

func (e *brokerErr) Error() string {
	var ke *kerr.Error
	if errors.As(e.code, &ke) {
		return ke.Message + ": " + e.msg
	}
	return e.code.Error() + ": " + e.msg
}

func (e *brokerErr) Unwrap() error { return e.code }

// parseConfigs turns repeated k=v flags into a map.
func parseConfigs(kvs []string) (map[string]*string, error) {
	out := map[string]*string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			// The global --config FILE given after the subcommand's name is this flag.
			if !ok && (strings.HasSuffix(kv, ".yaml") || strings.HasSuffix(kv, ".yml")) {
				return nil, fmt.Errorf("bad --config %q: want key=value (a topic config); the config file goes before the command: tagpipe --config %s topics …", kv, kv)
			}
			return nil, fmt.Errorf("bad --config %q: want key=value", kv)
		}
		out[k] = &v
	}
	return out, nil
}

func init() {
	register(func(a *app) *cobra.Command {
		var kf kafkaFlags
		cmd := &cobra.Command{Use: "topics", Short: "Create, list, describe, alter and delete topics (like kafka-topics.sh)"}
		kf.add(cmd)
		withAdmin := func(fn func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
			return kf.withAdminOnly(a, fn)
		}

		var topic string
		// create and alter each have their own --partitions: cobra writes a flag's
		// default into its variable when the flag is defined, so a shared variable
		// would give create alter's default (0) instead of -1.
		var partitions, alterPartitions int32
		var replication int16
		var configs, deleteConfigs []string
		var ifNotExists, ifExists, excludeInternal bool
		var report partitionReport
		// list, describe, alter and delete take --topic as kafka-topics.sh does: a name or
		// a regular expression.
		selected := func(ctx context.Context, adm *kadm.Client) ([]string, topicSelector, error) {
			ts, err := parseTopicSelector(topic)
			if err != nil {
				return nil, ts, err
			}
			names, err := selectTopics(ctx, adm, ts, excludeInternal)
			if err != nil {
				return nil, ts, err
			}
			return names, ts, requireTopics(names, ts, ifExists)
		}
		topicFlags := func(c *cobra.Command, what string, required, withIfExists bool) {
			c.Flags().StringVar(&topic, "topic", "", what+": a name, or a regular expression matching whole names (a,b: either)")
			if required {
				_ = c.MarkFlagRequired("topic")
			}
			if withIfExists {
				c.Flags().BoolVar(&ifExists, "if-exists", false, "do nothing, and succeed, when no topic matches --topic")
			}
		}

		create := &cobra.Command{Use: "create", Short: "Create a topic", Args: cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				cfgs, err := parseConfigs(configs)
				if err != nil {
					return err
				}
				r, err := adm.CreateTopic(ctx, partitions, replication, cfgs, topic)
				if ifNotExists && errors.Is(err, kerr.TopicAlreadyExists) {
					return nil // as kafka-topics.sh --if-not-exists: silent
				}
				if r.Err != nil {
					return fmt.Errorf("cannot create topic %q: %w", topic, brokerError(r.Err, r.ErrMessage))
				}
				if err != nil {
					return fmt.Errorf("cannot create topic %q: %w", topic, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Created topic %s.\n", topic)
				return nil
			})}
		create.Flags().StringVar(&topic, "topic", "", "topic name")
		create.Flags().Int32Var(&partitions, "partitions", -1, "number of partitions (-1: the broker's default)")
		create.Flags().Int16Var(&replication, "replication-factor", -1, "replicas per partition (-1: the broker's default)")
		create.Flags().StringArrayVar(&configs, "config", nil, "topic config key=value (repeatable)")
		create.Flags().BoolVar(&ifNotExists, "if-not-exists", false, "do nothing, and succeed, when the topic exists already")
		_ = create.MarkFlagRequired("topic")
		// The topic configs are checked before connecting, so a misplaced config file
		// is named as such even when no broker is up.
		checkConfigs := func(*cobra.Command, []string) error { _, err := parseConfigs(configs); return err }
		create.PreRunE = checkConfigs

		list := &cobra.Command{Use: "list [--topic NAME|REGEX] [--exclude-internal]", Short: "List topics", Args: cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				ts, err := parseTopicSelector(topic)
				if err != nil {
					return err
				}
				names, err := selectTopics(ctx, adm, ts, excludeInternal)
				if err != nil {
					return err
				}
				for _, t := range names {
					fmt.Fprintln(cmd.OutOrStdout(), t)
				}
				return nil
			})}
		topicFlags(list, "only the topics matching this", false, false)
		list.Flags().BoolVar(&excludeInternal, "exclude-internal", false, "leave out internal topics (__consumer_offsets, __transaction_state)")

		describe := &cobra.Command{Use: "describe [--topic NAME|REGEX]", Short: "Describe topics: partitions, leader, offsets, size, configs", Args: cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				names, _, err := selected(ctx, adm)
				if err != nil || len(names) == 0 {
					return err
				}
				return describeTopics(ctx, adm, cmd, names, report)
			})}
		topicFlags(describe, "the topics to describe (default: all)", false, true)
		df := describe.Flags()
		df.BoolVar(&excludeInternal, "exclude-internal", false, "leave out internal topics (__consumer_offsets, __transaction_state)")
		df.BoolVar(&report.overridesOnly, "topics-with-overrides", false, "only topics with configs set on the topic, one line each, without partitions")
		df.BoolVar(&report.underReplicated, "under-replicated-partitions", false, "only partitions with fewer in-sync replicas than replicas")
		df.BoolVar(&report.unavailable, "unavailable-partitions", false, "only partitions without a leader, or whose leader is not live")
		df.BoolVar(&report.underMinISR, "under-min-isr-partitions", false, "only partitions with fewer in-sync replicas than min.insync.replicas")
		df.BoolVar(&report.atMinISR, "at-min-isr-partitions", false, "only partitions with exactly min.insync.replicas in-sync replicas")

		alter := &cobra.Command{Use: "alter", Short: "Change topic configs or grow its partitions", Args: cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				cfgs, err := parseConfigs(configs)
				if err != nil {
					return err
				}
				var alters []kadm.AlterConfig
				for k, v := range cfgs {
					alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: v})
				}
				// k1,k2 as configs --delete-config takes them (no config name has a comma):
				// else "Invalid config(s): k1,k2" named two keys that are both set.
				var dels []string
				for _, d := range deleteConfigs {
					for _, k := range strings.Split(d, ",") {
						if k = strings.TrimSpace(k); k != "" {
							dels = append(dels, k)
						}
					}
				}
				deleteConfigs = dels
				for _, k := range deleteConfigs {
					alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
				}
				if len(alters) == 0 && alterPartitions <= 0 {
					return fmt.Errorf("nothing to alter: give --config, --delete-config or --partitions")
				}
				names, _, err := selected(ctx, adm)
				if err != nil {
					return err
				}
				// As configs --delete-config: a key not set on a topic is refused, and
				// checked on every topic before any is changed.
				for _, name := range names {
					if err := checkDeletedSet(ctx, adm, configEntity{typ: "topics", name: &name}, deleteConfigs); err != nil {
						return fmt.Errorf("cannot alter topic %q: %w", name, err)
					}
				}
				for _, name := range names {
					if err := alterTopic(ctx, adm, name, alters, alterPartitions); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "Altered topic %s.\n", name)
				}
				return nil
			})}
		topicFlags(alter, "the topics to alter", true, true)
		alter.Flags().StringArrayVar(&configs, "config", nil, "set a topic config key=value (repeatable)")
		alter.Flags().StringArrayVar(&deleteConfigs, "delete-config", nil, "return topic configs to their defaults, k1[,k2] (repeatable); a config not set on the topic is refused")
		alter.Flags().Int32Var(&alterPartitions, "partitions", 0, "grow the topic to this many partitions")
		alter.PreRunE = checkConfigs

		del := &cobra.Command{Use: "delete", Short: "Delete topics and their data", Args: cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				names, _, err := selected(ctx, adm)
				if err != nil {
					return err
				}
				for _, name := range names {
					// kadm's DeleteTopic returns the topic's error as err too: the
					// broker's message is in r.
					r, err := adm.DeleteTopic(ctx, name)
					if r.Err != nil {
						return missingTopic(fmt.Errorf("cannot delete topic %q: %w", name, brokerError(r.Err, r.ErrMessage)), name)
					}
					if err != nil {
						return missingTopic(fmt.Errorf("cannot delete topic %q: %w", name, err), name)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "Deleted topic %s.\n", name)
				}
				return nil
			})}
		topicFlags(del, "the topics to delete", true, true)

		var drPartitions []int32
		var drOffset int64
		delRecords := &cobra.Command{Use: "delete-records --topic T --offset N [--partition P]",
			Short: "Delete a topic's records below an offset (like kafka-delete-records.sh): the log start moves up",
			Args:  cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				return deleteRecords(ctx, adm, cmd, topic, drPartitions, drOffset)
			})}
		delRecords.Flags().StringVar(&topic, "topic", "", "topic name")
		delRecords.Flags().Int32SliceVar(&drPartitions, "partition", nil, "only these partitions (repeatable; default: all)")
		delRecords.Flags().Int64Var(&drOffset, "offset", 0, "delete the records below this offset; -1: every record (up to the high watermark)")
		_ = delRecords.MarkFlagRequired("topic")
		_ = delRecords.MarkFlagRequired("offset")

		var at string
		getOffsets := &cobra.Command{Use: "get-offsets --topic T [--time latest|earliest|max-timestamp|<RFC 3339>|<ms>]",
			Short: "Each partition's offset at a time (like kafka-get-offsets.sh): latest, earliest, or the first at or after a time",
			Args:  cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				return getOffsets(ctx, adm, cmd, topic, at)
			})}
		getOffsets.Flags().StringVar(&topic, "topic", "", "topic name")
		getOffsets.Flags().StringVar(&at, "time", "latest", "latest (-1), earliest (-2), max-timestamp (-3), Unix milliseconds, or a time: RFC 3339 or YYYY-MM-DDTHH:mm:SS.sss (UTC)")
		_ = getOffsets.MarkFlagRequired("topic")

		cmd.AddCommand(create, list, describe, alter, del, delRecords, getOffsets)
		return cmd
	})
}

// getOffsets prints topic:partition:offset per partition as kafka-get-offsets.sh does:
// the end, the start, the offset of the largest timestamp, or the first offset whose
// record timestamp is at or after a time (the end when there is none: -1 in Kafka's
// tool).
func getOffsets(ctx context.Context, adm *kadm.Client, cmd *cobra.Command, topic, at string) error {
	var (
		offs kadm.ListedOffsets
		err  error
	)
	switch at {
	case "latest", "-1":
		offs, err = adm.ListEndOffsets(ctx, topic)
	case "earliest", "-2":
		offs, err = adm.ListStartOffsets(ctx, topic)
	case "max-timestamp", "-3":
		offs, err = adm.ListMaxTimestampOffsets(ctx, topic)
	default:
		ms, perr := strconv.ParseInt(at, 10, 64)
		if perr != nil {
			t, terr := parseKafkaDatetime(at)
			if terr != nil {
				return fmt.Errorf("bad --time %q: want latest, earliest, max-timestamp, Unix milliseconds or a time, YYYY-MM-DDTHH:mm:SS.sss (UTC unless a zone such as Z or +08:00 follows)", at)
			}
			ms = t.UnixMilli()
		} else if ms < 0 {
			return fmt.Errorf("bad --time %q: the special times are -1 (latest), -2 (earliest) and -3 (max-timestamp)", at)
		}
		offs, err = adm.ListOffsetsAfterMilli(ctx, ms, topic)
	}
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return missingTopic(fmt.Errorf("cannot list the offsets of %q: %w", topic, err), topic)
	}
	if len(offs[topic]) == 0 {
		return fmt.Errorf("topic %q does not exist", topic)
	}
	var list []kadm.ListedOffset
	offs.Each(func(o kadm.ListedOffset) { list = append(list, o) })
	sort.Slice(list, func(i, j int) bool { return list[i].Partition < list[j].Partition })
	for _, o := range list {
		fmt.Fprintf(cmd.OutOrStdout(), "%s:%d:%d\n", o.Topic, o.Partition, o.Offset)
	}
	return nil
}

// deleteRecords moves the log start of the topic's partitions (all, or those listed)
// up to offset (-1: the high watermark) with DeleteRecords and prints each partition's
// new low watermark, as kafka-delete-records.sh does.
func deleteRecords(ctx context.Context, adm *kadm.Client, cmd *cobra.Command, topic string, partitions []int32, offset int64) error {
	if offset < -1 {
		return fmt.Errorf("bad --offset %d: want an offset >= 0, or -1 for every record", offset)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return missingTopic(fmt.Errorf("cannot list the partitions of %q: %w", topic, err), topic)
	}
	if err := ends.Error(); err != nil {
		return missingTopic(fmt.Errorf("cannot list the partitions of %q: %w", topic, err), topic)
	}
	offs := kadm.Offsets{}
	if len(partitions) == 0 {
		ends.Each(func(o kadm.ListedOffset) { partitions = append(partitions, o.Partition) })
	}
	for _, p := range partitions {
		if _, ok := ends.Lookup(topic, p); !ok {
			return fmt.Errorf("topic %q has no partition %d", topic, p)
		}
		offs.Add(kadm.Offset{Topic: topic, Partition: p, At: offset})
	}
	rs, err := adm.DeleteRecords(ctx, offs)
	if err != nil {
		return fmt.Errorf("cannot delete records of %q: %w", topic, err)
	}
	sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })
	var errs []string
	for _, p := range partitions {
		r, _ := rs.Lookup(topic, p)
		if r.Err != nil {
			if end, ok := ends.Lookup(topic, p); ok && errors.Is(r.Err, kerr.OffsetOutOfRange) && offset > end.Offset {
				errs = append(errs, fmt.Sprintf("partition %d: offset %d is past its end offset %d (-1 deletes every record)", p, offset, end.Offset))
				continue
			}
			errs = append(errs, fmt.Sprintf("partition %d: %v", p, internalTopicError(r.Err, topic)))
			continue
		}
		fmt.Fprintf(cmd.OutOrStdout(), "partition: %s-%d\tlow_watermark: %d\n", topic, p, r.LowWatermark)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cannot delete records of %q: %s", topic, strings.Join(errs, "; "))
	}
	return nil
}

// alterTopic applies config changes and a partition count to one topic.
func alterTopic(ctx context.Context, adm *kadm.Client, topic string, alters []kadm.AlterConfig, partitions int32) error {
	if len(alters) > 0 {
		rs, err := adm.AlterTopicConfigs(ctx, alters, topic)
		if err != nil {
			return missingTopic(fmt.Errorf("cannot alter topic %q: %w", topic, err), topic)
		}
		for _, r := range rs {
			if r.Err != nil {
				return missingTopic(fmt.Errorf("cannot alter topic %q: %w", topic, brokerError(r.Err, r.ErrMessage)), topic)
			}
		}
	}
	if partitions > 0 {
		rs, err := adm.UpdatePartitions(ctx, int(partitions), topic)
		if err != nil {
			return fmt.Errorf("cannot change partitions of %q: %w", topic, err)
		}
		for _, r := range rs {
			if r.Err != nil {
				return fmt.Errorf("cannot change partitions of %q: %w", topic, brokerError(r.Err, r.ErrMessage))
			}
		}
	}
	return nil
}

// describeTopics prints the topics (partitions with offsets and sizes, then configs
// with their source), or what report asks for instead.
func describeTopics(ctx context.Context, adm *kadm.Client, cmd *cobra.Command, topics []string, report partitionReport) error {
	td, err := adm.ListTopicsWithInternal(ctx, topics...)
	if err != nil {
		return fmt.Errorf("cannot describe topics: %w", err)
	}
	if err := td.Error(); err != nil {
		if len(topics) == 1 {
			return missingTopic(fmt.Errorf("cannot describe topics: %w", err), topics[0])
		}
		return fmt.Errorf("cannot describe topics: %w", err)
	}
	names := td.Names()
	sort.Strings(names)
	if report.overridesOnly || report.any() {
		cfgs, err := adm.DescribeTopicConfigs(ctx, names...)
		if err != nil {
			return fmt.Errorf("cannot describe topic configs: %w", err)
		}
		if report.any() {
			return printPartitionReport(ctx, adm, cmd.OutOrStdout(), td, cfgs, report)
		}
		printOverrides(cmd.OutOrStdout(), td, cfgs)
		return nil
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return fmt.Errorf("cannot list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return fmt.Errorf("cannot list end offsets: %w", err)
	}
	// Sizes come from DescribeLogDirs; a broker that refuses it still gets the rest.
	sizes, _ := adm.DescribeAllLogDirs(ctx, td.TopicsSet())
	cfgs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return fmt.Errorf("cannot describe topic configs: %w", err)
	}
	out := cmd.OutOrStdout()
	for _, t := range td.Sorted() {
		// The topic id as Kafka prints it (Uuid.toString: URL-safe base64, no padding),
		// the form kafka-topics.sh shows and the streaming checkpoint keeps.
		id := base64.RawURLEncoding.EncodeToString(t.ID[:])
		fmt.Fprintf(out, "Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\n", t.Topic, id, len(t.Partitions), t.Partitions.NumReplicas())
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\tPartition\tLeader\tReplicas\tIsr\tStartOffset\tEndOffset\tSize")
		for _, p := range t.Partitions.Sorted() {
			so, _ := starts.Lookup(t.Topic, p.Partition)
			eo, _ := ends.Lookup(t.Topic, p.Partition)
			size := int64(-1)
			for _, d := range sizes {
				if dp, ok := d.LookupPartition(t.Topic, p.Partition); ok {
					size = dp.Size
				}
			}
			fmt.Fprintf(tw, "\t%d\t%d\t%v\t%v\t%d\t%d\t%d\n", p.Partition, p.Leader, p.Replicas, p.ISR, so.Offset, eo.Offset, size)
		}
		_ = tw.Flush()
		for _, rc := range cfgs {
			if rc.Name != t.Topic {
				continue
			}
			fmt.Fprintln(out, "\tConfigs:")
			for _, c := range rc.Configs {
				fmt.Fprintf(out, "\t  %s=%s (%s)\n", c.Key, c.MaybeValue(), strings.ToLower(strings.TrimSuffix(kmsg.ConfigSource.String(c.Source), "_CONFIG")))
			}
		}
	}
	return nil
}
