package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// `tagpipe acls add|list|remove`: kafka-acls.sh over the Kafka protocol (CreateAcls,
// DescribeAcls, DeleteAcls through kadm), so they work against real Kafka too. The
// flags are kafka-acls.sh's: --allow-principal/--deny-principal with
// --allow-host/--deny-host, --operation, one or more resources (--topic, --group,
// --cluster, --transactional-id) and --resource-pattern-type.
func init() {
	register(func(a *app) *cobra.Command {
		var kf kafkaFlags
		cmd := &cobra.Command{Use: "acls", Short: "Add, list and remove ACLs (like kafka-acls.sh); the broker needs authorizer: acl"}
		kf.add(cmd)
		withAdmin := func(fn func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
			return kf.withAdminOnly(a, func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				err := fn(ctx, adm, cmd)
				if errors.Is(err, kerr.SecurityDisabled) {
					// Kafka's message says what is missing, not where to set it.
					return fmt.Errorf("%w\n(the broker runs without an authorizer: set broker.authorizer: acl and broker.super_users in tagpipe.yaml for tagpipe's broker, authorizer.class.name for Apache Kafka)", err)
				}
				return err
			})
		}
		var af aclFlags

		add := &cobra.Command{Use: "add (--allow-principal P | --deny-principal P)… --operation OP… (--topic T | --group G | --cluster | --transactional-id X)…",
			Short: "Add ACLs: every principal × host × operation × resource given",
			Args:  cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				b, err := af.creation()
				if err != nil {
					return err
				}
				rs, err := adm.CreateACLs(ctx, b)
				if err != nil {
					return fmt.Errorf("cannot add ACLs: %w", err)
				}
				var errs []error
				for _, r := range rs {
					if r.Err != nil {
						errs = append(errs, fmt.Errorf("%s %s %s %s %s: %w", r.Type, r.Name, r.Principal, r.Operation, r.Permission, brokerError(r.Err, r.ErrMessage)))
					}
				}
				if err := errors.Join(errs...); err != nil {
					return fmt.Errorf("cannot add ACLs: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "added %d ACL(s)\n", len(rs))
				return nil
			})}
		af.add(add, true)

		list := &cobra.Command{Use: "list [--topic T | --group G | --cluster | --transactional-id X]… [--principal P]",
			Short: "List ACLs: all, or those of the resources given (--resource-pattern-type any|match|literal|prefixed)",
			Args:  cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				acls, err := filterACLs(ctx, adm, &af, false)
				if err != nil {
					return err
				}
				return printACLs(cmd.OutOrStdout(), acls)
			})}
		af.add(list, false)

		remove := &cobra.Command{Use: "remove (--topic T | --group G | --cluster | --transactional-id X)… [--allow-principal P | --deny-principal P]… [--operation OP]…",
			Short: "Remove the ACLs of the resources given (all of them, or those of the principals, hosts and operations given)",
			Args:  cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				acls, err := filterACLs(ctx, adm, &af, true)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %d ACL(s)\n", len(acls))
				return printACLs(cmd.OutOrStdout(), acls)
			})}
		af.add(remove, true)
		// kafka-acls.sh --remove asks "Are you sure…? (y/n)" unless --force; scripts pass
		// it. tagpipe never asks (it prints what it removed), so the flag only keeps them
		// working.
		remove.Flags().Bool("force", false, "accepted as kafka-acls.sh's --force: tagpipe acls remove never asks for confirmation")
		cmd.AddCommand(add, list, remove)
		return cmd
	})
}

// aclFlags are kafka-acls.sh's flags, shared by the three commands.
type aclFlags struct {
	allow, deny           []string // principals
	allowHosts, denyHosts []string
	principals            []string // list: either permission
	operations            []string
	topics, groups, txns  []string
	cluster               bool
	pattern               string
}

func (f *aclFlags) add(cmd *cobra.Command, change bool) {
	fs := cmd.Flags()
	if change {
		fs.StringArrayVar(&f.allow, "allow-principal", nil, "principal to allow, e.g. User:alice or User:* (repeatable)")
		fs.StringArrayVar(&f.deny, "deny-principal", nil, "principal to deny (repeatable)")
		fs.StringArrayVar(&f.allowHosts, "allow-host", nil, "host (IP address) the allowed principals may connect from (default *)")
		fs.StringArrayVar(&f.denyHosts, "deny-host", nil, "host the denied principals are denied from (default *)")
		fs.StringArrayVar(&f.operations, "operation", nil, "Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All (repeatable; add: default All, remove: any)")
	} else {
		fs.StringArrayVar(&f.principals, "principal", nil, "only the ACLs of this principal (repeatable)")
	}
	fs.StringArrayVar(&f.topics, "topic", nil, "topic (repeatable; * is every topic)")
	fs.StringArrayVar(&f.groups, "group", nil, "consumer group (repeatable)")
	fs.StringArrayVar(&f.txns, "transactional-id", nil, "transactional id (repeatable)")
	fs.BoolVar(&f.cluster, "cluster", false, "the cluster resource")
	def, help := "literal", "literal or prefixed"
	if !change || cmd.Name() == "remove" {
		help = "literal, prefixed, any (every pattern of the names given) or match (the patterns that apply to them)"
	}
	fs.StringVar(&f.pattern, "resource-pattern-type", def, help)
}

func (f *aclFlags) hasResource() bool {
	return f.cluster || len(f.topics)+len(f.groups)+len(f.txns) > 0
}

// resources sets the builder's resources: the ones given (none: none).
func (f *aclFlags) resources(b *kadm.ACLBuilder) *kadm.ACLBuilder {
	return b.MaybeTopics(f.topics...).MaybeGroups(f.groups...).MaybeTransactionalIDs(f.txns...).MaybeClusters(f.cluster)
}

func (f *aclFlags) ops(def kadm.ACLOperation) ([]kadm.ACLOperation, error) {
	if len(f.operations) == 0 {
		return []kadm.ACLOperation{def}, nil
	}
	out := make([]kadm.ACLOperation, 0, len(f.operations))
	for _, s := range f.operations {
		op, err := kmsg.ParseACLOperation(s)
		if err != nil || op == kmsg.ACLOperationAny || op == kmsg.ACLOperationUnknown {
			return nil, fmt.Errorf("--operation %q: want one of Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All", s)
		}
		out = append(out, op)
	}
	return out, nil
}

func (f *aclFlags) patternType(allowFilters bool) (kadm.ACLPattern, error) {
	p, err := kmsg.ParseACLResourcePatternType(f.pattern)
	switch {
	case err != nil || p == kmsg.ACLResourcePatternTypeUnknown:
	case p == kmsg.ACLResourcePatternTypeLiteral || p == kmsg.ACLResourcePatternTypePrefixed:
		return p, nil
	case allowFilters:
		return p, nil
	}
	want := "literal or prefixed"
	if allowFilters {
		want = "literal, prefixed, any or match"
	}
	return 0, fmt.Errorf("--resource-pattern-type %q: want %s", f.pattern, want)
}

// creation is the builder of `acls add`.
func (f *aclFlags) creation() (*kadm.ACLBuilder, error) {
	switch {
	case len(f.allow)+len(f.deny) == 0:
		return nil, errors.New("give --allow-principal or --deny-principal")
	case !f.hasResource():
		return nil, errors.New("give a resource: --topic, --group, --cluster or --transactional-id")
	}
	ops, err := f.ops(kadm.OpAll)
	if err != nil {
		return nil, err
	}
	pt, err := f.patternType(false)
	if err != nil {
		return nil, err
	}
	b := f.resources(kadm.NewACLs()).Operations(ops...).ResourcePatternType(pt)
	if len(f.allow) > 0 {
		b.MaybeAllow(f.allow...).MaybeAllowHosts(orStar(f.allowHosts)...)
	}
	if len(f.deny) > 0 {
		b.MaybeDeny(f.deny...).MaybeDenyHosts(orStar(f.denyHosts)...)
	}
	return b, b.ValidateCreate()
}

func orStar(hosts []string) []string {
	if len(hosts) == 0 {
		return []string{"*"}
	}
	return hosts
}

// filter is the builder of `acls list` (every ACL without a resource) and `acls
// remove` (a resource is required, as kafka-acls.sh --remove asks for one).
func (f *aclFlags) filter(remove bool) (*kadm.ACLBuilder, error) {
	if remove && !f.hasResource() {
		return nil, errors.New("give a resource: --topic, --group, --cluster or --transactional-id")
	}
	ops, err := f.ops(kadm.OpAny)
	if err != nil {
		return nil, err
	}
	pt, err := f.patternType(true)
	if err != nil {
		return nil, err
	}
	b := kadm.NewACLs().Operations(ops...)
	if f.hasResource() {
		f.resources(b).ResourcePatternType(pt)
	} else {
		b.AnyResource().ResourcePatternType(kadm.ACLPatternAny)
	}
	allow, deny := f.allow, f.deny
	if len(f.principals) > 0 {
		allow, deny = f.principals, f.principals
	}
	switch {
	case len(allow)+len(deny) == 0: // every principal, both permissions
		b.Allow().AllowHosts(f.allowHosts...).Deny().DenyHosts(f.denyHosts...)
	default:
		if len(allow) > 0 {
			b.MaybeAllow(allow...).MaybeAllowHosts(f.allowHosts...)
			if len(f.allowHosts) == 0 {
				b.AllowHosts()
			}
		}
		if len(deny) > 0 {
			b.MaybeDeny(deny...).MaybeDenyHosts(f.denyHosts...)
			if len(f.denyHosts) == 0 {
				b.DenyHosts()
			}
		}
	}
	return b, b.ValidateFilter()
}

// filterACLs is what `acls list` and `acls remove` share: the ACLs that match the flags'
// filter, described or (remove) deleted, each result's error joined into one.
func filterACLs(ctx context.Context, adm *kadm.Client, af *aclFlags, remove bool) ([]kadm.DescribedACL, error) {
	verb := map[bool]string{false: "list", true: "remove"}[remove]
	b, err := af.filter(remove)
	if err != nil {
		return nil, err
	}
	var acls []kadm.DescribedACL
	var errs []error
	if remove {
		rs, err := adm.DeleteACLs(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("cannot remove ACLs: %w", err)
		}
		for _, r := range rs {
			if r.Err != nil {
				errs = append(errs, brokerError(r.Err, r.ErrMessage))
			}
			for _, d := range r.Deleted {
				if d.Err != nil {
					errs = append(errs, fmt.Errorf("%s %s: %w", d.Type, d.Name, brokerError(d.Err, d.ErrMessage)))
					continue
				}
				acls = append(acls, kadm.DescribedACL{Principal: d.Principal, Host: d.Host, Type: d.Type, Name: d.Name,
					Pattern: d.Pattern, Operation: d.Operation, Permission: d.Permission})
			}
		}
	} else {
		rs, err := adm.DescribeACLs(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("cannot list ACLs: %w", err)
		}
		for _, r := range rs {
			if r.Err != nil {
				errs = append(errs, brokerError(r.Err, r.ErrMessage))
			}
			acls = append(acls, r.Described...)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("cannot %s ACLs: %w", verb, err)
	}
	return acls, nil
}

// printACLs writes ACLs as a table sorted by resource, principal and operation.
func printACLs(w io.Writer, acls []kadm.DescribedACL) error {
	seen := map[kadm.DescribedACL]bool{}
	uniq := acls[:0]
	for _, a := range acls {
		if !seen[a] {
			seen[a] = true
			uniq = append(uniq, a)
		}
	}
	sort.Slice(uniq, func(i, j int) bool {
		x, y := uniq[i], uniq[j]
		kx := []string{x.Type.String(), x.Name, x.Pattern.String(), x.Principal, x.Host, x.Operation.String(), x.Permission.String()}
		ky := []string{y.Type.String(), y.Name, y.Pattern.String(), y.Principal, y.Host, y.Operation.String(), y.Permission.String()}
		return strings.Join(kx, "\x00") < strings.Join(ky, "\x00")
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tNAME\tPATTERN\tPRINCIPAL\tHOST\tOPERATION\tPERMISSION")
	for _, a := range uniq {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Type, a.Name, a.Pattern, a.Principal, a.Host, a.Operation, a.Permission)
	}
	return tw.Flush()
}
