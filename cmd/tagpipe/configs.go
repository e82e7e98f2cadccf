package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tagpipe/tagpipe/ingest/flumeconf"
)

// `tagpipe configs`: kafka-configs.sh over the Kafka protocol. Topics, brokers and broker
// loggers map onto DescribeConfigs and IncrementalAlterConfigs; users, clients and ips
// onto client quotas (DescribeClientQuotas, AlterClientQuotas) and, for users, SCRAM
// credentials (DescribeUserScramCredentials, AlterUserScramCredentials). The output
// lines are kafka-configs.sh's. Its groups and client-metrics entity types are refused
// with the reason (unsupportedEntityTypes).
func init() {
	register(func(a *app) *cobra.Command {
		var kf kafkaFlags
		var o configsOpts
		cmd := &cobra.Command{
			Use:   "configs (--describe | --alter) --entity-type topics|brokers|broker-loggers|users|clients|ips [--entity-name N | --entity-default] [--add-config k=v,k2=[a,b] | --add-config-file F] [--delete-config k,k2] [--all]",
			Short: "Describe and alter topic and broker configs, broker log levels, client and ip quotas and SCRAM credentials (like kafka-configs.sh)",
			Example: `  tagpipe configs --describe --entity-type topics --entity-name events
  tagpipe configs --alter --entity-type topics --entity-name events --add-config retention.ms=86400000,cleanup.policy=[compact,delete]
  tagpipe configs --describe --entity-type brokers --entity-name 0 --all
  tagpipe configs --alter --entity-type topics --entity-name events --add-config-file events.properties
  tagpipe configs --describe --entity-type broker-loggers --entity-name 0
  tagpipe configs --alter --entity-type broker-loggers --entity-name 0 --add-config broker=DEBUG
  tagpipe configs --alter --entity-type users --entity-name alice --add-config producer_byte_rate=1048576
  tagpipe configs --alter --entity-type users --entity-name alice --entity-type clients --entity-default --add-config consumer_byte_rate=2097152
  tagpipe configs --alter --entity-type users --entity-name carol --add-config 'SCRAM-SHA-256=[iterations=8192,password=carol-secret]'
  tagpipe configs --describe --entity-type users --entity-name carol
  tagpipe configs --alter --entity-type ips --entity-name 127.0.0.1 --add-config connection_creation_rate=5
  tagpipe configs --describe --entity-type ips`,
			Args: cobra.NoArgs,
		}
		kf.add(cmd)
		// The configs are checked before connecting, so a bad flag is named even with no
		// broker up.
		cmd.PreRunE = func(*cobra.Command, []string) error { _, err := o.check(); return err }
		cmd.RunE = kf.withAdmin(a, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client, cmd *cobra.Command) error {
			ents, err := o.check()
			if err != nil {
				return err
			}
			if ents[0].typ == "broker-loggers" {
				return brokerLoggersCmd(ctx, cl, adm, cmd.OutOrStdout(), *ents[0].name, o)
			}
			if o.describe {
				return describeConfigsCmd(ctx, adm, cmd.OutOrStdout(), ents, o.all)
			}
			return alterConfigsCmd(ctx, adm, cmd.OutOrStdout(), ents, o)
		})
		f := cmd.Flags()
		f.BoolVar(&o.describe, "describe", false, "list the entity's configs (dynamic ones; with --all, every one)")
		f.BoolVar(&o.alter, "alter", false, "change the entity's configs")
		f.BoolVar(&o.all, "all", false, "with --describe: every config of the topic or broker, with its source, not only the dynamic ones")
		f.StringArrayVar(&o.types, "entity-type", nil, "topics, brokers, broker-loggers, users, clients or ips; users and clients together name a user's client")
		f.Var(&entityNameValue{&o.names}, "entity-name", "the topic, broker id (of brokers and broker-loggers), user principal, client id or IP address (one per --entity-type, in the same order)")
		f.Var(&entityDefaultValue{&o.names}, "entity-default", "the default user, client, ip or brokers (cluster-wide) in place of --entity-name")
		f.Lookup("entity-default").NoOptDefVal = "true"
		f.StringArrayVar(&o.add, "add-config", nil, "configs to set: k=v,k2=v2; brackets keep commas in a value: k=[a,b]; SCRAM-SHA-256=[iterations=8192,password=P] sets a user's credential (the password is then in the shell history and the process list: tagpipe users scram --password-stdin keeps it out)")
		f.StringVar(&o.addFile, "add-config-file", "", "a Java properties file of configs to set (key=value or key: value lines, # and ! comments, \\ continuations), in place of --add-config; values are taken as written (no brackets needed for commas)")
		f.StringSliceVar(&o.del, "delete-config", nil, "config keys to remove: k,k2 (SCRAM-SHA-256 deletes that credential)")
		return cmd
	})
}

type configsOpts struct {
	describe, alter, all bool
	types                []string
	names                []*string // in flag order; nil: --entity-default
	add, del             []string
	addFile              string
}

// entityNameValue and entityDefaultValue append to one list, so --entity-name and
// --entity-default keep their order on the command line, as kafka-configs.sh pairs
// them with the --entity-type values.
type entityNameValue struct{ names *[]*string }

func (v *entityNameValue) Set(s string) error { *v.names = append(*v.names, &s); return nil }
func (v *entityNameValue) String() string     { return "" }
func (v *entityNameValue) Type() string       { return "string" }

type entityDefaultValue struct{ names *[]*string }

func (v *entityDefaultValue) Set(s string) error {
	if b, err := strconv.ParseBool(s); err != nil || !b {
		return errors.New("--entity-default takes no value")
	}
	*v.names = append(*v.names, nil)
	return nil
}
func (v *entityDefaultValue) String() string   { return "" }
func (v *entityDefaultValue) Type() string     { return "bool" }
func (v *entityDefaultValue) IsBoolFlag() bool { return true }

// configEntity is one --entity-type with its name: named (name != nil), the default
// (isDefault), or every entity of the type (neither, --describe only).
type configEntity struct {
	typ       string
	name      *string
	isDefault bool
}

func (e configEntity) named() bool { return e.name != nil }

// check validates the flags as kafka-configs.sh does and pairs the entity types with
// their names; users come before clients whichever was given first.
func (o *configsOpts) check() ([]configEntity, error) {
	if o.describe == o.alter {
		return nil, errors.New("give exactly one of --describe or --alter")
	}
	if len(o.types) == 0 {
		return nil, errors.New("give --entity-type " + supportedEntityTypes)
	}
	for _, t := range o.types {
		if why, ok := unsupportedEntityTypes[t]; ok {
			return nil, fmt.Errorf("--entity-type %s is not supported: %s; supported: %s", t, why, supportedEntityTypes)
		}
		if !slices.Contains([]string{"topics", "brokers", "broker-loggers", "users", "clients", "ips"}, t) {
			return nil, fmt.Errorf("bad --entity-type %q: want %s", t, supportedEntityTypes)
		}
	}
	if len(o.types) > 2 || len(o.types) == 2 && !(slices.Contains(o.types, "users") && slices.Contains(o.types, "clients")) {
		return nil, errors.New("only users and clients may be given together as --entity-type")
	}
	if len(o.names) > len(o.types) {
		return nil, errors.New("more --entity-name/--entity-default than --entity-type")
	}
	ents := make([]configEntity, len(o.types))
	for i, t := range o.types {
		ents[i].typ = t
		if i < len(o.names) {
			ents[i].name, ents[i].isDefault = o.names[i], o.names[i] == nil
		}
		if ents[i].isDefault && (t == "topics" || t == "broker-loggers") {
			return nil, fmt.Errorf("--entity-default is for users, clients, ips and brokers, not %s", t)
		}
		if t == "broker-loggers" {
			if !ents[i].named() {
				return nil, errors.New("--entity-type broker-loggers needs the broker id as --entity-name")
			}
			if _, err := strconv.ParseInt(*ents[i].name, 10, 32); err != nil {
				return nil, fmt.Errorf("the entity name for broker-loggers must be a broker id, found: %s", *ents[i].name)
			}
		}
	}
	if len(ents) == 2 && ents[0].typ == "clients" {
		ents[0], ents[1] = ents[1], ents[0]
	}
	if o.alter {
		if len(o.names) != len(o.types) {
			return nil, errors.New("--alter needs an --entity-name or --entity-default for every --entity-type")
		}
		if len(o.add) > 0 && o.addFile != "" {
			return nil, errors.New("give only one of --add-config or --add-config-file")
		}
		if len(o.add) == 0 && o.addFile == "" && len(o.del) == 0 {
			return nil, errors.New("--alter needs --add-config, --add-config-file or --delete-config")
		}
		if o.all {
			return nil, errors.New("--all goes with --describe")
		}
	} else if len(o.add) > 0 || o.addFile != "" || len(o.del) > 0 {
		return nil, errors.New("--add-config, --add-config-file and --delete-config go with --alter")
	}
	if _, err := o.configsToAdd(); err != nil {
		return nil, err
	}
	return ents, nil
}

// supportedEntityTypes are the --entity-type values served, as the messages name them.
const supportedEntityTypes = "topics, brokers, broker-loggers, users, clients or ips"

// unsupportedEntityTypes are kafka-configs.sh's other entity types, each with the reason
// the built-in broker has none (broker/UNSUPPORTED.md).
var unsupportedEntityTypes = map[string]string{
	"groups":         "group configs (KIP-848: consumer.session.timeout.ms, consumer.heartbeat.interval.ms, share.*, streams.*) are not served by the built-in broker: its consumer groups take the broker-wide group.consumer.session.timeout.ms and group.consumer.heartbeat.interval.ms (tagpipe.yaml), share and streams groups are not served",
	"client-metrics": "client metrics subscriptions (KIP-714) are not served by the built-in broker",
}

// configsToAdd is the configs to set, from --add-config or --add-config-file.
func (o *configsOpts) configsToAdd() ([][2]string, error) {
	if o.addFile == "" {
		return parseAddConfig(o.add)
	}
	return readAddConfigFile(o.addFile)
}

// readAddConfigFile reads --add-config-file as kafka-configs.sh does (Utils.loadProps: a
// Java properties file), the keys checked as --add-config's and sorted, so the order of
// the changes does not depend on a map's.
func readAddConfigFile(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--add-config-file: %w", err)
	}
	defer f.Close()
	props, err := flumeconf.ReadProperties(f)
	if err != nil {
		return nil, fmt.Errorf("--add-config-file %s: %w", path, err)
	}
	if len(props) == 0 {
		return nil, fmt.Errorf("--add-config-file %s has no configs", path)
	}
	out := make([][2]string, 0, len(props))
	for _, k := range slices.Sorted(maps.Keys(props)) {
		if !configKey.MatchString(k) {
			return nil, fmt.Errorf("bad --add-config-file %s: invalid character in config key %q", path, k)
		}
		out = append(out, [2]string{k, strings.TrimSpace(props[k])})
	}
	return out, nil
}

// configKey is kafka-configs.sh's validatePropsKey; '$' is in it for logger names of
// inner classes.
var configKey = regexp.MustCompile(`^[$a-zA-Z0-9._-]+$`)

// parseAddConfig reads --add-config values as kafka-configs.sh: k=v pairs split at the
// commas outside brackets, brackets then dropped from the value (k=[a,b] is "a,b").
func parseAddConfig(vals []string) ([][2]string, error) {
	var out [][2]string
	for _, val := range vals {
		depth, start := 0, 0
		var pairs []string
		for i, r := range val {
			switch r {
			case '[':
				depth++
			case ']':
				depth--
			case ',':
				if depth == 0 {
					pairs = append(pairs, val[start:i])
					start = i + 1
				}
			}
		}
		pairs = append(pairs, val[start:])
		for _, p := range pairs {
			k, v, ok := strings.Cut(p, "=")
			k = strings.TrimSpace(k)
			if !ok {
				return nil, fmt.Errorf(`bad --add-config %q: every config must be "key=val" or "key=[val1,val2]"`, p)
			}
			if !configKey.MatchString(k) {
				return nil, fmt.Errorf("bad --add-config: invalid character in config key %q", k)
			}
			v = strings.TrimSpace(strings.NewReplacer("[", "", "]", "").Replace(v))
			out = append(out, [2]string{k, v})
		}
	}
	return out, nil
}

// isScramKey says whether a users config is a SCRAM credential rather than a quota.
func isScramKey(k string) bool { return k == "SCRAM-SHA-256" || k == "SCRAM-SHA-512" }

func describeConfigsCmd(ctx context.Context, adm *kadm.Client, out io.Writer, ents []configEntity, all bool) error {
	e := ents[0]
	switch e.typ {
	case "topics":
		var names []string
		if e.named() {
			names = []string{*e.name}
		} else {
			var err error
			if names, err = selectTopics(ctx, adm, topicSelector{}, false); err != nil {
				return err
			}
		}
		if len(names) == 0 {
			return nil
		}
		rcs, err := adm.DescribeTopicConfigs(ctx, names...)
		if err != nil {
			return fmt.Errorf("cannot describe topic configs: %w", err)
		}
		return printResourceConfigs(out, "topic", names, rcs, kmsg.ConfigSourceDynamicTopicConfig, all)
	case "brokers":
		var ids []int32
		var names []string
		switch {
		case e.named():
			id, err := strconv.ParseInt(*e.name, 10, 32)
			if err != nil {
				return fmt.Errorf("the entity name for brokers must be a broker id, found: %s", *e.name)
			}
			ids, names = []int32{int32(id)}, []string{*e.name}
		case !e.isDefault:
			bs, err := adm.ListBrokers(ctx)
			if err != nil {
				return fmt.Errorf("cannot list brokers: %w", err)
			}
			for _, b := range bs {
				ids = append(ids, b.NodeID)
				names = append(names, strconv.Itoa(int(b.NodeID)))
			}
		}
		if len(ids) > 0 {
			rcs, err := adm.DescribeBrokerConfigs(ctx, ids...)
			if err != nil {
				return fmt.Errorf("cannot describe broker configs: %w", err)
			}
			if err := printResourceConfigs(out, "broker", names, rcs, kmsg.ConfigSourceDynamicBrokerConfig, all); err != nil {
				return err
			}
		}
		if e.named() {
			return nil
		}
		rcs, err := adm.DescribeBrokerConfigs(ctx) // the cluster-wide defaults
		if err != nil {
			return fmt.Errorf("cannot describe the default broker configs: %w", err)
		}
		return printResourceConfigs(out, "", []string{""}, rcs, kmsg.ConfigSourceDynamicDefaultBrokerConfig, all)
	}
	return describeQuotaConfigs(ctx, adm, out, ents)
}

// printResourceConfigs prints kafka-configs.sh's "Dynamic configs for topic t are:"
// block per resource: the configs from source (or every one, with all), sorted, each as
// "  k=v sensitive=false synonyms={SOURCE:k=v, …}".
func printResourceConfigs(out io.Writer, kind string, names []string, rcs kadm.ResourceConfigs, source kmsg.ConfigSource, all bool) error {
	var errs []error
	for _, name := range names {
		rc, err := rcs.On(name, nil)
		if err == nil && rc.Err != nil {
			err = brokerError(rc.Err, rc.ErrMessage)
		}
		if err != nil {
			if kind == "topic" {
				err = missingTopic(err, name)
			}
			errs = append(errs, fmt.Errorf("cannot describe the configs of %s %s: %w", orElse(kind, "brokers"), name, err))
			continue
		}
		switch {
		case name == "":
			fmt.Fprintln(out, "Default configs for brokers in the cluster are:")
		case all:
			fmt.Fprintf(out, "All configs for %s %s are:\n", kind, name)
		default:
			fmt.Fprintf(out, "Dynamic configs for %s %s are:\n", kind, name)
		}
		cs := slices.Clone(rc.Configs)
		slices.SortFunc(cs, func(a, b kadm.Config) int { return strings.Compare(a.Key, b.Key) })
		for _, c := range cs {
			if !all && c.Source != source {
				continue
			}
			syns := make([]string, len(c.Synonyms))
			for i, s := range c.Synonyms {
				syns[i] = s.Source.String() + ":" + s.Key + "=" + valueOrNull(s.Value)
			}
			fmt.Fprintf(out, "  %s=%s sensitive=%t synonyms={%s}\n", c.Key, valueOrNull(c.Value), c.Sensitive, strings.Join(syns, ", "))
		}
	}
	return errors.Join(errs...)
}

func orElse(s, empty string) string {
	if s == "" {
		return empty
	}
	return s
}

// valueOrNull is a config value as Java prints it: null when there is none (sensitive).
func valueOrNull(v *string) string {
	if v == nil {
		return "null"
	}
	return *v
}

// describeQuotaConfigs prints the client quotas of the users/clients (or ips) entities
// as kafka-configs.sh ("Quota configs for user-principal 'alice' are k=v, …", "Quota
// configs for ip '127.0.0.1' are connection_creation_rate=5.0"), then, for
// users alone and not the default, their SCRAM credentials ("SCRAM credential configs
// for user-principal 'alice' are SCRAM-SHA-256=iterations=8192").
func describeQuotaConfigs(ctx context.Context, adm *kadm.Client, out io.Writer, ents []configEntity) error {
	var comps []kadm.DescribeClientQuotaComponent
	for _, e := range ents {
		c := kadm.DescribeClientQuotaComponent{Type: quotaType(e.typ), MatchType: kmsg.QuotasMatchTypeAny}
		switch {
		case e.named():
			c.MatchName, c.MatchType = e.name, kmsg.QuotasMatchTypeExact
		case e.isDefault:
			c.MatchType = kmsg.QuotasMatchTypeDefault
		}
		comps = append(comps, c)
	}
	// As Kafka's ClientQuotaFilter.containsOnly: entities of exactly these types.
	qs, err := adm.DescribeClientQuotas(ctx, true, comps)
	if err != nil {
		return fmt.Errorf("cannot describe client quotas: %w", err)
	}
	lines := make([]string, 0, len(qs))
	for _, q := range qs {
		var who []string
		for _, typ := range []string{"user", "client-id", "ip"} {
			for _, c := range q.Entity {
				if c.Type != typ {
					continue
				}
				label := map[string]string{"user": "user-principal", "client-id": "client-id", "ip": "ip"}[typ]
				if c.Name == nil {
					who = append(who, "the default "+label)
				} else {
					who = append(who, label+" '"+*c.Name+"'")
				}
			}
		}
		vals := make([]string, 0, len(q.Values))
		for _, v := range q.Values {
			vals = append(vals, v.Key+"="+javaDouble(v.Value))
		}
		slices.Sort(vals)
		lines = append(lines, fmt.Sprintf("Quota configs for %s are %s", strings.Join(who, ", "), strings.Join(vals, ", ")))
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
	if len(ents) != 1 || ents[0].typ != "users" || ents[0].isDefault {
		return nil
	}
	var users []string
	if ents[0].named() {
		users = []string{*ents[0].name}
	}
	ds, err := adm.DescribeUserSCRAMs(ctx, users...)
	if err != nil {
		return fmt.Errorf("cannot describe SCRAM credentials: %w", err)
	}
	for _, d := range ds.Sorted() {
		if d.Err != nil {
			if ents[0].named() && len(lines) > 0 && strings.Contains(d.Err.Error(), "RESOURCE_NOT_FOUND") {
				continue // a user with quotas and no credential
			}
			fmt.Fprintf(out, "Error retrieving SCRAM credential configs for user-principal '%s': %v\n", d.User, brokerError(d.Err, d.ErrMessage))
			continue
		}
		infos := make([]string, len(d.CredInfos))
		for i, c := range d.CredInfos {
			infos[i] = fmt.Sprintf("%s=iterations=%d", c.Mechanism, c.Iterations)
		}
		fmt.Fprintf(out, "SCRAM credential configs for user-principal '%s' are %s\n", d.User, strings.Join(infos, ", "))
	}
	return nil
}

// javaDouble prints a quota as Java's Double.toString does for the usual values
// (1048576.0), as kafka-configs.sh shows them.
func javaDouble(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e7 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func quotaType(entityType string) string {
	switch entityType {
	case "users":
		return "user"
	case "ips":
		return "ip"
	}
	return "client-id"
}

func alterConfigsCmd(ctx context.Context, adm *kadm.Client, out io.Writer, ents []configEntity, o configsOpts) error {
	adds, err := o.configsToAdd() // checked before; the file is read again
	if err != nil {
		return err
	}
	e := ents[0]
	switch e.typ {
	case "topics", "brokers":
		var alters []kadm.AlterConfig
		for _, k := range o.del {
			alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: strings.TrimSpace(k)})
		}
		for _, kv := range adds {
			alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: kv[0], Value: &kv[1]})
		}
		if err := checkDeletedSet(ctx, adm, e, o.del); err != nil {
			return err
		}
		if e.typ == "topics" {
			if err := alterTopic(ctx, adm, *e.name, alters, 0); err != nil {
				return err
			}
			break
		}
		var ids []int32
		what := "the default broker configs"
		if e.named() {
			id, err := strconv.ParseInt(*e.name, 10, 32)
			if err != nil {
				return fmt.Errorf("the entity name for brokers must be a broker id, found: %s", *e.name)
			}
			ids, what = []int32{int32(id)}, "the configs of broker "+*e.name
		}
		rs, err := adm.AlterBrokerConfigs(ctx, alters, ids...)
		if err != nil {
			return fmt.Errorf("cannot alter %s: %w", what, err)
		}
		for _, r := range rs {
			if r.Err != nil {
				return fmt.Errorf("cannot alter %s: %w", what, brokerError(r.Err, r.ErrMessage))
			}
		}
	default:
		if err := alterUserClientConfigs(ctx, adm, ents, adds, o.del); err != nil {
			return err
		}
	}
	if e.named() {
		fmt.Fprintf(out, "Completed updating config for %s %s.\n", strings.TrimSuffix(e.typ, "s"), *e.name)
	} else {
		fmt.Fprintf(out, "Completed updating default config for %s in the cluster.\n", e.typ)
	}
	return nil
}

// alterUserClientConfigs sets or removes client quotas (users, clients, a user's
// client, or ips), or a user's SCRAM credentials, as kafka-configs.sh allows: not both
// at once, and SCRAM only for a named user.
func alterUserClientConfigs(ctx context.Context, adm *kadm.Client, ents []configEntity, adds [][2]string, dels []string) error {
	var quotaAdd, quotaDel []string
	var scramAdd [][2]string
	var scramDel []string
	for _, kv := range adds {
		if isScramKey(kv[0]) {
			scramAdd = append(scramAdd, kv)
		} else {
			quotaAdd = append(quotaAdd, kv[0]+"="+kv[1])
		}
	}
	for _, k := range dels {
		if k = strings.TrimSpace(k); isScramKey(k) {
			scramDel = append(scramDel, k)
		} else {
			quotaDel = append(quotaDel, k)
		}
	}
	scram := len(scramAdd)+len(scramDel) > 0
	if scram {
		switch {
		case len(ents) != 1 || ents[0].typ != "users":
			return errors.New("SCRAM credentials are configs of users alone, not of clients")
		case ents[0].isDefault:
			return errors.New("--entity-default is not allowed with SCRAM credentials")
		case len(quotaAdd)+len(quotaDel) > 0:
			return errors.New("cannot alter both quotas and SCRAM credentials of a user at once")
		}
		user := *ents[0].name
		var dl []kadm.DeleteSCRAM
		var up []kadm.UpsertSCRAM
		for _, k := range scramDel {
			m, err := parseScramMechanism(k)
			if err != nil {
				return err
			}
			dl = append(dl, kadm.DeleteSCRAM{User: user, Mechanism: m})
		}
		for _, kv := range scramAdd {
			m, err := parseScramMechanism(kv[0])
			if err != nil {
				return err
			}
			iter, pass, err := parseScramCredential(kv[1])
			if err != nil {
				return fmt.Errorf("bad %s credential: %w", kv[0], err)
			}
			up = append(up, kadm.UpsertSCRAM{User: user, Mechanism: m, Iterations: iter, Password: pass})
		}
		return alterSCRAM(ctx, adm, user, dl, up)
	}
	var ef quotaEntityFlags
	for _, e := range ents {
		switch {
		case e.typ == "users" && e.isDefault:
			ef.defaultUser = true
		case e.typ == "users":
			ef.user = *e.name
		case e.typ == "ips" && e.isDefault:
			ef.defaultIP = true
		case e.typ == "ips":
			ef.ip = *e.name
		case e.isDefault:
			ef.defaultClient = true
		default:
			ef.client = *e.name
		}
	}
	entity, err := ef.entity()
	if err != nil {
		return err
	}
	ops, err := quotaOps(quotaAdd, quotaDel)
	if err != nil {
		return err
	}
	if len(quotaDel) > 0 {
		comps, err := ef.filter()
		if err != nil {
			return err
		}
		qs, err := adm.DescribeClientQuotas(ctx, true, comps)
		if err != nil {
			return fmt.Errorf("cannot describe the quotas of %s: %w", quotaEntityText(entity), err)
		}
		set := map[string]bool{}
		for _, q := range qs { // strict: this entity alone
			for _, v := range q.Values {
				set[v.Key] = true
			}
		}
		if err := invalidConfigs(quotaDel, set); err != nil {
			return err
		}
	}
	rs, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{Entity: entity, Ops: ops}})
	if err != nil {
		return fmt.Errorf("cannot alter the quotas of %s: %w", quotaEntityText(entity), err)
	}
	for _, r := range rs {
		if r.Err != nil {
			return fmt.Errorf("cannot alter the quotas of %s: %w", quotaEntityText(entity), brokerError(r.Err, r.ErrMessage))
		}
	}
	return nil
}

// checkDeletedSet refuses, as kafka-configs.sh does, to --delete-config a key that is not
// set on the topic or broker (a dynamic config of its own; a default is not set):
// "Invalid config(s): k".
func checkDeletedSet(ctx context.Context, adm *kadm.Client, e configEntity, dels []string) error {
	if len(dels) == 0 {
		return nil
	}
	var (
		rcs    kadm.ResourceConfigs
		err    error
		name   string
		source = kmsg.ConfigSourceDynamicTopicConfig
	)
	switch {
	case e.typ == "topics":
		name = *e.name
		rcs, err = adm.DescribeTopicConfigs(ctx, name)
	case e.named():
		id, perr := strconv.ParseInt(*e.name, 10, 32)
		if perr != nil {
			return fmt.Errorf("the entity name for brokers must be a broker id, found: %s", *e.name)
		}
		name, source = *e.name, kmsg.ConfigSourceDynamicBrokerConfig
		rcs, err = adm.DescribeBrokerConfigs(ctx, int32(id))
	default:
		source = kmsg.ConfigSourceDynamicDefaultBrokerConfig
		rcs, err = adm.DescribeBrokerConfigs(ctx)
	}
	rc, lerr := rcs.On(name, nil)
	if err == nil {
		err = lerr
	}
	if err == nil && rc.Err != nil {
		err = brokerError(rc.Err, rc.ErrMessage)
	}
	if err != nil {
		if e.typ == "topics" {
			err = missingTopic(err, name)
		}
		return fmt.Errorf("cannot describe the configs of %s %s: %w", strings.TrimSuffix(e.typ, "s"), orElse(name, "(default)"), err)
	}
	set := map[string]bool{}
	for _, c := range rc.Configs {
		if c.Source == source {
			set[c.Key] = true
		}
	}
	return invalidConfigs(dels, set)
}

// invalidConfigs is kafka-configs.sh's "Invalid config(s): a,b" for the keys to delete
// that are not set.
func invalidConfigs(dels []string, set map[string]bool) error {
	var bad []string
	for _, k := range dels {
		if k = strings.TrimSpace(k); !set[k] {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		return errors.New("Invalid config(s): " + strings.Join(bad, ",")) // Kafka's words, capital and all
	}
	return nil
}

var scramCredential = regexp.MustCompile(`^(?:iterations=(-?[0-9]*),)?password=(.*)$`)

// parseScramCredential reads kafka-configs.sh's [iterations=N,]password=P (iterations
// 4096 when left out or -1).
func parseScramCredential(s string) (int32, string, error) {
	m := scramCredential.FindStringSubmatch(s)
	if m == nil || m[2] == "" {
		return 0, "", errors.New("want [iterations=N,password=P]")
	}
	iter := int64(4096)
	if m[1] != "" && m[1] != "-1" {
		n, err := strconv.ParseInt(m[1], 10, 32)
		if err != nil {
			return 0, "", fmt.Errorf("bad iterations %q", m[1])
		}
		iter = n
	}
	return int32(iter), m[2], nil
}

// brokerLoggersCmd is kafka-configs.sh --entity-type broker-loggers: --describe lists
// broker id's loggers and their levels ("Dynamic configs for broker-logger 0 are:", every
// logger: they are all dynamic); --alter sets levels (--add-config broker=DEBUG) or
// removes them (--delete-config broker: the logger follows the root again), refusing a
// logger the broker does not have ("Invalid broker logger(s): x") before changing any.
func brokerLoggersCmd(ctx context.Context, cl *kgo.Client, adm *kadm.Client, out io.Writer, id string, o configsOpts) error {
	bs, err := adm.ListBrokers(ctx)
	if err != nil {
		return fmt.Errorf("cannot list brokers: %w", err)
	}
	if !slices.ContainsFunc(bs, func(b kadm.BrokerDetail) bool { return strconv.Itoa(int(b.NodeID)) == id }) {
		if o.describe && !o.all {
			fmt.Fprintf(out, "The broker-logger '%s' doesn't exist and doesn't have dynamic config.\n", id)
			return nil
		}
		return fmt.Errorf("there is no broker %s (tagpipe configs --describe --entity-type brokers lists them)", id)
	}
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBrokerLogger, id
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, cl) // kgo sends it to broker id
	if err != nil {
		return fmt.Errorf("cannot describe the loggers of broker %s: %w", id, err)
	}
	var rcs kadm.ResourceConfigs
	for _, r := range resp.Resources {
		rc := kadm.ResourceConfig{Name: r.ResourceName, Err: kerr.ErrorForCode(r.ErrorCode)}
		if r.ErrorMessage != nil {
			rc.ErrMessage = *r.ErrorMessage
		}
		for _, c := range r.Configs {
			rc.Configs = append(rc.Configs, kadm.Config{Key: c.Name, Value: c.Value, Sensitive: c.IsSensitive, Source: c.Source})
		}
		rcs = append(rcs, rc)
	}
	if o.describe {
		return printResourceConfigs(out, "broker-logger", []string{id}, rcs, kmsg.ConfigSourceDynamicBrokerLoggerConfig, o.all)
	}
	rc, err := rcs.On(id, nil)
	if err == nil && rc.Err != nil {
		err = brokerError(rc.Err, rc.ErrMessage)
	}
	if err != nil {
		return fmt.Errorf("cannot describe the loggers of broker %s: %w", id, err)
	}
	adds, err := o.configsToAdd()
	if err != nil {
		return err
	}
	loggers := map[string]bool{}
	for _, c := range rc.Configs {
		loggers[c.Key] = true
	}
	var bad []string
	areq := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ar := kmsg.NewIncrementalAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeBrokerLogger, id
	for _, k := range o.del {
		k = strings.TrimSpace(k)
		if !loggers[k] {
			bad = append(bad, k)
		}
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Op, c.Name = kmsg.IncrementalAlterConfigOpDelete, k
		ar.Configs = append(ar.Configs, c)
	}
	for _, kv := range adds {
		if !loggers[kv[0]] {
			bad = append(bad, kv[0])
		}
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Op, c.Name, c.Value = kmsg.IncrementalAlterConfigOpSet, kv[0], &kv[1]
		ar.Configs = append(ar.Configs, c)
	}
	if len(bad) > 0 {
		return errors.New("Invalid broker logger(s): " + strings.Join(bad, ",")) // Kafka's words, capital and all
	}
	areq.Resources = append(areq.Resources, ar)
	aresp, err := areq.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("cannot alter the loggers of broker %s: %w", id, err)
	}
	for _, r := range aresp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			msg := ""
			if r.ErrorMessage != nil {
				msg = *r.ErrorMessage
			}
			return fmt.Errorf("cannot alter the loggers of broker %s: %w", id, brokerError(err, msg))
		}
	}
	fmt.Fprintf(out, "Completed updating config for broker-logger %s.\n", id)
	return nil
}
