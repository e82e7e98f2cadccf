package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/tagpipe/tagpipe/config"
	"github.com/tagpipe/tagpipe/internal/admin"
	"github.com/tagpipe/tagpipe/internal/kafkasec"
	"github.com/tagpipe/tagpipe/internal/lifecycle"
	"github.com/tagpipe/tagpipe/internal/logging"
)

// app is what every subcommand shares: the global flags, the loaded configuration and the
// logger. Subcommands read a.cfg only inside RunE (it is loaded in PersistentPreRunE).
type app struct {
	configFile string
	dataDir    string
	cfg        *config.Config
	// kafka is cfg's kafka: section made ready for the Kafka clients (nil: PLAINTEXT).
	kafka     *kafkasec.Security
	log       *slog.Logger
	out, errw io.Writer
	// releaseSignals gives SIGINT/SIGTERM back after a command that runs until stopped.
	releaseSignals func()
}

// untilStopped is the annotation of the commands that run until SIGINT/SIGTERM (broker,
// ingest, stream, jobs, sql serve, up): they catch those signals from their very start,
// so that one sent while they are still starting stops the start. A process a script
// started in the background begins with SIGINT ignored, and Go keeps it ignored until
// signal.Notify: a SIGINT before that would be lost.
const untilStopped = "tagpipe.until-stopped"

// runsUntilStopped marks cmd as a command that runs until SIGINT/SIGTERM.
func runsUntilStopped(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[untilStopped] = "true"
	return cmd
}

// commands are added to the root by each subcommand file's init().
var commands []func(*app) *cobra.Command

func register(f func(*app) *cobra.Command) { commands = append(commands, f) }

func newRootCmd(out, errw io.Writer) *cobra.Command {
	a := &app{out: out, errw: errw}
	root := &cobra.Command{
		Use:           "tagpipe",
		Short:         "tagpipe — collect behaviour logs, stream them into Parquet tables, compute user interest tags",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Flags before a subcommand's name belong to the commands named so far, so the
		// global --config FILE in `tagpipe --config FILE topics create --config k=v` is
		// the config file, and the second --config (kafka-topics.sh's) a topic config.
		TraverseChildren: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Annotations[untilStopped] != "" {
				ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
				cmd.SetContext(ctx)
				a.releaseSignals = stop
			}
			if err := a.load(cmd); err != nil {
				a.release()
				return err
			}
			return nil
		},
	}
	root.SetOut(out)
	root.SetErr(errw)
	// --version, as most command-line tools take it, prints what `tagpipe version` does.
	root.Version = versionLine()
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().StringVar(&a.configFile, "config", "", "config file (tagpipe.yaml); embedded defaults when empty")
	root.PersistentFlags().StringVar(&a.dataDir, "data-dir", "", "directory for everything tagpipe writes (default ./tagpipe-data)")
	for _, f := range commands {
		root.AddCommand(f(a))
	}
	refuseUnknownSubcommands(root)
	stopCleanlyOnSignal(a, root)
	// A mistyped flag names the command whose flags to look up.
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w\nRun '%s --help' for its flags", err, cmd.CommandPath())
	})
	return root
}

// refuseUnknownSubcommands makes every command group below the root (topics, tables,
// tags, …: commands that only hold subcommands) fail on a word that is none of its
// subcommands, as the root does, instead of printing its help and exiting 0 — so that
// `tagpipe topics lst` in a script fails.
func refuseUnknownSubcommands(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c == root || !c.HasSubCommands() || c.Runnable() {
			return
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
			if cmd.SuggestionsMinimumDistance <= 0 {
				cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only on the root's path
			}
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
			}
			return fmt.Errorf("%s\nRun '%s --help' for its commands", msg, cmd.CommandPath())
		}
	}
	walk(root)
}

// stopCleanlyOnSignal makes each command that runs until stopped give its signals back
// when it returns, and end with no error when a stop signal came during its start-up (the
// start-up's context error): a stop then is as clean as one after start-up, exit status 0.
func stopCleanlyOnSignal(a *app, root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Annotations[untilStopped] == "" || c.RunE == nil {
			return
		}
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			defer a.release()
			err := run(cmd, args)
			if ctx := cmd.Context(); ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				a.log.Info("stopped during start-up", "reason", context.Cause(ctx), "start", err)
				return nil
			}
			return err
		}
	}
	walk(root)
}

// release gives back the signals a command that runs until stopped caught.
func (a *app) release() {
	if a.releaseSignals != nil {
		a.releaseSignals()
		a.releaseSignals = nil
	}
}

// load reads the configuration: embedded defaults, --config (or ./tagpipe.yaml when it
// exists), TAGPIPE_… environment, then flags.
func (a *app) load(cmd *cobra.Command) error {
	file := a.configFile
	if file == "" {
		if _, err := os.Stat("tagpipe.yaml"); err == nil {
			file = "tagpipe.yaml"
		}
	}
	overrides := map[string]string{}
	if cmd.Flags().Changed("data-dir") {
		overrides["data_dir"] = a.dataDir
	}
	cfg, err := config.Load(config.LoadOptions{File: file, Overrides: overrides})
	if err != nil {
		return err
	}
	a.configFile = file // the file read, for `config check` to name
	a.cfg = cfg
	if a.kafka, err = kafkasec.New(cfg.Kafka.Security()); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	a.log, err = logging.New(a.errw, cfg.Log.Level, cfg.Log.Format)
	return err
}

// serve runs long-lived components plus the admin listener until SIGINT/SIGTERM, then
// stops them in reverse order. Every server subcommand ends in serve, and is marked
// runsUntilStopped so that its ctx is done on those signals from its very start; serve
// catches them too, for a caller that is not.
func (a *app) serve(ctx context.Context, reg *prometheus.Registry, mount func(*admin.Server), components ...lifecycle.Component) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := lifecycle.New(a.log, 30*time.Second)
	if a.cfg.Admin.Listen != "" {
		srv := admin.New(admin.Options{Listen: a.cfg.Admin.Listen, Registry: reg, Ready: r.Ready, Log: a.log})
		if mount != nil {
			mount(srv)
		}
		// The admin listener starts first and stops last, so /metrics and /healthz answer
		// through the whole start-up and shutdown.
		r.Add(srv)
	}
	r.Add(components...)
	return a.addrInUseHint(r.Run(ctx))
}

// addrInUseHint adds to a listener's "address already in use" what to do: which setting
// (and environment variable) gives that listener another address.
func (a *app) addrInUseHint(err error) error {
	var oe *net.OpError
	if !errors.Is(err, syscall.EADDRINUSE) || !errors.As(err, &oe) || oe.Addr == nil {
		return err
	}
	addr := oe.Addr.String()
	for _, l := range []struct{ listen, key, env string }{
		{a.cfg.Broker.Listen, "broker.listen", "TAGPIPE_BROKER_LISTEN"},
		{a.cfg.Admin.Listen, "admin.listen", "TAGPIPE_ADMIN_LISTEN"},
		{a.cfg.SQL.PGListen, "sql.pg_listen", "TAGPIPE_SQL_PG_LISTEN"},
	} {
		if l.listen != "" && sameAddr(l.listen, addr) {
			return fmt.Errorf("%w\n%s is taken (another tagpipe or Kafka running?): stop that process, or give %s another address "+
				"in tagpipe.yaml or with %s=127.0.0.1:PORT", err, addr, l.key, l.env)
		}
	}
	return fmt.Errorf("%w\n%s is taken (another process listens there): stop it, or give this listener another address in tagpipe.yaml", err, addr)
}

// sameAddr reports whether the configured host:port is the listener address addr.
func sameAddr(listen, addr string) bool {
	if listen == addr {
		return true
	}
	lh, lp, err1 := net.SplitHostPort(listen)
	ah, ap, err2 := net.SplitHostPort(addr)
	if err1 != nil || err2 != nil || lp != ap {
		return false
	}
	if lh == ah || lh == "" || lh == "0.0.0.0" || lh == "::" {
		return true
	}
	ips, err := net.LookupIP(lh)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if ip.String() == ah {
			return true
		}
	}
	return false
}
