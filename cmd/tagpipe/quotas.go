package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// `tagpipe quotas alter|describe`: kafka-configs.sh's client and ip quotas
// (--entity-type users / clients / ips, --entity-name or --entity-default,
// --add-config, --delete-config, --describe), over the Kafka protocol
// (AlterClientQuotas, DescribeClientQuotas), so they work against real Kafka too.
func init() {
	register(func(a *app) *cobra.Command {
		var kf kafkaFlags
		cmd := &cobra.Command{Use: "quotas", Short: "Set, remove and list client and ip quotas (like kafka-configs.sh for users, clients and ips)"}
		kf.add(cmd)
		var ent quotaEntityFlags
		var add, del []string
		var validate bool
		alter := &cobra.Command{Use: "alter ((--user U | --default-user) [--client-id C | --default-client-id] | --ip IP | --default-ip) --add KEY=VALUE --delete KEY",
			Short: "Set or remove quotas of a user, a client id, or both (producer_byte_rate, consumer_byte_rate, request_percentage), or of an ip (connection_creation_rate)",
			Args:  cobra.NoArgs,
			RunE: kf.withAdminOnly(a, func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				entity, err := ent.entity()
				if err != nil {
					return err
				}
				if len(entity) == 0 {
					return errors.New("name the entity: --user, --default-user, --client-id, --default-client-id, --ip or --default-ip")
				}
				ops, err := quotaOps(add, del)
				if err != nil {
					return err
				}
				do := adm.AlterClientQuotas
				if validate {
					do = adm.ValidateAlterClientQuotas
				}
				rs, err := do(ctx, []kadm.AlterClientQuotaEntry{{Entity: entity, Ops: ops}})
				if err != nil {
					return fmt.Errorf("cannot alter the quotas of %s: %w", quotaEntityText(entity), err)
				}
				for _, r := range rs {
					if r.Err != nil {
						return fmt.Errorf("cannot alter the quotas of %s: %w", quotaEntityText(entity), brokerError(r.Err, r.ErrMessage))
					}
				}
				verb := "altered"
				if validate {
					verb = "valid (nothing changed: --validate-only)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "quotas of %s %s\n", quotaEntityText(entity), verb)
				return nil
			})}
		ent.add(alter)
		f := alter.Flags()
		f.StringSliceVar(&add, "add", nil, "quotas to set, KEY=VALUE[,KEY=VALUE] (kafka-configs.sh --add-config); repeatable")
		f.StringSliceVar(&del, "delete", nil, "quota keys to remove, KEY[,KEY] (--delete-config); repeatable")
		f.BoolVar(&validate, "validate-only", false, "have the broker check the change without making it")

		var dent quotaEntityFlags
		var all bool
		describe := &cobra.Command{Use: "describe [--user U | --default-user] [--client-id C | --default-client-id] [--ip IP | --default-ip] [--all]",
			Short: "List client quotas: every entity, or those matching the flags",
			Args:  cobra.NoArgs,
			RunE: kf.withAdminOnly(a, func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				comps, err := dent.filter()
				if err != nil {
					return err
				}
				// As kafka-configs.sh: naming entities describes exactly them; --all also
				// lists the entities that have more components (alice's client ids).
				strict := len(comps) > 0 && !all
				qs, err := adm.DescribeClientQuotas(ctx, strict, comps)
				if err != nil {
					return fmt.Errorf("cannot describe client quotas: %w", err)
				}
				type row struct{ user, client, ip, quotas string }
				rows := make([]row, 0, len(qs))
				for _, q := range qs {
					r := row{user: "-", client: "-", ip: "-"}
					for _, e := range q.Entity {
						name := "<default>"
						if e.Name != nil {
							name = *e.Name
						}
						switch e.Type {
						case "user":
							r.user = name
						case "client-id":
							r.client = name
						case "ip":
							r.ip = name
						default:
							r.user = e.Type + "=" + name
						}
					}
					vals := make([]string, 0, len(q.Values))
					for _, v := range q.Values {
						vals = append(vals, v.Key+"="+strconv.FormatFloat(v.Value, 'f', -1, 64))
					}
					sort.Strings(vals)
					r.quotas = strings.Join(vals, ",")
					rows = append(rows, r)
				}
				sort.Slice(rows, func(i, j int) bool {
					if rows[i].ip != rows[j].ip {
						return rows[i].ip < rows[j].ip
					}
					if rows[i].user != rows[j].user {
						return rows[i].user < rows[j].user
					}
					return rows[i].client < rows[j].client
				})
				// The IP column only when an ip entity is listed, so the user and client
				// table reads as before.
				withIP := slices.ContainsFunc(rows, func(r row) bool { return r.ip != "-" })
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				if withIP {
					fmt.Fprintln(tw, "USER\tCLIENT-ID\tIP\tQUOTAS")
				} else {
					fmt.Fprintln(tw, "USER\tCLIENT-ID\tQUOTAS")
				}
				for _, r := range rows {
					if withIP {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.user, r.client, r.ip, r.quotas)
					} else {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", r.user, r.client, r.quotas)
					}
				}
				return tw.Flush()
			})}
		dent.add(describe)
		describe.Flags().BoolVar(&all, "all", false, "also list entities with more components than those named (e.g. --user alice --all: alice's client ids too)")
		cmd.AddCommand(alter, describe)
		return cmd
	})
}

// quotaEntityFlags name a quota entity (kafka-configs.sh's --entity-type
// users/clients/ips with --entity-name or --entity-default).
type quotaEntityFlags struct {
	user, client, ip                      string
	defaultUser, defaultClient, defaultIP bool
}

func (e *quotaEntityFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&e.user, "user", "", "the user (SASL user name, or ANONYMOUS)")
	f.BoolVar(&e.defaultUser, "default-user", false, "the default user (<default>: every user without a quota of its own)")
	f.StringVar(&e.client, "client-id", "", "the client id")
	f.BoolVar(&e.defaultClient, "default-client-id", false, "the default client id (<default>)")
	f.StringVar(&e.ip, "ip", "", "the client IP address (connection_creation_rate; not with --user or --client-id)")
	f.BoolVar(&e.defaultIP, "default-ip", false, "the default ip (<default>: every ip without a quota of its own)")
}

// ipPart returns the ip component named: name (nil = default); hasIP false when none.
func (e *quotaEntityFlags) ipPart() (ip *string, hasIP bool, err error) {
	if e.ip != "" && e.defaultIP {
		return nil, false, errors.New("give --ip or --default-ip, not both")
	}
	hasIP = e.ip != "" || e.defaultIP
	if hasIP && (e.user != "" || e.defaultUser || e.client != "" || e.defaultClient) {
		return nil, false, errors.New("an ip quota entity stands alone: --ip or --default-ip goes without --user and --client-id")
	}
	if e.ip != "" {
		ip = &e.ip
	}
	return ip, hasIP, nil
}

// parts returns the user and client-id components named: type, name (nil = default).
func (e *quotaEntityFlags) parts() (user, client *string, hasUser, hasClient bool, err error) {
	if e.user != "" && e.defaultUser {
		return nil, nil, false, false, errors.New("give --user or --default-user, not both")
	}
	if e.client != "" && e.defaultClient {
		return nil, nil, false, false, errors.New("give --client-id or --default-client-id, not both")
	}
	if e.user != "" {
		user = &e.user
	}
	if e.client != "" {
		client = &e.client
	}
	return user, client, e.user != "" || e.defaultUser, e.client != "" || e.defaultClient, nil
}

func (e *quotaEntityFlags) entity() (kadm.ClientQuotaEntity, error) {
	user, client, hasUser, hasClient, err := e.parts()
	if err != nil {
		return nil, err
	}
	ip, hasIP, err := e.ipPart()
	if err != nil {
		return nil, err
	}
	if hasIP {
		return kadm.ClientQuotaEntity{{Type: "ip", Name: ip}}, nil
	}
	var ent kadm.ClientQuotaEntity
	if hasUser {
		ent = append(ent, kadm.ClientQuotaEntityComponent{Type: "user", Name: user})
	}
	if hasClient {
		ent = append(ent, kadm.ClientQuotaEntityComponent{Type: "client-id", Name: client})
	}
	return ent, nil
}

func (e *quotaEntityFlags) filter() ([]kadm.DescribeClientQuotaComponent, error) {
	user, client, hasUser, hasClient, err := e.parts()
	if err != nil {
		return nil, err
	}
	ip, hasIP, err := e.ipPart()
	if err != nil {
		return nil, err
	}
	var comps []kadm.DescribeClientQuotaComponent
	comp := func(typ string, name *string) kadm.DescribeClientQuotaComponent {
		if name == nil {
			return kadm.DescribeClientQuotaComponent{Type: typ, MatchType: kmsg.QuotasMatchTypeDefault}
		}
		return kadm.DescribeClientQuotaComponent{Type: typ, MatchName: name, MatchType: kmsg.QuotasMatchTypeExact}
	}
	if hasIP {
		return append(comps, comp("ip", ip)), nil
	}
	if hasUser {
		comps = append(comps, comp("user", user))
	}
	if hasClient {
		comps = append(comps, comp("client-id", client))
	}
	return comps, nil
}

// quotaOps parses --add KEY=VALUE and --delete KEY.
func quotaOps(add, del []string) ([]kadm.AlterClientQuotaOp, error) {
	if len(add) == 0 && len(del) == 0 {
		return nil, errors.New("nothing to change: give --add KEY=VALUE or --delete KEY")
	}
	var ops []kadm.AlterClientQuotaOp
	for _, kv := range add {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--add %q: want KEY=VALUE (e.g. producer_byte_rate=1048576)", kv)
		}
		val, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("--add %q: the value is not a number", kv)
		}
		ops = append(ops, kadm.AlterClientQuotaOp{Key: strings.TrimSpace(k), Value: val})
	}
	for _, k := range del {
		if k == "" {
			return nil, errors.New("--delete: empty key")
		}
		ops = append(ops, kadm.AlterClientQuotaOp{Key: strings.TrimSpace(k), Remove: true})
	}
	return ops, nil
}

// quotaEntityText renders an entity as Kafka's config paths: /users/alice/clients/<default>,
// /ips/127.0.0.1.
func quotaEntityText(ent kadm.ClientQuotaEntity) string {
	s := ""
	for _, c := range ent {
		name := "<default>"
		if c.Name != nil {
			name = *c.Name
		}
		switch c.Type {
		case "user":
			s += "/users/" + name
		case "ip":
			s += "/ips/" + name
		default:
			s += "/clients/" + name
		}
	}
	return s
}
