package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// `tagpipe users scram|list`: kafka-configs.sh's --entity-type users for SCRAM
// credentials (--alter --add-config 'SCRAM-SHA-256=[iterations=…,password=…]',
// --alter --delete-config SCRAM-SHA-256, --describe), over the Kafka protocol
// (AlterUserScramCredentials, DescribeUserScramCredentials), so they work against real
// Kafka too. The password is read from stdin only (never a flag: it would be in the
// shell history and the process list); kadm salts and hashes it client-side, so the
// broker never sees it.
func init() {
	register(func(a *app) *cobra.Command {
		var kf kafkaFlags
		cmd := &cobra.Command{Use: "users", Short: "Add, change, delete and list SCRAM users (like kafka-configs.sh --entity-type users)"}
		kf.add(cmd)
		withAdmin := func(fn func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error) func(*cobra.Command, []string) error {
			return kf.withAdminOnly(a, fn)
		}
		var add, del, mechanism string
		var iterations int32
		var passwordStdin bool
		scram := &cobra.Command{Use: "scram (--add USER --password-stdin | --delete USER) --mechanism SCRAM-SHA-256",
			Short: "Set a user's SCRAM credential from a password on stdin, or delete it",
			Args:  cobra.NoArgs,
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				mech, err := parseScramMechanism(mechanism)
				if err != nil {
					return err
				}
				var dels []kadm.DeleteSCRAM
				var ups []kadm.UpsertSCRAM
				user, verb := add, "set"
				switch {
				case (add == "") == (del == ""):
					return errors.New("give one of --add USER or --delete USER")
				case add != "":
					if !passwordStdin {
						return errors.New("--add reads the password from stdin: give --password-stdin")
					}
					pass, err := readPassword(cmd.InOrStdin())
					if err != nil {
						return err
					}
					ups = append(ups, kadm.UpsertSCRAM{User: add, Mechanism: mech, Iterations: iterations, Password: pass})
				default:
					user, verb = del, "deleted"
					dels = append(dels, kadm.DeleteSCRAM{User: del, Mechanism: mech})
				}
				if err := alterSCRAM(ctx, adm, user, dels, ups); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s credential of user %s %s\n", mech, user, verb)
				return nil
			})}
		f := scram.Flags()
		f.StringVar(&add, "add", "", "set this user's credential (a new password, or a first one)")
		f.StringVar(&del, "delete", "", "delete this user's credential for --mechanism")
		f.StringVar(&mechanism, "mechanism", "", "SCRAM-SHA-256 or SCRAM-SHA-512")
		f.Int32Var(&iterations, "iterations", 4096, "PBKDF2 iterations (Kafka accepts 4096 to 16384)")
		f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
		_ = scram.MarkFlagRequired("mechanism")

		list := &cobra.Command{Use: "list [USER…]", Short: "Users with SCRAM credentials: mechanism and iterations",
			RunE: withAdmin(func(ctx context.Context, adm *kadm.Client, cmd *cobra.Command) error {
				ds, err := adm.DescribeUserSCRAMs(ctx, cmd.Flags().Args()...)
				if err != nil {
					return fmt.Errorf("cannot list SCRAM users: %w", err)
				}
				users := make([]string, 0, len(ds))
				for u := range ds {
					users = append(users, u)
				}
				sort.Strings(users)
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "USER\tMECHANISM\tITERATIONS")
				var errs []error
				for _, u := range users {
					d := ds[u]
					if d.Err != nil {
						errs = append(errs, fmt.Errorf("user %q: %w", u, d.Err))
						continue
					}
					for _, c := range d.CredInfos {
						fmt.Fprintf(tw, "%s\t%s\t%d\n", u, c.Mechanism, c.Iterations)
					}
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				return errors.Join(errs...)
			})}
		cmd.AddCommand(scram, list)
		return cmd
	})
}

// alterSCRAM deletes and sets one user's SCRAM credentials (AlterUserScramCredentials).
func alterSCRAM(ctx context.Context, adm *kadm.Client, user string, dels []kadm.DeleteSCRAM, ups []kadm.UpsertSCRAM) error {
	res, err := adm.AlterUserSCRAMs(ctx, dels, ups)
	if err != nil {
		return fmt.Errorf("cannot alter the SCRAM credentials of %q: %w", user, err)
	}
	r, ok := res[user]
	if !ok {
		return fmt.Errorf("user %q not answered", user)
	}
	if r.Err != nil {
		return fmt.Errorf("cannot alter the SCRAM credentials of %q: %w", user, brokerError(r.Err, r.ErrMessage))
	}
	return nil
}

func parseScramMechanism(s string) (kadm.ScramMechanism, error) {
	switch strings.ToUpper(s) {
	case "SCRAM-SHA-256":
		return kadm.ScramSha256, nil
	case "SCRAM-SHA-512":
		return kadm.ScramSha512, nil
	}
	return 0, fmt.Errorf("--mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", s)
}

// readPassword is stdin's first line, without its line end.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("cannot read the password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin")
	}
	return line, nil
}
